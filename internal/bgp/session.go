package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/hashindex"
	"bagpipe/internal/route"
)

// session is an established BGP session. Its reader (run, on the
// connection goroutine) decodes UPDATEs, publishes them to the engine and
// maintains the RT Constraint subscriptions; its writer goroutine encodes
// the events the engine delivers, and sends keepalives.
type session struct {
	c     *conn
	p     *peer
	neg   *negotiated
	log   *slog.Logger
	debug bool

	dec decoder
	enc *encoder

	// RT Constraint state (reader goroutine only): the RT each RTC route
	// received subscribes to, and how many RTC routes want each RT.
	rtcRoutes map[route.NLRI]route.RT
	rtRefs    map[route.RT]int

	unknownEVPN int // attributes dropped by dropUnknownEVPN

	// Events of the UPDATEs decoded since the last publication (reader
	// goroutine only): see readLoop.
	pending []route.Event

	// End-of-RIB received, per family (reader goroutine only).
	eorIn familySet
	// vpnEOR, when not nil, is closed when the peer's RTC End-of-RIB
	// came: the End-of-RIB of the VPN families may follow.
	vpnEOR chan struct{}
	// wildcard: subscribed to whole VPN families until the peer's RTC
	// End-of-RIB (restarting peer; reader goroutine only).
	wildcard bool

	// staleHeld: pending holds events since stale.hold was called (reader
	// goroutine only; see staleRoutes.hold).
	staleHeld bool

	// routes are the routes the peer advertised in this session and did
	// not withdraw, as decoded (reader goroutine only), when MaxPrefixes
	// is set: their number is what MaxPrefixes bounds. Stale routes of
	// the previous session are not in it until advertised again.
	routes hashindex.Index[route.NLRI, route.Route]

	wg sync.WaitGroup
}

func newSession(c *conn, neg *negotiated) *session {
	s := &session{
		c:         c,
		p:         c.p,
		neg:       neg,
		log:       c.log,
		debug:     c.log.Enabled(context.Background(), slog.LevelDebug),
		dec:       decoder{routerID: c.p.cfg.LocalAddress, families: neg.families},
		rtcRoutes: map[route.NLRI]route.RT{},
		rtRefs:    map[route.RT]int{},
	}
	if c.p.cfg.MaxPrefixes > 0 {
		s.routes = hashindex.New[route.NLRI, route.Route](nlriOf)
	}
	s.enc = newEncoder(neg.families, c.p.cfg.LocalAddress, func(msg string, args ...any) { s.log.Warn(msg, args...) })
	return s
}

// run serves the session until it ends.
func (s *session) run() error {
	p, ctx := s.p, s.c.ctx
	s.logUp()
	s.wg.Add(1)
	go s.writer()
	defer func() {
		s.c.shutdown(nil)
		s.wg.Wait()
		p.established.Store(false)
		p.out.clear()
	}()

	// The engine must be done with the previous session (its Cleanup and
	// deliveries) before events are accepted for this one.
	if err := p.eng.Sync(ctx); err != nil {
		return err
	}
	p.out.clear()
	p.eorIn.Store(0)
	p.established.Store(true)

	if s.neg.families == 0 {
		p.sp.peerSynced(p) // nothing to wait for
	}
	s.subscribeInitial()
	// End-of-RIB once the replay of the initial subscriptions is queued.
	eor := s.neg.families
	if s.neg.rtcActive() && !s.wildcard && s.neg.gr != nil {
		// Our VPN routes depend on the RTC routes of the peer: their
		// End-of-RIB follows the peer's RTC End-of-RIB (RFC 4684 §6),
		// else a graceful restart helper would sweep our routes before
		// we send them.
		eor &^= vpnFamilies
		s.vpnEOR = make(chan struct{})
		s.wg.Add(1)
		go s.vpnEORLater()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if p.eng.Sync(ctx) == nil {
			p.out.pushEOR(eor.list())
		}
	}()
	return s.readLoop()
}

// rtcEORWait bounds the wait for the peer's RTC End-of-RIB before we send
// the End-of-RIB of the VPN families.
const rtcEORWait = 30 * time.Second

// vpnEORLater sends the End-of-RIB of the VPN families once the peer's RTC
// End-of-RIB came and the routes its RTC routes selected are queued (or
// after rtcEORWait).
func (s *session) vpnEORLater() {
	defer s.wg.Done()
	ctx := s.c.ctx
	t := time.NewTimer(rtcEORWait)
	defer t.Stop()
	select {
	case <-s.vpnEOR:
	case <-t.C:
		s.log.Info("no RTC End-of-RIB from the peer: sending the End-of-RIB of the VPN families", "waited", rtcEORWait.String())
	case <-ctx.Done():
		return
	}
	if s.p.eng.Sync(ctx) == nil {
		s.p.out.pushEOR((s.neg.families & vpnFamilies).list())
	}
}

func (s *session) logUp() {
	var fams []string
	for _, f := range s.neg.families.list() {
		fams = append(fams, FamilyName(f))
	}
	s.log.Info("BGP session established", "peer_as", s.neg.peerAS, "peer_id", s.neg.peerID.String(),
		"hold_time", s.neg.holdTime, "families", fams, "rtc", s.neg.rtcActive(), "outgoing", s.c.outgoing)
	for _, f := range s.neg.missing {
		s.log.Warn("family not supported by the peer", "family", FamilyName(f))
	}
	if s.neg.families == 0 {
		s.log.Error("no address family in common with the peer")
	}
}

// subscribeInitial subscribes the peer to the RTC routes when RT Constraint
// is active (VPN routes then follow the RTC routes it sends), else to every
// route of the active families.
func (s *session) subscribeInitial() {
	if s.neg.rtcActive() {
		s.p.eng.Subscribe(s.p, engine.Match{Family: route.RTC})
		if s.neg.gr != nil && s.neg.gr.restarting {
			// A restarting peer sends nothing (RTC routes included)
			// before it has our End-of-RIB: send it every VPN route
			// now, until its RTC End-of-RIB tells what it wants.
			s.wildcard = true
			for _, f := range (s.neg.families & vpnFamilies).list() {
				s.p.eng.Subscribe(s.p, engine.Match{Family: f})
			}
		}
		return
	}
	for _, f := range s.neg.families.list() {
		s.p.eng.Subscribe(s.p, engine.Match{Family: f})
	}
}

// maxPending bounds the events of one engine publication.
const maxPending = 4096

// readLoop reads messages until the session ends. The events of UPDATEs
// that are already in the read buffer are published together: a route
// reflector sending UPDATEs of one route each then costs one engine
// operation per buffer rather than per UPDATE. Nothing waits for the
// network before publication: the batch is published as soon as the next
// message is not entirely buffered (or before an RT Constraint
// subscription change, or when it is large).
func (s *session) readLoop() error {
	defer s.publish()
	hold := time.Duration(s.neg.holdTime) * time.Second
	for {
		if len(s.pending) > 0 && !s.c.rd.ready() {
			s.publish()
		}
		// Any message received restarts the hold timer.
		msg, perr, err := s.c.read(hold)
		if err != nil {
			return err
		}
		switch m := msg.Body.(type) {
		case *bgp.BGPUpdate:
			if eor, f := m.IsEndOfRib(); eor && perr == nil {
				s.endOfRIB(f)
				break
			}
			if err := s.update(m, perr); err != nil {
				return err
			}
			if max := s.p.cfg.MaxPrefixes; max > 0 && s.routes.Len() > max {
				return s.maxPrefixesExceeded()
			}
		case *bgp.BGPKeepAlive:
		case *bgp.BGPRouteRefresh:
			s.log.Debug("ROUTE-REFRESH ignored (capability not announced)")
		default:
			return s.c.fail(bgp.BGP_ERROR_FSM_ERROR, bgp.BGP_ERROR_SUB_RECEIVE_UNEXPECTED_MESSAGE_IN_ESTABLISHED_STATE)
		}
	}
}

// update handles one UPDATE: RFC 7606 error handling, conversion, RT
// Constraint subscriptions; its events join the pending publication.
func (s *session) update(u *bgp.BGPUpdate, perr *bgp.MessageError) error {
	p := s.p
	p.stats.updatesIn.Add(1)
	res, perr := s.decode(u, perr)
	if perr != nil {
		switch perr.ErrorHandling {
		case bgp.ERROR_HANDLING_SESSION_RESET, bgp.ERROR_HANDLING_AFISAFI_DISABLE:
			s.log.Warn("malformed UPDATE", "error", perr.Error())
			s.c.shutdown(notification(perr))
			return &notificationError{code: perr.TypeCode, subcode: perr.SubTypeCode}
		case bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW:
			s.log.Warn("malformed UPDATE treated as withdraw", "error", perr.Error())
			p.stats.treatAsWithdraw.Add(1)
		case bgp.ERROR_HANDLING_ATTRIBUTE_DISCARD:
			s.log.Debug("malformed attribute discarded", "error", perr.Error())
		}
	}
	if res.ownDropped > 0 {
		p.stats.ownDropped.Add(uint64(res.ownDropped))
		if s.debug {
			s.log.Debug("routes with our ORIGINATOR_ID dropped", "count", res.ownDropped)
		}
	}
	if res.ignored > 0 && s.debug {
		s.log.Debug("NLRIs of unused families or EVPN route types ignored", "count", res.ignored)
	}
	if len(res.events) == 0 {
		return nil
	}
	p.stats.routesIn.Add(uint64(len(res.events)))
	if s.debug {
		for _, ev := range res.events {
			s.log.Debug("route received", "event", ev.Kind.String(), "route", describe(ev.Route))
		}
	}
	var changes []rtChange
	if s.neg.rtcActive() {
		changes = s.rtc(res.events)
	}
	if p.cfg.MaxPrefixes > 0 {
		for _, ev := range res.events {
			if ev.Kind == route.Advertise {
				s.routes.Put(ev.Route)
			} else {
				s.routes.Delete(ev.Route.NLRI)
			}
		}
	}
	if len(s.pending) == 0 && p.stale.active.Load() {
		// A batch starts while stale routes wait: a stale sweep due
		// meanwhile follows its publication.
		p.stale.hold()
		s.staleHeld = true
	}
	s.pending = append(s.pending, res.events...)
	if len(changes) > 0 || len(s.pending) >= maxPending {
		s.publish()
	}
	for _, c := range changes {
		s.subscribeRT(c.rt, c.on)
	}
	return nil
}

// publish hands the pending events to the engine, which owns them from
// there (through the stale routes while there are some: see gr.go).
func (s *session) publish() {
	if len(s.pending) == 0 {
		return
	}
	if s.staleHeld || s.p.stale.active.Load() {
		s.p.stale.publish(s.pending)
		s.staleHeld = false
	} else {
		s.p.eng.Publish(s.p, s.pending)
	}
	s.pending = nil
}

// endOfRIB handles the peer's End-of-RIB marker for bgp family f: stale
// routes of the family that were not advertised again are withdrawn, and
// the peer is synced once every negotiated family has had its marker.
func (s *session) endOfRIB(f bgp.Family) {
	rf := routeFamily(f)
	if rf == route.FamilyAny || !s.neg.families.has(rf) {
		s.log.Debug("End-of-RIB of an unused family ignored", "family", f.String())
		return
	}
	s.publish() // what came before the marker first
	if s.debug {
		s.log.Debug("End-of-RIB received", "family", FamilyName(rf))
	}
	first := !s.eorIn.has(rf)
	s.eorIn |= setOf(rf)
	s.p.eorIn.Store(uint32(s.eorIn))
	s.p.stale.endOfRIB(rf)
	if rf == route.RTC && first {
		if s.wildcard {
			// The peer's RTC routes are in: back to what they select.
			s.wildcard = false
			for _, f := range (s.neg.families & vpnFamilies).list() {
				s.p.eng.Unsubscribe(s.p, engine.Match{Family: f})
			}
		}
		if s.vpnEOR != nil {
			close(s.vpnEOR)
		}
	}
	if first && s.eorIn&s.neg.families == s.neg.families {
		s.p.sp.peerSynced(s.p)
	}
}

// maxPrefixesExceeded closes the session: the peer advertised more than
// MaxPrefixes routes. What it sent before is published first (the session
// cleanup then withdraws it all).
func (s *session) maxPrefixesExceeded() error {
	p := s.p
	s.publish()
	p.stats.maxPrefixesExceeded.Add(1)
	s.log.Error("maximum number of prefixes reached: closing the session", "routes", s.routes.Len(), "max_prefixes", p.cfg.MaxPrefixes)
	return s.c.fail(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED)
}

func nlriOf(r *route.Route) route.NLRI { return r.NLRI }

// decode validates u (RFC 7606 error handling, on top of the decoder's) and
// converts it. The returned error, if any, tells how to handle the UPDATE;
// a panic on hostile input resets the session instead of crashing.
func (s *session) decode(u *bgp.BGPUpdate, perr *bgp.MessageError) (res decoded, handling *bgp.MessageError) {
	defer func() {
		if r := recover(); r != nil {
			res = decoded{}
			handling = newMessageError(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, nil,
				fmt.Sprintf("undecodable UPDATE: %v", r))
		}
	}()
	handling = perr
	if perr != nil && perr.ErrorHandling == bgp.ERROR_HANDLING_AFISAFI_DISABLE && s.dropUnknownEVPN(u, perr) {
		handling = nil
	}
	if (handling == nil && !acceptedAsIs(u)) || (handling != nil && handling.ErrorHandling < bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW) {
		if ok, err := bgp.ValidateUpdateMsg(u, presentFamilies(u), false, false, true); !ok {
			me, ok := err.(*bgp.MessageError)
			codeless := !ok || me.TypeCode == 0
			verr := asMessageError(err, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST)
			if codeless {
				// GoBGP's NLRI consistency checks (e.g. Flowspec
				// component order) carry no code: the NLRIs are bad,
				// the session is not.
				verr.ErrorHandling = bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW
			}
			if handling == nil || verr.ErrorHandling > handling.ErrorHandling {
				handling = verr
			}
		}
	}
	if handling != nil && handling.ErrorHandling >= bgp.ERROR_HANDLING_AFISAFI_DISABLE {
		return decoded{}, handling
	}
	asWithdraw := handling != nil && handling.ErrorHandling == bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW
	return s.dec.update(u, asWithdraw), handling
}

// dropUnknownEVPN handles an MP_REACH or MP_UNREACH attribute that GoBGP
// could not decode because it carries an EVPN route type GoBGP does not know
// (types other than 1 to 5, e.g. the RFC 9251 multicast routes). Resetting
// the session would not help: the route reflector would send the route again
// and the session would flap forever. Bagpipe only uses types 2 and 3, so
// the attribute is dropped and the rest of the UPDATE processed.
func (s *session) dropUnknownEVPN(u *bgp.BGPUpdate, e *bgp.MessageError) bool {
	if e.ErrorAttribute == nil || !strings.HasPrefix(e.Message, "Unknown EVPN Route type") {
		return false
	}
	bad := *e.ErrorAttribute
	switch a := bad.(type) {
	case *bgp.PathAttributeMpReachNLRI:
		if bgp.NewFamily(a.AFI, a.SAFI) != bgp.RF_EVPN {
			return false
		}
	case *bgp.PathAttributeMpUnreachNLRI:
		if bgp.NewFamily(a.AFI, a.SAFI) != bgp.RF_EVPN {
			return false
		}
	default:
		return false
	}
	u.PathAttributes = slices.DeleteFunc(u.PathAttributes, func(a bgp.PathAttributeInterface) bool { return a == bad })
	s.unknownEVPN++
	level := slog.LevelDebug
	if s.unknownEVPN == 1 {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "EVPN NLRIs of an unknown route type ignored", "error", e.Message, "count", s.unknownEVPN)
	return true
}

// presentFamilies lists the families of u for GoBGP's validator, which
// would otherwise reject families we ignore later on.
func presentFamilies(u *bgp.BGPUpdate) map[bgp.Family]bgp.BGPAddPathMode {
	m := map[bgp.Family]bgp.BGPAddPathMode{}
	if len(u.NLRI) > 0 || len(u.WithdrawnRoutes) > 0 {
		m[bgp.RF_IPv4_UC] = bgp.BGP_ADD_PATH_NONE
	}
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			m[bgp.NewFamily(a.AFI, a.SAFI)] = bgp.BGP_ADD_PATH_NONE
		case *bgp.PathAttributeMpUnreachNLRI:
			m[bgp.NewFamily(a.AFI, a.SAFI)] = bgp.BGP_ADD_PATH_NONE
		}
	}
	return m
}

// rtChange is a subscription to make (on) or to drop for a route target.
type rtChange struct {
	rt route.RT
	on bool
}

// rtc computes the subscription changes due to the RTC routes of events
// (RFC 4684): each RTC route subscribes the peer to its route target in
// every active VPN family; the default route and partial-length routes
// (Target 0) subscribe to everything. Several RTC routes (from several
// origin ASes) may carry one RT: subscriptions are reference counted.
func (s *session) rtc(events []route.Event) []rtChange {
	var changes []rtChange
	for _, ev := range events {
		n := ev.Route.NLRI
		if n.Family != route.RTC {
			continue
		}
		if ev.Kind == route.Advertise {
			if _, dup := s.rtcRoutes[n]; dup {
				continue
			}
			s.rtcRoutes[n] = n.Target
			s.rtRefs[n.Target]++
			if s.rtRefs[n.Target] == 1 {
				changes = append(changes, rtChange{n.Target, true})
			}
			continue
		}
		rt, ok := s.rtcRoutes[n]
		if !ok {
			continue
		}
		delete(s.rtcRoutes, n)
		if s.rtRefs[rt]--; s.rtRefs[rt] == 0 {
			delete(s.rtRefs, rt)
			changes = append(changes, rtChange{rt, false})
		}
	}
	return changes
}

// subscribeRT subscribes to (or unsubscribes from) rt in the active VPN
// families.
func (s *session) subscribeRT(rt route.RT, on bool) {
	for _, f := range (s.neg.families & vpnFamilies).list() {
		m := engine.Match{Family: f, RT: rt}
		if s.debug {
			s.log.Debug("RT Constraint subscription", "match", m.String(), "subscribe", on)
		}
		if on {
			s.p.eng.Subscribe(s.p, m)
		} else {
			s.p.eng.Unsubscribe(s.p, m)
		}
	}
}

// writer sends the queued route events and the keepalives.
func (s *session) writer() {
	defer s.wg.Done()
	q := s.p.out
	interval := time.Duration(s.neg.holdTime) * time.Second / 3
	var ka <-chan time.Time
	var timer *time.Timer
	if interval > 0 {
		timer = time.NewTimer(interval)
		defer timer.Stop()
		ka = timer.C
	}
	keepalive, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	for {
		var err error
		select {
		case <-s.c.ctx.Done():
			return
		case <-q.notify:
			err = s.drain()
		case <-ka:
			err = s.c.write(keepalive, true)
		}
		if err != nil {
			s.log.Warn("write failed", "error", err)
			s.c.shutdown(nil)
			return
		}
		if timer != nil {
			timer.Reset(interval) // anything sent counts as a keepalive
		}
	}
}

// drain encodes everything queued, then flushes.
func (s *session) drain() error {
	q := s.p.out
	for {
		items := q.take()
		if items == nil {
			return s.c.flush()
		}
		if s.debug {
			for _, it := range items {
				if it.eor != route.FamilyAny {
					s.log.Debug("sending End-of-RIB", "family", it.eor.String())
				} else {
					s.log.Debug("route sent", "event", it.ev.Kind.String(), "route", describe(it.ev.Route))
				}
			}
		}
		n, err := s.enc.encode(items, func(b []byte) error { return s.c.write(b, false) })
		s.p.stats.updatesOut.Add(uint64(n))
		q.recycle(items)
		if err != nil {
			return err
		}
	}
}

// describe formats a route for debug logs.
func describe(r *route.Route) string {
	n := &r.NLRI
	switch n.Family {
	case route.IPv4VPN:
		return fmt.Sprintf("%s rd %s label %d next-hop %s", n.Prefix, n.RD, r.Label, r.NextHop)
	case route.EVPN:
		return fmt.Sprintf("evpn type %d rd %s etag %d mac %s ip %s label %d next-hop %s",
			n.Type, n.RD, n.ETag, n.MAC, n.Prefix, r.Label, r.NextHop)
	case route.RTC:
		return fmt.Sprintf("rtc %d:%s", n.Origin, n.Target)
	case route.FlowVPN:
		return fmt.Sprintf("flow %s rd %s", FlowText(n.Flow), n.RD)
	}
	return n.Family.String()
}
