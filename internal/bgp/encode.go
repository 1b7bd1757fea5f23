package bgp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// encoder packs the route events of one session into UPDATE messages. It
// runs on the session's writer goroutine.
//
// Consecutive events of the same kind and family (and, for advertisements,
// the same next hop and *route.Attrs) share one UPDATE, filled up to the
// 4096-byte message limit.
type encoder struct {
	families familySet
	localNH  netip.Addr // next hop of routes without one
	warn     func(msg string, args ...any)

	rds map[route.RD]bgp.RouteDistinguisherInterface // RD objects are few and immutable

	// Path attributes of the last advertised *route.Attrs.
	lastAttrs *route.Attrs
	lastList  []bgp.PathAttributeInterface
	lastLen   int
}

func newEncoder(families familySet, localNH netip.Addr, warn func(string, ...any)) *encoder {
	return &encoder{families: families, localNH: localNH, warn: warn, rds: map[route.RD]bgp.RouteDistinguisherInterface{}}
}

const (
	updateHeaderLen = bgp.BGP_HEADER_LENGTH + 2 + 2 // + withdrawn routes and path attributes lengths
	mpAttrHeaderLen = 4                             // flags, type, extended length
)

// encode turns items into UPDATE messages passed to emit (valid during the
// call only); it stops at the first emit error. It returns the number of
// UPDATEs emitted.
func (e *encoder) encode(items []outMsg, emit func([]byte) error) (int, error) {
	sent := 0
	for i := 0; i < len(items); {
		it := items[i]
		if it.eor != route.FamilyAny {
			i++
			if !e.families.has(it.eor) {
				continue
			}
			b, err := bgp.NewEndOfRib(bgpFamily(it.eor)).Serialize()
			if err != nil {
				return sent, err
			}
			if err := emit(b); err != nil {
				return sent, err
			}
			sent++
			continue
		}
		// The group of events sharing one UPDATE.
		j := i + 1
		for j < len(items) && sameGroup(&items[i], &items[j]) {
			j++
		}
		n, err := e.encodeGroup(items[i:j], emit)
		sent += n
		if err != nil {
			return sent, err
		}
		i = j
	}
	return sent, nil
}

func sameGroup(a, b *outMsg) bool {
	if b.eor != route.FamilyAny || a.ev.Kind != b.ev.Kind {
		return false
	}
	ra, rb := a.ev.Route, b.ev.Route
	if ra.NLRI.Family != rb.NLRI.Family {
		return false
	}
	return a.ev.Kind == route.Withdraw || (ra.Attrs == rb.Attrs && ra.NextHop == rb.NextHop)
}

// encodeGroup emits the UPDATEs of events of one group.
func (e *encoder) encodeGroup(group []outMsg, emit func([]byte) error) (int, error) {
	first := group[0].ev
	fam := first.Route.NLRI.Family
	if !e.families.has(fam) {
		return 0, nil
	}
	advertise := first.Kind == route.Advertise
	var (
		attrs    []bgp.PathAttributeInterface
		attrsLen int
		nh       netip.Addr
		fixed    = updateHeaderLen + mpAttrHeaderLen + 3 // + AFI, SAFI
	)
	if advertise {
		attrs, attrsLen = e.pathAttrs(first.Route)
		nh = first.Route.NextHop
		if !nh.IsValid() {
			nh = e.localNH
		}
		fixed += attrsLen + 1 + nextHopLen(fam, nh) + 1 // next hop length, next hop, reserved
	}
	sent := 0
	nlris := make([]bgp.PathNLRI, 0, len(group))
	size := fixed
	flush := func() error {
		if len(nlris) == 0 {
			return nil
		}
		b, err := e.update(fam, advertise, attrs, nlris, nh)
		nlris, size = nlris[:0], fixed
		if err != nil {
			e.warn("cannot encode UPDATE", "family", fam.String(), "error", err)
			return nil
		}
		sent++
		return emit(b)
	}
	for _, it := range group {
		n, err := e.nlri(it.ev.Route, !advertise)
		if err != nil {
			e.warn("cannot encode route", "family", fam.String(), "error", err)
			continue
		}
		l := n.Len()
		if size+l > bgp.BGP_MAX_MESSAGE_LENGTH {
			if err := flush(); err != nil {
				return sent, err
			}
		}
		nlris = append(nlris, bgp.PathNLRI{NLRI: n})
		size += l
	}
	return sent, flush()
}

func nextHopLen(fam route.Family, nh netip.Addr) int {
	switch fam {
	case route.FlowVPN:
		return 0
	case route.IPv4VPN:
		return 8 + nh.BitLen()/8
	}
	return nh.BitLen() / 8
}

// update serialises one UPDATE; MP_REACH/MP_UNREACH comes first (RFC 7606
// §5.1), then the other attributes in type order.
func (e *encoder) update(fam route.Family, advertise bool, attrs []bgp.PathAttributeInterface, nlris []bgp.PathNLRI, nh netip.Addr) ([]byte, error) {
	var list []bgp.PathAttributeInterface
	if advertise {
		var nhs []netip.Addr
		if fam != route.FlowVPN {
			nhs = append(nhs, nh)
		}
		mp, err := bgp.NewPathAttributeMpReachNLRI(bgpFamily(fam), nlris, nhs...)
		if err != nil {
			return nil, err
		}
		list = make([]bgp.PathAttributeInterface, 0, 1+len(attrs))
		list = append(append(list, mp), attrs...)
	} else {
		mp, err := bgp.NewPathAttributeMpUnreachNLRI(bgpFamily(fam), nlris)
		if err != nil {
			return nil, err
		}
		list = []bgp.PathAttributeInterface{mp}
	}
	return bgp.NewBGPUpdateMessage(nil, list, nil).Serialize()
}

// pathAttrs returns the attributes other than MP_REACH for r, and their
// encoded length. Consecutive routes usually share their *route.Attrs.
func (e *encoder) pathAttrs(r *route.Route) ([]bgp.PathAttributeInterface, int) {
	if r.Attrs == e.lastAttrs && e.lastList != nil {
		return e.lastList, e.lastLen
	}
	a := r.Attrs
	if a == nil {
		a = &route.Attrs{}
	}
	list := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath(nil),
	}
	if a.HasMED {
		list = append(list, bgp.NewPathAttributeMultiExitDisc(a.MED))
	}
	list = append(list, bgp.NewPathAttributeLocalPref(r.LocalPref()))
	if ecoms := e.ecoms(a); len(ecoms) > 0 {
		list = append(list, bgp.NewPathAttributeExtendedCommunities(ecoms))
	}
	if p := a.PMSI; p != nil && p.Endpoint.IsValid() {
		if id, err := bgp.NewIngressReplTunnelID(p.Endpoint); err == nil {
			list = append(list, bgp.NewPathAttributePmsiTunnel(bgp.PmsiTunnelType(p.Type), false, p.Label, id))
		}
	}
	n := 0
	for _, pa := range list {
		n += pa.Len()
	}
	e.lastAttrs, e.lastList, e.lastLen = r.Attrs, list, n
	return list, n
}

// ecoms builds the extended communities: RTs, encapsulations (not the
// default one), RT-Records, consistent hash sort order, redirect-to-VRF, then
// the others.
func (e *encoder) ecoms(a *route.Attrs) []bgp.ExtendedCommunityInterface {
	var out []bgp.ExtendedCommunityInterface
	for _, rt := range a.RTs {
		out = append(out, rawEcom(uint64(rt)))
	}
	for _, enc := range a.Encaps {
		if enc != route.EncapDefault {
			out = append(out, bgp.NewEncapExtended(bgp.TunnelType(enc)))
		}
	}
	for _, rt := range a.RTRecords {
		out = append(out, rawEcom(rt.Record()))
	}
	if a.HasHashOrder {
		v := [7]byte{ecomSubHashOrder}
		binary.BigEndian.PutUint32(v[1:5], a.HashOrder)
		out = append(out, bgp.NewOpaqueExtended(true, v[:]))
	}
	if a.HasRedirect {
		if r, err := redirectEcom(a.Redirect); err == nil {
			out = append(out, r)
		} else {
			e.warn("cannot encode redirect-to-VRF", "error", err)
		}
	}
	for _, o := range a.OtherEcoms {
		out = append(out, rawEcom(o))
	}
	return out
}

// rawEcom returns the GoBGP form of an extended community given as its 8
// wire bytes.
func rawEcom(v uint64) bgp.ExtendedCommunityInterface {
	b := binary.BigEndian.AppendUint64(nil, v)
	if ec, err := bgp.ParseExtended(b); err == nil {
		return ec
	}
	return &bgp.UnknownExtended{Type: bgp.ExtendedCommunityAttrType(b[0]), Value: b[1:]}
}

// redirectEcom converts a route target to the Flowspec redirect-to-VRF
// extended community of the same form (RFC 5575, RFC 7674).
func redirectEcom(rt route.RT) (bgp.ExtendedCommunityInterface, error) {
	switch t := rawEcom(uint64(rt)).(type) {
	case *bgp.TwoOctetAsSpecificExtended:
		return bgp.NewRedirectTwoOctetAsSpecificExtended(t.AS, t.LocalAdmin), nil
	case *bgp.IPv4AddressSpecificExtended:
		return bgp.NewRedirectIPv4AddressSpecificExtended(t.IPv4, t.LocalAdmin)
	case *bgp.FourOctetAsSpecificExtended:
		return bgp.NewRedirectFourOctetAsSpecificExtended(t.AS, t.LocalAdmin), nil
	}
	return nil, fmt.Errorf("route target %v has no redirect form", rt)
}

// rd returns the GoBGP form of rd.
func (e *encoder) rd(rd route.RD) bgp.RouteDistinguisherInterface {
	if x, ok := e.rds[rd]; ok {
		return x
	}
	x := bgp.GetRouteDistinguisher(binary.BigEndian.AppendUint64(nil, uint64(rd)))
	if len(e.rds) >= 4096 {
		clear(e.rds)
	}
	e.rds[rd] = x
	return x
}

// nlri converts a route to its GoBGP NLRI.
func (e *encoder) nlri(r *route.Route, withdraw bool) (bgp.NLRI, error) {
	n := &r.NLRI
	switch n.Family {
	case route.IPv4VPN:
		if !n.Prefix.Addr().Is4() {
			return nil, fmt.Errorf("VPNv4 prefix %v is not IPv4", n.Prefix)
		}
		label := r.Label & 0xfffff
		if withdraw {
			label = bgp.WITHDRAW_LABEL // RFC 8277 §2.4
		}
		return bgp.NewLabeledVPNIPAddrPrefix(n.Prefix.Masked(), bgp.MPLSLabelStack{Labels: []uint32{label}}, e.rd(n.RD))
	case route.EVPN:
		return e.evpn(r)
	case route.RTC:
		if n.Target == 0 {
			return bgp.NewRouteTargetMembershipNLRI(n.Origin, nil), nil
		}
		return bgp.NewRouteTargetMembershipNLRI(n.Origin, rawEcom(uint64(n.Target))), nil
	case route.FlowVPN:
		comps, err := flowComponents(n.Flow)
		if err != nil {
			return nil, err
		}
		return bgp.NewFlowSpecVPN(bgp.RF_FS_IPv4_VPN, e.rd(n.RD), comps)
	}
	return nil, fmt.Errorf("unsupported family %v", n.Family)
}

func (e *encoder) evpn(r *route.Route) (bgp.NLRI, error) {
	n := &r.NLRI
	switch n.Type {
	case route.EVPNMACIP:
		if r.Label > 0xffffff {
			return nil, fmt.Errorf("EVPN label %d does not fit 24 bits", r.Label)
		}
		mac := make(net.HardwareAddr, 6)
		copy(mac, n.MAC[:])
		rt := &bgp.EVPNMacIPAdvertisementRoute{
			RD:               e.rd(n.RD),
			ESI:              bgp.EthernetSegmentIdentifier{Type: bgp.ESI_ARBITRARY},
			ETag:             n.ETag,
			MacAddressLength: 48,
			MacAddress:       mac,
			Labels:           []uint32{r.Label}, // raw 24-bit field
		}
		if n.Prefix.IsValid() {
			rt.IPAddress = n.Prefix.Addr()
			rt.IPAddressLength = uint8(rt.IPAddress.BitLen())
		}
		return bgp.NewEVPNNLRI(bgp.EVPN_ROUTE_TYPE_MAC_IP_ADVERTISEMENT, rt), nil
	case route.EVPNMulticast:
		return bgp.NewEVPNMulticastEthernetTagRoute(e.rd(n.RD), n.ETag, n.Prefix.Addr())
	}
	return nil, fmt.Errorf("unsupported EVPN route type %d", n.Type)
}
