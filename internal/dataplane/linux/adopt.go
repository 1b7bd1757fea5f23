package linux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// Adoption of the kernel state of restored instances (dataplane.Adopter):
// after a restart with a state directory, the daemon restores its
// instances with the same external ids and VNIs; their bridge and VXLAN
// device (found by our alias) are reused as they are, with their entries,
// so that traffic keeps flowing. The entries found are "adopted": an
// entry a route confirms (SetupRemote, AddBUM) or a plug confirms
// (VIFPlugged) becomes a normal one; SweepAdopted, once the initial BGP
// exchange is over, removes the others.

var _ dataplane.Adopter = (*Driver)(nil)

// adoptedState is what an instance found in the kernel and no call
// confirmed yet.
type adoptedState struct {
	fdb       map[route.MAC]fdbRef     // VXLAN FDB entry towards a VTEP
	bridgeFDB map[route.MAC]bool       // static bridge FDB entry towards the VXLAN port
	bum       map[bumKey]bool          // flooding entries
	neigh     map[netip.Addr]route.MAC // permanent neighbour entries (ARP suppression)
	local     map[localKey]bool        // static bridge FDB entries of local ports
	ports     map[string]bool          // ports on our bridge
	gateways  map[string]bool          // gateway ports set since (SetGatewayPort)
}

func (a *adoptedState) size() int {
	return len(a.fdb) + len(a.bridgeFDB) + len(a.bum) + len(a.neigh) + len(a.local)
}

// KeepForAdoption implements dataplane.Adopter.
func (d *Driver) KeepForAdoption(externalIDs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keep = map[string]bool{}
	for _, id := range externalIDs {
		d.keep[alias(id)] = true
	}
}

// kept reports whether a link alias is that of an instance to adopt (d.mu
// held).
func (d *Driver) kept(linkAlias string) bool { return d.keep[linkAlias] }

// SweepAdopted implements dataplane.Adopter.
func (d *Driver) SweepAdopted(ctx context.Context) error {
	d.mu.Lock()
	insts := make([]*Instance, 0, len(d.live))
	for inst := range d.live {
		insts = append(insts, inst)
	}
	hadKeep := d.keep != nil
	d.keep = nil
	d.mu.Unlock()
	var errs []error
	for _, inst := range insts {
		errs = append(errs, inst.sweepAdopted())
	}
	if hadKeep {
		// Links kept for instances that were not restored.
		errs = append(errs, d.ResetState(ctx))
	}
	return errors.Join(errs...)
}

// adoptExisting takes over the links an earlier run left for this
// instance, if it is to be adopted and they fit (same VNI, local address
// and port, VXLAN device on the bridge). It reports whether it did; when
// they do not fit they are deleted, and the caller creates new ones (d.mu
// held).
func (i *Instance) adoptExisting() (bool, error) {
	d, nl := i.d, i.d.nl
	want := alias(i.cfg.ExternalID)
	if !d.kept(want) {
		return false, nil
	}
	links, err := nl.LinkList()
	if err != nil {
		return false, fmt.Errorf("listing links: %w", err)
	}
	var br, ourBr netlink.Link
	var vx *netlink.Vxlan
	for _, l := range links {
		if l.Attrs().Alias != want || d.inUse[l.Attrs().Name] {
			continue
		}
		switch v := l.(type) {
		case *netlink.Bridge:
			ourBr = l
		case *netlink.Vxlan:
			vx = v
		}
	}
	br = ourBr
	if name := i.cfg.LinuxBridge; name != "" {
		if br, err = nl.LinkByName(name); err != nil || br.Type() != "bridge" {
			br = nil
		}
	}
	why := ""
	switch {
	case vx == nil:
		why = "no VXLAN device of ours"
	case br == nil:
		why = "no bridge"
	case vx.VxlanId != int(i.cfg.Label):
		why = fmt.Sprintf("VNI %d, the instance has %d", vx.VxlanId, i.cfg.Label)
	case !sameIP(vx.SrcAddr, d.cfg.LocalAddress):
		why = fmt.Sprintf("local address %s, the dataplane has %s", vx.SrcAddr, d.cfg.LocalAddress)
	case d.cfg.VXLANPort != 0 && vx.Port != d.cfg.VXLANPort:
		why = fmt.Sprintf("port %d, the dataplane has %d", vx.Port, d.cfg.VXLANPort)
	case vx.Proxy != d.cfg.VXLANProxy:
		why = "another ARP suppression mode"
	case vx.Attrs().MasterIndex != br.Attrs().Index:
		why = "VXLAN device not on the bridge"
	}
	if why != "" {
		if vx != nil || ourBr != nil {
			i.log.Warn("links left by the earlier run do not fit the restored instance: replacing them", "reason", why)
		}
		if vx != nil {
			_ = d.deleteLink(vx, "that could not be adopted")
		}
		if ourBr != nil && i.cfg.LinuxBridge == "" {
			_ = d.deleteLink(ourBr, "that could not be adopted")
		}
		return false, nil
	}
	i.bridgeName, i.bridgeIdx, i.ownBridge = br.Attrs().Name, br.Attrs().Index, i.cfg.LinuxBridge == ""
	i.vxlanName, i.vxlanIdx, i.ownVXLAN, i.mtu = vx.Attrs().Name, vx.Attrs().Index, true, vx.Attrs().MTU
	// What create() sets, in case the earlier run died half-way.
	if i.ownBridge {
		if err := nl.LinkSetUp(br); err != nil {
			return false, fmt.Errorf("setting bridge %s up: %w", i.bridgeName, err)
		}
	}
	if !d.cfg.VXLANProxy {
		if err := nl.LinkSetBrNeighSuppress(vx, true); err != nil {
			return false, fmt.Errorf("setting neigh_suppress on %s: %w", i.vxlanName, err)
		}
	}
	if err := nl.LinkSetUp(vx); err != nil {
		return false, fmt.Errorf("setting %s up: %w", i.vxlanName, err)
	}
	a, err := i.readEntries(links)
	if err != nil {
		return false, err
	}
	i.adopted = a
	i.log.Info("E-VPN dataplane adopted from the earlier run", "bridge", i.bridgeName, "vxlan", i.vxlanName,
		"bridge_ifindex", i.bridgeIdx, "vxlan_ifindex", i.vxlanIdx, "remote_macs", len(a.fdb), "flooding", len(a.bum),
		"neighbours", len(a.neigh), "local_macs", len(a.local), "ports", len(a.ports))
	return true, nil
}

func sameIP(ip net.IP, a netip.Addr) bool {
	b, ok := netip.AddrFromSlice(ip)
	return ok && b.Unmap() == a.Unmap()
}

// readEntries lists the entries of the instance's links.
func (i *Instance) readEntries(links []netlink.Link) (*adoptedState, error) {
	nl := i.d.nl
	a := &adoptedState{
		fdb: map[route.MAC]fdbRef{}, bridgeFDB: map[route.MAC]bool{}, bum: map[bumKey]bool{},
		neigh: map[netip.Addr]route.MAC{}, local: map[localKey]bool{}, ports: map[string]bool{}, gateways: map[string]bool{},
	}
	entries, err := nl.NeighList(i.vxlanIdx, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("FDB of %s: %w", i.vxlanName, err)
	}
	for _, e := range entries {
		if e.LinkIndex != i.vxlanIdx || len(e.HardwareAddr) != 6 {
			continue
		}
		var mac route.MAC
		copy(mac[:], e.HardwareAddr)
		switch {
		case e.IP != nil: // VXLAN FDB: towards a remote VTEP
			pe, ok := netip.AddrFromSlice(e.IP)
			if !ok {
				continue
			}
			vni := uint32(e.VNI)
			if vni == 0 { // the kernel omits the device's own VNI
				vni = i.cfg.Label
			}
			if mac == (route.MAC{}) {
				a.bum[bumKey{pe: pe.Unmap(), vni: vni}] = true
			} else {
				a.fdb[mac] = fdbRef{pe: pe.Unmap(), vni: vni}
			}
		case isBridgeStatic(e):
			a.bridgeFDB[mac] = true
		}
	}
	// Neighbour entries of the remote MACs (ARP suppression).
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ns, err := nl.NeighList(i.neighDevice(), fam)
		if err != nil {
			return nil, fmt.Errorf("neighbours of %s: %w", i.bridgeName, err)
		}
		for _, n := range ns {
			if n.State&netlink.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
				continue
			}
			var mac route.MAC
			copy(mac[:], n.HardwareAddr)
			ip, ok := netip.AddrFromSlice(n.IP)
			if _, remote := a.fdb[mac]; ok && (remote || a.bridgeFDB[mac]) {
				a.neigh[ip.Unmap()] = mac
			}
		}
	}
	// Local ports on a bridge of ours, and their static MAC entries.
	if !i.ownBridge {
		return a, nil
	}
	for _, l := range links {
		at := l.Attrs()
		if at.MasterIndex != i.bridgeIdx || at.Index == i.vxlanIdx {
			continue
		}
		a.ports[at.Name] = true
		entries, err := nl.NeighList(at.Index, unix.AF_BRIDGE)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.LinkIndex == at.Index && isBridgeStatic(e) && len(e.HardwareAddr) == 6 {
				var mac route.MAC
				copy(mac[:], e.HardwareAddr)
				a.local[localKey{mac: mac, port: at.Name}] = true
			}
		}
	}
	return a, nil
}

// isBridgeStatic reports whether e is a static bridge FDB entry (what we
// add), not a local (permanent) or learned one.
func isBridgeStatic(e netlink.Neigh) bool {
	master := e.Flags&netlink.NTF_MASTER != 0 || e.MasterIndex != 0
	return master && e.IP == nil && e.State&netlink.NUD_NOARP != 0 && e.State&netlink.NUD_PERMANENT == 0
}

// Confirmations (i.mu held): the call installs or keeps the entry itself.

func (i *Instance) confirmRemote(r dataplane.Remote) {
	if a := i.adopted; a != nil {
		delete(a.fdb, r.MAC)
		delete(a.bridgeFDB, r.MAC)
		if r.Prefix.IsValid() {
			delete(a.neigh, r.Prefix.Addr())
		}
	}
}

// confirmBUM reports whether the flooding entry is already there.
func (i *Instance) confirmBUM(k bumKey) bool {
	if a := i.adopted; a != nil && a.bum[k] {
		delete(a.bum, k)
		return true
	}
	return false
}

func (i *Instance) confirmLocal(k localKey) {
	if a := i.adopted; a != nil {
		delete(a.local, k)
	}
}

func (i *Instance) confirmGateway(port string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if a := i.adopted; a != nil {
		a.gateways[port] = true
	}
}

// sweepAdopted removes the adopted entries nothing confirmed.
func (i *Instance) sweepAdopted() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	a := i.adopted
	i.adopted = nil
	if a == nil || i.cleaning {
		return nil
	}
	nl := i.d.nl
	var errs []error
	del := func(n *netlink.Neigh, what string) {
		if err := ignoreGone(nl.NeighDel(n)); err != nil {
			errs = append(errs, fmt.Errorf("removing stale %s: %w", what, err))
		}
	}
	removed := 0
	for mac, ref := range a.fdb {
		if _, ok := i.fdb[mac]; !ok {
			del(i.vxlanEntry(hw(mac), ref.pe, ref.vni), "VXLAN FDB entry "+mac.String())
			removed++
		}
	}
	for mac := range a.bridgeFDB {
		if _, ok := i.fdb[mac]; !ok {
			del(i.bridgeEntry(mac), "bridge FDB entry "+mac.String())
			removed++
		}
	}
	for k := range a.bum {
		if i.bum[k] == 0 {
			del(i.vxlanEntry(zeroMAC, k.pe, k.vni), "flooding entry "+k.pe.String())
			removed++
		}
	}
	for ip, mac := range a.neigh {
		if _, ok := i.neigh[ip]; !ok {
			del(i.neighEntry(ip, mac), "neighbour entry "+ip.String())
			removed++
		}
	}
	for k := range a.local {
		if i.local[k] > 0 {
			continue
		}
		if l, err := nl.LinkByName(k.port); err == nil {
			del(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER,
				State: netlink.NUD_NOARP, HardwareAddr: hw(k.mac)}, "local FDB entry "+k.mac.String())
			removed++
		}
	}
	var ports []string
	for p := range a.ports {
		if i.ports[p] == 0 && !a.gateways[p] {
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	for _, p := range ports {
		if l, err := nl.LinkByName(p); err == nil && l.Attrs().MasterIndex == i.bridgeIdx {
			if err := ignoreGone(nl.LinkSetNoMaster(l)); err != nil {
				errs = append(errs, fmt.Errorf("removing %s from bridge %s: %w", p, i.bridgeName, err))
			}
		}
	}
	i.log.Info("adopted E-VPN dataplane entries swept", "removed", removed, "ports_released", len(ports))
	return errors.Join(errs...)
}
