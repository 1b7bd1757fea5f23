package route

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// RT is a route target extended community kept as its 8 wire bytes
// (type, subtype, value), so that RTs of any form compare and hash cheaply.
type RT uint64

// Extended community types and subtypes used for route targets.
const (
	ecomTypeAS2        = 0x00
	ecomTypeIPv4       = 0x01
	ecomTypeAS4        = 0x02
	ecomSubRouteTarget = 0x02
	ecomSubRTRecord    = 0x13
)

// NewRT returns the route target asn:n: the 2-octet-AS form when asn fits in
// 16 bits, else the 4-octet-AS form (then n must fit in 16 bits).
func NewRT(asn, n uint32) (RT, error) {
	if asn <= 0xffff {
		return RT(uint64(ecomTypeAS2)<<56 | uint64(ecomSubRouteTarget)<<48 | uint64(asn)<<32 | uint64(n)), nil
	}
	if n > 0xffff {
		return 0, fmt.Errorf("route target %d:%d: with a 4-byte AS the local part must be at most 65535", asn, n)
	}
	return RT(uint64(ecomTypeAS4)<<56 | uint64(ecomSubRouteTarget)<<48 | uint64(asn)<<16 | uint64(n)), nil
}

// ParseRT parses "asn:n" or "a.b.c.d:n", optionally prefixed with "target:".
func ParseRT(s string) (RT, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "target:")
	i := strings.LastIndexByte(t, ':')
	if i <= 0 || i == len(t)-1 {
		return 0, fmt.Errorf("malformed route target %q: expected ASN:NN", s)
	}
	admin, local := t[:i], t[i+1:]
	if ip, err := netip.ParseAddr(admin); err == nil && ip.Is4() {
		n, err := strconv.ParseUint(local, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("malformed route target %q: local part must be 0..65535", s)
		}
		a := ip.As4()
		return RT(uint64(ecomTypeIPv4)<<56 | uint64(ecomSubRouteTarget)<<48 | uint64(binary.BigEndian.Uint32(a[:]))<<16 | n), nil
	}
	asn, err := strconv.ParseUint(admin, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("malformed route target %q: ASN must be an integer 0..4294967295", s)
	}
	n, err := strconv.ParseUint(local, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("malformed route target %q: local part must be an integer 0..4294967295", s)
	}
	return NewRT(uint32(asn), uint32(n))
}

// MustParseRT is ParseRT for constants in tests and examples.
func MustParseRT(s string) RT {
	rt, err := ParseRT(s)
	if err != nil {
		panic(err)
	}
	return rt
}

// IsRouteTargetEcom reports whether the raw extended community is a route target.
func IsRouteTargetEcom(ecom uint64) bool {
	return ecomSubtype(ecom) == ecomSubRouteTarget && ecomTypeKnown(ecom)
}

// IsRTRecordEcom reports whether the raw extended community is an RT-Record.
func IsRTRecordEcom(ecom uint64) bool {
	return ecomSubtype(ecom) == ecomSubRTRecord && ecomTypeKnown(ecom)
}

func ecomSubtype(e uint64) byte { return byte(e >> 48) }
func ecomTypeKnown(e uint64) bool {
	t := byte(e>>56) & 0x3f // ignore the IANA authority and transitive bits
	return t == ecomTypeAS2 || t == ecomTypeIPv4 || t == ecomTypeAS4
}

// RTFromRecord converts an RT-Record extended community to the RT it records.
func RTFromRecord(ecom uint64) RT {
	return RT(ecom&^(0xff<<48) | uint64(ecomSubRouteTarget)<<48)
}

// Record returns the RT-Record extended community (raw) recording rt.
func (rt RT) Record() uint64 {
	return uint64(rt)&^(0xff<<48) | uint64(ecomSubRTRecord)<<48
}

// String formats rt as "asn:n" or "a.b.c.d:n".
func (rt RT) String() string {
	v := uint64(rt)
	switch byte(v>>56) & 0x3f {
	case ecomTypeAS2:
		return fmt.Sprintf("%d:%d", uint16(v>>32), uint32(v))
	case ecomTypeIPv4:
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(v>>16))
		return fmt.Sprintf("%s:%d", netip.AddrFrom4(a), uint16(v))
	case ecomTypeAS4:
		return fmt.Sprintf("%d:%d", uint32(v>>16), uint16(v))
	}
	return fmt.Sprintf("0x%016x", v)
}

// Target formats rt as the looking glass does: "target:asn:n".
func (rt RT) Target() string { return "target:" + rt.String() }

// RD is a route distinguisher kept as its 8 wire bytes.
type RD uint64

// NewRDIP returns the type 1 route distinguisher ip:n.
func NewRDIP(ip netip.Addr, n uint16) RD {
	a := ip.As4()
	return RD(1<<48 | uint64(binary.BigEndian.Uint32(a[:]))<<16 | uint64(n))
}

// String formats the RD as "admin:assigned".
func (rd RD) String() string {
	v := uint64(rd)
	switch uint16(v >> 48) {
	case 0:
		return fmt.Sprintf("%d:%d", uint16(v>>32), uint32(v))
	case 1:
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(v>>16))
		return fmt.Sprintf("%s:%d", netip.AddrFrom4(a), uint16(v))
	case 2:
		return fmt.Sprintf("%d:%d", uint32(v>>16), uint16(v))
	}
	return fmt.Sprintf("0x%016x", v)
}

// MAC is an EUI-48 address.
type MAC [6]byte

// ParseMAC accepts the EUI-48 notations of Python's netaddr: colon or dash
// separated (with 1 or 2 hex digits per group), Cisco dotted (xxxx.xxxx.xxxx)
// and bare 12 hex digits, in any letter case.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	t := strings.TrimSpace(s)
	var groups []string
	switch {
	case strings.ContainsRune(t, ':'):
		groups = strings.Split(t, ":")
	case strings.ContainsRune(t, '-'):
		groups = strings.Split(t, "-")
	case strings.ContainsRune(t, '.'):
		groups = strings.Split(t, ".")
	default:
		groups = []string{t}
	}
	var digits string
	switch len(groups) {
	case 6:
		for _, g := range groups {
			if len(g) < 1 || len(g) > 2 {
				return m, fmt.Errorf("MAC address %s is not valid", s)
			}
			digits += strings.Repeat("0", 2-len(g)) + g
		}
	case 3:
		for _, g := range groups {
			if len(g) != 4 {
				return m, fmt.Errorf("MAC address %s is not valid", s)
			}
			digits += g
		}
	case 1:
		digits = groups[0]
	default:
		return m, fmt.Errorf("MAC address %s is not valid", s)
	}
	if len(digits) != 12 {
		return m, fmt.Errorf("MAC address %s is not valid", s)
	}
	if _, err := hex.Decode(m[:], []byte(digits)); err != nil {
		return MAC{}, fmt.Errorf("MAC address %s is not valid", s)
	}
	return m, nil
}

// String formats the MAC as lower-case colon-separated hex.
func (m MAC) String() string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexd[x>>4], hexd[x&0xf])
	}
	return string(b)
}

// Encap is a tunnel type of the BGP encapsulation extended community (RFC 9012).
type Encap uint16

// Encapsulations used by bagpipe. EncapDefault is never put on the wire.
const (
	EncapDefault  Encap = 0
	EncapGRE      Encap = 2
	EncapVXLAN    Encap = 8
	EncapMPLS     Encap = 10
	EncapMPLSoUDP Encap = 13
)

// String formats the encap as the looking glass does ("encap:VXLAN").
func (e Encap) String() string {
	switch e {
	case EncapDefault:
		return "encap:Default"
	case EncapGRE:
		return "encap:GRE"
	case EncapVXLAN:
		return "encap:VXLAN"
	case EncapMPLS:
		return "encap:MPLS"
	case EncapMPLSoUDP:
		return "encap:MPLS-in-UDP"
	}
	return fmt.Sprintf("encap:%d", uint16(e))
}
