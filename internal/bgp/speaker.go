package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"bagpipe/internal/engine"
)

// Router is the BGP speaker as the rest of bagpipe sees it.
type Router interface {
	// Start validates the configuration, opens the listening socket (if
	// configured) and starts one worker per peer. The speaker then runs
	// until Stop; ctx only bounds the start itself.
	Start(ctx context.Context) error
	// Stop sends a Cease NOTIFICATION on every session, closes them,
	// withdraws the routes learned from the peers from the engine and
	// waits for every goroutine to end (or ctx to be done). Stop the
	// speaker before the engine: peers publish to it until they are done.
	Stop(ctx context.Context) error
	// Peers returns a snapshot of every configured peer, in configuration
	// order.
	Peers() []PeerStatus
	// Synced is closed once the initial exchange with the peers is over:
	// every configured peer has reached Established at least once since
	// Start. The daemon then removes the dataplane state adopted from an
	// earlier run that no route confirmed.
	Synced() <-chan struct{}
}

// Speaker is the BGP speaker: one worker per configured peer and an
// optional listener.
type Speaker struct {
	cfg Config
	eng *engine.Engine
	log *slog.Logger

	peers  []*peer
	byAddr map[netip.Addr]*peer

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	ln      net.Listener
	wg      sync.WaitGroup

	synced    chan struct{}
	syncLeft  int // peers not yet established once (guarded by mu)
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
		close(s.synced)
		s.syncClose.Do(func() {})
	}
	return s
}

// Synced implements Router.
func (s *Speaker) Synced() <-chan struct{} { return s.synced }

// peerEstablished records that p reached Established (first time only).
func (s *Speaker) peerEstablished(p *peer) {
	s.mu.Lock()
	first := !p.everUp
	p.everUp = true
	if first {
		s.syncLeft--
	}
	done := s.syncLeft == 0
	s.mu.Unlock()
	if done {
		s.syncClose.Do(func() { close(s.synced) })
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
		addr := net.JoinHostPort(s.cfg.LocalAddress.String(), strconv.Itoa(int(s.cfg.Port)))
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		s.ln = ln
	}
	s.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for _, p := range s.peers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.run(runCtx)
		}()
	}
	if s.ln != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.accept(s.ln)
		}()
	}
	s.log.Info("BGP speaker started", "local_address", s.cfg.LocalAddress.String(), "as", s.cfg.AS,
		"peers", len(s.peers), "listen", s.cfg.Listen, "rtc", s.cfg.EnableRTC)
	return nil
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
		p := s.byAddr[addr]
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
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		for _, p := range s.peers {
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
	out := make([]PeerStatus, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p.status())
	}
	return out
}
