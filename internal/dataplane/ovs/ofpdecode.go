package ovs

// Reading the switch back (adopt.go): OpenFlow 1.5 flow and group
// description requests, and the decoding of their replies into the types
// of ofp.go. Only what the driver itself installs is understood: a match
// field or an action outside that set marks the entry as not fully
// decoded (it is still listed, with its cookie, table and priority).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

const (
	ofpmpFlowDesc  = 1
	ofpmpReplyMore = 1 // OFPMPF_REPLY_MORE
)

// multipartRequest encodes an OFPT_MULTIPART_REQUEST of type typ.
func multipartRequest(xid uint32, typ uint16, body []byte) []byte {
	b := header(ofptMultipartReq, 0, xid)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = append(b, 0, 0, 0, 0, 0, 0) // flags, pad
	return finish(append(b, body...))
}

// flowDescRequest asks for the flows of every table whose cookie matches
// cookie under mask (OFPMP_FLOW_DESC).
func flowDescRequest(xid uint32, cookie, mask uint64) []byte {
	b := []byte{ofpttAll, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, ofppAny)
	b = binary.BigEndian.AppendUint32(b, ofpgAny)
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint64(b, mask)
	b = append(b, (&Match{}).encode()...)
	return multipartRequest(xid, ofpmpFlowDesc, b)
}

// groupDescRequest asks for the description of every group
// (OFPMP_GROUP_DESC).
func groupDescRequest(xid uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, ofpgAll)
	return multipartRequest(xid, ofpmpGroupDesc, append(b, 0, 0, 0, 0))
}

// FlowDesc is a flow as the switch describes it.
type FlowDesc struct {
	Flow
	// Complete is false when a match field or an action is not one the
	// driver uses: Match and Actions then hold only what was understood.
	Complete bool
}

// decodeFlowDesc decodes one ofp_flow_desc entry of a flow description
// reply.
func decodeFlowDesc(e []byte) (FlowDesc, error) {
	var fd FlowDesc
	if len(e) < 24+8 || int(binary.BigEndian.Uint16(e)) != len(e) {
		return fd, errors.New("flow description: bad length")
	}
	fd.Table = e[4]
	fd.Priority = binary.BigEndian.Uint16(e[6:])
	fd.Cookie = binary.BigEndian.Uint64(e[16:])
	rest := e[24:]
	// ofp_match: type, length (without padding), OXMs, padded to 8.
	mlen := int(binary.BigEndian.Uint16(rest[2:]))
	if binary.BigEndian.Uint16(rest) != 1 || mlen < 4 || pad8len(mlen) > len(rest) {
		return fd, errors.New("flow description: bad match")
	}
	m, mok := decodeMatch(rest[4:mlen])
	fd.Match = m
	rest = rest[pad8len(mlen):]
	// ofp_stats: reserved, length (without padding), OXS fields, padded.
	if len(rest) < 4 {
		return fd, errors.New("flow description: no statistics")
	}
	slen := int(binary.BigEndian.Uint16(rest[2:]))
	if slen < 4 || pad8len(slen) > len(rest) {
		return fd, errors.New("flow description: bad statistics")
	}
	rest = rest[pad8len(slen):]
	aok := true
	for len(rest) > 0 {
		if len(rest) < 8 {
			return fd, errors.New("flow description: bad instruction")
		}
		typ, n := binary.BigEndian.Uint16(rest), int(binary.BigEndian.Uint16(rest[2:]))
		if n < 8 || n > len(rest) {
			return fd, errors.New("flow description: bad instruction length")
		}
		if typ == 4 { // OFPIT_APPLY_ACTIONS
			acts, ok := decodeActions(rest[8:n])
			fd.Actions = append(fd.Actions, acts...)
			aok = aok && ok
		} else {
			aok = false
		}
		rest = rest[n:]
	}
	fd.Complete = mok && aok
	return fd, nil
}

func pad8len(n int) int { return (n + 7) / 8 * 8 }

// GroupDesc is a group as the switch describes it.
type GroupDesc struct {
	ID      uint32
	Type    uint8
	Buckets []BucketDesc
}

// BucketDesc is a bucket of a described group; Complete is false when an
// action is not one the driver uses.
type BucketDesc struct {
	Bucket
	Complete bool
}

// decodeGroupDesc decodes one ofp_group_desc entry (OpenFlow 1.5).
func decodeGroupDesc(e []byte) (GroupDesc, error) {
	var g GroupDesc
	if len(e) < 16 || int(binary.BigEndian.Uint16(e)) != len(e) {
		return g, errors.New("group description: bad length")
	}
	g.Type = e[2]
	g.ID = binary.BigEndian.Uint32(e[4:])
	blen := int(binary.BigEndian.Uint16(e[8:]))
	if 16+blen > len(e) {
		return g, errors.New("group description: bad bucket array length")
	}
	bs := e[16 : 16+blen]
	for len(bs) > 0 {
		if len(bs) < 8 {
			return g, errors.New("group description: bad bucket")
		}
		n, alen := int(binary.BigEndian.Uint16(bs)), int(binary.BigEndian.Uint16(bs[2:]))
		if n < 8 || n > len(bs) || 8+alen > n {
			return g, errors.New("group description: bad bucket length")
		}
		acts, ok := decodeActions(bs[8 : 8+alen])
		g.Buckets = append(g.Buckets, BucketDesc{Bucket: Bucket{ID: binary.BigEndian.Uint32(bs[4:]), Actions: acts}, Complete: ok})
		bs = bs[n:]
	}
	return g, nil
}

// knownFields are the fields of ofp.go, by OXM/NXM class and number.
var knownFields = func() map[[2]uint16]field {
	m := map[[2]uint16]field{}
	for _, f := range []field{fInPort, fEthDst, fEthSrc, fEthType, fVLANVID, fIPProto, fIPv4Src, fIPv4Dst,
		fTCPSrc, fTCPDst, fUDPSrc, fUDPDst, fSCTPSrc, fSCTPDst, fARPOp, fARPSPA, fARPTPA, fARPSHA,
		fMPLSLabel, fMPLSBOS, fTunnelID, fReg0, fTunDst, nxInPort, nxEthSrc, nxEthDst, nxARPSPA, nxARPTPA,
		nxARPSHA, nxARPTHA, nxReg1} {
		m[[2]uint16{f.class, uint16(f.num)}] = f
	}
	return m
}()

// oxmTLV splits the first OXM TLV of b: class, field, value, mask (nil
// when not masked), and the rest.
func oxmTLV(b []byte) (class uint16, num uint8, value, mask, rest []byte, err error) {
	if len(b) < 4 {
		return 0, 0, nil, nil, nil, errors.New("truncated OXM header")
	}
	h := binary.BigEndian.Uint32(b)
	class, num = uint16(h>>16), uint8(h>>9&0x7f)
	n := int(h & 0xff)
	if class == 0xffff { // experimenter OXM: the experimenter id is in the length
		if len(b) < 4+n {
			return 0, 0, nil, nil, nil, errors.New("truncated OXM")
		}
		return class, num, b[4 : 4+n], nil, b[4+n:], nil
	}
	if len(b) < 4+n {
		return 0, 0, nil, nil, nil, errors.New("truncated OXM")
	}
	value = b[4 : 4+n]
	if h&0x100 != 0 {
		value, mask = value[:n/2], value[n/2:]
	}
	return class, num, value, mask, b[4+n:], nil
}

// decodeMatch decodes the OXMs of a match; ok is false when a field (or a
// mask) is not one the driver uses.
func decodeMatch(b []byte) (m Match, ok bool) {
	ok = true
	for len(b) > 0 {
		class, num, v, mask, rest, err := oxmTLV(b)
		if err != nil {
			return m, false
		}
		b = rest
		f, known := knownFields[[2]uint16{class, uint16(num)}]
		if !known || len(v) != f.size {
			switch {
			case class == 1 && num == 16 && len(v) == 8 && mask == nil:
				// OVS may send tun_id as NXM_NX_TUN_ID.
				m.TunID, m.HasTunID = binary.BigEndian.Uint64(v), true
				continue
			case class == 0x8001 && num == 0 && len(v) == 8 && mask != nil &&
				binary.BigEndian.Uint64(mask) == 0xffffffff00000000:
				// OpenFlow 1.5 (OVS): reg0 is the upper half of
				// OXM_OF_PKT_REG0 (xreg0).
				m.Reg0 = binary.BigEndian.Uint32(v)
				continue
			}
			ok = false
			continue
		}
		prefixOf := func() (netip.Prefix, bool) {
			a, _ := netip.AddrFromSlice(v)
			if mask == nil {
				return netip.PrefixFrom(a, 32), true
			}
			ones, bits := net.IPMask(mask).Size()
			if bits == 0 {
				return netip.Prefix{}, false
			}
			return netip.PrefixFrom(a, ones).Masked(), true
		}
		portOf := func() PortMatch {
			p := PortMatch{Value: binary.BigEndian.Uint16(v), Mask: 0xffff}
			if mask != nil {
				p.Mask = binary.BigEndian.Uint16(mask)
				p.Value &= p.Mask
			}
			return p
		}
		maskable := f == fIPv4Src || f == fIPv4Dst || (f.class == 0x8000 && f.num >= 13 && f.num <= 18)
		if mask != nil && !maskable {
			ok = false
			continue
		}
		switch f {
		case fInPort:
			m.InPort = binary.BigEndian.Uint32(v)
		case nxInPort:
			m.InPort = uint32(binary.BigEndian.Uint16(v))
		case fEthDst, nxEthDst:
			m.EthDst = net.HardwareAddr(append([]byte(nil), v...))
		case fEthType:
			m.EthType = binary.BigEndian.Uint16(v)
		case fVLANVID:
			m.VLAN = binary.BigEndian.Uint16(v) &^ vlanPresent
		case fIPProto:
			m.IPProto = v[0]
		case fIPv4Src, fIPv4Dst:
			p, good := prefixOf()
			if !good {
				ok = false
			} else if f == fIPv4Src {
				m.IPSrc = p
			} else {
				m.IPDst = p
			}
		case fTCPSrc, fUDPSrc, fSCTPSrc:
			m.TPSrc = portOf()
		case fTCPDst, fUDPDst, fSCTPDst:
			m.TPDst = portOf()
		case fARPOp:
			m.ARPOp = binary.BigEndian.Uint16(v)
		case fARPTPA, nxARPTPA:
			m.ARPTPA, _ = netip.AddrFromSlice(v)
		case fMPLSLabel:
			m.MPLSLabel = binary.BigEndian.Uint32(v)
		case fMPLSBOS:
			m.MPLSBOS = v[0] != 0
		case fTunnelID:
			m.TunID, m.HasTunID = binary.BigEndian.Uint64(v), true
		case fReg0:
			m.Reg0 = binary.BigEndian.Uint32(v)
		default:
			ok = false
		}
	}
	return m, ok
}

// decodeActions decodes an action list; ok is false when an action is not
// one the driver uses (it is left out).
func decodeActions(b []byte) (acts []Action, ok bool) {
	ok = true
	for len(b) > 0 {
		if len(b) < 8 {
			return acts, false
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if n < 8 || n%8 != 0 || n > len(b) {
			return acts, false
		}
		a, body := b[:n], b[4:n]
		b = b[n:]
		switch typ {
		case 0: // OUTPUT
			acts = append(acts, Output(binary.BigEndian.Uint32(body)))
		case 22: // GROUP
			acts = append(acts, GroupAction(binary.BigEndian.Uint32(body)))
		case 19: // PUSH_MPLS
			if binary.BigEndian.Uint16(body) != ethTypeMPLS {
				ok = false
				continue
			}
			acts = append(acts, PushMPLS{})
		case 20: // POP_MPLS
			acts = append(acts, PopMPLS{binary.BigEndian.Uint16(body)})
		case 17: // PUSH_VLAN, followed by the set_field of the VLAN id
			if binary.BigEndian.Uint16(body) != ethTypeVLAN {
				ok = false
				continue
			}
			acts = append(acts, PushVLAN(0))
		case 18: // POP_VLAN
			acts = append(acts, PopVLAN{})
		case 24: // DEC_NW_TTL
			acts = append(acts, DecTTL{})
		case 25: // SET_FIELD
			class, num, v, mask, _, err := oxmTLV(body)
			f, known := knownFields[[2]uint16{class, uint16(num)}]
			if err != nil || mask != nil || !known || len(v) != f.size {
				ok = false
				continue
			}
			if f == fVLANVID && len(acts) > 0 {
				if p, isPush := acts[len(acts)-1].(PushVLAN); isPush && p == 0 {
					acts[len(acts)-1] = PushVLAN(binary.BigEndian.Uint16(v) &^ vlanPresent)
					continue
				}
			}
			acts = append(acts, SetField{f, append([]byte(nil), v...)})
		case 28: // COPY_FIELD
			if n < 24 {
				ok = false
				continue
			}
			src, sok := fieldOfHeader(binary.BigEndian.Uint32(a[12:]))
			dst, dok := fieldOfHeader(binary.BigEndian.Uint32(a[16:]))
			if !sok || !dok || int(binary.BigEndian.Uint16(a[4:])) != src.size*8 || a[6] != 0 || a[8] != 0 {
				ok = false
				continue
			}
			acts = append(acts, Move{src, dst})
		case 0xffff: // experimenter
			if len(body) < 6 || binary.BigEndian.Uint32(body) != nxVendorID {
				ok = false
				continue
			}
			switch sub := binary.BigEndian.Uint16(body[4:]); {
			case sub == 14 && n >= 16: // NXAST_RESUBMIT_TABLE
				in := uint32(binary.BigEndian.Uint16(a[10:]))
				if in == 0xfff8 {
					in = 0
				}
				acts = append(acts, Resubmit{InPort: in, Table: a[12]})
			case sub == 18: // NXAST_DEC_TTL
				acts = append(acts, DecTTL{})
			default:
				ok = false
			}
		default:
			ok = false
		}
	}
	return acts, ok
}

// fieldOfHeader returns the field of an unmasked OXM/NXM header, with the
// NXM names register moves use when there are both.
func fieldOfHeader(h uint32) (field, bool) {
	if h&0x100 != 0 {
		return field{}, false
	}
	class, num := uint16(h>>16), uint16(h>>9&0x7f)
	for _, f := range []field{nxEthSrc, nxEthDst, nxARPSPA, nxARPTPA, nxARPSHA, nxARPTHA, nxReg1} {
		if f.class == class && uint16(f.num) == num {
			return f, true
		}
	}
	// OXM basic fields that have an NXM twin among the moves.
	twins := map[[2]uint16]field{{0x8000, 4}: nxEthSrc, {0x8000, 3}: nxEthDst, {0x8000, 22}: nxARPSPA, {0x8000, 23}: nxARPTPA, {0x8000, 24}: nxARPSHA, {0x8000, 25}: nxARPTHA}
	if f, ok := twins[[2]uint16{class, num}]; ok {
		return f, true
	}
	f, ok := knownFields[[2]uint16{class, num}]
	return f, ok && int(h&0xff) == f.size
}

// String renders a flow description as a flow line.
func (fd *FlowDesc) String() string {
	s := fd.Flow.String()
	if !fd.Complete {
		s += " (partly decoded)"
	}
	return s
}

// String renders a group description.
func (g *GroupDesc) String() string {
	s := fmt.Sprintf("group_id=%d,type=%d", g.ID, g.Type)
	for _, b := range g.Buckets {
		s += fmt.Sprintf(",bucket=bucket_id:%d,actions=%s", b.ID, actionsString(b.Actions))
	}
	return s
}
