package vpn

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"bagpipe/internal/route"
)

type recorder struct{ calls []string }

func (r *recorder) newBest(k entryKey, rt *route.Route) {
	r.calls = append(r.calls, fmt.Sprintf("new %s", rt.NextHop))
}
func (r *recorder) bestRemoved(k entryKey, rt *route.Route, last bool) {
	r.calls = append(r.calls, fmt.Sprintf("removed %s last=%v", rt.NextHop, last))
}

var (
	peerA = &route.Source{Name: "BGP-a", Peer: true}
	peerB = &route.Source{Name: "BGP-b", Peer: true}
	key1  = entryKey{family: route.IPv4VPN, prefix: netip.MustParsePrefix("10.0.0.1/32")}
)

func vpnRoute(src *route.Source, rd uint16, nh string, lp uint32) *route.Route {
	a := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}}
	if lp != 0 {
		a.LocalPref, a.HasLocalPref = lp, true
	}
	return &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(netip.MustParseAddr(nh), rd), Prefix: netip.MustParsePrefix("10.0.0.1/32")},
		Label:   100,
		NextHop: netip.MustParseAddr(nh),
		Attrs:   a,
		Source:  src,
	}
}

func adv(r *route.Route) route.Event { return route.Event{Kind: route.Advertise, Route: r} }
func wd(r *route.Route) route.Event  { return route.Event{Kind: route.Withdraw, Route: r} }

func TestTrackerMaxLocalPrefIsBest(t *testing.T) {
	rec := &recorder{}
	tr := newTracker(true, rec)
	low := vpnRoute(peerA, 1, "10.1.0.1", 100)
	high := vpnRoute(peerA, 2, "10.1.0.2", 200)
	tr.update(key1, adv(low))
	tr.update(key1, adv(high))
	want := []string{"new 10.1.0.1", "new 10.1.0.2", "removed 10.1.0.1 last=false"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls %v, want %v", rec.calls, want)
	}
	// Withdrawing the best makes the other best again, before removal.
	rec.calls = nil
	tr.update(key1, wd(high))
	want = []string{"new 10.1.0.1", "removed 10.1.0.2 last=false"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls %v, want %v", rec.calls, want)
	}
	rec.calls = nil
	tr.update(key1, wd(low))
	want = []string{"removed 10.1.0.1 last=true"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls %v, want %v", rec.calls, want)
	}
	if tr.entries.Len() != 0 {
		t.Fatal("entry not forgotten")
	}
}

func TestTrackerECMPKeepsEqualPaths(t *testing.T) {
	rec := &recorder{}
	tr := newTracker(true, rec)
	a := vpnRoute(peerA, 1, "10.1.0.1", 0)
	b := vpnRoute(peerA, 2, "10.1.0.2", 0)
	tr.update(key1, adv(a))
	tr.update(key1, adv(b))
	if got := len(tr.entries.Get(key1).best); got != 2 {
		t.Fatalf("ECMP best set has %d routes, want 2", got)
	}
	want := []string{"new 10.1.0.1", "new 10.1.0.2"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls %v, want %v", rec.calls, want)
	}
}

func TestTrackerNoECMPSingleDeterministicBest(t *testing.T) {
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		rec := &recorder{}
		tr := newTracker(false, rec)
		rs := []*route.Route{vpnRoute(peerA, 1, "10.1.0.1", 0), vpnRoute(peerA, 2, "10.1.0.2", 0)}
		tr.update(key1, adv(rs[order[0]]))
		tr.update(key1, adv(rs[order[1]]))
		best := tr.entries.Get(key1).best
		if len(best) != 1 || best[0].NextHop.String() != "10.1.0.1" {
			t.Fatalf("order %v: best %v, want the single lowest next hop", order, best)
		}
	}
}

func TestTrackerEquivalentRoutesFromTwoPeersReportedOnce(t *testing.T) {
	rec := &recorder{}
	tr := newTracker(true, rec)
	viaA := vpnRoute(peerA, 1, "10.1.0.1", 0)
	viaB := vpnRoute(peerB, 1, "10.1.0.1", 0)
	tr.update(key1, adv(viaA))
	tr.update(key1, adv(viaB))
	tr.update(key1, wd(viaA))
	want := []string{"new 10.1.0.1"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls %v, want %v (one setup, no removal while B still has it)", rec.calls, want)
	}
	tr.update(key1, wd(viaB))
	if rec.calls[len(rec.calls)-1] != "removed 10.1.0.1 last=true" {
		t.Fatalf("calls %v", rec.calls)
	}
}

func TestTrackerReplacement(t *testing.T) {
	rec := &recorder{}
	tr := newTracker(true, rec)
	first := vpnRoute(peerA, 1, "10.1.0.1", 0)
	second := vpnRoute(peerA, 1, "10.1.0.9", 0) // same source and NLRI, new next hop
	tr.update(key1, adv(first))
	tr.update(key1, route.Event{Kind: route.Advertise, Route: second, Replaced: first})
	want := []string{"new 10.1.0.1", "new 10.1.0.9", "removed 10.1.0.1 last=false"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls %v, want %v", rec.calls, want)
	}
	if n := len(tr.entries.Get(key1).candidates); n != 1 {
		t.Fatalf("%d candidates after replacement, want 1", n)
	}
}

func TestTrackerUnknownWithdrawIgnored(t *testing.T) {
	rec := &recorder{}
	tr := newTracker(true, rec)
	tr.update(key1, wd(vpnRoute(peerA, 1, "10.1.0.1", 0)))
	if len(rec.calls) != 0 || tr.entries.Len() != 0 {
		t.Fatalf("unknown withdraw had effects: %v", rec.calls)
	}
}
