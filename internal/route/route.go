// Package route holds the BGP VPN route model shared by the BGP speaker, the
// route engine and the VPN instances. It is independent of any BGP library:
// the bgp package converts wire messages to and from these types once, at the
// socket, and every other layer passes pointers to them around.
//
// A Route is immutable once published: layers share it by pointer and never
// copy or modify it. Attrs are shared by every route decoded from one UPDATE.
package route

import (
	"net/netip"
	"slices"
)

// Family is an AFI/SAFI pair supported by bagpipe. The zero value is the
// wildcard used in subscriptions.
type Family uint8

// Supported families.
const (
	FamilyAny Family = iota // wildcard (subscriptions only)
	IPv4VPN                 // ipv4/mpls-vpn, AFI 1 SAFI 128 (RFC 4364)
	EVPN                    // l2vpn/evpn, AFI 25 SAFI 70 (RFC 7432)
	RTC                     // ipv4/rtc, AFI 1 SAFI 132 (RFC 4684)
	FlowVPN                 // ipv4/flow-vpn, AFI 1 SAFI 134 (RFC 5575)
)

// Families lists the concrete families, in the order bagpipe announces them.
var Families = []Family{IPv4VPN, EVPN, FlowVPN, RTC}

// String returns the reference's "afi/safi" name.
func (f Family) String() string {
	switch f {
	case IPv4VPN:
		return "ipv4/mpls-vpn"
	case EVPN:
		return "l2vpn/evpn"
	case RTC:
		return "ipv4/rtc"
	case FlowVPN:
		return "ipv4/flow-vpn"
	case FamilyAny:
		return "*"
	}
	return "unknown"
}

// AFISAFI returns the wire identifiers of f.
func (f Family) AFISAFI() (afi uint16, safi uint8) {
	switch f {
	case IPv4VPN:
		return 1, 128
	case EVPN:
		return 25, 70
	case RTC:
		return 1, 132
	case FlowVPN:
		return 1, 134
	}
	return 0, 0
}

// FamilyOf maps wire identifiers to a Family (FamilyAny when unsupported).
func FamilyOf(afi uint16, safi uint8) Family {
	for _, f := range Families {
		if a, s := f.AFISAFI(); a == afi && s == safi {
			return f
		}
	}
	return FamilyAny
}

// EVPN route types handled by bagpipe.
const (
	EVPNMACIP     uint8 = 2 // MAC/IP advertisement
	EVPNMulticast uint8 = 3 // inclusive multicast Ethernet tag (IMET)
)

// NLRI is the identity of a route within its family: two routes with equal
// NLRI from the same source replace each other. Labels and next hops are not
// part of it (they live in Route). Only the fields of the family are set:
//
//   - IPv4VPN: RD, Prefix.
//   - EVPN MAC/IP: RD, ETag, MAC, Prefix (the optional IP as a host prefix).
//   - EVPN IMET: RD, ETag, Prefix (originating router IP as a host prefix).
//   - RTC: Origin, Target (zero Target: the default/wildcard RTC route).
//   - FlowVPN: RD, Flow (the RFC 5575 component bytes, without RD or length).
type NLRI struct {
	Family Family
	Type   uint8 // EVPN route type
	MAC    MAC
	ETag   uint32
	Origin uint32 // RTC origin AS
	RD     RD
	Target RT // RTC route target
	Prefix netip.Prefix
	Flow   string
}

// Route is one path: an NLRI with its label, next hop, attributes and source.
type Route struct {
	NLRI    NLRI
	Label   uint32 // IPv4VPN: MPLS label; EVPN: raw 24-bit label field (the VNI with VXLAN)
	NextHop netip.Addr
	Attrs   *Attrs
	Source  *Source
}

// Source names who published a route: a BGP peer or a local worker.
type Source struct {
	Name string // e.g. "BGP-10.0.0.1", "VRF-3", "EVI-1", "BGPManager"
	Peer bool   // routes from peers are never sent to other peers
}

// RTs returns the route targets of r.
func (r *Route) RTs() []RT {
	if r.Attrs == nil {
		return nil
	}
	return r.Attrs.RTs
}

// LocalPref returns LOCAL_PREF, 100 when absent.
func (r *Route) LocalPref() uint32 {
	if r.Attrs == nil || !r.Attrs.HasLocalPref {
		return 100
	}
	return r.Attrs.LocalPref
}

// SameContent reports whether a and b carry the same label, next hop and
// attributes (source and NLRI are not compared).
func SameContent(a, b *Route) bool {
	return a.Label == b.Label && a.NextHop == b.NextHop && a.Attrs.Equal(b.Attrs)
}

// PMSI is the PMSI tunnel attribute of an EVPN IMET route (RFC 6514).
type PMSI struct {
	Type     uint8  // 6 = ingress replication
	Label    uint32 // raw 24-bit label field (VNI with VXLAN)
	Endpoint netip.Addr
}

// PMSIIngressReplication is the PMSI tunnel type used by EVPN ingress replication.
const PMSIIngressReplication uint8 = 6

// Attrs are the path attributes bagpipe uses. Values are immutable once a
// route is published; many routes may share one Attrs.
type Attrs struct {
	LocalPref    uint32
	HasLocalPref bool
	MED          uint32
	HasMED       bool
	RTs          []RT
	RTRecords    []RT
	Encaps       []Encap
	HashOrder    uint32 // consistent hash sort order
	HasHashOrder bool
	Redirect     RT // flowspec redirect-to-VRF target
	HasRedirect  bool
	PMSI         *PMSI
	OtherEcoms   []uint64 // extended communities bagpipe does not interpret
}

// Equal compares attributes; multi-valued attributes compare as sets.
func (a *Attrs) Equal(b *Attrs) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.HasLocalPref != b.HasLocalPref || a.LocalPref != b.LocalPref ||
		a.HasMED != b.HasMED || a.MED != b.MED ||
		a.HasHashOrder != b.HasHashOrder || a.HashOrder != b.HashOrder ||
		a.HasRedirect != b.HasRedirect || a.Redirect != b.Redirect {
		return false
	}
	if (a.PMSI == nil) != (b.PMSI == nil) || (a.PMSI != nil && *a.PMSI != *b.PMSI) {
		return false
	}
	return sameSet(a.RTs, b.RTs) && sameSet(a.RTRecords, b.RTRecords) &&
		sameSet(a.Encaps, b.Encaps) && sameSet(a.OtherEcoms, b.OtherEcoms)
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// HasRT reports whether the attributes carry rt.
func (a *Attrs) HasRT(rt RT) bool { return a != nil && slices.Contains(a.RTs, rt) }

// EventKind says whether an event adds or removes a route.
type EventKind uint8

// Event kinds.
const (
	Advertise EventKind = iota
	Withdraw
)

func (k EventKind) String() string {
	if k == Withdraw {
		return "withdraw"
	}
	return "advertise"
}

// Event is a route advertisement or withdrawal travelling from a source to
// the workers subscribed to it.
type Event struct {
	Kind  EventKind
	Route *Route
	// Replaced is, for an advertisement, the route of the same source and
	// NLRI that this one replaces (set by the engine).
	Replaced *Route
}
