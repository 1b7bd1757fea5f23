// Package bgptest provides a fake bgp.Router for the tests of other
// packages.
package bgptest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"bagpipe/internal/bgp"
)

// Fake is an in-memory bgp.Router: Start and Stop only record the calls and
// Peers returns what SetPeers stored. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	peers    []bgp.PeerStatus
	started  bool
	stopped  bool
	StartErr error // returned by Start when set
}

var _ bgp.Router = (*Fake)(nil)

// NewFake returns a fake router reporting peers.
func NewFake(peers ...bgp.PeerStatus) *Fake { return &Fake{peers: peers} }

// Start implements bgp.Router.
func (f *Fake) Start(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.StartErr != nil {
		return f.StartErr
	}
	if f.started {
		return errors.New("bgptest: already started")
	}
	f.started = true
	return nil
}

// Synced implements bgp.Router: the fake has no initial exchange.
func (f *Fake) Synced() <-chan struct{} { return closedChan }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Stop implements bgp.Router.
func (f *Fake) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	return nil
}

// Peers implements bgp.Router.
func (f *Fake) Peers() []bgp.PeerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.peers)
}

// SetPeers replaces the peers reported by Peers.
func (f *Fake) SetPeers(peers ...bgp.PeerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = slices.Clone(peers)
}

// Started reports whether Start succeeded.
func (f *Fake) Started() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started
}

// Stopped reports whether Stop was called.
func (f *Fake) Stopped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}
