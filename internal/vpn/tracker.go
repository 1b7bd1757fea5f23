package vpn

import (
	"cmp"
	"net/netip"
	"slices"

	"bagpipe/internal/hashindex"
	"bagpipe/internal/route"
)

// entryKey groups the routes competing for one destination of an instance:
// a VRF tracks prefixes and flows, an EVI tracks MAC/IP routes per (MAC, IP)
// and multicast routes per (originator, RD).
type entryKey struct {
	family route.Family
	typ    uint8
	mac    route.MAC
	prefix netip.Prefix // VPNv4: the prefix; EVPN: the IP as a host prefix
	rd     route.RD
	flow   string
}

// entry holds the candidate routes of a destination and the best ones.
// Most destinations have a single route: the arrays hold it, so that an
// entry is one allocation.
type entry struct {
	candidates []*route.Route
	best       []*route.Route
	oneCand    [1]*route.Route
	oneBest    [1]*route.Route
}

// bestCallbacks receives best path changes.
type bestCallbacks interface {
	newBest(k entryKey, r *route.Route)
	bestRemoved(k entryKey, r *route.Route, last bool)
}

// tracker selects best routes per destination (spec §5.6): the highest
// LOCAL_PREF wins; with ECMP every route of that preference is best,
// otherwise ties are broken deterministically. Routes equivalent for the
// dataplane (same NLRI, label, next hop and attributes, from any source —
// e.g. the same route reflected by two route reflectors) are reported once.
type tracker struct {
	ecmp    bool
	entries hashindex.Index[entryKey, entry] // by destination (of the first candidate)
	cb      bestCallbacks
	// received counts the candidate routes per family (metrics).
	received [route.FlowVPN + 1]int
}

func newTracker(ecmp bool, cb bestCallbacks) *tracker {
	return &tracker{ecmp: ecmp, entries: hashindex.New(entryDestination), cb: cb}
}

// entryDestination is the destination of a tracked entry: every entry
// stored has at least one candidate, and all its candidates have the same
// destination.
func entryDestination(e *entry) entryKey { return destination(&e.candidates[0].NLRI) }

// equivalent compares what the dataplane sees of two routes.
func equivalent(a, b *route.Route) bool {
	return a.NLRI == b.NLRI && route.SameContent(a, b)
}

func containsEquivalent(list []*route.Route, r *route.Route) bool {
	return slices.ContainsFunc(list, func(x *route.Route) bool { return equivalent(x, r) })
}

// tieOrder orders routes of equal preference deterministically.
func tieOrder(a, b *route.Route) int {
	if c := a.NextHop.Compare(b.NextHop); c != 0 {
		return c
	}
	if c := cmp.Compare(a.NLRI.RD, b.NLRI.RD); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Label, b.Label); c != 0 {
		return c
	}
	return cmp.Compare(a.Source.Name, b.Source.Name)
}

// selectBest returns the best routes of e's candidates, in e.oneBest when
// there is one.
func (t *tracker) selectBest(e *entry) []*route.Route {
	cands := e.candidates
	if len(cands) == 0 {
		return nil
	}
	var maxLP uint32
	n := 0
	var first *route.Route
	for _, r := range cands {
		switch lp := r.LocalPref(); {
		case n == 0 || lp > maxLP:
			maxLP, n, first = lp, 1, r
		case lp == maxLP:
			n++
		}
	}
	if n == 1 {
		e.oneBest[0] = first
		return e.oneBest[:]
	}
	best := make([]*route.Route, 0, n)
	for _, r := range cands {
		if r.LocalPref() == maxLP {
			best = append(best, r)
		}
	}
	if !t.ecmp {
		e.oneBest[0] = slices.MinFunc(best, tieOrder)
		return e.oneBest[:]
	}
	return best
}

// update applies an event for the destination k.
func (t *tracker) update(k entryKey, ev route.Event) {
	e := t.entries.Get(k)
	if e == nil {
		if ev.Kind == route.Withdraw {
			return
		}
		e = &entry{}
		e.oneCand[0] = ev.Route
		e.candidates = e.oneCand[:1]
		t.entries.Put(e) // stored with its first candidate: its key is k
		e.candidates = e.candidates[:0]
	}
	before := len(e.candidates)
	if ev.Kind == route.Advertise {
		if ev.Replaced != nil {
			e.candidates = removeRoute(e.candidates, ev.Replaced)
		}
		e.candidates = append(e.candidates, ev.Route)
	} else {
		e.candidates = removeRoute(e.candidates, ev.Route)
	}
	if int(k.family) < len(t.received) {
		t.received[k.family] += len(e.candidates) - before
	}
	old := e.best
	var oldOne [1]*route.Route
	if len(old) == 1 {
		// e.best may be e.oneBest, which selectBest overwrites.
		oldOne[0] = old[0]
		old = oldOne[:]
	}
	e.best = t.selectBest(e)
	// New best routes are announced before old ones are removed, so the
	// dataplane never goes through an empty state on a change of best path.
	for _, r := range e.best {
		if !containsEquivalent(old, r) {
			t.cb.newBest(k, r)
		}
	}
	last := len(e.candidates) == 0
	for _, r := range old {
		if !containsEquivalent(e.best, r) {
			t.cb.bestRemoved(k, r, last)
		}
	}
	if last {
		t.entries.DeleteObject(k, e)
	}
}

// removeRoute removes r (by identity, else by source and NLRI) from list.
func removeRoute(list []*route.Route, r *route.Route) []*route.Route {
	i := slices.Index(list, r)
	if i < 0 {
		i = slices.IndexFunc(list, func(x *route.Route) bool { return x.Source == r.Source && x.NLRI == r.NLRI })
	}
	if i < 0 {
		return list
	}
	return slices.Delete(list, i, i+1)
}

// clear reports every best route as removed (instance stop) and forgets all.
func (t *tracker) clear() {
	for e := range t.entries.All() {
		k := entryDestination(e)
		for _, r := range e.best {
			t.cb.bestRemoved(k, r, true)
		}
	}
	t.entries.Clear()
	t.received = [len(t.received)]int{}
}
