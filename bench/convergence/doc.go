// Package convergence measures, with the linux E-VPN dataplane, how long
// after an attach returns on node A the MAC's FDB entry is in the kernel of
// node B (and, on detach, gone from it). It is a Go benchmark so that CI
// does not run it:
//
//	go test -run '^$' -bench Convergence -benchtime 1x ./bench/convergence [-args -attaches 200 -rr gobgp|frr]
//
// It needs root: it builds a route reflector and two bagpipe-bgp nodes in
// network namespaces (internal/testfabric). Results and method are in
// docs/benchmarks.md.
package convergence
