package vpn

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/bgp"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

var local = netip.MustParseAddr("192.0.2.1")

type fixture struct {
	t     *testing.T
	eng   *engine.Engine
	m     *Manager
	ipvpn *dummy.Driver
	evpn  *dummy.Driver
}

func newFixture(t *testing.T, rtc bool) *fixture {
	return newFixtureWith(t, rtc, nil)
}

// newFixtureWith is newFixture with ipvpn, when not nil, as the IP VPN
// driver instead of the dummy (faultyDriver wraps it).
func newFixtureWith(t *testing.T, rtc bool, ipvpn func(*dummy.Driver) dataplane.Driver) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var rtcCfg *engine.RTCConfig
	if rtc {
		rtcCfg = &engine.RTCConfig{AS: 64512, NextHop: local}
	}
	eng := engine.New(nil, rtcCfg)
	go eng.Run(ctx)
	f := &fixture{t: t, eng: eng, ipvpn: dummy.New(dataplane.IPVPN, local, nil), evpn: dummy.New(dataplane.EVPN, local, nil)}
	var ipd dataplane.Driver = f.ipvpn
	if ipvpn != nil {
		ipd = ipvpn(f.ipvpn)
	}
	f.m = NewManager(Config{Engine: eng, BGPAddress: local, Drivers: []dataplane.Driver{ipd, f.evpn},
		FlowCodec: FlowCodec{Encode: bgp.ClassifierToFlow, Decode: bgp.FlowToClassifier}})
	t.Cleanup(func() {
		f.m.Stop(context.Background())
		cancel()
	})
	return f
}

// settle waits until the engine and every instance processed what is queued.
func (f *fixture) settle() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		f.m.WaitBackground() // redirection VRFs being removed
		if err := f.eng.Sync(ctx); err != nil {
			f.t.Fatal(err)
		}
		for _, inst := range f.m.Instances() {
			// Delivered events count until their dataplane calls are done
			// (those run after the tracker lock is released).
			for inst.pendingEvents() > 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
}

func rts(s ...string) []route.RT {
	var out []route.RT
	for _, x := range s {
		out = append(out, route.MustParseRT(x))
	}
	return out
}

func ipvpnReq(id, mac, ip, port string, rt ...string) *AttachRequest {
	m, _ := route.ParseMAC(mac)
	return &AttachRequest{
		VPNType: dataplane.IPVPN, InstanceID: id, MACString: mac, MAC: m,
		IPString: ip, IP: parseIP(ip),
		LocalPort: &dataplane.LocalPort{LinuxIf: port, Raw: map[string]any{"linuxif": port}},
		ImportRTs: rts(rt...), ExportRTs: rts(rt...),
		GatewayIP: netip.MustParseAddr("10.0.0.254"), Direction: dataplane.Both,
	}
}

func evpnReq(id, mac, ip, port string, rt ...string) *AttachRequest {
	r := ipvpnReq(id, mac, "10.0.0.1/32", port, rt...)
	r.VPNType = dataplane.EVPN
	r.IPString, r.IP = ip, netip.Prefix{}
	if ip != "" {
		r.IP = parseIP(ip)
	}
	r.GatewayIP = netip.Addr{}
	return r
}

// fakePeer is an engine worker that behaves as a BGP peer.
type fakePeer struct {
	src    route.Source
	mu     sync.Mutex
	routes map[route.NLRI]*route.Route
}

func newFakePeer(name string) *fakePeer {
	return &fakePeer{src: route.Source{Name: name, Peer: true}, routes: map[route.NLRI]*route.Route{}}
}
func (p *fakePeer) Source() *route.Source { return &p.src }
func (p *fakePeer) Deliver(evs []route.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range evs {
		if ev.Kind == route.Advertise {
			p.routes[ev.Route.NLRI] = ev.Route
		} else {
			delete(p.routes, ev.Route.NLRI)
		}
	}
}
func (p *fakePeer) snapshot() []*route.Route {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*route.Route
	for _, r := range p.routes {
		out = append(out, r)
	}
	return out
}

func dp(t *testing.T, inst *Instance) *dummy.Instance {
	t.Helper()
	if fi, ok := inst.dp.(*faultyInstance); ok {
		return fi.Instance
	}
	d, ok := inst.dp.(*dummy.Instance)
	if !ok {
		t.Fatalf("instance dataplane is %T", inst.dp)
	}
	return d
}

func TestEVPNLifecycleReleasesEverything(t *testing.T) {
	f := newFixture(t, true)
	peer := newFakePeer("BGP-peer")
	f.eng.Subscribe(peer, engine.Match{}) // everything
	ctx := context.Background()
	if err := f.m.Attach(ctx, evpnReq("e1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:10")); err != nil {
		t.Fatal(err)
	}
	f.settle()
	inst := f.m.Instance("e1")
	if inst == nil || inst.Name != "EVI-1" {
		t.Fatalf("instance %+v", inst)
	}
	got := peer.snapshot()
	var types []uint8
	var rtc int
	for _, r := range got {
		switch r.NLRI.Family {
		case route.EVPN:
			types = append(types, r.NLRI.Type)
			label := r.Label
			if r.NLRI.Type == route.EVPNMulticast {
				label = r.Attrs.PMSI.Label
			}
			if label != inst.label || r.NextHop != local || !r.Attrs.HasRT(route.MustParseRT("64512:10")) {
				t.Errorf("bad EVPN route %+v attrs %+v", r, r.Attrs)
			}
			if !slices.Contains(r.Attrs.Encaps, route.EncapVXLAN) {
				t.Errorf("EVPN route without VXLAN encap: %+v", r.Attrs)
			}
		case route.RTC:
			rtc++
			if r.NLRI.Target != route.MustParseRT("64512:10") || r.NLRI.Origin != 64512 {
				t.Errorf("bad RTC route %+v", r.NLRI)
			}
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, []uint8{route.EVPNMACIP, route.EVPNMulticast}) || rtc != 1 {
		t.Fatalf("peer got EVPN types %v and %d RTC routes; want MAC/IP + IMET and 1 RTC", types, rtc)
	}
	if n := f.m.labels.Count(); n != 2 { // instance label + port label
		t.Fatalf("%d labels in use, want 2", n)
	}
	mac, _ := route.ParseMAC("52:54:00:00:00:01")
	if err := f.m.Detach(ctx, &DetachRequest{VPNType: dataplane.EVPN, InstanceID: "e1", MACString: "52:54:00:00:00:01", MAC: mac, LocalPort: &dataplane.LocalPort{LinuxIf: "tap1"}}); err != nil {
		t.Fatal(err)
	}
	f.settle()
	if f.m.Instance("e1") != nil || f.m.InstanceCount() != 0 {
		t.Fatal("instance not removed by the last detach")
	}
	if n := len(peer.snapshot()); n != 0 {
		t.Fatalf("peer still has %d routes (EVPN and RTC must be withdrawn)", n)
	}
	if f.m.labels.Count() != 0 || f.m.rds.Count() != 0 {
		t.Fatalf("leak: %d labels, %d RDs in use", f.m.labels.Count(), f.m.rds.Count())
	}
	if !dp(t, inst).Cleaned() {
		t.Fatal("dataplane not cleaned up")
	}
	// A later attach recreates the instance with a new id.
	if err := f.m.Attach(ctx, evpnReq("e1", "52:54:00:00:00:01", "", "tap1", "64512:10")); err != nil {
		t.Fatal(err)
	}
	if inst := f.m.Instance("e1"); inst.Name != "EVI-2" {
		t.Fatalf("recreated as %s, want EVI-2", inst.Name)
	}
}

func TestLocalInstancesExchangeRoutes(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	if err := f.m.Attach(ctx, ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1/24", "tap1", "64512:1")); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Attach(ctx, ipvpnReq("v2", "52:54:00:00:00:02", "10.0.0.2/24", "tap2", "64512:1")); err != nil {
		t.Fatal(err)
	}
	f.settle()
	v1, v2 := f.m.Instance("v1"), f.m.Instance("v2")
	lbl2 := v2.macs[mustMAC("52:54:00:00:00:02")].label
	want := []string{"10.0.0.2/32 via 192.0.2.1 label " + itoa(lbl2)}
	if got := dp(t, v1).Remotes(); !slices.Equal(got, want) {
		t.Fatalf("v1 remotes %v, want %v", got, want)
	}
	if got := dp(t, v2).Remotes(); len(got) != 1 {
		t.Fatalf("v2 remotes %v, want v1's route", got)
	}
}

func TestPeerRoutesReachInstanceAndGoWithPeer(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	if err := f.m.Attach(ctx, ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:1")); err != nil {
		t.Fatal(err)
	}
	peer := newFakePeer("BGP-rr")
	f.eng.Subscribe(peer, engine.Match{Family: route.IPv4VPN})
	remote := &route.Route{
		NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(netip.MustParseAddr("192.0.2.2"), 1), Prefix: netip.MustParsePrefix("10.0.0.9/32")},
		Label: 777, NextHop: netip.MustParseAddr("192.0.2.2"),
		Attrs: &route.Attrs{RTs: rts("64512:1"), Encaps: []route.Encap{route.EncapMPLS}},
	}
	other := &route.Route{ // an RT the VRF does not import
		NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(netip.MustParseAddr("192.0.2.2"), 2), Prefix: netip.MustParsePrefix("10.0.0.10/32")},
		Label: 778, NextHop: netip.MustParseAddr("192.0.2.2"),
		Attrs: &route.Attrs{RTs: rts("64512:2")},
	}
	f.eng.Publish(peer, []route.Event{{Kind: route.Advertise, Route: remote}, {Kind: route.Advertise, Route: other}})
	f.settle()
	inst := f.m.Instance("v1")
	if got := dp(t, inst).Remotes(); !slices.Equal(got, []string{"10.0.0.9/32 via 192.0.2.2 label 777"}) {
		t.Fatalf("remotes %v", got)
	}
	// The VRF route reached the peer with label, RD, next hop and RT.
	var found bool
	for _, r := range peer.snapshot() {
		if r.NLRI.Prefix.String() == "10.0.0.1/32" {
			found = true
			ms := inst.macs[mustMAC("52:54:00:00:00:01")]
			if r.Label != ms.label || r.NLRI.RD != inst.rd || r.NextHop != local || !r.Attrs.HasRT(route.MustParseRT("64512:1")) || r.LocalPref() != 100 {
				t.Fatalf("bad advertised route %+v %+v", r, r.Attrs)
			}
		}
	}
	if !found {
		t.Fatal("VRF route not sent to the peer")
	}
	f.eng.Cleanup(peer) // session down
	f.settle()
	if got := dp(t, inst).Remotes(); len(got) != 0 {
		t.Fatalf("remotes after peer loss %v", got)
	}
}

func TestECMPInstallsAllEqualPaths(t *testing.T) {
	f := newFixture(t, false)
	f.ipvpn.SetECMP(true)
	ctx := context.Background()
	if err := f.m.Attach(ctx, ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:1")); err != nil {
		t.Fatal(err)
	}
	peer := newFakePeer("BGP-rr")
	var evs []route.Event
	for i, pe := range []string{"192.0.2.2", "192.0.2.3"} {
		evs = append(evs, route.Event{Kind: route.Advertise, Route: &route.Route{
			NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(netip.MustParseAddr(pe), 1), Prefix: netip.MustParsePrefix("10.0.0.50/32")},
			Label: uint32(100 + i), NextHop: netip.MustParseAddr(pe), Attrs: &route.Attrs{RTs: rts("64512:1")},
		}})
	}
	f.eng.Publish(peer, evs)
	f.settle()
	if got := dp(t, f.m.Instance("v1")).Remotes(); len(got) != 2 {
		t.Fatalf("ECMP remotes %v, want both paths", got)
	}
}

func TestFailedAttachLeavesNothing(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	req := ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:1")
	req.Direction = dataplane.ToPort // the dummy driver refuses it
	err := f.m.Attach(ctx, req)
	if e, ok := err.(*Error); !ok || e.Status != 400 {
		t.Fatalf("err %v, want a 400", err)
	}
	f.settle()
	if f.m.InstanceCount() != 0 || f.m.labels.Count() != 0 || f.m.rds.Count() != 0 {
		t.Fatalf("leftovers: %d instances, %d labels, %d RDs", f.m.InstanceCount(), f.m.labels.Count(), f.m.rds.Count())
	}
	var rtc int
	_ = f.eng.Inspect(ctx, func(v engine.View) { rtc = len(v.GeneratedRTC()) })
	if rtc != 0 {
		t.Fatalf("%d RTC routes left by a failed attach", rtc)
	}
}

func TestRepeatedAttachRules(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	base := ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:1")
	if err := f.m.Attach(ctx, base); err != nil {
		t.Fatal(err)
	}
	// Idempotent re-plug.
	if err := f.m.Attach(ctx, ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:1")); err != nil {
		t.Fatalf("re-plug: %v", err)
	}
	cases := map[string]*AttachRequest{
		"same MAC other port": ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.2", "tap9", "64512:1"),
		"same IP other MAC":   ipvpnReq("v1", "52:54:00:00:00:02", "10.0.0.1", "tap2", "64512:1"),
		"type mismatch":       evpnReq("v1", "52:54:00:00:00:03", "", "tap3", "64512:1"),
		"unsupported direction": func() *AttachRequest {
			r := ipvpnReq("v1", "52:54:00:00:00:04", "10.0.0.4", "tap4", "64512:1")
			r.Direction = dataplane.FromPort
			return r
		}(),
	}
	labelsBefore := f.m.labels.Count()
	for name, req := range cases {
		err := f.m.Attach(ctx, req)
		if e, ok := err.(*Error); !ok || e.Status != 400 {
			t.Errorf("%s: err %v, want 400", name, err)
		}
	}
	if n := len(f.m.Instance("v1").endpoints); n != 1 {
		t.Fatalf("%d endpoints after rejected attaches, want 1", n)
	}
	if f.m.labels.Count() != labelsBefore {
		t.Fatalf("labels leaked by rejected attaches: %d -> %d", labelsBefore, f.m.labels.Count())
	}
	// A new RT set replaces the old one and re-advertises with it.
	peer := newFakePeer("BGP-rr")
	f.eng.Subscribe(peer, engine.Match{Family: route.IPv4VPN})
	if err := f.m.Attach(ctx, ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:2")); err != nil {
		t.Fatal(err)
	}
	f.settle()
	got := peer.snapshot()
	if len(got) != 1 || !slices.Equal(got[0].RTs(), rts("64512:2")) {
		t.Fatalf("after RT change the peer has %v", got)
	}
	inst := f.m.Instance("v1")
	if !slices.Equal(inst.importRTs, rts("64512:2")) {
		t.Fatalf("import RTs %v", inst.importRTs)
	}
}

func TestForcedVNIClash(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	a := evpnReq("e1", "52:54:00:00:00:01", "", "tap1", "64512:1")
	a.VNI = 5000
	if err := f.m.Attach(ctx, a); err != nil {
		t.Fatal(err)
	}
	if inst := f.m.Instance("e1"); inst.label != 5000 {
		t.Fatalf("label %d, want forced VNI 5000", inst.label)
	}
	b := evpnReq("e2", "52:54:00:00:00:02", "", "tap2", "64512:1")
	b.VNI = 5000
	if err := f.m.Attach(ctx, b); err == nil || err.(*Error).Status != 400 {
		t.Fatalf("VNI clash: %v", err)
	}
	if f.m.Instance("e2") != nil {
		t.Fatal("instance created despite the VNI clash")
	}
}

func TestDetachErrors(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	mac := mustMAC("52:54:00:00:00:01")
	err := f.m.Detach(ctx, &DetachRequest{VPNType: dataplane.IPVPN, InstanceID: "nope", MAC: mac, IPString: "10.0.0.1", IP: parseIP("10.0.0.1")})
	if e, ok := err.(*Error); !ok || e.Status != 400 {
		t.Fatalf("unknown VPN: %v", err)
	}
	if err := f.m.Attach(ctx, ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", "64512:1")); err != nil {
		t.Fatal(err)
	}
	err = f.m.Detach(ctx, &DetachRequest{VPNType: dataplane.IPVPN, InstanceID: "v1", MAC: mac, IPString: "10.0.0.7", IP: parseIP("10.0.0.7")})
	if e, ok := err.(*Error); !ok || e.Status != 400 {
		t.Fatalf("unknown endpoint: %v (the reference answered 500)", err)
	}
	if f.m.Instance("v1") == nil {
		t.Fatal("failed detach removed the instance")
	}
}

func mustMAC(s string) route.MAC {
	m, err := route.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// parseIP parses "a.b.c.d[/len]" as the API does (no length: /32).
func parseIP(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}
