package api

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
	"net/netip"
)

// TestConcurrentAttachDetachLoad runs 10,000 attach/detach operations from
// 16 concurrent clients over a few shared instances (so instances are
// created and removed under contention), then checks that the final state is
// exactly as expected and that nothing leaked: no instance, label, RD,
// engine route or goroutine left behind.
func TestConcurrentAttachDetachLoad(t *testing.T) {
	const (
		clients   = 16
		ops       = 10000
		instances = 4
	)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	local := netip.MustParseAddr("192.0.2.1")
	eng := engine.New(nil, &engine.RTCConfig{AS: 64512, NextHop: local})
	engDone := make(chan struct{})
	go func() { eng.Run(ctx); close(engDone) }()
	mgr := vpn.NewManager(vpn.Config{Engine: eng, BGPAddress: local, Drivers: []dataplane.Driver{
		dummy.New(dataplane.IPVPN, local, nil), dummy.New(dataplane.EVPN, local, nil),
	}})
	srv, err := New(Config{VPN: mgr, Engine: eng, VPNs: mgr, InstanceCount: mgr.InstanceCount})
	if err != nil {
		t.Fatal(err)
	}

	var failures atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < ops/clients/2; i++ {
				typ := "evpn"
				if i%2 == 1 {
					typ = "ipvpn"
				}
				inst := fmt.Sprintf("%s-%d", typ, (c+i)%instances)
				body := fmt.Sprintf(`{"vpn_type": %q, "vpn_instance_id": %q, "mac_address": "52:54:00:%02x:%02x:%02x",
					"ip_address": "10.%d.%d.%d", "gateway_ip": "10.0.0.254", "local_port": "tap%d-%d",
					"import_rt": "64512:%d", "export_rt": "64512:%d"}`,
					typ, inst, c, i>>8, i&0xff, c, i>>8, i&0xff, c, i, (c+i)%instances, (c+i)%instances)
				for _, path := range []string{"/attach_localport", "/detach_localport"} {
					if r := do(t, srv, "POST", path, body); r.status != http.StatusOK {
						failures.Add(1)
						t.Errorf("client %d op %d %s: %d %s", c, i, path, r.status, r.body)
						return
					}
				}
			}
		}(c)
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}
	if err := eng.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := mgr.InstanceCount(); n != 0 {
		t.Errorf("%d instances left after every port was detached", n)
	}
	if labels, rds := mgr.Allocated(); labels != 0 || rds != 0 {
		t.Errorf("leaked %d labels and %d RDs", labels, rds)
	}
	var routes, workers int
	_ = eng.Inspect(context.Background(), func(v engine.View) {
		v.EachRoute(func(*route.Route) { routes++ })
		workers = len(v.Workers())
	})
	if routes != 0 {
		t.Errorf("%d routes left in the engine", routes)
	}
	if workers > 1 { // the engine's own RTC source may stay registered
		t.Errorf("%d workers left in the engine", workers)
	}
	mgr.Stop(context.Background())
	cancel()
	<-engDone
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("%d operations from %d clients: no instance, label, RD, route or goroutine left", ops, clients)
}
