package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// TestStatusGracefulRestartAndLimits checks the looking glass status of a
// peer: graceful restart negotiated, the peer's restart time, the
// End-of-RIB markers received per family (reset by a new session), the
// max_prefixes limit, and whether TCP MD5 is configured for the peer.
func TestStatusGracefulRestartAndLimits(t *testing.T) {
	e := newEnv(t, false, func(c *Config) {
		c.GracefulRestart = true
		c.MaxPrefixes = 10
		c.PeerMD5Passwords = map[netip.Addr]string{netip.MustParseAddr("127.0.0.9"): "other peer"}
	})
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	if st := e.peerStatus(); st.MaxPrefixes != 10 || st.MD5 || st.GracefulRestart.Negotiated || len(st.GracefulRestart.EndOfRIB) != 0 {
		t.Errorf("status before the session: %+v", st)
	}

	e.fp.handshake(grOpen(90, true))
	e.fp.send(bgp.NewEndOfRib(bgp.RF_EVPN))
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	w.next(t) // the End-of-RIB markers before it are processed
	st := e.peerStatus()
	gr := st.GracefulRestart
	if !gr.Enabled || !gr.Negotiated || gr.PeerRestartTime != 90 || gr.StaleRoutes != 0 ||
		!slices.Equal(gr.EndOfRIB, []string{"(ipv4, mpls-vpn)", "(l2vpn, evpn)"}) || gr.Synced {
		t.Errorf("graceful restart status %+v", gr)
	}
	e.fp.send(bgp.NewEndOfRib(bgp.RF_FS_IPv4_VPN))
	gr = e.waitPeer("synced", func(st PeerStatus) bool { return st.GracefulRestart.Synced }).GracefulRestart
	if !slices.Equal(gr.EndOfRIB, []string{"(ipv4, mpls-vpn)", "(l2vpn, evpn)", "(ipv4, flow-vpn)"}) {
		t.Errorf("End-of-RIB received %v", gr.EndOfRIB)
	}

	// A new session without graceful restart: nothing negotiated, no
	// End-of-RIB yet.
	e.fp.close()
	e.fp.handshake(defaultOpen())
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 102, "64512:1"))
	for ev := w.next(t); ev.Kind != route.Advertise || ev.Route.NLRI.Prefix.String() != "10.2.0.0/16"; ev = w.next(t) {
	}
	gr = e.peerStatus().GracefulRestart
	if gr.Negotiated || gr.PeerRestartTime != 0 || len(gr.EndOfRIB) != 0 || !gr.Enabled {
		t.Errorf("graceful restart status of a session without it: %+v", gr)
	}

	// TCP MD5: per peer, or for all of them.
	for _, cfg := range []Config{
		{LocalAddress: localIP, AS: 1, Peers: []netip.Addr{fakeIP}, MD5Password: "secret"},
		{LocalAddress: localIP, AS: 1, Peers: []netip.Addr{fakeIP}, PeerMD5Passwords: map[netip.Addr]string{fakeIP: "secret"}},
	} {
		if st := New(cfg, e.eng, nil).Peers(); len(st) != 1 || !st[0].MD5 || st[0].MaxPrefixes != 0 {
			t.Errorf("%+v: status %+v", cfg, st)
		}
	}
	if st := New(Config{LocalAddress: localIP, AS: 1, Peers: []netip.Addr{fakeIP}, MD5Password: "secret",
		PeerMD5Passwords: map[netip.Addr]string{fakeIP: ""}}, e.eng, nil).Peers(); st[0].MD5 {
		t.Error("MD5 disabled for the peer, status says configured")
	}
}
