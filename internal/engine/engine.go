// Package engine is the route table manager: a publish/subscribe hub between
// route sources and workers (BGP peers, VPN instances), keyed by family and
// route target. It stores the routes each source advertised, dispatches every
// advertisement and withdrawal to the workers subscribed to a match of the
// route, replays stored routes to new subscribers, and generates RT Constraint
// routes (RFC 4684) for the route targets local workers import.
//
// All state is owned by one goroutine (Run) fed by a bounded FIFO, so events
// keep their order and publishers feel backpressure. Routes travel by
// pointer; each worker gets one batch per published batch.
package engine

import (
	"context"
	"log/slog"
	"net/netip"

	"bagpipe/internal/hashindex"
	"bagpipe/internal/route"
)

func nlriOf(r *route.Route) route.NLRI { return r.NLRI }

// Worker receives route events.
type Worker interface {
	// Source identifies the worker as a route source.
	Source() *route.Source
	// Deliver hands a batch of events to the worker. It is called from the
	// engine goroutine and must not block (workers queue the batch). The
	// slice belongs to the worker.
	Deliver(events []route.Event)
}

// Match is a subscription key: a family and a route target, where the zero
// value of either is a wildcard.
type Match struct {
	Family route.Family
	RT     route.RT
}

// String formats the match as the looking glass does.
func (m Match) String() string {
	rt := "*"
	if m.RT != 0 {
		rt = m.RT.Target()
	}
	return "match:" + m.Family.String() + "," + rt
}

// RTCConfig enables RT Constraint route generation.
type RTCConfig struct {
	AS      uint32     // origin AS of the RTC routes (our AS)
	NextHop netip.Addr // BGP local address
}

// Engine is the route table manager. Create it with New and run Run.
type Engine struct {
	ops chan func()
	log *slog.Logger
	rtc *RTCConfig

	// State below is owned by the Run goroutine.
	workers map[Worker]*workerState
	subs    map[Match][]*workerState
	local   map[Match]int // number of local (non-peer) subscribers
	index   map[Match]map[*route.Route]struct{}
	mark    uint64
	touched []*workerState
	self    *selfSource
	counts  counters      // route counters, readable from any goroutine
	subsGen uint64        // changes with every subscription change
	imark   uint64        // interested's own marks
	icache  interestCache // see interested
}

// interestCache remembers the workers subscribed to a match of the routes
// of one family and one *route.Attrs. Attributes are immutable and the BGP
// decoder shares them between routes (of one UPDATE, and of consecutive
// UPDATEs with identical attributes), so a run of advertisements looks the
// subscriptions up once.
type interestCache struct {
	fam   route.Family
	attrs *route.Attrs
	gen   uint64
	list  []*workerState
}

type workerState struct {
	w       Worker
	src     *route.Source
	subs    map[Match]struct{}
	routes  hashindex.Index[route.NLRI, route.Route] // routes this worker advertised, by NLRI
	mark    uint64
	imark   uint64
	pending []route.Event
	counts  *sourceCounts
}

// selfSource publishes the RTC routes the engine generates.
type selfSource struct{ src route.Source }

func (s *selfSource) Source() *route.Source { return &s.src }
func (s *selfSource) Deliver([]route.Event) {}

// New returns an engine. rtc may be nil (no RT Constraint routes).
func New(log *slog.Logger, rtc *RTCConfig) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{
		ops:     make(chan func(), 1024),
		log:     log.With("component", "engine"),
		rtc:     rtc,
		workers: map[Worker]*workerState{},
		subs:    map[Match][]*workerState{},
		local:   map[Match]int{},
		index:   map[Match]map[*route.Route]struct{}{},
		self:    &selfSource{src: route.Source{Name: "BGPManager"}},
	}
}

// Run processes operations until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-e.ops:
			op()
		}
	}
}

// Subscribe registers w for routes matching m; stored matching routes are
// replayed to w.
func (e *Engine) Subscribe(w Worker, m Match) { e.ops <- func() { e.subscribe(w, m) } }

// Unsubscribe removes a subscription; routes no longer covered by another
// subscription of w are withdrawn from w.
func (e *Engine) Unsubscribe(w Worker, m Match) { e.ops <- func() { e.unsubscribe(w, m) } }

// Publish advertises or withdraws routes on behalf of w. For a withdrawal
// only the route's NLRI matters. The engine takes ownership of events.
func (e *Engine) Publish(w Worker, events []route.Event) { e.ops <- func() { e.publish(w, events) } }

// Cleanup withdraws every route w advertised and drops its subscriptions.
func (e *Engine) Cleanup(w Worker) { e.ops <- func() { e.cleanup(w) } }

// Sync waits until every operation queued before it has been processed.
func (e *Engine) Sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case e.ops <- func() { close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Inspect runs f on the engine goroutine with a read-only view of the state
// and waits for it. f must be quick: copy what you need and return.
func (e *Engine) Inspect(ctx context.Context, f func(View)) error {
	done := make(chan struct{})
	select {
	case e.ops <- func() { f(View{e}); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) state(w Worker) *workerState {
	ws := e.workers[w]
	if ws == nil {
		ws = &workerState{w: w, src: w.Source(), subs: map[Match]struct{}{}, routes: hashindex.New(nlriOf)}
		e.workers[w] = ws
		e.counts.register(ws)
	}
	return ws
}

// matches calls f for each match of r: {family, *} x {each RT, *}.
func matches(r *route.Route, f func(Match)) {
	fam := r.NLRI.Family
	for _, rt := range r.RTs() {
		f(Match{fam, rt})
		f(Match{route.FamilyAny, rt})
	}
	f(Match{fam, 0})
	f(Match{route.FamilyAny, 0})
}

// covered reports whether a subscription of ws other than except matches r.
func (ws *workerState) covered(r *route.Route, except Match) bool {
	found := false
	matches(r, func(m Match) {
		if m != except {
			if _, ok := ws.subs[m]; ok {
				found = true
			}
		}
	})
	return found
}

func (ws *workerState) isPeer() bool { return ws.src.Peer }

// mayReceive applies the dispatch rules: never back to the source, never
// from a peer to a peer.
func mayReceive(to *workerState, from *route.Source) bool {
	return to.src != from && !(from.Peer && to.isPeer())
}

func (e *Engine) queue(ws *workerState, ev route.Event) {
	if ws.pending == nil {
		e.touched = append(e.touched, ws)
	}
	ws.pending = append(ws.pending, ev)
}

func (e *Engine) flush() {
	for _, ws := range e.touched {
		ev := ws.pending
		ws.pending = nil
		ws.w.Deliver(ev)
	}
	e.touched = e.touched[:0]
}

func (e *Engine) subscribe(w Worker, m Match) {
	ws := e.state(w)
	if _, dup := ws.subs[m]; dup {
		return
	}
	ws.subs[m] = struct{}{}
	e.subs[m] = append(e.subs[m], ws)
	e.subsGen++
	if !ws.isPeer() {
		e.local[m]++
		if e.local[m] == 1 {
			e.firstLocal(m)
		}
	}
	e.eachStored(m, func(r *route.Route) {
		if mayReceive(ws, r.Source) && !ws.covered(r, m) {
			e.queue(ws, route.Event{Kind: route.Advertise, Route: r})
		}
	})
	e.flush()
}

func (e *Engine) unsubscribe(w Worker, m Match) {
	ws := e.workers[w]
	if ws == nil {
		e.log.Warn("unsubscription of an unknown worker", "match", m.String())
		return
	}
	if _, ok := ws.subs[m]; !ok {
		e.log.Warn("unsubscription without subscription", "worker", ws.src.Name, "match", m.String())
		return
	}
	e.dropSub(ws, m)
	e.eachStored(m, func(r *route.Route) {
		if mayReceive(ws, r.Source) && !ws.covered(r, m) {
			e.queue(ws, route.Event{Kind: route.Withdraw, Route: r})
		}
	})
	e.flush()
}

func (e *Engine) dropSub(ws *workerState, m Match) {
	delete(ws.subs, m)
	e.subsGen++
	list := e.subs[m]
	for i, x := range list {
		if x == ws {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(e.subs, m)
	} else {
		e.subs[m] = list
	}
	if !ws.isPeer() {
		e.local[m]--
		if e.local[m] == 0 {
			delete(e.local, m)
			e.lastLocal(m)
		}
	}
}

// eachStored calls f for each stored route matching m.
func (e *Engine) eachStored(m Match, f func(*route.Route)) {
	if m.RT != 0 && m.Family != route.FamilyAny {
		for r := range e.index[m] {
			f(r)
		}
		return
	}
	for _, ws := range e.workers {
		for r := range ws.routes.All() {
			if (m.Family == route.FamilyAny || r.NLRI.Family == m.Family) &&
				(m.RT == 0 || r.Attrs.HasRT(m.RT)) {
				f(r)
			}
		}
	}
}

func (e *Engine) index4(r *route.Route, add bool) {
	fam := r.NLRI.Family
	for _, rt := range r.RTs() {
		m := Match{fam, rt}
		set := e.index[m]
		if add {
			if set == nil {
				set = map[*route.Route]struct{}{}
				e.index[m] = set
			}
			set[r] = struct{}{}
		} else if set != nil {
			delete(set, r)
			if len(set) == 0 {
				delete(e.index, m)
			}
		}
	}
}

func (e *Engine) publish(w Worker, events []route.Event) {
	ws := e.state(w)
	for _, ev := range events {
		if ev.Kind == route.Advertise {
			e.advertise(ws, ev.Route)
		} else {
			e.withdraw(ws, ev.Route.NLRI)
		}
	}
	e.flush()
}

// interested returns the workers subscribed to at least one match of r,
// each once. The list is valid until the next call.
func (e *Engine) interested(r *route.Route) []*workerState {
	c := &e.icache
	if r.Attrs != nil && c.attrs == r.Attrs && c.fam == r.NLRI.Family && c.gen == e.subsGen {
		return c.list
	}
	e.imark++ // not mark: callers use it around calls to interested
	mark := e.imark
	list := c.list[:0]
	matches(r, func(m Match) {
		for _, to := range e.subs[m] {
			if to.imark != mark {
				to.imark = mark
				list = append(list, to)
			}
		}
	})
	*c = interestCache{fam: r.NLRI.Family, attrs: r.Attrs, gen: e.subsGen, list: list}
	return list
}

func (e *Engine) advertise(ws *workerState, r *route.Route) {
	r.Source = ws.src
	old := ws.routes.Get(r.NLRI)
	if old != nil && route.SameContent(old, r) {
		e.log.Debug("identical re-advertisement ignored", "source", ws.src.Name)
		return
	}
	to := e.interested(r)
	e.mark++
	mark := e.mark
	for _, to := range to {
		if mayReceive(to, ws.src) {
			to.mark = mark
			e.queue(to, route.Event{Kind: route.Advertise, Route: r, Replaced: old})
		}
	}
	if old != nil {
		// Workers that saw the old route but not the new one lose it.
		for _, to := range e.interested(old) {
			if to.mark != mark && mayReceive(to, ws.src) {
				to.mark = mark
				e.queue(to, route.Event{Kind: route.Withdraw, Route: old})
			}
		}
		e.index4(old, false)
	} else {
		e.counts.stored(ws, r.NLRI.Family, 1)
	}
	ws.routes.Put(r)
	e.index4(r, true)
}

func (e *Engine) withdraw(ws *workerState, n route.NLRI) {
	old := ws.routes.Get(n)
	if old == nil {
		e.log.Debug("withdrawal of an unknown route ignored", "source", ws.src.Name, "family", n.Family.String())
		return
	}
	for _, to := range e.interested(old) {
		if mayReceive(to, ws.src) {
			e.queue(to, route.Event{Kind: route.Withdraw, Route: old})
		}
	}
	ws.routes.Delete(n)
	e.counts.stored(ws, n.Family, -1)
	e.index4(old, false)
}

func (e *Engine) cleanup(w Worker) {
	ws := e.workers[w]
	if ws == nil {
		return
	}
	for r := range ws.routes.All() {
		e.withdraw(ws, r.NLRI)
	}
	for m := range ws.subs {
		e.dropSub(ws, m)
	}
	delete(e.workers, w)
	e.counts.unregister(ws)
	e.flush()
}

// rtcFamilies are the families whose subscriptions generate RTC routes.
func rtcFamily(f route.Family) bool { return f == route.IPv4VPN || f == route.EVPN }

// rtcRoute returns the RTC route of rt when rtc is on, or nil.
func (e *Engine) rtcRoute(m Match) *route.Route {
	if e.rtc == nil || m.RT == 0 || !rtcFamily(m.Family) {
		return nil
	}
	// One RTC route per RT, whatever the family: count both families.
	return &route.Route{
		NLRI:    route.NLRI{Family: route.RTC, Origin: e.rtc.AS, Target: m.RT},
		NextHop: e.rtc.NextHop,
		Attrs:   rtcAttrs,
	}
}

var rtcAttrs = &route.Attrs{}

func (e *Engine) rtcNeeded(rt route.RT) bool {
	return e.local[Match{route.IPv4VPN, rt}] > 0 || e.local[Match{route.EVPN, rt}] > 0
}

func (e *Engine) firstLocal(m Match) {
	r := e.rtcRoute(m)
	if r == nil {
		return
	}
	self := e.state(e.self)
	if self.routes.Get(r.NLRI) != nil {
		return
	}
	e.advertise(self, r)
}

func (e *Engine) lastLocal(m Match) {
	r := e.rtcRoute(m)
	if r == nil || e.rtcNeeded(m.RT) {
		return
	}
	e.withdraw(e.state(e.self), r.NLRI)
}
