package vpn

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/engine"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/route"
)

// lgTimeout bounds how long a looking glass request waits for the engine.
const lgTimeout = 5 * time.Second

// LookingGlass implements lookingglass.Object for /looking-glass/vpns.
func (m *Manager) LookingGlass() []lookingglass.Entry {
	return []lookingglass.Entry{
		{Name: "instances", Kind: lookingglass.Collection,
			List: func() []lookingglass.Item {
				var items []lookingglass.Item
				for _, inst := range m.Instances() {
					fields := map[string]any{"name": inst.Name}
					inst.mu.Lock()
					if inst.description != nil {
						fields["description"] = *inst.description
					}
					inst.mu.Unlock()
					items = append(items, lookingglass.Item{ID: inst.ExternalID, Fields: fields})
				}
				return items
			},
			Lookup: func(id string) (lookingglass.Object, bool) {
				inst := m.Instance(id)
				return inst, inst != nil
			}},
		{Name: "dataplane", Kind: lookingglass.Delegate, Object: func() lookingglass.Object {
			return lookingglass.Entries{
				{Name: "drivers", Kind: lookingglass.Collection,
					List: func() []lookingglass.Item {
						var items []lookingglass.Item
						for _, t := range []dataplane.VPNType{dataplane.EVPN, dataplane.IPVPN} {
							if m.drivers[t] != nil {
								items = append(items, lookingglass.Item{ID: string(t)})
							}
						}
						return items
					},
					Lookup: func(id string) (lookingglass.Object, bool) {
						d := m.drivers[dataplane.VPNType(id)]
						if d == nil {
							return nil, false
						}
						return m.driverObject(d), true
					}},
				{Name: "ids", Kind: lookingglass.SubItem, Value: func() any {
					out := map[string]any{}
					for id, desc := range m.labels.InUse() {
						out[strconv.FormatUint(uint64(id), 10)] = desc
					}
					return out
				}},
			}
		}},
		{Name: "instances_per_vni", Kind: lookingglass.SubItem, Value: func() any {
			m.mu.Lock()
			defer m.mu.Unlock()
			out := map[string]any{}
			for vni, inst := range m.byVNI {
				out[strconv.FormatUint(uint64(vni), 10)] = map[string]any{"name": inst.Name, "external_instance_id": inst.ExternalID}
			}
			return out
		}},
	}
}

func kernelRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	rel, _, _ := strings.Cut(b.String(), "-")
	return rel
}

func (m *Manager) driverObject(d dataplane.Driver) lookingglass.Object {
	encaps := []string{}
	for _, e := range d.Encaps() {
		encaps = append(encaps, e.String())
	}
	vals := map[string]any{
		"name":             d.Name(),
		"local_address":    d.LocalAddress().String(),
		"supported_encaps": encaps,
		"config":           m.driverConfig[d.Type()],
		"kernel_release":   kernelRelease(),
	}
	for k, v := range d.LookingGlass() {
		vals[k] = v
	}
	return lookingglass.Entries(valueEntries(vals))
}

// valueEntries turns a map into constant entries, sorted by name.
func valueEntries(vals map[string]any) []lookingglass.Entry {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	entries := make([]lookingglass.Entry, 0, len(keys))
	for _, k := range keys {
		v := vals[k]
		entries = append(entries, lookingglass.Entry{Name: k, Kind: lookingglass.Value, Value: func() any { return v }})
	}
	return entries
}

func rtStrings(rts []route.RT) []string {
	out := make([]string, 0, len(rts))
	for _, rt := range rts {
		out = append(out, rt.Target())
	}
	return out
}

// LookingGlass implements lookingglass.Object for one instance.
func (inst *Instance) LookingGlass() []lookingglass.Entry {
	typ := "EVI"
	if inst.isVRF() {
		typ = "VRF"
	}
	value := func(name string, f func() any) lookingglass.Entry {
		return lookingglass.Entry{Name: name, Kind: lookingglass.Value, Value: f}
	}
	subtree := func(name string, f func() any) lookingglass.Entry {
		return lookingglass.Entry{Name: name, Kind: lookingglass.SubTree, Value: f}
	}
	entries := []lookingglass.Entry{
		value("name", func() any { return inst.Name }),
		{Name: "internals", Kind: lookingglass.SubItem, Value: func() any {
			return map[string]any{"event queue length": int(inst.pendingEvents()), "subscriptions": inst.subscriptions()}
		}},
		value("instance_type", func() any { return typ }),
		value("external_instance_id", func() any { return inst.ExternalID }),
		value("description", func() any {
			inst.mu.Lock()
			defer inst.mu.Unlock()
			if inst.description == nil {
				return nil
			}
			return *inst.description
		}),
		subtree("dataplane", func() any {
			out := map[string]any{"driver": lookingglass.Ref{ID: string(inst.Type), Path: "vpns/dataplane/drivers/" + string(inst.Type)}}
			inst.dpMu.Lock()
			for k, v := range inst.dp.LookingGlass() {
				out[k] = v
			}
			inst.dpMu.Unlock()
			return out
		}),
		{Name: "route_targets", Kind: lookingglass.SubItem, Value: func() any {
			inst.mu.Lock()
			defer inst.mu.Unlock()
			return map[string]any{"import": rtStrings(inst.importRTs), "export": rtStrings(inst.exportRTs)}
		}},
		value("gateway_ip", func() any {
			if !inst.gatewayIP.IsValid() {
				return nil
			}
			return inst.gatewayIP.String()
		}),
		value("subnet_prefix_length", func() any {
			if inst.prefixLen < 0 {
				return nil
			}
			return inst.prefixLen
		}),
		value("instance_dataplane_id", func() any { return inst.label }),
		subtree("ports", func() any { return inst.lgPorts() }),
		value("readvertise", func() any {
			if inst.readvertise == nil {
				return map[string]any{}
			}
			return map[string]any{"from": rtStrings(inst.readvertise.FromRTs), "to": rtStrings(inst.readvertise.ToRTs)}
		}),
		value("attract_traffic", func() any {
			at := inst.attract
			if at == nil || inst.steer == nil || !inst.steer.attract {
				return map[string]any{} // absent or inactive (spec §6.8)
			}
			var static any
			if prefixes := staticPrefixes(at); prefixes != nil {
				ps := []string{}
				for _, p := range prefixes {
					ps = append(ps, p.String())
				}
				static = ps
			}
			// "to" is the effective to_rt, as the reference shows it.
			return map[string]any{"redirect_rts": rtStrings(at.RedirectRTs), "classifier": at.Classifier,
				"to": rtStrings(inst.steer.toRTs), "static_destination_prefixes": static}
		}),
		value("fallback", func() any {
			inst.mu.Lock()
			defer inst.mu.Unlock()
			if inst.fallback == nil {
				return nil
			}
			return *inst.fallback
		}),
		subtree("received_routes", func() any { return inst.lgTracked(false) }),
		subtree("best_routes", func() any { return inst.lgTracked(true) }),
		subtree("adv_routes", func() any { return inst.lgAdvertised() }),
		subtree("logs", func() any {
			if inst.m.logs == nil {
				return []any{}
			}
			return inst.m.logs(inst.Name)
		}),
	}
	if inst.isVRF() {
		entries = append(entries, subtree("readvertised", inst.lgReadvertised))
	} else {
		entries = append(entries, value("gateway_port", inst.lgGatewayPort))
	}
	return entries
}

func (inst *Instance) subscriptions() []string {
	ctx, cancel := context.WithTimeout(context.Background(), lgTimeout)
	defer cancel()
	var subs []engine.Match
	_ = inst.m.eng.Inspect(ctx, func(v engine.View) { subs = v.Subscriptions(inst) })
	out := make([]string, 0, len(subs))
	for _, m := range subs {
		out = append(out, m.String())
	}
	slices.Sort(out)
	return out
}

func (inst *Instance) lgPorts() any {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	out := map[string]any{}
	for _, ep := range inst.endpoints {
		ifname := ep.mac.port.LinuxIf
		p, _ := out[ifname].(map[string]any)
		if p == nil {
			p = map[string]any{"endpoints": []any{}}
			out[ifname] = p
		}
		var ip, lp any
		if ep.ipString != "" {
			ip = ep.ipString
		}
		if ep.localPref != nil {
			lp = *ep.localPref
		}
		var rd any
		if ep.route != nil {
			rd = ep.rd.String()
		}
		p["endpoints"] = append(p["endpoints"].([]any), map[string]any{
			"label": ep.mac.label, "mac_address": ep.key.mac.String(), "ip_address": ip,
			"local_pref": lp, "rd": rd, "description": ep.description, "direction": string(ep.direction),
		})
	}
	return out
}

// entryText formats a tracked destination as the reference's keys.
func (k entryKey) text() string {
	switch {
	case k.family == route.IPv4VPN:
		return "'" + k.prefix.String() + "'"
	case k.family == route.FlowVPN:
		return fmt.Sprintf("('Flow', '%s')", lookingglass.FlowText(k.flow))
	case k.typ == route.EVPNMACIP && k.prefix.IsValid():
		return fmt.Sprintf("('MAC', ('%s', '%s'))", k.mac, k.prefix.Addr())
	case k.typ == route.EVPNMACIP:
		return fmt.Sprintf("('MAC', '%s')", k.mac)
	default:
		return fmt.Sprintf("('Multicast', ('%s', '%s'))", k.prefix.Addr(), k.rd)
	}
}

// lgTracked snapshots the tracker (candidates or best routes) by pointer
// under the read lock and formats outside it.
func (inst *Instance) lgTracked(best bool) any {
	type snap struct {
		key    string
		routes []*route.Route
	}
	var snaps []snap
	inst.trMu.RLock()
	for e := range inst.tracker.entries.All() {
		k := entryDestination(e)
		list := e.candidates
		if best {
			list = e.best
		}
		snaps = append(snaps, snap{k.text(), slices.Clone(list)})
	}
	inst.trMu.RUnlock()
	out := make(map[string]any, len(snaps))
	for _, s := range snaps {
		routes := make([]any, 0, len(s.routes))
		for _, r := range s.routes {
			routes = append(routes, lookingglass.RouteJSON(r))
		}
		out[s.key] = routes
	}
	return out
}

func (inst *Instance) lgAdvertised() any {
	ctx, cancel := context.WithTimeout(context.Background(), lgTimeout)
	defer cancel()
	var rs []*route.Route
	_ = inst.m.eng.Inspect(ctx, func(v engine.View) { rs = v.RoutesOf(inst) })
	lookingglass.SortRoutes(rs)
	out := make([]any, 0, len(rs))
	for _, r := range rs {
		out = append(out, lookingglass.RouteJSON(r))
	}
	return out
}

// lgReadvertised lists the received routes the VRF re-advertises.
func (inst *Instance) lgReadvertised() any {
	out := []any{}
	if inst.steer == nil {
		return out
	}
	rs := inst.steer.readvertised() // pointers, formatted outside the lock
	lookingglass.SortRoutes(rs)
	for _, r := range rs {
		out = append(out, lookingglass.RouteJSON(r))
	}
	return out
}
