package engine

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"bagpipe/internal/route"
)

type worker struct {
	src    route.Source
	mu     sync.Mutex
	events []route.Event
}

func newWorker(name string, peer bool) *worker {
	return &worker{src: route.Source{Name: name, Peer: peer}}
}
func (w *worker) Source() *route.Source { return &w.src }
func (w *worker) Deliver(evs []route.Event) {
	w.mu.Lock()
	w.events = append(w.events, evs...)
	w.mu.Unlock()
}
func (w *worker) take() []route.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	ev := w.events
	w.events = nil
	return ev
}

var (
	rt1 = route.MustParseRT("64512:1")
	rt2 = route.MustParseRT("64512:2")
	nh  = netip.MustParseAddr("192.0.2.1")
)

func vpnRoute(prefix string, label uint32, rts ...route.RT) *route.Route {
	return &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(nh, 1), Prefix: netip.MustParsePrefix(prefix)},
		Label:   label,
		NextHop: nh,
		Attrs:   &route.Attrs{RTs: rts},
	}
}

func start(t *testing.T, rtc *RTCConfig) *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := New(nil, rtc)
	go e.Run(ctx)
	return e
}

func sync_(t *testing.T, e *Engine) {
	t.Helper()
	if err := e.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func kinds(evs []route.Event) []string {
	var out []string
	for _, ev := range evs {
		s := ev.Kind.String() + " " + ev.Route.NLRI.Prefix.String()
		if ev.Replaced != nil {
			s += " (replaces)"
		}
		out = append(out, s)
	}
	return out
}

func expect(t *testing.T, w *worker, want ...string) {
	t.Helper()
	got := kinds(w.take())
	if len(got) != len(want) {
		t.Fatalf("%s got %v, want %v", w.src.Name, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s got %v, want %v", w.src.Name, got, want)
		}
	}
}

func TestDispatchByRouteTarget(t *testing.T) {
	e := start(t, nil)
	src, a, b := newWorker("VRF-1", false), newWorker("VRF-2", false), newWorker("VRF-3", false)
	e.Subscribe(a, Match{route.IPv4VPN, rt1})
	e.Subscribe(b, Match{route.IPv4VPN, rt2})
	e.Publish(src, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 16, rt1)}})
	sync_(t, e)
	expect(t, a, "advertise 10.0.0.1/32")
	expect(t, b)
	expect(t, src) // never back to the source
}

func TestSubscriptionReplaysStoredRoutesOnce(t *testing.T) {
	e := start(t, nil)
	src, w := newWorker("VRF-1", false), newWorker("VRF-2", false)
	e.Publish(src, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 16, rt1, rt2)}})
	e.Subscribe(w, Match{route.IPv4VPN, rt1})
	sync_(t, e)
	expect(t, w, "advertise 10.0.0.1/32")
	// Already covered by the rt1 subscription: no second replay.
	e.Subscribe(w, Match{route.IPv4VPN, rt2})
	sync_(t, e)
	expect(t, w)
	// Still covered by rt2: no withdrawal.
	e.Unsubscribe(w, Match{route.IPv4VPN, rt1})
	sync_(t, e)
	expect(t, w)
	e.Unsubscribe(w, Match{route.IPv4VPN, rt2})
	sync_(t, e)
	expect(t, w, "withdraw 10.0.0.1/32")
}

func TestNoPeerToPeer(t *testing.T) {
	e := start(t, nil)
	p1, p2, local := newWorker("BGP-a", true), newWorker("BGP-b", true), newWorker("VRF-1", false)
	e.Subscribe(p2, Match{Family: route.IPv4VPN})
	e.Subscribe(local, Match{route.IPv4VPN, rt1})
	e.Publish(p1, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 16, rt1)}})
	sync_(t, e)
	expect(t, p2)
	expect(t, local, "advertise 10.0.0.1/32")
}

func TestReplacementAndSynthesizedWithdraw(t *testing.T) {
	e := start(t, nil)
	src, a, b := newWorker("BGP-a", true), newWorker("VRF-1", false), newWorker("VRF-2", false)
	e.Subscribe(a, Match{route.IPv4VPN, rt1})
	e.Subscribe(b, Match{route.IPv4VPN, rt2})
	e.Publish(src, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 16, rt1)}})
	sync_(t, e)
	a.take()
	// Same NLRI, new RT: a loses it, b gets it as a replacement.
	e.Publish(src, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 17, rt2)}})
	sync_(t, e)
	expect(t, a, "withdraw 10.0.0.1/32")
	expect(t, b, "advertise 10.0.0.1/32 (replaces)")
	// Identical re-advertisement is ignored.
	e.Publish(src, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 17, rt2)}})
	sync_(t, e)
	expect(t, b)
	// Withdrawal carries the stored route.
	e.Publish(src, []route.Event{{Kind: route.Withdraw, Route: &route.Route{NLRI: vpnRoute("10.0.0.1/32", 0).NLRI}}})
	sync_(t, e)
	evs := b.take()
	if len(evs) != 1 || evs[0].Kind != route.Withdraw || evs[0].Route.Label != 17 {
		t.Fatalf("withdrawal %v", evs)
	}
	// Unknown withdrawal: nothing.
	e.Publish(src, []route.Event{{Kind: route.Withdraw, Route: vpnRoute("10.9.9.9/32", 0)}})
	sync_(t, e)
	expect(t, a)
	expect(t, b)
}

func TestRTCRoutesFollowLocalSubscriptions(t *testing.T) {
	e := start(t, &RTCConfig{AS: 4200000001, NextHop: nh})
	peer, vrf, evi := newWorker("BGP-rr", true), newWorker("VRF-1", false), newWorker("EVI-1", false)
	e.Subscribe(peer, Match{Family: route.RTC})
	e.Subscribe(vrf, Match{route.IPv4VPN, rt1})
	e.Subscribe(vrf, Match{route.FlowVPN, rt2}) // flow-vpn makes no RTC route
	e.Subscribe(evi, Match{route.EVPN, rt1})    // same RT: one RTC route
	sync_(t, e)
	evs := peer.take()
	if len(evs) != 1 || evs[0].Route.NLRI.Family != route.RTC || evs[0].Route.NLRI.Target != rt1 || evs[0].Route.NLRI.Origin != 4200000001 {
		t.Fatalf("RTC events %v", evs)
	}
	// Peer subscriptions never generate RTC routes.
	e.Subscribe(peer, Match{route.IPv4VPN, rt2})
	sync_(t, e)
	if evs := peer.take(); len(evs) != 0 {
		t.Fatalf("peer subscription generated %v", evs)
	}
	e.Unsubscribe(vrf, Match{route.IPv4VPN, rt1})
	sync_(t, e)
	if evs := peer.take(); len(evs) != 0 {
		t.Fatalf("RTC withdrawn while the EVI still imports rt1: %v", evs)
	}
	e.Cleanup(evi)
	sync_(t, e)
	evs = peer.take()
	if len(evs) != 1 || evs[0].Kind != route.Withdraw || evs[0].Route.NLRI.Target != rt1 {
		t.Fatalf("RTC withdrawal %v", evs)
	}
}

func TestCleanupWithdrawsRoutesOfWorker(t *testing.T) {
	e := start(t, nil)
	peer, vrf := newWorker("BGP-rr", true), newWorker("VRF-1", false)
	e.Subscribe(vrf, Match{route.IPv4VPN, rt1})
	e.Publish(peer, []route.Event{
		{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 16, rt1)},
		{Kind: route.Advertise, Route: vpnRoute("10.0.0.2/32", 17, rt1)},
	})
	sync_(t, e)
	if n := len(vrf.take()); n != 2 {
		t.Fatalf("got %d events in one batch, want 2", n)
	}
	e.Cleanup(peer)
	sync_(t, e)
	if n := len(vrf.take()); n != 2 {
		t.Fatalf("got %d withdrawals, want 2", n)
	}
	var received, local int
	_ = e.Inspect(context.Background(), func(v View) { received, local = v.Counts() })
	if received != 0 || local != 0 {
		t.Fatalf("counts after cleanup %d/%d", received, local)
	}
}

func TestMatchString(t *testing.T) {
	if s := (Match{route.IPv4VPN, rt1}).String(); s != "match:ipv4/mpls-vpn,target:64512:1" {
		t.Fatal(s)
	}
	if s := (Match{Family: route.RTC}).String(); s != "match:ipv4/rtc,*" {
		t.Fatal(s)
	}
}
