package testfabric

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Readers of the kernel state of a node (links, FDB, neighbour entries), for
// tests of the Linux dataplane, and daemon crash helpers.

// LinkInfo describes a link of a node's namespace.
type LinkInfo struct {
	Name   string
	Kind   string // "bridge", "vxlan", "veth", ...
	Alias  string
	Index  int
	Master string // name of the master (bridge) link, "" if none
	MTU    int
	Up     bool
	// VXLAN devices only.
	VNI      int
	Local    netip.Addr
	Port     int
	Learning bool
	Proxy    bool
}

// Links returns the links of the node's namespace, sorted by name.
func (n *Node) Links() ([]LinkInfo, error) {
	links, err := n.link.LinkList()
	if err != nil {
		return nil, fmt.Errorf("%s: listing links: %w", n, err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		li := LinkInfo{Name: a.Name, Kind: l.Type(), Alias: a.Alias, Index: a.Index, Master: names[a.MasterIndex],
			MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
		if vx, ok := l.(*netlink.Vxlan); ok {
			li.VNI, li.Port, li.Learning, li.Proxy = vx.VxlanId, vx.Port, vx.Learning, vx.Proxy
			li.Local, _ = netip.AddrFromSlice(vx.SrcAddr)
			li.Local = li.Local.Unmap()
		}
		out = append(out, li)
	}
	slices.SortFunc(out, func(a, b LinkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// LinksOfKind returns the links of a kind ("bridge", "vxlan") whose name
// starts with prefix.
func (n *Node) LinksOfKind(kind, prefix string) ([]LinkInfo, error) {
	all, err := n.Links()
	if err != nil {
		return nil, err
	}
	var out []LinkInfo
	for _, l := range all {
		if l.Kind == kind && strings.HasPrefix(l.Name, prefix) {
			out = append(out, l)
		}
	}
	return out, nil
}

// FDBEntry is an entry of the bridge forwarding database of a device: the
// device's own table (Self, e.g. a VXLAN device's remote entries) or the
// entries of its bridge pointing at it (Master).
type FDBEntry struct {
	Dev    string
	MAC    string
	Dst    netip.Addr // VXLAN remote VTEP (invalid if none)
	VNI    int
	Self   bool
	Master bool
	State  int // NUD_* flags
}

func (e FDBEntry) String() string {
	s := e.MAC + " dev " + e.Dev
	if e.Dst.IsValid() {
		s += " dst " + e.Dst.String()
	}
	if e.VNI != 0 {
		s += fmt.Sprintf(" vni %d", e.VNI)
	}
	if e.Self {
		s += " self"
	}
	if e.Master {
		s += " master"
	}
	return s
}

// FDB returns the forwarding database entries of a device.
func (n *Node) FDB(dev string) ([]FDBEntry, error) {
	l, err := n.link.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: link %s: %w", n, dev, err)
	}
	list, err := n.link.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("%s: FDB of %s: %w", n, dev, err)
	}
	out := make([]FDBEntry, 0, len(list))
	for _, e := range list {
		fe := FDBEntry{Dev: dev, MAC: e.HardwareAddr.String(), VNI: e.VNI, State: e.State,
			Self: e.Flags&netlink.NTF_SELF != 0, Master: e.Flags&netlink.NTF_MASTER != 0 || e.MasterIndex != 0}
		if ip, ok := netip.AddrFromSlice(e.IP); ok {
			fe.Dst = ip.Unmap()
		}
		out = append(out, fe)
	}
	return out, nil
}

// NeighEntry is an IPv4/IPv6 neighbour (ARP/NDP) entry.
type NeighEntry struct {
	Dev   string
	IP    netip.Addr
	MAC   string
	State int // NUD_* flags
}

// Neighbours returns the IPv4 and IPv6 neighbour entries of a device.
func (n *Node) Neighbours(dev string) ([]NeighEntry, error) {
	l, err := n.link.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: link %s: %w", n, dev, err)
	}
	var out []NeighEntry
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := n.link.NeighList(l.Attrs().Index, fam)
		if err != nil {
			return nil, fmt.Errorf("%s: neighbours of %s: %w", n, dev, err)
		}
		for _, e := range list {
			ip, _ := netip.AddrFromSlice(e.IP)
			out = append(out, NeighEntry{Dev: dev, IP: ip.Unmap(), MAC: e.HardwareAddr.String(), State: e.State})
		}
	}
	return out, nil
}

// BridgePortFlags returns the bridge port flags of a bridge port.
func (n *Node) BridgePortFlags(dev string) (*netlink.Protinfo, error) {
	l, err := n.link.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: link %s: %w", n, dev, err)
	}
	pi, err := n.link.LinkGetProtinfo(l)
	if err != nil {
		return nil, fmt.Errorf("%s: bridge port flags of %s: %w", n, dev, err)
	}
	return &pi, nil
}

// Kill kills the daemon with SIGKILL: it leaves its kernel state behind,
// as a crash does.
func (b *Bagpipe) Kill() error { return b.proc.Kill() }

// Start starts the daemon again after Kill (or a stop) with the same
// configuration; it returns when the REST API answers /ping.
func (b *Bagpipe) Start() error {
	if !b.proc.Exited() {
		return fmt.Errorf("bagpipe-bgp on %s is still running", b.node)
	}
	return b.start()
}

// AdoptVM takes over a named network namespace that something else created
// on the node's behalf (e.g. bagpipe-rest-attach --port netns), attached to
// n by the veth whose host side is hostIf: the returned VM can ping, and
// the namespace is deleted with the fabric (or by Remove).
func (n *Node) AdoptVM(nsName, hostIf string) (*VM, error) {
	f := n.fabric
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", nsName, err)
	}
	vm := &VM{Host: n, HostIf: hostIf}
	vm.Node = &Node{fabric: f, index: -1, name: nsName, nsName: nsName, ns: ns}
	f.mu.Lock()
	f.vms = append(f.vms, vm)
	f.mu.Unlock()
	if vm.link, err = netlink.NewHandleAt(ns); err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", nsName, err)
	}
	return vm, nil
}

// DeleteNamespace deletes a named network namespace if it exists (for the
// cleanup of namespaces created by the code under test).
func DeleteNamespace(name string) error { return deleteNamedNS(name) }
