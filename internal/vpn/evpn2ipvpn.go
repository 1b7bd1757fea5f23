package vpn

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"

	"bagpipe/internal/dataplane"
)

// E-VPN ↔ IP VPN linkage (spec §6.9, "evpn2ipvpn"): an IP VPN attach whose
// local_port is {"evpn": {"id": <EVI external id>}} plugs the E-VPN
// instance into the VRF. By default ("managed"), a veth pair is created:
// evpn<EVI id>-ipvpn<VRF id> goes into the EVI (its dataplane's gateway
// port: the Linux driver adds it to the EVI bridge) and
// ipvpn<VRF id>-evpn<EVI id> is the VRF's port for the endpoint of the
// request (the VM's MAC and IP on the E-VPN). With evpn.ovs_port_name
// ("unmanaged"), that existing port is the EVI side and the VRF uses the
// pre-plugged OVS port of local_port.ovs.
//
// One VRF links at most one EVI and the other way round. The link goes
// when the VRF no longer has an endpoint on its port (detach), and at
// daemon stop.

// evpnLink is an EVI plugged into a VRF.
type evpnLink struct {
	evi     *Instance
	vrf     *Instance
	evpnIf  string // EVI side: the gateway port
	ipvpnIf string // VRF side: the endpoints' linuxif
	managed bool   // veth pair created by us
}

// evpnLinks are the links of a manager, by VRF.
type evpnLinks struct {
	mu    sync.Mutex // serialises link changes
	byVRF map[*Instance]*evpnLink
}

func (m *Manager) links() *evpnLinks {
	m.linksOnce.Do(func() { m.evpnLinks = &evpnLinks{byVRF: map[*Instance]*evpnLink{}} })
	return m.evpnLinks
}

// linkOf returns the link an EVI is the E-VPN side of, or nil.
func (l *evpnLinks) linkOf(evi *Instance) *evpnLink {
	for _, k := range l.byVRF {
		if k.evi == evi {
			return k
		}
	}
	return nil
}

// vethNames returns the managed veth pair names (the reference's, when
// they fit in an interface name).
func vethNames(eviID, vrfID uint32) (string, string, error) {
	e, i := fmt.Sprintf("evpn%d-ipvpn%d", eviID, vrfID), fmt.Sprintf("ipvpn%d-evpn%d", vrfID, eviID)
	if len(e) > 15 {
		e, i = fmt.Sprintf("e%d-i%d", eviID, vrfID), fmt.Sprintf("i%d-e%d", vrfID, eviID)
	}
	if len(e) > 15 {
		return "", "", fmt.Errorf("instance ids %d and %d too large for veth names", eviID, vrfID)
	}
	return e, i, nil
}

// createVeth creates the veth pair (deleting stale ones first), both ends
// up. The reference gives them MTU 65535; we keep the default MTU: with
// 65535, Open vSwitch's userspace datapath (3.1) hands on corrupted frames
// received on the VRF side, and the E-VPN bridge's MTU bounds the traffic
// anyway.
func createVeth(evpnIf, ipvpnIf string) error {
	deleteLink(evpnIf)
	deleteLink(ipvpnIf)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: evpnIf}, PeerName: ipvpnIf}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth pair %s/%s: %w", evpnIf, ipvpnIf, err)
	}
	for _, name := range []string{evpnIf, ipvpnIf} {
		l, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			deleteLink(evpnIf)
			return fmt.Errorf("setting %s up: %w", name, err)
		}
	}
	return nil
}

func deleteLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}

func isEVPNDataplane(dp dataplane.Instance) bool {
	_, ok := dp.(dataplane.EVPNInstance)
	return ok
}

// validateEVPNPort checks an E-VPN local port against the request alone.
func validateEVPNPort(req *AttachRequest) error {
	lp := req.LocalPort
	if req.VPNType != dataplane.IPVPN {
		return BadRequest("local_port.evpn: only an IP VPN attachment can plug an E-VPN (vpn_type is %s)", req.VPNType)
	}
	if lp.EVPN.ID == "" {
		return BadRequest("local_port.evpn: missing parameter 'id': the external id of an E-VPN instance must be given")
	}
	if lp.LinuxIf != "" {
		return BadRequest("local_port: cannot specify an attachment with both a linuxif and an evpn")
	}
	if lp.EVPN.OVSPortName != "" && (lp.OVS == nil || !lp.OVS.Plugged || (lp.OVS.PortName == "" && lp.OVS.PortNumber == nil)) {
		return BadRequest("local_port.evpn: using ovs_port_name requires the corresponding pre-plugged OVS port (local_port.ovs with plugged and port_name or port_number)")
	}
	return nil
}

// attachEVPN applies an IP VPN attach whose local port is an E-VPN: every
// client mistake is found before any side effect; a later failure undoes
// what the request did.
func (m *Manager) attachEVPN(ctx context.Context, req *AttachRequest) error {
	if err := validateEVPNPort(req); err != nil {
		return err
	}
	lp := req.LocalPort
	links := m.links()
	links.mu.Lock()
	defer links.mu.Unlock()

	m.mu.Lock()
	evi := m.instances[lp.EVPN.ID]
	vrf := m.instances[req.InstanceID]
	var err error
	switch {
	case evi == nil:
		err = BadRequest("local_port.evpn.id: the specified E-VPN instance does not exist (%s)", lp.EVPN.ID)
	case evi.Type != dataplane.EVPN:
		err = BadRequest("local_port.evpn.id: the specified instance to plug is not an E-VPN instance (%s is of type %s)", lp.EVPN.ID, evi.Type)
	case vrf != nil && vrf.Type != dataplane.IPVPN:
		err = BadRequest("vpn_type: found an existing vpn_instance with external id %s but a different type (%s)", req.InstanceID, vrf.Type)
	}
	var link *evpnLink
	if err == nil && vrf != nil {
		link = links.byVRF[vrf]
	}
	if err == nil && link != nil && link.evi != evi {
		err = BadRequest("local_port.evpn.id: trying to plug E-VPN %s into IP VPN %s, which already has E-VPN %s plugged in", lp.EVPN.ID, req.InstanceID, link.evi.ExternalID)
	}
	if err == nil && link == nil {
		if other := links.linkOf(evi); other != nil {
			err = BadRequest("local_port.evpn.id: E-VPN %s is already plugged into IP VPN %s", lp.EVPN.ID, other.vrf.ExternalID)
		}
	}
	if err == nil && !isEVPNDataplane(evi.dp) {
		err = BadRequest("local_port.evpn.id: the dataplane of E-VPN %s cannot take a gateway port", lp.EVPN.ID)
	}
	if err != nil {
		m.mu.Unlock()
		return err
	}
	evi.pending++ // the EVI stays while we link it
	m.mu.Unlock()
	defer m.release(ctx, evi)

	inst, err := m.acquire(ctx, req)
	if err != nil {
		return err
	}
	defer m.release(ctx, inst)

	r := *req
	port := *lp
	r.LocalPort = &port
	if link = links.byVRF[inst]; link != nil {
		m.log.Warn("plugging an E-VPN into an IP VPN already done", "evpn", evi.ExternalID, "ipvpn", inst.ExternalID)
		port.LinuxIf = link.ipvpnIf
		return inst.attach(ctx, &r)
	}

	link = &evpnLink{evi: evi, vrf: inst, managed: lp.EVPN.OVSPortName == ""}
	if link.managed {
		if link.evpnIf, link.ipvpnIf, err = vethNames(evi.ID, inst.ID); err != nil {
			return err
		}
		port.LinuxIf = link.ipvpnIf
	} else {
		link.evpnIf = lp.EVPN.OVSPortName
		link.ipvpnIf = lp.OVS.PortName
	}
	// The plug's own checks, before creating anything.
	inst.mu.Lock()
	err = inst.checkPlug(&r)
	inst.mu.Unlock()
	if err != nil {
		return err
	}
	if link.managed {
		if err := createVeth(link.evpnIf, link.ipvpnIf); err != nil {
			return err
		}
	}
	undoVeth := func() {
		if link.managed {
			deleteLink(link.evpnIf)
		}
	}
	eviDP := evi.dp.(dataplane.EVPNInstance)
	evi.dpMu.Lock()
	err = eviDP.SetGatewayPort(ctx, link.evpnIf, inst.gatewayIP)
	evi.dpMu.Unlock()
	if err != nil {
		undoVeth()
		return fmt.Errorf("plugging %s into E-VPN %s: %w", link.evpnIf, evi.ExternalID, err)
	}
	if err := inst.attach(ctx, &r); err != nil {
		evi.dpMu.Lock()
		_ = eviDP.GatewayPortDown(ctx, link.evpnIf)
		evi.dpMu.Unlock()
		undoVeth()
		return err
	}
	links.byVRF[inst] = link
	m.log.Info("E-VPN plugged into IP VPN", "evpn", evi.ExternalID, "ipvpn", inst.ExternalID, "evpn_if", link.evpnIf, "ipvpn_if", link.ipvpnIf)
	return nil
}

// unlinkUnused removes the link of a VRF once it has no endpoint left on
// its port (after a detach).
func (m *Manager) unlinkUnused(ctx context.Context, vrf *Instance) {
	if vrf.Type != dataplane.IPVPN {
		return
	}
	links := m.links()
	links.mu.Lock()
	defer links.mu.Unlock()
	link := links.byVRF[vrf]
	if link == nil {
		return
	}
	vrf.mu.Lock()
	used := false
	for _, ep := range vrf.endpoints {
		if ep.mac.port.LinuxIf == link.ipvpnIf || ep.mac.port.EVPN != nil {
			used = true
		}
	}
	vrf.mu.Unlock()
	if used {
		return
	}
	if err := link.down(ctx); err != nil {
		m.log.Error("unplugging E-VPN from IP VPN", "evpn", link.evi.ExternalID, "ipvpn", vrf.ExternalID, "err", err)
	}
	delete(links.byVRF, vrf)
}

// down takes the gateway port out of the EVI and deletes a managed veth.
func (l *evpnLink) down(ctx context.Context) error {
	var errs []error
	if dp, ok := l.evi.dp.(dataplane.EVPNInstance); ok {
		l.evi.dpMu.Lock()
		errs = append(errs, dp.GatewayPortDown(ctx, l.evpnIf))
		l.evi.dpMu.Unlock()
	}
	if l.managed {
		deleteLink(l.evpnIf)
	}
	return errors.Join(errs...)
}

// stopEVPNLinks deletes the veth pairs of every link (daemon stop, after
// the instances stopped).
func (m *Manager) stopEVPNLinks() {
	links := m.links()
	links.mu.Lock()
	defer links.mu.Unlock()
	for vrf, l := range links.byVRF {
		if l.managed {
			deleteLink(l.evpnIf)
		}
		delete(links.byVRF, vrf)
	}
}

// lgGatewayPort is the EVI looking glass "gateway_port".
func (inst *Instance) lgGatewayPort() any {
	links := inst.m.links()
	links.mu.Lock()
	defer links.mu.Unlock()
	l := links.linkOf(inst)
	if l == nil {
		return nil
	}
	return map[string]any{
		"interface": "'" + l.evpnIf + "'",
		"ipvpn": map[string]any{
			"id":                   l.vrf.Name,
			"external_instance_id": l.vrf.ExternalID,
		},
	}
}
