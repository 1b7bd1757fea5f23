package restattach

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Network namespace helper (--port netns[:<if>], spec §8.1): a namespace
// standing for a VM, attached to the host by a veth pair. Everything goes
// through netlink and setns(2); no command is run.

const (
	// netnsDir is where named namespaces are bind-mounted (as ip netns).
	netnsDir = "/run/netns"
	// vpn2nsPrefix starts the default name of the host side of the veth.
	vpn2nsPrefix = "ns-"
	// rawIfName is the namespace side of the veth when a VLAN interface is
	// stacked on it (--ovs-vlan).
	rawIfName = "ns2vpn-raw"
	// hostSideMTU is the MTU of the host side of the veth (as the
	// reference): high, so that it never limits what the VM may send.
	hostSideMTU = 9000
	// rawMTU is the MTU of the namespace side under a VLAN interface.
	rawMTU = 65535
	// DefaultMTU is the default MTU of the interface in the namespace: a
	// 1500-byte underlay minus the 50 bytes of VXLAN over IPv4.
	DefaultMTU = 1450
	maxIfName  = 15
)

// netnsPort describes the namespace port to create.
type netnsPort struct {
	Namespace string       // namespace name
	HostIf    string       // host side of the veth (the port attached)
	NsIf      string       // interface inside the namespace
	VLAN      int          // VLAN sub-interface id, 0 for none
	MAC       string       // MAC of NsIf, "" to keep the kernel's
	Addr      netip.Prefix // address of NsIf
	Gateway   netip.Addr   // default route
	MTU       int          // MTU of NsIf
}

// netnsHelper creates namespace ports and reads their MAC. A variable of
// the command so that tests of the request can replace it.
type netnsHelper interface {
	Plug(p netnsPort) (mac string, err error)
	MAC(namespace, ifname string) (string, error)
}

// newNetnsHelper returns the helper of a command (tests replace it).
var newNetnsHelper = func() netnsHelper { return kernelNetns{} }

// kernelNetns is the netlink implementation of netnsHelper.
type kernelNetns struct{}

// defaultHostIf returns the default host side name for a namespace.
func defaultHostIf(namespace string) string {
	n := vpn2nsPrefix + namespace
	if len(n) > maxIfName {
		n = n[:maxIfName]
	}
	return n
}

func checkNamespaceName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid namespace name %q", name)
	}
	return nil
}

func checkIfName(name string) error {
	if name == "" || len(name) > maxIfName || strings.ContainsAny(name, "/: \t\n\x00") {
		return fmt.Errorf("invalid interface name %q (1 to %d bytes, no '/', ':' or space)", name, maxIfName)
	}
	return nil
}

// openNamespace returns a handle of the named namespace, creating it if
// needed (created reports that). The calling thread's namespace is
// restored.
func openNamespace(name string) (h netns.NsHandle, created bool, err error) {
	if err := checkNamespaceName(name); err != nil {
		return netns.None(), false, err
	}
	if h, err := netns.GetFromName(name); err == nil {
		return h, false, nil
	}
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
		// A file without a namespace mounted on it (left by a crash).
		if err := os.Remove(filepath.Join(netnsDir, name)); err != nil {
			return netns.None(), false, fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), false, err
	}
	defer orig.Close()
	h, nerr := netns.NewNamed(name) // switches the thread to the new namespace
	if err := netns.Set(orig); err != nil {
		// Keep the thread locked: the runtime discards it with the
		// goroutine, so nothing else runs in the wrong namespace.
		if h.IsOpen() {
			h.Close()
		}
		return netns.None(), false, fmt.Errorf("restoring the namespace after creating %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	if nerr != nil {
		return netns.None(), false, fmt.Errorf("creating namespace %s: %w", name, nerr)
	}
	return h, true, nil
}

func deleteIfExists(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return nil
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting the old %s: %w", name, err)
	}
	return nil
}

// Plug creates (or re-creates) the namespace port and returns the MAC of
// the namespace interface.
func (kernelNetns) Plug(p netnsPort) (string, error) {
	for _, n := range []string{p.HostIf, p.NsIf} {
		if err := checkIfName(n); err != nil {
			return "", err
		}
	}
	ns, _, err := openNamespace(p.Namespace)
	if err != nil {
		return "", err
	}
	defer ns.Close()
	host, err := netlink.NewHandle()
	if err != nil {
		return "", err
	}
	defer host.Close()
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		return "", fmt.Errorf("netlink in namespace %s: %w", p.Namespace, err)
	}
	defer in.Close()

	peer := p.NsIf
	if p.VLAN != 0 {
		peer = rawIfName
	}
	// Interfaces of an earlier run.
	for _, n := range []string{p.NsIf, peer} {
		if err := deleteIfExists(in, n); err != nil {
			return "", err
		}
	}
	if err := deleteIfExists(host, p.HostIf); err != nil {
		return "", err
	}
	peerMTU := p.MTU
	if p.VLAN != 0 {
		peerMTU = rawMTU
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.HostIf, MTU: hostSideMTU},
		PeerName:      peer,
		PeerMTU:       uint32(peerMTU),
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := host.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("creating veth %s <-> %s (namespace %s): %w", p.HostIf, peer, p.Namespace, err)
	}
	hostLink, err := host.LinkByName(p.HostIf)
	if err != nil {
		return "", err
	}
	if err := host.LinkSetUp(hostLink); err != nil {
		return "", fmt.Errorf("setting %s up: %w", p.HostIf, err)
	}
	if lo, err := in.LinkByName("lo"); err == nil {
		_ = in.LinkSetUp(lo)
	}
	peerLink, err := in.LinkByName(peer)
	if err != nil {
		return "", fmt.Errorf("%s in namespace %s: %w", peer, p.Namespace, err)
	}
	if err := in.LinkSetUp(peerLink); err != nil {
		return "", fmt.Errorf("setting %s up: %w", peer, err)
	}
	nsLink := peerLink
	if p.VLAN != 0 {
		vlan := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: p.NsIf, ParentIndex: peerLink.Attrs().Index, MTU: p.MTU},
			VlanId: p.VLAN}
		if err := in.LinkAdd(vlan); err != nil {
			return "", fmt.Errorf("creating VLAN %d interface %s: %w", p.VLAN, p.NsIf, err)
		}
		if nsLink, err = in.LinkByName(p.NsIf); err != nil {
			return "", err
		}
		if err := in.LinkSetUp(nsLink); err != nil {
			return "", fmt.Errorf("setting %s up: %w", p.NsIf, err)
		}
	}
	if p.MAC != "" {
		hw, err := net.ParseMAC(p.MAC)
		if err != nil {
			return "", fmt.Errorf("--mac %s: %w", p.MAC, err)
		}
		if err := in.LinkSetHardwareAddr(nsLink, hw); err != nil {
			return "", fmt.Errorf("setting the MAC of %s: %w", p.NsIf, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr.Addr().AsSlice(), Mask: net.CIDRMask(p.Addr.Bits(), p.Addr.Addr().BitLen())}}
	if err := in.AddrAdd(nsLink, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("adding %s to %s: %w", p.Addr, p.NsIf, err)
	}
	if p.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: nsLink.Attrs().Index, Gw: p.Gateway.AsSlice()}
		if err := in.RouteReplace(r); err != nil {
			return "", fmt.Errorf("default route via %s dev %s: %w", p.Gateway, p.NsIf, err)
		}
	}
	if err := in.LinkSetMTU(nsLink, p.MTU); err != nil {
		return "", fmt.Errorf("setting the MTU of %s to %d: %w", p.NsIf, p.MTU, err)
	}
	if nsLink, err = in.LinkByName(p.NsIf); err != nil {
		return "", err
	}
	return nsLink.Attrs().HardwareAddr.String(), nil
}

// MAC returns the MAC of an interface in a namespace.
func (kernelNetns) MAC(namespace, ifname string) (string, error) {
	if err := checkNamespaceName(namespace); err != nil {
		return "", err
	}
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return "", fmt.Errorf("namespace %s: %w", namespace, err)
	}
	defer ns.Close()
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		return "", fmt.Errorf("netlink in namespace %s: %w", namespace, err)
	}
	defer in.Close()
	l, err := in.LinkByName(ifname)
	if err != nil {
		return "", fmt.Errorf("%s in namespace %s: %w", ifname, namespace, err)
	}
	return l.Attrs().HardwareAddr.String(), nil
}
