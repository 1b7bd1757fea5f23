package bgp

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// dialTimeout bounds one TCP connection attempt.
const dialTimeout = 10 * time.Second

// peer is the worker of one configured BGP peer. Its run goroutine owns the
// connections to the peer: it dials, takes incoming connections from the
// listener, resolves collisions, retries, and cleans the engine up when an
// established session ends. Each connection runs in its own goroutine (see
// conn) and reports to run through events.
type peer struct {
	cfg  *Config
	eng  *engine.Engine
	addr netip.Addr
	src  route.Source
	log  *slog.Logger

	incoming chan net.Conn
	events   chan connEvent

	// out is the writer's inbox; established gates Deliver.
	out         *outQueue
	established atomic.Bool

	stats peerCounters

	mu sync.Mutex // guards st
	st peerState

	// stale holds the routes kept from a lost session (graceful restart).
	stale staleRoutes

	// eorIn is the familySet of the End-of-RIB markers received in the
	// current (or last) session, for the status.
	eorIn atomic.Uint32

	// ctx ends the peer (Speaker.Stop, or removal by UpdatePeers, which
	// sets deconfigured first); done is closed when run returns.
	ctx          context.Context
	cancel       context.CancelFunc
	done         chan struct{}
	deconfigured atomic.Bool

	// Owned by the run goroutine.
	conns        map[*conn]struct{}
	session      *conn
	next         *connEvent // evEstablished of the connection replacing session, waiting for its end
	dialing      bool
	idle         State     // state when no connection is in progress: Idle or Active
	failures     int       // connection attempts failed in a row
	retryAt      time.Time // next connection attempt (zero: none planned)
	penaltyUntil time.Time // no session before (maximum number of prefixes exceeded)
	sp           *Speaker

	// Guarded by sp.mu.
	everUp bool // a session was established once
	synced bool // the peer sent End-of-RIB for every family once
}

// peerState is the part of the status written by the goroutines.
type peerState struct {
	state, prev State
	since       time.Time
	neg         *negotiated // of the current (or last) session
}

type peerCounters struct {
	updatesIn, updatesOut, routesIn, ownDropped, treatAsWithdraw, eventsDropped, sessionsUp atomic.Uint64
	maxPrefixesExceeded                                                                     atomic.Uint64
}

func newPeer(sp *Speaker, addr netip.Addr) *peer {
	name := "BGP-" + addr.String()
	p := &peer{
		cfg:      &sp.cfg,
		eng:      sp.eng,
		addr:     addr,
		src:      route.Source{Name: name, Peer: true},
		log:      sp.log.With("worker", name, "peer", addr.String()), // "worker": per-peer looking glass logs
		incoming: make(chan net.Conn, 4),
		events:   make(chan connEvent),
		out:      newOutQueue(),
		st:       peerState{since: time.Now()},
		conns:    map[*conn]struct{}{},
		sp:       sp,
		done:     make(chan struct{}),
	}
	p.stale.p = p
	return p
}

// Source implements engine.Worker.
func (p *peer) Source() *route.Source { return &p.src }

// Deliver implements engine.Worker: events are queued for the session
// writer, or dropped when no session is established (the replay that
// follows the next establishment covers them).
func (p *peer) Deliver(events []route.Event) {
	if !p.established.Load() {
		p.stats.eventsDropped.Add(uint64(len(events)))
		return
	}
	p.out.pushEvents(events)
}

// connEventKind says what a connection reports to the peer goroutine.
type connEventKind uint8

const (
	evDialed      connEventKind = iota // outgoing TCP connection attempt done (nc or err)
	evOpenSent                         // our OPEN is sent
	evOpenConfirm                      // the peer's OPEN is valid: may we go on? (collision check)
	evEstablished                      // the peer's KEEPALIVE came: may we go on?
	evClosed                           // the connection is closed (err: why)
)

type connEvent struct {
	kind connEventKind
	c    *conn
	nc   net.Conn
	err  error
	neg  *negotiated
}

// run is the peer goroutine.
func (p *peer) run() {
	defer close(p.done)
	ctx := p.ctx
	retry := time.NewTimer(0) // first attempt at once
	defer retry.Stop()
	p.retryAt = time.Now()
	p.setState(Connect)
	var cancelDial context.CancelFunc = func() {}
	for {
		var retryC <-chan time.Time
		if !p.retryAt.IsZero() {
			retryC = retry.C
		}
		select {
		case <-ctx.Done():
			cancelDial()
			p.shutdown()
			return
		case <-retryC:
			p.retryAt = time.Time{}
			if p.session == nil && len(p.conns) == 0 && !p.dialing {
				p.dialing = true
				var dctx context.Context
				dctx, cancelDial = context.WithTimeout(ctx, dialTimeout)
				go p.dial(dctx, cancelDial)
			}
		case nc := <-p.incoming:
			if wait := time.Until(p.penaltyUntil); wait > 0 {
				p.log.Debug("incoming connection refused: maximum number of prefixes exceeded", "retry_in", wait.Round(time.Second).String())
				nc.Close()
				break
			}
			p.startConn(nc, false)
		case ev := <-p.events:
			if d := p.handle(ev, false); d > 0 {
				at := time.Now().Add(d)
				if p.retryAt.IsZero() || at.Before(p.retryAt) {
					p.retryAt = at
					retry.Reset(d)
				}
			}
		}
		p.updateState()
	}
}

// restarting reports whether our OPEN carries the Restart State bit: the
// daemon restarted (Config.Restarted) and no session with the peer was
// established since.
func (p *peer) restarting() bool {
	if !p.cfg.Restarted {
		return false
	}
	p.sp.mu.Lock()
	defer p.sp.mu.Unlock()
	return !p.everUp
}

// jitter multiplies d by a random factor in [1, 1.5).
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/2+1))
}

func (p *peer) dial(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: p.cfg.LocalAddress.AsSlice()}}
	d.SetMultipathTCP(false) // plain TCP: MPTCP sockets refuse TCP MD5
	if pw := p.cfg.md5Password(p.addr); pw != "" {
		d.Control = md5Control(p.addr, pw)
	}
	nc, err := d.DialContext(ctx, "tcp4", net.JoinHostPort(p.addr.String(), strconv.Itoa(int(p.cfg.Port))))
	p.events <- connEvent{kind: evDialed, nc: nc, err: err}
}

// startConn runs the FSM of a new TCP connection.
func (p *peer) startConn(nc net.Conn, outgoing bool) {
	c := newConn(p, nc, outgoing)
	p.conns[c] = struct{}{}
	go c.run()
}

// handle processes a connection event and returns the delay before the
// next connection attempt (0: none needed).
func (p *peer) handle(ev connEvent, stopping bool) time.Duration {
	c := ev.c
	switch ev.kind {
	case evDialed:
		p.dialing = false
		switch {
		case ev.err != nil:
			p.failures++
			level := slog.LevelDebug
			if p.failures == 1 {
				level = slog.LevelInfo // the first of a series only
			}
			p.log.Log(context.Background(), level, "connection failed", "error", ev.err, "attempts", p.failures)
			p.idle = Active
			return jitter(p.cfg.ConnectRetry)
		case stopping || p.session != nil:
			ev.nc.Close()
		default:
			p.startConn(ev.nc, true)
		}
	case evOpenConfirm:
		ok := !stopping && p.resolveCollision(c)
		p.updateState() // before the connection goes on
		c.verdict <- ok
	case evEstablished:
		if !stopping && !c.doomed && p.session != nil && p.session.replaced {
			// The session c replaces is closing: c goes on once its
			// routes are kept as stale (evClosed).
			if p.next != nil {
				p.next.c.verdict <- false // lost a collision with c meanwhile
			}
			p.next = &ev
			break
		}
		p.establish(ev, stopping)
	case evClosed:
		delete(p.conns, c)
		if p.next != nil && p.next.c == c {
			p.next = nil
		}
		if c == p.session {
			p.session = nil
			p.idle = Idle
			if c.replaced {
				ev.err = errPeerReconnected
			}
			p.log.Info("BGP session closed", "reason", errString(ev.err))
			p.mu.Lock()
			neg := p.st.neg
			p.mu.Unlock()
			// Keep the peer's routes as stale (graceful restart), or
			// withdraw them from local workers; either way drop its
			// subscriptions: the next session re-subscribes and gets a
			// full replay.
			if stopping || !p.gracefulLoss(neg, ev.err) || !p.retainRoutes(p.ctx, neg.gr) {
				p.stale.drop()
				p.eng.Cleanup(p)
			}
			if next := p.next; next != nil {
				p.next = nil
				p.establish(*next, stopping)
				return 0
			}
			if maxPrefixesExceeded(ev.err) {
				d := p.cfg.MaxPrefixesRetry
				p.penaltyUntil = time.Now().Add(d)
				p.log.Warn("peer sent more routes than max_prefixes: its routes are withdrawn, reconnecting later",
					"max_prefixes", p.cfg.MaxPrefixes, "retry_in", d.String())
				return d
			}
			return jitter(p.cfg.ReconnectDelay)
		}
		p.log.Debug("connection closed", "outgoing", c.outgoing, "reason", errString(ev.err))
		if p.session == nil && len(p.conns) == 0 && !p.dialing {
			p.idle = Active
			// A connection the peer closed during the OPEN exchange: the
			// first retry comes after the short reconnect delay (a peer
			// that just saw our previous session die, e.g. across our
			// restart, often refuses the first new connection), the
			// following ones after the connect retry time.
			p.failures++
			if p.failures == 1 {
				return jitter(p.cfg.ReconnectDelay)
			}
			return jitter(p.cfg.ConnectRetry)
		}
	}
	return 0
}

// establish answers the evEstablished event ev of a connection: it becomes
// the session unless the peer stops, or it lost a collision, or a session
// is established already.
func (p *peer) establish(ev connEvent, stopping bool) {
	c := ev.c
	ok := !stopping && !c.doomed && p.session == nil
	if ok {
		p.session = c
		p.failures = 0
		p.stats.sessionsUp.Add(1)
		p.mu.Lock()
		p.st.neg = ev.neg
		p.mu.Unlock()
		p.sp.mu.Lock()
		p.everUp = true
		p.sp.mu.Unlock()
		// Before the session publishes anything: stale routes of
		// families the peer no longer preserves go now.
		p.stale.established(ev.neg.gr, p.cfg.StaleTime)
	}
	p.updateState() // Established is visible before the session sends anything
	c.verdict <- ok
}

// resolveCollision applies RFC 4271 §6.8 when c received a valid OPEN: it
// reports whether c may go on. A connection colliding with an established
// session is refused, unless the peer announced graceful restart in that
// session: the peer restarted (RFC 4724 §4.2), the old session is closed as
// if its TCP connection had failed (its routes kept as stale) and c goes on.
// Between two connections in OpenConfirm, the one initiated by the speaker
// with the lower BGP identifier is closed.
func (p *peer) resolveCollision(c *conn) bool {
	if old := p.session; old != nil && !old.replaced {
		p.mu.Lock()
		neg := p.st.neg
		p.mu.Unlock()
		if !p.gracefulLoss(neg, errPeerReconnected) {
			p.log.Info("connection collision with the established session: closing the new connection")
			return false
		}
		p.log.Info("the peer opened a new session while ours is established (graceful restart): closing the old one")
		old.replaced = true
		old.shutdown(nil)
	}
	for o := range p.conns {
		if o == c || o.doomed || State(o.state.Load()) != OpenConfirm {
			continue
		}
		// Close the connection initiated by the lower identifier.
		closeOutgoing := p.cfg.LocalAddress.Less(c.remoteID)
		loser := o
		if c.outgoing == o.outgoing || c.outgoing == closeOutgoing {
			loser = c
		}
		p.log.Info("connection collision", "closing_outgoing", loser.outgoing)
		if loser == c {
			return false
		}
		o.doomed = true
		o.shutdown(bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION, nil))
	}
	return true
}

// shutdown closes every connection (see closing), waits for them and
// withdraws the peer's routes, stale ones included.
func (p *peer) shutdown() {
	for c := range p.conns {
		notif, send := p.closing(c)
		if !send {
			notif = nil
		}
		c.shutdown(notif)
	}
	for p.dialing || len(p.conns) > 0 {
		select {
		case ev := <-p.events:
			p.handle(ev, true)
		case nc := <-p.incoming:
			nc.Close()
		}
	}
	p.drainIncoming()
	p.stale.drop()
	p.eng.Cleanup(p)
	p.idle = Idle
	p.updateState()
}

// closing returns the NOTIFICATION that ends connection c when the peer
// stops, and whether to send one at all. A removed peer gets a Cease (Peer
// De-configured). When the speaker stops, the peer is asked to keep our
// routes if our forwarding state survives the stop (graceful restart), and
// to drop them otherwise: with the RFC 8538 N bit negotiated, a Cease keeps
// them and a Hard Reset drops them; without it, only a NOTIFICATION-less
// close keeps them.
func (p *peer) closing(c *conn) (*bgp.BGPMessage, bool) {
	sub := uint8(bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN)
	keep := p.cfg.GracefulRestart && len(p.cfg.ForwardingPreserved) > 0
	if p.deconfigured.Load() {
		sub, keep = bgp.BGP_ERROR_SUB_PEER_DECONFIGURED, false
	}
	cease := bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, sub, nil)
	if c != p.session {
		return cease, true
	}
	p.mu.Lock()
	neg := p.st.neg
	p.mu.Unlock()
	nbit := neg != nil && neg.gr != nil && neg.gr.notification
	switch {
	case keep && nbit:
		return cease, true
	case keep:
		p.log.Info("closing the session without NOTIFICATION: the peer keeps our routes (graceful restart)")
		return nil, false
	case nbit:
		return bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_HARD_RESET, []byte{bgp.BGP_ERROR_CEASE, sub}), true
	}
	return cease, true
}

// maxPrefixesExceeded reports whether err is the NOTIFICATION we send when
// a peer exceeds MaxPrefixes.
func maxPrefixesExceeded(err error) bool {
	var ne *notificationError
	return errors.As(err, &ne) && !ne.received && ne.code == bgp.BGP_ERROR_CEASE &&
		ne.subcode == bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED
}

// drainIncoming closes connections queued by the listener.
func (p *peer) drainIncoming() {
	for {
		select {
		case nc := <-p.incoming:
			nc.Close()
		default:
			return
		}
	}
}

// updateState derives the reported FSM state from the connections: the
// most advanced one wins.
func (p *peer) updateState() {
	s := p.idle
	if p.dialing {
		s = Connect
	}
	for c := range p.conns {
		s = max(s, State(c.state.Load()))
	}
	if p.session != nil {
		s = Established
	}
	p.setState(s)
}

func (p *peer) setState(s State) {
	p.mu.Lock()
	old := p.st.state
	if old == s {
		p.mu.Unlock()
		return
	}
	p.st.prev, p.st.state, p.st.since = old, s, time.Now()
	p.mu.Unlock()
	level := slog.LevelInfo
	if (old == Connect || old == Active || old == Idle) && (s == Connect || s == Active) {
		level = slog.LevelDebug // retry loop while the peer is unreachable
	}
	p.log.Log(context.Background(), level, "BGP state change", "from", old.String(), "to", s.String())
}

// status returns the looking glass view of the peer.
func (p *peer) status() PeerStatus {
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	ps := PeerStatus{
		Name:         p.src.Name,
		PeerAddress:  p.addr,
		LocalAddress: p.cfg.LocalAddress,
		LocalAS:      p.cfg.AS,
		RTC:          RTCStatus{Enabled: p.cfg.EnableRTC},
		Protocol: ProtocolStatus{
			State:              st.state,
			PreviousState:      st.prev,
			HoldTime:           p.cfg.HoldTime,
			LastTransitionTime: st.since,
		},
		QueueLength: p.out.len(),
		Worker:      p,
		Stats: PeerStats{
			UpdatesReceived:  p.stats.updatesIn.Load(),
			UpdatesSent:      p.stats.updatesOut.Load(),
			RoutesReceived:   p.stats.routesIn.Load(),
			OwnRoutesDropped: p.stats.ownDropped.Load(),
			TreatAsWithdraw:  p.stats.treatAsWithdraw.Load(),
			EventsDropped:    p.stats.eventsDropped.Load(),
			SessionsUp:       p.stats.sessionsUp.Load(),

			StaleRoutesWithdrawn: p.stale.swept.Load(),
			MaxPrefixesExceeded:  p.stats.maxPrefixesExceeded.Load(),
		},
		GracefulRestart: GRStatus{Enabled: p.cfg.GracefulRestart, StaleRoutes: p.stale.count()},
		MaxPrefixes:     p.cfg.MaxPrefixes,
		MD5:             p.cfg.md5Password(p.addr) != "",
	}
	for _, f := range familySet(p.eorIn.Load()).list() {
		ps.GracefulRestart.EndOfRIB = append(ps.GracefulRestart.EndOfRIB, FamilyName(f))
	}
	if p.sp != nil {
		p.sp.mu.Lock()
		ps.GracefulRestart.Synced = p.synced
		p.sp.mu.Unlock()
	}
	if n := st.neg; n != nil {
		ps.PeerAS = n.peerAS
		if n.gr != nil {
			ps.GracefulRestart.Negotiated = p.cfg.GracefulRestart
			ps.GracefulRestart.PeerRestartTime = n.gr.restartTime
			for _, f := range n.gr.families.list() {
				ps.GracefulRestart.PeerFamilies = append(ps.GracefulRestart.PeerFamilies, FamilyName(f))
			}
		}
		if st.state == Established {
			ps.RTC.Active = n.rtcActive()
			ps.Protocol.HoldTime = n.holdTime
			for _, f := range n.families.list() {
				ps.Families = append(ps.Families, FamilyName(f))
			}
		}
	}
	return ps
}

func errString(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}
