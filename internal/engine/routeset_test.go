package engine

import (
	"net/netip"
	"runtime"
	"testing"

	"bagpipe/internal/route"
)

func setRoute(i int) *route.Route {
	a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return &route.Route{NLRI: route.NLRI{Family: route.IPv4VPN, RD: route.RD(i % 7), Prefix: netip.PrefixFrom(a, 32)}}
}

func TestRouteSet(t *testing.T) {
	s := newRouteSet()
	const n = 10000
	for i := range n {
		s.put(setRoute(i))
	}
	if s.len() != n {
		t.Fatalf("len %d, want %d", s.len(), n)
	}
	for i := range n {
		r := setRoute(i)
		if got := s.get(&r.NLRI); got == nil || got.NLRI != r.NLRI {
			t.Fatalf("route %d: got %v", i, got)
		}
	}
	// Replacement keeps one entry per NLRI.
	r5 := setRoute(5)
	r5.Label = 99
	s.put(r5)
	if s.len() != n || s.get(&r5.NLRI) != r5 {
		t.Fatal("replacement not stored in place")
	}
	missing := setRoute(n + 1)
	if s.get(&missing.NLRI) != nil {
		t.Error("unknown NLRI found")
	}
	seen := 0
	for r := range s.all() {
		if r.NLRI.Prefix.Addr().As4()[3]%2 == 0 {
			s.remove(&r.NLRI) // removal while iterating
		}
		seen++
	}
	if seen != n || s.len() != n/2 {
		t.Errorf("iterated %d, %d left; want %d and %d", seen, s.len(), n, n/2)
	}
}

// Two NLRIs with the same hash are both kept, found and removed.
func TestRouteSetCollision(t *testing.T) {
	s := newRouteSet()
	a, b, c := setRoute(1), setRoute(2), setRoute(3)
	// Simulate a collision: a stored under b's hash.
	s.byHash[hashNLRI(&b.NLRI)] = a
	s.put(b)
	if s.extra[b.NLRI] != b || s.get(&b.NLRI) != b || s.len() != 2 {
		t.Fatalf("colliding NLRI not kept aside: extra %v", s.extra)
	}
	b2 := setRoute(2)
	s.put(b2)
	if s.get(&b2.NLRI) != b2 || s.len() != 2 {
		t.Error("replacement of a colliding NLRI")
	}
	s.put(c)
	s.remove(&b.NLRI)
	if s.get(&b.NLRI) != nil || s.extra != nil || s.len() != 2 {
		t.Errorf("removal of a colliding NLRI: extra %v, len %d", s.extra, s.len())
	}
	n := 0
	for range s.all() {
		n++
	}
	if n != 2 {
		t.Errorf("iterated %d routes, want 2", n)
	}
}

// BenchmarkRouteSetMemory reports the bytes of live heap per route of the
// set itself (routes excluded), against a map keyed by the NLRI.
func BenchmarkRouteSetMemory(b *testing.B) {
	const n = 1_000_000
	routes := make([]*route.Route, n)
	for i := range routes {
		routes[i] = setRoute(i)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for range b.N {
		before := heap()
		s := newRouteSet()
		for _, r := range routes {
			s.put(r)
		}
		b.ReportMetric(float64(heap()-before)/n, "B/route-set")
		runtime.KeepAlive(s)
		before = heap()
		m := map[route.NLRI]*route.Route{}
		for _, r := range routes {
			m[r.NLRI] = r
		}
		b.ReportMetric(float64(heap()-before)/n, "B/route-map")
		runtime.KeepAlive(m)
	}
}
