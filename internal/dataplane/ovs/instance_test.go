package ovs

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
	"bagpipe/internal/testfabric"
)

// fakeSwitch is an OpenFlow 1.5 peer on a unix socket: it answers hello
// and barriers, records flow and group mods, applies them to its flow and
// group tables (as Open vSwitch does: an ADD of a flow with the match and
// priority of another replaces it, adding an existing group or modifying a
// missing one is an error, deleting a group deletes the flows using it),
// answers flow and group descriptions from them (a few entries per reply
// message, to exercise multipart replies), and rejects the next flow mod
// when told to.
type fakeSwitch struct {
	t    *testing.T
	ln   net.Listener
	path string

	mu       sync.Mutex
	msgs     [][]byte
	failNext bool
	flows    map[string]*fakeFlow // by table, priority and match
	groups   map[uint32][]byte    // group description entries, by id
}

type fakeFlow struct {
	table    uint8
	priority uint16
	cookie   uint64
	match    []byte // ofp_match, padded
	instrs   []byte
}

func startFakeSwitch(t *testing.T) (*fakeSwitch, string) {
	path := filepath.Join(t.TempDir(), "br.mgmt")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSwitch{t: t, ln: ln, path: path, flows: map[string]*fakeFlow{}, groups: map[uint32][]byte{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s, path
}

func (s *fakeSwitch) serve(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	for {
		var h [8]byte
		if _, err := io.ReadFull(rd, h[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(h[2:]))
		copy(msg, h[:])
		if _, err := io.ReadFull(rd, msg[8:]); err != nil {
			return
		}
		xid := binary.BigEndian.Uint32(h[4:])
		var reply []byte
		switch h[1] {
		case ofptHello:
			reply = hello(0)
		case ofptBarrierReq:
			reply = header(ofptBarrierReply, 8, xid)
		case ofptMultipartReq:
			s.mu.Lock()
			reply = s.describe(msg)
			s.mu.Unlock()
		case ofptFlowMod, ofptGroupMod:
			s.mu.Lock()
			s.msgs = append(s.msgs, msg)
			fail := s.failNext && h[1] == ofptFlowMod
			if fail {
				s.failNext = false
			}
			var errType, errCode uint16
			if !fail && h[1] == ofptFlowMod {
				s.applyFlowMod(msg)
			} else if !fail {
				errType, errCode = s.applyGroupMod(msg)
			}
			s.mu.Unlock()
			if fail { // OFPET_FLOW_MOD_FAILED / OFPFMFC_UNKNOWN
				errType, errCode = 5, 0
			}
			if errType != 0 {
				reply = finish(append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(header(ofptError, 0, xid), errType), errCode), msg[:4]...))
			}
		}
		if reply != nil {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}
}

// applyFlowMod applies a flow mod to the flow table (s.mu held).
func (s *fakeSwitch) applyFlowMod(msg []byte) {
	cookie, mask := binary.BigEndian.Uint64(msg[8:]), binary.BigEndian.Uint64(msg[16:])
	table, cmd, prio := msg[24], msg[25], binary.BigEndian.Uint16(msg[30:])
	mlen := pad8len(int(binary.BigEndian.Uint16(msg[50:])))
	match, instrs := msg[48:48+mlen], msg[48+mlen:]
	key := fmt.Sprintf("%d/%d/%x", table, prio, match)
	switch cmd {
	case ofpfcAdd:
		s.flows[key] = &fakeFlow{table: table, priority: prio, cookie: cookie, match: slices.Clone(match), instrs: slices.Clone(instrs)}
	case ofpfcDeleteStrict:
		if f := s.flows[key]; f != nil && f.cookie&mask == cookie&mask {
			delete(s.flows, key)
		}
	case ofpfcDelete:
		if mlen != 8 {
			s.t.Errorf("fake switch: non-strict delete with a match")
		}
		for k, f := range s.flows {
			if (table == ofpttAll || f.table == table) && f.cookie&mask == cookie&mask {
				delete(s.flows, k)
			}
		}
	}
}

// applyGroupMod applies a group mod; it returns the OpenFlow error (type
// 0: none) Open vSwitch would (s.mu held).
func (s *fakeSwitch) applyGroupMod(msg []byte) (uint16, uint16) {
	cmd, id := binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint32(msg[12:])
	entry := binary.BigEndian.AppendUint16(nil, uint16(16+len(msg)-24))
	entry = append(entry, msg[10], 0)
	entry = binary.BigEndian.AppendUint32(entry, id)
	entry = append(entry, msg[16], msg[17], 0, 0, 0, 0, 0, 0)
	entry = append(entry, msg[24:]...)
	switch cmd {
	case ofpgcAdd:
		if s.groups[id] != nil {
			return 6, 0 // OFPET_GROUP_MOD_FAILED / OFPGMFC_GROUP_EXISTS
		}
		s.groups[id] = entry
	case ofpgcModify:
		if s.groups[id] == nil {
			return 6, 8 // OFPGMFC_UNKNOWN_GROUP
		}
		s.groups[id] = entry
	case ofpgcDelete:
		for gid := range s.groups {
			if id != ofpgAll && gid != id {
				continue
			}
			delete(s.groups, gid)
			for k, f := range s.flows {
				if slices.Contains(f.decode(s.t).Actions, Action(GroupAction(gid))) {
					delete(s.flows, k)
				}
			}
		}
	}
	return 0, 0
}

// entry is the flow description of a flow.
func (f *fakeFlow) entry() []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = append(b, 0, 0, f.table, 0)
	b = binary.BigEndian.AppendUint16(b, f.priority)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // timeouts, flags, importance
	b = binary.BigEndian.AppendUint64(b, f.cookie)
	b = append(b, f.match...)
	b = append(b, 0, 0, 0, 4, 0, 0, 0, 0) // ofp_stats without fields
	b = append(b, f.instrs...)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b
}

func (f *fakeFlow) decode(t *testing.T) FlowDesc {
	fd, err := decodeFlowDesc(f.entry())
	if err != nil {
		t.Errorf("fake switch: decoding its flow: %v", err)
	}
	return fd
}

// describe answers a flow or group description request (s.mu held).
func (s *fakeSwitch) describe(msg []byte) []byte {
	xid := binary.BigEndian.Uint32(msg[4:])
	typ := binary.BigEndian.Uint16(msg[8:])
	var entries [][]byte
	switch typ {
	case ofpmpFlowDesc:
		cookie, mask := binary.BigEndian.Uint64(msg[32:]), binary.BigEndian.Uint64(msg[40:])
		for _, k := range slices.Sorted(maps.Keys(s.flows)) {
			if f := s.flows[k]; f.cookie&mask == cookie&mask {
				entries = append(entries, f.entry())
			}
		}
	case ofpmpGroupDesc:
		for _, id := range slices.Sorted(maps.Keys(s.groups)) {
			entries = append(entries, s.groups[id])
		}
	}
	// Three entries per reply message, the "more" flag on all but the last.
	var out []byte
	for first := true; first || len(entries) > 0; first = false {
		n := min(3, len(entries))
		var flags uint16
		if n < len(entries) {
			flags = ofpmpReplyMore
		}
		m := binary.BigEndian.AppendUint16(header(ofptMultipartReply, 0, xid), typ)
		m = binary.BigEndian.AppendUint16(m, flags)
		m = append(m, 0, 0, 0, 0)
		for _, e := range entries[:n] {
			m = append(m, e...)
		}
		out = append(out, finish(m)...)
		entries = entries[n:]
	}
	return out
}

// state returns the flows (decoded, as lines) and groups (decoded) the
// switch holds.
func (s *fakeSwitch) state() (flows, groups []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.flows {
		fd := f.decode(s.t)
		flows = append(flows, fd.String())
	}
	for _, e := range s.groups {
		g, err := decodeGroupDesc(e)
		if err != nil {
			s.t.Errorf("fake switch: decoding its group: %v", err)
		}
		groups = append(groups, g.String())
	}
	slices.Sort(flows)
	slices.Sort(groups)
	return flows, groups
}

// take returns the messages received since the last call, as ovs-ofctl
// ofp-print decodes them (after the header).
func (s *fakeSwitch) take(ofctl string) []string {
	s.t.Helper()
	s.mu.Lock()
	msgs := s.msgs
	s.msgs = nil
	s.mu.Unlock()
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		b, err := exec.Command(ofctl, "ofp-print", hex.EncodeToString(m)).CombinedOutput()
		txt := strings.Join(strings.Fields(string(b)), " ")
		if err != nil || strings.Contains(txt, "decode error") {
			s.t.Fatalf("ovs-ofctl ofp-print: %v: %s", err, txt)
		}
		if _, rest, ok := strings.Cut(txt, "): "); ok {
			txt = rest
		}
		out = append(out, txt)
	}
	return out
}

// testDriver is a driver talking to a fake switch, without OVSDB (no GRE
// or VXLAN port to create; VM ports given by number).
func testDriver(t *testing.T) (*Driver, *fakeSwitch, string) {
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		testfabric.SkipUnlessStrict(t, "ovs-ofctl not found (install openvswitch-common)")
	}
	sw, path := startFakeSwitch(t)
	return driverOn(t, path), sw, ofctl
}

// driverOn is a driver talking to the fake switch listening on path, as
// testDriver's (a daemon started again uses a new one).
func driverOn(t *testing.T, path string) *Driver {
	d := New(Config{Bridge: "br-test", Local: local, ARPResponder: true, TableStart: 1, HashMethod: "dp_hash"}, nil)
	d.of = newOFConn(path)
	t.Cleanup(d.of.Close)
	d.pl = grePipeline()
	d.ready = true
	return d
}

func plugged(n int) *dataplane.LocalPort {
	return &dataplane.LocalPort{OVS: &dataplane.OVSPort{Plugged: true, PortNumber: &n}}
}

func endpoint(mac byte, label uint32, ofport int, dir dataplane.Direction) dataplane.Endpoint {
	return dataplane.Endpoint{
		MAC: route.MAC{0x52, 0x54, 0, 0, 0, mac}, IP: netip.MustParsePrefix("10.1.1.1/32"),
		Port: plugged(ofport), Label: label, Direction: dir,
	}
}

func checkSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	check(t, what, g, w)
}

// TestDirections plugs and unplugs a to-port, a from-port and a both
// endpoint (spec §6.10, §7.4): to-port gets only the incoming (label)
// flow, from-port only the classification of its port's traffic and the
// ARP responder, both gets everything; each unplug removes exactly what
// its plug installed.
func TestDirections(t *testing.T) {
	d, sw, ofctl := testDriver(t)
	ctx := context.Background()
	inst, err := d.NewIPVPNInstance(ctx, dataplane.InstanceConfig{ID: 7, GatewayIP: gw, PrefixLen: 24})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "driver flows with the first VRF", sw.take(ofctl), []string{
		"ADD priority=36864,mpls,in_port=2 cookie:0x4250000000000000 actions=resubmit(,1)",
	})
	const ck = " cookie:0x4250000000000007"
	incoming := func(label, mac, port string) string {
		return "ADD table:1 priority=36864,mpls,mpls_label=" + label + ",mpls_bos=1" + ck +
			" actions=pop_mpls:0x0800,set_field:00:00:5e:00:43:64->eth_src,set_field:52:54:00:00:00:" + mac + "->eth_dst,output:" + port
	}
	classify := func(port string) []string {
		acts := ck + " actions=set_field:0->in_port,set_field:0x7->reg0,resubmit(,2)"
		return []string{
			"ADD priority=36864,ip,in_port=" + port + acts,
			"ADD priority=36864,arp,in_port=" + port + acts,
			"ADD priority=36865,arp,in_port=" + port + ",dl_dst=ff:ff:ff:ff:ff:ff,arp_tpa=10.1.1.254,arp_op=1" + ck +
				" actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:5e:00:43:64->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_TPA[]->NXM_NX_REG1[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG1[]->NXM_OF_ARP_SPA[],set_field:00:00:5e:00:43:64->arp_sha,IN_PORT",
		}
	}
	deleted := func(adds []string) []string {
		out := make([]string, len(adds))
		for k, a := range adds {
			a = strings.Replace(a, "ADD", "DEL_STRICT", 1)
			a, _, _ = strings.Cut(a, " actions=")
			out[k] = strings.Replace(a, ck, ck+"/0xffffffffffffffff", 1) + " actions=drop"
		}
		return out
	}
	to, from, both := endpoint(1, 100, 3, dataplane.ToPort), endpoint(2, 101, 4, dataplane.FromPort), endpoint(3, 102, 5, dataplane.Both)
	for _, c := range []struct {
		ep   dataplane.Endpoint
		want []string
	}{
		{to, []string{incoming("100", "01", "3")}},
		{from, classify("4")},
		{both, append(classify("5"), incoming("102", "03", "5"))},
	} {
		if err := inst.VIFPlugged(ctx, c.ep); err != nil {
			t.Fatal(err)
		}
		checkSet(t, "plug "+string(c.ep.Direction), sw.take(ofctl), c.want)
	}
	flows := strings.Join(inst.(*Instance).Flows(), "\n")
	if strings.Contains(flows, "in_port=3,") || strings.Contains(flows, "output:4") {
		t.Errorf("to-port port classified or from-port port delivered to:\n%s", flows)
	}
	for _, c := range []struct {
		ep   dataplane.Endpoint
		want []string
	}{
		{to, deleted([]string{incoming("100", "01", "3")})},
		{from, deleted(classify("4"))},
		{both, deleted(append([]string{incoming("102", "03", "5")}, classify("5")...))},
	} {
		if err := inst.VIFUnplugged(ctx, c.ep, true); err != nil {
			t.Fatal(err)
		}
		checkSet(t, "unplug "+string(c.ep.Direction), sw.take(ofctl), c.want)
	}
	if f := inst.(*Instance).Flows(); len(f) != 0 {
		t.Errorf("flows left after the unplugs: %v", f)
	}
	// A to-port MAC then a from-port MAC on one port: the port's traffic
	// is classified from the second plug on, the first MAC keeps its
	// incoming flow.
	if err := inst.VIFPlugged(ctx, endpoint(4, 103, 6, dataplane.ToPort)); err != nil {
		t.Fatal(err)
	}
	if err := inst.VIFPlugged(ctx, endpoint(5, 104, 6, dataplane.FromPort)); err != nil {
		t.Fatal(err)
	}
	checkSet(t, "to-port then from-port on one port", sw.take(ofctl), append(classify("6"), incoming("103", "04", "6")))
}

// TestClassifierLifecycle drives AddClassifier and RemoveClassifier
// against the fake switch.
func TestClassifierLifecycle(t *testing.T) {
	d, sw, ofctl := testDriver(t)
	ctx := context.Background()
	iv, err := d.NewIPVPNInstance(ctx, dataplane.InstanceConfig{ID: 7, GatewayIP: gw, PrefixLen: 24})
	if err != nil {
		t.Fatal(err)
	}
	inst := iv.(*Instance)
	sw.take(ofctl)
	const ck = " cookie:0x4250000000000007"
	add := func(match string, to string) string {
		return "ADD table:2 priority=36864," + match + ck + " actions=set_field:" + to + "->reg0,resubmit(,2)"
	}
	del := func(match string) string {
		return "DEL_STRICT table:2 priority=36864," + match + ck + "/0xffffffffffffffff actions=drop"
	}
	dst := netip.MustParsePrefix("10.1.2.1/32")
	c1 := route.Classifier{Protocol: 6, Dst: dst, DstPort: route.PortRange{Min: 8080, Max: 8080}}
	c2 := route.Classifier{Dst: dst, DstPort: route.PortRange{Min: 8080, Max: 8080}} // TCP and UDP
	tcp, udp := "tcp,reg0=0x7,nw_dst=10.1.2.1,tp_dst=8080", "udp,reg0=0x7,nw_dst=10.1.2.1,tp_dst=8080"

	steps := []struct {
		what string
		op   func() error
		want []string
	}{
		{"add", func() error { return inst.AddClassifier(ctx, c1, 9) }, []string{add(tcp, "0x9")}},
		{"same again: nothing", func() error { return inst.AddClassifier(ctx, c1, 9) }, nil},
		{"another target replaces", func() error { return inst.AddClassifier(ctx, c1, 10) }, []string{add(tcp, "0xa")}},
		{"a classifier sharing a flow", func() error { return inst.AddClassifier(ctx, c2, 11) }, []string{add(tcp, "0xb"), add(udp, "0xb")}},
		{"its removal gives the shared flow back", func() error { return inst.RemoveClassifier(ctx, c2) }, []string{add(tcp, "0xa"), del(udp)}},
		{"remove", func() error { return inst.RemoveClassifier(ctx, c1) }, []string{del(tcp)}},
		{"remove again: nothing", func() error { return inst.RemoveClassifier(ctx, c1) }, nil},
	}
	for _, s := range steps {
		if err := s.op(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		check(t, s.what, sw.take(ofctl), s.want)
	}
	if len(inst.Flows()) != 0 || len(inst.clsFlows) != 0 {
		t.Fatalf("state left: %v", inst.Flows())
	}

	// Ranges on both sides, no destination: the product of the masks.
	c3 := route.Classifier{Protocol: 17, SrcPort: route.PortRange{Min: 5, Max: 6}, DstPort: route.PortRange{Min: 1000, Max: 1003}}
	if err := inst.AddClassifier(ctx, c3, 9); err != nil {
		t.Fatal(err)
	}
	checkSet(t, "ranges", sw.take(ofctl), []string{
		add("udp,reg0=0x7,tp_src=5,tp_dst=0x3e8/0xfffc", "0x9"), add("udp,reg0=0x7,tp_src=6,tp_dst=0x3e8/0xfffc", "0x9"),
	})
	lg := inst.LookingGlass()
	cls, _ := lg["classifiers"].([]any)
	if len(cls) != 1 || cls[0].(map[string]any)["redirect_to"] != "VRF-9" || cls[0].(map[string]any)["matches"] != 2 {
		t.Errorf("looking glass classifiers: %v", lg["classifiers"])
	}
	if fl := strings.Join(lg["flows"].([]string), "\n"); strings.Count(fl, "set_field:9->reg0,resubmit(,2)") != 2 {
		t.Errorf("looking glass flows:\n%s", fl)
	}

	// Refused: ports of a protocol without ports, redirection to itself.
	for _, bad := range []func() error{
		func() error {
			return inst.AddClassifier(ctx, route.Classifier{Protocol: 1, DstPort: route.PortRange{Min: 1, Max: 1}}, 9)
		},
		func() error { return inst.AddClassifier(ctx, c1, 7) },
		func() error { return inst.AddClassifier(ctx, c1, 0) },
	} {
		if bad() == nil {
			t.Error("bad classifier accepted")
		}
	}
	if m := sw.take(ofctl); len(m) != 0 {
		t.Errorf("refused classifiers sent %v", m)
	}

	// The switch refuses a flow: nothing is left of the classifier.
	sw.mu.Lock()
	sw.failNext = true
	sw.mu.Unlock()
	var ofErr *OFError
	if err := inst.AddClassifier(ctx, c1, 9); !errors.As(err, &ofErr) {
		t.Fatalf("refused flow: %v", err)
	}
	check(t, "undo of a refused classifier", sw.take(ofctl), []string{add(tcp, "0x9"), del(tcp)})
	if _, ok := inst.classifiers[c1]; ok || len(inst.clsFlows) != 2 {
		t.Errorf("state after a refused classifier: %v", inst.Flows())
	}

	// Cleanup removes every flow of the VRF (cookie), classifiers
	// included, and the driver's with the last VRF.
	if err := inst.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, "cleanup", sw.take(ofctl), []string{
		"DEL table:255 priority=0 cookie:0x4250000000000007/0xffff0000ffffffff actions=drop",
		"DEL table:255 priority=0 cookie:0x4250000000000000/0xffff0000ffffffff actions=drop",
	})
	if len(inst.Flows()) != 0 || len(inst.classifiers) != 0 || inst.LookingGlass()["classifiers"] != nil {
		t.Errorf("state after cleanup: %v", inst.Flows())
	}
	if err := inst.AddClassifier(ctx, c1, 9); err == nil {
		t.Error("classifier added after cleanup")
	}
}

// TestRedirectionVRF: a VRF without ports (gateway 127.0.0.1, as the VPN
// logic creates for a redirect-to-VRF) installs a default route over two
// next hops as one select group, and a source VRF's classifier sends
// traffic into it.
func TestRedirectionVRF(t *testing.T) {
	d, sw, ofctl := testDriver(t)
	ctx := context.Background()
	src, err := d.NewIPVPNInstance(ctx, dataplane.InstanceConfig{ID: 7, GatewayIP: gw, PrefixLen: 24})
	if err != nil {
		t.Fatal(err)
	}
	red, err := d.NewIPVPNInstance(ctx, dataplane.InstanceConfig{ID: 9, ExternalID: "redirect-to-ipvpn-64512_2", GatewayIP: netip.MustParseAddr("127.0.0.1"), PrefixLen: 24})
	if err != nil {
		t.Fatal(err)
	}
	sw.take(ofctl)
	def := netip.MustParsePrefix("0.0.0.0/0")
	pe3 := netip.MustParseAddr("192.0.2.3")
	for _, r := range []dataplane.Remote{
		{Prefix: def, PE: pe2, Label: 200, Encaps: []route.Encap{route.EncapGRE}, LBOrder: 0},
		{Prefix: def, PE: pe3, Label: 300, Encaps: []route.Encap{route.EncapGRE}, LBOrder: 1},
	} {
		if err := red.SetupRemote(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.AddClassifier(ctx, route.Classifier{Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}}, 9); err != nil {
		t.Fatal(err)
	}
	const b0 = "bucket=bucket_id:0,actions=dec_ttl,push_mpls:0x8847,set_field:200->mpls_label,set_field:192.0.2.2->tun_dst,output:2"
	const b1 = "bucket=bucket_id:1,actions=dec_ttl,push_mpls:0x8847,set_field:300->mpls_label,set_field:192.0.2.3->tun_dst,output:2"
	check(t, "redirection VRF and classifier", sw.take(ofctl), []string{
		"ADD group_id=1107296257,type=select,selection_method=dp_hash," + b0,
		"ADD table:2 priority=36736,ip,reg0=0x9 cookie:0x4250000000000009 actions=group:1107296257",
		"MOD group_id=1107296257,type=select,selection_method=dp_hash," + b0 + "," + b1,
		"ADD table:2 priority=36864,tcp,reg0=0x7,tp_dst=80 cookie:0x4250000000000007 actions=set_field:0x9->reg0,resubmit(,2)",
	})
	if err := red.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, "redirection VRF cleanup", sw.take(ofctl), []string{
		"DEL table:255 priority=0 cookie:0x4250000000000009/0xffff0000ffffffff actions=drop",
		"DEL group_id=1107296257,type=select",
	})
}
