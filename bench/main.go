// Command bench measures our bagpipe-bgp and the Python reference
// (Debian python3-networking-bagpipe) side by side, in the same run and
// under the same feed, and prints each figure for both with the ratio:
//
//  1. route ingestion: a BGP feeder (GoBGP's packet library) sends N E-VPN
//     MAC/IP routes, or N VPNv4 /32 routes, one per UPDATE or packed, into
//     one instance; time from the first UPDATE to all N routes in the
//     instance, and RSS growth per route;
//  2. withdrawal of the same N routes: time until the instance is empty;
//  3. attach/detach rate through the REST API, sequential and with 8
//     concurrent clients (p50/p99 latency);
//  4. advertisement latency: attach POST sent -> UPDATE at the feeder;
//  5. convergence with the Linux E-VPN dataplane (bench/convergence);
//  6. RT Constraint scale: a gobgpd route reflector holding 1,000 VPNs of
//     100 routes; a node importing one VPN.
//
// Run it as root from the repository root (docs/benchmarks.md):
//
//	go run ./bench                 # default sizes, < 10 minutes
//	go run ./bench -quick          # seconds: small N, ours only (what CI runs)
//
// Every process it starts listens and connects on loopback addresses only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg := defaultConfig()
	cfg.flags(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
