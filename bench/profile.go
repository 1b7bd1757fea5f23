package main

import (
	"context"
	"io"
	"net/http"
	"os"
)

// pprofEnv is the environment variable bench/profiled serves pprof on.
const pprofEnv = "BAGPIPE_BENCH_PPROF"

// saveHeapProfile fetches the heap profile of the profiled daemon (after a
// GC: live objects only) into path. Errors are ignored: profiling is an
// aid, not a measurement.
func saveHeapProfile(ctx context.Context, path string) {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
