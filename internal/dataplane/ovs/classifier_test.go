package ovs

import (
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"bagpipe/internal/route"
	"bagpipe/internal/testfabric"
)

func pr(lo, hi uint16) route.PortRange { return route.PortRange{Min: lo, Max: hi} }

// minimalPrefixCover counts the blocks of the minimal prefix cover of
// [lo, hi] by walking the binary trie of the 16-bit port space: a subtree
// inside the range is one block, one outside none, else its two halves.
func minimalPrefixCover(lo, hi uint32) int {
	var walk func(start, size uint32) int
	walk = func(start, size uint32) int {
		end := start + size - 1
		switch {
		case end < lo || start > hi:
			return 0
		case start >= lo && end <= hi:
			return 1
		}
		return walk(start, size/2) + walk(start+size/2, size/2)
	}
	return walk(0, 1<<16)
}

// TestPortMasks checks, for every port of the 16-bit space, that the masks
// of a range cover it exactly once if it is in the range and never
// otherwise, and that no smaller prefix cover exists.
func TestPortMasks(t *testing.T) {
	ranges := []route.PortRange{
		pr(80, 80), pr(0, 1), pr(65535, 65535), pr(0, 1023), pr(1024, 65535), pr(1, 65534), pr(1, 65535), pr(0, 65534),
		pr(1000, 2000), pr(8080, 8090), pr(32768, 60999), pr(5, 6), pr(4, 7), pr(7, 8), pr(12345, 54321),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		a, b := uint16(rng.IntN(1<<16)), uint16(rng.IntN(1<<16))
		if a > b {
			a, b = b, a
		}
		ranges = append(ranges, route.PortRange{Min: a, Max: b})
	}
	for _, r := range ranges {
		if r.IsAny() {
			continue
		}
		masks := portMasks(r)
		for _, m := range masks {
			if m.Mask == 0 {
				t.Fatalf("%v: a match-anything mask for a proper range", r)
			}
		}
		for p := 0; p < 1<<16; p++ {
			n := 0
			for _, m := range masks {
				if uint16(p)&m.Mask == m.Value {
					n++
				}
			}
			want := 0
			if uint16(p) >= r.Min && uint16(p) <= r.Max {
				want = 1
			}
			if n != want {
				t.Fatalf("range %v: port %d covered %d times by %v, want %d", r, p, n, masks, want)
			}
		}
		if want := minimalPrefixCover(uint32(r.Min), uint32(r.Max)); len(masks) != want {
			t.Errorf("range %v: %d masks %v, the minimal cover has %d", r, len(masks), masks, want)
		}
	}
	for _, any := range []route.PortRange{{}, pr(0, 65535)} {
		if m := portMasks(any); len(m) != 1 || !m[0].IsAny() {
			t.Errorf("range %v: %v, want one match-anything entry", any, m)
		}
	}
	// The worst case of 16 bits: 1..65534 needs 30 blocks.
	if n := len(portMasks(pr(1, 65534))); n != 30 {
		t.Errorf("1:65534 in %d masks, want 30", n)
	}
}

func classifierFlowStrings(t *testing.T, c route.Classifier) []string {
	t.Helper()
	pl := grePipeline()
	ms, err := classifierMatches(7, c)
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	fs := make([]Flow, len(ms))
	for k, m := range ms {
		fs[k] = pl.classifierFlow(7, m, 9)
	}
	return flowStrings(fs)
}

func TestClassifierFlows(t *testing.T) {
	const pre = "table=2,cookie=0x4250000000000007,priority=36864,"
	const redirect = ",actions=set_field:9->reg0,resubmit(,2)"
	dst := netip.MustParsePrefix("10.1.2.1/32")
	src := netip.MustParsePrefix("10.1.0.7/16") // host bits: masked
	cases := []struct {
		what string
		c    route.Classifier
		want []string
	}{
		{"everything", route.Classifier{}, []string{pre + "ip,reg0=7" + redirect}},
		{"destination and protocol, no port", route.Classifier{Dst: dst, Protocol: 6},
			[]string{pre + "tcp,reg0=7,nw_dst=10.1.2.1" + redirect}},
		{"destination port only (reference crash)", route.Classifier{Protocol: 6, Dst: dst, DstPort: route.PortRange{Min: 8080, Max: 8080}},
			[]string{pre + "tcp,reg0=7,nw_dst=10.1.2.1,tp_dst=8080" + redirect}},
		{"source port range only", route.Classifier{Protocol: 17, Src: src, SrcPort: route.PortRange{Min: 1000, Max: 1007}},
			[]string{pre + "udp,reg0=7,nw_src=10.1.0.0/16,tp_src=0x3e8/0xfff8" + redirect}},
		{"both ranges: the product", route.Classifier{Protocol: 6, SrcPort: route.PortRange{Min: 5, Max: 6}, DstPort: route.PortRange{Min: 4, Max: 7}},
			[]string{pre + "tcp,reg0=7,tp_src=5,tp_dst=0x4/0xfffc" + redirect, pre + "tcp,reg0=7,tp_src=6,tp_dst=0x4/0xfffc" + redirect}},
		{"ports without protocol: TCP and UDP", route.Classifier{DstPort: route.PortRange{Min: 53, Max: 53}},
			[]string{pre + "tcp,reg0=7,tp_dst=53" + redirect, pre + "udp,reg0=7,tp_dst=53" + redirect}},
		{"SCTP", route.Classifier{Protocol: 132, DstPort: route.PortRange{Min: 0, Max: 1023}},
			[]string{pre + "sctp,reg0=7,tp_dst=0x0/0xfc00" + redirect}},
		{"other protocol", route.Classifier{Protocol: 47}, []string{pre + "ip,nw_proto=47,reg0=7" + redirect}},
		{"any port range is no port match", route.Classifier{Protocol: 6, SrcPort: route.PortRange{Min: 0, Max: 65535}},
			[]string{pre + "tcp,reg0=7" + redirect}},
	}
	for _, c := range cases {
		check(t, c.what, classifierFlowStrings(t, c.c), c.want)
	}
	for _, bad := range []route.Classifier{
		{Protocol: 1, DstPort: route.PortRange{Min: 80, Max: 80}},
		{Dst: netip.MustParsePrefix("2001:db8::/64")},
	} {
		if _, err := classifierMatches(7, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestClassifierWire checks the encoding of the classifier matches (IP
// protocol, source and destination prefixes, masked TCP/UDP/SCTP ports)
// with ovs-ofctl ofp-print.
func TestClassifierWire(t *testing.T) {
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		testfabric.SkipUnlessStrict(t, "ovs-ofctl not found (install openvswitch-common)")
	}
	pl := grePipeline()
	const tail = " cookie:0x4250000000000007 actions=set_field:0x9->reg0,resubmit(,2)"
	cases := []struct {
		c    route.Classifier
		want []string
	}{
		{route.Classifier{Protocol: 6, Src: netip.MustParsePrefix("10.1.1.0/24"), Dst: netip.MustParsePrefix("10.1.2.1/32"), SrcPort: route.PortRange{Min: 1024, Max: 2047}, DstPort: route.PortRange{Min: 1000, Max: 1003}},
			[]string{"ADD table:2 priority=36864,tcp,reg0=0x7,nw_src=10.1.1.0/24,nw_dst=10.1.2.1,tp_src=0x400/0xfc00,tp_dst=0x3e8/0xfffc" + tail}},
		{route.Classifier{Protocol: 17, SrcPort: route.PortRange{Min: 53, Max: 53}},
			[]string{"ADD table:2 priority=36864,udp,reg0=0x7,tp_src=53" + tail}},
		{route.Classifier{Protocol: 132, SrcPort: route.PortRange{Min: 1, Max: 1}, DstPort: route.PortRange{Min: 8, Max: 15}},
			[]string{"ADD table:2 priority=36864,sctp,reg0=0x7,tp_src=1,tp_dst=0x8/0xfff8" + tail}},
		{route.Classifier{Protocol: 1, Dst: netip.MustParsePrefix("10.0.0.0/8")},
			[]string{"ADD table:2 priority=36864,icmp,reg0=0x7,nw_dst=10.0.0.0/8" + tail}},
		{route.Classifier{Protocol: 47},
			[]string{"ADD table:2 priority=36864,ip,reg0=0x7,nw_proto=47" + tail}},
		{route.Classifier{Protocol: 6, DstPort: route.PortRange{Min: 0, Max: 1023}},
			[]string{"ADD table:2 priority=36864,tcp,reg0=0x7,tp_dst=0x0/0xfc00" + tail}},
		{route.Classifier{DstPort: route.PortRange{Min: 65535, Max: 65535}},
			[]string{"ADD table:2 priority=36864,tcp,reg0=0x7,tp_dst=65535" + tail, "ADD table:2 priority=36864,udp,reg0=0x7,tp_dst=65535" + tail}},
		{route.Classifier{},
			[]string{"ADD table:2 priority=36864,ip,reg0=0x7" + tail}},
	}
	for _, c := range cases {
		ms, err := classifierMatches(7, c.c)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != len(c.want) {
			t.Fatalf("%v: %d matches, want %d", c.c, len(ms), len(c.want))
		}
		for k, m := range ms {
			f := pl.classifierFlow(7, m, 9)
			for _, cmd := range []uint8{ofpfcAdd, ofpfcDeleteStrict} {
				want, mask := c.want[k], uint64(0)
				if cmd == ofpfcDeleteStrict {
					mask = cookieAllOne
					want = strings.Replace(strings.Replace(want, "ADD", "DEL_STRICT", 1), tail, " cookie:0x4250000000000007/0xffffffffffffffff actions=drop", 1)
				}
				out, err := exec.Command(ofctl, "ofp-print", hex.EncodeToString(flowMod(1, cmd, &f, mask))).CombinedOutput()
				got := strings.Join(strings.Fields(string(out)), " ")
				if err != nil || !strings.Contains(got, want) || strings.Contains(got, "decode error") {
					t.Errorf("ovs-ofctl decodes\n %s\nwant\n %s (%v)", got, want, err)
				}
			}
		}
	}
}
