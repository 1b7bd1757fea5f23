package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// The looking glass with 100,000 routes: it must answer fast and never
// hold route processing (the engine goroutine) for long. Figures are
// logged (go test -v -run LookingGlassAt100k) and measured by
// BenchmarkLookingGlass100k.

const bigTable = 100000

// timedEngine measures how long looking glass reads hold the engine
// goroutine.
type timedEngine struct {
	*engine.Engine
	mu      sync.Mutex
	longest time.Duration
}

func (e *timedEngine) Inspect(ctx context.Context, f func(engine.View)) error {
	return e.Engine.Inspect(ctx, func(v engine.View) {
		start := time.Now()
		f(v)
		d := time.Since(start)
		e.mu.Lock()
		e.longest = max(e.longest, d)
		e.mu.Unlock()
	})
}

func (e *timedEngine) takeLongest() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.longest
	e.longest = 0
	return d
}

// bigServer serves a looking glass over an engine holding n routes
// received from one peer.
func bigServer(tb testing.TB, n int) (*Server, *timedEngine, *testWorker) {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	eng := &timedEngine{Engine: engine.New(slog.New(slog.DiscardHandler), nil)}
	go eng.Run(ctx)
	peer := &testWorker{route.Source{Name: "BGP-127.0.0.2", Peer: true}}
	attrs := &route.Attrs{HasLocalPref: true, LocalPref: 100, RTs: []route.RT{route.MustParseRT("64512:1")}, Encaps: []route.Encap{route.EncapMPLS}}
	const batch = 1000 // as UPDATEs bring them
	for i := 0; i < n; i += batch {
		events := make([]route.Event, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			a := netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)})
			events = append(events, route.Event{Kind: route.Advertise, Route: &route.Route{
				NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(peer2, 1), Prefix: netip.PrefixFrom(a, 32)},
				Label: 16, NextHop: peer2, Attrs: attrs,
			}})
		}
		eng.Publish(peer, events)
	}
	if err := eng.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	s, err := New(Config{Engine: eng, Peers: fakePeers{{Name: "BGP-127.0.0.2", PeerAddress: peer2, Worker: peer}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return s, eng, peer
}

func getBig(tb testing.TB, h http.Handler, path string) (int, int) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := &discardWriter{header: http.Header{}}
	h.ServeHTTP(w, req)
	return w.status, w.n
}

func TestLookingGlassAt100kRoutes(t *testing.T) {
	start := time.Now()
	s, eng, _ := bigServer(t, bigTable)
	t.Logf("%d routes loaded in %v", bigTable, time.Since(start).Round(time.Millisecond))
	eng.takeLongest()

	type measure struct {
		path     string
		minBytes int
		limit    time.Duration // generous: -race and a loaded CI machine
	}
	for _, m := range []measure{
		{"/looking-glass/summary", 100, time.Second},
		{"/looking-glass/bgp/route_counts", 40, time.Second},
		{"/looking-glass/bgp/routes?limit=100", 100 * 100, 10 * time.Second},
		{"/looking-glass/bgp/routes", bigTable * 100, 60 * time.Second},
		{"/looking-glass/bgp/peers/127.0.0.2/adv_routes?offset=99900", 100 * 100, 10 * time.Second},
	} {
		t0 := time.Now()
		status, n := getBig(t, s, m.path)
		took := time.Since(t0)
		held := eng.takeLongest()
		t.Logf("GET %-62s %8d bytes in %10v, engine held %v", m.path, n, took.Round(time.Microsecond), held.Round(time.Microsecond))
		if status != http.StatusOK || n < m.minBytes {
			t.Errorf("GET %s: status %d, %d bytes", m.path, status, n)
		}
		if took > m.limit {
			t.Errorf("GET %s took %v (limit %v)", m.path, took, m.limit)
		}
	}

	// The summary reads counters: it answers while the engine goroutine
	// is busy (here: blocked).
	release := make(chan struct{})
	blocked := make(chan struct{})
	go func() {
		_ = eng.Engine.Inspect(context.Background(), func(engine.View) { close(blocked); <-release })
	}()
	<-blocked
	rec := httptest.NewRecorder()
	t0 := time.Now()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/looking-glass/summary", nil))
	took := time.Since(t0)
	close(release)
	var sum struct {
		Counts struct {
			Received int `json:"received_routes_count"`
		} `json:"route_counts"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &sum); rec.Code != http.StatusOK || err != nil || sum.Counts.Received != bigTable {
		t.Errorf("summary while the engine is busy: %d %s", rec.Code, rec.Body.String())
	}
	if took > time.Second {
		t.Errorf("summary waited %v for a busy engine", took)
	}
}

// BenchmarkLookingGlass100k measures looking glass requests with 100,000
// routes in the engine.
func BenchmarkLookingGlass100k(b *testing.B) {
	s, eng, peer := bigServer(b, bigTable)
	for _, path := range []string{
		"/looking-glass/summary",
		"/looking-glass/bgp/routes",
		"/looking-glass/bgp/routes?limit=100",
		"/looking-glass/bgp/routes?offset=99900&limit=100",
		"/looking-glass/bgp/peers/127.0.0.2/adv_routes?limit=100",
	} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if status, _ := getBig(b, s, path); status != http.StatusOK {
					b.Fatalf("status %d", status)
				}
			}
		})
	}
	// What the summary cost before the engine kept counters: a walk of
	// every route on the engine goroutine.
	b.Run("route-walk-count (former summary)", func(b *testing.B) {
		for b.Loop() {
			_ = eng.Engine.Inspect(context.Background(), func(v engine.View) {
				n := 0
				for _, r := range v.RoutesOf(peer) {
					if r.NLRI.Family != route.RTC {
						n++
					}
				}
			})
		}
	})
}
