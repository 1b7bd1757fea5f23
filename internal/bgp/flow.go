package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
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

// Traffic classifiers ↔ Flowspec rules (spec §6.8 "Classifier ↔ FlowSpec
// mapping"). The reference wrote a port range (0, max) as "< max" and
// (min, 65535) as "> min", and read them back as (0, max-1) and (min+1,
// 65535); here every classifier round-trips exactly:
//
//	port N                 =N
//	ports 0:max            <=max
//	ports min:65535        >=min
//	ports min:max          >=min &<=max
//	protocol P             =P
//
// and received rules are read with >=v → (v, 65535), <=v → (0, v), >v →
// (v+1, 65535), <v → (0, v-1), =v → v, and a two-term AND of a lower and
// an upper bound → the range. Components: 1 destination prefix, 2 source
// prefix, 3 protocol, 4 port (source and destination, as the reference
// reads it), 5 destination port, 6 source port; anything else is an error
// (the VRF then ignores the route).

// ClassifierToFlow returns the Flowspec rule (route.NLRI.Flow) matching
// the traffic c selects.
func ClassifierToFlow(c route.Classifier) (string, error) {
	c = c.Normalize()
	var comps []bgp.FlowSpecComponentInterface
	for _, p := range []struct {
		prefix netip.Prefix
		dst    bool
	}{{c.Dst, true}, {c.Src, false}} {
		if !p.prefix.IsValid() {
			continue
		}
		if !p.prefix.Addr().Is4() {
			return "", fmt.Errorf("classifier %s: only IPv4 prefixes are supported", c)
		}
		ap, err := bgp.NewIPAddrPrefix(p.prefix)
		if err != nil {
			return "", fmt.Errorf("classifier %s: %w", c, err)
		}
		if p.dst {
			comps = append(comps, bgp.NewFlowSpecDestinationPrefix(ap))
		} else {
			comps = append(comps, bgp.NewFlowSpecSourcePrefix(ap))
		}
	}
	if c.Protocol != 0 {
		comps = append(comps, bgp.NewFlowSpecComponent(bgp.FLOW_SPEC_TYPE_IP_PROTO,
			[]*bgp.FlowSpecComponentItem{bgp.NewFlowSpecComponentItem(uint8(bgp.DEC_NUM_OP_EQ), uint64(c.Protocol))}))
	}
	for _, p := range []struct {
		typ bgp.BGPFlowSpecType
		r   route.PortRange
	}{{bgp.FLOW_SPEC_TYPE_DST_PORT, c.DstPort}, {bgp.FLOW_SPEC_TYPE_SRC_PORT, c.SrcPort}} {
		if p.r.IsAny() {
			continue
		}
		if p.r.Min > p.r.Max {
			return "", fmt.Errorf("classifier %s: empty port range", c)
		}
		comps = append(comps, bgp.NewFlowSpecComponent(p.typ, portItems(p.r)))
	}
	if len(comps) == 0 {
		return "", errors.New("a classifier matching all traffic has no flowspec rule")
	}
	n, err := bgp.NewFlowSpecVPN(bgp.RF_FS_IPv4_VPN, bgp.NewRouteDistinguisherTwoOctetAS(0, 0), comps)
	if err != nil {
		return "", err
	}
	flow := flowBytes(n.Value)
	if len(flow) > maxFlowLen {
		return "", fmt.Errorf("classifier %s: flowspec rule too long", c)
	}
	return flow, nil
}

// portItems returns the numeric items matching a (non-any) port range.
func portItems(r route.PortRange) []*bgp.FlowSpecComponentItem {
	item := func(op bgp.DECNumOp, v uint16) *bgp.FlowSpecComponentItem {
		return bgp.NewFlowSpecComponentItem(uint8(op), uint64(v))
	}
	switch {
	case r.Min == r.Max:
		return []*bgp.FlowSpecComponentItem{item(bgp.DEC_NUM_OP_EQ, r.Min)}
	case r.Min == 0:
		return []*bgp.FlowSpecComponentItem{item(bgp.DEC_NUM_OP_LT_EQ, r.Max)}
	case r.Max == 0xffff:
		return []*bgp.FlowSpecComponentItem{item(bgp.DEC_NUM_OP_GT_EQ, r.Min)}
	}
	return []*bgp.FlowSpecComponentItem{item(bgp.DEC_NUM_OP_GT_EQ, r.Min), item(bgp.DEC_NUM_OP_AND|bgp.DEC_NUM_OP_LT_EQ, r.Max)}
}

// FlowToClassifier reads a Flowspec rule (route.NLRI.Flow) as a traffic
// classifier. Rules a classifier cannot express are an error.
func FlowToClassifier(flow string) (route.Classifier, error) {
	comps, err := flowComponents(flow)
	if err != nil {
		return route.Classifier{}, err
	}
	var c route.Classifier
	seen := map[bgp.BGPFlowSpecType]bool{}
	for _, comp := range comps {
		typ := comp.Type()
		if seen[typ] {
			return route.Classifier{}, fmt.Errorf("flowspec component %s appears twice", flowComponentName(typ))
		}
		seen[typ] = true
		switch comp := comp.(type) {
		case *bgp.FlowSpecDestinationPrefix:
			if c.Dst, err = flowPrefix(comp.Prefix); err != nil {
				return route.Classifier{}, err
			}
		case *bgp.FlowSpecSourcePrefix:
			if c.Src, err = flowPrefix(comp.Prefix); err != nil {
				return route.Classifier{}, err
			}
		case *bgp.FlowSpecComponent:
			switch typ {
			case bgp.FLOW_SPEC_TYPE_IP_PROTO:
				if c.Protocol, err = flowProtocol(comp.Items); err != nil {
					return route.Classifier{}, err
				}
			case bgp.FLOW_SPEC_TYPE_PORT, bgp.FLOW_SPEC_TYPE_DST_PORT, bgp.FLOW_SPEC_TYPE_SRC_PORT:
				r, err := flowPortRange(comp.Items)
				if err != nil {
					return route.Classifier{}, fmt.Errorf("flowspec %s: %w", flowComponentName(typ), err)
				}
				switch typ {
				case bgp.FLOW_SPEC_TYPE_PORT:
					c.SrcPort, c.DstPort = r, r
				case bgp.FLOW_SPEC_TYPE_DST_PORT:
					c.DstPort = r
				default:
					c.SrcPort = r
				}
			default:
				return route.Classifier{}, fmt.Errorf("flowspec component %s is not supported in a traffic classifier", flowComponentName(typ))
			}
		default:
			return route.Classifier{}, fmt.Errorf("flowspec component %s is not supported in a traffic classifier", flowComponentName(typ))
		}
	}
	if seen[bgp.FLOW_SPEC_TYPE_PORT] && (seen[bgp.FLOW_SPEC_TYPE_DST_PORT] || seen[bgp.FLOW_SPEC_TYPE_SRC_PORT]) {
		return route.Classifier{}, errors.New("flowspec port component together with destination-port or source-port is not supported")
	}
	return c.Normalize(), nil
}

func flowComponentName(t bgp.BGPFlowSpecType) string {
	if n, ok := flowNames[t]; ok {
		return n
	}
	switch t {
	case bgp.FLOW_SPEC_TYPE_DST_PREFIX:
		return "destination-ipv4"
	case bgp.FLOW_SPEC_TYPE_SRC_PREFIX:
		return "source-ipv4"
	}
	return fmt.Sprintf("component-%d", t)
}

func flowPrefix(p *bgp.IPAddrPrefix) (netip.Prefix, error) {
	if p == nil || !p.Prefix.IsValid() || !p.Prefix.Addr().Is4() {
		return netip.Prefix{}, errors.New("flowspec prefix: not an IPv4 prefix")
	}
	return p.Prefix.Masked(), nil
}

// flowItemOp returns the comparison bits of a numeric item, and whether the
// item is ANDed with the previous one.
func flowItemOp(it *bgp.FlowSpecComponentItem) (cmp uint8, and bool) {
	return it.Op & (flowOpLT | flowOpGT | flowOpEQ), it.Op&flowOpAnd != 0
}

func flowProtocol(items []*bgp.FlowSpecComponentItem) (uint8, error) {
	if len(items) != 1 {
		return 0, fmt.Errorf("flowspec protocol: %d terms, only one =value is supported", len(items))
	}
	cmp, _ := flowItemOp(items[0])
	v := items[0].Value
	if cmp != flowOpEQ {
		return 0, fmt.Errorf("flowspec protocol: operator %s is not supported, only =", numericOpText(cmp))
	}
	if v == 0 || v > 0xff {
		return 0, fmt.Errorf("flowspec protocol: %d is not a supported protocol number (1..255)", v)
	}
	return uint8(v), nil
}

func numericOpText(cmp uint8) string {
	if s, ok := numericOps[cmp]; ok {
		return s
	}
	return fmt.Sprintf("0x%02x", cmp)
}

// flowPortRange reads the items of a port component: one comparison, or
// the AND of a lower and an upper bound.
func flowPortRange(items []*bgp.FlowSpecComponentItem) (route.PortRange, error) {
	lo, hi := uint64(0), uint64(0xffff)
	bound := func(it *bgp.FlowSpecComponentItem) (lower bool, err error) {
		cmp, _ := flowItemOp(it)
		v := it.Value
		if v > 0xffff {
			return false, fmt.Errorf("port %d out of range", v)
		}
		switch cmp {
		case flowOpGT | flowOpEQ:
			lo = max(lo, v)
			return true, nil
		case flowOpGT:
			if v == 0xffff {
				return false, errors.New(">65535 matches no port")
			}
			lo = max(lo, v+1)
			return true, nil
		case flowOpLT | flowOpEQ:
			hi = min(hi, v)
			return false, nil
		case flowOpLT:
			if v == 0 {
				return false, errors.New("<0 matches no port")
			}
			hi = min(hi, v-1)
			return false, nil
		}
		return false, fmt.Errorf("operator %s is not supported in a range", numericOpText(cmp))
	}
	switch len(items) {
	case 1:
		cmp, _ := flowItemOp(items[0])
		if cmp == flowOpEQ {
			if items[0].Value > 0xffff {
				return route.PortRange{}, fmt.Errorf("port %d out of range", items[0].Value)
			}
			lo, hi = items[0].Value, items[0].Value
			break
		}
		if _, err := bound(items[0]); err != nil {
			return route.PortRange{}, err
		}
	case 2:
		if _, and := flowItemOp(items[1]); !and {
			return route.PortRange{}, errors.New("two terms joined by OR are not supported, only a range (>=min &<=max)")
		}
		l0, err := bound(items[0])
		if err != nil {
			return route.PortRange{}, err
		}
		l1, err := bound(items[1])
		if err != nil {
			return route.PortRange{}, err
		}
		if l0 == l1 {
			return route.PortRange{}, errors.New("a range needs one lower and one upper bound")
		}
	default:
		return route.PortRange{}, fmt.Errorf("%d terms are not supported, only a value or a range", len(items))
	}
	if lo > hi {
		return route.PortRange{}, fmt.Errorf("empty port range %d:%d", lo, hi)
	}
	if lo == 0 && hi == 0 {
		return route.PortRange{}, errors.New("port 0 alone cannot be matched")
	}
	return route.PortRange{Min: uint16(lo), Max: uint16(hi)}.Normalize(), nil
}
