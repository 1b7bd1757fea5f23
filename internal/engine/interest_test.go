package engine

import (
	"testing"

	"bagpipe/internal/route"
)

// Routes sharing one *route.Attrs use the engine's cache of interested
// workers: it must follow subscription changes.
func TestSharedAttrsFollowSubscriptions(t *testing.T) {
	e := start(t, nil)
	peer := newWorker("BGP-1", true)
	a := newWorker("VRF-1", false)
	b := newWorker("VRF-2", false)
	e.Subscribe(a, Match{Family: route.IPv4VPN, RT: rt1})
	attrs := &route.Attrs{RTs: []route.RT{rt1}}
	mk := func(prefix string) *route.Route {
		r := vpnRoute(prefix, 16, rt1)
		r.Attrs = attrs
		return r
	}
	e.Publish(peer, []route.Event{{Kind: route.Advertise, Route: mk("10.0.0.1/32")}})
	sync_(t, e)
	expect(t, a, "advertise 10.0.0.1/32")
	// A new subscriber gets the stored route (replay) and the next ones.
	e.Subscribe(b, Match{Family: route.IPv4VPN, RT: rt1})
	e.Publish(peer, []route.Event{{Kind: route.Advertise, Route: mk("10.0.0.2/32")}})
	sync_(t, e)
	expect(t, a, "advertise 10.0.0.2/32")
	expect(t, b, "advertise 10.0.0.1/32", "advertise 10.0.0.2/32")
	// An unsubscribed worker gets nothing more.
	e.Unsubscribe(a, Match{Family: route.IPv4VPN, RT: rt1})
	sync_(t, e)
	a.take()
	e.Publish(peer, []route.Event{
		{Kind: route.Advertise, Route: mk("10.0.0.3/32")},
		{Kind: route.Withdraw, Route: mk("10.0.0.1/32")},
	})
	sync_(t, e)
	expect(t, a)
	expect(t, b, "advertise 10.0.0.3/32", "withdraw 10.0.0.1/32")
	// A replacement with other attributes reaches both the workers of the
	// new route (advertise) and those of the old one only (withdraw).
	e.Subscribe(a, Match{Family: route.IPv4VPN, RT: rt2})
	e.Publish(peer, []route.Event{{Kind: route.Advertise, Route: vpnRoute("10.0.0.2/32", 17, rt2)}})
	sync_(t, e)
	expect(t, a, "advertise 10.0.0.2/32 (replaces)")
	expect(t, b, "withdraw 10.0.0.2/32")
}
