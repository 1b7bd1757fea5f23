package bgp

import "github.com/osrg/gobgp/v4/pkg/packet/bgp"

// acceptedAsIs reports whether GoBGP's bgp.ValidateUpdateMsg, called as
// session.decode calls it (iBGP, no confederation, loopback next hops
// allowed, every family of the UPDATE available), would accept u without
// error and without changing it. It only says yes for the common, clean
// UPDATE of the VPN families — each attribute once, valid ORIGIN, ORIGIN
// and AS_PATH present with MP_REACH, no IPv4 unicast NLRI or NEXT_HOP, no
// FlowSpec, no LARGE_COMMUNITY, no unknown well-known attribute — and lets
// the validator judge everything else. This skips the validator's map and
// slice allocations for the UPDATEs route reflectors send by the
// thousand; TestAcceptedAsIsAgreesWithGoBGP and FuzzAcceptedAsIs check the
// claim against the validator.
func acceptedAsIs(u *bgp.BGPUpdate) bool {
	if len(u.NLRI) > 0 || len(u.WithdrawnRoutes) > 0 {
		return false
	}
	var seen [4]uint64 // attribute types seen
	reach := false
	for _, a := range u.PathAttributes {
		t := a.GetType()
		if seen[t/64]&(1<<(t%64)) != 0 {
			return false // duplicate: the validator drops it or resets the session
		}
		seen[t/64] |= 1 << (t % 64)
		switch a := a.(type) {
		case *bgp.PathAttributeOrigin:
			if a.Value > bgp.BGP_ORIGIN_ATTR_TYPE_INCOMPLETE {
				return false
			}
		case *bgp.PathAttributeMpReachNLRI:
			if flowspec(bgp.NewFamily(a.AFI, a.SAFI)) {
				return false
			}
			reach = true
		case *bgp.PathAttributeMpUnreachNLRI:
			if flowspec(bgp.NewFamily(a.AFI, a.SAFI)) {
				return false
			}
		case *bgp.PathAttributeAsPath, *bgp.PathAttributeLocalPref, *bgp.PathAttributeMultiExitDisc,
			*bgp.PathAttributeExtendedCommunities, *bgp.PathAttributeCommunities, *bgp.PathAttributeOriginatorId,
			*bgp.PathAttributeClusterList, *bgp.PathAttributePmsiTunnel:
		default:
			return false // NEXT_HOP, LARGE_COMMUNITY, unknown attributes...: ask the validator
		}
	}
	has := func(t bgp.BGPAttrType) bool { return seen[t/64]&(1<<(t%64)) != 0 }
	return !reach || (has(bgp.BGP_ATTR_TYPE_ORIGIN) && has(bgp.BGP_ATTR_TYPE_AS_PATH))
}

func flowspec(f bgp.Family) bool {
	switch f {
	case bgp.RF_FS_IPv4_UC, bgp.RF_FS_IPv6_UC, bgp.RF_FS_IPv4_VPN, bgp.RF_FS_IPv6_VPN, bgp.RF_FS_L2_VPN:
		return true
	}
	return false
}
