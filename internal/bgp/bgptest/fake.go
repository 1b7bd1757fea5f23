// Package bgptest provides a fake bgp.Router for the tests of other
// packages.
package bgptest

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"

	"bagpipe/internal/bgp"
)

// Fake is an in-memory bgp.Router: Start and Stop only record the calls and
// Peers returns what SetPeers (or UpdatePeers) stored. It is safe for
// concurrent use.
type Fake struct {
	mu       sync.Mutex
	peers    []bgp.PeerStatus
	started  bool
	stopped  bool
	updates  [][]netip.Addr
	StartErr error // returned by Start when set
	// UpdateErr is returned by UpdatePeers when set (nothing changes).
	UpdateErr error
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

// UpdatePeers implements bgp.Router: unless UpdateErr is set, it records
// the call and replaces the peers reported by Peers with idle peers of the
// given addresses (the status of a peer kept is kept).
func (f *Fake) UpdatePeers(_ context.Context, addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.UpdateErr != nil {
		return f.UpdateErr
	}
	f.updates = append(f.updates, slices.Clone(addrs))
	peers := make([]bgp.PeerStatus, 0, len(addrs))
	for _, a := range addrs {
		i := slices.IndexFunc(f.peers, func(p bgp.PeerStatus) bool { return p.PeerAddress == a })
		if i >= 0 {
			peers = append(peers, f.peers[i])
		} else {
			peers = append(peers, bgp.PeerStatus{Name: "BGP-" + a.String(), PeerAddress: a})
		}
	}
	f.peers = peers
	return nil
}

// Updates returns the peer lists given to UpdatePeers, in call order.
func (f *Fake) Updates() [][]netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.updates)
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
