package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// BenchmarkRouteDump measures GET /looking-glass/bgp/routes with 100,000
// received routes.
func BenchmarkRouteDump(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eng := engine.New(slog.New(slog.DiscardHandler), nil)
	go eng.Run(ctx)
	peer := &testWorker{route.Source{Name: "BGP-127.0.0.2", Peer: true}}
	attrs := &route.Attrs{HasLocalPref: true, LocalPref: 100, RTs: []route.RT{route.MustParseRT("64512:1")}, Encaps: []route.Encap{route.EncapMPLS}}
	const n = 100000
	events := make([]route.Event, n)
	for i := range events {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		events[i] = route.Event{Kind: route.Advertise, Route: &route.Route{
			NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(peer2, 1), Prefix: netip.PrefixFrom(a, 32)},
			Label: 16, NextHop: peer2, Attrs: attrs,
		}}
	}
	eng.Publish(peer, events)
	if err := eng.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Engine: eng, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/looking-glass/bgp/routes", nil)
		w := &discardWriter{header: http.Header{}}
		s.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n < n*100 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// discardWriter is an http.ResponseWriter counting what it discards.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return io.Discard.Write(p)
}
