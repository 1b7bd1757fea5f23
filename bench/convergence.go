package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// convergenceResult is scenario 5, measured by bench/convergence (a Go
// benchmark of its own: two nodes with the linux E-VPN dataplane in
// network namespaces and a gobgpd route reflector, ours only): attach on
// node A -> FDB entry on node B's VXLAN device.
type convergenceResult struct {
	Attaches    int                `json:"attaches"`
	Metrics     map[string]float64 `json:"metrics,omitempty"` // e.g. attach-median-ms, attach-p99-ms
	Log         []string           `json:"log,omitempty"`
	Seconds     float64            `json:"seconds"`
	Unavailable string             `json:"unavailable,omitempty"`
}

// runConvergence runs bench/convergence, when it is there, as
//
//	go test -run '^$' -bench Convergence -benchtime 1x ./bench/convergence -args -attaches N
//
// and collects the metrics its benchmark reports (units ending in -ms).
// This is the hook for scenario 5: the benchmark is maintained with the
// linux dataplane; this command only runs it and reports its figures.
func runConvergence(ctx context.Context, cfg *config, dir string) *convergenceResult {
	r := &convergenceResult{Attaches: cfg.advAttaches}
	root, err := moduleRoot()
	if err != nil {
		r.Unavailable = err.Error()
		return r
	}
	if _, err := os.Stat(filepath.Join(root, "bench", "convergence")); err != nil {
		r.Unavailable = "bench/convergence is not there yet"
		return r
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Unavailable = err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.convergenceTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-bench", "Convergence", "-benchtime", "1x",
		"./bench/convergence", "-args", "-attaches", strconv.Itoa(cfg.advAttaches))
	cmd.Dir = root
	// On timeout, end the process group we started (go test and the test
	// binary; the daemons it started die with it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r.Seconds = time.Since(start).Seconds()
	_ = os.WriteFile(filepath.Join(dir, "output"), out, 0o644)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "BenchmarkConvergence"):
			r.Metrics = benchMetrics(line)
		case strings.HasPrefix(line, "convergence_test.go:") && (strings.Contains(line, "->") || strings.Contains(line, "route reflector")):
			r.Log = append(r.Log, line[strings.IndexByte(line, ' ')+1:])
		}
	}
	if err != nil || len(r.Metrics) == 0 {
		r.Unavailable = fmt.Sprintf("bench/convergence failed (%v): %s", err, lastLines(string(out), 5))
	}
	return r
}

// benchMetrics parses "BenchmarkX-2  1  123 ns/op  1.5 attach-median-ms ...".
func benchMetrics(line string) map[string]float64 {
	f := strings.Fields(line)
	m := map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			m[f[i+1]] = v
		}
	}
	return m
}
