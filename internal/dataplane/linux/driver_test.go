package linux_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/linux"
	"bagpipe/internal/route"
	"bagpipe/internal/testfabric"
)

// These tests drive the driver directly (no BGP): the remote entries the
// E-VPN instances would install are given by hand.

func newDriver(t *testing.T, n *testfabric.Node, proxy bool) *linux.Driver {
	t.Helper()
	d, err := linux.New(linux.Config{LocalAddress: n.IP(), VXLANPort: 4789, Netlink: n.Netlink(), VXLANProxy: proxy})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func newInstance(t *testing.T, d *linux.Driver, id uint32, extID string, vni uint32, linuxbr string) dataplane.EVPNInstance {
	t.Helper()
	inst, err := d.NewEVPNInstance(context.Background(), dataplane.InstanceConfig{
		ID: id, ExternalID: extID, Label: vni, PrefixLen: 24, LinuxBridge: linuxbr})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func addVM(t *testing.T, n *testfabric.Node, name, addr string) *testfabric.VM {
	t.Helper()
	vm, err := n.AddVM(testfabric.VMConfig{Name: name, Addr: netip.MustParsePrefix(addr), MTU: 1450})
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func macOf(hw net.HardwareAddr) route.MAC {
	var m route.MAC
	copy(m[:], hw)
	return m
}

func endpoint(vm *testfabric.VM) dataplane.Endpoint {
	return dataplane.Endpoint{MAC: macOf(vm.MAC), IP: vm.Addr, Port: &dataplane.LocalPort{LinuxIf: vm.HostIf},
		Direction: dataplane.Both}
}

func remote(mac route.MAC, ip string, pe netip.Addr, vni uint32) dataplane.Remote {
	r := dataplane.Remote{MAC: mac, PE: pe, Label: vni, Encaps: []route.Encap{route.EncapVXLAN}}
	if ip != "" {
		r.Prefix = netip.MustParsePrefix(ip + "/32")
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, n *testfabric.Node, name string) (testfabric.LinkInfo, bool) {
	t.Helper()
	links, err := n.Links()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(links, func(l testfabric.LinkInfo) bool { return l.Name == name })
	if i < 0 {
		return testfabric.LinkInfo{}, false
	}
	return links[i], true
}

func fdb(t *testing.T, n *testfabric.Node, dev string) []string {
	t.Helper()
	entries, err := n.FDB(dev)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.MAC, "33:33:") || strings.HasPrefix(e.MAC, "01:00:5e:") {
			continue // multicast entries of the kernel
		}
		if e.Master && !e.Self && e.State&netlink.NUD_PERMANENT != 0 {
			continue // the bridge's own address on the port
		}
		if e.State&(netlink.NUD_PERMANENT|netlink.NUD_NOARP) == 0 {
			continue // learned from traffic
		}
		out = append(out, e.String())
	}
	slices.Sort(out)
	return out
}

func neighbours(t *testing.T, n *testfabric.Node, dev string) []string {
	t.Helper()
	entries, err := n.Neighbours(dev)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IP.Is4() && e.State&netlink.NUD_PERMANENT != 0 {
			out = append(out, e.IP.String()+" "+e.MAC)
		}
	}
	slices.Sort(out)
	return out
}

func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func lg(inst dataplane.Instance) map[string]any { return inst.LookingGlass() }

func TestTwoNodes(t *testing.T) {
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 2, Names: []string{"a", "b"}})
	a, b := fab.Node(0), fab.Node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	da, db := newDriver(t, a, false), newDriver(t, b, false)
	ia := newInstance(t, da, 1, "evpn-net1", 100, "")
	ib := newInstance(t, db, 1, "evpn-net1", 200, "")
	vmA, vmB := addVM(t, a, "a1", "10.0.0.1/24"), addVM(t, b, "b1", "10.0.0.2/24")
	must(t, ia.VIFPlugged(ctx, endpoint(vmA)))
	must(t, ib.VIFPlugged(ctx, endpoint(vmB)))
	macA, macB := macOf(vmA.MAC), macOf(vmB.MAC)
	// What the E-VPN instances do for the other node's routes: MAC/IP
	// advertisement and inclusive multicast.
	must(t, ia.SetupRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	must(t, ia.AddBUM(ctx, b.IP(), 200, nil))
	must(t, ib.SetupRemote(ctx, remote(macA, "10.0.0.1", a.IP(), 100)))
	must(t, ib.AddBUM(ctx, a.IP(), 100, nil))

	// Kernel objects as documented.
	br, ok := link(t, a, "evpn---evpn-net")
	if !ok || br.Kind != "bridge" || !br.Up || br.Alias != "bagpipe-bgp:evpn:evpn-net1" {
		t.Fatalf("bridge: %+v (found %v)", br, ok)
	}
	vx, ok := link(t, a, "vxlan--evpn-net")
	if !ok || vx.Kind != "vxlan" || !vx.Up || vx.Master != br.Name || vx.VNI != 100 || vx.Local != a.IP() ||
		vx.Port != 4789 || vx.Learning || vx.Proxy || vx.MTU != 1500-linux.OverheadIPv4 {
		t.Fatalf("VXLAN device: %+v (found %v)", vx, ok)
	}
	pi, err := a.BridgePortFlags(vx.Name)
	if err != nil || !pi.NeighSuppress {
		t.Fatalf("neigh_suppress on %s: %+v %v", vx.Name, pi, err)
	}
	if port, _ := link(t, a, vmA.HostIf); port.Master != br.Name || !port.Up {
		t.Fatalf("VM port: %+v", port)
	}
	wantList(t, "FDB of A's VXLAN device", fdb(t, a, vx.Name),
		fmt.Sprintf("%s dev %s dst %s vni 200 self", vmB.MAC, vx.Name, b.IP()),
		fmt.Sprintf("%s dev %s master", vmB.MAC, vx.Name),
		fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx.Name, b.IP()))
	wantList(t, "FDB of A's VM port", fdb(t, a, vmA.HostIf), fmt.Sprintf("%s dev %s master", vmA.MAC, vmA.HostIf))
	wantList(t, "neighbours of A's bridge", neighbours(t, a, br.Name), "10.0.0.2 "+vmB.MAC.String())
	// Ports coming and going do not change the bridge's MAC, which would
	// make the kernel flush its neighbour entries.
	low, err := a.AddVM(testfabric.VMConfig{Name: "a9", Addr: netip.MustParsePrefix("10.0.0.9/24"), MTU: 1450})
	must(t, err)
	must(t, a.Netlink().LinkSetHardwareAddr(mustLink(t, a.Netlink(), low.HostIf), net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	lowEP := dataplane.Endpoint{MAC: route.MAC{2, 0, 0, 0, 0, 9}, Port: &dataplane.LocalPort{LinuxIf: low.HostIf}}
	must(t, ia.VIFPlugged(ctx, lowEP))
	must(t, ia.VIFUnplugged(ctx, lowEP, true))
	wantList(t, "neighbours of A's bridge after a port came and went", neighbours(t, a, br.Name), "10.0.0.2 "+vmB.MAC.String())
	if v := lg(ia); v["linux_bridge"] != br.Name || v["vxlan_if"] != vx.Name || v["mtu"] != 1450 {
		t.Errorf("looking glass: %v", v)
	}

	// Traffic.
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 3))
	// ARP replies cross the tunnel: an address of B's VM that no route
	// advertises is resolved by flooding the request to B, and B's VM's
	// reply comes back (the reference's "proxy" VXLAN device dropped it).
	must(t, vmB.Netlink().AddrAdd(mustLink(t, vmB.Netlink(), testfabric.VMInterface),
		&netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.0.0.102"), Mask: net.CIDRMask(24, 32)}}))
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.102"), 3))
	// ARP suppression: A's bridge answers for a remote IP it knows; the
	// MAC exists nowhere, so the answer can only come from A's bridge.
	ghost := route.MAC{0x02, 0, 0, 0, 0, 0x77}
	must(t, ia.SetupRemote(ctx, remote(ghost, "10.0.0.77", b.IP(), 200)))
	_ = vmA.Ping(ctx, netip.MustParseAddr("10.0.0.77"), 1)
	entries, err := vmA.Neighbours(testfabric.VMInterface)
	must(t, err)
	if !slices.ContainsFunc(entries, func(e testfabric.NeighEntry) bool {
		return e.IP == netip.MustParseAddr("10.0.0.77") && e.MAC == "02:00:00:00:00:77"
	}) {
		t.Errorf("VM A did not get the suppressed ARP answer for 10.0.0.77: %v", entries)
	}
	must(t, ia.RemoveRemote(ctx, remote(ghost, "10.0.0.77", b.IP(), 200)))

	// Two routes for one host (FRR sends MAC-only and MAC+IP): one FDB
	// entry, removed with the last route.
	must(t, ia.SetupRemote(ctx, remote(macB, "", b.IP(), 200)))
	must(t, ia.RemoveRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	wantList(t, "FDB with the MAC-only route left", fdb(t, a, vx.Name),
		fmt.Sprintf("%s dev %s dst %s vni 200 self", vmB.MAC, vx.Name, b.IP()),
		fmt.Sprintf("%s dev %s master", vmB.MAC, vx.Name),
		fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx.Name, b.IP()))
	wantList(t, "neighbours with the MAC-only route left", neighbours(t, a, br.Name))
	// Without a neighbour entry ARP goes through the tunnel: still works.
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 3))
	must(t, ia.RemoveRemote(ctx, remote(macB, "", b.IP(), 200)))
	wantList(t, "FDB without routes", fdb(t, a, vx.Name), fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx.Name, b.IP()))

	// A MAC advertised by two VTEPs: the latest wins, the older comes back
	// when the latest goes.
	other := netip.MustParseAddr("10.250.0.99")
	must(t, ia.SetupRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	must(t, ia.SetupRemote(ctx, remote(macB, "10.0.0.2", other, 201)))
	wantList(t, "FDB with two VTEPs for a MAC", fdb(t, a, vx.Name),
		fmt.Sprintf("%s dev %s dst %s vni 201 self", vmB.MAC, vx.Name, other),
		fmt.Sprintf("%s dev %s master", vmB.MAC, vx.Name),
		fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx.Name, b.IP()))
	must(t, ia.RemoveRemote(ctx, remote(macB, "10.0.0.2", other, 201)))
	wantList(t, "FDB after the latest VTEP left", fdb(t, a, vx.Name),
		fmt.Sprintf("%s dev %s dst %s vni 200 self", vmB.MAC, vx.Name, b.IP()),
		fmt.Sprintf("%s dev %s master", vmB.MAC, vx.Name),
		fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx.Name, b.IP()))
	wantList(t, "neighbours after the latest VTEP left", neighbours(t, a, br.Name), "10.0.0.2 "+vmB.MAC.String())
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 3))

	// Flooding entries are reference counted too.
	must(t, ia.AddBUM(ctx, b.IP(), 200, nil))
	must(t, ia.RemoveBUM(ctx, b.IP(), 200))
	if got := fdb(t, a, vx.Name); !slices.Contains(got, fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx.Name, b.IP())) {
		t.Errorf("flooding entry removed while still referenced: %q", got)
	}

	// A second instance whose id has the same first 8 bytes gets other
	// names; removing it leaves the first one alone.
	i2 := newInstance(t, da, 2, "evpn-net2", 300, "")
	v2 := lg(i2)
	if v2["linux_bridge"] == br.Name || v2["vxlan_if"] == vx.Name ||
		!strings.HasPrefix(v2["linux_bridge"].(string), linux.BridgePrefix) || !strings.HasPrefix(v2["vxlan_if"].(string), linux.VXLANPrefix) {
		t.Fatalf("second instance names: %v", v2)
	}
	if l, ok := link(t, a, v2["vxlan_if"].(string)); !ok || l.VNI != 300 || l.Master != v2["linux_bridge"] {
		t.Fatalf("second instance VXLAN device: %+v", l)
	}
	must(t, i2.Cleanup(ctx))
	for _, name := range []string{v2["linux_bridge"].(string), v2["vxlan_if"].(string)} {
		if _, ok := link(t, a, name); ok {
			t.Errorf("%s still exists after the cleanup of its instance", name)
		}
	}
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 3))

	// Unplug: the port leaves the bridge, its MAC entry goes.
	must(t, ia.VIFUnplugged(ctx, endpoint(vmA), true))
	if port, _ := link(t, a, vmA.HostIf); port.Master != "" {
		t.Errorf("VM port still on %s after unplug", port.Master)
	}
	// Cleanup: no kernel object left; remote calls afterwards do nothing.
	must(t, ia.Cleanup(ctx))
	for _, name := range []string{br.Name, vx.Name} {
		if _, ok := link(t, a, name); ok {
			t.Errorf("%s still exists after cleanup", name)
		}
	}
	must(t, ia.SetupRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	if _, ok := link(t, a, vmA.HostIf); !ok {
		t.Error("the VM port was deleted")
	}
	// The same instance id can be created again (the reference failed:
	// its VXLAN device was never deleted).
	again := newInstance(t, da, 3, "evpn-net1", 100, "")
	if v := lg(again); v["linux_bridge"] != br.Name || v["vxlan_if"] != vx.Name {
		t.Errorf("re-created instance: %v", v)
	}
	must(t, again.Cleanup(ctx))
}

func mustLink(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReferenceProxyDropsARPReplies shows why this driver does not use the
// reference's "proxy" VXLAN devices: B's VM answers an ARP request that
// came through the tunnel, and B's proxy VXLAN device drops the reply.
func TestReferenceProxyDropsARPReplies(t *testing.T) {
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 2, Names: []string{"a", "b"}})
	a, b := fab.Node(0), fab.Node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	da, db := newDriver(t, a, false), newDriver(t, b, true)
	ia := newInstance(t, da, 1, "net1", 100, "")
	ib := newInstance(t, db, 1, "net1", 100, "")
	vmA, vmB := addVM(t, a, "a1", "10.0.0.1/24"), addVM(t, b, "b1", "10.0.0.2/24")
	must(t, ia.VIFPlugged(ctx, endpoint(vmA)))
	must(t, ib.VIFPlugged(ctx, endpoint(vmB)))
	must(t, ia.SetupRemote(ctx, remote(macOf(vmB.MAC), "10.0.0.2", b.IP(), 100)))
	must(t, ia.AddBUM(ctx, b.IP(), 100, nil))
	must(t, ib.SetupRemote(ctx, remote(macOf(vmA.MAC), "10.0.0.1", a.IP(), 100)))
	must(t, ib.AddBUM(ctx, a.IP(), 100, nil))
	if vx, _ := link(t, b, "vxlan--net1"); !vx.Proxy {
		t.Fatalf("B's VXLAN device is not in proxy mode: %+v", vx)
	}
	// Both sides know each other's IP: works.
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 3))
	// An IP of B's VM that no route carries: the reply is dropped.
	must(t, vmB.Netlink().AddrAdd(mustLink(t, vmB.Netlink(), testfabric.VMInterface),
		&netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.0.0.102"), Mask: net.CIDRMask(24, 32)}}))
	if err := vmA.Ping(ctx, netip.MustParseAddr("10.0.0.102"), 2); err == nil {
		t.Fatal("ping of an unadvertised address through a proxy VXLAN device succeeded: the test no longer shows the reference defect")
	}
}

func TestLinuxBridgeGiven(t *testing.T) {
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 1})
	n := fab.Node(0)
	h := n.Netlink()
	ctx := context.Background()
	for _, name := range []string{"brq1", "brq2"} {
		must(t, h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}))
		must(t, h.LinkSetUp(mustLink(t, h, name)))
	}
	d := newDriver(t, n, false)
	vm := addVM(t, n, "v1", "10.0.0.1/24")
	must(t, h.LinkSetHardwareAddr(mustLink(t, h, vm.HostIf), net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	must(t, h.LinkSetMaster(mustLink(t, h, vm.HostIf), mustLink(t, h, "brq1")))

	inst := newInstance(t, d, 1, "net1", 100, "brq1")
	v := lg(inst)
	vxName := v["vxlan_if"].(string)
	if v["linux_bridge"] != "brq1" || vxName != "vxlan--net1" {
		t.Fatalf("looking glass: %v", v)
	}
	if l, _ := link(t, n, vxName); l.Master != "brq1" || l.VNI != 100 {
		t.Fatalf("VXLAN device: %+v", l)
	}
	must(t, inst.VIFPlugged(ctx, endpoint(vm)))
	mac := route.MAC{0x02, 0, 0, 0, 0, 0x22}
	must(t, inst.SetupRemote(ctx, remote(mac, "10.0.0.2", netip.MustParseAddr("10.250.0.2"), 100)))
	wantList(t, "neighbours of brq1", neighbours(t, n, "brq1"), "10.0.0.2 02:00:00:00:00:22")
	must(t, inst.VIFUnplugged(ctx, endpoint(vm), true))
	if l, _ := link(t, n, vm.HostIf); l.Master != "brq1" {
		t.Errorf("a port of a linuxbr bridge was moved: %+v", l)
	}
	must(t, inst.Cleanup(ctx))
	if _, ok := link(t, n, "brq1"); !ok {
		t.Fatal("the linuxbr bridge was deleted")
	}
	if _, ok := link(t, n, vxName); ok {
		t.Error("our VXLAN device survived the cleanup")
	}
	wantList(t, "neighbours of brq1 after cleanup", neighbours(t, n, "brq1"))

	// A bridge that already has a VXLAN port of the VNI: it is used, and
	// left in place with only our entries removed.
	foreign := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vx500"}, VxlanId: 500, SrcAddr: n.IP().AsSlice(), Port: 4789}
	must(t, h.LinkAdd(foreign))
	must(t, h.LinkSetMaster(mustLink(t, h, "vx500"), mustLink(t, h, "brq2")))
	must(t, h.LinkSetUp(mustLink(t, h, "vx500")))
	reuse := newInstance(t, d, 2, "net2", 500, "brq2")
	if v := lg(reuse); v["vxlan_if"] != "vx500" {
		t.Fatalf("reuse: %v", v)
	}
	must(t, reuse.SetupRemote(ctx, remote(mac, "", netip.MustParseAddr("10.250.0.2"), 500)))
	must(t, reuse.AddBUM(ctx, netip.MustParseAddr("10.250.0.2"), 500, nil))
	if got := fdb(t, n, "vx500"); len(got) != 3 {
		t.Fatalf("FDB of the reused device: %q", got)
	}
	must(t, reuse.Cleanup(ctx))
	if _, ok := link(t, n, "vx500"); !ok {
		t.Fatal("a VXLAN device we did not create was deleted")
	}
	wantList(t, "FDB of the reused device after cleanup", fdb(t, n, "vx500"))
}

func TestResetState(t *testing.T) {
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 1})
	n := fab.Node(0)
	h := n.Netlink()
	ctx := context.Background()
	// A run that crashed: an instance on a bridge of ours and one on a
	// linuxbr bridge, never cleaned up.
	must(t, h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brq1"}}))
	must(t, h.LinkSetUp(mustLink(t, h, "brq1")))
	crashed := newDriver(t, n, false)
	newInstance(t, crashed, 1, "a-long-instance-id", 100, "")
	onBrq := newInstance(t, crashed, 2, "b", 200, "brq1")
	mac := route.MAC{0x02, 0, 0, 0, 0, 0x22}
	must(t, onBrq.SetupRemote(ctx, remote(mac, "10.0.0.2", netip.MustParseAddr("10.250.0.2"), 200)))
	// A foreign permanent neighbour entry on brq1 must survive. (The kernel
	// flushes the neighbours of a bridge that loses its last port: give it
	// one more.)
	vm := addVM(t, n, "v1", "10.0.0.1/24")
	must(t, h.LinkSetHardwareAddr(mustLink(t, h, vm.HostIf), net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	must(t, h.LinkSetMaster(mustLink(t, h, vm.HostIf), mustLink(t, h, "brq1")))
	must(t, h.NeighSet(&netlink.Neigh{LinkIndex: mustLink(t, h, "brq1").Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: net.ParseIP("10.0.0.9"), HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 9}}))
	// Leftovers of the Python reference (no alias), and foreign links.
	must(t, h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "evpn---old"}}))
	must(t, h.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vxlan--old"}, VxlanId: 7, Port: 4789}))
	must(t, h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brfoo"}}))
	must(t, h.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vxfoo"}, VxlanId: 8, Port: 4789}))

	before, _ := n.Links()
	t.Logf("links before reset: %v", names(before))
	d := newDriver(t, n, false) // its ResetState runs here
	after, _ := n.Links()
	got := names(after)
	for _, gone := range []string{"evpn---a-long-i", "vxlan--a-long-i", "vxlan--b", "evpn---old", "vxlan--old"} {
		if slices.Contains(got, gone) {
			t.Errorf("%s left by an earlier run survived ResetState (links: %v)", gone, got)
		}
	}
	for _, kept := range []string{"brq1", "brfoo", "vxfoo", n.Interface()} {
		if !slices.Contains(got, kept) {
			t.Errorf("ResetState deleted %s (links: %v)", kept, got)
		}
	}
	wantList(t, "neighbours of brq1 after reset", neighbours(t, n, "brq1"), "10.0.0.9 02:00:00:00:00:09")
	// Re-creating the instances gives one object each, same names.
	inst := newInstance(t, d, 1, "a-long-instance-id", 100, "")
	if v := lg(inst); v["linux_bridge"] != "evpn---a-long-i" {
		t.Errorf("re-created instance: %v", v)
	}
	bridges, _ := n.LinksOfKind("bridge", linux.BridgePrefix)
	vxlans, _ := n.LinksOfKind("vxlan", linux.VXLANPrefix)
	if len(bridges) != 1 || len(vxlans) != 1 {
		t.Errorf("after re-creation: bridges %v, VXLAN devices %v", bridges, vxlans)
	}
	// ResetState never touches the links of live instances.
	must(t, d.ResetState(ctx))
	if _, ok := link(t, n, "evpn---a-long-i"); !ok {
		t.Error("ResetState deleted a live instance's bridge")
	}
	must(t, inst.Cleanup(ctx))
}

func names(links []testfabric.LinkInfo) []string {
	var out []string
	for _, l := range links {
		out = append(out, l.Name)
	}
	return out
}
