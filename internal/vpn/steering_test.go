package vpn

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/bgp"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/dataplane/instrumented"
	"bagpipe/internal/engine"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/route"
)

// Tests replaying the reference's TestVRF re-advertisement, attract
// traffic and redirection tests (networking_bagpipe/tests/unit/
// bagpipe_bgp/test_vpn_instance.py, test_vpn_manager.py) through the
// engine and the dummy dataplane: a fake BGP peer subscribed to everything
// sends the received routes and records what the VRFs advertise.

var (
	rt1 = route.MustParseRT("64512:10")
	rt2 = route.MustParseRT("64512:20")
	rt3 = route.MustParseRT("64512:30")
	rt4 = route.MustParseRT("64512:40")
	rt5 = route.MustParseRT("64512:50")
	rt6 = route.MustParseRT("64512:60")

	nh1 = netip.MustParseAddr("192.0.2.11")
	nh2 = netip.MustParseAddr("192.0.2.12")

	// tcpPort80 is ATTRACT_TRAFFIC_1's classifier {"destinationPort": "80",
	// "protocol": "tcp"}.
	tcpPort80 = route.Classifier{Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}}
)

// tc returns the attract classifier with destination p (TC1, TC2...).
func tc(p string) route.Classifier {
	c := tcpPort80
	c.Dst = netip.MustParsePrefix(p)
	return c
}

type steerFixture struct {
	*fixture
	peer *fakePeer
	ctx  context.Context
}

func newSteerFixture(t *testing.T) *steerFixture {
	f := &steerFixture{fixture: newFixture(t, false), peer: newFakePeer("BGP-peer"), ctx: context.Background()}
	f.eng.Subscribe(f.peer, engine.Match{})
	return f
}

// vrfReq is an attach to VRF "v" importing and exporting RT1.
func vrfReq(mac, ip, port string) *AttachRequest {
	return ipvpnReq("v", mac, ip, port, rt1.String())
}

func readvReq(mac, ip, port string) *AttachRequest {
	r := vrfReq(mac, ip, port)
	r.Readvertise = &Readvertise{FromRTs: []route.RT{rt3}, ToRTs: []route.RT{rt4}}
	return r
}

// attractReq is readvReq with ATTRACT_TRAFFIC_1.
func attractReq(mac, ip, port string) *AttachRequest {
	r := readvReq(mac, ip, port)
	r.AttractTraffic = &AttractTraffic{RedirectRTs: []route.RT{rt5}, Match: tcpPort80,
		Classifier: map[string]any{"destinationPort": "80", "protocol": "tcp"}}
	return r
}

// staticAttract is ATTRACT_STATIC_1/2 (to_rt RT4, static prefixes).
func staticAttract(prefixes ...string) *AttractTraffic {
	at := &AttractTraffic{RedirectRTs: []route.RT{rt5}, Match: tcpPort80, ToRTs: []route.RT{rt4},
		Classifier: map[string]any{"destinationPort": "80", "protocol": "tcp"}}
	for _, p := range prefixes {
		at.StaticDestinationPrefixes = append(at.StaticDestinationPrefixes, netip.MustParsePrefix(p))
	}
	return at
}

func (f *steerFixture) attach(req *AttachRequest) {
	f.t.Helper()
	if err := f.m.Attach(f.ctx, req); err != nil {
		f.t.Fatalf("attach %s %s: %v", req.MACString, req.IPString, err)
	}
	f.settle()
}

func (f *steerFixture) detach(id, mac, ip string) {
	f.t.Helper()
	if err := f.m.Detach(f.ctx, &DetachRequest{VPNType: dataplane.IPVPN, InstanceID: id, MACString: mac, MAC: mustMAC(mac),
		IPString: ip, IP: parseIP(ip), LocalPort: &dataplane.LocalPort{LinuxIf: "x"}}); err != nil {
		f.t.Fatalf("detach %s %s: %v", mac, ip, err)
	}
	f.settle()
}

func (f *steerFixture) send(kind route.EventKind, rs ...*route.Route) {
	f.t.Helper()
	var evs []route.Event
	for _, r := range rs {
		evs = append(evs, route.Event{Kind: kind, Route: r})
	}
	f.eng.Publish(f.peer, evs)
	f.settle()
}

// received builds a VPNv4 route as a remote PE sends it.
func received(prefix string, rdN uint16, label uint32, nh netip.Addr, rts []route.RT, records ...route.RT) *route.Route {
	return &route.Route{
		NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(nh, rdN), Prefix: netip.MustParsePrefix(prefix)},
		Label: label, NextHop: nh,
		Attrs: &route.Attrs{RTs: rts, RTRecords: records, Encaps: []route.Encap{route.EncapMPLS}},
	}
}

// receivedFlow builds a Flowspec-VPN route redirecting c's traffic to
// redirect.
func (f *steerFixture) receivedFlow(c route.Classifier, rdN uint16, nh netip.Addr, rts []route.RT, redirect route.RT, records ...route.RT) *route.Route {
	f.t.Helper()
	flow, err := bgp.ClassifierToFlow(c)
	if err != nil {
		f.t.Fatal(err)
	}
	return &route.Route{
		NLRI:  route.NLRI{Family: route.FlowVPN, RD: route.NewRDIP(nh, rdN), Flow: flow},
		Attrs: &route.Attrs{RTs: rts, RTRecords: records, Redirect: redirect, HasRedirect: true},
	}
}

// sentBy returns the routes the peer holds from the instance, by NLRI.
func (f *steerFixture) sentBy(inst *Instance) map[route.NLRI]*route.Route {
	out := map[route.NLRI]*route.Route{}
	for _, r := range f.peer.snapshot() {
		if r.Source != nil && r.Source.Name == inst.Name {
			out[r.NLRI] = r
		}
	}
	return out
}

// advertised describes what an instance advertises: one line per route,
// sorted.
func (f *steerFixture) advertised(inst *Instance) []string {
	var out []string
	for _, r := range f.sentBy(inst) {
		out = append(out, f.describe(inst, r))
	}
	slices.Sort(out)
	return out
}

// describe names a route of an instance: "vif <prefix>", "readv <prefix>
// <endpoint>", "default <endpoint>", "flow <classifier>".
func (f *steerFixture) describe(inst *Instance, r *route.Route) string {
	switch r.NLRI.Family {
	case route.FlowVPN:
		c, err := bgp.FlowToClassifier(r.NLRI.Flow)
		if err != nil {
			return "flow ?"
		}
		return "flow " + c.String()
	case route.IPv4VPN:
		if r.NLRI.RD == inst.rd {
			return "vif " + r.NLRI.Prefix.String()
		}
		ep := f.endpointOfRD(inst, r.NLRI.RD)
		if r.NLRI.Prefix == defaultPrefix {
			return "default " + ep
		}
		if r.Attrs.HasRT(rt4) {
			return "readv " + r.NLRI.Prefix.String() + " " + ep
		}
		return "vif " + r.NLRI.Prefix.String() + " " + ep
	}
	return "?"
}

func (f *steerFixture) endpointOfRD(inst *Instance, rd route.RD) string {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	for _, ep := range inst.endpoints {
		if ep.rd == rd {
			return ep.key.ip.Addr().String()
		}
	}
	return "unknown-endpoint"
}

func (f *steerFixture) expect(inst *Instance, want ...string) {
	f.t.Helper()
	slices.Sort(want)
	if got := f.advertised(inst); !slices.Equal(got, want) {
		f.t.Fatalf("%s advertises\n  %s\nwant\n  %s", inst.Name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (f *steerFixture) endpoint(inst *Instance, mac, ip string) *endpoint {
	f.t.Helper()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	ep := inst.endpoints[epKey{mac: mustMAC(mac), ip: parseIP(ip)}]
	if ep == nil {
		f.t.Fatalf("no endpoint %s %s", mac, ip)
	}
	return ep
}

// route returns the route of an instance with the given description.
func (f *steerFixture) route(inst *Instance, desc string) *route.Route {
	f.t.Helper()
	for _, r := range f.sentBy(inst) {
		if f.describe(inst, r) == desc {
			return r
		}
	}
	f.t.Fatalf("%s does not advertise %q", inst.Name, desc)
	return nil
}

func hasRemote(inst *Instance, t *testing.T, prefix string) bool {
	for _, r := range dp(t, inst).Remotes() {
		if strings.HasPrefix(r, prefix+" ") {
			return true
		}
	}
	return false
}

func sameSet[T comparable](a, b []T) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x T) bool { return !slices.Contains(b, x) })
}

// checkReadv checks a re-advertised route (spec §6.7).
func (f *steerFixture) checkReadv(inst *Instance, r *route.Route, ep *endpoint, from *route.Route, records ...route.RT) {
	f.t.Helper()
	a := r.Attrs
	if r.NLRI.Prefix != from.NLRI.Prefix || r.NLRI.RD != ep.rd || r.NLRI.RD == from.NLRI.RD || r.NLRI.RD == inst.rd {
		f.t.Errorf("re-advertised NLRI %+v (endpoint RD %s, received RD %s)", r.NLRI, ep.rd, from.NLRI.RD)
	}
	if r.Label != ep.mac.label || r.Label == from.Label || r.NextHop != local {
		f.t.Errorf("re-advertised label %d next hop %s, want port label %d and %s", r.Label, r.NextHop, ep.mac.label, local)
	}
	if !slices.Equal(a.RTs, []route.RT{rt4}) || !sameSet(a.RTRecords, records) {
		f.t.Errorf("re-advertised RTs %v RT-Records %v, want [%s] and %v", a.RTs, a.RTRecords, rt4, records)
	}
	if !a.HasHashOrder || a.HashOrder != ep.mac.lbOrder || !slices.Equal(a.Encaps, []route.Encap{route.EncapMPLS}) {
		f.t.Errorf("re-advertised attributes %+v", a)
	}
	if (ep.localPref == nil) == a.HasLocalPref || (ep.localPref != nil && a.LocalPref != *ep.localPref) {
		f.t.Errorf("re-advertised local pref %v/%d, endpoint %v", a.HasLocalPref, a.LocalPref, ep.localPref)
	}
}

// TestReadvertisement replays test_re_advertisement_1.
func TestReadvertisement(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	ep1 := f.endpoint(v, "52:54:00:00:00:01", "10.0.0.1")
	if ep1.rd == v.rd || !ep1.ownRD {
		t.Fatalf("endpoint of a re-advertising VRF without its own RD: %s", ep1.rd)
	}
	// The VIF route itself keeps the instance RD.
	f.expect(v, "vif 10.0.0.1/32")

	// An imported route: installed, not re-advertised.
	nlri1 := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt1, rt2})
	f.send(route.Advertise, nlri1)
	f.expect(v, "vif 10.0.0.1/32")
	if !hasRemote(v, t, "1.1.1.1/32") {
		t.Fatalf("imported route not in the dataplane: %v", dp(t, v).Remotes())
	}

	// A route of from_rt: re-advertised to RT4 with RT-Records, not installed.
	nlri2 := received("2.2.2.2/32", 2, 200, nh1, []route.RT{rt3}, rt1)
	f.send(route.Advertise, nlri2)
	f.expect(v, "vif 10.0.0.1/32", "readv 2.2.2.2/32 10.0.0.1")
	f.checkReadv(v, f.route(v, "readv 2.2.2.2/32 10.0.0.1"), ep1, nlri2, rt1, rt3)
	if hasRemote(v, t, "2.2.2.2/32") {
		t.Fatal("re-advertised (not imported) route installed in the dataplane")
	}

	// A new endpoint gets the current re-advertisements.
	f.attach(readvReq("52:54:00:00:00:02", "10.0.0.2", "tap2"))
	ep2 := f.endpoint(v, "52:54:00:00:00:02", "10.0.0.2")
	f.expect(v, "vif 10.0.0.1/32", "vif 10.0.0.2/32", "readv 2.2.2.2/32 10.0.0.1", "readv 2.2.2.2/32 10.0.0.2")
	f.checkReadv(v, f.route(v, "readv 2.2.2.2/32 10.0.0.2"), ep2, nlri2, rt1, rt3)
	if ep2.rd == ep1.rd || ep2.mac.label == ep1.mac.label {
		t.Fatal("two endpoints re-advertise with the same RD or label")
	}

	// RT-Record of to_rt: loop, not re-advertised.
	nlri3 := received("3.3.3.3/32", 3, 300, nh1, []route.RT{rt3}, rt4)
	f.send(route.Advertise, nlri3)
	f.expect(v, "vif 10.0.0.1/32", "vif 10.0.0.2/32", "readv 2.2.2.2/32 10.0.0.1", "readv 2.2.2.2/32 10.0.0.2")
	f.send(route.Withdraw, nlri3)

	// Unplug: that endpoint's re-advertisements go.
	f.detach("v", "52:54:00:00:00:02", "10.0.0.2")
	f.expect(v, "vif 10.0.0.1/32", "readv 2.2.2.2/32 10.0.0.1")

	// The imported route gains a from_rt RT: re-advertised, still installed.
	nlri1bis := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt1, rt2, rt3})
	f.send(route.Advertise, nlri1bis)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1", "readv 2.2.2.2/32 10.0.0.1")
	f.checkReadv(v, f.route(v, "readv 1.1.1.1/32 10.0.0.1"), ep1, nlri1bis, rt1, rt2, rt3)
	if !hasRemote(v, t, "1.1.1.1/32") {
		t.Fatal("imported route left the dataplane")
	}

	// The looking glass lists the received routes being re-advertised.
	if got := v.lgReadvertised().([]any); len(got) != 2 {
		t.Fatalf("looking glass readvertised: %v", got)
	}

	// Withdraw of the received route: its re-advertisement goes.
	f.send(route.Withdraw, nlri2)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1")
	if hasRemote(v, t, "2.2.2.2/32") || !hasRemote(v, t, "1.1.1.1/32") {
		t.Fatalf("dataplane %v", dp(t, v).Remotes())
	}

	// The last detach withdraws everything and releases every id.
	f.detach("v", "52:54:00:00:00:01", "10.0.0.1")
	if n := len(f.peer.snapshot()); n != 0 {
		t.Fatalf("%d routes left after the last detach", n)
	}
	if l, r := f.m.Allocated(); l != 0 || r != 0 {
		t.Fatalf("leak: %d labels, %d RDs", l, r)
	}
}

// TestReadvertisementLast replays test_re_advertisement_last: the
// re-advertisement is withdrawn with the last route of its prefix; while
// several remain, the latest gives the RT-Records.
func TestReadvertisementLast(t *testing.T) {
	f := newSteerFixture(t)
	f.ipvpn.SetECMP(true) // both routes are best
	f.attach(readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	ep := f.endpoint(v, "52:54:00:00:00:01", "10.0.0.1")

	a := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3}, rt1)
	f.send(route.Advertise, a)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1")
	b := received("1.1.1.1/32", 2, 101, nh2, []route.RT{rt3}, rt2)
	f.send(route.Advertise, b)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1")
	f.checkReadv(v, f.route(v, "readv 1.1.1.1/32 10.0.0.1"), ep, b, rt2, rt3)

	f.send(route.Withdraw, b)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1")
	f.checkReadv(v, f.route(v, "readv 1.1.1.1/32 10.0.0.1"), ep, a, rt1, rt3)

	f.send(route.Withdraw, a)
	f.expect(v, "vif 10.0.0.1/32")
	if s := v.steer; len(s.prefixes) != 0 || len(s.gens) != 0 {
		t.Fatalf("state left: %d prefixes, %d attributes", len(s.prefixes), len(s.gens))
	}
}

// TestReadvertisementNonECMPBestChange: with one best path, a better route
// that is not to re-advertise takes the re-advertisement away.
func TestReadvertisementNonECMPBestChange(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	a := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3})
	f.send(route.Advertise, a)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1")
	better := received("1.1.1.1/32", 2, 101, nh2, []route.RT{rt1})
	better.Attrs.LocalPref, better.Attrs.HasLocalPref = 200, true
	f.send(route.Advertise, better)
	f.expect(v, "vif 10.0.0.1/32")
	f.send(route.Withdraw, better)
	f.expect(v, "vif 10.0.0.1/32", "readv 1.1.1.1/32 10.0.0.1")
}

// TestReadvertisementEndpointParams: lb_consistent_hash_order and
// local_pref of the endpoint go on its own route and its
// re-advertisements; a new local_pref re-advertises them.
func TestReadvertisementEndpointParams(t *testing.T) {
	f := newSteerFixture(t)
	req := readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
	lp := uint32(300)
	req.LocalPref, req.LBHashOrder = &lp, 2
	f.attach(req)
	v := f.m.Instance("v")
	r := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3})
	f.send(route.Advertise, r)
	vif := f.route(v, "vif 10.0.0.1/32").Attrs
	if vif.LocalPref != 300 || !vif.HasHashOrder || vif.HashOrder != 2 {
		t.Fatalf("VIF route attributes %+v", vif)
	}
	ep := f.endpoint(v, "52:54:00:00:00:01", "10.0.0.1")
	f.checkReadv(v, f.route(v, "readv 1.1.1.1/32 10.0.0.1"), ep, r, rt3)

	lp2 := uint32(400)
	req2 := readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
	req2.LocalPref, req2.LBHashOrder = &lp2, 2
	f.attach(req2)
	if a := f.route(v, "readv 1.1.1.1/32 10.0.0.1").Attrs; a.LocalPref != 400 || !a.HasLocalPref {
		t.Fatalf("re-advertisement after a local_pref change: %+v", a)
	}
}

// TestFlowspecReadvertisement replays test_flowspec_re_advertisement_1.
func TestFlowspecReadvertisement(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(attractReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	ep := f.endpoint(v, "52:54:00:00:00:01", "10.0.0.1")

	fl := f.receivedFlow(tc("1.1.1.1/32"), 7, nh1, []route.RT{rt3}, rt5)
	f.send(route.Advertise, fl)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("1.1.1.1/32").String())

	def := f.route(v, "default 10.0.0.1")
	if def.NLRI.RD != ep.rd || def.Label != ep.mac.label || def.NextHop != local || !slices.Equal(def.Attrs.RTs, []route.RT{rt4}) ||
		!def.Attrs.HasHashOrder || len(def.Attrs.RTRecords) != 0 {
		t.Errorf("default route %+v %+v", def, def.Attrs)
	}
	re := f.route(v, "flow "+tc("1.1.1.1/32").String())
	if re.NLRI.RD != v.rd || re.NLRI.Flow != fl.NLRI.Flow || !slices.Equal(re.Attrs.RTs, []route.RT{rt4}) ||
		!sameSet(re.Attrs.RTRecords, []route.RT{rt3}) || !re.Attrs.HasRedirect || re.Attrs.Redirect != rt5 {
		t.Errorf("re-advertised flowspec route %+v %+v", re.NLRI, re.Attrs)
	}
	// Not imported: no redirection.
	if f.m.Instance(RedirectInstanceID(rt5)) != nil || len(dp(t, v).Classifiers()) != 0 {
		t.Fatal("a flowspec route that is only re-advertised redirected traffic")
	}
	// A flowspec route with the redirect RT in its RT-Records is a loop.
	loop := f.receivedFlow(tc("2.2.2.2/32"), 8, nh1, []route.RT{rt3}, rt5, rt5)
	f.send(route.Advertise, loop)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("1.1.1.1/32").String())

	f.send(route.Withdraw, fl)
	f.expect(v, "vif 10.0.0.1/32")
}

// TestAttractTraffic replays test_attract_traffic_re_advertisement,
// _single/_multiple_prefix_advertise/_withdraw.
func TestAttractTraffic(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(attractReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	f.expect(v, "vif 10.0.0.1/32")

	n1 := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3})
	f.send(route.Advertise, n1)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("1.1.1.1/32").String())
	fl := f.route(v, "flow "+tc("1.1.1.1/32").String())
	if fl.NLRI.RD != v.rd || !slices.Equal(fl.Attrs.RTs, []route.RT{rt5}) || !fl.Attrs.HasRedirect || fl.Attrs.Redirect != rt4 ||
		len(fl.Attrs.RTRecords) != 0 {
		t.Errorf("flowspec route %+v %+v", fl.NLRI, fl.Attrs)
	}

	n2 := received("2.2.2.2/32", 2, 200, nh1, []route.RT{rt3})
	f.send(route.Advertise, n2)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("1.1.1.1/32").String(), "flow "+tc("2.2.2.2/32").String())

	f.send(route.Withdraw, n2)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("1.1.1.1/32").String())
	f.send(route.Withdraw, n1)
	f.expect(v, "vif 10.0.0.1/32")

	// Both at once, withdrawn in the other order.
	f.send(route.Advertise, n1, n2)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("1.1.1.1/32").String(), "flow "+tc("2.2.2.2/32").String())
	f.send(route.Withdraw, n2, n1)
	f.expect(v, "vif 10.0.0.1/32")
}

// TestAttractStaticPrefixes replays
// test_attract_traffic_static_dest_prefix_no_readvertise_advertise,
// _static_dest_prefix_advertise and _advertise_multiple.
func TestAttractStaticPrefixes(t *testing.T) {
	t.Run("no readvertise", func(t *testing.T) {
		f := newSteerFixture(t)
		req := vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
		req.AttractTraffic = staticAttract("10.10.10.10/32")
		f.attach(req)
		v := f.m.Instance("v")
		f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("10.10.10.10/32").String())
		f.send(route.Advertise, received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3}))
		f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("10.10.10.10/32").String())
		// The last detach withdraws everything.
		f.detach("v", "52:54:00:00:00:01", "10.0.0.1")
		if n := len(f.peer.snapshot()); n != 0 {
			t.Fatalf("%d routes left", n)
		}
	})
	t.Run("with readvertise", func(t *testing.T) {
		f := newSteerFixture(t)
		req := readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
		req.AttractTraffic = staticAttract("10.10.10.10/32")
		f.attach(req)
		v := f.m.Instance("v")
		f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("10.10.10.10/32").String())
		n1 := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3})
		f.send(route.Advertise, n1)
		f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("10.10.10.10/32").String(), "flow "+tc("1.1.1.1/32").String())
		// A re-advertised prefix that is also static keeps its flow route.
		s := received("10.10.10.10/32", 2, 101, nh1, []route.RT{rt3})
		f.send(route.Advertise, s)
		f.send(route.Withdraw, s, n1)
		f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("10.10.10.10/32").String())
	})
	t.Run("without to_rt ignored", func(t *testing.T) {
		// As the reference: static prefixes count only with attract_traffic/to_rt.
		f := newSteerFixture(t)
		req := attractReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
		req.AttractTraffic.StaticDestinationPrefixes = []netip.Prefix{netip.MustParsePrefix("10.10.10.10/32")}
		f.attach(req)
		v := f.m.Instance("v")
		f.expect(v, "vif 10.0.0.1/32")
		at := lgValue(v.LookingGlass(), "attract_traffic").(map[string]any)
		if at["static_destination_prefixes"] != nil || !slices.Equal(at["to"].([]string), []string{"target:64512:40"}) {
			t.Fatalf("looking glass attract_traffic %v", at)
		}
	})
	t.Run("multiple", func(t *testing.T) {
		f := newSteerFixture(t)
		req := readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
		req.AttractTraffic = staticAttract("10.10.10.10/32", "20.20.20.20/32")
		f.attach(req)
		v := f.m.Instance("v")
		f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", "flow "+tc("10.10.10.10/32").String(), "flow "+tc("20.20.20.20/32").String())
		at := lgValue(v.LookingGlass(), "attract_traffic").(map[string]any)
		if !slices.Equal(at["to"].([]string), []string{"target:64512:40"}) ||
			!slices.Equal(at["static_destination_prefixes"].([]string), []string{"10.10.10.10/32", "20.20.20.20/32"}) ||
			!slices.Equal(at["redirect_rts"].([]string), []string{"target:64512:50"}) {
			t.Fatalf("looking glass attract_traffic %v", at)
		}
	})
}

func lgValue(entries []lookingglass.Entry, name string) any {
	for _, e := range entries {
		if e.Name == name {
			return e.Value()
		}
	}
	return nil
}

// TestLoadBalancing replays test_load_balancing_*: default routes per
// endpoint (own RD, label and hash order), one flowspec route per prefix.
func TestLoadBalancing(t *testing.T) {
	f := newSteerFixture(t)
	for i, mac := range []string{"52:54:00:00:00:01", "52:54:00:00:00:02"} {
		req := attractReq(mac, "10.0.0."+itoa(uint32(i+1)), "tap1")
		req.LBHashOrder = uint32(i)
		f.attach(req)
	}
	v := f.m.Instance("v")
	f.expect(v, "vif 10.0.0.1/32", "vif 10.0.0.2/32")

	n1 := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3})
	f.send(route.Advertise, n1)
	f.expect(v, "vif 10.0.0.1/32", "vif 10.0.0.2/32", "default 10.0.0.1", "default 10.0.0.2", "flow "+tc("1.1.1.1/32").String())
	d1, d2 := f.route(v, "default 10.0.0.1"), f.route(v, "default 10.0.0.2")
	if d1.Attrs.HashOrder != 0 || d2.Attrs.HashOrder != 1 || d1.Label == d2.Label || d1.NLRI.RD == d2.NLRI.RD {
		t.Fatalf("default routes %+v %+v / %+v %+v", d1, d1.Attrs, d2, d2.Attrs)
	}
	n2 := received("2.2.2.2/32", 2, 200, nh1, []route.RT{rt3})
	f.send(route.Advertise, n2)
	f.expect(v, "vif 10.0.0.1/32", "vif 10.0.0.2/32", "default 10.0.0.1", "default 10.0.0.2",
		"flow "+tc("1.1.1.1/32").String(), "flow "+tc("2.2.2.2/32").String())

	// New plug: its default route only.
	f.attach(attractReq("52:54:00:00:00:03", "10.0.0.3", "tap1"))
	f.expect(v, "vif 10.0.0.1/32", "vif 10.0.0.2/32", "vif 10.0.0.3/32", "default 10.0.0.1", "default 10.0.0.2", "default 10.0.0.3",
		"flow "+tc("1.1.1.1/32").String(), "flow "+tc("2.2.2.2/32").String())

	// Unplugs: default routes go; the flowspec routes with the last one.
	f.detach("v", "52:54:00:00:00:01", "10.0.0.1")
	f.detach("v", "52:54:00:00:00:03", "10.0.0.3")
	f.expect(v, "vif 10.0.0.2/32", "default 10.0.0.2", "flow "+tc("1.1.1.1/32").String(), "flow "+tc("2.2.2.2/32").String())
	f.send(route.Withdraw, n2, n1)
	f.expect(v, "vif 10.0.0.2/32")
	f.send(route.Advertise, n1)
	f.detach("v", "52:54:00:00:00:02", "10.0.0.2")
	if n := len(f.peer.snapshot()); n != 0 {
		t.Fatalf("%d routes left after the last unplug", n)
	}
	if f.m.InstanceCount() != 0 {
		t.Fatal("instance not removed")
	}
}

// redirectVRF returns the redirection VRF of rt, or nil.
func (f *steerFixture) redirectVRF(rt route.RT) *Instance {
	return f.m.Instance(RedirectInstanceID(rt))
}

// TestRedirectedVRF replays test_redirected_vrf_single/multiple_flow_
// advertised/withdrawn and test_redirect_traffic_single_instance.
func TestRedirectedVRF(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	labels, rds := f.m.Allocated()

	fl1 := f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5)
	f.send(route.Advertise, fl1)
	r := f.redirectVRF(rt5)
	if r == nil || r.ExternalID != "redirect-to-ipvpn-64512_50" {
		t.Fatalf("redirection VRF %v; instances %v", r, f.m.Instances())
	}
	if !slices.Equal(r.importRTs, []route.RT{rt5}) || len(r.exportRTs) != 0 || r.gatewayIP.String() != "127.0.0.1" ||
		r.prefixLen != 24 || len(r.endpoints) != 0 || !r.isVRF() {
		t.Fatalf("redirection VRF import %v export %v gateway %s/%d endpoints %d", r.importRTs, r.exportRTs, r.gatewayIP, r.prefixLen, len(r.endpoints))
	}
	lg := r.LookingGlass()
	if lgValue(lg, "external_instance_id") != "redirect-to-ipvpn-64512_50" || lgValue(lg, "instance_type") != "VRF" ||
		lgValue(lg, "gateway_ip") != "127.0.0.1" || len(lgValue(lg, "ports").(map[string]any)) != 0 {
		t.Fatal("redirection VRF looking glass")
	}
	if to, ok := dp(t, v).Redirect(tc("1.1.1.1/32")); !ok || to != r.ID {
		t.Fatalf("classifiers %v, want TC1 -> %d", dp(t, v).Classifiers(), r.ID)
	}

	fl2 := f.receivedFlow(tc("2.2.2.2/32"), 2, nh1, []route.RT{rt1}, rt5)
	f.send(route.Advertise, fl2)
	if f.redirectVRF(rt5) != r || f.m.InstanceCount() != 2 {
		t.Fatal("a second flow created another redirection VRF")
	}
	if got := dp(t, v).Classifiers(); len(got) != 2 {
		t.Fatalf("classifiers %v", got)
	}

	f.send(route.Withdraw, fl2)
	if _, ok := dp(t, v).Redirect(tc("2.2.2.2/32")); ok || f.redirectVRF(rt5) != r {
		t.Fatalf("after withdraw of TC2: classifiers %v", dp(t, v).Classifiers())
	}
	f.send(route.Withdraw, fl1)
	if got := dp(t, v).Classifiers(); len(got) != 0 {
		t.Fatalf("classifiers left %v", got)
	}
	if f.redirectVRF(rt5) != nil || !dp(t, r).Cleaned() {
		t.Fatal("redirection VRF not stopped with its last use")
	}
	if l, d := f.m.Allocated(); l != labels || d != rds {
		t.Fatalf("ids: %d labels %d RDs, want %d and %d", l, d, labels, rds)
	}
	for _, rt := range f.peer.snapshot() {
		if rt.Source.Name == r.Name {
			t.Fatalf("route of the stopped redirection VRF left: %+v", rt.NLRI)
		}
	}
}

// TestRedirectSharedClassifier: two service nodes advertise the same rule
// (different RDs): one classifier, removed with the last route.
func TestRedirectSharedClassifier(t *testing.T) {
	for _, ecmp := range []bool{false, true} {
		f := newSteerFixture(t)
		f.ipvpn.SetECMP(ecmp)
		f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
		v := f.m.Instance("v")
		a := f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5)
		b := f.receivedFlow(tc("1.1.1.1/32"), 2, nh2, []route.RT{rt1}, rt5)
		f.send(route.Advertise, a, b)
		if got := dp(t, v).Classifiers(); len(got) != 1 {
			t.Fatalf("ecmp %v: classifiers %v", ecmp, got)
		}
		f.send(route.Withdraw, a)
		if got := dp(t, v).Classifiers(); len(got) != 1 || f.redirectVRF(rt5) == nil {
			t.Fatalf("ecmp %v: after one withdraw: classifiers %v", ecmp, got)
		}
		f.send(route.Withdraw, b)
		if got := dp(t, v).Classifiers(); len(got) != 0 || f.redirectVRF(rt5) != nil {
			t.Fatalf("ecmp %v: after both withdraws: classifiers %v", ecmp, got)
		}
	}
}

// TestRedirectTakeOver: the same classifier redirected to two RTs; when the
// route in force goes, the other one's redirection VRF takes over.
func TestRedirectTakeOver(t *testing.T) {
	f := newSteerFixture(t)
	f.ipvpn.SetECMP(true)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	a := f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5)
	b := f.receivedFlow(tc("1.1.1.1/32"), 2, nh2, []route.RT{rt1}, rt6)
	f.send(route.Advertise, a)
	f.send(route.Advertise, b)
	r5, r6 := f.redirectVRF(rt5), f.redirectVRF(rt6)
	if r5 == nil || r6 == nil {
		t.Fatal("redirection VRFs missing")
	}
	if to, _ := dp(t, v).Redirect(tc("1.1.1.1/32")); to != r5.ID {
		t.Fatalf("redirects to %d, want the first route's %d", to, r5.ID)
	}
	f.send(route.Withdraw, a)
	if to, _ := dp(t, v).Redirect(tc("1.1.1.1/32")); to != r6.ID || f.redirectVRF(rt5) != nil {
		t.Fatalf("redirects to %d, want %d; redirection VRF of RT5 %v", to, r6.ID, f.redirectVRF(rt5))
	}
	f.send(route.Withdraw, b)
	if len(dp(t, v).Classifiers()) != 0 || f.redirectVRF(rt6) != nil {
		t.Fatal("left over")
	}
}

// TestRedirectMultipleInstances replays
// test_redirect_traffic_multiple_instance and
// test_stop_redirect_traffic_multiple_instance: two VRFs share one
// redirection VRF, stopped when the last of them goes.
func TestRedirectMultipleInstances(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(ipvpnReq("v1", "52:54:00:00:00:01", "10.0.0.1", "tap1", rt1.String()))
	f.attach(ipvpnReq("v2", "52:54:00:00:00:02", "10.0.0.2", "tap2", rt1.String()))
	f.send(route.Advertise, f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5))
	r := f.redirectVRF(rt5)
	if r == nil || f.m.InstanceCount() != 3 {
		t.Fatalf("%d instances, redirection VRF %v", f.m.InstanceCount(), r)
	}
	for _, id := range []string{"v1", "v2"} {
		if to, ok := dp(t, f.m.Instance(id)).Redirect(tc("1.1.1.1/32")); !ok || to != r.ID {
			t.Fatalf("%s: classifiers %v", id, dp(t, f.m.Instance(id)).Classifiers())
		}
	}
	f.detach("v1", "52:54:00:00:00:01", "10.0.0.1")
	if f.redirectVRF(rt5) != r {
		t.Fatal("redirection VRF stopped while v2 uses it")
	}
	f.detach("v2", "52:54:00:00:00:02", "10.0.0.2")
	if f.m.InstanceCount() != 0 {
		t.Fatalf("instances left: %v", f.m.Instances())
	}
	if l, d := f.m.Allocated(); l != 0 || d != 0 {
		t.Fatalf("leak: %d labels, %d RDs", l, d)
	}
	if n := len(f.peer.snapshot()); n != 0 {
		t.Fatalf("%d routes left", n)
	}
}

// TestRedirectIgnoredRoutes: rules a classifier cannot express, routes
// without a redirect action, a redirection to the VRF itself.
func TestRedirectIgnoredRoutes(t *testing.T) {
	f := newSteerFixture(t)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	icmp, err := bgp.FlowFromText("destination 10.0.0.0/24 icmp-type ==8")
	if err != nil {
		t.Fatal(err)
	}
	unsupported := &route.Route{NLRI: route.NLRI{Family: route.FlowVPN, RD: route.NewRDIP(nh1, 1), Flow: icmp},
		Attrs: &route.Attrs{RTs: []route.RT{rt1}, Redirect: rt5, HasRedirect: true}}
	noAction := f.receivedFlow(tc("1.1.1.1/32"), 2, nh1, []route.RT{rt1}, 0)
	noAction.Attrs.HasRedirect = false
	f.send(route.Advertise, unsupported, noAction)
	if len(dp(t, v).Classifiers()) != 0 || f.redirectVRF(rt5) != nil {
		t.Fatal("an unsupported flowspec route redirected traffic")
	}
	f.send(route.Withdraw, unsupported, noAction)

	// The redirection VRF of RT5 receiving a flow redirecting to RT5.
	f.send(route.Advertise, f.receivedFlow(tc("1.1.1.1/32"), 3, nh1, []route.RT{rt1}, rt5))
	r := f.redirectVRF(rt5)
	f.send(route.Advertise, f.receivedFlow(tc("2.2.2.2/32"), 4, nh1, []route.RT{rt5}, rt5))
	if len(dp(t, r).Classifiers()) != 0 {
		t.Fatalf("redirection VRF redirects to itself: %v", dp(t, r).Classifiers())
	}
}

// TestCleanupAssist replays test_cleanup_assist: stopping a VRF removes
// its classifiers and releases its redirection VRFs, and withdraws what it
// generated.
func TestCleanupAssist(t *testing.T) {
	f := newSteerFixture(t)
	req := attractReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
	f.attach(req)
	v := f.m.Instance("v")
	f.send(route.Advertise,
		received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt1}),
		received("3.3.3.3/32", 3, 300, nh1, []route.RT{rt3}),
		f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt6))
	if f.redirectVRF(rt6) == nil || len(dp(t, v).Classifiers()) != 1 || len(f.sentBy(v)) != 3 {
		t.Fatalf("setup: classifiers %v, advertised %v", dp(t, v).Classifiers(), f.advertised(v))
	}
	vdp := dp(t, v)
	f.m.Stop(context.Background())
	f.settle()
	if len(vdp.Classifiers()) != 0 || f.m.InstanceCount() != 0 {
		t.Fatal("classifiers or instances left after stop")
	}
	if n := len(f.peer.snapshot()); n != 0 {
		t.Fatalf("%d routes left", n)
	}
	// Only the port label and endpoint RD are left: a daemon stop does not
	// unplug (the detach of the last endpoint releases them, see
	// TestReadvertisement).
	if l, d := f.m.Allocated(); l != 1 || d != 1 {
		t.Fatalf("leak: %d labels, %d RDs", l, d)
	}
}

// opCounter counts dataplane calls by operation.
type opCounter struct {
	mu  sync.Mutex
	ops []string
}

func (c *opCounter) DataplaneCall(_ dataplane.VPNType, _, op string, _ time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		op += " failed"
	}
	c.ops = append(c.ops, op)
}

func (c *opCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ops
	c.ops = nil
	return out
}

// TestStopRemovesClassifiers: the classifiers of a stopping VRF are
// removed one by one before its dataplane cleanup (as the reference's
// cleanup assistance of Flowspec routes), and its redirection VRF is
// released.
func TestStopRemovesClassifiers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eng := engine.New(nil, nil)
	go eng.Run(ctx)
	rec := &opCounter{}
	m := NewManager(Config{Engine: eng, BGPAddress: local,
		Drivers:   []dataplane.Driver{instrumented.Wrap(dummy.New(dataplane.IPVPN, local, nil), rec)},
		FlowCodec: FlowCodec{Encode: bgp.ClassifierToFlow, Decode: bgp.FlowToClassifier}})
	f := &steerFixture{fixture: &fixture{t: t, eng: eng, m: m}, peer: newFakePeer("BGP-peer"), ctx: ctx}
	f.eng.Subscribe(f.peer, engine.Match{})
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	f.send(route.Advertise, f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5))
	if f.redirectVRF(rt5) == nil {
		t.Fatal("no redirection VRF")
	}
	rec.take()
	f.detach("v", "52:54:00:00:00:01", "10.0.0.1")
	var got []string
	for _, op := range rec.take() {
		if op != instrumented.OpVIFUnplugged {
			got = append(got, op)
		}
	}
	// The VRF: classifier removed, then cleanup; then its redirection VRF.
	want := []string{instrumented.OpRemoveClassifier, instrumented.OpCleanup, instrumented.OpCleanup}
	if !slices.Equal(got, want) {
		t.Fatalf("dataplane calls %v, want %v", got, want)
	}
	if m.InstanceCount() != 0 {
		t.Fatalf("instances left: %v", m.Instances())
	}
	if l, d := m.Allocated(); l != 0 || d != 0 {
		t.Fatalf("leak: %d labels, %d RDs", l, d)
	}
	m.Stop(ctx)
}

// TestReadvertisementScale: many prefixes, two endpoints: the
// re-advertisements of one UPDATE share their attributes, and everything
// goes with the routes.
func TestReadvertisementScale(t *testing.T) {
	const n = 5000
	f := newSteerFixture(t)
	f.attach(readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	req2 := readvReq("52:54:00:00:00:02", "10.0.0.2", "tap2")
	req2.LBHashOrder = 1
	f.attach(req2)
	v := f.m.Instance("v")
	attrs := &route.Attrs{RTs: []route.RT{rt3}, Encaps: []route.Encap{route.EncapMPLS}}
	var rs []*route.Route
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{20, byte(i >> 16), byte(i >> 8), byte(i)})
		rs = append(rs, &route.Route{NLRI: route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(nh1, 1), Prefix: netip.PrefixFrom(a, 32)},
			Label: 100, NextHop: nh1, Attrs: attrs})
	}
	f.send(route.Advertise, rs...)
	sent := f.sentBy(v)
	shared := map[*route.Attrs]int{}
	for _, r := range sent {
		if r.Attrs.HasRT(rt4) {
			shared[r.Attrs]++
		}
	}
	if len(sent) != 2+2*n || len(shared) != 2 {
		t.Fatalf("%d routes advertised, want %d; %d distinct attributes, want 2", len(sent), 2+2*n, len(shared))
	}
	f.send(route.Withdraw, rs...)
	if got := len(f.sentBy(v)); got != 2 {
		t.Fatalf("%d routes after the withdrawals, want the 2 VIF routes", got)
	}
	if s := v.steer; len(s.prefixes) != 0 || len(s.gens) != 0 || len(s.pending) != 0 {
		t.Fatalf("state left: %d prefixes, %d attributes, %d pending", len(s.prefixes), len(s.gens), len(s.pending))
	}
}

// TestReadvertisementConcurrent: plugs and unplugs race with received
// routes; in the end every endpoint re-advertises every prefix, and after
// the withdrawals and unplugs nothing is left.
func TestReadvertisementConcurrent(t *testing.T) {
	const eps, prefixes = 8, 200
	f := newSteerFixture(t)
	f.attach(readvReq("52:54:00:00:01:00", "10.0.1.0", "tap0")) // keeps the VRF
	v := f.m.Instance("v")
	attrs := &route.Attrs{RTs: []route.RT{rt3}, Encaps: []route.Encap{route.EncapMPLS}}
	var rs []*route.Route
	for i := 0; i < prefixes; i++ {
		rs = append(rs, &route.Route{NLRI: route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(nh1, 1),
			Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{20, 0, byte(i >> 8), byte(i)}), 32)}, Label: 100, NextHop: nh1, Attrs: attrs})
	}
	mac := func(i int) string { return "52:54:00:00:00:" + strings.ToLower(strconvHex(i)) }
	ip := func(i int) string { return "10.0.0." + itoa(uint32(i+1)) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, r := range rs { // one event per publication: interleaves with the plugs
			f.eng.Publish(f.peer, []route.Event{{Kind: route.Advertise, Route: r}})
		}
	}()
	for i := 0; i < eps; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f.m.Attach(f.ctx, readvReq(mac(i), ip(i), "tap"+itoa(uint32(i+1)))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	f.settle()
	if got, want := len(f.sentBy(v)), (eps+1)*(1+prefixes); got != want {
		t.Fatalf("%d routes advertised, want %d", got, want)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, r := range rs {
			f.eng.Publish(f.peer, []route.Event{{Kind: route.Withdraw, Route: r}})
		}
	}()
	for i := 0; i < eps; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f.m.Detach(f.ctx, &DetachRequest{VPNType: dataplane.IPVPN, InstanceID: "v", MACString: mac(i), MAC: mustMAC(mac(i)),
				IPString: ip(i), IP: parseIP(ip(i)), LocalPort: &dataplane.LocalPort{LinuxIf: "x"}}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	f.settle()
	if got := f.advertised(v); !slices.Equal(got, []string{"vif 10.0.1.0/32"}) {
		t.Fatalf("left: %v", got)
	}
	s := v.steer
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.prefixes) != 0 || len(s.gens) != 0 || len(s.eps) != 1 || len(s.params) != 1 || len(s.pending) != 0 {
		t.Fatalf("state left: %d prefixes %d attributes %d endpoints %d parameters %d pending",
			len(s.prefixes), len(s.gens), len(s.eps), len(s.params), len(s.pending))
	}
}

func strconvHex(i int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[i>>4&0xf], digits[i&0xf]})
}

// TestAttractOwnFlowNotReplaced: two service VMs of one hop whose redirect
// RT is also their from_rt receive each other's Flowspec routes, with the
// rule of their own: the re-advertisement would have the NLRI of the VRF's
// own Flowspec route (instance RD, same rule) and replace it. It waits
// until the VRF's own route goes.
func TestAttractOwnFlowNotReplaced(t *testing.T) {
	f := newSteerFixture(t)
	req := attractReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
	req.AttractTraffic.RedirectRTs = []route.RT{rt3}
	f.attach(req)
	v := f.m.Instance("v")
	flow := "flow " + tc("1.1.1.1/32").String()

	n1 := received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt3})
	f.send(route.Advertise, n1)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", flow)
	own := func() {
		t.Helper()
		fl := f.route(v, flow)
		if !slices.Equal(fl.Attrs.RTs, []route.RT{rt3}) || fl.Attrs.Redirect != rt4 || len(fl.Attrs.RTRecords) != 0 {
			t.Errorf("own Flowspec route replaced: RTs %v redirect %v records %v", fl.Attrs.RTs, fl.Attrs.Redirect, fl.Attrs.RTRecords)
		}
	}
	own()
	// The other service VM's Flowspec route for the same destination.
	other := f.receivedFlow(tc("1.1.1.1/32"), 7, nh2, []route.RT{rt3}, rt4)
	f.send(route.Advertise, other)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", flow)
	own()

	// Our own goes: the received rule is re-advertised in its place.
	f.send(route.Withdraw, n1)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", flow)
	fl := f.route(v, flow)
	if !slices.Equal(fl.Attrs.RTs, []route.RT{rt4}) || fl.Attrs.Redirect != rt3 {
		t.Errorf("re-advertised Flowspec route: RTs %v redirect %v", fl.Attrs.RTs, fl.Attrs.Redirect)
	}
	// And comes back: ours again.
	f.send(route.Advertise, n1)
	own()
	f.send(route.Withdraw, other)
	f.expect(v, "vif 10.0.0.1/32", "default 10.0.0.1", flow)
	own()
	f.send(route.Withdraw, n1)
	f.expect(v, "vif 10.0.0.1/32")
}

// TestReadvertisementOwnSubnet: an endpoint with advertise_subnet
// advertises its prefix with its own RD, the RD of its re-advertisements:
// a received route of from_rt for exactly that prefix is not re-advertised
// for that endpoint (both would have one NLRI and replace each other); the
// endpoint's own route stays, whatever the order of events.
func TestReadvertisementOwnSubnet(t *testing.T) {
	for _, plugFirst := range []bool{true, false} {
		f := newSteerFixture(t)
		f.attach(readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
		v := f.m.Instance("v")
		subnet := readvReq("52:54:00:00:00:02", "20.1.0.1/24", "tap2")
		subnet.AdvertiseSubnet = true
		r := received("20.1.0.0/24", 1, 100, nh1, []route.RT{rt3})
		if plugFirst {
			f.attach(subnet)
			f.send(route.Advertise, r)
		} else {
			f.send(route.Advertise, r)
			f.attach(subnet)
		}
		own := func(step string) {
			t.Helper()
			f.expect(v, "vif 10.0.0.1/32", "vif 20.1.0.0/24 20.1.0.1", "readv 20.1.0.0/24 10.0.0.1")
			ep := f.endpoint(v, "52:54:00:00:00:02", "20.1.0.1/24")
			o := f.route(v, "vif 20.1.0.0/24 20.1.0.1")
			if o.NLRI.RD != ep.rd || !slices.Equal(o.Attrs.RTs, []route.RT{rt1}) || len(o.Attrs.RTRecords) != 0 || o.Label != ep.mac.label {
				t.Errorf("plug first %v, %s: own subnet route replaced: %+v %+v", plugFirst, step, o.NLRI, o.Attrs)
			}
		}
		own("received")
		// An update of the received route changes nothing of it.
		r2 := received("20.1.0.0/24", 1, 101, nh1, []route.RT{rt3}, rt2)
		f.send(route.Advertise, r2)
		own("updated")
		// A refresh without advertise_subnet: a host route (instance RD)
		// replaces the subnet route, and the prefix is re-advertised in
		// the endpoint's name; and back.
		host := readvReq("52:54:00:00:00:02", "20.1.0.1/24", "tap2")
		f.attach(host)
		f.expect(v, "vif 10.0.0.1/32", "vif 20.1.0.1/32", "readv 20.1.0.0/24 10.0.0.1", "readv 20.1.0.0/24 20.1.0.1")
		f.attach(subnet)
		own("advertise_subnet again")
		// Without export RTs the VRF advertises no route of its own: the
		// prefix is re-advertised in the endpoint's name; and back.
		noExport := readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1")
		noExport.ExportRTs = nil
		f.attach(noExport)
		f.expect(v, "readv 20.1.0.0/24 10.0.0.1", "readv 20.1.0.0/24 20.1.0.1")
		f.attach(readvReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
		own("export RTs again")
		// Its withdrawal does not withdraw the endpoint's route.
		f.send(route.Withdraw, r2)
		f.expect(v, "vif 10.0.0.1/32", "vif 20.1.0.0/24 20.1.0.1")
		// Unplug: the endpoint's route goes, nothing is re-advertised in
		// its name.
		f.send(route.Advertise, r)
		f.detach("v", "52:54:00:00:00:02", "20.1.0.1/24")
		f.expect(v, "vif 10.0.0.1/32", "readv 20.1.0.0/24 10.0.0.1")
		f.send(route.Withdraw, r)
		f.expect(v, "vif 10.0.0.1/32")
	}
}
