package main

import (
	"bagpipe/internal/testfabric"
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestQuick runs the bench in its quick mode (N=1,000, a few ports, ours
// only) so that it never rots: every scenario must run to completion and
// find what it expects. It asserts no timing.
func TestQuick(t *testing.T) {
	if os.Geteuid() != 0 {
		testfabric.SkipUnlessStrict(t, "the bench runs as root (daemons on loopback addresses other than 127.0.0.1)")
	}
	cfg := quickConfig()
	cfg.outDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, cfg, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	res, err := readResults(cfg.outDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ingest) != 4 {
		t.Errorf("%d ingestion runs, want 4", len(res.Ingest))
	}
	for _, r := range res.Ingest {
		if r.Err != "" || !r.Complete || !r.WdComplete || r.Verified != r.N {
			t.Errorf("ingestion %s %s N=%d: complete=%v withdrawn=%v verified=%d error=%q", r.Family, r.Packing, r.N, r.Complete, r.WdComplete, r.Verified, r.Err)
		}
	}
	if len(res.Attach) != 2 {
		t.Errorf("%d attach runs, want 2", len(res.Attach))
	}
	for _, r := range res.Attach {
		if r.Err != "" || r.AttachRate <= 0 || r.DetachRate <= 0 {
			t.Errorf("attach/detach with %d clients: %+v", r.Clients, r)
		}
	}
	if len(res.Adv) != 1 || res.Adv[0].Err != "" || res.Adv[0].P50 <= 0 {
		t.Errorf("advertisement latency: %+v", res.Adv)
	}
	for _, n := range res.Notes {
		t.Log("note:", n)
	}
	for _, r := range res.RTC {
		if r.Err != "" || r.Received != r.Expected {
			t.Errorf("RT Constraint: %+v", r)
		}
	}
}
