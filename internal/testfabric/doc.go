// Package testfabric is the integration-test harness for bagpipe: it builds
// throw-away network fabrics out of Linux network namespaces and runs real
// BGP route reflectors (GoBGP's gobgpd, FRR's bgpd) inside them, so that
// integration tests of other packages can exercise the daemon against real
// peers without touching the host network.
//
// # Topology
//
// [NewFabric] creates one namespace per node plus one "fabric" namespace that
// holds a Linux bridge (br0). Every node is attached to the bridge with a veth
// pair (v<i> in the fabric namespace, fab0 in the node namespace); fab0 carries
// the node's address 10.250.0.<i+1>/16 and lo is up. All namespaces of a fabric
// share a unique name prefix of the form bp<pid%10000><4 hex>- (for example
// "bp0423a1f9-n0"), so concurrent or leftover runs never collide; interface
// names are fixed and short because each lives in its own namespace. Every
// fabric has its own bridge, so parallel fabrics can reuse the same addresses.
//
// Everything is configured through netlink (github.com/vishvananda/netlink);
// nothing shells out to ip(8). t.Cleanup stops the processes, deletes the links
// and the namespaces even when the test fails.
//
// A test binary killed before its cleanups run (go test -timeout, SIGKILL)
// cannot remove its namespaces; its daemons die with it (PR_SET_PDEATHSIG).
// Each fabric holds an flock'ed file /run/bagpipe-testfabric/<prefix>lock for
// as long as its process lives, and [NewFabric] first calls [SweepStale],
// which deletes the namespaces (and FRR crash-log directories) of fabrics
// whose lock is no longer held. Live fabrics of concurrent runs are never
// touched.
//
// # Running things inside a node
//
// [Node.Do] runs Go code with the calling goroutine locked to an OS thread
// whose network namespace has been switched with setns(2); sockets created
// there (see [Node.Listen] and [Node.DialContext]) stay in the namespace for
// their whole life, whatever goroutine uses them later. Goroutines started by
// the function do NOT inherit the namespace.
//
// [Node.Run], [Node.Start] and [Node.StartCmd] start commands the same way:
// the child is forked from the locked, switched thread and so inherits the
// namespace; the thread is switched back before it is unlocked (and is left
// locked, hence discarded by the Go runtime, if switching back fails). This
// was preferred to nsenter(1) because it needs no extra binary and no extra
// process between the test and the daemon, so the PID we track is the
// daemon's own. Unlike "ip netns exec" it does not remount /sys, which
// neither gobgpd nor bgpd need. Children get PR_SET_PDEATHSIG=SIGKILL so they
// die with the test binary even if it is killed before cleanup runs.
//
// Started processes are tracked by the fabric: their stdout and stderr go to
// files under a t.TempDir(), they are stopped at cleanup (SIGTERM, then
// SIGKILL after a grace period; only our own children, through their pidfd)
// and their output is dumped with t.Log when the test failed.
//
// # Route reflectors
//
// [StartGoBGPRR] and [StartFRRRR] run a passive route reflector for the VPN
// families bagpipe speaks; both implement [RouteReflector] (Stop, Kill,
// Restart, WaitEstablished, Neighbor counters, RIB and Adj-RIB-Out as Go
// structures). [StartGoBGPClient] runs a gobgpd acting as an ordinary
// route-reflector client, used by the self-tests to inject routes with the
// gobgp CLI.
//
// All tests using this package need root (they create namespaces); the
// constructors call t.Skip when not running as root and when the daemon
// binaries are missing, unless BAGPIPE_TESTFABRIC_STRICT=1 is set in the
// environment, in which case missing binaries fail the test instead.
//
// Network rule: the harness only ever sends traffic to loopback or to
// addresses inside namespaces it created.
package testfabric
