package linux_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/linux"
	"bagpipe/internal/route"
	"bagpipe/internal/testfabric"
)

// newDriverAdopting returns a driver as the daemon builds it at a restart
// with a state directory: told what to adopt before its ResetState.
func newDriverAdopting(t *testing.T, n *testfabric.Node, ids ...string) *linux.Driver {
	t.Helper()
	d, err := linux.New(linux.Config{LocalAddress: n.IP(), VXLANPort: 4789, Netlink: n.Netlink()})
	if err != nil {
		t.Fatal(err)
	}
	d.KeepForAdoption(ids)
	must(t, d.ResetState(context.Background()))
	return d
}

func ifindex(t *testing.T, n *testfabric.Node, name string) int {
	t.Helper()
	l, err := n.Netlink().LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l.Attrs().Index
}

// A restarted driver takes over the links and entries of the restored
// instances: same devices (ifindex), traffic flowing before any route is
// received; the routes confirm entries, and the sweep removes the rest
// and the links of instances that were not restored.
func TestAdoption(t *testing.T) {
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 2, Names: []string{"a", "b"}})
	a, b := fab.Node(0), fab.Node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The first run on A, killed: net1 (restored), net2 (recorded but not
	// restored) and gone (not recorded any more).
	first := newDriver(t, a, false)
	ia := newInstance(t, first, 1, "evpn-net1", 100, "")
	net2 := newInstance(t, first, 2, "evpn-net2", 300, "")
	gone := newInstance(t, first, 3, "evpn-gone", 400, "")
	db := newDriver(t, b, false)
	ib := newInstance(t, db, 1, "evpn-net1", 200, "")
	vmA, vmA2, vmB := addVM(t, a, "a1", "10.0.0.1/24"), addVM(t, a, "a2", "10.0.0.3/24"), addVM(t, b, "b1", "10.0.0.2/24")
	must(t, ia.VIFPlugged(ctx, endpoint(vmA)))
	must(t, ia.VIFPlugged(ctx, endpoint(vmA2))) // detached while the daemon was down
	must(t, ib.VIFPlugged(ctx, endpoint(vmB)))
	macA, macB := macOf(vmA.MAC), macOf(vmB.MAC)
	ghost := route.MAC{0x02, 0, 0, 0, 0, 0x77}
	other := netip.MustParseAddr("10.250.0.99")
	must(t, ia.SetupRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	must(t, ia.AddBUM(ctx, b.IP(), 200, nil))
	must(t, ia.SetupRemote(ctx, remote(ghost, "10.0.0.77", b.IP(), 200))) // withdrawn while down
	must(t, ia.AddBUM(ctx, other, 201, nil))                              // withdrawn while down
	must(t, ib.SetupRemote(ctx, remote(macA, "10.0.0.1", a.IP(), 100)))
	must(t, ib.AddBUM(ctx, a.IP(), 100, nil))
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 2))
	br, vx := lg(ia)["linux_bridge"].(string), lg(ia)["vxlan_if"].(string)
	brIdx, vxIdx := ifindex(t, a, br), ifindex(t, a, vx)
	net2Br, goneBr := lg(net2)["linux_bridge"].(string), lg(gone)["linux_bridge"].(string)
	fdbBefore, neighBefore := fdb(t, a, vx), neighbours(t, a, br)

	// The restart: the links of the instances to adopt survive ResetState.
	d := newDriverAdopting(t, a, "evpn-net1", "evpn-net2")
	if _, ok := link(t, a, goneBr); ok {
		t.Errorf("%s of an instance not to adopt survived ResetState", goneBr)
	}
	if _, ok := link(t, a, net2Br); !ok {
		t.Fatalf("%s of an instance to adopt deleted by ResetState", net2Br)
	}
	inst := newInstance(t, d, 1, "evpn-net1", 100, "")
	if ifindex(t, a, br) != brIdx || ifindex(t, a, vx) != vxIdx {
		t.Fatal("bridge or VXLAN device re-created instead of adopted")
	}
	// Adopted: 2 remote MACs × (VXLAN + bridge FDB entry), 2 flooding
	// entries, 2 neighbour entries, the local entries of a1 and a2.
	if v := lg(inst); v["linux_bridge"] != br || v["vxlan_if"] != vx || v["adopted_unconfirmed"] != 10 {
		t.Errorf("looking glass: %v", v)
	}
	wantList(t, "FDB right after the adoption", fdb(t, a, vx), fdbBefore...)
	wantList(t, "neighbours right after the adoption", neighbours(t, a, br), neighBefore...)
	// Traffic flows before any route came back.
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 2))

	// The replayed attachment and the routes received confirm entries.
	must(t, inst.VIFPlugged(ctx, endpoint(vmA)))
	must(t, inst.SetupRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	must(t, inst.AddBUM(ctx, b.IP(), 200, nil)) // already there: no error
	must(t, d.SweepAdopted(ctx))

	wantList(t, "FDB after the sweep", fdb(t, a, vx),
		fmt.Sprintf("%s dev %s dst %s vni 200 self", vmB.MAC, vx, b.IP()),
		fmt.Sprintf("%s dev %s master", vmB.MAC, vx),
		fmt.Sprintf("00:00:00:00:00:00 dev %s dst %s vni 200 self", vx, b.IP()))
	wantList(t, "neighbours after the sweep", neighbours(t, a, br), "10.0.0.2 "+vmB.MAC.String())
	wantList(t, "FDB of the confirmed port", fdb(t, a, vmA.HostIf), fmt.Sprintf("%s dev %s master", vmA.MAC, vmA.HostIf))
	if l, _ := link(t, a, vmA2.HostIf); l.Master != "" {
		t.Errorf("the port of an endpoint not restored is still on %s", l.Master)
	}
	wantList(t, "FDB of the released port", fdb(t, a, vmA2.HostIf))
	if _, ok := link(t, a, net2Br); ok {
		t.Errorf("%s of an instance not restored survived the sweep", net2Br)
	}
	if _, ok := lg(inst)["adopted_unconfirmed"]; ok {
		t.Errorf("looking glass after the sweep: %v", lg(inst))
	}
	must(t, vmA.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 2))
	// From now on, as any instance: removing the route removes its entries.
	must(t, inst.RemoveRemote(ctx, remote(macB, "10.0.0.2", b.IP(), 200)))
	wantList(t, "neighbours after the withdrawal", neighbours(t, a, br))
	must(t, inst.Cleanup(ctx))
	if _, ok := link(t, a, br); ok {
		t.Error("adopted bridge not deleted by the cleanup")
	}
}

// Links that do not fit the restored instance (another VNI) are replaced.
func TestAdoptionMismatch(t *testing.T) {
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 1})
	n := fab.Node(0)
	first := newDriver(t, n, false)
	old := newInstance(t, first, 1, "net", 100, "")
	vx := lg(old)["vxlan_if"].(string)
	idx := ifindex(t, n, vx)
	d := newDriverAdopting(t, n, "net")
	inst := newInstance(t, d, 1, "net", 101, "")
	if v := lg(inst); v["vxlan_if"] != vx {
		t.Errorf("names changed: %v", v)
	}
	l, ok := link(t, n, vx)
	if !ok || l.VNI != 101 || ifindex(t, n, vx) == idx {
		t.Errorf("VXLAN device not replaced: %+v", l)
	}
	if _, adopted := lg(inst)["adopted_unconfirmed"]; adopted {
		t.Error("links of another VNI adopted")
	}
	bridges, _ := n.LinksOfKind("bridge", linux.BridgePrefix)
	if len(bridges) != 1 {
		t.Errorf("bridges: %v", names(bridges))
	}
	must(t, d.SweepAdopted(context.Background()))
	must(t, inst.Cleanup(context.Background()))
	var _ dataplane.Adopter = d
}
