package vpn

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// canonicalPort returns a comparable form of a local_port object.
func canonicalPort(p *dataplane.LocalPort) string {
	if p.Raw != nil {
		b, _ := json.Marshal(p.Raw) // map keys are sorted: canonical
		return string(b)
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// advertisedPrefix is the prefix of the route of an endpoint: the host
// address unless advertise_subnet asks for the whole prefix.
func advertisedPrefix(ip netip.Prefix, advertiseSubnet bool) netip.Prefix {
	if !ip.IsValid() {
		return ip
	}
	if advertiseSubnet {
		return ip.Masked()
	}
	return netip.PrefixFrom(ip.Addr(), ip.Addr().BitLen())
}

// plug adds an endpoint (spec §6.3). It validates everything before any
// side effect, and undoes its own side effects when a later step fails.
func (inst *Instance) plug(ctx context.Context, req *AttachRequest) error {
	if err := inst.checkPlug(req); err != nil {
		return err
	}
	key := epKey{mac: req.MAC, ip: req.IP}
	adv := advertisedPrefix(req.IP, req.AdvertiseSubnet)
	ms := inst.macs[req.MAC]
	portJSON := canonicalPort(req.LocalPort)
	old := inst.endpoints[key]
	// An IP-less plug of a MAC that already has endpoints only refreshes them.
	refresh := old != nil || (!req.IP.IsValid() && ms != nil)
	if refresh && old == nil {
		inst.readvertiseMAC(ms)
		return nil
	}

	// Side effects from here on; undo on failure.
	var undo []func()
	fail := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	newMAC := ms == nil
	if newMAC {
		desc := fmt.Sprintf("Incoming traffic for %s, interface %s, endpoint (%s, %s)", inst.Name, req.LocalPort.LinuxIf, req.MACString, req.IPString)
		label, err := inst.m.labels.Allocate(desc, req.Hints.portLabel())
		if err != nil {
			return err
		}
		ms = &macState{port: req.LocalPort, portJSON: portJSON, label: label, lbOrder: req.LBHashOrder}
		undo = append(undo, func() { inst.m.labels.Release(label) })
	}
	ep := old
	if ep == nil {
		ep = &endpoint{key: key, ipString: req.IPString, mac: ms, direction: req.Direction}
		dpEP := inst.dpEndpoint(ep)
		inst.dpMu.Lock()
		err := inst.dp.VIFPlugged(ctx, dpEP)
		inst.dpMu.Unlock()
		if err != nil {
			return fail(fmt.Errorf("dataplane plug of %s failed: %w", req.LocalPort.LinuxIf, err))
		}
		undo = append(undo, func() {
			inst.dpMu.Lock()
			_ = inst.dp.VIFUnplugged(ctx, dpEP, newMAC)
			inst.dpMu.Unlock()
		})
		// An endpoint has its own RD unless its route is a host route with
		// the instance RD; in a VRF that re-advertises routes, each
		// endpoint needs its own for its re-advertisements (steering.go).
		if ep.direction.ToPortAllowed() && (!adv.IsValid() || adv.Bits() != adv.Addr().BitLen() || inst.steer != nil) {
			n, err := inst.m.rds.Allocate(fmt.Sprintf("%s endpoint %s %s", inst.Name, req.MACString, req.IPString), req.Hints.endpointRD())
			if err != nil {
				return fail(err)
			}
			ep.rd, ep.ownRD = route.NewRDIP(inst.m.bgpAddr, uint16(n)), true
			undo = append(undo, func() { inst.m.rds.Release(n) })
		} else {
			ep.rd = inst.rd
		}
	}
	lpChanged := old != nil && !sameLocalPref(old.localPref, req.LocalPref)
	if lpChanged && inst.steer != nil {
		inst.steer.setLocalPref(ep, req.LocalPref) // read by the instance goroutine
	} else {
		ep.localPref = req.LocalPref
	}
	ep.description = req.Description

	// Commit.
	if newMAC {
		inst.macs[req.MAC] = ms
	}
	if old == nil {
		ms.endpoints++
		inst.endpoints[key] = ep
		if adv.IsValid() && adv.Bits() == adv.Addr().BitLen() {
			inst.ipOwner[adv.Addr()] = req.MAC
		}
		// A plug with an IP replaces the IP-less endpoint of the MAC.
		if req.IP.IsValid() {
			if wild := inst.endpoints[epKey{mac: req.MAC}]; wild != nil {
				inst.forget(wild)
			}
		}
	}
	if ep.direction.ToPortAllowed() {
		prev := ep.route
		ep.route = inst.endpointRoute(ep, adv)
		var evs []route.Event
		if len(inst.exportRTs) > 0 {
			if prev != nil && prev.NLRI != ep.route.NLRI {
				// A refresh changing advertise_subnet: not two routes.
				evs = append(evs, route.Event{Kind: route.Withdraw, Route: prev})
			}
			evs = append(evs, route.Event{Kind: route.Advertise, Route: ep.route})
		}
		switch {
		case inst.steer != nil:
			inst.steer.ownRoutes(evs, []*endpoint{ep}, len(inst.exportRTs) > 0)
			if old == nil {
				inst.steer.addEndpoint(ep)
			} else if lpChanged {
				inst.steer.updateEndpoint(ep)
			}
		case len(evs) > 0:
			inst.m.eng.Publish(inst, evs)
		}
	}
	return nil
}

func sameLocalPref(a, b *uint32) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// steerRD is the RD of the routes an endpoint carries for re-advertised
// prefixes and attracted traffic.
func (ep *endpoint) steerRD() route.RD { return ep.rd }

// checkPlug validates a plug against the instance state, with no side effect.
func (inst *Instance) checkPlug(req *AttachRequest) error {
	adv := advertisedPrefix(req.IP, req.AdvertiseSubnet)
	if !inst.isVRF() && adv.IsValid() && adv.Bits() != adv.Addr().BitLen() {
		return BadRequest("advertise_subnet: an E-VPN MAC/IP route carries a host address, not the prefix %s", req.IPString)
	}
	ms := inst.macs[req.MAC]
	if ms != nil {
		if portJSON := canonicalPort(req.LocalPort); ms.portJSON != portJSON {
			return BadRequest("Port information is not consistent. MAC address cannot be bound to two different ports. Previous plug for port %s (%s != %s)",
				req.LocalPort.LinuxIf, ms.portJSON, portJSON)
		}
	}
	if adv.IsValid() && adv.Bits() == adv.Addr().BitLen() {
		if owner, ok := inst.ipOwner[adv.Addr()]; ok && owner != req.MAC {
			return BadRequest("Inconsistent endpoint info: IP %s already bound to a MAC address different from %s", req.IPString, req.MACString)
		}
	}
	refresh := inst.endpoints[epKey{mac: req.MAC, ip: req.IP}] != nil || (!req.IP.IsValid() && ms != nil)
	if !refresh {
		if err := inst.driver.ValidateDirection(req.Direction); err != nil {
			return BadRequest("%v", err)
		}
	}
	return nil
}

// readvertiseMAC regenerates the routes of a MAC's endpoints.
func (inst *Instance) readvertiseMAC(ms *macState) {
	var evs []route.Event
	for _, ep := range inst.endpoints {
		if ep.mac == ms && ep.route != nil && len(inst.exportRTs) > 0 {
			evs = append(evs, route.Event{Kind: route.Advertise, Route: ep.route})
		}
	}
	if len(evs) > 0 {
		inst.m.eng.Publish(inst, evs)
	}
}

// forget drops an endpoint record and withdraws its route, without touching
// the dataplane (used when an IP endpoint replaces the IP-less one).
func (inst *Instance) forget(ep *endpoint) {
	if ep.route != nil {
		inst.m.eng.Publish(inst, []route.Event{{Kind: route.Withdraw, Route: ep.route}})
	}
	if ep.ownRD {
		inst.m.rds.Release(uint32(uint16(ep.rd)))
	}
	ep.mac.endpoints--
	delete(inst.endpoints, ep.key)
}

func (inst *Instance) dpEndpoint(ep *endpoint) dataplane.Endpoint {
	label := ep.mac.label
	if !inst.isVRF() {
		label = inst.label
	}
	return dataplane.Endpoint{MAC: ep.key.mac, IP: ep.key.ip, Port: ep.mac.port, Label: label, Direction: ep.direction}
}

// unplug removes one endpoint (spec §6.4).
func (inst *Instance) unplug(ctx context.Context, ep *endpoint) error {
	last := ep.mac.endpoints == 1
	inst.dpMu.Lock()
	err := inst.dp.VIFUnplugged(ctx, inst.dpEndpoint(ep), last)
	inst.dpMu.Unlock()
	if err != nil {
		return fmt.Errorf("dataplane unplug of %s failed: %w", ep.mac.port.LinuxIf, err)
	}
	if ep.route != nil {
		inst.m.eng.Publish(inst, []route.Event{{Kind: route.Withdraw, Route: ep.route}})
	}
	if inst.steer != nil {
		inst.steer.removeEndpoint(ep)
	}
	if ep.ownRD {
		inst.m.rds.Release(uint32(uint16(ep.rd)))
	}
	if ep.key.ip.IsValid() && inst.ipOwner[ep.key.ip.Addr()] == ep.key.mac {
		if !slices.ContainsFunc(inst.endpointsOfIP(ep.key.ip.Addr()), func(o *endpoint) bool { return o != ep }) {
			delete(inst.ipOwner, ep.key.ip.Addr())
		}
	}
	delete(inst.endpoints, ep.key)
	ep.mac.endpoints--
	if ep.mac.endpoints == 0 {
		inst.m.labels.Release(ep.mac.label)
		delete(inst.macs, ep.key.mac)
	}
	return nil
}

func (inst *Instance) endpointsOfIP(a netip.Addr) []*endpoint {
	var out []*endpoint
	for _, ep := range inst.endpoints {
		if ep.key.ip.IsValid() && ep.key.ip.Addr() == a {
			out = append(out, ep)
		}
	}
	return out
}

// detach applies a detach request (spec §3.8).
func (inst *Instance) detach(ctx context.Context, req *DetachRequest) error {
	if req.IPString == "" {
		if inst.isVRF() {
			return BadRequest("Missing parameter: 'ip_address'")
		}
		// Wildcard: every endpoint of the MAC, the IP-less one last.
		var eps []*endpoint
		for _, ep := range inst.endpoints {
			if ep.key.mac == req.MAC {
				eps = append(eps, ep)
			}
		}
		slices.SortFunc(eps, func(a, b *endpoint) int {
			if a.key.ip.IsValid() != b.key.ip.IsValid() {
				if a.key.ip.IsValid() {
					return -1
				}
				return 1
			}
			return a.key.ip.Addr().Compare(b.key.ip.Addr())
		})
		for _, ep := range eps {
			if err := inst.unplug(ctx, ep); err != nil {
				return err
			}
		}
		return nil
	}
	ep := inst.endpoints[epKey{mac: req.MAC, ip: req.IP}]
	if ep == nil {
		if owner, ok := inst.ipOwner[req.IP.Addr()]; ok && owner != req.MAC {
			return BadRequest("Inconsistent endpoint info: IP %s already bound to a MAC address different from %s", req.IPString, req.MACString)
		}
		return BadRequest("Endpoint ('%s', '%s') not plugged yet, can't unplug", req.MACString, req.IPString)
	}
	return inst.unplug(ctx, ep)
}

// endpointRoute builds the route advertised for an endpoint.
func (inst *Instance) endpointRoute(ep *endpoint, adv netip.Prefix) *route.Route {
	attrs := &route.Attrs{
		RTs:          slices.Clone(inst.exportRTs),
		Encaps:       inst.encaps,
		HasLocalPref: true,
		LocalPref:    100,
	}
	if ep.localPref != nil {
		attrs.LocalPref = *ep.localPref
	}
	nh := inst.driver.LocalAddress()
	if inst.isVRF() {
		if ep.mac.lbOrder != 0 {
			attrs.HashOrder, attrs.HasHashOrder = ep.mac.lbOrder, true
		}
		rd := ep.rd
		if adv.Bits() == adv.Addr().BitLen() {
			rd = inst.rd // host routes carry the instance RD (spec §6.3)
		}
		return &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: rd, Prefix: adv},
			Label:   ep.mac.label,
			NextHop: nh,
			Attrs:   attrs,
		}
	}
	n := route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: ep.rd, MAC: ep.key.mac}
	if adv.IsValid() {
		n.Prefix = adv
	}
	return &route.Route{NLRI: n, Label: inst.evpnLabelField(), NextHop: nh, Attrs: attrs}
}

// evpnLabelField is the label field of the EVI's routes: the raw VNI with
// VXLAN (RFC 8365), an MPLS label otherwise.
func (inst *Instance) evpnLabelField() uint32 {
	if slices.Contains(inst.driver.Encaps(), route.EncapVXLAN) {
		return inst.label
	}
	return inst.label<<4 | 1
}

// advertiseIMET publishes the EVI's inclusive multicast route with the
// current export RTs (the reference kept the creation-time RTs).
func (inst *Instance) advertiseIMET() {
	attrs := &route.Attrs{
		RTs:    slices.Clone(inst.exportRTs),
		Encaps: inst.encaps,
		PMSI:   &route.PMSI{Type: route.PMSIIngressReplication, Label: inst.evpnLabelField(), Endpoint: inst.driver.LocalAddress()},
	}
	inst.imet = &route.Route{
		NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: inst.rd, Prefix: netip.PrefixFrom(inst.m.bgpAddr, 32)},
		NextHop: inst.driver.LocalAddress(),
		Attrs:   attrs,
	}
	kind := route.Advertise
	if len(inst.exportRTs) == 0 {
		kind = route.Withdraw
	}
	inst.m.eng.Publish(inst, []route.Event{{Kind: kind, Route: inst.imet}})
}

// updateRTs replaces the import and export RTs (spec §3.7).
func (inst *Instance) updateRTs(imports, exports []route.RT) {
	var added, removed []route.RT
	for _, rt := range imports {
		if !slices.Contains(inst.importRTs, rt) {
			added = append(added, rt)
		}
	}
	for _, rt := range inst.importRTs {
		if !slices.Contains(imports, rt) {
			removed = append(removed, rt)
		}
	}
	inst.importRTs = slices.Clone(imports)
	inst.subscribeRTs(added)
	inst.unsubscribeRTs(removed)
	if sameRTs(exports, inst.exportRTs) {
		return
	}
	inst.exportRTs = slices.Clone(exports)
	var evs []route.Event
	var eps []*endpoint
	for _, ep := range inst.endpoints {
		if ep.route == nil {
			continue
		}
		eps = append(eps, ep)
		if len(exports) == 0 {
			evs = append(evs, route.Event{Kind: route.Withdraw, Route: ep.route})
			continue
		}
		ep.route = inst.endpointRoute(ep, ep.route.NLRI.Prefix)
		evs = append(evs, route.Event{Kind: route.Advertise, Route: ep.route})
	}
	switch {
	case inst.steer != nil:
		// Re-advertisements give way to the endpoints' own routes.
		inst.steer.ownRoutes(evs, eps, len(exports) > 0)
	case len(evs) > 0:
		inst.m.eng.Publish(inst, evs)
	}
	if !inst.isVRF() {
		inst.advertiseIMET()
	}
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
