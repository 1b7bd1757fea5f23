// Command profiled is cmd/bagpipe-bgp with profiling hooks, for the bench's
// profiles only: BAGPIPE_BENCH_CPUPROFILE=<file> records a CPU profile from
// start to stop, BAGPIPE_BENCH_PPROF=<host:port> serves net/http/pprof
// (heap profiles while routes are held). Everything else is the daemon's
// main (daemon.Main), unchanged.
package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/pprof"

	"bagpipe/internal/daemon"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if path := os.Getenv("BAGPIPE_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if addr := os.Getenv("BAGPIPE_BENCH_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	return daemon.Main("bagpipe-bgp", args, os.Stdout, os.Stderr)
}
