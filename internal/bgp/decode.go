package bgp

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// decoder converts the UPDATEs of one session to route events. It runs on
// the session's reader goroutine. The only state it keeps between UPDATEs
// is the last attributes it produced: route reflectors send long runs of
// UPDATEs with the same attributes (one route each, often), and routes
// with equal attributes then share one immutable *route.Attrs.
type decoder struct {
	routerID netip.Addr
	families familySet // routes of other families are ignored

	scratch route.Attrs   // attributes being decoded (slices reused)
	last    *route.Attrs  // attributes of the last advertisement
	events  []route.Event // backing array of decoded.events, reused
}

// intern returns attributes identical to a: the previous UPDATE's when
// they are, else a copy of a (which is scratch space) that becomes the
// last attributes.
func (d *decoder) intern(a *route.Attrs) *route.Attrs {
	if l := d.last; l != nil && identical(l, a) {
		return l
	}
	x := new(route.Attrs)
	*x = *a
	x.RTs, x.RTRecords = cloneOrNil(a.RTs), cloneOrNil(a.RTRecords)
	x.Encaps, x.OtherEcoms = cloneOrNil(a.Encaps), cloneOrNil(a.OtherEcoms)
	d.last = x
	return x
}

// identical compares attributes exactly (multi-valued ones in order).
func identical(a, b *route.Attrs) bool {
	return a.LocalPref == b.LocalPref && a.HasLocalPref == b.HasLocalPref &&
		a.MED == b.MED && a.HasMED == b.HasMED &&
		a.HashOrder == b.HashOrder && a.HasHashOrder == b.HasHashOrder &&
		a.Redirect == b.Redirect && a.HasRedirect == b.HasRedirect &&
		(a.PMSI == nil) == (b.PMSI == nil) && (a.PMSI == nil || *a.PMSI == *b.PMSI) &&
		slices.Equal(a.RTs, b.RTs) && slices.Equal(a.RTRecords, b.RTRecords) &&
		slices.Equal(a.Encaps, b.Encaps) && slices.Equal(a.OtherEcoms, b.OtherEcoms)
}

func cloneOrNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// decoded is the result of one UPDATE.
type decoded struct {
	events     []route.Event // valid until the next UPDATE is decoded
	ownDropped int           // advertisements with our ORIGINATOR_ID, turned into withdrawals
	ignored    int           // NLRIs of families or types we do not handle
}

// update converts u. Every MP_REACH and MP_UNREACH NLRI becomes one event;
// the advertisements share one *route.Attrs. With asWithdraw (RFC 7606
// treat-as-withdraw) the advertisements become withdrawals.
func (d *decoder) update(u *bgp.BGPUpdate, asWithdraw bool) decoded {
	var (
		res     decoded
		reach   *bgp.PathAttributeMpReachNLRI
		unreach *bgp.PathAttributeMpUnreachNLRI
		own     bool
	)
	// Decode into scratch space: intern copies it only when needed.
	attrs := &d.scratch
	*attrs = route.Attrs{RTs: attrs.RTs[:0], RTRecords: attrs.RTRecords[:0], Encaps: attrs.Encaps[:0], OtherEcoms: attrs.OtherEcoms[:0]}
	res.ignored = len(u.NLRI) + len(u.WithdrawnRoutes) // plain IPv4 unicast
	for _, pa := range u.PathAttributes {
		switch a := pa.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			reach = a
		case *bgp.PathAttributeMpUnreachNLRI:
			unreach = a
		case *bgp.PathAttributeOriginatorId:
			own = a.Value == d.routerID
		case *bgp.PathAttributeLocalPref:
			attrs.LocalPref, attrs.HasLocalPref = a.Value, true
		case *bgp.PathAttributeMultiExitDisc:
			attrs.MED, attrs.HasMED = a.Value, true
		case *bgp.PathAttributeExtendedCommunities:
			decodeEcoms(a.Value, attrs)
		case *bgp.PathAttributePmsiTunnel:
			p := &route.PMSI{Type: uint8(a.TunnelType), Label: a.Label}
			if id, ok := a.TunnelID.(*bgp.IngressReplTunnelID); ok {
				p.Endpoint = id.Value
			}
			attrs.PMSI = p
		}
	}
	n := 0
	if reach != nil {
		n += len(reach.Value)
	}
	if unreach != nil {
		n += len(unreach.Value)
	}
	if n == 0 {
		return res
	}
	// One allocation for all the routes of the UPDATE.
	routes := make([]route.Route, 0, n)
	res.events = d.events[:0] // scratch: the session copies the events at once
	defer func() { d.events = res.events[:0] }()
	add := func(kind route.EventKind, r route.Route) {
		routes = append(routes, r)
		res.events = append(res.events, route.Event{Kind: kind, Route: &routes[len(routes)-1]})
	}
	if reach != nil {
		fam := routeFamily(bgp.NewFamily(reach.AFI, reach.SAFI))
		kind := route.Advertise
		if asWithdraw || own {
			kind = route.Withdraw
			if own {
				res.ownDropped += len(reach.Value)
			}
		}
		var shared *route.Attrs
		if kind == route.Advertise {
			shared = d.intern(attrs)
		}
		for _, p := range reach.Value {
			r, ok := d.route(fam, p.NLRI)
			if !ok {
				res.ignored++
				continue
			}
			if kind == route.Advertise {
				r.Attrs = shared
				if fam != route.FlowVPN {
					r.NextHop = reach.Nexthop
				}
			}
			add(kind, r)
		}
	}
	if unreach != nil {
		fam := routeFamily(bgp.NewFamily(unreach.AFI, unreach.SAFI))
		for _, p := range unreach.Value {
			r, ok := d.route(fam, p.NLRI)
			if !ok {
				res.ignored++
				continue
			}
			add(route.Withdraw, r)
		}
	}
	return res
}

// route converts one NLRI to a route without attributes; ok is false for
// NLRIs we do not handle.
func (d *decoder) route(fam route.Family, n bgp.NLRI) (r route.Route, ok bool) {
	if !d.families.has(fam) {
		return r, false
	}
	r.NLRI.Family = fam
	switch n := n.(type) {
	case *bgp.LabeledVPNIPAddrPrefix:
		rd, ok := routeRD(n.RD)
		if !ok || !n.Prefix.Addr().Is4() {
			return r, false
		}
		r.NLRI.RD, r.NLRI.Prefix = rd, n.Prefix
		if len(n.Labels.Labels) > 0 && n.Labels.Labels[0] != bgp.WITHDRAW_LABEL {
			r.Label = n.Labels.Labels[0] & 0xfffff
		}
		return r, true
	case *bgp.EVPNNLRI:
		return evpnRoute(r, n)
	case *bgp.RouteTargetMembershipNLRI:
		r.NLRI.Origin = n.AS
		if n.Length == 96 && n.RouteTarget != nil {
			rt, err := bgp.ExtCommRouteTargetKey(n.RouteTarget)
			if err != nil {
				raw, ok := ecomRaw(n.RouteTarget)
				if !ok {
					return r, false
				}
				rt = raw
			}
			r.NLRI.Target = route.RT(rt)
		}
		// Default (length 0) and partial routes keep Target 0: "every RT".
		return r, true
	case *bgp.FlowSpecNLRI:
		rd, ok := routeRD(n.RD())
		if !ok {
			return r, false
		}
		r.NLRI.RD = rd
		r.NLRI.Flow = flowBytes(n.Value)
		return r, true
	}
	return r, false
}

// evpnRoute converts MAC/IP advertisement and IMET routes; other route
// types are not used by bagpipe.
func evpnRoute(r route.Route, n *bgp.EVPNNLRI) (route.Route, bool) {
	switch e := n.RouteTypeData.(type) {
	case *bgp.EVPNMacIPAdvertisementRoute:
		rd, ok := routeRD(e.RD)
		if !ok || e.MacAddressLength != 48 || len(e.MacAddress) != 6 {
			return r, false
		}
		r.NLRI.Type = route.EVPNMACIP
		r.NLRI.RD, r.NLRI.ETag = rd, e.ETag
		copy(r.NLRI.MAC[:], e.MacAddress)
		if e.IPAddressLength != 0 && e.IPAddress.IsValid() {
			r.NLRI.Prefix = netip.PrefixFrom(e.IPAddress, e.IPAddress.BitLen())
		}
		if len(e.Labels) > 0 {
			r.Label = e.Labels[0] // raw 24-bit field (a VNI with VXLAN)
		}
		return r, true
	case *bgp.EVPNMulticastEthernetTagRoute:
		rd, ok := routeRD(e.RD)
		if !ok || !e.IPAddress.IsValid() {
			return r, false
		}
		r.NLRI.Type = route.EVPNMulticast
		r.NLRI.RD, r.NLRI.ETag = rd, e.ETag
		r.NLRI.Prefix = netip.PrefixFrom(e.IPAddress, e.IPAddress.BitLen())
		return r, true
	}
	return r, false
}

// routeRD converts a route distinguisher of a known type.
func routeRD(rd bgp.RouteDistinguisherInterface) (route.RD, bool) {
	switch rd := rd.(type) {
	case *bgp.RouteDistinguisherTwoOctetAS:
		return route.RD(uint64(rd.Admin)<<32 | uint64(rd.Assigned)), true
	case *bgp.RouteDistinguisherIPAddressAS:
		if !rd.Admin.Is4() {
			return 0, false
		}
		a := rd.Admin.As4()
		return route.RD(1<<48 | uint64(binary.BigEndian.Uint32(a[:]))<<16 | uint64(rd.Assigned)), true
	case *bgp.RouteDistinguisherFourOctetAS:
		return route.RD(2<<48 | uint64(rd.Admin)<<16 | uint64(rd.Assigned)), true
	}
	return 0, false
}

// Consistent hash sort order extended community (draft-malhotra-bess-evpn-
// unequal-lb style, as bagpipe uses it): transitive opaque, sub-type 0x14.
const ecomSubHashOrder = 0x14

// decodeEcoms sorts extended communities into a.
func decodeEcoms(ecoms []bgp.ExtendedCommunityInterface, a *route.Attrs) {
	for _, ec := range ecoms {
		switch e := ec.(type) {
		case *bgp.EncapExtended:
			a.Encaps = append(a.Encaps, route.Encap(e.TunnelType))
			continue
		case *bgp.RedirectTwoOctetAsSpecificExtended:
			a.Redirect, a.HasRedirect = redirectRT(bgp.NewTwoOctetAsSpecificExtended(
				bgp.EC_SUBTYPE_ROUTE_TARGET, e.AS, e.LocalAdmin, true))
			continue
		case *bgp.RedirectIPv4AddressSpecificExtended:
			t, err := bgp.NewIPv4AddressSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, e.IPv4, e.LocalAdmin, true)
			if err == nil {
				a.Redirect, a.HasRedirect = redirectRT(t)
				continue
			}
		case *bgp.RedirectFourOctetAsSpecificExtended:
			a.Redirect, a.HasRedirect = redirectRT(bgp.NewFourOctetAsSpecificExtended(
				bgp.EC_SUBTYPE_ROUTE_TARGET, e.AS, e.LocalAdmin, true))
			continue
		case *bgp.OpaqueExtended:
			if e.IsTransitive && len(e.Value) == 7 && e.Value[0] == ecomSubHashOrder {
				a.HashOrder, a.HasHashOrder = binary.BigEndian.Uint32(e.Value[1:5]), true
				continue
			}
		}
		raw, ok := ecomRaw(ec)
		switch {
		case !ok:
		case route.IsRouteTargetEcom(raw):
			a.RTs = append(a.RTs, route.RT(raw))
		case route.IsRTRecordEcom(raw):
			a.RTRecords = append(a.RTRecords, route.RTFromRecord(raw))
		default:
			a.OtherEcoms = append(a.OtherEcoms, raw)
		}
	}
}

func redirectRT(t bgp.ExtendedCommunityInterface) (route.RT, bool) {
	k, err := bgp.ExtCommRouteTargetKey(t)
	return route.RT(k), err == nil
}

// ecomRaw returns the 8 wire bytes of an extended community.
func ecomRaw(ec bgp.ExtendedCommunityInterface) (uint64, bool) {
	switch ec.(type) {
	case *bgp.TwoOctetAsSpecificExtended, *bgp.IPv4AddressSpecificExtended, *bgp.FourOctetAsSpecificExtended:
		k, err := bgp.ExtCommRouteTargetKey(ec) // allocation free for these types
		return k, err == nil
	}
	b, err := ec.Serialize()
	if err != nil || len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
