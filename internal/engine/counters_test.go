package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"bagpipe/internal/route"
)

// recount walks the route table (what Counts used to do) for comparison
// with the counters.
func recount(t *testing.T, e *Engine) (received, local int, bySource map[string]int) {
	t.Helper()
	bySource = map[string]int{}
	err := e.Inspect(context.Background(), func(v View) {
		for _, ws := range v.e.workers {
			for r := range ws.routes.All() {
				bySource[fmt.Sprintf("%s %s", ws.src.Name, r.NLRI.Family)]++
				switch {
				case r.NLRI.Family == route.RTC:
				case ws.src.Peer:
					received++
				default:
					local++
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

func checkCounters(t *testing.T, e *Engine, wantReceived, wantLocal int) {
	t.Helper()
	sync_(t, e)
	received, local, bySource := recount(t, e)
	if received != wantReceived || local != wantLocal {
		t.Fatalf("table holds %d received, %d local; want %d, %d", received, local, wantReceived, wantLocal)
	}
	gr, gl := e.RouteCounts()
	if gr != received || gl != local {
		t.Errorf("RouteCounts() = %d, %d; the table holds %d, %d", gr, gl, received, local)
	}
	var vr, vl int
	_ = e.Inspect(context.Background(), func(v View) { vr, vl = v.Counts() })
	if vr != received || vl != local {
		t.Errorf("View.Counts() = %d, %d; the table holds %d, %d", vr, vl, received, local)
	}
	got := map[string]int{}
	for _, sr := range e.StoredRoutes() {
		got[fmt.Sprintf("%s %s", sr.Source.Name, sr.Family)] += sr.Routes
	}
	if !maps.Equal(got, bySource) {
		t.Errorf("StoredRoutes() = %v; the table holds %v", got, bySource)
	}
}

func TestRouteCounters(t *testing.T) {
	e := start(t, &RTCConfig{AS: 64512, NextHop: nh})
	peer := newWorker("BGP-192.0.2.2", true)
	vrf := newWorker("VRF-1", false)
	e.Subscribe(vrf, Match{route.IPv4VPN, rt1}) // generates one RTC route
	checkCounters(t, e, 0, 0)

	e.Publish(peer, []route.Event{
		{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 16, rt1)},
		{Kind: route.Advertise, Route: vpnRoute("10.0.0.2/32", 16, rt1)},
	})
	e.Publish(vrf, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.1.0.1/32", 17, rt1)}})
	checkCounters(t, e, 2, 1)

	// A replacement, an identical re-advertisement and an unknown
	// withdrawal change nothing.
	e.Publish(peer, []route.Event{
		{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 99, rt1)},
		{Kind: route.Advertise, Route: vpnRoute("10.0.0.1/32", 99, rt1)},
		{Kind: route.Withdraw, Route: vpnRoute("10.9.9.9/32", 0)},
	})
	checkCounters(t, e, 2, 1)

	e.Publish(peer, []route.Event{{Kind: route.Withdraw, Route: vpnRoute("10.0.0.2/32", 0)}})
	checkCounters(t, e, 1, 1)

	e.Cleanup(peer)
	e.Cleanup(vrf) // its RTC route goes too
	checkCounters(t, e, 0, 0)
	if got := e.StoredRoutes(); len(got) != 0 {
		t.Errorf("StoredRoutes() after cleanup = %v", got)
	}
}

func TestStoredRoutesFamiliesAndRTC(t *testing.T) {
	e := start(t, &RTCConfig{AS: 64512, NextHop: nh})
	vrf := newWorker("VRF-1", false)
	e.Subscribe(vrf, Match{route.IPv4VPN, rt1})
	e.Subscribe(vrf, Match{route.IPv4VPN, rt2})
	e.Publish(vrf, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.1.0.1/32", 17, rt1)}})
	sync_(t, e)
	var got []string
	for _, sr := range e.StoredRoutes() {
		got = append(got, fmt.Sprintf("%s %s %d", sr.Source.Name, sr.Family, sr.Routes))
	}
	slices.Sort(got)
	want := []string{"BGPManager ipv4/rtc 2", "VRF-1 ipv4/mpls-vpn 1"}
	if !slices.Equal(got, want) {
		t.Errorf("StoredRoutes() = %q, want %q", got, want)
	}
	if l := e.QueueLength(); l != 0 {
		t.Errorf("QueueLength() = %d on an idle engine", l)
	}
	if c := e.QueueCapacity(); c <= 0 {
		t.Errorf("QueueCapacity() = %d", c)
	}
}
