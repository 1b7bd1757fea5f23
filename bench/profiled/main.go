// Command profiled is cmd/bagpipe-bgp with profiling hooks, for the bench's
// -profile mode only: BAGPIPE_BENCH_CPUPROFILE=<file> records a CPU profile
// from start to stop, BAGPIPE_BENCH_PPROF=<host:port> serves net/http/pprof
// (heap profiles while routes are held). Everything else is the daemon's
// main, unchanged.
package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"bagpipe/internal/config"
	"bagpipe/internal/daemon"
	"bagpipe/internal/logging"
)

const prog = "bagpipe-bgp"

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
	flags, err := config.ParseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg, warnings, err := config.Load(flags, config.BuiltinDriverOptions()...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration error: %v\n", prog, err)
		return 1
	}
	logs, err := logging.Setup(logging.Options{
		Debug: cfg.Log.Debug, LogFile: cfg.Log.File, LogDir: cfg.Log.Dir, UseJSON: cfg.Log.UseJSON, Program: prog,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 1
	}
	defer logs.Close()
	for _, w := range warnings {
		logs.Logger.Warn(w, logging.ComponentKey, "config")
	}
	d, err := daemon.New(cfg, logs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 1
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-d.Served():
		fmt.Fprintln(os.Stderr, err)
		return 1
	case <-sigs:
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		return 1
	}
	return 0
}
