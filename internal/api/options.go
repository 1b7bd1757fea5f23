package api

import (
	"math"
	"net/netip"
	"slices"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

// maxVNI is the largest VXLAN network identifier (24 bits).
const maxVNI = 1<<24 - 1

// parseReadvertise parses readvertise: null or {} is none; otherwise both
// from_rt and to_rt are required.
func parseReadvertise(p params) (*vpn.Readvertise, error) {
	v, ok := p.present("readvertise")
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, vpn.BadRequest("'readvertise' must be an object, not %s", jsonKind(v))
	}
	if len(m) == 0 {
		return nil, nil
	}
	rp := params(m)
	to, ok := rp.present("to_rt")
	if !ok {
		return nil, vpn.BadRequest("'readvertise' specified with no 'to_rt'")
	}
	from, ok := rp.present("from_rt")
	if !ok {
		return nil, vpn.BadRequest("'readvertise' specified with no 'from_rt'")
	}
	r := &vpn.Readvertise{}
	var err error
	if r.FromRTs, err = rtList("readvertise/from_rt", from); err != nil {
		return nil, err
	}
	if r.ToRTs, err = rtList("readvertise/to_rt", to); err != nil {
		return nil, err
	}
	return r, nil
}

// parseAttractTraffic parses attract_traffic (spec §6.8). It is only active
// with readvertise or attract_traffic/to_rt; otherwise it is ignored (nil),
// like the reference does, once its shape is checked.
func parseAttractTraffic(p params, rdv *vpn.Readvertise) (*vpn.AttractTraffic, error) {
	v, ok := p.present("attract_traffic")
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, vpn.BadRequest("'attract_traffic' must be an object, not %s", jsonKind(v))
	}
	if len(m) == 0 {
		return nil, nil
	}
	ap := params(m)
	at := &vpn.AttractTraffic{}
	var err error
	rv, ok := ap.present("redirect_rts")
	if !ok {
		return nil, vpn.BadRequest("'attract_traffic' specified with no 'redirect_rts'")
	}
	if at.RedirectRTs, err = rtList("attract_traffic/redirect_rts", rv); err != nil {
		return nil, err
	}
	if len(at.RedirectRTs) == 0 {
		return nil, vpn.BadRequest("attract_traffic/redirect_rts: at least one route target is required")
	}
	if tv, ok := ap.present("to_rt"); ok {
		if at.ToRTs, err = rtList("attract_traffic/to_rt", tv); err != nil {
			return nil, err
		}
	}
	if sv, ok := ap.present("static_destination_prefixes"); ok {
		if at.StaticDestinationPrefixes, err = prefixList("attract_traffic/static_destination_prefixes", sv); err != nil {
			return nil, err
		}
	}
	if rdv == nil && len(at.ToRTs) == 0 {
		return nil, nil // inactive
	}
	toRTs := at.ToRTs
	if len(at.ToRTs) > 0 {
		if rdv != nil && !sameRTs(at.ToRTs, rdv.ToRTs) {
			return nil, vpn.BadRequest("if both are set, then 'attract_traffic/to_rt' and 'readvertise/to_rt' have to be equal")
		}
		if !ap.has("static_destination_prefixes") {
			return nil, vpn.BadRequest("'attract_traffic/to_rt' specified without 'static_destination_prefixes'")
		}
	} else {
		toRTs = rdv.ToRTs
	}
	if len(toRTs) != 1 {
		return nil, vpn.BadRequest("attract_traffic requires exactly one RT to be provided in 'readvertise/to_rt' and 'attract_traffic/to_rt'")
	}
	cv, ok := ap.present("classifier")
	if !ok {
		return nil, vpn.BadRequest("'attract_traffic' specified with no 'classifier'")
	}
	if at.Classifier, ok = cv.(map[string]any); !ok {
		return nil, vpn.BadRequest("attract_traffic/classifier: must be an object, not %s", jsonKind(cv))
	}
	if at.Match, err = parseClassifier(at.Classifier); err != nil {
		return nil, err
	}
	return at, nil
}

func sameRTs(a, b []route.RT) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// prefixList parses a list of IPv4 prefixes (an address alone is a host
// prefix).
func prefixList(field string, v any) ([]netip.Prefix, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, vpn.BadRequest("%s: must be a list of prefixes, not %s", field, jsonKind(v))
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		pfx, ok := parseIP(s)
		if !ok || !pfx.Addr().Is4() {
			return nil, vpn.BadRequest("%s: %s is not a valid IPv4 prefix", field, display(x))
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// parseOptions parses the optional attach parameters.
func parseOptions(p params, req *vpn.AttachRequest) error {
	vni, _, err := p.optUint("vni", maxVNI)
	if err != nil {
		return err
	}
	req.VNI = uint32(vni)
	lp, given, err := p.optUint("local_pref", math.MaxUint32)
	if err != nil {
		return err
	}
	if given {
		v := uint32(lp)
		req.LocalPref = &v
	}
	order, _, err := p.optUint("lb_consistent_hash_order", math.MaxUint32)
	if err != nil {
		return err
	}
	req.LBHashOrder = uint32(order)
	if req.LinuxBridge, err = p.optString("linuxbr"); err != nil {
		return err
	}
	req.Description = p["description"]
	if v, ok := p.present("instance_description"); ok {
		s, ok := v.(string)
		if !ok {
			return vpn.BadRequest("'instance_description' must be a string, not %s", jsonKind(v))
		}
		req.InstanceDesc = &s
	}
	req.Fallback, err = parseFallback(p)
	return err
}

// parseFallback parses fallback: null or {} is none; otherwise src_mac,
// dst_mac and ovs_port_number are required.
func parseFallback(p params) (*dataplane.Fallback, error) {
	v, ok := p.present("fallback")
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, vpn.BadRequest("'fallback' must be an object, not %s", jsonKind(v))
	}
	if len(m) == 0 {
		return nil, nil
	}
	fp := params(m)
	f := &dataplane.Fallback{}
	for _, mac := range []struct {
		key string
		dst *string
	}{{"src_mac", &f.SrcMAC}, {"dst_mac", &f.DstMAC}} {
		s, ok := fp[mac.key].(string)
		if !ok {
			return nil, vpn.BadRequest("fallback: '%s' must be a MAC address string", mac.key)
		}
		if _, err := route.ParseMAC(s); err != nil {
			return nil, vpn.BadRequest("fallback: %s: MAC address %s is not valid", mac.key, s)
		}
		*mac.dst = s
	}
	n, ok := intValue(fp["ovs_port_number"])
	if !ok || n < 0 {
		return nil, vpn.BadRequest("fallback: 'ovs_port_number' must be a non-negative integer")
	}
	f.OVSPortNumber = n
	return f, nil
}
