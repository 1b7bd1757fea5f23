package bgp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Flowspec rules travel in route.NLRI.Flow as the RFC 5575 components, in
// GoBGP's wire encoding and canonical order (sorted by component type),
// without the NLRI length and the route distinguisher.

// maxFlowLen bounds the components of a Flowspec-VPN NLRI so that, with the
// RD, its length fits the one-byte length form (GoBGP mishandles the
// two-byte form).
const maxFlowLen = 0xf0 - 1 - 8

// flowBytes serialises Flowspec components into the Flow form.
func flowBytes(comps []bgp.FlowSpecComponentInterface) string {
	var b []byte
	for _, c := range comps {
		cb, err := c.Serialize()
		if err != nil {
			continue
		}
		b = append(b, cb...)
	}
	return string(b)
}

// flowComponents decodes a Flow string with GoBGP.
func flowComponents(flow string) ([]bgp.FlowSpecComponentInterface, error) {
	if len(flow) == 0 || len(flow) > maxFlowLen {
		return nil, fmt.Errorf("flowspec rule of %d bytes: must be 1 to %d", len(flow), maxFlowLen)
	}
	buf := make([]byte, 0, 1+len(flow))
	buf = append(buf, byte(len(flow))) // RFC 5575 one-byte NLRI length
	buf = append(buf, flow...)
	n, err := bgp.NLRIFromSlice(bgp.RF_FS_IPv4_UC, buf)
	if err != nil {
		return nil, err
	}
	fs, ok := n.(*bgp.FlowSpecNLRI)
	if !ok {
		return nil, errors.New("not a flowspec NLRI")
	}
	for _, c := range fs.Value {
		if _, unknown := c.(*bgp.FlowSpecUnknown); unknown {
			return nil, fmt.Errorf("undecodable flowspec component %d", c.Type())
		}
	}
	return fs.Value, nil
}

// FlowFromText builds a Flow string (route.NLRI.Flow) from a rule written in
// GoBGP's syntax ("destination 10.0.0.0/24 protocol tcp destination-port
// ==80") or in the exabgp style FlowText returns ("destination-ipv4
// 10.0.0.0/24 protocol =tcp destination-port =80").
func FlowFromText(text string) (string, error) {
	r := strings.NewReplacer("destination-ipv4", "destination", "source-ipv4", "source", "[", " ", "]", " ")
	fields := strings.Fields(r.Replace(text))
	if len(fields) == 0 {
		return "", errors.New("empty flowspec rule")
	}
	comps, err := bgp.ParseFlowSpecComponents(bgp.RF_FS_IPv4_VPN, strings.Join(fields, " "))
	if err != nil {
		return "", fmt.Errorf("flowspec rule %q: %w", text, err)
	}
	// NewFlowSpecVPN sorts the components into their canonical order.
	n, err := bgp.NewFlowSpecVPN(bgp.RF_FS_IPv4_VPN, bgp.NewRouteDistinguisherTwoOctetAS(0, 0), comps)
	if err != nil {
		return "", err
	}
	flow := flowBytes(n.Value)
	if len(flow) > maxFlowLen {
		return "", fmt.Errorf("flowspec rule %q is too long", text)
	}
	return flow, nil
}

// FlowText formats a Flow string the way exabgp (and so the reference
// looking glass) does, e.g. "destination-ipv4 10.77.0.0/24 protocol =tcp
// destination-port =80". Undecodable input is shown in hex.
func FlowText(flow string) string {
	comps, err := flowComponents(flow)
	if err != nil {
		return fmt.Sprintf("flow 0x%x", flow)
	}
	var b strings.Builder
	for _, c := range comps {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		switch c := c.(type) {
		case *bgp.FlowSpecDestinationPrefix:
			b.WriteString("destination-ipv4 ")
			b.WriteString(c.Prefix.Prefix.String())
		case *bgp.FlowSpecSourcePrefix:
			b.WriteString("source-ipv4 ")
			b.WriteString(c.Prefix.Prefix.String())
		case *bgp.FlowSpecComponent:
			writeFlowComponent(&b, c)
		default:
			fmt.Fprintf(&b, "component-%d", c.Type())
		}
	}
	return b.String()
}

// Flowspec operator bits (RFC 5575 §4).
const (
	flowOpEnd = 0x80
	flowOpAnd = 0x40
	flowOpLen = 0x30
	flowOpLT  = 0x04
	flowOpGT  = 0x02
	flowOpEQ  = 0x01
	flowOpNot = 0x02 // bitmask operators
	flowOpMat = 0x01
)

var flowNames = map[bgp.BGPFlowSpecType]string{
	bgp.FLOW_SPEC_TYPE_IP_PROTO:  "protocol",
	bgp.FLOW_SPEC_TYPE_PORT:      "port",
	bgp.FLOW_SPEC_TYPE_DST_PORT:  "destination-port",
	bgp.FLOW_SPEC_TYPE_SRC_PORT:  "source-port",
	bgp.FLOW_SPEC_TYPE_ICMP_TYPE: "icmp-type",
	bgp.FLOW_SPEC_TYPE_ICMP_CODE: "icmp-code",
	bgp.FLOW_SPEC_TYPE_TCP_FLAG:  "tcp-flags",
	bgp.FLOW_SPEC_TYPE_PKT_LEN:   "packet-length",
	bgp.FLOW_SPEC_TYPE_DSCP:      "dscp",
	bgp.FLOW_SPEC_TYPE_FRAGMENT:  "fragment",
}

// exabgp's protocol names.
var protocolNames = map[uint64]string{
	1: "icmp", 2: "igmp", 6: "tcp", 8: "egp", 17: "udp", 46: "rsvp", 47: "gre",
	50: "esp", 51: "ah", 89: "ospf", 94: "ipip", 103: "pim", 132: "sctp",
}

var tcpFlagNames = []string{"fin", "syn", "rst", "push", "ack", "urg", "ece", "cwr", "ns"}

var fragmentNames = []string{"dont-fragment", "is-fragment", "first-fragment", "last-fragment"}

var numericOps = map[uint8]string{
	flowOpLT | flowOpGT | flowOpEQ: "true", flowOpLT: "<", flowOpGT: ">", flowOpEQ: "=",
	flowOpLT | flowOpEQ: "<=", flowOpGT | flowOpEQ: ">=", flowOpLT | flowOpGT: "!=", 0: "false",
}

var bitmaskOps = map[uint8]string{0: "", flowOpNot: "!", flowOpMat: "=", flowOpNot | flowOpMat: "!="}

// writeFlowComponent writes "<name> <item>" or "<name> [ <item> <item> ]";
// items joined by a logical AND are written without a space, as exabgp does.
func writeFlowComponent(b *strings.Builder, c *bgp.FlowSpecComponent) {
	name, ok := flowNames[c.Type()]
	if !ok {
		name = fmt.Sprintf("component-%d", c.Type())
	}
	b.WriteString(name)
	b.WriteByte(' ')
	if len(c.Items) > 1 {
		b.WriteString("[ ")
	}
	for i, it := range c.Items {
		op := it.Op &^ (flowOpEnd | flowOpLen)
		if i > 0 && op&flowOpAnd == 0 {
			b.WriteByte(' ')
		}
		if op&flowOpAnd != 0 {
			b.WriteByte('&')
		}
		op &^= flowOpAnd
		switch c.Type() {
		case bgp.FLOW_SPEC_TYPE_TCP_FLAG, bgp.FLOW_SPEC_TYPE_FRAGMENT:
			b.WriteString(bitmaskOps[op&(flowOpNot|flowOpMat)])
			names := tcpFlagNames
			if c.Type() == bgp.FLOW_SPEC_TYPE_FRAGMENT {
				names = fragmentNames
			}
			writeBits(b, it.Value, names)
		default:
			s, ok := numericOps[op&(flowOpLT|flowOpGT|flowOpEQ)]
			if !ok {
				s = fmt.Sprintf("%02X", op)
			}
			b.WriteString(s)
			if s == "true" || s == "false" {
				continue
			}
			if p, ok := protocolNames[it.Value]; ok && c.Type() == bgp.FLOW_SPEC_TYPE_IP_PROTO {
				b.WriteString(p)
			} else {
				b.WriteString(strconv.FormatUint(it.Value, 10))
			}
		}
	}
	if len(c.Items) > 1 {
		b.WriteString(" ]")
	}
}

func writeBits(b *strings.Builder, v uint64, names []string) {
	if v == 0 && len(names) == len(fragmentNames) {
		b.WriteString("not-a-fragment")
		return
	}
	first := true
	for i, n := range names {
		if v&(1<<i) != 0 {
			if !first {
				b.WriteByte('+')
			}
			b.WriteString(n)
			first = false
			v &^= 1 << i
		}
	}
	if v != 0 || first {
		if !first {
			b.WriteByte('+')
		}
		b.WriteString(strconv.FormatUint(v, 10))
	}
}
