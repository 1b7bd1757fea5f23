package linux

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// in6AddrGenModeNone stops the kernel from giving our links an IPv6
// link-local address (and so from sending DAD and router solicitations
// into the tunnel).
const in6AddrGenModeNone = 1

// Instance is the dataplane of one E-VPN instance.
type Instance struct {
	d   *Driver
	cfg dataplane.InstanceConfig
	log *slog.Logger

	bridgeName, vxlanName string
	bridgeIdx, vxlanIdx   int
	ownBridge, ownVXLAN   bool
	mtu                   int

	mu       sync.Mutex
	cleaning bool
	adopted  *adoptedState          // entries found at creation, not confirmed yet (adopt.go)
	ports    map[string]int         // linuxif -> endpoints plugged on it
	local    map[localKey]int       // local MAC on a port -> endpoints
	fdb      map[route.MAC][]fdbRef // remote MAC -> destinations, the last one installed
	neigh    map[netip.Addr][]neighRef
	bum      map[bumKey]int
}

type localKey struct {
	mac  route.MAC
	port string
}

type fdbRef struct {
	pe   netip.Addr
	vni  uint32
	refs int
}

type neighRef struct {
	mac  route.MAC
	refs int
}

type bumKey struct {
	pe  netip.Addr
	vni uint32
}

var _ dataplane.EVPNInstance = (*Instance)(nil)

func newInstance(d *Driver, cfg dataplane.InstanceConfig) *Instance {
	return &Instance{
		d:     d,
		cfg:   cfg,
		log:   d.log.With("worker", fmt.Sprintf("EVI-%d", cfg.ID), "instance", cfg.ExternalID),
		ports: map[string]int{},
		local: map[localKey]int{},
		fdb:   map[route.MAC][]fdbRef{},
		neigh: map[netip.Addr][]neighRef{},
		bum:   map[bumKey]int{},
	}
}

// create sets up the bridge and the VXLAN device (d.mu held). On failure
// nothing it created is left.
func (i *Instance) create() (err error) {
	d, nl := i.d, i.d.nl
	var undo []func()
	defer func() {
		if err != nil {
			for j := len(undo) - 1; j >= 0; j-- {
				undo[j]()
			}
		}
	}()
	if adopted, err := i.adoptExisting(); adopted || err != nil {
		return err
	}
	var br netlink.Link
	if name := i.cfg.LinuxBridge; name != "" {
		if br, err = nl.LinkByName(name); err != nil {
			return fmt.Errorf("linuxbr %s: %w", name, err)
		}
		if br.Type() != "bridge" {
			return fmt.Errorf("linuxbr %s is a %s, not a bridge", name, br.Type())
		}
		i.bridgeName, i.bridgeIdx = name, br.Attrs().Index
		if vx := i.vxlanPortOf(br); vx != nil {
			i.vxlanName, i.vxlanIdx, i.mtu = vx.Attrs().Name, vx.Attrs().Index, vx.Attrs().MTU
			i.log.Info("reusing the VXLAN port of the bridge", "bridge", name, "vxlan", i.vxlanName, "vni", i.cfg.Label)
			return nil
		}
	}
	bname, vname, err := chooseNames(i.cfg.ExternalID, i.cfg.LinuxBridge, d.taken)
	if err != nil {
		return err
	}
	if br == nil {
		// A MAC of our own: a bridge left to pick the lowest MAC of its
		// ports changes address when ports come and go, and the kernel
		// then flushes its neighbour entries, permanent ones included.
		b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bname, HardwareAddr: randomMAC(0x02)}}
		if err := nl.LinkAdd(b); err != nil {
			return fmt.Errorf("creating bridge %s: %w", bname, err)
		}
		i.bridgeName, i.ownBridge = bname, true
		undo = append(undo, func() { _ = nl.LinkDel(b) })
		if br, err = nl.LinkByName(bname); err != nil {
			return fmt.Errorf("bridge %s: %w", bname, err)
		}
		i.bridgeIdx = br.Attrs().Index
		if err := nl.LinkSetAlias(br, alias(i.cfg.ExternalID)); err != nil {
			return fmt.Errorf("setting the alias of %s: %w", bname, err)
		}
		_ = nl.LinkSetIP6AddrGenMode(br, in6AddrGenModeNone)
		if err := nl.LinkSetUp(br); err != nil {
			return fmt.Errorf("setting bridge %s up: %w", bname, err)
		}
	}
	mtu, found := d.vxlanMTU()
	if !found {
		i.log.Warn("no interface holds the local address: VXLAN MTU computed for a 1500-byte underlay",
			"local_address", d.cfg.LocalAddress.String(), "mtu", mtu)
	}
	vx := &netlink.Vxlan{
		// fe:..., above any usual port MAC: adding or removing our port
		// never changes the address of a linuxbr bridge (which would
		// flush its neighbour entries).
		LinkAttrs: netlink.LinkAttrs{Name: vname, MTU: mtu, HardwareAddr: randomMAC(0xfe)},
		VxlanId:   int(i.cfg.Label),
		SrcAddr:   d.cfg.LocalAddress.AsSlice(),
		Learning:  false,
		Proxy:     d.cfg.VXLANProxy,
		Port:      d.cfg.VXLANPort,
	}
	if err := nl.LinkAdd(vx); err != nil {
		return fmt.Errorf("creating VXLAN device %s (VNI %d): %w", vname, i.cfg.Label, err)
	}
	i.vxlanName, i.ownVXLAN, i.mtu = vname, true, mtu
	undo = append(undo, func() { _ = nl.LinkDel(vx) })
	l, err := nl.LinkByName(vname)
	if err != nil {
		return fmt.Errorf("VXLAN device %s: %w", vname, err)
	}
	i.vxlanIdx = l.Attrs().Index
	if err := nl.LinkSetAlias(l, alias(i.cfg.ExternalID)); err != nil {
		return fmt.Errorf("setting the alias of %s: %w", vname, err)
	}
	_ = nl.LinkSetIP6AddrGenMode(l, in6AddrGenModeNone)
	if err := nl.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("adding %s to bridge %s: %w", vname, i.bridgeName, err)
	}
	if !d.cfg.VXLANProxy {
		if err := nl.LinkSetBrNeighSuppress(l, true); err != nil {
			return fmt.Errorf("setting neigh_suppress on %s: %w", vname, err)
		}
	}
	if err := nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", vname, err)
	}
	return nil
}

// vxlanPortOf returns the VXLAN port of br whose VNI is the instance's, if
// any.
func (i *Instance) vxlanPortOf(br netlink.Link) netlink.Link {
	links, err := i.d.nl.LinkList()
	if err != nil {
		return nil
	}
	for _, l := range links {
		if vx, ok := l.(*netlink.Vxlan); ok && l.Attrs().MasterIndex == br.Attrs().Index && vx.VxlanId == int(i.cfg.Label) {
			return l
		}
	}
	return nil
}

// randomMAC returns a random unicast MAC starting with first (which must
// be a locally administered unicast byte).
func randomMAC(first byte) net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	_, _ = rand.Read(m)
	m[0] = first
	return m
}

func hw(m route.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// ignoreGone turns "no such entry / device" errors of deletions into nil.
func ignoreGone(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
		return nil
	}
	return err
}

// --- local endpoints ---

// VIFPlugged puts the port on a bridge of ours and sends the endpoint's
// MAC to it.
func (i *Instance) VIFPlugged(_ context.Context, ep dataplane.Endpoint) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if ep.Port == nil || ep.Port.LinuxIf == "" {
		return errors.New("local_port: no linuxif given")
	}
	name := ep.Port.LinuxIf
	nl := i.d.nl
	l, err := nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("port %s: %w", name, err)
	}
	enslaved := false
	if i.ownBridge && l.Attrs().MasterIndex != i.bridgeIdx {
		if err := nl.LinkSetMasterByIndex(l, i.bridgeIdx); err != nil {
			return fmt.Errorf("adding %s to bridge %s: %w", name, i.bridgeName, err)
		}
		enslaved = true
		l.Attrs().MasterIndex = i.bridgeIdx
	}
	undo := func() {
		if enslaved && i.ports[name] == 0 {
			_ = nl.LinkSetNoMaster(l)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := nl.LinkSetUp(l); err != nil {
			undo()
			return fmt.Errorf("setting %s up: %w", name, err)
		}
	}
	if l.Attrs().MTU > i.mtu && i.mtu > 0 {
		i.log.Debug("port MTU above the VXLAN MTU: the VM interface MTU must not exceed it",
			"port", name, "port_mtu", l.Attrs().MTU, "vxlan_mtu", i.mtu)
	}
	k := localKey{mac: ep.MAC, port: name}
	i.confirmLocal(k)
	if i.local[k] == 0 && l.Attrs().MasterIndex == i.bridgeIdx {
		err := nl.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_MASTER, State: netlink.NUD_NOARP, HardwareAddr: hw(ep.MAC)})
		if err != nil {
			undo()
			return fmt.Errorf("bridge FDB entry %s on %s: %w", ep.MAC, name, err)
		}
	}
	i.local[k]++
	i.ports[name]++
	i.log.Debug("vif plugged", "port", name, "mac", ep.MAC.String(), "ip", ep.IP.String())
	return nil
}

// VIFUnplugged removes the endpoint's MAC entry and, with the last
// endpoint of the port, takes the port off a bridge of ours.
func (i *Instance) VIFUnplugged(_ context.Context, ep dataplane.Endpoint, _ bool) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if ep.Port == nil || ep.Port.LinuxIf == "" {
		return nil
	}
	name := ep.Port.LinuxIf
	k := localKey{mac: ep.MAC, port: name}
	if i.local[k] == 0 {
		i.log.Debug("vif unplugged but not plugged", "port", name, "mac", ep.MAC.String())
		return nil
	}
	nl := i.d.nl
	l, lerr := nl.LinkByName(name)
	var errs []error
	if i.local[k]--; i.local[k] == 0 {
		delete(i.local, k)
		if lerr == nil && l.Attrs().MasterIndex == i.bridgeIdx {
			err := nl.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
				Flags: netlink.NTF_MASTER, State: netlink.NUD_NOARP, HardwareAddr: hw(ep.MAC)})
			if err = ignoreGone(err); err != nil {
				errs = append(errs, fmt.Errorf("removing bridge FDB entry %s on %s: %w", ep.MAC, name, err))
			}
		}
	}
	if i.ports[name]--; i.ports[name] == 0 {
		delete(i.ports, name)
		if i.ownBridge && lerr == nil && l.Attrs().MasterIndex == i.bridgeIdx {
			if err := ignoreGone(nl.LinkSetNoMaster(l)); err != nil {
				errs = append(errs, fmt.Errorf("removing %s from bridge %s: %w", name, i.bridgeName, err))
			}
		}
	}
	i.log.Debug("vif unplugged", "port", name, "mac", ep.MAC.String(), "ip", ep.IP.String())
	return errors.Join(errs...)
}

// --- remote endpoints ---

func (i *Instance) vxlanEntry(mac net.HardwareAddr, pe netip.Addr, vni uint32) *netlink.Neigh {
	return &netlink.Neigh{LinkIndex: i.vxlanIdx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		State: netlink.NUD_PERMANENT, HardwareAddr: mac, IP: pe.AsSlice(), VNI: int(vni)}
}

func (i *Instance) bridgeEntry(mac route.MAC) *netlink.Neigh {
	return &netlink.Neigh{LinkIndex: i.vxlanIdx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER,
		State: netlink.NUD_NOARP, HardwareAddr: hw(mac)}
}

// neighDevice is where the neighbour entries go: the bridge device, whose
// table neigh_suppress reads (the VXLAN device in the reference's proxy
// mode).
func (i *Instance) neighDevice() int {
	if i.d.cfg.VXLANProxy {
		return i.vxlanIdx
	}
	return i.bridgeIdx
}

func (i *Instance) neighEntry(ip netip.Addr, mac route.MAC) *netlink.Neigh {
	fam := netlink.FAMILY_V4
	if !ip.Is4() {
		fam = netlink.FAMILY_V6
	}
	return &netlink.Neigh{LinkIndex: i.neighDevice(), Family: fam, State: netlink.NUD_PERMANENT,
		IP: ip.AsSlice(), HardwareAddr: hw(mac)}
}

// installMAC points the remote MAC to a VTEP, in the VXLAN FDB and in the
// bridge FDB (towards the VXLAN port).
func (i *Instance) installMAC(mac route.MAC, pe netip.Addr, vni uint32) error {
	if err := i.d.nl.NeighSet(i.vxlanEntry(hw(mac), pe, vni)); err != nil {
		return fmt.Errorf("VXLAN FDB entry %s dst %s vni %d: %w", mac, pe, vni, err)
	}
	if err := i.d.nl.NeighSet(i.bridgeEntry(mac)); err != nil {
		return fmt.Errorf("bridge FDB entry %s on %s: %w", mac, i.vxlanName, err)
	}
	return nil
}

func (i *Instance) uninstallMAC(mac route.MAC, pe netip.Addr, vni uint32) error {
	err1 := ignoreGone(i.d.nl.NeighDel(i.vxlanEntry(hw(mac), pe, vni)))
	err2 := ignoreGone(i.d.nl.NeighDel(i.bridgeEntry(mac)))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("removing FDB entries of %s: %w", mac, err)
	}
	return nil
}

// SetupRemote installs the FDB entry of a remote MAC (and the neighbour
// entry of its IP, if any).
func (i *Instance) SetupRemote(_ context.Context, r dataplane.Remote) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cleaning {
		return nil
	}
	i.confirmRemote(r)
	refs := i.fdb[r.MAC]
	n := slices.IndexFunc(refs, func(f fdbRef) bool { return f.pe == r.PE && f.vni == r.Label })
	if n >= 0 {
		refs[n].refs++
	} else {
		if err := i.installMAC(r.MAC, r.PE, r.Label); err != nil {
			return err
		}
		i.fdb[r.MAC] = append(refs, fdbRef{pe: r.PE, vni: r.Label, refs: 1})
	}
	i.log.Debug("remote MAC set up", "mac", r.MAC.String(), "pe", r.PE.String(), "vni", r.Label, "ip", r.Prefix.String())
	if !r.Prefix.IsValid() {
		return nil
	}
	ip := r.Prefix.Addr()
	nrefs := i.neigh[ip]
	m := slices.IndexFunc(nrefs, func(x neighRef) bool { return x.mac == r.MAC })
	if m >= 0 {
		nrefs[m].refs++
		return nil
	}
	if err := i.d.nl.NeighSet(i.neighEntry(ip, r.MAC)); err != nil {
		return fmt.Errorf("neighbour entry %s lladdr %s: %w", ip, r.MAC, err)
	}
	i.neigh[ip] = append(nrefs, neighRef{mac: r.MAC, refs: 1})
	return nil
}

// RemoveRemote removes what SetupRemote installed once nothing else uses
// it, putting back an older destination of the MAC if there is one.
func (i *Instance) RemoveRemote(_ context.Context, r dataplane.Remote) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cleaning {
		return nil
	}
	var errs []error
	if r.Prefix.IsValid() {
		errs = append(errs, i.releaseNeigh(r.Prefix.Addr(), r.MAC))
	}
	refs := i.fdb[r.MAC]
	n := slices.IndexFunc(refs, func(f fdbRef) bool { return f.pe == r.PE && f.vni == r.Label })
	if n < 0 {
		i.log.Debug("remote MAC removed but not set up", "mac", r.MAC.String(), "pe", r.PE.String(), "vni", r.Label)
		return errors.Join(errs...)
	}
	if refs[n].refs--; refs[n].refs > 0 {
		return errors.Join(errs...)
	}
	active := n == len(refs)-1
	refs = slices.Delete(refs, n, n+1)
	switch {
	case len(refs) == 0:
		delete(i.fdb, r.MAC)
		errs = append(errs, i.uninstallMAC(r.MAC, r.PE, r.Label))
	case active:
		i.fdb[r.MAC] = refs
		prev := refs[len(refs)-1]
		errs = append(errs, i.installMAC(r.MAC, prev.pe, prev.vni))
	default:
		i.fdb[r.MAC] = refs
	}
	i.log.Debug("remote MAC removed", "mac", r.MAC.String(), "pe", r.PE.String(), "vni", r.Label)
	return errors.Join(errs...)
}

func (i *Instance) releaseNeigh(ip netip.Addr, mac route.MAC) error {
	nrefs := i.neigh[ip]
	m := slices.IndexFunc(nrefs, func(x neighRef) bool { return x.mac == mac })
	if m < 0 {
		return nil
	}
	if nrefs[m].refs--; nrefs[m].refs > 0 {
		return nil
	}
	active := m == len(nrefs)-1
	nrefs = slices.Delete(nrefs, m, m+1)
	switch {
	case len(nrefs) == 0:
		delete(i.neigh, ip)
		if err := ignoreGone(i.d.nl.NeighDel(i.neighEntry(ip, mac))); err != nil {
			return fmt.Errorf("removing neighbour entry %s: %w", ip, err)
		}
	case active:
		i.neigh[ip] = nrefs
		if err := i.d.nl.NeighSet(i.neighEntry(ip, nrefs[len(nrefs)-1].mac)); err != nil {
			return fmt.Errorf("neighbour entry %s: %w", ip, err)
		}
	default:
		i.neigh[ip] = nrefs
	}
	return nil
}

// AddBUM appends a flooding entry towards a remote VTEP.
func (i *Instance) AddBUM(_ context.Context, pe netip.Addr, vni uint32, _ []route.Encap) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cleaning {
		return nil
	}
	k := bumKey{pe: pe, vni: vni}
	if i.bum[k] == 0 && !i.confirmBUM(k) {
		if err := i.d.nl.NeighAppend(i.vxlanEntry(zeroMAC, pe, vni)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("flooding entry dst %s vni %d: %w", pe, vni, err)
		}
		i.log.Debug("flooding entry added", "pe", pe.String(), "vni", vni)
	}
	i.bum[k]++
	return nil
}

// RemoveBUM removes a flooding entry.
func (i *Instance) RemoveBUM(_ context.Context, pe netip.Addr, vni uint32) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cleaning {
		return nil
	}
	k := bumKey{pe: pe, vni: vni}
	if i.bum[k] == 0 {
		return nil
	}
	if i.bum[k]--; i.bum[k] > 0 {
		return nil
	}
	delete(i.bum, k)
	i.log.Debug("flooding entry removed", "pe", pe.String(), "vni", vni)
	if err := ignoreGone(i.d.nl.NeighDel(i.vxlanEntry(zeroMAC, pe, vni))); err != nil {
		return fmt.Errorf("removing flooding entry dst %s vni %d: %w", pe, vni, err)
	}
	return nil
}

// --- gateway port (E-VPN plugged into an IP VPN) ---

// SetGatewayPort puts the IP VPN's gateway port on the bridge.
func (i *Instance) SetGatewayPort(_ context.Context, linuxIf string, _ netip.Addr) error {
	l, err := i.d.nl.LinkByName(linuxIf)
	if err != nil {
		return fmt.Errorf("gateway port %s: %w", linuxIf, err)
	}
	if err := i.d.nl.LinkSetMasterByIndex(l, i.bridgeIdx); err != nil {
		return fmt.Errorf("adding %s to bridge %s: %w", linuxIf, i.bridgeName, err)
	}
	i.confirmGateway(linuxIf)
	return nil
}

// GatewayPortDown takes the gateway port off the bridge.
func (i *Instance) GatewayPortDown(_ context.Context, linuxIf string) error {
	l, err := i.d.nl.LinkByName(linuxIf)
	if err != nil || l.Attrs().MasterIndex != i.bridgeIdx {
		return nil
	}
	return ignoreGone(i.d.nl.LinkSetNoMaster(l))
}

// UpdateFallback implements dataplane.Instance: E-VPN has no fallback.
func (i *Instance) UpdateFallback(_ context.Context, f *dataplane.Fallback) error {
	if f != nil {
		i.log.Warn("fallback is not supported by the linux E-VPN driver: ignored")
	}
	return nil
}

// Cleanup deletes the VXLAN device and the bridge if they are ours, else
// the entries we added to them.
func (i *Instance) Cleanup(context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cleaning {
		return nil
	}
	i.cleaning = true
	defer i.d.release(i)
	nl := i.d.nl
	var errs []error
	if i.ownVXLAN {
		if err := ignoreGone(nl.LinkDel(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Index: i.vxlanIdx, Name: i.vxlanName}})); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", i.vxlanName, err))
		}
	} else {
		for mac, refs := range i.fdb {
			last := refs[len(refs)-1]
			errs = append(errs, i.uninstallMAC(mac, last.pe, last.vni))
		}
		for k := range i.bum {
			errs = append(errs, ignoreGone(nl.NeighDel(i.vxlanEntry(zeroMAC, k.pe, k.vni))))
		}
	}
	if i.ownBridge {
		if err := ignoreGone(nl.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Index: i.bridgeIdx, Name: i.bridgeName}})); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", i.bridgeName, err))
		}
	} else {
		if !(i.d.cfg.VXLANProxy && i.ownVXLAN) {
			for ip, nrefs := range i.neigh {
				errs = append(errs, ignoreGone(nl.NeighDel(i.neighEntry(ip, nrefs[len(nrefs)-1].mac))))
			}
		}
		for k := range i.local {
			if l, err := nl.LinkByName(k.port); err == nil {
				errs = append(errs, ignoreGone(nl.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
					Flags: netlink.NTF_MASTER, State: netlink.NUD_NOARP, HardwareAddr: hw(k.mac)})))
			}
		}
	}
	clear(i.ports)
	clear(i.local)
	clear(i.fdb)
	clear(i.neigh)
	clear(i.bum)
	i.log.Info("E-VPN dataplane removed", "bridge", i.bridgeName, "vxlan", i.vxlanName)
	return errors.Join(errs...)
}

// LookingGlass shows the links of the instance and the entries installed.
func (i *Instance) LookingGlass() map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	ports := make([]string, 0, len(i.ports))
	for p := range i.ports {
		ports = append(ports, p)
	}
	var macs, neighs, flood []string
	for mac, refs := range i.fdb {
		last := refs[len(refs)-1]
		macs = append(macs, fmt.Sprintf("%s dst %s vni %d", mac, last.pe, last.vni))
	}
	for ip, nrefs := range i.neigh {
		neighs = append(neighs, fmt.Sprintf("%s lladdr %s", ip, nrefs[len(nrefs)-1].mac))
	}
	for k := range i.bum {
		flood = append(flood, fmt.Sprintf("dst %s vni %d", k.pe, k.vni))
	}
	for _, s := range [][]string{ports, macs, neighs, flood} {
		slices.Sort(s)
	}
	out := map[string]any{
		"linux_bridge": i.bridgeName,
		"vxlan_if":     i.vxlanName,
		"vni":          i.cfg.Label,
		"mtu":          i.mtu,
		"ports":        ports,
		"fdb":          nonNil(macs),
		"flooding":     nonNil(flood),
		"neighbours":   nonNil(neighs),
	}
	if i.adopted != nil {
		// Not in the reference: entries found at a restart that no route
		// confirmed yet (removed once the initial BGP exchange is over).
		out["adopted_unconfirmed"] = i.adopted.size()
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
