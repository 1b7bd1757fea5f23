package testfabric

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// VMInterfaceConfig describes one more interface of a VM (a service VM
// with an ingress and an egress port): a veth pair between the VM's host
// node and the VM's namespace.
type VMInterfaceConfig struct {
	// Name inside the VM (e.g. "eth1").
	Name string
	// HostIf names the host side, in the host node's namespace (the
	// "linuxif" to attach); at most 15 bytes.
	HostIf string
	MAC    net.HardwareAddr
	// Addr is the address with its subnet length.
	Addr netip.Prefix
	// Gateway, when valid, becomes the VM's default route, through this
	// interface.
	Gateway netip.Addr
	MTU     int
}

// AddInterface adds an interface to the VM, with transmit checksum offload
// off (as VM.DisableOffload does for eth0: needed for TCP and UDP through
// a userspace OVS). It is removed with the VM's namespace.
func (v *VM) AddInterface(cfg VMInterfaceConfig) error {
	if cfg.Name == "" || cfg.HostIf == "" || len(cfg.HostIf) > 15 || len(cfg.Name) > 15 {
		return fmt.Errorf("interface names %q/%q: both needed, at most 15 bytes", cfg.Name, cfg.HostIf)
	}
	if err := v.addVeth(cfg); err != nil {
		return err
	}
	return disableTxChecksum(v.ns, cfg.Name)
}

// addVeth creates a veth pair between the host node (cfg.HostIf) and the
// VM (cfg.Name), both up, the VM side with its MAC, address and default
// route.
func (v *VM) addVeth(cfg VMInterfaceConfig) error {
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: cfg.HostIf, MTU: cfg.MTU},
		PeerName:         cfg.Name,
		PeerHardwareAddr: cfg.MAC,
		PeerNamespace:    netlink.NsFd(v.ns),
	}
	if cfg.MTU > 0 {
		veth.PeerMTU = uint32(cfg.MTU)
	}
	if err := v.Host.link.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth %s on %s: %w", cfg.HostIf, v.Host, err)
	}
	if err := linkUp(v.Host.link, cfg.HostIf); err != nil {
		return err
	}
	l, err := v.link.LinkByName(cfg.Name)
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: cfg.Addr.Addr().AsSlice(), Mask: net.CIDRMask(cfg.Addr.Bits(), cfg.Addr.Addr().BitLen())}}
	if err := v.link.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("adding %s in %s: %w", addr, v, err)
	}
	if err := v.link.LinkSetUp(l); err != nil {
		return err
	}
	if cfg.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: cfg.Gateway.AsSlice()}
		if err := v.link.RouteAdd(r); err != nil {
			return fmt.Errorf("default route via %s in %s: %w", cfg.Gateway, v, err)
		}
	}
	return nil
}

// Sysctl writes a network sysctl of the node's namespace, e.g.
// Sysctl("ipv4/ip_forward", "1") for /proc/sys/net/ipv4/ip_forward.
func (n *Node) Sysctl(key, value string) error {
	return n.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys/net", key), []byte(value), 0o644)
	})
}

// EnableForwarding makes the namespace route between its interfaces: IPv4
// forwarding on, reverse path filtering off (a service VM receives on its
// ingress port traffic whose source it routes through its egress port).
func (n *Node) EnableForwarding() error {
	links, err := n.link.LinkList()
	if err != nil {
		return err
	}
	keys := []string{"ipv4/ip_forward", "ipv4/conf/all/rp_filter", "ipv4/conf/default/rp_filter"}
	for _, l := range links {
		keys = append(keys, "ipv4/conf/"+l.Attrs().Name+"/rp_filter")
	}
	for _, k := range keys {
		v := "0"
		if k == "ipv4/ip_forward" {
			v = "1"
		}
		if err := n.Sysctl(k, v); err != nil {
			return fmt.Errorf("%s: sysctl %s: %w", n, k, err)
		}
	}
	return nil
}
