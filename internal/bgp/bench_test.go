package bgp

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// vpnRoutes returns n VPNv4 routes sharing one set of attributes.
func vpnRoutes(n int) []*route.Route {
	attrs := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}, Encaps: []route.Encap{route.EncapMPLS}}
	routes := make([]*route.Route, n)
	for i := range routes {
		routes[i] = &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(fakeIP, 1), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)},
			Label:   uint32(16 + i%1000),
			NextHop: fakeIP,
			Attrs:   attrs,
		}
	}
	return routes
}

func encodeAll(b testing.TB, routes []*route.Route) []byte {
	enc := newEncoder(allFams, localIP, func(string, ...any) {})
	var buf bytes.Buffer
	if _, err := enc.encode(advertise(routes...), func(m []byte) error { buf.Write(m); return nil }); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodeVPNv4 measures the read path without the network: framing,
// GoBGP decoding, validation and conversion to routes.
func BenchmarkDecodeVPNv4(b *testing.B) {
	const n = 10000
	data := encodeAll(b, vpnRoutes(n))
	s := &session{dec: decoder{routerID: localIP, families: allFams}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r := newMsgReader(bytes.NewReader(data))
		got := 0
		for {
			msg, perr, err := r.next()
			if err != nil {
				break
			}
			res, _ := s.decode(msg.Body.(*bgp.BGPUpdate), perr)
			got += len(res.events)
		}
		if got != n {
			b.Fatalf("%d routes", got)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkEncodeVPNv4 measures the write path without the network.
func BenchmarkEncodeVPNv4(b *testing.B) {
	const n = 10000
	items := advertise(vpnRoutes(n)...)
	enc := newEncoder(allFams, localIP, func(string, ...any) {})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		enc.encode(items, func([]byte) error { return nil })
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkIngest measures a whole feed: a peer sends b.N VPNv4 routes over
// TCP, the speaker decodes and publishes them, the engine delivers them to
// a local worker.
func BenchmarkIngest(b *testing.B) {
	e := newEnv(b, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(defaultOpen())
	data := encodeAll(b, vpnRoutes(b.N))
	go func() {
		for range 10 { // drain what the speaker sends
			if _, err := e.fp.tryRecv(); err != nil {
				return
			}
		}
	}()
	b.ResetTimer()
	e.fp.sendRaw(data)
	ctx := context.Background()
	for got := 0; got < b.N; {
		evs, err := w.q.Take(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got += len(evs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkAdvertise measures the write path: a local worker publishes b.N
// VPNv4 routes, the speaker packs them into UPDATEs, the peer reads them.
func BenchmarkAdvertise(b *testing.B) {
	e := newEnv(b, false, nil)
	o := defaultOpen()
	o.families = []bgp.Family{bgp.RF_IPv4_VPN}
	e.fp.handshake(o)
	e.fp.waitEOR(1)
	w := newFakeWorker("VRF-1")
	routes := vpnRoutes(b.N)
	events := make([]route.Event, len(routes))
	for i, r := range routes {
		events[i] = route.Event{Kind: route.Advertise, Route: r}
	}
	b.ResetTimer()
	e.eng.Publish(w, events)
	updates := 0
	for got := 0; got < b.N; {
		adv, _ := reachNLRIs(e.fp.recvUpdate())
		got += len(adv)
		updates++
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
	b.ReportMetric(float64(b.N)/float64(updates), "routes/UPDATE")
}
