package bgp

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// vpnFams are the families the fake peer announces in the graceful restart
// tests (no RTC: the speaker then sends three End-of-RIB markers).
var vpnFams = []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN, bgp.RF_FS_IPv4_VPN}

// grCap is a Graceful Restart capability for fams.
func grCap(restartTime uint16, nbit, forwarding bool, fams ...bgp.Family) *bgp.CapGracefulRestart {
	var tuples []*bgp.CapGracefulRestartTuple
	for _, f := range fams {
		tuples = append(tuples, bgp.NewCapGracefulRestartTuple(f, forwarding))
	}
	return bgp.NewCapGracefulRestart(false, nbit, restartTime, tuples)
}

// grOpen is the fake peer's OPEN with graceful restart.
func grOpen(restartTime uint16, nbit bool) openOpts {
	o := defaultOpen()
	o.families = vpnFams
	o.gr = grCap(restartTime, nbit, true, vpnFams...)
	return o
}

// waitPeer polls the status of the only peer until cond holds.
func (e *env) waitPeer(what string, cond func(PeerStatus) bool) PeerStatus {
	e.t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		st := e.peerStatus()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: peer status %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lostWithStale waits until the session is down with n stale routes.
func (e *env) lostWithStale(n int) {
	e.t.Helper()
	e.waitPeer("stale routes", func(st PeerStatus) bool {
		return st.Protocol.State != Established && st.GracefulRestart.StaleRoutes == n
	})
}

// expectEvent checks the next event of w.
func expectEvent(t *testing.T, w *fakeWorker, kind route.EventKind, prefix string) route.Event {
	t.Helper()
	ev := w.next(t)
	if ev.Kind != kind || ev.Route.NLRI.Prefix.String() != prefix {
		t.Fatalf("got %v %s, want %v %s", ev.Kind, ev.Route.NLRI.Prefix, kind, prefix)
	}
	return ev
}

// expectWithdrawals checks that the next events of w withdraw prefixes (in
// any order).
func expectWithdrawals(t *testing.T, w *fakeWorker, prefixes ...string) {
	t.Helper()
	var got []string
	for range prefixes {
		ev := w.next(t)
		if ev.Kind != route.Withdraw {
			t.Fatalf("got %v %s, want withdrawals of %v", ev.Kind, ev.Route.NLRI.Prefix, prefixes)
		}
		got = append(got, ev.Route.NLRI.Prefix.String())
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(prefixes))
	if !slices.Equal(got, want) {
		t.Fatalf("withdrawn %v, want %v", got, want)
	}
}

// grSetup starts a speaker with graceful restart, a local worker of the
// IPv4 VPN family, establishes the session with o and receives two routes.
func grSetup(t *testing.T, o openOpts, mod func(*Config)) (*env, *fakeWorker) {
	t.Helper()
	e := newEnv(t, false, func(c *Config) {
		c.GracefulRestart = true
		if mod != nil {
			mod(c)
		}
	})
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 102, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.1.0.0/16")
	expectEvent(t, w, route.Advertise, "10.2.0.0/16")
	return e, w
}

// TestGROpen checks our capability: restart time, N bit, F bit of the
// preserved families only, R bit on the first session only.
func TestGROpen(t *testing.T) {
	e := newEnv(t, false, func(c *Config) {
		c.GracefulRestart = true
		c.RestartTime = 90
		c.Restarted = true
		c.ForwardingPreserved = []route.Family{route.EVPN}
	})
	check := func(open *bgp.BGPOpen, restarting bool) {
		t.Helper()
		var gr *bgp.CapGracefulRestart
		for _, c := range capsOf(open) {
			if c, ok := c.(*bgp.CapGracefulRestart); ok {
				gr = c
			}
		}
		if gr == nil {
			t.Fatal("no Graceful Restart capability")
		}
		if gr.Time != 90 || (gr.Flags&0x08 != 0) != restarting || gr.Flags&0x04 == 0 {
			t.Errorf("capability flags %#x time %d, want restarting=%v, N bit, 90 s", gr.Flags, gr.Time, restarting)
		}
		var fams, forwarding []bgp.Family
		for _, tu := range gr.Tuples {
			f := bgp.NewFamily(tu.AFI, tu.SAFI)
			fams = append(fams, f)
			if tu.Flags&0x80 != 0 {
				forwarding = append(forwarding, f)
			}
		}
		if len(fams) != 4 || !slices.Equal(forwarding, []bgp.Family{bgp.RF_EVPN}) {
			t.Errorf("families %v, forwarding state preserved for %v", fams, forwarding)
		}
	}
	check(e.fp.handshake(defaultOpen()), true)
	e.fp.waitEOR(4)
	e.fp.close()
	check(e.fp.handshake(defaultOpen()), false)
}

// TestGROpenDisabled: without graceful restart, no capability.
func TestGROpenDisabled(t *testing.T) {
	e := newEnv(t, false, nil)
	for _, c := range capsOf(e.fp.handshake(defaultOpen())) {
		if _, ok := c.(*bgp.CapGracefulRestart); ok {
			t.Error("Graceful Restart capability announced while disabled")
		}
	}
}

// TestGRHelper: the routes of a peer whose session is lost stay; when it
// comes back, those it advertises again stay without any event, the others
// are withdrawn at its End-of-RIB.
func TestGRHelper(t *testing.T) {
	o := grOpen(30, false)
	e, w := grSetup(t, o, nil)
	e.fp.close() // TCP loss
	e.lostWithStale(2)

	e.fp.handshake(o)
	e.fp.waitEOR(3)
	if st := e.peerStatus(); st.GracefulRestart.StaleRoutes != 2 || st.GracefulRestart.PeerRestartTime != 30 {
		t.Errorf("status %+v", st.GracefulRestart)
	}
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1")) // identical: no event
	e.fp.send(bgp.NewEndOfRib(bgp.RF_EVPN))                // another family: nothing to sweep
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	expectEvent(t, w, route.Withdraw, "10.2.0.0/16")
	e.fp.send(vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.3.0.0/16") // and nothing about 10.1 before it
	st := e.peerStatus()
	if st.GracefulRestart.StaleRoutes != 0 || st.Stats.StaleRoutesWithdrawn != 1 {
		t.Errorf("status %+v, stats %+v", st.GracefulRestart, st.Stats)
	}
	// The new session is subscribed again (full replay): a local route
	// reaches the peer.
	w2 := newFakeWorker("VRF-2")
	e.eng.Publish(w2, []route.Event{{Kind: route.Advertise, Route: localVPNRoute("10.9.0.0/24", 900, "64512:1")}})
	if adv, _ := reachNLRIs(e.fp.recvUpdate()); len(adv) != 1 {
		t.Errorf("local route not sent after the restart: %v", adv)
	}
}

// TestGRChangedRoute: a stale route advertised again with other attributes
// is replaced (one event), not withdrawn.
func TestGRChangedRoute(t *testing.T) {
	o := grOpen(30, false)
	e, w := grSetup(t, o, nil)
	e.fp.close()
	e.lostWithStale(2)
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 111, "64512:1")) // new label
	ev := expectEvent(t, w, route.Advertise, "10.1.0.0/16")
	if ev.Route.Label != 111 || ev.Replaced == nil || ev.Replaced.Label != 101 {
		t.Errorf("replacement %+v", ev)
	}
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	expectEvent(t, w, route.Withdraw, "10.2.0.0/16")
}

// TestGRRestartTimeExpiry: a peer that does not come back within its
// restart time loses its routes.
func TestGRRestartTimeExpiry(t *testing.T) {
	e, w := grSetup(t, grOpen(1, false), nil)
	e.fp.close() // and never accept again
	e.lostWithStale(2)
	expectWithdrawals(t, w, "10.1.0.0/16", "10.2.0.0/16")
	if st := e.peerStatus(); st.GracefulRestart.StaleRoutes != 0 || st.Stats.StaleRoutesWithdrawn != 2 {
		t.Errorf("status %+v, stats %+v", st.GracefulRestart, st.Stats)
	}
}

// TestGRStaleTime: a peer back without End-of-RIB loses the routes it did
// not advertise again when the stale timer expires.
func TestGRStaleTime(t *testing.T) {
	o := grOpen(30, false)
	e, w := grSetup(t, o, func(c *Config) { c.StaleTime = 300 * time.Millisecond })
	e.fp.close()
	e.lostWithStale(2)
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	expectEvent(t, w, route.Withdraw, "10.2.0.0/16")
	e.fp.send(vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.3.0.0/16")
}

// TestGRNotPreserved: a peer back without the F bit (or without the
// capability) loses its stale routes at once.
func TestGRNotPreserved(t *testing.T) {
	for _, tc := range []struct {
		name string
		back *bgp.CapGracefulRestart
	}{
		{"no forwarding state", grCap(30, false, false, vpnFams...)},
		{"family not announced", grCap(30, false, true, bgp.RF_EVPN)},
		{"no capability", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := grOpen(30, false)
			e, w := grSetup(t, o, nil)
			e.fp.close()
			e.lostWithStale(2)
			o.gr = tc.back
			e.fp.handshake(o)
			expectWithdrawals(t, w, "10.1.0.0/16", "10.2.0.0/16")
		})
	}
}

// TestGRLossReasons: which session losses keep the routes.
func TestGRLossReasons(t *testing.T) {
	cease := bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET, nil)
	hard := bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_HARD_RESET, []byte{6, 4})
	for _, tc := range []struct {
		name  string
		nbit  bool
		notif *bgp.BGPMessage // nil: hold timer expiry
		keep  bool
	}{
		{"Cease without N bit", false, cease, false},
		{"Cease with N bit", true, cease, true},
		{"Hard Reset", true, hard, false},
		{"hold timer", false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := grOpen(30, tc.nbit)
			if tc.notif == nil {
				o.hold = 3 // and no keepalive from the fake peer
			}
			e, w := grSetup(t, o, nil)
			if tc.notif != nil {
				e.fp.send(tc.notif)
			} else if n := e.fp.recvNotification(); n.ErrorCode != bgp.BGP_ERROR_HOLD_TIMER_EXPIRED {
				t.Fatalf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
			}
			if tc.keep {
				e.lostWithStale(2)
				return
			}
			expectWithdrawals(t, w, "10.1.0.0/16", "10.2.0.0/16")
		})
	}
}

// TestGRDisabledLocally: without graceful restart on our side, a peer
// announcing it loses its routes with the session.
func TestGRDisabledLocally(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(grOpen(30, true))
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.1.0.0/16")
	e.fp.close()
	expectEvent(t, w, route.Withdraw, "10.1.0.0/16")
}

// TestGRStop: how Stop closes the session, by forwarding state and N bit.
func TestGRStop(t *testing.T) {
	for _, tc := range []struct {
		name      string
		preserved bool
		nbit      bool
		want      uint8 // Cease subcode; 0: no NOTIFICATION
	}{
		{"preserved, N bit", true, true, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN},
		{"preserved, no N bit", true, false, 0},
		{"not preserved, N bit", false, true, bgp.BGP_ERROR_SUB_HARD_RESET},
		{"not preserved, no N bit", false, false, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false, func(c *Config) {
				c.GracefulRestart = true
				if tc.preserved {
					c.ForwardingPreserved = []route.Family{route.IPv4VPN, route.EVPN}
				}
			})
			e.fp.handshake(grOpen(30, tc.nbit))
			e.fp.waitEOR(3)
			stopped := make(chan struct{})
			defer func() { <-stopped }() // Stop logs to t until it returns
			go func() {
				defer close(stopped)
				stopSpeaker(t, e.sp)
			}()
			if tc.want == 0 {
				for {
					msg, err := e.fp.tryRecv()
					if errors.Is(err, io.EOF) || isReset(err) {
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if _, ok := msg.Body.(*bgp.BGPNotification); ok {
						t.Fatalf("NOTIFICATION sent: %+v", msg.Body)
					}
				}
			}
			n := e.fp.recvNotification()
			if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != tc.want {
				t.Errorf("NOTIFICATION %d/%d, want 6/%d", n.ErrorCode, n.ErrorSubcode, tc.want)
			}
			if tc.want == bgp.BGP_ERROR_SUB_HARD_RESET && !slices.Equal(n.Data, []byte{6, 2}) {
				t.Errorf("Hard Reset data %v, want the Cease/Administrative Shutdown it stands for", n.Data)
			}
		})
	}
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestSynced: Synced waits for the End-of-RIB of every negotiated family.
func TestSynced(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	o := defaultOpen()
	o.families = vpnFams
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	e.fp.send(bgp.NewEndOfRib(bgp.RF_EVPN))
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN)) // again
	e.fp.send(bgp.NewEndOfRib(bgp.RF_RTC_UC))   // not negotiated
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.1.0.0/16") // the markers before it are processed
	if isClosedChan(e.sp.Synced()) {
		t.Fatal("Synced closed before the End-of-RIB of every family")
	}
	if e.peerStatus().GracefulRestart.Synced {
		t.Error("peer reported synced")
	}
	e.fp.send(bgp.NewEndOfRib(bgp.RF_FS_IPv4_VPN))
	select {
	case <-e.sp.Synced():
	case <-time.After(ioTimeout):
		t.Fatal("Synced not closed after every End-of-RIB")
	}
	if !e.peerStatus().GracefulRestart.Synced {
		t.Error("peer not reported synced")
	}
}

// TestSyncedTimeout: a peer that never answers does not block Synced
// forever.
func TestSyncedTimeout(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.SyncTimeout = 200 * time.Millisecond })
	select {
	case <-e.sp.Synced():
	case <-time.After(ioTimeout):
		t.Fatal("Synced not closed after the timeout")
	}
	if e.peerStatus().Protocol.State == Established {
		t.Error("the test expects no session")
	}
}

// TestMaxPrefixes: a peer sending more routes than allowed gets a Cease
// (Maximum Number of Prefixes Reached), loses its routes, and the speaker
// reconnects later.
func TestMaxPrefixes(t *testing.T) {
	o := grOpen(30, true)
	e, w := grSetup(t, o, func(c *Config) {
		c.MaxPrefixes = 2
		c.MaxPrefixesRetry = 300 * time.Millisecond
	})
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 112, "64512:1")) // replaces a route: still 2
	e.fp.send(vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))
	n := e.fp.recvNotification()
	if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED {
		t.Fatalf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
	expectEvent(t, w, route.Advertise, "10.2.0.0/16")
	expectEvent(t, w, route.Advertise, "10.3.0.0/16")
	// Graceful restart does not keep them: we closed on purpose.
	expectWithdrawals(t, w, "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16")
	st := e.peerStatus()
	if st.Stats.MaxPrefixesExceeded != 1 || st.GracefulRestart.StaleRoutes != 0 {
		t.Errorf("stats %+v", st.Stats)
	}
	e.fp.handshake(o) // the speaker comes back after MaxPrefixesRetry
	e.fp.waitEOR(3)
}

// TestUpdatePeers adds and removes peers at run time.
func TestUpdatePeers(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	o := defaultOpen()
	o.families = vpnFams
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.1.0.0/16")

	ip2 := netip.MustParseAddr("127.0.0.3")
	fp2 := newFakePeerAt(t, ip2, e.cfg.Port)
	if err := e.sp.UpdatePeers(t.Context(), []netip.Addr{localIP}); err == nil {
		t.Error("our own address accepted as a peer")
	}
	if err := e.sp.UpdatePeers(t.Context(), []netip.Addr{fakeIP, ip2}); err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.id = ip2
	fp2.handshake(o2)
	fp2.waitEOR(3)

	done := make(chan error, 1)
	go func() { done <- e.sp.UpdatePeers(context.Background(), []netip.Addr{ip2}) }()
	n := e.fp.recvNotification()
	if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_PEER_DECONFIGURED {
		t.Errorf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, route.Withdraw, "10.1.0.0/16")
	peers := e.sp.Peers()
	if len(peers) != 1 || peers[0].PeerAddress != ip2 || peers[0].Protocol.State != Established {
		t.Fatalf("peers %+v", peers)
	}
	// The removed peer never sent End-of-RIB: the remaining one decides.
	if isClosedChan(e.sp.Synced()) {
		t.Fatal("Synced closed early")
	}
	for _, f := range vpnFams {
		fp2.send(bgp.NewEndOfRib(f))
	}
	select {
	case <-e.sp.Synced():
	case <-time.After(ioTimeout):
		t.Fatal("Synced not closed")
	}
}

// eorFamily returns the family of an End-of-RIB UPDATE, or false.
func eorFamily(u *bgp.BGPUpdate) (bgp.Family, bool) {
	eor, f := u.IsEndOfRib()
	return f, eor
}

// TestGRRTCEndOfRIB: with RT Constraint, the End-of-RIB of the VPN families
// follows the routes the peer's RTC routes select, sent after its RTC
// End-of-RIB; a restarting peer gets every VPN route at once, and the
// routes its RTC routes do not select are withdrawn after its RTC
// End-of-RIB.
func TestGRRTCEndOfRIB(t *testing.T) {
	for _, restarting := range []bool{false, true} {
		t.Run(map[bool]string{false: "peer not restarting", true: "restarting peer"}[restarting], func(t *testing.T) {
			e := newEnv(t, true, func(c *Config) { c.GracefulRestart = true })
			w := newFakeWorker("VRF-1")
			rtX, rtY := "64512:77", "64512:78"
			e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN, RT: route.MustParseRT(rtX)})
			e.eng.Publish(w, []route.Event{
				{Kind: route.Advertise, Route: localVPNRoute("10.77.0.0/24", 1000, rtX)},
				{Kind: route.Advertise, Route: localVPNRoute("10.78.0.0/24", 1001, rtY)},
			})
			o := defaultOpen()
			o.gr = grCap(30, true, true, o.families...)
			if restarting {
				o.gr.Flags |= 0x08
			}
			e.fp.handshake(o)
			prefixes := func(us []*bgp.BGPUpdate) (vpn []string, rtc int) {
				for _, u := range us {
					adv, _ := reachNLRIs(u)
					for _, n := range adv {
						switch n := n.(type) {
						case *bgp.LabeledVPNIPAddrPrefix:
							vpn = append(vpn, n.Prefix.String())
						case *bgp.RouteTargetMembershipNLRI:
							rtc++
						}
					}
				}
				slices.Sort(vpn)
				return vpn, rtc
			}
			if restarting {
				vpn, rtc := prefixes(e.fp.waitEOR(4))
				if rtc != 1 || !slices.Equal(vpn, []string{"10.77.0.0/24", "10.78.0.0/24"}) {
					t.Fatalf("before the End-of-RIB markers: RTC routes %d, VPN routes %v", rtc, vpn)
				}
				e.fp.send(rtcUpdate(65000, rtX))
				e.fp.send(bgp.NewEndOfRib(bgp.RF_RTC_UC))
				_, wd := reachNLRIs(e.fp.recvUpdate())
				if len(wd) != 1 || wd[0].(*bgp.LabeledVPNIPAddrPrefix).Prefix.String() != "10.78.0.0/24" {
					t.Fatalf("after the RTC End-of-RIB: withdrawn %v, want 10.78.0.0/24", wd)
				}
				return
			}
			vpn, rtc := prefixes(e.fp.waitEOR(1))
			if rtc != 1 || len(vpn) != 0 {
				t.Fatalf("before the RTC End-of-RIB: RTC routes %d, VPN routes %v", rtc, vpn)
			}
			e.fp.send(rtcUpdate(65000, rtX))
			e.fp.send(bgp.NewEndOfRib(bgp.RF_RTC_UC))
			u := e.fp.recvUpdate()
			if f, eor := eorFamily(u); eor {
				t.Fatalf("End-of-RIB of %v before the selected routes", f)
			}
			if vpn, _ := prefixes([]*bgp.BGPUpdate{u}); !slices.Equal(vpn, []string{"10.77.0.0/24"}) {
				t.Fatalf("VPN routes %v, want 10.77.0.0/24", vpn)
			}
			var fams []bgp.Family
			for len(fams) < 3 {
				f, eor := eorFamily(e.fp.recvUpdate())
				if !eor {
					t.Fatal("UPDATE among the End-of-RIB markers")
				}
				fams = append(fams, f)
			}
			if !slices.Contains(fams, bgp.RF_IPv4_VPN) || !slices.Contains(fams, bgp.RF_EVPN) {
				t.Errorf("End-of-RIB families %v", fams)
			}
		})
	}
}
