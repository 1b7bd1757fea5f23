package ovs

// OpenFlow 1.5 wire encoding of exactly what the driver sends: flow mods
// (OXM/NXM matches, apply-actions with the standard and Nicira actions the
// pipeline uses), group mods with bucket ids and the selection method
// property, barriers, echo and hello. Every Flow and Group also renders as
// ovs-ofctl text (String), which the looking glass shows and the unit tests
// compare.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// OpenFlow constants (OpenFlow 1.5.1 unless noted).
const (
	ofVersion = 0x06

	ofptHello          = 0
	ofptError          = 1
	ofptEchoRequest    = 2
	ofptEchoReply      = 3
	ofptFlowMod        = 14
	ofptGroupMod       = 15
	ofptMultipartReq   = 18
	ofptMultipartReply = 19
	ofpmpGroupDesc     = 7
	ofptBarrierReq     = 20
	ofptBarrierReply   = 21

	ofpfcAdd          = 0
	ofpfcDelete       = 3
	ofpfcDeleteStrict = 4

	ofpgcAdd    = 0
	ofpgcModify = 1
	ofpgcDelete = 2

	ofpgtSelect = 1

	ofppInPort = 0xfffffff8
	ofppLocal  = 0xfffffffe
	ofppAny    = 0xffffffff
	ofpgAll    = 0xfffffffc
	ofpgAny    = 0xffffffff
	ofpttAll   = 0xff

	bucketAll    = 0xffffffff // OFPG15_BUCKET_ALL
	maxBucketID  = 0xffffff00 - 1
	noBuffer     = 0xffffffff
	nxVendorID   = 0x00002320
	ntrVendorID  = 0x0000154d
	ethTypeIPv4  = 0x0800
	ethTypeARP   = 0x0806
	ethTypeMPLS  = 0x8847
	ethTypeVLAN  = 0x8100
	vlanPresent  = 0x1000
	cookieAllOne = ^uint64(0)
)

// field is an OXM/NXM field: class, field number, value length.
type field struct {
	class uint16
	num   uint8
	size  int
	name  string // ovs-ofctl name
}

func (f field) header(masked bool) uint32 {
	n := f.size
	m := uint32(0)
	if masked {
		n *= 2
		m = 1
	}
	return uint32(f.class)<<16 | uint32(f.num)<<9 | m<<8 | uint32(n)
}

// Fields used by the pipeline. Basic OXM class 0x8000; NXM_OF (0) and
// NXM_NX (1) for registers, tunnel destination and the register moves.
var (
	fInPort    = field{0x8000, 0, 4, "in_port"}
	nxInPort   = field{0x0000, 0, 2, "in_port"} // 16-bit: may be set to 0
	fEthDst    = field{0x8000, 3, 6, "eth_dst"}
	fEthSrc    = field{0x8000, 4, 6, "eth_src"}
	fEthType   = field{0x8000, 5, 2, "eth_type"}
	fVLANVID   = field{0x8000, 6, 2, "vlan_vid"}
	fIPProto   = field{0x8000, 10, 1, "ip_proto"}
	fIPv4Src   = field{0x8000, 11, 4, "ip_src"}
	fIPv4Dst   = field{0x8000, 12, 4, "ip_dst"}
	fTCPSrc    = field{0x8000, 13, 2, "tcp_src"}
	fTCPDst    = field{0x8000, 14, 2, "tcp_dst"}
	fUDPSrc    = field{0x8000, 15, 2, "udp_src"}
	fUDPDst    = field{0x8000, 16, 2, "udp_dst"}
	fSCTPSrc   = field{0x8000, 17, 2, "sctp_src"}
	fSCTPDst   = field{0x8000, 18, 2, "sctp_dst"}
	fARPOp     = field{0x8000, 21, 2, "arp_op"}
	fARPSPA    = field{0x8000, 22, 4, "arp_spa"}
	fARPTPA    = field{0x8000, 23, 4, "arp_tpa"}
	fARPSHA    = field{0x8000, 24, 6, "arp_sha"}
	fMPLSLabel = field{0x8000, 34, 4, "mpls_label"}
	fMPLSBOS   = field{0x8000, 36, 1, "mpls_bos"}
	fTunnelID  = field{0x8000, 38, 8, "tun_id"}
	fReg0      = field{0x0001, 0, 4, "reg0"}
	fTunDst    = field{0x0001, 32, 4, "tun_dst"}

	// NXM names for register moves (as ovs-ofctl prints them).
	nxEthSrc = field{0x0000, 2, 6, "NXM_OF_ETH_SRC[]"}
	nxEthDst = field{0x0000, 1, 6, "NXM_OF_ETH_DST[]"}
	nxARPSPA = field{0x0000, 16, 4, "NXM_OF_ARP_SPA[]"}
	nxARPTPA = field{0x0000, 17, 4, "NXM_OF_ARP_TPA[]"}
	nxARPSHA = field{0x0001, 17, 6, "NXM_NX_ARP_SHA[]"}
	nxARPTHA = field{0x0001, 18, 6, "NXM_NX_ARP_THA[]"}
	nxReg1   = field{0x0001, 1, 4, "NXM_NX_REG1[]"}
)

// Match is the subset of OpenFlow match fields the pipeline uses; zero
// values are wildcards.
type Match struct {
	InPort    uint32 // 0: any
	EthType   uint16
	VLAN      uint16 // 0: any; else the VLAN id
	EthDst    net.HardwareAddr
	Reg0      uint32 // 0: any (VRF ids start at 1)
	ARPOp     uint16
	ARPTPA    netip.Addr
	IPSrc     netip.Prefix // invalid or /0: any
	IPDst     netip.Prefix // invalid or /0: any
	IPProto   uint8        // 0: any (with EthType IPv4)
	TPSrc     PortMatch    // with IPProto TCP, UDP or SCTP
	TPDst     PortMatch
	MPLSLabel uint32 // with MPLSBOS
	MPLSBOS   bool
	TunID     uint64 // 0: any
	HasTunID  bool
}

// IP protocol numbers whose ports the match can select on.
const (
	ipProtoTCP  = 6
	ipProtoUDP  = 17
	ipProtoSCTP = 132
)

// PortMatch is a transport port match: the ports p with p&Mask == Value.
// The zero value (mask 0) matches any port.
type PortMatch struct{ Value, Mask uint16 }

// IsAny reports whether the match selects every port.
func (p PortMatch) IsAny() bool { return p.Mask == 0 }

// String renders the match as ovs-ofctl does: decimal when exact,
// value/mask in hexadecimal otherwise.
func (p PortMatch) String() string {
	if p.Mask == 0xffff {
		return fmt.Sprint(p.Value)
	}
	return fmt.Sprintf("%#x/%#x", p.Value&p.Mask, p.Mask)
}

// portFields returns the source and destination port fields of an IP
// protocol (ok false when it has no ports OVS can match).
func portFields(proto uint8) (src, dst field, ok bool) {
	switch proto {
	case ipProtoTCP:
		return fTCPSrc, fTCPDst, true
	case ipProtoUDP:
		return fUDPSrc, fUDPDst, true
	case ipProtoSCTP:
		return fSCTPSrc, fSCTPDst, true
	}
	return field{}, field{}, false
}

func appendPrefixOXM(b []byte, f field, p netip.Prefix) []byte {
	a := p.Masked().Addr().AsSlice()
	if p.Bits() == 32 {
		return appendOXM(b, f, a, nil)
	}
	return appendOXM(b, f, a, net.CIDRMask(p.Bits(), 32))
}

func appendPortOXM(b []byte, f field, p PortMatch) []byte {
	if p.Mask == 0xffff {
		return appendOXM(b, f, u16(p.Value), nil)
	}
	return appendOXM(b, f, u16(p.Value&p.Mask), u16(p.Mask))
}

func prefixString(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.Masked().String()
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func appendOXM(b []byte, f field, value, mask []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, f.header(mask != nil))
	b = append(b, value...)
	return append(b, mask...)
}

func pad8(b []byte, start int) []byte {
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// oxms encodes the match fields, prerequisites first.
func (m *Match) oxms() []byte {
	var b []byte
	if m.InPort != 0 {
		b = appendOXM(b, fInPort, u32(m.InPort), nil)
	}
	if m.EthDst != nil {
		b = appendOXM(b, fEthDst, m.EthDst, nil)
	}
	if m.VLAN != 0 {
		b = appendOXM(b, fVLANVID, u16(m.VLAN|vlanPresent), nil)
	}
	if m.EthType != 0 {
		b = appendOXM(b, fEthType, u16(m.EthType), nil)
	}
	if m.Reg0 != 0 {
		b = appendOXM(b, fReg0, u32(m.Reg0), nil)
	}
	if m.HasTunID {
		b = appendOXM(b, fTunnelID, u64(m.TunID), nil)
	}
	if m.ARPOp != 0 {
		b = appendOXM(b, fARPOp, u16(m.ARPOp), nil)
	}
	if m.ARPTPA.IsValid() {
		b = appendOXM(b, fARPTPA, m.ARPTPA.AsSlice(), nil)
	}
	if m.IPProto != 0 {
		b = appendOXM(b, fIPProto, []byte{m.IPProto}, nil)
	}
	if m.IPSrc.IsValid() && m.IPSrc.Bits() > 0 {
		b = appendPrefixOXM(b, fIPv4Src, m.IPSrc)
	}
	if m.IPDst.IsValid() && m.IPDst.Bits() > 0 {
		b = appendPrefixOXM(b, fIPv4Dst, m.IPDst)
	}
	if src, dst, ok := portFields(m.IPProto); ok {
		if !m.TPSrc.IsAny() {
			b = appendPortOXM(b, src, m.TPSrc)
		}
		if !m.TPDst.IsAny() {
			b = appendPortOXM(b, dst, m.TPDst)
		}
	}
	if m.MPLSBOS {
		b = appendOXM(b, fMPLSLabel, u32(m.MPLSLabel), nil)
		b = appendOXM(b, fMPLSBOS, []byte{1}, nil)
	}
	return b
}

// encode returns the ofp_match structure (OXM type), padded.
func (m *Match) encode() []byte {
	fields := m.oxms()
	b := u16(1) // OFPMT_OXM
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(fields)))
	b = append(b, fields...)
	return pad8(b, 0)
}

// String renders the match as ovs-ofctl does (roughly: same keywords).
func (m *Match) String() string {
	var parts []string
	switch {
	case m.EthType == ethTypeIPv4 && m.IPProto == ipProtoTCP:
		parts = append(parts, "tcp")
	case m.EthType == ethTypeIPv4 && m.IPProto == ipProtoUDP:
		parts = append(parts, "udp")
	case m.EthType == ethTypeIPv4 && m.IPProto == ipProtoSCTP:
		parts = append(parts, "sctp")
	case m.EthType == ethTypeIPv4 && m.IPProto == 1:
		parts = append(parts, "icmp")
	case m.EthType == ethTypeIPv4 && m.IPProto != 0:
		parts = append(parts, fmt.Sprintf("ip,nw_proto=%d", m.IPProto))
	case m.EthType == ethTypeIPv4:
		parts = append(parts, "ip")
	case m.EthType == ethTypeARP:
		parts = append(parts, "arp")
	case m.EthType == ethTypeMPLS:
		parts = append(parts, "mpls")
	case m.EthType == 0:
	default:
		parts = append(parts, fmt.Sprintf("dl_type=0x%04x", m.EthType))
	}
	if m.InPort != 0 {
		parts = append(parts, fmt.Sprintf("in_port=%d", m.InPort))
	}
	if m.VLAN != 0 {
		parts = append(parts, fmt.Sprintf("dl_vlan=%d", m.VLAN))
	}
	if m.Reg0 != 0 {
		parts = append(parts, fmt.Sprintf("reg0=%d", m.Reg0))
	}
	if m.HasTunID {
		parts = append(parts, fmt.Sprintf("tun_id=%d", m.TunID))
	}
	if m.EthDst != nil {
		parts = append(parts, "dl_dst="+m.EthDst.String())
	}
	if m.ARPOp != 0 {
		parts = append(parts, fmt.Sprintf("arp_op=%d", m.ARPOp))
	}
	if m.ARPTPA.IsValid() {
		parts = append(parts, "arp_tpa="+m.ARPTPA.String())
	}
	if m.IPSrc.IsValid() && m.IPSrc.Bits() > 0 {
		parts = append(parts, "nw_src="+prefixString(m.IPSrc))
	}
	if m.IPDst.IsValid() && m.IPDst.Bits() > 0 {
		parts = append(parts, "nw_dst="+prefixString(m.IPDst))
	}
	if _, _, ok := portFields(m.IPProto); ok {
		if !m.TPSrc.IsAny() {
			parts = append(parts, "tp_src="+m.TPSrc.String())
		}
		if !m.TPDst.IsAny() {
			parts = append(parts, "tp_dst="+m.TPDst.String())
		}
	}
	if m.MPLSBOS {
		parts = append(parts, fmt.Sprintf("mpls_label=%d,mpls_bos=1", m.MPLSLabel))
	}
	return strings.Join(parts, ",")
}

// Action is an OpenFlow action.
type Action interface {
	encode() []byte
	String() string
}

type (
	// Output sends to a port.
	Output uint32
	// GroupAction sends to a group.
	GroupAction uint32
	// PushMPLS pushes an MPLS header (unicast ethertype).
	PushMPLS struct{}
	// PopMPLS pops the MPLS header, the payload being of EthType.
	PopMPLS struct{ EthType uint16 }
	// PushVLAN pushes an 802.1Q tag and sets its VLAN id.
	PushVLAN uint16
	// PopVLAN removes the 802.1Q tag.
	PopVLAN struct{}
	// DecTTL decrements the IP TTL.
	DecTTL struct{}
	// SetField writes a field.
	SetField struct {
		F     field
		Value []byte
	}
	// Resubmit resubmits to a table, with in_port replaced unless InPort
	// is 0 (OFPP_IN_PORT: unchanged).
	Resubmit struct {
		InPort uint32
		Table  uint8
	}
	// Move copies a whole field into another of the same size.
	Move struct{ Src, Dst field }
)

func actionHeader(typ uint16, length int) []byte {
	return binary.BigEndian.AppendUint16(u16(typ), uint16(length))
}

func (o Output) encode() []byte {
	b := actionHeader(0, 16)
	b = binary.BigEndian.AppendUint32(b, uint32(o))
	b = binary.BigEndian.AppendUint16(b, 0xffff) // max_len (to controller only)
	return append(b, 0, 0, 0, 0, 0, 0)
}

func portString(p uint32) string {
	switch p {
	case ofppLocal:
		return "LOCAL"
	case ofppInPort:
		return "IN_PORT"
	}
	return fmt.Sprint(p)
}

func (o Output) String() string { return "output:" + portString(uint32(o)) }

func (g GroupAction) encode() []byte {
	return binary.BigEndian.AppendUint32(actionHeader(22, 8), uint32(g))
}
func (g GroupAction) String() string { return fmt.Sprintf("group:%d", uint32(g)) }

func (PushMPLS) encode() []byte {
	return append(binary.BigEndian.AppendUint16(actionHeader(19, 8), ethTypeMPLS), 0, 0)
}
func (PushMPLS) String() string { return "push_mpls:0x8847" }

func (p PopMPLS) encode() []byte {
	return append(binary.BigEndian.AppendUint16(actionHeader(20, 8), p.EthType), 0, 0)
}
func (p PopMPLS) String() string { return fmt.Sprintf("pop_mpls:0x%04x", p.EthType) }

func (p PushVLAN) encode() []byte {
	b := append(binary.BigEndian.AppendUint16(actionHeader(17, 8), ethTypeVLAN), 0, 0)
	return append(b, SetField{fVLANVID, u16(uint16(p) | vlanPresent)}.encode()...)
}
func (p PushVLAN) String() string { return fmt.Sprintf("push_vlan:0x8100,mod_vlan_vid:%d", uint16(p)) }

func (PopVLAN) encode() []byte { return append(actionHeader(18, 8), 0, 0, 0, 0) }
func (PopVLAN) String() string { return "strip_vlan" }
func (DecTTL) encode() []byte  { return append(actionHeader(24, 8), 0, 0, 0, 0) }
func (DecTTL) String() string  { return "dec_ttl" }
func (s SetField) encode() []byte {
	oxm := appendOXM(nil, s.F, s.Value, nil)
	n := (4 + len(oxm) + 7) / 8 * 8
	b := append(actionHeader(25, n), oxm...)
	return pad8(b, 0)
}

func (s SetField) String() string {
	var v string
	switch s.F {
	case fEthSrc, fEthDst, fARPSHA:
		v = net.HardwareAddr(s.Value).String()
	case fTunDst, fARPSPA, fARPTPA:
		a, _ := netip.AddrFromSlice(s.Value)
		v = a.String()
	default:
		var n uint64
		for _, x := range s.Value {
			n = n<<8 | uint64(x)
		}
		if s.F == fVLANVID {
			n &^= vlanPresent
		}
		v = fmt.Sprint(n)
	}
	switch s.F {
	case fEthSrc:
		return "mod_dl_src:" + v
	case fEthDst:
		return "mod_dl_dst:" + v
	case fMPLSLabel:
		return "set_mpls_label:" + v
	}
	return "set_field:" + v + "->" + s.F.name
}

func nxHeader(subtype uint16, length int) []byte {
	b := actionHeader(0xffff, length)
	b = binary.BigEndian.AppendUint32(b, nxVendorID)
	return binary.BigEndian.AppendUint16(b, subtype)
}

func (r Resubmit) encode() []byte {
	b := nxHeader(14, 16) // NXAST_RESUBMIT_TABLE
	in := uint16(r.InPort)
	if r.InPort == 0 {
		in = 0xfff8 // OFPP_IN_PORT (OpenFlow 1.0 numbering)
	}
	b = binary.BigEndian.AppendUint16(b, in)
	return append(b, r.Table, 0, 0, 0)
}

func (r Resubmit) String() string {
	if r.InPort == 0 {
		return fmt.Sprintf("resubmit(,%d)", r.Table)
	}
	return fmt.Sprintf("resubmit(%d,%d)", r.InPort, r.Table)
}

func (m Move) encode() []byte {
	b := actionHeader(28, 24) // OFPAT_COPY_FIELD
	b = binary.BigEndian.AppendUint16(b, uint16(m.Src.size*8))
	b = append(b, 0, 0, 0, 0, 0, 0) // src_offset, dst_offset, pad
	b = binary.BigEndian.AppendUint32(b, m.Src.header(false))
	b = binary.BigEndian.AppendUint32(b, m.Dst.header(false))
	return append(b, 0, 0, 0, 0)
}

func (m Move) String() string { return "move:" + m.Src.name + "->" + m.Dst.name }

func encodeActions(acts []Action) []byte {
	var b []byte
	for _, a := range acts {
		b = append(b, a.encode()...)
	}
	return b
}

func actionsString(acts []Action) string {
	if len(acts) == 0 {
		return "drop"
	}
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Flow is a flow entry of ours.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  []Action
}

// String renders the flow as an ovs-ofctl add-flow line.
func (f *Flow) String() string {
	s := fmt.Sprintf("table=%d,cookie=%#x,priority=%d", f.Table, f.Cookie, f.Priority)
	if m := f.Match.String(); m != "" {
		s += "," + m
	}
	return s + ",actions=" + actionsString(f.Actions)
}

func header(typ uint8, length int, xid uint32) []byte {
	b := []byte{ofVersion, typ}
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	return binary.BigEndian.AppendUint32(b, xid)
}

func finish(b []byte) []byte {
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// flowMod encodes an OFPT_FLOW_MOD. For deletes, cookieMask selects on the
// cookie and strict on the exact match and priority.
func flowMod(xid uint32, cmd uint8, f *Flow, cookieMask uint64) []byte {
	b := header(ofptFlowMod, 0, xid)
	b = binary.BigEndian.AppendUint64(b, f.Cookie)
	b = binary.BigEndian.AppendUint64(b, cookieMask)
	b = append(b, f.Table, cmd)
	b = append(b, 0, 0, 0, 0) // idle, hard timeouts
	b = binary.BigEndian.AppendUint16(b, f.Priority)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	b = binary.BigEndian.AppendUint32(b, ofppAny)
	b = binary.BigEndian.AppendUint32(b, ofpgAny)
	b = append(b, 0, 0, 0, 0) // flags, importance
	b = append(b, f.Match.encode()...)
	if cmd == ofpfcAdd && len(f.Actions) > 0 {
		acts := encodeActions(f.Actions)
		b = binary.BigEndian.AppendUint16(b, 4) // OFPIT_APPLY_ACTIONS
		b = binary.BigEndian.AppendUint16(b, uint16(8+len(acts)))
		b = append(b, 0, 0, 0, 0)
		b = append(b, acts...)
	}
	return finish(b)
}

// Bucket is a select group bucket.
type Bucket struct {
	ID      uint32
	Actions []Action
}

// Group is a select group of ours.
type Group struct {
	ID     uint32
	Method string // selection_method: dp_hash or hash
	Param  uint64 // selection_method_param
	Fields []field
	// Buckets in bucket id order.
	Buckets []Bucket
}

// String renders the group as an ovs-ofctl add-group line.
func (g *Group) String() string {
	s := fmt.Sprintf("group_id=%d,type=select,selection_method=%s", g.ID, g.Method)
	if len(g.Fields) > 0 {
		names := make([]string, len(g.Fields))
		for i, f := range g.Fields {
			names[i] = f.name
		}
		s += ",fields(" + strings.Join(names, ",") + ")"
	}
	if g.Param != 0 {
		s += fmt.Sprintf(",selection_method_param=%d", g.Param)
	}
	for _, b := range g.Buckets {
		s += fmt.Sprintf(",bucket=bucket_id:%d,actions=%s", b.ID, actionsString(b.Actions))
	}
	return s
}

// groupMod encodes an OpenFlow 1.5 OFPT_GROUP_MOD.
func groupMod(xid uint32, cmd uint16, g *Group) []byte {
	b := header(ofptGroupMod, 0, xid)
	b = binary.BigEndian.AppendUint16(b, cmd)
	b = append(b, ofpgtSelect, 0)
	b = binary.BigEndian.AppendUint32(b, g.ID)
	var buckets []byte
	if cmd != ofpgcDelete {
		for _, bk := range g.Buckets {
			acts := encodeActions(bk.Actions)
			buckets = binary.BigEndian.AppendUint16(buckets, uint16(8+len(acts)))
			buckets = binary.BigEndian.AppendUint16(buckets, uint16(len(acts)))
			buckets = binary.BigEndian.AppendUint32(buckets, bk.ID)
			buckets = append(buckets, acts...)
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(buckets)))
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint32(b, bucketAll)
	b = append(b, buckets...)
	if cmd != ofpgcDelete && g.Method != "" {
		// Netronome selection method property (OVS "selection_method").
		start := len(b)
		b = binary.BigEndian.AppendUint16(b, 0xffff) // OFPGPT15_EXPERIMENTER
		b = append(b, 0, 0)                          // length, set below
		b = binary.BigEndian.AppendUint32(b, ntrVendorID)
		b = binary.BigEndian.AppendUint32(b, 1) // NTRT_SELECTION_METHOD
		b = append(b, 0, 0, 0, 0)
		var name [16]byte
		copy(name[:15], g.Method)
		b = append(b, name[:]...)
		b = binary.BigEndian.AppendUint64(b, g.Param)
		for _, f := range g.Fields {
			// Each field as an OXM TLV whose value is the mask of the
			// bits hashed: all of them.
			b = appendOXM(b, f, bytes.Repeat([]byte{0xff}, f.size), nil)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
		b = pad8(b, start)
	}
	return finish(b)
}

func barrier(xid uint32) []byte { return header(ofptBarrierReq, 8, xid) }

// hello offers OpenFlow 1.5 only (version bitmap element).
func hello(xid uint32) []byte {
	b := header(ofptHello, 0, xid)
	b = binary.BigEndian.AppendUint16(b, 1) // OFPHET_VERSIONBITMAP
	b = binary.BigEndian.AppendUint16(b, 8)
	b = binary.BigEndian.AppendUint32(b, 1<<ofVersion)
	return finish(b)
}

// hashFields maps hash_fields option values to fields.
var hashFields = map[string]field{
	"eth_dst": fEthDst, "eth_src": fEthSrc, "eth_type": fEthType,
	"ip_dst": fIPv4Dst, "nw_dst": fIPv4Dst,
	"ip_src": fIPv4Src, "nw_src": fIPv4Src,
	"ip_proto": fIPProto, "nw_proto": fIPProto,
	"tcp_src": fTCPSrc, "tcp_dst": fTCPDst,
	"udp_src": fUDPSrc, "udp_dst": fUDPDst,
	"sctp_src": fSCTPSrc, "sctp_dst": fSCTPDst,
}
