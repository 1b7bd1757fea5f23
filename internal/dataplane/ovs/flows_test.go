package ovs

import (
	"bagpipe/internal/testfabric"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bagpipe/internal/config"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

var (
	vmMAC  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	gw     = netip.MustParseAddr("10.1.1.254")
	subnet = netip.MustParsePrefix("10.1.1.0/24")
	local  = netip.MustParseAddr("192.0.2.1")
	pe2    = netip.MustParseAddr("192.0.2.2")
)

func grePipeline() pipeline {
	return pipeline{input: 0, encapIn: 1, vrf: 2, mplsInPort: 2, useGRE: true, arpResponder: true, local: local}
}

func flowStrings(fs []Flow) []string {
	out := make([]string, len(fs))
	for i := range fs {
		out[i] = fs[i].String()
	}
	return out
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

const arpReply = "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:00:00:5e:00:43:64,set_field:2->arp_op," +
	"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_TPA[]->NXM_NX_REG1[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]," +
	"move:NXM_NX_REG1[]->NXM_OF_ARP_SPA[],set_field:00:00:5e:00:43:64->arp_sha,output:IN_PORT"

func TestPortFlows(t *testing.T) {
	pl := grePipeline()
	check(t, "gateway ARP responder", flowStrings(pl.portFlows(7, gw, 3, 0)), []string{
		"table=0,cookie=0x4250000000000007,priority=36864,ip,in_port=3,actions=set_field:0->in_port,set_field:7->reg0,resubmit(,2)",
		"table=0,cookie=0x4250000000000007,priority=36864,arp,in_port=3,actions=set_field:0->in_port,set_field:7->reg0,resubmit(,2)",
		"table=0,cookie=0x4250000000000007,priority=36865,arp,in_port=3,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_tpa=10.1.1.254,actions=" + arpReply,
	})
	pl.proxyARP = true
	check(t, "proxy ARP with a VLAN", flowStrings(pl.portFlows(7, gw, 3, 10)), []string{
		"table=0,cookie=0x4250000000000007,priority=36864,ip,in_port=3,dl_vlan=10,actions=strip_vlan,set_field:0->in_port,set_field:7->reg0,resubmit(,2)",
		"table=0,cookie=0x4250000000000007,priority=36864,arp,in_port=3,dl_vlan=10,actions=strip_vlan,set_field:0->in_port,set_field:7->reg0,resubmit(,2)",
		"table=0,cookie=0x4250000000000007,priority=36865,arp,in_port=3,dl_vlan=10,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,actions=" + arpReply,
	})
	pl.arpResponder = false
	if n := len(pl.portFlows(7, gw, 3, 0)); n != 2 {
		t.Errorf("without arp_responder: %d flows, want the 2 classification flows", n)
	}
}

func TestIncomingFlows(t *testing.T) {
	pl := grePipeline()
	check(t, "MPLS", flowStrings(pl.incomingFlows(7, 100, vmMAC, 3, 0)), []string{
		"table=1,cookie=0x4250000000000007,priority=36864,mpls,mpls_label=100,mpls_bos=1,actions=pop_mpls:0x0800,mod_dl_src:00:00:5e:00:43:64,mod_dl_dst:52:54:00:00:00:01,output:3",
	})
	pl.vxlan, pl.vxlanPort = true, 5
	check(t, "MPLS and VXLAN, VLAN", flowStrings(pl.incomingFlows(7, 100, vmMAC, 3, 10)), []string{
		"table=1,cookie=0x4250000000000007,priority=36864,mpls,mpls_label=100,mpls_bos=1,actions=pop_mpls:0x0800,push_vlan:0x8100,mod_vlan_vid:10,mod_dl_src:00:00:5e:00:43:64,mod_dl_dst:52:54:00:00:00:01,output:3",
		"table=1,cookie=0x4250000000000007,priority=36864,in_port=5,tun_id=100,actions=push_vlan:0x8100,mod_vlan_vid:10,mod_dl_src:00:00:5e:00:43:64,mod_dl_dst:52:54:00:00:00:01,output:3",
	})
}

func TestRouteAndFallbackPriorities(t *testing.T) {
	pl := grePipeline()
	r32 := pl.routeFlow(7, netip.MustParsePrefix("10.2.0.1/32"), 9)
	r24 := pl.routeFlow(7, netip.MustParsePrefix("10.2.0.0/24"), 9)
	r0 := pl.routeFlow(7, netip.MustParsePrefix("0.0.0.0/0"), 9)
	fb, err := pl.fallbackFlow(7, &dataplane.Fallback{SrcMAC: "02:00:00:00:00:01", DstMAC: "02:00:00:00:00:02", OVSPortNumber: 4}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !(r32.Priority > r24.Priority && r24.Priority > r0.Priority && r0.Priority > fb.Priority) {
		t.Errorf("priorities /32 %d, /24 %d, /0 %d, fallback %d: longest prefix must win, fallback last", r32.Priority, r24.Priority, r0.Priority, fb.Priority)
	}
	check(t, "routes and fallback", flowStrings([]Flow{r24, r0, fb}), []string{
		"table=2,cookie=0x4250000000000007,priority=36760,ip,reg0=7,nw_dst=10.2.0.0/24,actions=group:9",
		"table=2,cookie=0x4250000000000007,priority=36736,ip,reg0=7,actions=group:9",
		"table=2,cookie=0x4250000000000007,priority=36608,reg0=7,actions=mod_dl_src:02:00:00:00:00:01,mod_dl_dst:02:00:00:00:00:02,output:4",
	})
	if _, err := pl.fallbackFlow(7, &dataplane.Fallback{SrcMAC: "02:00:00:00:00:01", DstMAC: "02:00:00:00:00:02"}, 0); err == nil {
		t.Error("fallback without ovs_port_number accepted")
	}
}

func TestBucketActions(t *testing.T) {
	pl := grePipeline()
	host := dataplane.Remote{Prefix: netip.MustParsePrefix("10.1.1.5/32"), PE: pe2, Label: 200, Encaps: []route.Encap{route.EncapGRE}}
	outside := host
	outside.Prefix = netip.MustParsePrefix("10.2.0.0/16")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 8}
	check(t, "GRE, in subnet (no TTL decrement)", []string{actionsString(pl.bucketActions(host, subnet, nil))},
		[]string{"push_mpls:0x8847,set_mpls_label:200,set_field:192.0.2.2->tun_dst,output:2"})
	check(t, "GRE, outside the subnet", []string{actionsString(pl.bucketActions(outside, subnet, nil))},
		[]string{"dec_ttl,push_mpls:0x8847,set_mpls_label:200,set_field:192.0.2.2->tun_dst,output:2"})
	self := host
	self.PE = local
	check(t, "local PE", []string{actionsString(pl.bucketActions(self, subnet, nil))},
		[]string{"push_mpls:0x8847,set_mpls_label:200,resubmit(2,1)"})
	bare := pl
	bare.useGRE, bare.mplsInPort, bare.mplsIfMAC = false, 1, net.HardwareAddr{2, 0, 0, 0, 0, 9}
	if !bare.needsPEMAC(host) || pl.needsPEMAC(host) || bare.needsPEMAC(self) {
		t.Error("needsPEMAC: only bare MPLS to a remote PE needs the PE's MAC")
	}
	check(t, "bare MPLS", []string{actionsString(bare.bucketActions(host, subnet, mac))},
		[]string{"push_mpls:0x8847,set_mpls_label:200,mod_dl_src:02:00:00:00:00:09,mod_dl_dst:02:00:00:00:00:08,output:1"})
	vx := pl
	vx.vxlan, vx.vxlanPort = true, 5
	withVXLAN := host
	withVXLAN.Encaps = []route.Encap{route.EncapVXLAN, route.EncapGRE}
	check(t, "VXLAN when the route offers it", []string{actionsString(vx.bucketActions(withVXLAN, subnet, nil)), actionsString(vx.bucketActions(host, subnet, nil))},
		[]string{"set_field:200->tun_id,set_field:192.0.2.2->tun_dst,output:5", "push_mpls:0x8847,set_mpls_label:200,set_field:192.0.2.2->tun_dst,output:2"})
}

func TestBuckets(t *testing.T) {
	used := map[uint32]bool{}
	for _, c := range []struct{ hint, want uint32 }{{5, 5}, {5, 0}, {0, 1}, {2, 2}, {0xffffffff, 3}} {
		got := allocBucket(used, c.hint)
		if got != c.want {
			t.Errorf("allocBucket(hint %d) = %d, want %d", c.hint, got, c.want)
		}
		used[got] = true
	}
	nhs := map[nextHop]*bucketState{
		{label: 1, pe: pe2}:   {id: 7},
		{label: 2, pe: local}: {id: 1},
		{label: 3, pe: pe2}:   {id: 4},
	}
	var ids []uint32
	for _, b := range buckets(nhs, nil) {
		ids = append(ids, b.ID)
	}
	if !slices.Equal(ids, []uint32{1, 4, 7}) {
		t.Errorf("buckets in order %v, want by bucket id", ids)
	}
	a := dataplane.Remote{PE: pe2, Label: 5, Encaps: []route.Encap{route.EncapGRE}}
	b := dataplane.Remote{PE: pe2, Label: 5} // a removal carries no encapsulation
	if nextHopOf(a) != nextHopOf(b) {
		t.Error("next hop identity depends on the encapsulations")
	}
}

// TestWireEncoding checks the OpenFlow 1.5 encoding with Open vSwitch's own
// decoder (ovs-ofctl ofp-print).
func TestWireEncoding(t *testing.T) {
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		testfabric.SkipUnlessStrict(t, "ovs-ofctl not found (install openvswitch-common)")
	}
	pl := grePipeline()
	pl.proxyARP, pl.vxlan, pl.vxlanPort = true, true, 5
	fb, _ := pl.fallbackFlow(7, &dataplane.Fallback{SrcMAC: "02:00:00:00:00:01", DstMAC: "02:00:00:00:00:02", OVSPortNumber: 4}, 0)
	rem := dataplane.Remote{Prefix: netip.MustParsePrefix("10.2.0.0/16"), PE: pe2, Label: 200, Encaps: []route.Encap{route.EncapGRE}}
	g := Group{ID: groupTag | 1, Method: "hash", Param: 5, Fields: []field{hashFields["ip_dst"], hashFields["tcp_src"]},
		Buckets: []Bucket{{ID: 1, Actions: pl.bucketActions(rem, subnet, nil)}, {ID: 4, Actions: []Action{DecTTL{}, Output(3)}}}}
	cases := []struct {
		msg  []byte
		want string
	}{
		{flowMod(1, ofpfcAdd, &pl.portFlows(7, gw, 3, 10)[0], 0),
			"ADD priority=36864,ip,in_port=3,dl_vlan=10 cookie:0x4250000000000007 actions=pop_vlan,set_field:0->in_port,set_field:0x7->reg0,resubmit(,2)"},
		{flowMod(1, ofpfcAdd, &pl.portFlows(7, gw, 3, 0)[2], 0),
			"ADD priority=36865,arp,in_port=3,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1 cookie:0x4250000000000007 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:5e:00:43:64->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_TPA[]->NXM_NX_REG1[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG1[]->NXM_OF_ARP_SPA[],set_field:00:00:5e:00:43:64->arp_sha,IN_PORT"},
		{flowMod(1, ofpfcAdd, &pl.incomingFlows(7, 100, vmMAC, 3, 10)[0], 0),
			"ADD table:1 priority=36864,mpls,mpls_label=100,mpls_bos=1 cookie:0x4250000000000007 actions=pop_mpls:0x0800,push_vlan:0x8100,set_field:4106->vlan_vid,set_field:00:00:5e:00:43:64->eth_src,set_field:52:54:00:00:00:01->eth_dst,output:3"},
		{flowMod(1, ofpfcAdd, &pl.incomingFlows(7, 100, vmMAC, 3, 0)[1], 0),
			"ADD table:1 priority=36864,tun_id=0x64,in_port=5 cookie:0x4250000000000007 actions=set_field:00:00:5e:00:43:64->eth_src,set_field:52:54:00:00:00:01->eth_dst,output:3"},
		{flowMod(1, ofpfcAdd, &fb, 0),
			"ADD table:2 priority=36608,reg0=0x7 cookie:0x4250000000000007 actions=set_field:02:00:00:00:00:01->eth_src,set_field:02:00:00:00:00:02->eth_dst,output:4"},
		{flowMod(1, ofpfcAdd, ptr(pl.routeFlow(7, netip.MustParsePrefix("10.2.0.0/16"), 9)), 0),
			"ADD table:2 priority=36752,ip,reg0=0x7,nw_dst=10.2.0.0/16 cookie:0x4250000000000007 actions=group:9"},
		{flowMod(1, ofpfcAdd, &pl.driverFlows()[0], 0),
			"ADD priority=36864,mpls,in_port=2 cookie:0x4250000000000000 actions=resubmit(,1)"},
		{flowMod(1, ofpfcDelete, &Flow{Table: ofpttAll, Cookie: cookieTag}, cookieTagMask),
			"DEL table:255 priority=0 cookie:0x4250000000000000/0xffff000000000000 actions=drop"},
		{flowMod(1, ofpfcDeleteStrict, ptr(pl.routeFlow(7, netip.MustParsePrefix("10.2.0.0/16"), 9)), cookieAllOne),
			"DEL_STRICT table:2 priority=36752,ip,reg0=0x7,nw_dst=10.2.0.0/16 cookie:0x4250000000000007/0xffffffffffffffff actions=drop"},
		{groupMod(1, ofpgcAdd, &g),
			"ADD group_id=1107296257,type=select,selection_method=hash,selection_method_param=5,fields(ip_dst,tcp_src),bucket=bucket_id:1,actions=dec_ttl,push_mpls:0x8847,set_field:200->mpls_label,set_field:192.0.2.2->tun_dst,output:2,bucket=bucket_id:4,actions=dec_ttl,output:3"},
		{groupMod(1, ofpgcModify, &Group{ID: 9, Method: "dp_hash", Buckets: g.Buckets[1:]}),
			"MOD group_id=9,type=select,selection_method=dp_hash,bucket=bucket_id:4,actions=dec_ttl,output:3"},
		{groupMod(1, ofpgcDelete, &Group{ID: 9}), "DEL group_id=9,type=select"},
	}
	for _, c := range cases {
		out, err := exec.Command(ofctl, "ofp-print", hex.EncodeToString(c.msg)).CombinedOutput()
		got := strings.Join(strings.Fields(string(out)), " ")
		if err != nil || !strings.Contains(got, c.want) || strings.Contains(got, "decode error") {
			t.Errorf("ovs-ofctl decodes\n %s\nwant\n %s (%v)", got, c.want, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func loadConfig(t *testing.T, section string) (*config.DataplaneConfig, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bgp.conf")
	content := "[BGP]\nlocal_address = 192.0.2.1\nmy_as = 64512\n[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\n" + section
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, err := config.Load(&config.Flags{Sources: []config.Source{{Path: p}}}, config.BuiltinDriverOptions()...)
	if err != nil {
		return nil, err
	}
	return c.Dataplane(config.IPVPN), nil
}

func TestConfigModes(t *testing.T) {
	cases := []struct {
		conf   string
		gre    bool
		encaps []route.Encap
	}{
		{"", true, []route.Encap{route.EncapGRE, route.EncapDefault}},
		{"mpls_interface = *gre*\n", true, []route.Encap{route.EncapGRE, route.EncapDefault}},
		{"mpls_interface = eth1\n", false, []route.Encap{route.EncapMPLS, route.EncapDefault}},
		{"mpls_interface = eth1\nmpls_over_gre = False\n", true, []route.Encap{route.EncapGRE, route.EncapDefault}}, // reference quirk
		{"mpls_interface = eth1\nvxlan_encap = True\n", false, []route.Encap{route.EncapMPLS, route.EncapDefault, route.EncapVXLAN}},
	}
	for _, c := range cases {
		dc, err := loadConfig(t, c.conf)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ConfigFrom(dc)
		if err != nil {
			t.Fatalf("%q: %v", c.conf, err)
		}
		d := New(cfg, nil)
		if cfg.UseGRE != c.gre || !slices.Equal(d.Encaps(), c.encaps) || !d.ECMP() {
			t.Errorf("%q: GRE %v encaps %v", c.conf, cfg.UseGRE, d.Encaps())
		}
		for _, dir := range []dataplane.Direction{dataplane.Both, dataplane.ToPort, dataplane.FromPort} {
			if d.ValidateDirection(dir) != nil {
				t.Errorf("direction %s refused", dir)
			}
		}
	}
	dc, err := loadConfig(t, "gre_tunnel_options = packet_type=legacy_l3\nhash_method = hash\nhash_fields = ip_dst,tcp_dst\nhash_method_param = 3\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFrom(dc)
	if err != nil || cfg.GREOptions["packet_type"] != "legacy_l3" || cfg.HashParam != 3 {
		t.Fatalf("config %+v: %v", cfg, err)
	}
	g := New(cfg, nil).groupTemplate()
	if g.String() != "group_id=0,type=select,selection_method=hash,fields(ip_dst,tcp_dst),selection_method_param=3" {
		t.Errorf("group template %s", g.String())
	}
	for _, bad := range []string{"input_table = 1\n", "hash_fields = foo\n", "gre_tunnel_options = nokey\n", "hash_method_param = x\n"} {
		dc, err := loadConfig(t, bad)
		if err != nil {
			continue // refused by the config schema already
		}
		if _, err := ConfigFrom(dc); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
