package linux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// DriverName is the looking glass name of the driver (the reference's
// class name).
const DriverName = "LinuxVXLANDataplaneDriver"

// VXLAN encapsulation overhead: outer Ethernet (14), IP (20 or 40), UDP (8)
// and VXLAN (8) headers.
const (
	OverheadIPv4 = 50
	OverheadIPv6 = 70
)

// defaultUnderlayMTU is assumed when no interface holds the local address.
const defaultUnderlayMTU = 1500

// Config configures the driver.
type Config struct {
	// LocalAddress is the VTEP address: the source of VXLAN packets and the
	// next hop of our routes.
	LocalAddress netip.Addr
	// VXLANPort is the destination UDP port of VXLAN packets
	// (vxlan_dst_port); 0 leaves the kernel default.
	VXLANPort int
	// Netlink is the handle used for every kernel operation; nil opens one
	// in the network namespace of the caller.
	Netlink *netlink.Handle
	// Log receives the driver's messages; nil means slog.Default().
	Log *slog.Logger
	// VXLANProxy creates the VXLAN devices with the "proxy" flag and puts
	// the neighbour entries on them, as the reference did. It drops ARP
	// replies that should cross the tunnel (spec §11): for comparison
	// tests only.
	VXLANProxy bool
}

// Driver is the linux E-VPN dataplane driver.
type Driver struct {
	cfg Config
	nl  *netlink.Handle
	log *slog.Logger

	mu    sync.Mutex
	inUse map[string]bool // link names held by live instances
	live  map[*Instance]struct{}
	keep  map[string]bool // aliases of the links to adopt (adopt.go)
}

var _ dataplane.EVPNDriver = (*Driver)(nil)

// New returns a driver. It touches no kernel state.
func New(cfg Config) (*Driver, error) {
	if !cfg.LocalAddress.IsValid() {
		return nil, errors.New("linux E-VPN driver: no local address")
	}
	if cfg.VXLANPort < 0 || cfg.VXLANPort > 65535 {
		return nil, fmt.Errorf("linux E-VPN driver: invalid VXLAN port %d", cfg.VXLANPort)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := cfg.Netlink
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return nil, fmt.Errorf("linux E-VPN driver: netlink: %w", err)
		}
	}
	return &Driver{
		cfg:   cfg,
		nl:    h,
		log:   cfg.Log.With("driver", "linux", "vpn_type", string(dataplane.EVPN)),
		inUse: map[string]bool{},
		live:  map[*Instance]struct{}{},
	}, nil
}

func (d *Driver) Name() string                     { return DriverName }
func (d *Driver) Type() dataplane.VPNType          { return dataplane.EVPN }
func (d *Driver) Encaps() []route.Encap            { return []route.Encap{route.EncapVXLAN} }
func (d *Driver) ECMP() bool                       { return false }
func (d *Driver) LocalAddress() netip.Addr         { return d.cfg.LocalAddress }
func (d *Driver) NeedsCleanupAssist() bool         { return false }
func (d *Driver) Initialize(context.Context) error { return nil }

// ValidateDirection accepts only "both".
func (d *Driver) ValidateDirection(dir dataplane.Direction) error {
	if dir != dataplane.Both {
		return fmt.Errorf("Unsupported direction: %s", dir)
	}
	return nil
}

// LookingGlass implements dataplane.Driver.
func (d *Driver) LookingGlass() map[string]any {
	mtu, _ := d.vxlanMTU()
	return map[string]any{"vxlan_dst_port": d.cfg.VXLANPort, "mtu": mtu, "arp_suppression": d.arpMode()}
}

func (d *Driver) arpMode() string {
	if d.cfg.VXLANProxy {
		return "vxlan proxy (reference)"
	}
	return "bridge neigh_suppress"
}

// vxlanMTU returns the MTU of our VXLAN devices: the MTU of the interface
// holding the local address minus the encapsulation overhead. found is
// false when no interface holds the address (1500 is then assumed).
func (d *Driver) vxlanMTU() (mtu int, found bool) {
	overhead := OverheadIPv4
	family := netlink.FAMILY_V4
	if d.cfg.LocalAddress.Is6() && !d.cfg.LocalAddress.Is4In6() {
		overhead, family = OverheadIPv6, netlink.FAMILY_V6
	}
	underlay := defaultUnderlayMTU
	addrs, err := d.nl.AddrList(nil, family)
	if err == nil {
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || ip.Unmap() != d.cfg.LocalAddress.Unmap() {
				continue
			}
			if l, err := d.nl.LinkByIndex(a.LinkIndex); err == nil && l.Attrs().MTU > 0 {
				underlay, found = l.Attrs().MTU, true
			}
			break
		}
	}
	return underlay - overhead, found
}

// ResetState deletes the links an earlier run left: VXLAN devices then
// bridges carrying our alias or named as the reference names them. Before
// deleting a VXLAN device of ours enslaved to a bridge that is not ours,
// it removes the neighbour entries it had added on that bridge.
func (d *Driver) ResetState(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	links, err := d.nl.LinkList()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	byIndex := map[int]netlink.Link{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l
	}
	leftover := func(l netlink.Link) bool {
		a := l.Attrs()
		if d.inUse[a.Name] || d.kept(a.Alias) {
			return false
		}
		switch l.Type() {
		case "vxlan":
			return isOurs(a.Alias) || strings.HasPrefix(a.Name, VXLANPrefix)
		case "bridge":
			return isOurs(a.Alias) || strings.HasPrefix(a.Name, BridgePrefix)
		}
		return false
	}
	var errs []error
	var bridges []netlink.Link
	for _, l := range links {
		if !leftover(l) {
			continue
		}
		if l.Type() == "bridge" {
			bridges = append(bridges, l)
			continue
		}
		if br, ok := byIndex[l.Attrs().MasterIndex]; ok && !leftover(br) {
			d.removeNeighboursOf(l, br)
		}
		errs = append(errs, d.deleteLink(l, "left by an earlier run"))
	}
	for _, l := range bridges {
		errs = append(errs, d.deleteLink(l, "left by an earlier run"))
	}
	return errors.Join(errs...)
}

// removeNeighboursOf deletes the permanent neighbour entries of bridge br
// whose MAC is a remote MAC of the VXLAN device vx (what an instance of
// ours added on a linuxbr bridge).
func (d *Driver) removeNeighboursOf(vx, br netlink.Link) {
	fdb, err := d.nl.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return
	}
	remote := map[string]bool{}
	for _, e := range fdb {
		if e.Flags&netlink.NTF_SELF != 0 && e.IP != nil && !isZeroMAC(e.HardwareAddr) {
			remote[e.HardwareAddr.String()] = true
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		neighs, err := d.nl.NeighList(br.Attrs().Index, fam)
		if err != nil {
			continue
		}
		for _, n := range neighs {
			if n.State&netlink.NUD_PERMANENT != 0 && remote[n.HardwareAddr.String()] {
				n := n
				if err := d.nl.NeighDel(&n); err == nil {
					d.log.Info("removed a neighbour entry left by an earlier run", "bridge", br.Attrs().Name, "ip", n.IP.String())
				}
			}
		}
	}
}

func (d *Driver) deleteLink(l netlink.Link, why string) error {
	if err := d.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting %s %s: %w", l.Type(), l.Attrs().Name, err)
	}
	d.log.Info("deleted "+l.Type()+" "+why, "link", l.Attrs().Name)
	return nil
}

// taken reports whether a link name is used by a live instance or exists
// in the kernel (d.mu held).
func (d *Driver) taken(name string) bool {
	if d.inUse[name] {
		return true
	}
	_, err := d.nl.LinkByName(name)
	return err == nil
}

// NewEVPNInstance creates the bridge (unless linuxbr names an existing one)
// and the VXLAN device of an instance.
func (d *Driver) NewEVPNInstance(_ context.Context, cfg dataplane.InstanceConfig) (dataplane.EVPNInstance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	inst := newInstance(d, cfg)
	if err := inst.create(); err != nil {
		return nil, err
	}
	if inst.ownBridge {
		d.inUse[inst.bridgeName] = true
	}
	if inst.ownVXLAN {
		d.inUse[inst.vxlanName] = true
	}
	d.live[inst] = struct{}{}
	if inst.adopted != nil {
		return inst, nil
	}
	inst.log.Info("E-VPN dataplane created", "bridge", inst.bridgeName, "own_bridge", inst.ownBridge,
		"vxlan", inst.vxlanName, "own_vxlan", inst.ownVXLAN, "vni", cfg.Label, "mtu", inst.mtu)
	return inst, nil
}

// release frees the names of an instance.
func (d *Driver) release(inst *Instance) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if inst.ownBridge {
		delete(d.inUse, inst.bridgeName)
	}
	if inst.ownVXLAN {
		delete(d.inUse, inst.vxlanName)
	}
	delete(d.live, inst)
}

func isZeroMAC(mac []byte) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return len(mac) > 0
}
