package api

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"bagpipe/internal/bgp"
	"bagpipe/internal/engine"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/route"
)

// engineSourceName is the name of the source of the RTC routes the engine
// generates; it is not a worker of the workers collection.
const engineSourceName = "BGPManager"

// routeDumpFamilies are the families of the bgp/routes dump, in the
// reference's order.
var routeDumpFamilies = []route.Family{route.IPv4VPN, route.EVPN, route.RTC, route.FlowVPN}

// bgpObject is /looking-glass/bgp, the BGP manager.
func (s *Server) bgpObject() lookingglass.Object {
	return lookingglass.Entries{
		{Name: "peers", Kind: lookingglass.Collection, List: s.peerItems, Lookup: s.peerLookup},
		{Name: "routes", Kind: lookingglass.SubTree, Value: s.routeDump},
		{Name: "workers", Kind: lookingglass.Collection, List: s.workerItems, Lookup: s.workerLookup},
		{Name: "route_counts", Kind: lookingglass.SubItem, Value: func() any {
			counts, err := s.routeCounts()
			if err != nil {
				return err
			}
			return counts
		}},
		{Name: "adv_routes", Kind: lookingglass.SubTree, Value: func() any {
			var rs []*route.Route
			if err := s.inspect(func(v engine.View) { rs = v.GeneratedRTC() }); err != nil {
				return err
			}
			lookingglass.SortRoutes(rs)
			return lookingglass.Routes(rs)
		}},
	}
}

// routeDump is bgp/routes: every stored route by family. Route pointers are
// copied on the engine goroutine; sorting and formatting happen here and
// while encoding.
func (s *Server) routeDump() any {
	// On the engine goroutine, only the route pointers are copied, source
	// by source, without reading the routes (which would cost a cache miss
	// per route): grouping by family, sorting and formatting happen here
	// and while encoding.
	var perSource [][]*route.Route
	total := 0
	err := s.inspect(func(v engine.View) {
		for _, wi := range v.Workers() {
			rs := v.RoutesOf(wi.Worker)
			perSource = append(perSource, rs)
			total += len(rs)
		}
	})
	if err != nil {
		return err
	}
	var byFamily [route.FlowVPN + 1][]*route.Route
	for _, rs := range perSource {
		for _, r := range rs {
			if f := r.NLRI.Family; f < route.Family(len(byFamily)) {
				if byFamily[f] == nil {
					byFamily[f] = make([]*route.Route, 0, total)
				}
				byFamily[f] = append(byFamily[f], r)
			}
		}
	}
	out := make(lookingglass.Dict, 0, len(routeDumpFamilies))
	for _, f := range routeDumpFamilies {
		rs := byFamily[f]
		lookingglass.SortRoutes(rs)
		out = append(out, lookingglass.KV{Key: f.String() + ",*", Value: lookingglass.Routes(rs)})
	}
	return out
}

func (s *Server) peerItems() []lookingglass.Item {
	peers := s.peers()
	items := make([]lookingglass.Item, 0, len(peers))
	for _, p := range peers {
		items = append(items, lookingglass.Item{ID: p.PeerAddress.String(), Fields: map[string]any{"state": p.Protocol.State.String()}})
	}
	return items
}

func (s *Server) peerLookup(id string) (lookingglass.Object, bool) {
	for _, p := range s.peers() {
		if p.PeerAddress.String() == id {
			return s.peerObject(p), true
		}
	}
	return nil, false
}

// peerObject is a peer worker (spec §4.3), from a status snapshot.
func (s *Server) peerObject(p bgp.PeerStatus) lookingglass.Object {
	constant := func(name string, v any) lookingglass.Entry {
		return lookingglass.Entry{Name: name, Kind: lookingglass.Value, Value: func() any { return v }}
	}
	families := nonNil(p.Families)
	return lookingglass.Entries{
		constant("peeringAddresses", lookingglass.Dict{
			{Key: "peer_address", Value: addrString(p.PeerAddress)},
			{Key: "local_address", Value: addrString(p.LocalAddress)},
		}),
		constant("as_info", lookingglass.Dict{{Key: "local", Value: p.LocalAS}, {Key: "peer", Value: p.PeerAS}}),
		constant("rtc", lookingglass.Dict{{Key: "active", Value: p.RTC.Active}, {Key: "enabled", Value: p.RTC.Enabled}}),
		constant("active_families", families),
		constant("protocol", lookingglass.Dict{
			{Key: "state", Value: p.Protocol.State.String()},
			{Key: "previous_state", Value: "(" + p.Protocol.PreviousState.String() + ")"},
			{Key: "hold_time", Value: p.Protocol.HoldTime},
			{Key: "last_transition_time", Value: formatTime(p.Protocol.LastTransitionTime)},
		}),
		constant("name", p.Name),
		s.internalsEntry(p.Worker, p.QueueLength),
		s.advRoutesEntry(p.Worker),
		s.logsEntry(p.Name),
		// Keys the reference does not have, after all of its own.
		constant("graceful_restart", gracefulRestartDict(p.GracefulRestart, p.Stats.StaleRoutesWithdrawn)),
		s.maxPrefixesEntry(p),
		constant("tcp_md5", lookingglass.Dict{{Key: "configured", Value: p.MD5}}),
	}
}

// gracefulRestartDict is the graceful restart state of a peer: whether we
// announce the capability and both sides did in the current (or last)
// session, the Restart Time and the families the peer announced, the
// stale routes kept and withdrawn, the families whose End-of-RIB the peer
// sent in the session, and whether it sent all of them once.
func gracefulRestartDict(gr bgp.GRStatus, staleWithdrawn uint64) lookingglass.Dict {
	return lookingglass.Dict{
		{Key: "enabled", Value: gr.Enabled},
		{Key: "negotiated", Value: gr.Negotiated},
		{Key: "peer_restart_time", Value: gr.PeerRestartTime},
		{Key: "peer_families", Value: nonNil(gr.PeerFamilies)},
		{Key: "stale_routes", Value: gr.StaleRoutes},
		{Key: "stale_routes_withdrawn", Value: staleWithdrawn},
		{Key: "end_of_rib_received", Value: nonNil(gr.EndOfRIB)},
		{Key: "synced", Value: gr.Synced},
	}
}

// maxPrefixesEntry shows the limit of routes from the peer (null: none),
// the routes it counts (those the engine stores from the peer, every
// family) and how many sessions were closed for exceeding it.
func (s *Server) maxPrefixesEntry(p bgp.PeerStatus) lookingglass.Entry {
	return lookingglass.Entry{Name: "max_prefixes", Kind: lookingglass.SubItem, Value: func() any {
		routes := 0
		if p.Worker != nil {
			err := s.inspect(func(v engine.View) {
				for _, wi := range v.Workers() {
					if wi.Worker == p.Worker {
						routes = wi.Routes
						return
					}
				}
			})
			if err != nil {
				return err
			}
		}
		var limit any
		if p.MaxPrefixes > 0 {
			limit = p.MaxPrefixes
		}
		return lookingglass.Dict{
			{Key: "limit", Value: limit},
			{Key: "routes", Value: routes},
			{Key: "exceeded", Value: p.Stats.MaxPrefixesExceeded},
		}
	}}
}

// nonNil shows a nil list as [].
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// workerItems lists the engine workers (VPN instances, established peers).
func (s *Server) workerItems() []lookingglass.Item {
	var names []string
	_ = s.inspect(func(v engine.View) {
		for _, wi := range v.Workers() {
			if wi.Source.Name != engineSourceName {
				names = append(names, wi.Source.Name)
			}
		}
	})
	slices.SortFunc(names, compareWorkerNames)
	items := make([]lookingglass.Item, len(names))
	for i, n := range names {
		items[i] = lookingglass.Item{ID: n}
	}
	return items
}

// compareWorkerNames orders VPN instances ("VRF-3", "EVI-2") by their
// instance number, that is by creation as the reference lists them, then
// the other workers (peers) by name.
func compareWorkerNames(a, b string) int {
	na, oka := instanceNumber(a)
	nb, okb := instanceNumber(b)
	switch {
	case oka && okb && na != nb:
		return cmp.Compare(na, nb)
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// instanceNumber returns n for a worker named "<TYPE>-<n>".
func instanceNumber(name string) (uint64, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	return n, err == nil
}

// workerLookup returns the object of a worker: its own looking glass when
// it has one, the peer object for a BGP peer, else a generic object.
func (s *Server) workerLookup(name string) (lookingglass.Object, bool) {
	var found *engine.WorkerInfo
	_ = s.inspect(func(v engine.View) {
		for _, wi := range v.Workers() {
			if wi.Source.Name == name {
				found = &wi
				return
			}
		}
	})
	if found == nil {
		return nil, false
	}
	// Called outside Inspect: a worker's looking glass may read the engine.
	if o, ok := found.Worker.(lookingglass.Object); ok {
		return o, true
	}
	if found.Source.Peer {
		for _, p := range s.peers() {
			if p.Name == name {
				return s.peerObject(p), true
			}
		}
	}
	return lookingglass.Entries{
		{Name: "name", Kind: lookingglass.Value, Value: func() any { return name }},
		s.internalsEntry(found.Worker, -1),
		s.advRoutesEntry(found.Worker),
		s.logsEntry(name),
	}, true
}

// internalsEntry shows the subscriptions of w (and the event queue length
// when known, >= 0).
func (s *Server) internalsEntry(w engine.Worker, queue int) lookingglass.Entry {
	return lookingglass.Entry{Name: "internals", Kind: lookingglass.SubItem, Value: func() any {
		var subs []engine.Match
		if w != nil {
			if err := s.inspect(func(v engine.View) { subs = v.Subscriptions(w) }); err != nil {
				return err
			}
		}
		texts := make([]string, len(subs))
		for i, m := range subs {
			texts[i] = m.String()
		}
		slices.Sort(texts)
		d := lookingglass.Dict{}
		if queue >= 0 {
			d = append(d, lookingglass.KV{Key: "event queue length", Value: queue})
		}
		return append(d, lookingglass.KV{Key: "subscriptions", Value: texts})
	}}
}

// advRoutesEntry shows the routes w published (for a peer: the routes
// received from it).
func (s *Server) advRoutesEntry(w engine.Worker) lookingglass.Entry {
	return lookingglass.Entry{Name: "adv_routes", Kind: lookingglass.SubTree, Value: func() any {
		var rs []*route.Route
		if w != nil {
			if err := s.inspect(func(v engine.View) { rs = v.RoutesOf(w) }); err != nil {
				return err
			}
		}
		lookingglass.SortRoutes(rs)
		return lookingglass.Routes(rs)
	}}
}

// logsEntry shows the warnings and errors of a worker.
func (s *Server) logsEntry(worker string) lookingglass.Entry {
	return lookingglass.Entry{Name: "logs", Kind: lookingglass.SubTree, Value: func() any {
		if s.cfg.Logs == nil {
			return []any{}
		}
		return s.cfg.Logs.WorkerLogs(worker)
	}}
}

// addrString formats an address, null when unknown.
func addrString(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

// formatTime formats a time as the reference does ("2006-01-02 15:04:05",
// local time), null when unknown.
func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
