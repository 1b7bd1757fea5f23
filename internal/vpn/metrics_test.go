package vpn

import (
	"testing"

	"bagpipe/internal/route"
)

func TestTrackerCountsReceivedRoutes(t *testing.T) {
	tr := newTracker(false, &recorder{})
	a := vpnRoute(peerA, 1, "10.1.0.1", 100)
	b := vpnRoute(peerB, 2, "10.1.0.2", 100)
	check := func(want int) {
		t.Helper()
		if got := tr.received[route.IPv4VPN]; got != want {
			t.Fatalf("received ipv4/mpls-vpn = %d, want %d", got, want)
		}
	}
	tr.update(key1, adv(a))
	tr.update(key1, adv(b))
	check(2)
	a2 := vpnRoute(peerA, 1, "10.1.0.3", 100)
	tr.update(key1, route.Event{Kind: route.Advertise, Route: a2, Replaced: a})
	check(2)
	tr.update(key1, wd(vpnRoute(peerA, 9, "10.9.9.9", 0))) // unknown
	check(2)
	tr.update(key1, wd(a2))
	check(1)
	tr.clear()
	check(0)
}
