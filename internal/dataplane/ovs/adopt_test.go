package ovs

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
	"bagpipe/internal/testfabric"
)

var pe3 = netip.MustParseAddr("192.0.2.3")

// TestDescriptionWire checks the flow and group description requests with
// ovs-ofctl ofp-print, that the fake switch's replies are what Open
// vSwitch decodes as the flows they hold, and the decoding of every kind
// of flow and group the driver installs, and of replies captured from
// ovs-vswitchd 3.1 (which sends reg0 as the upper half of xreg0, and flow
// statistics).
func TestDescriptionWire(t *testing.T) {
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		testfabric.SkipUnlessStrict(t, "ovs-ofctl not found (install openvswitch-common)")
	}
	ofprint := func(msg []byte) string {
		t.Helper()
		out, err := exec.Command(ofctl, "ofp-print", hex.EncodeToString(msg)).CombinedOutput()
		txt := strings.Join(strings.Fields(string(out)), " ")
		if err != nil || strings.Contains(txt, "decode error") || strings.Contains(txt, "***") {
			t.Errorf("ovs-ofctl ofp-print: %v: %s", err, txt)
		}
		return txt
	}
	if got := ofprint(flowDescRequest(3, cookieTag, cookieTagMask)); !strings.HasPrefix(got, "OFPST_FLOW request (OF1.5) (xid=0x3)") {
		t.Errorf("flow description request: %s", got)
	}
	if got := ofprint(groupDescRequest(4)); got != "OFPST_GROUP_DESC request (OF1.5) (xid=0x4): group_id=ALL" {
		t.Errorf("group description request: %s", got)
	}

	pl := grePipeline()
	pl.gen, pl.proxyARP, pl.vxlan, pl.vxlanPort = 3, true, true, 5
	fb, _ := pl.fallbackFlow(7, &dataplane.Fallback{SrcMAC: "02:00:00:00:00:01", DstMAC: "02:00:00:00:00:02", OVSPortNumber: 4}, 10)
	flows := append(pl.portFlows(7, gw, 3, 10), pl.incomingFlows(7, 100, vmMAC, 3, 10)...)
	flows = append(flows, pl.driverFlows()...)
	flows = append(flows, fb, pl.routeFlow(7, netip.MustParsePrefix("10.2.0.0/16"), groupTag|1), pl.routeFlow(7, netip.MustParsePrefix("0.0.0.0/0"), groupTag|2))
	ms, _ := classifierMatches(7, route.Classifier{Src: netip.MustParsePrefix("10.1.1.0/24"), DstPort: pr(1000, 1003)})
	for _, m := range ms {
		flows = append(flows, pl.classifierFlow(7, m, 9))
	}
	for k := range flows {
		f := &flows[k]
		m := flowMod(0, ofpfcAdd, f, 0)
		mlen := pad8len(int(binary.BigEndian.Uint16(m[50:])))
		ff := &fakeFlow{table: f.Table, priority: f.Priority, cookie: f.Cookie, match: m[48 : 48+mlen], instrs: m[48+mlen:]}
		fd, err := decodeFlowDesc(ff.entry())
		if err != nil || !fd.Complete || fd.Flow.String() != f.String() {
			t.Errorf("decoded\n %s (%v)\nwant\n %s", fd.String(), err, f.String())
		}
		reply := binary.BigEndian.AppendUint16(header(ofptMultipartReply, 0, 1), ofpmpFlowDesc)
		reply = finish(append(append(reply, 0, 0, 0, 0, 0, 0), ff.entry()...))
		// ovs-ofctl prints the add-flow text minus cookie and table.
		_, acts, _ := strings.Cut(f.String(), ",actions=")
		if got := ofprint(reply); !strings.Contains(got, fmt.Sprintf("cookie=%#x,", f.Cookie)) || !strings.Contains(got, fmt.Sprintf("priority=%d", f.Priority)) {
			t.Errorf("ovs-ofctl decodes the fake switch's description of %s as %s (actions %s)", f.String(), got, acts)
		}
	}

	rem := dataplane.Remote{Prefix: netip.MustParsePrefix("10.2.0.0/16"), PE: pe2, Label: 200, Encaps: []route.Encap{route.EncapGRE}}
	g := Group{ID: groupTag | 1, Method: "hash", Param: 5, Fields: []field{hashFields["ip_dst"]},
		Buckets: []Bucket{{ID: 1, Actions: pl.bucketActions(rem, subnet, nil)}, {ID: 4, Actions: []Action{DecTTL{}, SetField{fTunnelID, u64(300)}, Resubmit{InPort: 5, Table: 1}}}}}
	sw := &fakeSwitch{t: t, flows: map[string]*fakeFlow{}, groups: map[uint32][]byte{}}
	sw.applyGroupMod(groupMod(0, ofpgcAdd, &g))
	gd, err := decodeGroupDesc(sw.groups[g.ID])
	if err != nil || len(gd.Buckets) != 2 || gd.Type != ofpgtSelect || gd.ID != g.ID {
		t.Fatalf("group description: %+v %v", gd, err)
	}
	for k, b := range gd.Buckets {
		if !b.Complete || b.ID != g.Buckets[k].ID || actionsString(b.Actions) != actionsString(g.Buckets[k].Actions) {
			t.Errorf("bucket %d decoded as %d %s, want %d %s", k, b.ID, actionsString(b.Actions), g.Buckets[k].ID, actionsString(g.Buckets[k].Actions))
		}
	}
	reply := binary.BigEndian.AppendUint16(header(ofptMultipartReply, 0, 1), ofpmpGroupDesc)
	reply = finish(append(append(reply, 0, 0, 0, 0, 0, 0), sw.groups[g.ID]...))
	if got := ofprint(reply); !strings.Contains(got, "group_id=1107296257,type=select,selection_method=hash") || !strings.Contains(got, "bucket=bucket_id:4,actions=dec_ttl,set_field:0x12c->tun_id,resubmit(5,1)") {
		t.Errorf("ovs-ofctl decodes the fake switch's group description as %s", got)
	}

	// Captured from ovs-vswitchd 3.1 (flows and group of the driver, generation 3).
	for _, c := range []struct{ hex, want string }{
		{"0090000002008f90000000000000000042500003000000070001002a80000a020800800019080a020000ffff0000800101100000000700000000ffffffff000000000000000000000000003480020008000000081547634080020208000000080000000080020808000000000000000080020a0800000000000000000000000000040010000000000016000842000001",
			"table=2,cookie=0x4250000300000007,priority=36752,ip,reg0=7,nw_dst=10.2.0.0/16,actions=group:1107296257"},
		{"00c0000002009000000000000000000042500003000000070001004780000a020800800017080a010100ffffff00800018040a010201800014010680001b040400fc0080001d0403e8fffc800101100000000700000000ffffffff00000000000000003480020008000000081547634080020208000000080000000080020808000000000000000080020a08000000000000000000000000000400280000000000190010000100040000000900000000ffff001000002320000efff802000000",
			"table=2,cookie=0x4250000300000007,priority=36864,tcp,reg0=7,nw_src=10.1.1.0/24,nw_dst=10.1.2.1,tp_src=0x400/0xfc00,tp_dst=0x3e8/0xfffc,actions=set_field:9->reg0,resubmit(,2)"},
	} {
		b, _ := hex.DecodeString(c.hex)
		fd, err := decodeFlowDesc(b)
		if err != nil || fd.String() != c.want {
			t.Errorf("decoded\n %s (%v)\nwant\n %s", fd.String(), err, c.want)
		}
	}
	b, _ := hex.DecodeString("008801004200000200500000000000000050004000000000001800080000000000130008884700000019001080004404000000c8000000000019001000014004c0000202000000000000001000000002ffff0000000000000000000800010000ffff00280000154d000000010000000064705f686173680000000000000000000000000000000000")
	if gd, err := decodeGroupDesc(b); err != nil || gd.String() != "group_id=1107296258,type=1,bucket=bucket_id:0,actions=dec_ttl,push_mpls:0x8847,set_mpls_label:200,set_field:192.0.2.2->tun_dst,output:2" || !gd.Buckets[0].Complete {
		t.Errorf("decoded %s (%v)", gd.String(), err)
	}
	// Something the driver does not install is listed, not understood.
	match := []byte{0, 1, 0, 9, 0x80, 0, 0x10, 1, 0x10, 0, 0, 0, 0, 0, 0, 0} // nw_tos=16
	ff := &fakeFlow{priority: 100, cookie: 1, match: match, instrs: append([]byte{0, 4, 0, 24, 0, 0, 0, 0}, Output(0xfffffffd).encode()...)}
	if fd, err := decodeFlowDesc(ff.entry()); err != nil || fd.Complete || fd.String() != "table=0,cookie=0x1,priority=100,actions=output:4294967293 (partly decoded)" {
		t.Errorf("flow of another controller decoded as %s %v", fd.String(), err)
	}
}

// groupDescString renders a group of the driver as GroupDesc.String does.
func groupDescString(g *Group) string {
	s := fmt.Sprintf("group_id=%d,type=1", g.ID)
	for _, b := range g.Buckets {
		s += fmt.Sprintf(",bucket=bucket_id:%d,actions=%s", b.ID, actionsString(b.Actions))
	}
	return s
}

// want returns the flows and groups the live VRFs of d hold, as the fake
// switch's state lists them.
func want(d *Driver) (flows, groups []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active > 0 {
		flows = flowStrings(d.pl.driverFlows())
	}
	for _, inst := range d.instances {
		flows = append(flows, inst.Flows()...)
		for _, pg := range inst.prefixes {
			groups = append(groups, groupDescString(&pg.group))
		}
	}
	slices.Sort(flows)
	slices.Sort(groups)
	return flows, groups
}

func gre(prefix string, pe netip.Addr, label, order uint32) dataplane.Remote {
	return dataplane.Remote{Prefix: netip.MustParsePrefix(prefix), PE: pe, Label: label, Encaps: []route.Encap{route.EncapGRE}, LBOrder: order}
}

func newVRF(t *testing.T, d *Driver, id uint32, ext string, gw string) *Instance {
	t.Helper()
	inst, err := d.NewIPVPNInstance(context.Background(), dataplane.InstanceConfig{ID: id, ExternalID: ext, GatewayIP: netip.MustParseAddr(gw), PrefixLen: 24})
	if err != nil {
		t.Fatal(err)
	}
	return inst.(*Instance)
}

// resetState is ResetState without OVSDB (none in unit tests).
func resetState(d *Driver) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reset(context.Background())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdoption restarts a driver on a switch holding what its previous run
// installed: VRF 7 (restored) with two ports, a two-bucket group and a
// one-bucket group, and a classifier redirecting into VRF 9; VRF 8 (not
// restored) and the redirection VRF 9 (whose id is not kept: it comes back
// as VRF 10). While the restored VRF takes over, nothing is deleted and no
// group is added again (the fake switch refuses to add an existing group);
// the classifier flow is replaced in place; the group of a prefix keeps its
// id and the bucket of the same next hop its bucket id. The sweep leaves
// exactly what the new run installed.
func TestAdoption(t *testing.T) {
	d1, sw, ofctl := testDriver(t)
	ctx := context.Background()
	v7, v8 := newVRF(t, d1, 7, "net1", "10.1.1.254"), newVRF(t, d1, 8, "net2", "10.8.1.254")
	v9 := newVRF(t, d1, 9, "redirect-to-ipvpn-64512_2", "127.0.0.1")
	ep1, ep2, ep3 := endpoint(1, 100, 3, dataplane.Both), endpoint(2, 101, 4, dataplane.Both), endpoint(3, 102, 5, dataplane.Both)
	c1 := route.Classifier{Protocol: 6, DstPort: pr(80, 80)}
	must(t, v7.VIFPlugged(ctx, ep1))
	must(t, v7.VIFPlugged(ctx, ep2))
	must(t, v8.VIFPlugged(ctx, ep3))
	for _, r := range []dataplane.Remote{gre("10.2.0.0/16", pe2, 200, 0), gre("10.2.0.0/16", pe3, 300, 1), gre("10.3.0.1/32", pe2, 201, 0)} {
		must(t, v7.SetupRemote(ctx, r))
	}
	must(t, v8.SetupRemote(ctx, gre("10.8.0.0/16", pe2, 202, 0)))
	must(t, v9.SetupRemote(ctx, gre("0.0.0.0/0", pe3, 500, 0)))
	must(t, v7.AddClassifier(ctx, c1, 9))
	before, beforeGroups := sw.state()
	if w, wg := want(d1); !slices.Equal(before, w) || !slices.Equal(beforeGroups, wg) {
		t.Fatalf("switch state before the restart:\n%s\n%s\nwant\n%s\n%s", strings.Join(before, "\n"), strings.Join(beforeGroups, "\n"), strings.Join(w, "\n"), strings.Join(wg, "\n"))
	}
	gid := v7.prefixes[netip.MustParsePrefix("10.2.0.0/16")].group.ID
	gidHost := v7.prefixes[netip.MustParsePrefix("10.3.0.1/32")].group.ID
	sw.take(ofctl)

	// The daemon dies; the next run restores VRF 7 only.
	d1.of.Close()
	d := driverOn(t, sw.path)
	d.KeepForAdoption([]string{"net1"})
	must(t, resetState(d))
	if f, g := sw.state(); !slices.Equal(f, before) || !slices.Equal(g, beforeGroups) {
		t.Fatalf("ResetState with adoption changed the switch:\n%s\n%s", strings.Join(f, "\n"), strings.Join(g, "\n"))
	}
	if m := sw.take(ofctl); len(m) != 0 {
		t.Fatalf("ResetState with adoption sent %v", m)
	}
	if d.pl.gen != 1 {
		t.Fatalf("generation %d, want 1", d.pl.gen)
	}
	w7 := newVRF(t, d, 7, "net1", "10.1.1.254")
	if n := w7.LookingGlass()["adopted_unconfirmed"]; n != 2 {
		t.Errorf("adopted_unconfirmed %v, want the 2 route groups", n)
	}
	must(t, w7.VIFPlugged(ctx, ep1))
	must(t, w7.VIFPlugged(ctx, ep2))
	w10 := newVRF(t, d, 10, "redirect-to-ipvpn-64512_2", "127.0.0.1")
	must(t, w10.SetupRemote(ctx, gre("0.0.0.0/0", pe3, 500, 0)))
	must(t, w7.AddClassifier(ctx, c1, 10))
	// pe3's path to 10.2.0.0/16 was withdrawn while the daemon was down,
	// and 10.3.0.1 too: not announced again.
	must(t, w7.SetupRemote(ctx, gre("10.2.0.0/16", pe2, 200, 0)))
	msgs := sw.take(ofctl)
	for _, m := range msgs {
		if strings.HasPrefix(m, "DEL") || strings.HasPrefix(m, fmt.Sprintf("ADD group_id=%d,", gid)) {
			t.Errorf("while adopting: %s", m)
		}
	}
	if !slices.ContainsFunc(msgs, func(m string) bool {
		return strings.HasPrefix(m, fmt.Sprintf("MOD group_id=%d,", gid)) && strings.Contains(m, "bucket=bucket_id:0,actions=dec_ttl,push_mpls:0x8847,set_field:200->mpls_label") &&
			strings.Contains(m, "bucket=bucket_id:1,actions=dec_ttl,push_mpls:0x8847,set_field:300->mpls_label")
	}) {
		t.Errorf("the adopted group was not modified in place, keeping its unconfirmed bucket until the sweep:\n%s", strings.Join(msgs, "\n"))
	}
	if g := w10.prefixes[netip.MustParsePrefix("0.0.0.0/0")].group.ID; g <= max(gid, gidHost) {
		t.Errorf("new group id %#x not above the ids found (%#x, %#x)", g, gid, gidHost)
	}
	flows, _ := sw.state()
	cls := slices.DeleteFunc(slices.Clone(flows), func(f string) bool { return !strings.Contains(f, "tcp,reg0=7,tp_dst=80,") })
	if len(cls) != 1 || !strings.Contains(cls[0], "cookie=0x4250000100000007,") || !strings.Contains(cls[0], "set_field:10->reg0") {
		t.Errorf("classifier flow not replaced in place: %v", cls)
	}
	if n := w7.LookingGlass()["adopted_unconfirmed"]; n != 2 {
		t.Errorf("adopted_unconfirmed %v, want 10.3.0.1's group and pe3's bucket", n)
	}
	if a, ok := d.LookingGlass()["adoption"].(map[string]any); !ok || a["generation"] != 1 || !slices.Equal(a["previous_generations"].([]int), []int{0}) {
		t.Errorf("driver looking glass: %v", d.LookingGlass()["adoption"])
	}

	must(t, d.SweepAdopted(ctx))
	after, afterGroups := sw.state()
	w, wg := want(d)
	if !slices.Equal(after, w) || !slices.Equal(afterGroups, wg) {
		t.Errorf("switch state after the sweep:\n%s\n%s\nwant\n%s\n%s", strings.Join(after, "\n"), strings.Join(afterGroups, "\n"), strings.Join(w, "\n"), strings.Join(wg, "\n"))
	}
	for _, f := range after {
		if !strings.Contains(f, "cookie=0x42500001") {
			t.Errorf("flow of an earlier generation left: %s", f)
		}
	}
	if pg := w7.prefixes[netip.MustParsePrefix("10.2.0.0/16")]; pg.group.ID != gid || len(pg.group.Buckets) != 1 || pg.group.Buckets[0].ID != 0 {
		t.Errorf("group of 10.2.0.0/16 after the sweep: %s (id before %d)", pg.group.String(), gid)
	}
	if _, ok := w7.LookingGlass()["adopted_unconfirmed"]; ok {
		t.Error("adopted_unconfirmed after the sweep")
	}
	if _, ok := d.LookingGlass()["adoption"]; ok {
		t.Error("driver adoption state after the sweep")
	}
	// Business as usual afterwards: the last next hop removes the group.
	must(t, w7.RemoveRemote(ctx, gre("10.2.0.0/16", pe2, 200, 0)))
	if _, g := sw.state(); slices.ContainsFunc(g, func(s string) bool { return strings.HasPrefix(s, fmt.Sprintf("group_id=%d,", gid)) }) {
		t.Errorf("group %d left after its last next hop: %v", gid, g)
	}
	must(t, w7.Cleanup(ctx))
	must(t, w10.Cleanup(ctx))
	if f, g := sw.state(); len(f) != 0 || len(g) != 0 {
		t.Errorf("left after the last cleanup: %v %v", f, g)
	}
}

// TestAdoptionTwice: a run killed before its sweep leaves flows of two
// generations; the next one picks a third and sweeps both. A VRF that is
// not restored takes nothing and a start without adoption removes
// everything of ours, and only ours.
func TestAdoptionTwice(t *testing.T) {
	d1, sw, _ := testDriver(t)
	ctx := context.Background()
	ep1, ep2 := endpoint(1, 100, 3, dataplane.Both), endpoint(2, 101, 4, dataplane.Both)
	v7 := newVRF(t, d1, 7, "net1", "10.1.1.254")
	must(t, v7.VIFPlugged(ctx, ep1))
	must(t, v7.VIFPlugged(ctx, ep2))
	must(t, v7.SetupRemote(ctx, gre("10.2.0.0/16", pe2, 200, 0)))
	must(t, v7.SetupRemote(ctx, gre("10.3.0.0/16", pe2, 201, 0)))
	foreign := Flow{Table: 0, Priority: 10, Cookie: 0x1234, Match: Match{EthType: ethTypeARP}, Actions: []Action{Output(ofppLocal)}}
	must(t, d1.of.Send(ctx, flowMod(0, ofpfcAdd, &foreign, 0)))
	d1.of.Close()

	// Run 2: restores VRF 7 with one port, is killed before its sweep.
	d2 := driverOn(t, sw.path)
	d2.KeepForAdoption([]string{"net1"})
	must(t, resetState(d2))
	w7 := newVRF(t, d2, 7, "net1", "10.1.1.254")
	must(t, w7.VIFPlugged(ctx, ep1))
	must(t, w7.SetupRemote(ctx, gre("10.2.0.0/16", pe2, 200, 0)))
	d2.of.Close()

	// Run 3: generations 0 and 1 on the switch.
	d3 := driverOn(t, sw.path)
	d3.KeepForAdoption([]string{"net1"})
	must(t, resetState(d3))
	if d3.pl.gen != 2 {
		t.Fatalf("generation %d, want 2", d3.pl.gen)
	}
	// VRF 8 is new: the ids it is given are not those of an earlier VRF.
	x7 := newVRF(t, d3, 7, "net1", "10.1.1.254")
	x8 := newVRF(t, d3, 8, "net2", "10.8.1.254")
	if len(x8.adopted) != 0 || len(x7.adopted) != 2 {
		t.Fatalf("adopted route groups: VRF 7 %v, VRF 8 %v", x7.adopted, x8.adopted)
	}
	must(t, x7.VIFPlugged(ctx, ep1))
	must(t, x7.SetupRemote(ctx, gre("10.2.0.0/16", pe2, 200, 0)))
	must(t, x8.SetupRemote(ctx, gre("10.8.0.0/16", pe2, 300, 0)))
	must(t, d3.SweepAdopted(ctx))
	must(t, d3.SweepAdopted(ctx)) // once is enough; again is harmless
	after, afterGroups := sw.state()
	w, wg := want(d3)
	w = append(w, foreign.String())
	slices.Sort(w)
	if !slices.Equal(after, w) || !slices.Equal(afterGroups, wg) {
		t.Errorf("switch state after the sweep:\n%s\n%s\nwant\n%s\n%s", strings.Join(after, "\n"), strings.Join(afterGroups, "\n"), strings.Join(w, "\n"), strings.Join(wg, "\n"))
	}
	d3.of.Close()

	// A start without a state directory removes everything of ours.
	d4 := driverOn(t, sw.path)
	must(t, resetState(d4))
	if f, g := sw.state(); !slices.Equal(f, []string{foreign.String()}) || len(g) != 0 {
		t.Errorf("after a reset: %v %v", f, g)
	}
	if d4.pl.gen != 0 {
		t.Errorf("generation %d without adoption", d4.pl.gen)
	}
}
