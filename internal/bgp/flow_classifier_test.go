package bgp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// mkFlow builds a Flow string from GoBGP components.
func mkFlow(t *testing.T, comps ...bgp.FlowSpecComponentInterface) string {
	t.Helper()
	n, err := bgp.NewFlowSpecVPN(bgp.RF_FS_IPv4_VPN, bgp.NewRouteDistinguisherTwoOctetAS(0, 0), comps)
	if err != nil {
		t.Fatal(err)
	}
	return flowBytes(n.Value)
}

func num(typ bgp.BGPFlowSpecType, ops ...any) *bgp.FlowSpecComponent {
	var items []*bgp.FlowSpecComponentItem
	for i := 0; i < len(ops); i += 2 {
		items = append(items, bgp.NewFlowSpecComponentItem(uint8(ops[i].(int)), uint64(ops[i+1].(int))))
	}
	return bgp.NewFlowSpecComponent(typ, items)
}

func dstPfx(s string) bgp.FlowSpecComponentInterface {
	p, _ := bgp.NewIPAddrPrefix(netip.MustParsePrefix(s))
	return bgp.NewFlowSpecDestinationPrefix(p)
}

func srcPfx(s string) bgp.FlowSpecComponentInterface {
	p, _ := bgp.NewIPAddrPrefix(netip.MustParsePrefix(s))
	return bgp.NewFlowSpecSourcePrefix(p)
}

const (
	opEQ  = int(bgp.DEC_NUM_OP_EQ)
	opGT  = int(bgp.DEC_NUM_OP_GT)
	opGE  = int(bgp.DEC_NUM_OP_GT_EQ)
	opLT  = int(bgp.DEC_NUM_OP_LT)
	opLE  = int(bgp.DEC_NUM_OP_LT_EQ)
	opNE  = int(bgp.DEC_NUM_OP_NOT_EQ)
	opAND = int(bgp.DEC_NUM_OP_AND)
)

// TestClassifierToFlow checks the generated rules (as the looking glass
// prints them) for every port form, and that each reads back as the same
// classifier.
func TestClassifierToFlow(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		c    route.Classifier
		text string
	}{
		{route.Classifier{Dst: pfx("10.77.0.0/24"), Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}},
			"destination-ipv4 10.77.0.0/24 protocol =tcp destination-port =80"},
		{route.Classifier{Src: pfx("10.0.0.0/24"), Dst: pfx("10.1.0.1/32"), Protocol: 17, SrcPort: route.PortRange{Min: 1000, Max: 2000}},
			"destination-ipv4 10.1.0.1/32 source-ipv4 10.0.0.0/24 protocol =udp source-port [ >=1000&<=2000 ]"},
		{route.Classifier{Dst: pfx("0.0.0.0/0"), Protocol: 6, DstPort: route.PortRange{Min: 0, Max: 1023}},
			"destination-ipv4 0.0.0.0/0 protocol =tcp destination-port <=1023"},
		{route.Classifier{Protocol: 6, DstPort: route.PortRange{Min: 1024, Max: 65535}},
			"protocol =tcp destination-port >=1024"},
		{route.Classifier{Protocol: 132, DstPort: route.PortRange{Min: 8080, Max: 8080}, SrcPort: route.PortRange{Min: 1, Max: 65534}},
			"protocol =sctp destination-port =8080 source-port [ >=1&<=65534 ]"},
		{route.Classifier{Dst: pfx("10.2.0.0/16")}, "destination-ipv4 10.2.0.0/16"},
		{route.Classifier{Src: pfx("10.3.0.7/32"), Protocol: 1}, "source-ipv4 10.3.0.7/32 protocol =icmp"},
		{route.Classifier{Protocol: 250}, "protocol =250"},
		{route.Classifier{DstPort: route.PortRange{Min: 0, Max: 0xffff}, Protocol: 6}, "protocol =tcp"}, // any port: no component
		{route.Classifier{DstPort: route.PortRange{Min: 65535, Max: 65535}}, "destination-port =65535"},
		{route.Classifier{DstPort: route.PortRange{Min: 0, Max: 1}}, "destination-port <=1"},
	} {
		flow, err := ClassifierToFlow(tc.c)
		if err != nil {
			t.Errorf("%s: %v", tc.c, err)
			continue
		}
		if got := FlowText(flow); got != tc.text {
			t.Errorf("%s: rule %q, want %q", tc.c, got, tc.text)
		}
		back, err := FlowToClassifier(flow)
		if err != nil {
			t.Errorf("%s: read back: %v", tc.c, err)
		} else if back != tc.c.Normalize() {
			t.Errorf("round trip %s -> %q -> %s", tc.c, FlowText(flow), back)
		}
	}
}

// TestClassifierRoundTripAllRanges checks the round trip of port ranges
// at and around every boundary, on both sides.
func TestClassifierRoundTripAllRanges(t *testing.T) {
	vals := []uint16{0, 1, 2, 79, 80, 1023, 1024, 65533, 65534, 65535}
	for _, lo := range vals {
		for _, hi := range vals {
			if lo > hi || (lo == 0 && hi == 0) {
				continue
			}
			for _, side := range []string{"src", "dst"} {
				c := route.Classifier{Protocol: 6}
				if side == "src" {
					c.SrcPort = route.PortRange{Min: lo, Max: hi}
				} else {
					c.DstPort = route.PortRange{Min: lo, Max: hi}
				}
				flow, err := ClassifierToFlow(c)
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				back, err := FlowToClassifier(flow)
				if err != nil || back != c.Normalize() {
					t.Fatalf("round trip %s -> %q -> %s (%v)", c, FlowText(flow), back, err)
				}
			}
		}
	}
}

func TestClassifierToFlowErrors(t *testing.T) {
	for name, c := range map[string]route.Classifier{
		"matches everything": {},
		"any ports only":     {DstPort: route.PortRange{Min: 0, Max: 0xffff}},
		"IPv6 destination":   {Dst: netip.MustParsePrefix("2001:db8::/64")},
		"IPv6 source":        {Src: netip.MustParsePrefix("2001:db8::/64"), Protocol: 6},
		"inverted range":     {Protocol: 6, DstPort: route.PortRange{Min: 2000, Max: 1000}},
	} {
		if flow, err := ClassifierToFlow(c); err == nil {
			t.Errorf("%s: got rule %q, want an error", name, FlowText(flow))
		}
	}
}

// TestFlowToClassifier reads rules built with GoBGP's component types:
// every operator, both range orders, the any-port component, and the
// forms a classifier cannot express.
func TestFlowToClassifier(t *testing.T) {
	P, D, S, PR := bgp.FLOW_SPEC_TYPE_PORT, bgp.FLOW_SPEC_TYPE_DST_PORT, bgp.FLOW_SPEC_TYPE_SRC_PORT, bgp.FLOW_SPEC_TYPE_IP_PROTO
	pr := func(lo, hi uint16) route.PortRange { return route.PortRange{Min: lo, Max: hi} }
	for _, tc := range []struct {
		name  string
		comps []bgp.FlowSpecComponentInterface
		want  route.Classifier
		err   string // substring of the error; "" for success
	}{
		{"prefixes and protocol", []bgp.FlowSpecComponentInterface{dstPfx("10.1.0.0/16"), srcPfx("10.2.3.4/32"), num(PR, opEQ, 17)},
			route.Classifier{Dst: netip.MustParsePrefix("10.1.0.0/16"), Src: netip.MustParsePrefix("10.2.3.4/32"), Protocol: 17}, ""},
		{"=", []bgp.FlowSpecComponentInterface{num(D, opEQ, 80)}, route.Classifier{DstPort: pr(80, 80)}, ""},
		{"= two bytes", []bgp.FlowSpecComponentInterface{num(S, opEQ, 8080)}, route.Classifier{SrcPort: pr(8080, 8080)}, ""},
		{">=", []bgp.FlowSpecComponentInterface{num(D, opGE, 1024)}, route.Classifier{DstPort: pr(1024, 65535)}, ""},
		{"<=", []bgp.FlowSpecComponentInterface{num(D, opLE, 1023)}, route.Classifier{DstPort: pr(0, 1023)}, ""},
		{">", []bgp.FlowSpecComponentInterface{num(D, opGT, 1023)}, route.Classifier{DstPort: pr(1024, 65535)}, ""},
		{"<", []bgp.FlowSpecComponentInterface{num(S, opLT, 1024)}, route.Classifier{SrcPort: pr(0, 1023)}, ""},
		{">= &<=", []bgp.FlowSpecComponentInterface{num(D, opGE, 1000, opAND|opLE, 2000)}, route.Classifier{DstPort: pr(1000, 2000)}, ""},
		{"> &<", []bgp.FlowSpecComponentInterface{num(D, opGT, 999, opAND|opLT, 2001)}, route.Classifier{DstPort: pr(1000, 2000)}, ""},
		{"<= &>= (upper first)", []bgp.FlowSpecComponentInterface{num(S, opLE, 2000, opAND|opGE, 1000)}, route.Classifier{SrcPort: pr(1000, 2000)}, ""},
		{"range of one port", []bgp.FlowSpecComponentInterface{num(D, opGE, 53, opAND|opLE, 53)}, route.Classifier{DstPort: pr(53, 53)}, ""},
		{">= 0 is any port", []bgp.FlowSpecComponentInterface{num(D, opGE, 0), num(PR, opEQ, 6)}, route.Classifier{Protocol: 6}, ""},
		{"any-port component", []bgp.FlowSpecComponentInterface{num(P, opEQ, 443)}, route.Classifier{SrcPort: pr(443, 443), DstPort: pr(443, 443)}, ""},
		{"reference (0,max) form", []bgp.FlowSpecComponentInterface{num(D, opLT, 100)}, route.Classifier{DstPort: pr(0, 99)}, ""},

		{"OR of two ports", []bgp.FlowSpecComponentInterface{num(D, opEQ, 80, opEQ, 443)}, route.Classifier{}, "OR"},
		{"two lower bounds", []bgp.FlowSpecComponentInterface{num(D, opGE, 80, opAND|opGT, 443)}, route.Classifier{}, "one lower and one upper"},
		{"three terms", []bgp.FlowSpecComponentInterface{num(D, opGE, 80, opAND|opLE, 443, opAND|opLE, 400)}, route.Classifier{}, "3 terms"},
		{"!=", []bgp.FlowSpecComponentInterface{num(D, opNE, 80)}, route.Classifier{}, "operator !="},
		{"empty range", []bgp.FlowSpecComponentInterface{num(D, opGE, 2000, opAND|opLE, 1000)}, route.Classifier{}, "empty port range"},
		{"port out of range", []bgp.FlowSpecComponentInterface{num(D, opEQ, 70000)}, route.Classifier{}, "out of range"},
		{"> 65535", []bgp.FlowSpecComponentInterface{num(D, opGT, 65535)}, route.Classifier{}, "matches no port"},
		{"< 0", []bgp.FlowSpecComponentInterface{num(D, opLT, 0)}, route.Classifier{}, "matches no port"},
		{"port 0", []bgp.FlowSpecComponentInterface{num(D, opEQ, 0)}, route.Classifier{}, "port 0"},
		{"protocol range", []bgp.FlowSpecComponentInterface{num(PR, opGE, 6)}, route.Classifier{}, "only ="},
		{"two protocols", []bgp.FlowSpecComponentInterface{num(PR, opEQ, 6, opEQ, 17)}, route.Classifier{}, "2 terms"},
		{"protocol 0", []bgp.FlowSpecComponentInterface{num(PR, opEQ, 0)}, route.Classifier{}, "protocol"},
		{"port with destination-port", []bgp.FlowSpecComponentInterface{num(P, opEQ, 80), num(D, opEQ, 81)}, route.Classifier{}, "port component together"},
		{"icmp-type", []bgp.FlowSpecComponentInterface{num(bgp.FLOW_SPEC_TYPE_ICMP_TYPE, opEQ, 8)}, route.Classifier{}, "icmp-type is not supported"},
		{"packet-length", []bgp.FlowSpecComponentInterface{dstPfx("10.0.0.0/8"), num(bgp.FLOW_SPEC_TYPE_PKT_LEN, opLE, 100)}, route.Classifier{}, "packet-length is not supported"},
		{"dscp", []bgp.FlowSpecComponentInterface{num(bgp.FLOW_SPEC_TYPE_DSCP, opEQ, 46)}, route.Classifier{}, "dscp is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flow := mkFlow(t, tc.comps...)
			got, err := FlowToClassifier(flow)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%q: got %s, %v; want an error with %q", FlowText(flow), got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", FlowText(flow), err)
			}
			if got != tc.want {
				t.Fatalf("%q: got %s, want %s", FlowText(flow), got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "\x01", strings.Repeat("\x03\x81\x06", 100)} {
		if c, err := FlowToClassifier(bad); err == nil {
			t.Errorf("%x: got %s, want an error", bad, c)
		}
	}
}

// TestFlowToClassifierFromText reads rules in the looking glass syntax, as
// other implementations write them.
func TestFlowToClassifierFromText(t *testing.T) {
	flow, err := FlowFromText("destination-ipv4 10.77.0.0/24 protocol =tcp destination-port =80")
	if err != nil {
		t.Fatal(err)
	}
	c, err := FlowToClassifier(flow)
	want := route.Classifier{Dst: netip.MustParsePrefix("10.77.0.0/24"), Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}}
	if err != nil || c != want {
		t.Fatalf("got %s, %v; want %s", c, err, want)
	}
	// The same rule from the classifier is byte for byte the same.
	if again, err := ClassifierToFlow(c); err != nil || again != flow {
		t.Fatalf("ClassifierToFlow = %x, %v; want %x", again, err, flow)
	}
}
