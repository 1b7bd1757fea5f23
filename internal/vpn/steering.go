package vpn

import (
	"net/netip"
	"slices"
	"sync"

	"bagpipe/internal/route"
)

// Traffic steering, the VRF side that advertises (spec §6.7, §6.8):
//
//   - Route leaking ("readvertise"): a received VPNv4 best route carrying
//     one of from_rt, and none of to_rt (nor, with attract_traffic, of
//     redirect_rts) among its RT-Records, is re-advertised once per local
//     endpoint forwarding to its port: same prefix, the endpoint's RD,
//     port label and next hop, RTs = to_rt, RT-Records = the route's
//     RT-Records plus its RTs, the port's consistent hash order and the
//     endpoint's local_pref when it has one.
//   - Attract traffic: instead of the prefixes, a default route 0.0.0.0/0
//     per endpoint (while there is something to attract) and, per
//     re-advertised or static destination prefix P, a Flowspec-VPN route
//     "classifier with destination P" (RD of the instance, RTs =
//     redirect_rts, redirect to to_rt[0]); received Flowspec routes to
//     re-advertise are copied (RD of the instance, RTs = to_rt, RT-Records,
//     redirect to redirect_rts[0]). These routes exist while the VRF has an
//     endpoint to deliver the attracted traffic to.
//
// The state lives under steering.mu, a leaf lock taken by plug/unplug
// (under Instance.mu) and by the best path callbacks (under Instance.trMu).
// Every route it generates goes through one queue published in order, so
// the engine sees advertisements and withdrawals in the order they were
// decided. Work per event is proportional to what changes: a received
// route costs one route per endpoint, a new endpoint one route per
// re-advertised prefix; nothing scans all routes.

// epParams are the endpoint properties that go into generated attributes.
type epParams struct {
	order uint32 // lb_consistent_hash_order of the port
	lp    uint32
	hasLP bool
}

// genAttrs are the attributes generated from one received *route.Attrs
// (routes of one UPDATE share them, so their re-advertisements share
// theirs, and the BGP writer packs them in one UPDATE).
type genAttrs struct {
	base    *route.Attrs
	refs    int
	records []route.RT // RT-Records: the received ones plus the received RTs
	byEP    map[epParams]*route.Attrs
	flow    *route.Attrs // attract: re-advertised Flowspec route
}

// readv is a received destination (VPNv4 prefix or Flowspec rule) being
// re-advertised: its best routes to re-advertise, the latest last.
type readv struct {
	routes []*route.Route
	gen    *genAttrs
}

// attractPrefix is a destination prefix for which a Flowspec route is
// advertised: re-advertised and/or static.
type attractPrefix struct {
	refs int
	flow string // the Flowspec rule; "" when it cannot be encoded
}

type steering struct {
	inst    *Instance
	fromRTs []route.RT
	toRTs   []route.RT // effective to_rt (exactly one with attract_traffic)
	loopRTs []route.RT // RT-Records that stop a re-advertisement

	// attract_traffic (attract false: route leaking only)
	attract     bool
	redirectRTs []route.RT
	match       route.Classifier
	static      []netip.Prefix
	flowAttrs   *route.Attrs // Flowspec routes for prefixes

	mu       sync.Mutex
	stopped  bool
	pending  []route.Event
	eps      map[*endpoint]epParams // with the parameters in their routes
	params   map[epParams]int       // endpoints per parameters
	prefixes map[netip.Prefix]*readv
	flows    map[string]*readv
	gens     map[*route.Attrs]*genAttrs
	defAttrs map[epParams]*route.Attrs
	attracts map[netip.Prefix]*attractPrefix
	// own counts the attract prefixes generating each Flowspec rule. A
	// received Flowspec route with the same rule is not re-advertised
	// while we advertise our own: both would have the same NLRI (the
	// instance RD and the rule) and replace each other, e.g. between two
	// service VMs of one hop whose redirect RT is also their from_rt.
	own map[string]int
}

// attractActive reports whether attract_traffic applies: it needs
// readvertise or its own to_rt (spec §6.8).
func attractActive(req *AttachRequest) bool {
	at := req.AttractTraffic
	return at != nil && (req.Readvertise != nil || len(at.ToRTs) > 0)
}

// newSteering returns the steering state of a new VRF, or nil when it has
// neither readvertise nor an active attract_traffic.
func newSteering(inst *Instance, req *AttachRequest) *steering {
	attract := attractActive(req)
	if req.Readvertise == nil && !attract {
		return nil
	}
	s := &steering{
		inst:     inst,
		eps:      map[*endpoint]epParams{},
		params:   map[epParams]int{},
		prefixes: map[netip.Prefix]*readv{},
		flows:    map[string]*readv{},
		gens:     map[*route.Attrs]*genAttrs{},
		defAttrs: map[epParams]*route.Attrs{},
		attracts: map[netip.Prefix]*attractPrefix{},
	}
	if req.Readvertise != nil {
		s.fromRTs = slices.Clone(req.Readvertise.FromRTs)
		s.toRTs = slices.Clone(req.Readvertise.ToRTs)
	}
	if attract {
		at := req.AttractTraffic
		s.attract = true
		if len(at.ToRTs) > 0 {
			s.toRTs = slices.Clone(at.ToRTs)
		}
		s.redirectRTs = slices.Clone(at.RedirectRTs)
		s.match = at.Match
		s.loopRTs = append(slices.Clone(s.toRTs), s.redirectRTs...)
		s.flowAttrs = &route.Attrs{RTs: s.redirectRTs}
		if len(s.toRTs) > 0 {
			s.flowAttrs.Redirect, s.flowAttrs.HasRedirect = s.toRTs[0], true
		}
		// Static destination prefixes come with attract_traffic/to_rt;
		// without it the reference ignores them, and so do we.
		for _, p := range staticPrefixes(at) {
			p = p.Masked()
			if !slices.Contains(s.static, p) {
				s.static = append(s.static, p)
				s.attracts[p] = &attractPrefix{refs: 1, flow: s.prefixFlow(p)}
				s.addOwn(s.attracts[p].flow)
			}
		}
	} else {
		s.loopRTs = slices.Clone(s.toRTs)
	}
	return s
}

// staticPrefixes returns the static destination prefixes in force.
func staticPrefixes(at *AttractTraffic) []netip.Prefix {
	if len(at.ToRTs) == 0 {
		return nil
	}
	return at.StaticDestinationPrefixes
}

// prefixFlow encodes the attract classifier with destination p.
func (s *steering) prefixFlow(p netip.Prefix) string {
	codec := s.inst.m.flow
	if codec.Encode == nil {
		s.inst.log.Error("cannot advertise a Flowspec route: no Flowspec codec", "prefix", p.String())
		return ""
	}
	c := s.match
	c.Dst = p
	flow, err := codec.Encode(c)
	if err != nil {
		s.inst.log.Error("cannot advertise a Flowspec route for this classifier", "prefix", p.String(), "err", err)
		return ""
	}
	return flow
}

// toReadvertise reports whether a received route is to be re-advertised:
// it carries a from_rt RT and no RT-Record of a to_rt (or redirect) RT.
func (s *steering) toReadvertise(r *route.Route) bool {
	if r.Attrs == nil {
		return false
	}
	if r.NLRI.Family == route.FlowVPN && !s.attract {
		return false
	}
	if r.NLRI.Family != route.IPv4VPN && r.NLRI.Family != route.FlowVPN {
		return false
	}
	for _, rec := range r.Attrs.RTRecords {
		if slices.Contains(s.loopRTs, rec) {
			return false
		}
	}
	for _, rt := range r.Attrs.RTs {
		if slices.Contains(s.fromRTs, rt) {
			return true
		}
	}
	return false
}

// active reports whether an attracting VRF has something to attract.
func (s *steering) active() bool {
	return len(s.prefixes)+len(s.flows)+len(s.static) > 0
}

func (s *steering) emit(kind route.EventKind, r *route.Route) {
	s.pending = append(s.pending, route.Event{Kind: kind, Route: r})
}

// flushLocked publishes the queued events (s.mu held).
func (s *steering) flushLocked() {
	if len(s.pending) == 0 {
		return
	}
	evs := s.pending
	s.pending = nil
	if !s.stopped {
		s.inst.m.eng.Publish(s.inst, evs)
	}
}

// flush publishes the events queued by the best path callbacks.
func (s *steering) flush() {
	s.mu.Lock()
	s.flushLocked()
	s.mu.Unlock()
}

// stop drops what is queued and ignores later changes (the instance's
// routes are then withdrawn by the engine cleanup).
func (s *steering) stop() {
	s.mu.Lock()
	s.stopped = true
	s.pending = nil
	s.mu.Unlock()
}

func paramsOf(ep *endpoint) epParams {
	p := epParams{order: ep.mac.lbOrder}
	if ep.localPref != nil {
		p.lp, p.hasLP = *ep.localPref, true
	}
	return p
}

// acquireGen returns the generated attributes for received attributes a.
func (s *steering) acquireGen(a *route.Attrs) *genAttrs {
	g := s.gens[a]
	if g == nil {
		g = &genAttrs{base: a, byEP: map[epParams]*route.Attrs{}}
		g.records = slices.Clone(a.RTRecords)
		for _, rt := range a.RTs {
			if !slices.Contains(g.records, rt) {
				g.records = append(g.records, rt)
			}
		}
		s.gens[a] = g
	}
	g.refs++
	return g
}

func (s *steering) releaseGen(g *genAttrs) {
	if g == nil {
		return
	}
	g.refs--
	if g.refs <= 0 {
		delete(s.gens, g.base)
	}
}

// readvAttrs returns the attributes of a re-advertised VPNv4 route.
func (s *steering) readvAttrs(g *genAttrs, p epParams) *route.Attrs {
	a := g.byEP[p]
	if a == nil {
		a = &route.Attrs{RTs: s.toRTs, Encaps: s.inst.encaps, RTRecords: g.records,
			HashOrder: p.order, HasHashOrder: true, LocalPref: p.lp, HasLocalPref: p.hasLP}
		g.byEP[p] = a
	}
	return a
}

// flowReadvAttrs returns the attributes of a re-advertised Flowspec route.
func (s *steering) flowReadvAttrs(g *genAttrs) *route.Attrs {
	if g.flow == nil {
		g.flow = &route.Attrs{RTs: s.toRTs, RTRecords: g.records}
		if len(s.redirectRTs) > 0 {
			g.flow.Redirect, g.flow.HasRedirect = s.redirectRTs[0], true
		}
	}
	return g.flow
}

func (s *steering) defaultAttrs(p epParams) *route.Attrs {
	a := s.defAttrs[p]
	if a == nil {
		a = &route.Attrs{RTs: s.toRTs, Encaps: s.inst.encaps, HashOrder: p.order, HasHashOrder: true, LocalPref: p.lp, HasLocalPref: p.hasLP}
		s.defAttrs[p] = a
	}
	return a
}

var defaultPrefix = netip.MustParsePrefix("0.0.0.0/0")

// vpnRoute is a route of the VRF towards an endpoint's port.
func (s *steering) vpnRoute(ep *endpoint, prefix netip.Prefix, attrs *route.Attrs) *route.Route {
	return &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: ep.steerRD(), Prefix: prefix},
		Label:   ep.mac.label,
		NextHop: s.inst.driver.LocalAddress(),
		Attrs:   attrs,
	}
}

func (s *steering) flowRoute(flow string, attrs *route.Attrs) *route.Route {
	return &route.Route{NLRI: route.NLRI{Family: route.FlowVPN, RD: s.inst.rd, Flow: flow}, Attrs: attrs}
}

// endpointRoutes queues the routes of one endpoint: its re-advertisements,
// or its default route; not the one for the prefix of its own route.
func (s *steering) endpointRoutes(kind route.EventKind, ep *endpoint) {
	p := paramsOf(ep)
	if s.attract {
		if s.active() && ep.ownPrefix != defaultPrefix {
			s.emit(kind, s.vpnRoute(ep, defaultPrefix, s.defaultAttrs(p)))
		}
		return
	}
	for prefix, rv := range s.prefixes {
		if prefix != ep.ownPrefix {
			s.emit(kind, s.vpnRoute(ep, prefix, s.readvAttrs(rv.gen, p)))
		}
	}
}

// prefixRoute queues the route of one endpoint for prefix, if it has one:
// its re-advertisement or its default route.
func (s *steering) prefixRoute(kind route.EventKind, ep *endpoint, prefix netip.Prefix) {
	p := paramsOf(ep)
	switch {
	case prefix == ep.ownPrefix:
	case s.attract:
		if prefix == defaultPrefix && s.active() {
			s.emit(kind, s.vpnRoute(ep, defaultPrefix, s.defaultAttrs(p)))
		}
	default:
		if rv := s.prefixes[prefix]; rv != nil {
			s.emit(kind, s.vpnRoute(ep, prefix, s.readvAttrs(rv.gen, p)))
		}
	}
}

// ownRoutes publishes evs, events of the endpoints' own routes, after
// what the best path callbacks queued, and records the prefix of each
// endpoint's own route when it is advertised with the endpoint's RD (an
// advertise_subnet route; exported tells whether the VRF advertises its
// routes): the re-advertisement (or default route) of the endpoint for
// that prefix would have the same NLRI and replace it or withdraw it, so
// the endpoint's own route wins, and its re-advertisement comes back if
// the endpoint's route goes. Instance.mu held (ep.route).
func (s *steering) ownRoutes(evs []route.Event, eps []*endpoint, exported bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	if len(evs) > 0 {
		s.inst.m.eng.Publish(s.inst, evs)
	}
	for _, ep := range eps {
		var own netip.Prefix
		if exported && ep.route != nil && ep.route.NLRI.RD == ep.steerRD() {
			own = ep.route.NLRI.Prefix
		}
		old := ep.ownPrefix
		if old == own {
			continue
		}
		ep.ownPrefix = own
		if _, ok := s.eps[ep]; ok && old.IsValid() {
			// The prefix its own route left: its re-advertisement.
			s.prefixRoute(route.Advertise, ep, old)
		}
	}
	s.flushLocked()
}

// attractRoutes queues the Flowspec routes of an attracting VRF.
func (s *steering) attractRoutes(kind route.EventKind) {
	for _, ap := range s.attracts {
		if ap.flow != "" {
			s.emit(kind, s.flowRoute(ap.flow, s.flowAttrs))
		}
	}
	for flow, rv := range s.flows {
		if s.own[flow] == 0 {
			s.emit(kind, s.flowRoute(flow, s.flowReadvAttrs(rv.gen)))
		}
	}
}

func (s *steering) addOwn(flow string) {
	if flow == "" {
		return
	}
	if s.own == nil {
		s.own = map[string]int{}
	}
	s.own[flow]++
}

// dropOwn forgets one attract prefix generating flow; it reports whether
// no other one does.
func (s *steering) dropOwn(flow string) bool {
	if flow == "" {
		return false
	}
	s.own[flow]--
	if s.own[flow] > 0 {
		return false
	}
	delete(s.own, flow)
	return true
}

// addEndpoint gives a new endpoint forwarding to its port the current
// re-advertisements (plug, Instance.mu held).
func (s *steering) addEndpoint(ep *endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eps[ep]; ok {
		return
	}
	s.useParams(ep)
	s.endpointRoutes(route.Advertise, ep)
	if s.attract && len(s.eps) == 1 {
		s.attractRoutes(route.Advertise)
	}
	s.flushLocked()
}

// setLocalPref changes the local_pref of an endpoint (plug refresh,
// Instance.mu held): the best path callbacks read it under s.mu.
func (s *steering) setLocalPref(ep *endpoint, lp *uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep.localPref = lp
	if _, ok := s.eps[ep]; ok {
		s.dropParams(ep)
		s.useParams(ep)
	}
}

// useParams records ep (s.mu held).
func (s *steering) useParams(ep *endpoint) {
	p := paramsOf(ep)
	s.eps[ep] = p
	s.params[p]++
}

// dropParams forgets ep's parameters; the attributes made for parameters
// no endpoint has any more are dropped (s.mu held).
func (s *steering) dropParams(ep *endpoint) {
	p := s.eps[ep]
	delete(s.eps, ep)
	s.params[p]--
	if s.params[p] > 0 {
		return
	}
	delete(s.params, p)
	delete(s.defAttrs, p)
	for _, g := range s.gens {
		delete(g.byEP, p)
	}
}

// updateEndpoint re-advertises an endpoint's routes after a change of its
// local_pref (plug refresh).
func (s *steering) updateEndpoint(ep *endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eps[ep]; !ok {
		return
	}
	s.endpointRoutes(route.Advertise, ep)
	s.flushLocked()
}

// removeEndpoint withdraws an endpoint's re-advertisements (unplug).
func (s *steering) removeEndpoint(ep *endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eps[ep]; !ok {
		return
	}
	s.endpointRoutes(route.Withdraw, ep)
	s.dropParams(ep)
	if s.attract && len(s.eps) == 0 {
		s.attractRoutes(route.Withdraw)
	}
	s.flushLocked()
}

// forEndpoints queues a route for prefix per endpoint, but for the
// endpoints whose own route has that prefix (ownRoutes).
func (s *steering) forEndpoints(kind route.EventKind, prefix netip.Prefix, f func(ep *endpoint) *route.Route) {
	for ep := range s.eps {
		if ep.ownPrefix != prefix {
			s.emit(kind, f(ep))
		}
	}
}

// defaults queues the default route of every endpoint.
func (s *steering) defaults(kind route.EventKind) {
	s.forEndpoints(kind, defaultPrefix, func(ep *endpoint) *route.Route {
		return s.vpnRoute(ep, defaultPrefix, s.defaultAttrs(paramsOf(ep)))
	})
}

// bestAdded is called for each new best route of the VRF (instance
// goroutine, trMu held); the events are published by flush.
func (s *steering) bestAdded(r *route.Route) {
	if !s.toReadvertise(r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	wasActive := s.active()
	table, key := s.tableOf(r)
	var rv *readv
	if table != nil {
		rv = table[key.prefix]
		if rv == nil {
			rv = &readv{}
			table[key.prefix] = rv
		}
	} else {
		rv = s.flows[key.flow]
		if rv == nil {
			rv = &readv{}
			s.flows[key.flow] = rv
		}
	}
	isNew := len(rv.routes) == 0
	rv.routes = append(rv.routes, r)
	changed := s.setGen(rv, r.Attrs)
	if s.attract && !wasActive && len(s.eps) > 0 {
		s.defaults(route.Advertise)
	}
	switch {
	case r.NLRI.Family == route.FlowVPN:
		if changed && len(s.eps) > 0 && s.own[key.flow] == 0 {
			s.emit(route.Advertise, s.flowRoute(key.flow, s.flowReadvAttrs(rv.gen)))
		}
	case s.attract:
		if isNew {
			s.addAttract(key.prefix)
		}
	case changed:
		s.forEndpoints(route.Advertise, key.prefix, func(ep *endpoint) *route.Route {
			return s.vpnRoute(ep, key.prefix, s.readvAttrs(rv.gen, paramsOf(ep)))
		})
	}
}

type readvKey struct {
	prefix netip.Prefix
	flow   string
}

// tableOf returns the table of a received route and its key: the prefix
// table for VPNv4 routes, nil (the flows) for Flowspec routes.
func (s *steering) tableOf(r *route.Route) (map[netip.Prefix]*readv, readvKey) {
	if r.NLRI.Family == route.FlowVPN {
		return nil, readvKey{flow: r.NLRI.Flow}
	}
	return s.prefixes, readvKey{prefix: r.NLRI.Prefix}
}

// setGen makes the attributes of rv those generated from a; it reports
// whether they changed.
func (s *steering) setGen(rv *readv, a *route.Attrs) bool {
	if rv.gen != nil && rv.gen.base == a {
		return false
	}
	g := s.acquireGen(a)
	s.releaseGen(rv.gen)
	rv.gen = g
	return true
}

func (s *steering) addAttract(p netip.Prefix) {
	ap := s.attracts[p]
	if ap == nil {
		ap = &attractPrefix{flow: s.prefixFlow(p)}
		s.attracts[p] = ap
		s.addOwn(ap.flow)
	}
	ap.refs++
	if ap.refs == 1 && ap.flow != "" && len(s.eps) > 0 {
		s.emit(route.Advertise, s.flowRoute(ap.flow, s.flowAttrs))
	}
}

func (s *steering) removeAttract(p netip.Prefix) {
	ap := s.attracts[p]
	if ap == nil {
		return
	}
	ap.refs--
	if ap.refs > 0 {
		return
	}
	delete(s.attracts, p)
	if !s.dropOwn(ap.flow) || len(s.eps) == 0 {
		return
	}
	if rv := s.flows[ap.flow]; rv != nil {
		// A received route with the same rule takes the NLRI over.
		s.emit(route.Advertise, s.flowRoute(ap.flow, s.flowReadvAttrs(rv.gen)))
		return
	}
	s.emit(route.Withdraw, s.flowRoute(ap.flow, s.flowAttrs))
}

// bestRemoved is called for each best route the VRF loses (instance
// goroutine, trMu held). The re-advertisement goes with the last route to
// re-advertise of its destination; while others remain, the latest one
// gives the attributes.
func (s *steering) bestRemoved(r *route.Route) {
	if !s.toReadvertise(r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	table, key := s.tableOf(r)
	var rv *readv
	if table != nil {
		rv = table[key.prefix]
	} else {
		rv = s.flows[key.flow]
	}
	if rv == nil {
		return
	}
	i := slices.Index(rv.routes, r)
	if i < 0 {
		i = slices.IndexFunc(rv.routes, func(x *route.Route) bool { return equivalent(x, r) })
	}
	if i < 0 {
		return
	}
	rv.routes = slices.Delete(rv.routes, i, i+1)
	if len(rv.routes) > 0 {
		if !s.setGen(rv, rv.routes[len(rv.routes)-1].Attrs) {
			return
		}
		switch {
		case r.NLRI.Family == route.FlowVPN:
			if len(s.eps) > 0 && s.own[key.flow] == 0 {
				s.emit(route.Advertise, s.flowRoute(key.flow, s.flowReadvAttrs(rv.gen)))
			}
		case !s.attract:
			s.forEndpoints(route.Advertise, key.prefix, func(ep *endpoint) *route.Route {
				return s.vpnRoute(ep, key.prefix, s.readvAttrs(rv.gen, paramsOf(ep)))
			})
		}
		return
	}
	// The last one: withdraw.
	switch {
	case r.NLRI.Family == route.FlowVPN:
		delete(s.flows, key.flow)
		if len(s.eps) > 0 && s.own[key.flow] == 0 {
			s.emit(route.Withdraw, s.flowRoute(key.flow, s.flowReadvAttrs(rv.gen)))
		}
	case s.attract:
		delete(s.prefixes, key.prefix)
		s.removeAttract(key.prefix)
	default:
		delete(s.prefixes, key.prefix)
		s.forEndpoints(route.Withdraw, key.prefix, func(ep *endpoint) *route.Route {
			return s.vpnRoute(ep, key.prefix, nil)
		})
	}
	s.releaseGen(rv.gen)
	if s.attract && !s.active() && len(s.eps) > 0 {
		s.defaults(route.Withdraw)
	}
}

// readvertised returns the received routes being re-advertised (looking
// glass).
func (s *steering) readvertised() []*route.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*route.Route
	for _, rv := range s.prefixes {
		out = append(out, rv.routes...)
	}
	for _, rv := range s.flows {
		out = append(out, rv.routes...)
	}
	return out
}
