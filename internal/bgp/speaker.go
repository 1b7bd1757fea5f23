package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"bagpipe/internal/engine"
)

// Router is the BGP speaker as the rest of bagpipe sees it.
type Router interface {
	// Start validates the configuration, opens the listening socket (if
	// configured) and starts one worker per peer. The speaker then runs
	// until Stop; ctx only bounds the start itself.
	Start(ctx context.Context) error
	// Stop closes every session, withdraws the routes learned from the
	// peers from the engine and waits for every goroutine to end (or ctx
	// to be done). Peers are sent a Cease NOTIFICATION, unless graceful
	// restart asks them to keep our routes (see Config.ForwardingPreserved).
	// Stop the speaker before the engine: peers publish to it until they
	// are done.
	Stop(ctx context.Context) error
	// Peers returns a snapshot of every configured peer, in configuration
	// order.
	Peers() []PeerStatus
	// UpdatePeers replaces the list of peers of a started speaker: new
	// peers get a worker (and their TCP MD5 key, if any, on the listener);
	// removed peers get a Cease NOTIFICATION (Peer De-configured) and their
	// routes are withdrawn; the others are left alone. It returns once the
	// removed peers are gone (or ctx is done). An invalid list changes
	// nothing.
	UpdatePeers(ctx context.Context, peers []netip.Addr) error
	// Synced is closed once the initial exchange with the peers is over:
	// every configured peer has sent End-of-RIB for every negotiated
	// family (on its first session), or Config.SyncTimeout has passed
	// since Start. The daemon then removes the dataplane state adopted
	// from an earlier run that no route confirmed.
	Synced() <-chan struct{}
}

// Speaker is the BGP speaker: one worker per configured peer and an
// optional listener.
type Speaker struct {
	cfg Config
	eng *engine.Engine
	log *slog.Logger

	mu      sync.Mutex
	peers   []*peer // in configuration order
	byAddr  map[netip.Addr]*peer
	started bool
	stopped bool
	runCtx  context.Context
	cancel  context.CancelFunc
	ln      net.Listener
	wg      sync.WaitGroup

	synced    chan struct{}
	syncLeft  int // peers not synced yet (guarded by mu)
	syncClose sync.Once
}

var _ Router = (*Speaker)(nil)

// New returns a speaker for cfg publishing to and subscribing from eng.
// Zero fields of cfg take their defaults; the configuration is validated by
// Start.
func New(cfg Config, eng *engine.Engine, log *slog.Logger) Router {
	if log == nil {
		log = slog.Default()
	}
	s := &Speaker{
		cfg:    cfg.withDefaults(),
		eng:    eng,
		log:    log.With("component", "bgp"),
		byAddr: map[netip.Addr]*peer{},
		synced: make(chan struct{}),
	}
	for _, addr := range s.cfg.Peers {
		if _, dup := s.byAddr[addr]; dup {
			continue // reported by Start
		}
		p := newPeer(s, addr)
		s.peers = append(s.peers, p)
		s.byAddr[addr] = p
	}
	s.syncLeft = len(s.peers)
	if s.syncLeft == 0 {
		s.closeSynced("no peer")
	}
	return s
}

// Synced implements Router.
func (s *Speaker) Synced() <-chan struct{} { return s.synced }

func (s *Speaker) closeSynced(why string, args ...any) {
	s.syncClose.Do(func() {
		close(s.synced)
		s.log.Info("initial BGP synchronisation over: "+why, args...)
	})
}

// peerSynced records that p sent End-of-RIB for every negotiated family
// (first time only).
func (s *Speaker) peerSynced(p *peer) {
	s.mu.Lock()
	first := !p.synced && s.byAddr[p.addr] == p
	p.synced = true
	if first {
		s.syncLeft--
	}
	done := s.syncLeft == 0
	s.mu.Unlock()
	if first {
		p.log.Info("initial End-of-RIB received from the peer")
	}
	if done {
		s.closeSynced("End-of-RIB received from every peer")
	}
}

// syncTimeout closes Synced after SyncTimeout if the peers did not.
func (s *Speaker) syncTimeout(ctx context.Context) {
	t := time.NewTimer(s.cfg.SyncTimeout)
	defer t.Stop()
	select {
	case <-s.synced:
	case <-ctx.Done():
	case <-t.C:
		s.mu.Lock()
		var missing []string
		for _, p := range s.peers {
			if !p.synced {
				missing = append(missing, p.addr.String())
			}
		}
		s.mu.Unlock()
		s.closeSynced("timeout waiting for End-of-RIB", "timeout", s.cfg.SyncTimeout.String(), "peers_missing", missing)
	}
}

// Start implements Router.
func (s *Speaker) Start(ctx context.Context) error {
	if err := s.cfg.validate(); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	if s.eng == nil {
		return errors.New("bgp: no route engine")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("bgp: speaker already started")
	}
	if s.cfg.Listen {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false) // plain TCP: MPTCP sockets refuse TCP MD5
		addr := net.JoinHostPort(s.cfg.LocalAddress.String(), strconv.Itoa(int(s.cfg.Port)))
		ln, err := lc.Listen(ctx, "tcp4", addr)
		if err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		for _, p := range s.peers {
			if pw := s.cfg.md5Password(p.addr); pw != "" {
				if err := setListenerMD5(ln, p.addr, pw); err != nil {
					ln.Close()
					return fmt.Errorf("bgp: %w", err)
				}
			}
		}
		s.ln = ln
	}
	s.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.runCtx, s.cancel = runCtx, cancel
	for _, p := range s.peers {
		s.startPeerLocked(p)
	}
	if s.ln != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.accept(s.ln)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.syncTimeout(runCtx)
	}()
	s.log.Info("BGP speaker started", "local_address", s.cfg.LocalAddress.String(), "as", s.cfg.AS,
		"peers", len(s.peers), "listen", s.cfg.Listen, "rtc", s.cfg.EnableRTC,
		"graceful_restart", s.cfg.GracefulRestart, "md5", s.cfg.MD5Password != "" || len(s.cfg.PeerMD5Passwords) > 0,
		"max_prefixes", s.cfg.MaxPrefixes)
	return nil
}

// startPeerLocked starts the goroutine of p (s.mu held, speaker started).
func (s *Speaker) startPeerLocked(p *peer) {
	p.ctx, p.cancel = context.WithCancel(s.runCtx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.run()
	}()
}

// accept hands incoming connections to their peer; connections from other
// addresses are closed.
func (s *Speaker) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("BGP listener failed", "error", err)
			}
			return
		}
		var addr netip.Addr
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			addr, _ = netip.AddrFromSlice(ta.IP)
			addr = addr.Unmap()
		}
		s.mu.Lock()
		p := s.byAddr[addr]
		s.mu.Unlock()
		if p == nil {
			s.log.Warn("connection from an unknown peer refused", "remote", nc.RemoteAddr().String())
			nc.Close()
			continue
		}
		select {
		case p.incoming <- nc:
		default:
			p.log.Warn("too many incoming connections, closing one")
			nc.Close()
		}
	}
}

// UpdatePeers implements Router.
func (s *Speaker) UpdatePeers(ctx context.Context, addrs []netip.Addr) error {
	if err := errors.Join(validatePeers(addrs, s.cfg.LocalAddress)...); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return errors.New("bgp: speaker not running")
	}
	want := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	var removed []*peer
	for _, p := range s.peers {
		if !want[p.addr] {
			removed = append(removed, p)
		}
	}
	// Keys of new peers first: a failure changes nothing.
	var added []netip.Addr
	for _, a := range addrs {
		if s.byAddr[a] != nil {
			continue
		}
		if pw := s.cfg.md5Password(a); pw != "" && s.ln != nil {
			if err := setListenerMD5(s.ln, a, pw); err != nil {
				for _, b := range added {
					if s.cfg.md5Password(b) != "" {
						_ = setListenerMD5(s.ln, b, "")
					}
				}
				s.mu.Unlock()
				return fmt.Errorf("bgp: %w", err)
			}
		}
		added = append(added, a)
	}
	peers := make([]*peer, 0, len(addrs))
	for _, a := range addrs {
		p := s.byAddr[a]
		if p == nil {
			p = newPeer(s, a)
			s.byAddr[a] = p
			if !isClosed(s.synced) {
				s.syncLeft++
			}
			s.startPeerLocked(p)
			p.log.Info("BGP peer added")
		}
		peers = append(peers, p)
	}
	for _, p := range removed {
		delete(s.byAddr, p.addr)
		if !p.synced {
			s.syncLeft--
		}
		p.deconfigured.Store(true)
		p.cancel()
	}
	s.peers = peers
	done := s.syncLeft <= 0
	s.mu.Unlock()
	if done {
		s.closeSynced("End-of-RIB received from every peer")
	}

	for _, p := range removed {
		select {
		case <-p.done:
		case <-ctx.Done():
			return fmt.Errorf("bgp: removing peer %v: %w", p.addr, ctx.Err())
		}
		p.drainIncoming()
		if s.ln != nil && s.cfg.md5Password(p.addr) != "" {
			if err := setListenerMD5(s.ln, p.addr, ""); err != nil {
				p.log.Warn("removing the TCP MD5 key of the peer from the listener failed", "error", err)
			}
		}
		p.log.Info("BGP peer removed")
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Stop implements Router.
func (s *Speaker) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.cancel()
	if s.ln != nil {
		s.ln.Close()
	}
	peers := slices.Clone(s.peers)
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		for _, p := range peers {
			p.drainIncoming() // accepted just before the listener closed
		}
		close(done)
	}()
	select {
	case <-done:
		s.log.Info("BGP speaker stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bgp: stop: %w", ctx.Err())
	}
}

// Peers implements Router.
func (s *Speaker) Peers() []PeerStatus {
	s.mu.Lock()
	peers := slices.Clone(s.peers)
	s.mu.Unlock()
	out := make([]PeerStatus, 0, len(peers))
	for _, p := range peers {
		out = append(out, p.status())
	}
	return out
}
