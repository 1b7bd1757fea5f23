package bgp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// Graceful Restart, helper role (RFC 4724 §4.2, RFC 8538).
//
// When the session with a peer that announced the capability is lost for
// a reason that allows it (see gracefulLoss), the peer's routes stay in the
// engine, where they are, untouched: local workers see no withdrawal. The
// peer's subscriptions are dropped (the next session subscribes again and
// gets a full replay) and the NLRIs of its routes are remembered as stale.
//
//   - If the peer does not come back within the Restart Time it announced,
//     the stale routes are withdrawn.
//   - When it comes back, the stale routes of the families it did not
//     announce again with the Forwarding State bit are withdrawn at once;
//     the others wait for the peer's End-of-RIB of their family, or for
//     StaleTime. A route the peer advertises again stops being stale: the
//     engine replaces the stored route with it (and tells nobody when it is
//     the same), so nothing is withdrawn and re-advertised.
//   - If the session is lost again meanwhile (consecutive restarts), the
//     routes still stale from the previous loss are withdrawn at once, and
//     the others (advertised in the lost session) become stale (RFC 4724
//     §4.2): a flapping peer cannot keep routes it never sends again.
//
// The stale set is shared by the session reader (re-advertisements, End of
// RIB), the peer goroutine (session loss and establishment) and timers.
// Every publication that touches it happens under its lock, so that the
// engine receives a re-advertisement and the sweep of the same NLRI in the
// order they were decided. The reader decodes a batch of UPDATEs before it
// publishes them (see session.readLoop): a stale timer expiring meanwhile
// sweeps after that publication, so that a route advertised again in the
// batch is not withdrawn and advertised again.

// staleRoutes is the set of stale routes of one peer.
type staleRoutes struct {
	p *peer

	active atomic.Bool // routes is not empty: publications go through publish

	mu     sync.Mutex
	routes map[route.NLRI]struct{}
	gen    uint64      // changes with every phase: outdated timers do nothing
	timer  *time.Timer // restart timer (no session) or stale timer (session back)

	// afterFunc starts the timers (time.AfterFunc when nil; tests set it,
	// under mu, to fire them at will).
	afterFunc func(time.Duration, func()) *time.Timer

	// held: the session reader has decoded events not published yet
	// (hold); due: why the stale timer expired meanwhile, the sweep
	// waiting for the publication ("": none).
	held bool
	due  string

	swept atomic.Uint64 // stale routes withdrawn (statistics)
}

// count returns the number of stale routes.
func (s *staleRoutes) count() int {
	if !s.active.Load() {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.routes)
}

// retainLocked marks nlris, the routes of the peer, stale after the loss of
// a session whose peer announced gr. Those still stale from a previous loss
// (never advertised again since) and those of families gr does not cover
// are withdrawn at once; the others are kept for the peer's Restart Time.
func (s *staleRoutes) retainLocked(nlris []route.NLRI, gr *peerGR) {
	s.stopTimerLocked()
	prev := s.routes
	s.routes = make(map[route.NLRI]struct{}, len(nlris))
	var now []route.Event
	again := 0
	for _, n := range nlris {
		if _, ok := prev[n]; ok {
			again++ // consecutive restart
			now = append(now, withdrawal(n))
		} else if gr.families.has(n.Family) {
			s.routes[n] = struct{}{}
		} else {
			now = append(now, withdrawal(n))
		}
	}
	s.active.Store(len(s.routes) > 0)
	log := s.p.log
	if len(now) > 0 {
		s.swept.Add(uint64(len(now)))
		s.p.eng.Publish(s.p, now)
		if again > 0 {
			log.Info("graceful restart: routes still stale from the previous session loss withdrawn (consecutive restarts)",
				"routes", again)
		}
		if n := len(now) - again; n > 0 {
			log.Info("graceful restart: routes of families the peer does not preserve withdrawn", "routes", n)
		}
	}
	if len(s.routes) == 0 {
		return
	}
	d := time.Duration(gr.restartTime) * time.Second
	log.Info("graceful restart: peer routes kept as stale until it comes back", "stale_routes", len(s.routes),
		"restart_time", d.String())
	gen := s.gen
	s.timer = s.startTimerLocked(d, func() { s.expire(gen, "the peer did not come back within its restart time") })
}

// established is called when a new session with the peer is established:
// stale routes of the families the peer no longer preserves are withdrawn,
// the others get StaleTime to be confirmed.
func (s *staleRoutes) established(gr *peerGR, staleTime time.Duration) {
	if !s.active.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopTimerLocked()
	var keep familySet
	if gr != nil {
		keep = gr.families & gr.forwarding
	}
	if n := s.sweepLocked(^keep); n > 0 {
		s.p.log.Info("graceful restart: stale routes of families the peer did not preserve withdrawn", "routes", n)
	}
	if len(s.routes) == 0 {
		return
	}
	s.p.log.Info("graceful restart: peer back, waiting for its End-of-RIB", "stale_routes", len(s.routes),
		"stale_time", staleTime.String())
	gen := s.gen
	s.timer = s.startTimerLocked(staleTime, func() { s.expire(gen, "no End-of-RIB within the stale time") })
}

// endOfRIB withdraws the routes of family f that are still stale: the peer
// has sent everything it has.
func (s *staleRoutes) endOfRIB(f route.Family) {
	if !s.active.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.sweepLocked(setOf(f)); n > 0 {
		s.p.log.Info("graceful restart: stale routes not advertised again withdrawn at End-of-RIB",
			"family", FamilyName(f), "routes", n)
	}
	if len(s.routes) == 0 {
		s.stopTimerLocked()
	}
}

// hold tells that the session reader starts a batch of events it will
// publish later (with publish): a stale sweep due before then waits for
// it.
func (s *staleRoutes) hold() {
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
}

// publish hands events of the current session to the engine: the routes
// they advertise or withdraw are no longer stale. It ends the reader's
// batch (see hold), and runs the stale sweep that waited for it.
func (s *staleRoutes) publish(events []route.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		delete(s.routes, events[i].Route.NLRI)
	}
	s.p.eng.Publish(s.p, events)
	s.held = false
	switch {
	case len(s.routes) == 0 && s.active.Load():
		s.active.Store(false)
		s.stopTimerLocked()
		s.p.log.Info("graceful restart: every stale route was advertised again")
	case s.due != "":
		why := s.due
		s.due = ""
		if n := s.sweepLocked(^familySet(0)); n > 0 {
			s.p.log.Warn("graceful restart: stale routes withdrawn", "reason", why, "routes", n)
		}
	}
}

// drop forgets the stale routes without withdrawing them (the caller
// cleans the peer's routes up).
func (s *staleRoutes) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopTimerLocked()
	s.routes = nil
	s.held = false
	s.active.Store(false)
}

// expire withdraws every stale route when the timer of phase gen fires.
func (s *staleRoutes) expire(gen uint64, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.timer = nil
	if s.held {
		// Routes of the reader's batch may be advertised again: sweep
		// once it is published.
		s.due = why
		s.p.log.Debug("graceful restart: stale timer expired during a batch of UPDATEs: sweeping after it")
		return
	}
	if n := s.sweepLocked(^familySet(0)); n > 0 {
		s.p.log.Warn("graceful restart: stale routes withdrawn", "reason", why, "routes", n)
	}
}

// sweepLocked withdraws the stale routes of the families in fams and
// returns how many.
func (s *staleRoutes) sweepLocked(fams familySet) int {
	var events []route.Event
	for n := range s.routes {
		if fams.has(n.Family) {
			events = append(events, withdrawal(n))
			delete(s.routes, n)
		}
	}
	if len(events) > 0 {
		s.swept.Add(uint64(len(events)))
		s.p.eng.Publish(s.p, events)
	}
	if len(s.routes) == 0 {
		s.active.Store(false)
	}
	return len(events)
}

func (s *staleRoutes) startTimerLocked(d time.Duration, f func()) *time.Timer {
	if s.afterFunc != nil {
		return s.afterFunc(d, f)
	}
	return time.AfterFunc(d, f)
}

func (s *staleRoutes) stopTimerLocked() {
	s.gen++
	s.due = ""
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

func withdrawal(n route.NLRI) route.Event {
	return route.Event{Kind: route.Withdraw, Route: &route.Route{NLRI: n}}
}

// gracefulLoss reports whether the loss of a session (err says why) lets
// the peer's routes be kept as stale: both sides announced Graceful
// Restart with some family, and the session ended with a TCP failure, the
// expiry of the hold timer, or (when both announced the N bit, RFC 8538) a
// NOTIFICATION other than Hard Reset, that we did not send on purpose to
// get rid of the routes.
func (p *peer) gracefulLoss(neg *negotiated, err error) bool {
	if !p.cfg.GracefulRestart || neg == nil || neg.gr == nil || neg.gr.families == 0 || neg.gr.restartTime == 0 {
		return false
	}
	var ne *notificationError
	if !errors.As(err, &ne) {
		return true // TCP connection lost
	}
	switch {
	case ne.code == bgp.BGP_ERROR_HOLD_TIMER_EXPIRED && !ne.received:
		return true // the peer is unreachable: what graceful restart is for
	case ne.code == bgp.BGP_ERROR_CEASE && ne.subcode == bgp.BGP_ERROR_SUB_HARD_RESET:
		return false
	case ne.code == bgp.BGP_ERROR_CEASE && ne.subcode == bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED && !ne.received:
		return false // we want rid of the routes
	}
	return neg.gr.notification
}

// retainRoutes keeps the routes of the lost session as stale: it reads the
// peer's routes and subscriptions from the engine and drops the
// subscriptions. It reports false when the engine could not be read (the
// caller then cleans up).
//
// The stale set stays locked from before the engine is read: no timer
// sweeps routes of a previous loss meanwhile, so what is stale now is
// exactly the part of the routes read that was never advertised again.
func (p *peer) retainRoutes(ctx context.Context, gr *peerGR) bool {
	s := &p.stale
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopTimerLocked()
	s.held = false
	var nlris []route.NLRI
	var subs []engine.Match
	err := p.eng.Inspect(ctx, func(v engine.View) {
		routes := v.RoutesOf(p)
		nlris = make([]route.NLRI, len(routes))
		for i, r := range routes {
			nlris[i] = r.NLRI
		}
		subs = v.Subscriptions(p)
	})
	if err != nil {
		return false
	}
	for _, m := range subs {
		p.eng.Unsubscribe(p, m)
	}
	s.retainLocked(nlris, gr)
	return true
}
