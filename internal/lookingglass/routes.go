package lookingglass

import (
	"fmt"
	"strconv"

	"bagpipe/internal/route"
)

// FlowText formats the Flow string of a FlowVPN NLRI (the flowspec rules,
// e.g. "destination-ipv4 10.0.0.0/24 protocol =tcp destination-port =80").
// The daemon sets it to the BGP package's formatter; the default shows the
// bytes in hex.
var FlowText = func(flow string) string { return fmt.Sprintf("%x", flow) }

// WorkersPath is the looking glass path of the workers collection: route
// sources are rendered as Refs to WorkersPath/<source name>.
const WorkersPath = "bgp/workers"

// RouteJSON returns the route dict of r (spec §4.4):
//
//	{"<nlri text>": {"afi-safi": "ipv4/mpls-vpn", "attributes": {...},
//	  "next_hop": "192.0.2.1", "source": Ref, "route_targets": [...]}}
//
// source is omitted when unknown, route_targets is only given for the
// ipv4/mpls-vpn and l2vpn/evpn families, attribute values are strings.
func RouteJSON(r *route.Route) map[string]any {
	body := map[string]any{
		"afi-safi":   r.NLRI.Family.String(),
		"attributes": attributeMap(r),
		"next_hop":   nextHop(r),
	}
	if r.Source != nil {
		body["source"] = SourceRef(r.Source)
	}
	if hasRouteTargets(r.NLRI.Family) {
		rts := make([]string, 0, len(r.RTs()))
		for _, rt := range r.RTs() {
			rts = append(rts, TargetText(rt))
		}
		body["route_targets"] = rts
	}
	return map[string]any{NLRIText(r): body}
}

// SourceRef returns the Ref of a route source: its worker object.
func SourceRef(s *route.Source) Ref {
	return Ref{ID: s.Name, Path: WorkersPath + "/" + s.Name}
}

func hasRouteTargets(f route.Family) bool { return f == route.IPv4VPN || f == route.EVPN }

func nextHop(r *route.Route) any {
	if !r.NextHop.IsValid() {
		return nil
	}
	return r.NextHop.String()
}

// route encodes r as RouteJSON(r) would be, without building the maps.
// The fragments that depend only on the (shared, immutable) attributes or
// source of a route are cached for the duration of the encoding.
func (e *encoder) route(r *route.Route) {
	if r == nil {
		e.raw("null")
		return
	}
	e.buf = append(e.buf, '{')
	e.scratch = AppendNLRI(e.scratch[:0], r)
	e.buf = appendString(e.buf, string(e.scratch))
	e.raw(`: {"afi-safi": "`)
	e.raw(r.NLRI.Family.String())
	e.raw(`", "attributes": `)
	e.buf = append(e.buf, e.attrsFragment(r)...)
	e.raw(`, "next_hop": `)
	if r.NextHop.IsValid() {
		e.buf = append(e.buf, '"')
		e.buf = r.NextHop.AppendTo(e.buf)
		e.buf = append(e.buf, '"')
	} else {
		e.raw("null")
	}
	if r.Source != nil {
		e.raw(`, "source": `)
		e.buf = append(e.buf, e.sourceFragment(r.Source)...)
	}
	if hasRouteTargets(r.NLRI.Family) {
		e.raw(`, "route_targets": `)
		e.buf = append(e.buf, e.targetsFragment(r.Attrs)...)
	}
	e.raw("}}")
}

// attrsKey identifies the attribute text of a route: its attributes and
// whether it was received (PMSI labels print differently).
type attrsKey struct {
	attrs    *route.Attrs
	received bool
}

// fragments caches encoded JSON fragments during one encoding.
type fragments struct {
	attrs   map[attrsKey][]byte
	targets map[*route.Attrs][]byte
	sources map[*route.Source][]byte
}

func (e *encoder) attrsFragment(r *route.Route) []byte {
	k := attrsKey{r.Attrs, received(r)}
	if f, ok := e.frags.attrs[k]; ok {
		return f
	}
	f := []byte{'{'}
	for i, a := range attributes(r) {
		if i > 0 {
			f = append(f, ',', ' ')
		}
		f = appendString(f, a.Key)
		f = append(f, ':', ' ')
		f = appendString(f, a.Value.(string))
	}
	f = append(f, '}')
	if e.frags.attrs == nil {
		e.frags.attrs = map[attrsKey][]byte{}
	}
	e.frags.attrs[k] = f
	return f
}

func (e *encoder) targetsFragment(a *route.Attrs) []byte {
	if f, ok := e.frags.targets[a]; ok {
		return f
	}
	f := []byte{'['}
	if a != nil {
		for i, rt := range a.RTs {
			if i > 0 {
				f = append(f, ',', ' ')
			}
			f = appendString(f, TargetText(rt))
		}
	}
	f = append(f, ']')
	if e.frags.targets == nil {
		e.frags.targets = map[*route.Attrs][]byte{}
	}
	e.frags.targets[a] = f
	return f
}

func (e *encoder) sourceFragment(src *route.Source) []byte {
	if f, ok := e.frags.sources[src]; ok {
		return f
	}
	ref := SourceRef(src)
	f := append([]byte(`{"id": `), appendString(nil, ref.ID)...)
	f = append(f, `, "href": `...)
	f = appendString(f, href(e.base, splitRefPath(ref.Path)))
	f = append(f, '}')
	if e.frags.sources == nil {
		e.frags.sources = map[*route.Source][]byte{}
	}
	e.frags.sources[src] = f
	return f
}

func received(r *route.Route) bool { return r.Source != nil && r.Source.Peer }

func attributeMap(r *route.Route) map[string]any {
	attrs := attributes(r)
	m := make(map[string]any, len(attrs))
	for _, a := range attrs {
		m[a.Key] = a.Value
	}
	return m
}

// attributes returns the looking glass attributes of r, in the key order
// of the output: "extended-community", "local-preference", "med",
// "pmsi-tunnel". ORIGIN and AS_PATH are never shown.
func attributes(r *route.Route) Dict {
	a := r.Attrs
	if a == nil {
		return nil
	}
	var d Dict
	if ec := ExtCommunitiesText(a); ec != "" {
		d = append(d, KV{"extended-community", ec})
	}
	if a.HasLocalPref {
		d = append(d, KV{"local-preference", strconv.FormatUint(uint64(a.LocalPref), 10)})
	}
	if a.HasMED {
		d = append(d, KV{"med", strconv.FormatUint(uint64(a.MED), 10)})
	}
	if a.PMSI != nil {
		d = append(d, KV{"pmsi-tunnel", PMSIText(a.PMSI, received(r))})
	}
	return d
}
