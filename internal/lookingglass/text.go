package lookingglass

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"bagpipe/internal/route"
)

// NLRIText formats the NLRI of r as the reference looking glass does:
//
//	10.0.0.1/32 label 18 next-hop 127.0.0.1 rd 127.0.0.1:0
//	evpn:macadv::127.0.0.1:0:-:0:52:54:00:00:00:11/48:10.1.0.1: label 312 (5000)
//	evpn:multicast::127.0.0.1:0:0:127.0.0.1
//	rtc 64512:target:64512:77
//	flow destination-ipv4 10.0.0.1/32 protocol =tcp rd 127.0.0.1:4
//
// Routes received from a peer show their raw MPLS label field in
// parentheses, as decoded routes do in the reference.
func NLRIText(r *route.Route) string { return string(AppendNLRI(nil, r)) }

// AppendNLRI appends NLRIText(r) to b.
func AppendNLRI(b []byte, r *route.Route) []byte {
	n := &r.NLRI
	switch n.Family {
	case route.IPv4VPN:
		b = n.Prefix.AppendTo(b)
		b = appendLabel(b, r)
		b = appendNextHop(b, r)
		b = append(b, " rd "...)
		return appendRD(b, n.RD)
	case route.EVPN:
		switch n.Type {
		case route.EVPNMACIP:
			b = append(b, "evpn:macadv::"...)
			b = appendRD(b, n.RD)
			b = append(b, ":-:"...)
			b = strconv.AppendUint(b, uint64(n.ETag), 10)
			b = append(b, ':')
			b = append(b, n.MAC.String()...)
			b = append(b, "/48:"...)
			if n.Prefix.IsValid() {
				b = n.Prefix.Addr().AppendTo(b)
			}
			b = append(b, ':')
			return appendLabel(b, r)
		case route.EVPNMulticast:
			b = append(b, "evpn:multicast::"...)
			b = appendRD(b, n.RD)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(n.ETag), 10)
			b = append(b, ':')
			if n.Prefix.IsValid() {
				b = n.Prefix.Addr().AppendTo(b)
			}
			return b
		}
		b = fmt.Appendf(b, "evpn:unknown-%d::", n.Type)
		return appendRD(b, n.RD)
	case route.RTC:
		if n.Target == 0 {
			return append(b, "rtc wildcard"...)
		}
		b = append(b, "rtc "...)
		b = strconv.AppendUint(b, uint64(n.Origin), 10)
		b = append(b, ':')
		return append(b, TargetText(n.Target)...)
	case route.FlowVPN:
		b = append(b, "flow "...)
		b = append(b, FlowText(n.Flow)...)
		b = append(b, " rd "...)
		b = appendRD(b, n.RD)
		return appendNextHop(b, r)
	}
	return append(b, n.Family.String()...)
}

// appendRD appends an RD as "admin:assigned".
func appendRD(b []byte, rd route.RD) []byte {
	v := uint64(rd)
	if v>>48 == 1 { // type 1, the usual ip:n
		b = netip.AddrFrom4([4]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16)}).AppendTo(b)
		b = append(b, ':')
		return strconv.AppendUint(b, v&0xffff, 10)
	}
	return append(b, rd.String()...)
}

func appendNextHop(b []byte, r *route.Route) []byte {
	if !r.NextHop.IsValid() {
		return b
	}
	b = append(b, " next-hop "...)
	return r.NextHop.AppendTo(b)
}

// appendLabel appends the label of an IPv4VPN or EVPN MAC/IP route:
// " label N" followed, when the raw 24-bit field is known and non-zero, by
// " (raw)". For E-VPN the model keeps the raw field (the VNI with VXLAN);
// for IPv4VPN it keeps the label, whose raw field is only shown for
// received routes (bottom-of-stack bit set).
func appendLabel(b []byte, r *route.Route) []byte {
	b = append(b, " label "...)
	var raw uint32
	if r.NLRI.Family == route.EVPN {
		raw = r.Label
		b = strconv.AppendUint(b, uint64(raw>>4), 10)
	} else {
		b = strconv.AppendUint(b, uint64(r.Label), 10)
		if received(r) {
			raw = r.Label<<4 | 1
		}
	}
	if raw == 0 {
		return b
	}
	b = append(b, " ("...)
	b = strconv.AppendUint(b, uint64(raw), 10)
	return append(b, ')')
}

// PMSIText formats a PMSI tunnel attribute, e.g.
// "pmsi:ingressreplication:0:0(5000):127.0.0.1". Locally built attributes
// show label 0 and the raw field in parentheses; decoded ones (received)
// show the 20-bit label and the raw field.
func PMSIText(p *route.PMSI, received bool) string {
	label := "0"
	switch {
	case p.Label != 0 && received:
		label = fmt.Sprintf("%d(%d)", p.Label>>4, p.Label)
	case p.Label != 0:
		label = fmt.Sprintf("0(%d)", p.Label)
	}
	tunnel := ""
	if p.Endpoint.IsValid() {
		if p.Type == route.PMSIIngressReplication {
			tunnel = p.Endpoint.String()
		} else {
			tunnel = "0x" + strings.ToUpper(fmt.Sprintf("%x", p.Endpoint.AsSlice()))
		}
	}
	return fmt.Sprintf("pmsi:%s:0:%s:%s", pmsiTypeName(p.Type), label, tunnel)
}

func pmsiTypeName(t uint8) string {
	switch t {
	case 0:
		return "notunnel"
	case 1:
		return "rsvp-tep2mplsp"
	case 2:
		return "mldpp2mplsp"
	case 3:
		return "pimssmtree"
	case 4:
		return "pimsmtree"
	case 5:
		return "bidir-pimtree"
	case route.PMSIIngressReplication:
		return "ingressreplication"
	case 7:
		return "mldpmp2mplsp"
	}
	return "unknown"
}

// TargetText formats a route target as the reference does:
// "target:64512:77", "target:192.0.2.1:5", "target:4200000000L:5".
func TargetText(rt route.RT) string { return ecomText(uint64(rt)) }

// Wire forms of the extended communities built from the model's fields.
const (
	ecomEncap     = 0x030c // transitive opaque, encapsulation (RFC 9012)
	ecomHashOrder = 0x0314 // consistent hash sort order (bagpipe)
	ecomRedirect  = 0x08   // flowspec redirect-to-VRF subtype (RFC 5575)
)

// ExtCommunitiesText formats the extended communities of a as the
// reference does: one community alone, or "[ c1 c2 ... ]" sorted by their
// wire bytes ("" when there is none).
func ExtCommunitiesText(a *route.Attrs) string {
	var ecoms []uint64
	for _, rt := range a.RTs {
		ecoms = append(ecoms, uint64(rt))
	}
	for _, rt := range a.RTRecords {
		ecoms = append(ecoms, rt.Record())
	}
	for _, enc := range a.Encaps {
		ecoms = append(ecoms, ecomEncap<<48|uint64(enc))
	}
	if a.HasHashOrder {
		ecoms = append(ecoms, ecomHashOrder<<48|uint64(a.HashOrder)<<16)
	}
	if a.HasRedirect {
		v := uint64(a.Redirect)
		ecoms = append(ecoms, (v>>56|0x80)<<56|ecomRedirect<<48|v&(1<<48-1))
	}
	ecoms = append(ecoms, a.OtherEcoms...)
	switch len(ecoms) {
	case 0:
		return ""
	case 1:
		return ecomText(ecoms[0])
	}
	slices.Sort(ecoms)
	texts := make([]string, len(ecoms))
	for i, e := range ecoms {
		texts[i] = ecomText(e)
	}
	return "[ " + strings.Join(texts, " ") + " ]"
}

// ecomText formats one extended community (8 wire bytes, big endian) like
// exabgp: route targets, RT records, encapsulations, consistent hash
// orders, redirects and MAC mobility are decoded, others shown in hex.
func ecomText(e uint64) string {
	typ, sub := byte(e>>56)&0x0f, byte(e>>48)
	switch {
	case sub == 0x02 && typ <= 2:
		return "target:" + adminNumber(e)
	case sub == 0x13 && typ <= 2:
		return "rtrecord:" + adminNumber(e)
	case typ == 0 && sub == ecomRedirect:
		return fmt.Sprintf("redirect:%d:%d", uint16(e>>32), uint32(e))
	case typ == 2 && sub == ecomRedirect:
		return fmt.Sprintf("redirect:%d:%d", uint32(e>>16), uint16(e))
	case e>>48 == ecomEncap:
		return "encap:" + encapName(uint16(e))
	case e>>48 == ecomHashOrder:
		return fmt.Sprintf("consistentHashSortOrder:%d", uint32(e>>16))
	case typ == 6 && sub == 0:
		s := fmt.Sprintf("mac-mobility:%d", uint32(e))
		if byte(e>>40) == 1 {
			s += ":sticky"
		}
		return s
	}
	return fmt.Sprintf("0x%016X", e)
}

// adminNumber formats the value of a two-octet AS, IPv4 or four-octet AS
// specific community: "64512:77", "192.0.2.1:5", "4200000000L:5".
func adminNumber(e uint64) string {
	switch byte(e>>56) & 0x0f {
	case 1:
		a := [4]byte{byte(e >> 40), byte(e >> 32), byte(e >> 24), byte(e >> 16)}
		return fmt.Sprintf("%s:%d", netip.AddrFrom4(a), uint16(e))
	case 2:
		return fmt.Sprintf("%dL:%d", uint32(e>>16), uint16(e))
	}
	return fmt.Sprintf("%d:%d", uint16(e>>32), uint32(e))
}

func encapName(t uint16) string {
	switch route.Encap(t) {
	case route.EncapDefault:
		return "Default"
	case route.EncapGRE:
		return "GRE"
	case route.EncapVXLAN:
		return "VXLAN"
	case route.EncapMPLS:
		return "MPLS"
	case route.EncapMPLSoUDP:
		return "MPLS-in-UDP"
	}
	switch t {
	case 1:
		return "L2TPv3"
	case 7:
		return "IP-in-IP"
	case 9:
		return "NVGRE"
	case 12:
		return "VXLAN-GPE"
	}
	return fmt.Sprintf("encap:UNKNOWN-%d", t)
}
