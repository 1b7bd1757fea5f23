package bgp

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// capsOf returns the capabilities of an OPEN.
func capsOf(o *bgp.BGPOpen) []bgp.ParameterCapabilityInterface {
	var caps []bgp.ParameterCapabilityInterface
	for _, p := range o.OptParams {
		if pc, ok := p.(*bgp.OptionParameterCapability); ok {
			caps = append(caps, pc.Capability...)
		}
	}
	return caps
}

func TestOpenNegotiation(t *testing.T) {
	e := newEnv(t, true, nil)
	o := defaultOpen()
	o.hold = 90
	o.families = []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN, bgp.RF_IPv6_UC} // no Flowspec, no RTC
	open := e.fp.handshake(o)

	if open.Version != 4 || open.MyAS != testAS || open.HoldTime != 180 || open.ID != localIP {
		t.Errorf("OPEN %+v", open)
	}
	var fams []bgp.Family
	var as4 uint32
	for _, c := range capsOf(open) {
		switch c := c.(type) {
		case *bgp.CapMultiProtocol:
			fams = append(fams, c.CapValue)
		case *bgp.CapFourOctetASNumber:
			as4 = c.CapValue
		default:
			t.Errorf("unexpected capability %v", c.Code())
		}
	}
	want := []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN, bgp.RF_FS_IPv4_VPN, bgp.RF_RTC_UC}
	if !slices.Equal(fams, want) || as4 != testAS {
		t.Errorf("capabilities: families %v, 4-octet AS %d", fams, as4)
	}

	e.fp.waitEOR(2) // End-of-RIB for both active families
	st := e.peerStatus()
	if st.Protocol.State != Established || st.Protocol.PreviousState != OpenConfirm || st.Protocol.HoldTime != 90 ||
		!slices.Equal(st.Families, []string{"(ipv4, mpls-vpn)", "(l2vpn, evpn)"}) ||
		st.RTC != (RTCStatus{Enabled: true, Active: false}) || st.PeerAS != testAS || st.Name != "BGP-127.0.0.2" {
		t.Errorf("status %+v", st)
	}
}

func TestFourOctetAS(t *testing.T) {
	const as = 4200000000
	e := newEnv(t, false, func(c *Config) { c.AS = as })
	o := defaultOpen()
	o.as = as
	open := e.fp.handshake(o)
	if open.MyAS != asTrans {
		t.Errorf("2-octet AS field %d, want AS_TRANS", open.MyAS)
	}
	e.fp.waitEOR(4)
	if st := e.peerStatus(); st.PeerAS != as || st.Protocol.State != Established {
		t.Errorf("status %+v", st)
	}
}

func TestBadOpen(t *testing.T) {
	for _, tc := range []struct {
		name          string
		mod           func(*openOpts)
		code, subcode uint8
		data          []byte
	}{
		{"bad AS", func(o *openOpts) { o.as = 65001 }, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_BAD_PEER_AS, nil},
		{"bad hold time", func(o *openOpts) { o.hold = 2 }, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_UNACCEPTABLE_HOLD_TIME, nil},
		{"bad version", func(o *openOpts) { o.version = 3 }, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_UNSUPPORTED_VERSION_NUMBER, []byte{0, 4}},
		{"same identifier", func(o *openOpts) { o.id = localIP }, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_BAD_BGP_IDENTIFIER, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false, nil)
			e.fp.accept()
			e.fp.recv() // OPEN
			o := defaultOpen()
			tc.mod(&o)
			e.fp.send(o.message())
			n := e.fp.recvNotification()
			if n.ErrorCode != tc.code || n.ErrorSubcode != tc.subcode || !bytes.Equal(n.Data, tc.data) {
				t.Errorf("NOTIFICATION %d/%d %x, want %d/%d %x", n.ErrorCode, n.ErrorSubcode, n.Data, tc.code, tc.subcode, tc.data)
			}
		})
	}
}

// TestMalformedHeader checks that a bad marker resets the session.
func TestMalformedHeader(t *testing.T) {
	e := newEnv(t, false, nil)
	e.fp.handshake(defaultOpen())
	ka := serialize(t, bgp.NewBGPKeepAliveMessage())
	ka[3] = 0
	e.fp.sendRaw(ka)
	n := e.fp.recvNotification()
	if n.ErrorCode != bgp.BGP_ERROR_MESSAGE_HEADER_ERROR || n.ErrorSubcode != bgp.BGP_ERROR_SUB_CONNECTION_NOT_SYNCHRONIZED {
		t.Errorf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
}

// TestHoldTimer checks that UPDATEs alone keep the session up (the
// reference only counted KEEPALIVEs), and that silence then expires the
// hold timer.
func TestHoldTimer(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	o := defaultOpen()
	o.hold = 3
	e.fp.handshake(o)
	eor := serialize(t, bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	// 5 s of UPDATEs only, one per second: longer than the hold time.
	for range 5 {
		e.fp.sendRaw(eor)
		time.Sleep(time.Second)
	}
	e.fp.send(vpnUpdate(t, "10.8.0.0/16", 100, "64512:8"))
	if ev := w.next(t); ev.Kind != route.Advertise || ev.Route.NLRI.Prefix.String() != "10.8.0.0/16" {
		t.Fatalf("got %+v", ev)
	}
	// Now silence: the hold timer expires.
	n := e.fp.recvNotification()
	if n.ErrorCode != bgp.BGP_ERROR_HOLD_TIMER_EXPIRED {
		t.Errorf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
	if ev := w.next(t); ev.Kind != route.Withdraw {
		t.Errorf("route not withdrawn after the session loss: %+v", ev)
	}
}

// TestSplitUpdate sends UPDATEs byte by byte, then several in one write.
func TestSplitUpdate(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(defaultOpen())

	one := serialize(t, vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	for i := range one {
		e.fp.sendRaw(one[i : i+1])
		if i%16 == 0 {
			time.Sleep(time.Millisecond) // let segments go out separately
		}
	}
	var batch []byte
	for i := 2; i <= 4; i++ {
		batch = append(batch, serialize(t, vpnUpdate(t, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16).String(), uint32(100+i), "64512:1"))...)
		batch = append(batch, serialize(t, bgp.NewBGPKeepAliveMessage())...)
	}
	e.fp.sendRaw(batch)
	for i := 1; i <= 4; i++ {
		ev := w.next(t)
		if ev.Kind != route.Advertise || ev.Route.NLRI.Prefix.Addr().As4()[1] != byte(i) || ev.Route.Label != uint32(100+i) {
			t.Fatalf("route %d: %+v", i, ev.Route)
		}
		if ev.Route.Source.Name != "BGP-127.0.0.2" || !ev.Route.Source.Peer {
			t.Errorf("source %+v", ev.Route.Source)
		}
		if !ev.Route.Attrs.HasRT(route.MustParseRT("64512:1")) || ev.Route.NextHop != fakeIP {
			t.Errorf("route %d attributes %+v next hop %v", i, ev.Route.Attrs, ev.Route.NextHop)
		}
	}
}

// TestRTC checks that a peer gets our VPN routes only for the route
// targets of the RTC routes it sent.
func TestRTC(t *testing.T) {
	e := newEnv(t, true, nil)
	w := newFakeWorker("VRF-1")
	rtX, rtY := "64512:77", "64512:78"
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN, RT: route.MustParseRT(rtX)}) // generates RTC (64512, X)
	rX := localVPNRoute("10.77.0.0/24", 1000, rtX)
	rY := localVPNRoute("10.78.0.0/24", 1001, rtY)
	e.eng.Publish(w, []route.Event{{Kind: route.Advertise, Route: rX}, {Kind: route.Advertise, Route: rY}})

	e.fp.handshake(defaultOpen())
	var rtcs []string
	for _, u := range e.fp.waitEOR(4) {
		adv, wd := reachNLRIs(u)
		for _, n := range adv {
			r, ok := n.(*bgp.RouteTargetMembershipNLRI)
			if !ok {
				t.Fatalf("VPN route sent before any RTC route: %v", n)
			}
			rtcs = append(rtcs, r.String())
		}
		if len(wd) > 0 {
			t.Errorf("withdrawal %v", wd)
		}
	}
	if !slices.Equal(rtcs, []string{"64512:64512:77/96"}) {
		t.Errorf("RTC routes sent: %v", rtcs)
	}

	expect := func(kind route.EventKind, prefix string) {
		t.Helper()
		adv, wd := reachNLRIs(e.fp.recvUpdate())
		got := adv
		if kind == route.Withdraw {
			got = wd
		}
		if len(got) != 1 || len(adv)+len(wd) != 1 {
			t.Fatalf("want %v %s, got advertised %v withdrawn %v", kind, prefix, adv, wd)
		}
		if p := got[0].(*bgp.LabeledVPNIPAddrPrefix).Prefix.String(); p != prefix {
			t.Fatalf("want %v %s, got %s", kind, prefix, p)
		}
	}
	e.fp.send(rtcUpdate(65000, rtX))
	expect(route.Advertise, "10.77.0.0/24")
	e.fp.send(rtcUpdate(65001, rtX)) // same RT from another origin
	e.fp.send(rtcWithdraw(65000, rtX))
	e.fp.send(rtcUpdate(65000, rtY))
	expect(route.Advertise, "10.78.0.0/24") // and no withdrawal of X before it
	e.fp.send(rtcWithdraw(65001, rtX))
	expect(route.Withdraw, "10.77.0.0/24")
	e.fp.send(rtcUpdate(0, "")) // default RTC route: everything
	expect(route.Advertise, "10.77.0.0/24")

	// The RTC routes received are stored in the engine like any route.
	var stored int
	e.eng.Inspect(t.Context(), func(v engine.View) {
		for _, r := range v.RoutesOf(e.peerStatus().Worker) {
			if r.NLRI.Family == route.RTC {
				stored++
			}
		}
	})
	if stored != 2 {
		t.Errorf("%d RTC routes stored, want 2", stored)
	}
}

// TestNoRTC checks that a peer without RTC gets every route at once.
func TestNoRTC(t *testing.T) {
	e := newEnv(t, true, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN, RT: route.MustParseRT("64512:77")})
	e.eng.Publish(w, []route.Event{
		{Kind: route.Advertise, Route: localVPNRoute("10.77.0.0/24", 1000, "64512:77")},
		{Kind: route.Advertise, Route: localVPNRoute("10.78.0.0/24", 1001, "64512:78")},
	})
	o := defaultOpen()
	o.families = []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN, bgp.RF_FS_IPv4_VPN}
	e.fp.handshake(o)
	var prefixes []string
	for _, u := range e.fp.waitEOR(3) {
		adv, _ := reachNLRIs(u)
		for _, n := range adv {
			prefixes = append(prefixes, n.(*bgp.LabeledVPNIPAddrPrefix).Prefix.String())
		}
	}
	slices.Sort(prefixes)
	if !slices.Equal(prefixes, []string{"10.77.0.0/24", "10.78.0.0/24"}) {
		t.Errorf("routes sent before End-of-RIB: %v", prefixes)
	}
}

// TestOwnOriginatorDropped checks RFC 4456 §8: a route reflector sending
// our own routes back (ORIGINATOR_ID = our router ID) is ignored.
func TestOwnOriginatorDropped(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(defaultOpen())
	own, _ := bgp.NewPathAttributeOriginatorId(localIP)
	other, _ := bgp.NewPathAttributeOriginatorId(netip.MustParseAddr("10.0.0.9"))
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1", own))
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 102, "64512:1", other))
	if ev := w.next(t); ev.Route.NLRI.Prefix.String() != "10.2.0.0/16" {
		t.Errorf("got %v", ev.Route.NLRI.Prefix)
	}
	if st := e.peerStatus(); st.Stats.OwnRoutesDropped != 1 {
		t.Errorf("stats %+v", st.Stats)
	}
}

// TestTreatAsWithdraw sends a malformed UPDATE: its routes are withdrawn
// and the session stays up (RFC 7606).
func TestTreatAsWithdraw(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(defaultOpen())
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	if ev := w.next(t); ev.Kind != route.Advertise {
		t.Fatalf("got %+v", ev)
	}
	// Same route with an invalid ORIGIN value.
	bad := vpnUpdate(t, "10.1.0.0/16", 101, "64512:1")
	bad.Body.(*bgp.BGPUpdate).PathAttributes[1] = bgp.NewPathAttributeOrigin(7)
	e.fp.send(bad)
	if ev := w.next(t); ev.Kind != route.Withdraw || ev.Route.NLRI.Prefix.String() != "10.1.0.0/16" {
		t.Fatalf("got %+v", ev)
	}
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 102, "64512:1"))
	if ev := w.next(t); ev.Kind != route.Advertise || ev.Route.NLRI.Prefix.String() != "10.2.0.0/16" {
		t.Fatalf("session did not survive: %+v", ev)
	}
	e.fp.send(vpnWithdraw(t, "10.2.0.0/16"))
	if ev := w.next(t); ev.Kind != route.Withdraw {
		t.Fatalf("got %+v", ev)
	}
	if st := e.peerStatus(); st.Stats.TreatAsWithdraw != 1 || st.Protocol.State != Established {
		t.Errorf("status %+v", st)
	}
}

// TestSessionLoss checks that the routes of a lost session are withdrawn
// from local workers, and that the speaker reconnects and replays.
func TestSessionLoss(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	local := localVPNRoute("10.9.0.0/24", 900, "64512:1")
	e.eng.Publish(w, []route.Event{{Kind: route.Advertise, Route: local}})

	o := defaultOpen()
	o.families = []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN, bgp.RF_FS_IPv4_VPN}
	for round := range 2 {
		e.fp.handshake(o)
		got := e.fp.waitEOR(3)
		if len(got) != 1 {
			t.Fatalf("round %d: %d UPDATEs before End-of-RIB", round, len(got))
		}
		e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
		if ev := w.next(t); ev.Kind != route.Advertise {
			t.Fatalf("got %+v", ev)
		}
		e.fp.close()
		if ev := w.next(t); ev.Kind != route.Withdraw || ev.Route.NLRI.Prefix.String() != "10.1.0.0/16" {
			t.Fatalf("round %d: got %+v", round, ev)
		}
	}
	if st := e.peerStatus(); st.Stats.SessionsUp < 2 {
		t.Errorf("stats %+v", st.Stats)
	}
}

// TestStopSendsCease checks the NOTIFICATION sent on Stop.
func TestStopSendsCease(t *testing.T) {
	e := newEnv(t, false, nil)
	e.fp.handshake(defaultOpen())
	e.fp.waitEOR(4)
	stopped := make(chan struct{})
	defer func() { <-stopped }() // Stop logs to t until it returns
	go func() {
		defer close(stopped)
		stopSpeaker(t, e.sp)
	}()
	n := e.fp.recvNotification()
	if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN {
		t.Errorf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
}

// TestCollision opens a second connection from the peer while the
// speaker's own is in OpenConfirm: the one initiated by the lower BGP
// identifier is closed (RFC 4271 §6.8).
func TestCollision(t *testing.T) {
	for _, tc := range []struct {
		name      string
		peerID    netip.Addr
		keepOwnIn bool // the speaker's outgoing connection survives
	}{
		{"peer has the higher identifier", netip.MustParseAddr("127.0.0.2"), false},
		{"peer has the lower identifier", netip.MustParseAddr("126.0.0.1"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false, func(c *Config) { c.Listen = true })
			o := defaultOpen()
			o.id = tc.peerID

			// a: the speaker's connection, in OpenConfirm.
			e.fp.accept()
			a := e.fp
			a.recv()
			a.send(o.message())
			if _, ok := a.recv().Body.(*bgp.BGPKeepAlive); !ok {
				t.Fatal("expected KEEPALIVE")
			}
			// b: the peer's connection.
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: fakeIP.AsSlice()}, Timeout: ioTimeout}
			nc, err := d.Dial("tcp", net.JoinHostPort(localIP.String(), itoa(e.cfg.Port)))
			if err != nil {
				t.Fatal(err)
			}
			b := &fakePeer{t: t}
			b.use(nc)
			t.Cleanup(b.close)
			b.recv() // OPEN
			b.send(o.message())

			loser, winner := a, b
			if tc.keepOwnIn {
				loser, winner = b, a
			}
			n := loser.recvNotification()
			if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION {
				t.Errorf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
			}
			if !tc.keepOwnIn {
				if _, ok := winner.recv().Body.(*bgp.BGPKeepAlive); !ok {
					t.Fatal("expected KEEPALIVE")
				}
			}
			winner.send(bgp.NewBGPKeepAliveMessage())
			winner.waitEOR(4)
			if st := e.peerStatus(); st.Protocol.State != Established {
				t.Errorf("state %v", st.Protocol.State)
			}
		})
	}
}

// TestRefuseUnknownPeer checks that the listener closes connections from
// unconfigured addresses.
func TestRefuseUnknownPeer(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.Listen = true })
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Timeout: ioTimeout}
	nc, err := d.Dial("tcp", net.JoinHostPort(localIP.String(), itoa(e.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("connection not closed: %d %v", n, err)
	}
}

// TestUnknownEVPNRouteType checks that an EVPN route type GoBGP cannot
// decode is ignored instead of resetting the session (which would flap
// forever), and that the rest of the UPDATE is processed.
func TestUnknownEVPNRouteType(t *testing.T) {
	e := newEnv(t, false, nil)
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(defaultOpen())
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	if ev := w.next(t); ev.Kind != route.Advertise {
		t.Fatalf("got %+v", ev)
	}

	rd, _ := bgp.NewRouteDistinguisherIPAddressAS(fakeIP, 1)
	n, _ := bgp.NewEVPNMacIPAdvertisementRoute(rd, bgp.EthernetSegmentIdentifier{}, 0, "52:54:00:00:00:01", netip.Addr{}, []uint32{10})
	reach, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_EVPN, []bgp.PathNLRI{{NLRI: n}}, fakeIP)
	unreach := vpnWithdraw(t, "10.1.0.0/16").Body.(*bgp.BGPUpdate).PathAttributes[0]
	b := serialize(t, bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		reach, unreach, bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
	}, nil))
	// Turn the MAC/IP route (type 2) into a type 7 route.
	i := bytes.Index(b, append([]byte{0, 25, 70, 4}, fakeIP.AsSlice()...))
	if i < 0 || b[i+9] != 2 {
		t.Fatal("EVPN NLRI not found")
	}
	b[i+9] = 7
	e.fp.sendRaw(b)
	if ev := w.next(t); ev.Kind != route.Withdraw || ev.Route.NLRI.Prefix.String() != "10.1.0.0/16" {
		t.Fatalf("got %+v", ev)
	}
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 102, "64512:1"))
	if ev := w.next(t); ev.Kind != route.Advertise || ev.Route.NLRI.Prefix.String() != "10.2.0.0/16" {
		t.Fatalf("session did not survive: %+v", ev)
	}
}

// TestConnectRetry refuses the first session: the speaker tries again.
func TestConnectRetry(t *testing.T) {
	e := newEnv(t, false, nil)
	e.fp.accept()
	e.fp.recv() // OPEN
	e.fp.send(bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_REJECTED, nil))
	e.fp.close()
	e.fp.handshake(defaultOpen())
	e.fp.waitEOR(4)
	if st := e.peerStatus(); st.Protocol.State != Established || st.Stats.SessionsUp != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestConfig(t *testing.T) {
	eng := engine.New(nil, nil)
	for _, cfg := range []Config{
		{AS: 1},                 // no local address
		{LocalAddress: localIP}, // no AS
		{LocalAddress: localIP, AS: 1, Peers: []netip.Addr{localIP}},        // ourselves
		{LocalAddress: localIP, AS: 1, Peers: []netip.Addr{fakeIP, fakeIP}}, // twice
		{LocalAddress: localIP, AS: 1, HoldTime: 2},
		{LocalAddress: netip.MustParseAddr("::1"), AS: 1},
	} {
		if err := New(cfg, eng, nil).Start(t.Context()); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	sp := New(Config{LocalAddress: localIP, AS: 1, Peers: []netip.Addr{fakeIP}}, eng, nil)
	if st := sp.Peers(); len(st) != 1 || st[0].Protocol.State != Idle || st[0].Name != "BGP-127.0.0.2" {
		t.Errorf("status before start: %+v", st)
	}
	if err := sp.Stop(t.Context()); err != nil {
		t.Errorf("stop before start: %v", err)
	}
}

// TestFirstRetryAfterRejectedOpen: a peer that closes the first connection
// during the OPEN exchange (as gobgpd does just after our previous session
// died) is tried again after the reconnect delay, not the connect retry
// time (an hour here: the second handshake would time out).
func TestFirstRetryAfterRejectedOpen(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.ConnectRetry = time.Hour })
	e.fp.accept()
	e.fp.recv() // OPEN
	e.fp.close()
	e.fp.handshake(defaultOpen())
	e.fp.waitEOR(4)
	if st := e.peerStatus(); st.Protocol.State != Established {
		t.Errorf("status %+v", st)
	}
}
