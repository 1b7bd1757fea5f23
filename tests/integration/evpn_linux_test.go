package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"bagpipe/internal/testfabric"
)

// End-to-end E-VPN with the linux dataplane driver: a route reflector and
// two compute nodes running bagpipe-bgp with [DATAPLANE_DRIVER_EVPN]
// dataplane_driver = linux, VMs (namespaces) attached through the REST API
// (and one through bagpipe-rest-attach --port netns), real traffic.

const (
	rtNet1 = "64512:101"
	rtNet2 = "64512:102" // same subnet as net1, another route target
)

func TestEVPNLinuxThroughGoBGP(t *testing.T) {
	t.Parallel()
	runEVPNLinux(t, "gobgp")
}

func TestEVPNLinuxThroughFRR(t *testing.T) {
	t.Parallel()
	runEVPNLinux(t, "frr")
}

// evm is a VM and the attach request that plugs it.
type evm struct {
	*testfabric.VM
	name     string
	instance string
	ip       netip.Addr
	req      map[string]any
}

func linuxAttachReq(instance, rt, hostIf string, mac net.HardwareAddr, ip string) map[string]any {
	return map[string]any{
		"vpn_type": "evpn", "vpn_instance_id": instance,
		"mac_address": mac.String(), "ip_address": ip + "/24",
		"local_port": map[string]any{"linuxif": hostIf},
		"import_rt":  []string{rt}, "export_rt": []string{rt},
	}
}

func detachReq(attach map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"vpn_type", "vpn_instance_id", "mac_address", "ip_address", "local_port"} {
		out[k] = attach[k]
	}
	return out
}

// instanceLinks returns the bridge, VXLAN device and VNI of an instance
// from the looking glass.
func instanceLinks(t *testing.T, b *testfabric.Bagpipe, instance string) (bridge, vxlan string, vni int) {
	t.Helper()
	v, err := b.LG("vpns/instances/" + instance)
	if err != nil {
		t.Fatal(err)
	}
	dp, err := b.LG("vpns/instances/" + instance + "/dataplane")
	if err != nil {
		t.Fatal(err)
	}
	bridge, _ = get(dp, "linux_bridge").(string)
	vxlan, _ = get(dp, "vxlan_if").(string)
	if bridge == "" || vxlan == "" {
		t.Fatalf("%s dataplane looking glass: %v", instance, dp)
	}
	return bridge, vxlan, int(get(v, "instance_dataplane_id").(float64))
}

// remoteFDB returns the VXLAN FDB entries (self, with a destination) of a
// device, as "<mac> dst <vtep> vni <vni>"; VNI 0 stands for the device's.
func remoteFDB(n *testfabric.Node, dev string) ([]string, error) {
	entries, err := n.FDB(dev)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Self && e.Dst.IsValid() {
			out = append(out, fmt.Sprintf("%s dst %s vni %d", e.MAC, e.Dst, e.VNI))
		}
	}
	slices.Sort(out)
	return out, nil
}

// fdbEntry is the expected remoteFDB entry of mac towards a VTEP with a VNI
// (the kernel omits the VNI when it is the device's own).
func fdbEntry(mac net.HardwareAddr, vtep netip.Addr, vni, ownVNI int) string {
	if vni == ownVNI {
		vni = 0
	}
	return fmt.Sprintf("%s dst %s vni %d", mac, vtep, vni)
}

// pingAll runs the pings concurrently; want[i] tells whether ping i must
// succeed.
type pingCase struct {
	from *evm
	to   netip.Addr
	want bool
}

func pingAll(ctx context.Context, t *testing.T, what string, cases ...pingCase) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]string, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if c.want {
				// Retries cover the last route of a change still being
				// programmed.
				for try := 0; try < 3; try++ {
					if err = c.from.Ping(ctx, c.to, 3); err == nil {
						break
					}
				}
			} else {
				err = c.from.Ping(ctx, c.to, 2)
			}
			switch {
			case c.want && err != nil:
				errs[i] = fmt.Sprintf("%s -> %s: no answer: %v", c.from.name, c.to, err)
			case !c.want && err == nil:
				errs[i] = fmt.Sprintf("%s -> %s: answered, must not", c.from.name, c.to)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Errorf("%s: %s", what, e)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func runEVPNLinux(t *testing.T, rrKind string) {
	testfabric.RequireRoot(t)
	start := time.Now()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "a", "b"}})
	rrNode, na, nb := fab.Node(0), fab.Node(1), fab.Node(2)
	rtc := rrKind == "gobgp"
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: []netip.Addr{na.IP(), nb.IP()}, RTC: rtc}
	var rr testfabric.RouteReflector
	if rtc {
		rr = testfabric.StartGoBGPRR(t, rrNode, rrCfg)
	} else {
		rr = testfabric.StartFRRRR(t, rrNode, rrCfg)
	}
	cfg := testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: rtc, EVPN: "linux"}
	A, B := testfabric.StartBagpipe(t, na, cfg), testfabric.StartBagpipe(t, nb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, c := range rrCfg.Clients {
		if err := rr.WaitEstablished(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	// VMs: a1, b1 in net1; a2, b2 in net2, same subnet. The instance ids
	// share their first 8 bytes: their kernel names must not collide.
	addVM := func(n *testfabric.Node, name, instance, rt, ip string) *evm {
		vm, err := n.AddVM(testfabric.VMConfig{Name: name, Addr: netip.MustParsePrefix(ip + "/24"), MTU: 1450})
		if err != nil {
			t.Fatal(err)
		}
		return &evm{VM: vm, name: name, instance: instance, ip: netip.MustParseAddr(ip),
			req: linuxAttachReq(instance, rt, vm.HostIf, vm.MAC, ip)}
	}
	a1 := addVM(na, "a1", "evpn-net1", rtNet1, "10.0.0.1")
	a2 := addVM(na, "a2", "evpn-net2", rtNet2, "10.0.0.3")
	b1 := addVM(nb, "b1", "evpn-net1", rtNet1, "10.0.0.2")
	for _, vm := range []*evm{a1, a2} {
		A.Attach(vm.req)
	}
	B.Attach(b1.req)
	// b2 is created and attached by bagpipe-rest-attach's namespace helper.
	b2ns, b2if := fab.Prefix()+"b2", "ns-b2"
	t.Cleanup(func() { _ = testfabric.DeleteNamespace(b2ns) })
	out, err := nb.Run(ctx, testfabric.Binary(t, "bagpipe-rest-attach"), "--attach", "--network-type", "evpn",
		"--vpn-instance-id", "evpn-net2", "--rt", rtNet2, "--port", "netns:"+b2if, "--netns", b2ns,
		"--ip", "10.0.0.4/24", "--api-port", "8082", "--config-file", "/nonexistent/bgp.conf")
	if err != nil {
		t.Fatalf("bagpipe-rest-attach --port netns: %v\n%s", err, out)
	}
	b2vm, err := nb.AdoptVM(b2ns, b2if)
	if err != nil {
		t.Fatal(err)
	}
	b2mac, err := b2vm.Netlink().LinkByName("tovpn")
	if err != nil {
		t.Fatal(err)
	}
	b2 := &evm{VM: b2vm, name: "b2", instance: "evpn-net2", ip: netip.MustParseAddr("10.0.0.4"),
		req: linuxAttachReq("evpn-net2", rtNet2, b2if, b2mac.Attrs().HardwareAddr, "10.0.0.4")}
	if b2mac.Attrs().MTU != 1450 {
		t.Errorf("netns helper: VM MTU %d, want 1450", b2mac.Attrs().MTU)
	}

	// Each node's kernel FDB gets the other node's MACs towards its VTEP,
	// with the other node's VNI.
	waitFDB := func(what string, local *testfabric.Bagpipe, instance string, want func(own int) []string) {
		t.Helper()
		_, vx, own := instanceLinks(t, local, instance)
		waitFor(ctx, t, what, func() (bool, string) {
			got, err := remoteFDB(local.Node(), vx)
			w := want(own)
			return err == nil && slices.Equal(got, w), fmt.Sprintf("FDB of %s: %q (error %v), want %q", vx, got, err, w)
		})
	}
	vniOf := func(b *testfabric.Bagpipe, instance string) int { _, _, v := instanceLinks(t, b, instance); return v }
	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	expectFDB := func(local, remote *testfabric.Bagpipe, instance string, vms ...*evm) func(int) []string {
		return func(own int) []string {
			vni := vniOf(remote, instance)
			out := []string{fdbEntry(zero, remote.Node().IP(), vni, own)}
			for _, vm := range vms {
				out = append(out, fdbEntry(vm.MAC, remote.Node().IP(), vni, own))
			}
			slices.Sort(out)
			return out
		}
	}
	b2.MAC = b2mac.Attrs().HardwareAddr
	checkConverged := func(when string) {
		t.Helper()
		waitFDB(when+": B's MACs in A's net1 FDB", A, "evpn-net1", expectFDB(A, B, "evpn-net1", b1))
		waitFDB(when+": A's MACs in B's net1 FDB", B, "evpn-net1", expectFDB(B, A, "evpn-net1", a1))
		waitFDB(when+": B's MACs in A's net2 FDB", A, "evpn-net2", expectFDB(A, B, "evpn-net2", b2))
		waitFDB(when+": A's MACs in B's net2 FDB", B, "evpn-net2", expectFDB(B, A, "evpn-net2", a2))
	}
	checkConverged("after the attachments")
	br1, vx1, _ := instanceLinks(t, A, "evpn-net1")
	br2, vx2, _ := instanceLinks(t, A, "evpn-net2")
	if br1 == br2 || vx1 == vx2 {
		t.Fatalf("two instances share kernel names: %s/%s and %s/%s", br1, vx1, br2, vx2)
	}
	// ARP suppression entries on the bridge of each node.
	if ns, err := na.Neighbours(br1); err != nil || !slices.ContainsFunc(ns, func(e testfabric.NeighEntry) bool {
		return e.IP == b1.ip && e.MAC == b1.MAC.String()
	}) {
		t.Errorf("A's %s lacks the neighbour entry of b1: %v %v", br1, ns, err)
	}
	// An address of b1 that no route carries: reached through ARP across
	// the tunnel (the reference's proxy VXLAN device dropped the replies).
	must(t, b1.Netlink().AddrAdd(mustLinkByName(t, b1.Netlink(), testfabric.VMInterface),
		&netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.0.0.102"), Mask: net.CIDRMask(24, 32)}}))
	pingAll(ctx, t, "after the attachments",
		pingCase{a1, b1.ip, true}, pingCase{a2, b2.ip, true}, pingCase{a1, netip.MustParseAddr("10.0.0.102"), true},
		// Isolation by route target on the same subnet.
		pingCase{a2, b1.ip, false}, pingCase{a1, b2.ip, false}, pingCase{a1, a2.ip, false})
	t.Logf("%s: converged and pinging after %v", rrKind, time.Since(start).Round(time.Millisecond))

	// Detaching b1 stops traffic to it and removes its MAC from A.
	B.Detach(detachReq(b1.req))
	waitFDB("b1's MAC removed from A", A, "evpn-net1", func(int) []string { return nil })
	if ns, _ := na.Neighbours(br1); slices.ContainsFunc(ns, func(e testfabric.NeighEntry) bool { return e.IP == b1.ip }) {
		t.Errorf("A's neighbour entry of b1 survived its detach: %v", ns)
	}
	pingAll(ctx, t, "after detaching b1", pingCase{a1, b1.ip, false})

	// Detaching the last VM of net1 on A removes its bridge and VXLAN
	// device; net2 is untouched.
	A.Detach(detachReq(a1.req))
	for _, name := range []string{br1, vx1} {
		if _, ok := linkOf(t, na, name); ok {
			t.Errorf("%s still exists on A after the last detach of its instance", name)
		}
	}
	for _, name := range []string{br2, vx2} {
		if _, ok := linkOf(t, na, name); !ok {
			t.Errorf("%s of net2 vanished from A", name)
		}
	}
	if l, _ := linkOf(t, na, a1.HostIf); l.Master != "" {
		t.Errorf("a1's port still on %s", l.Master)
	}

	// Re-attaching restores traffic.
	A.Attach(a1.req)
	B.Attach(b1.req)
	checkConverged("after re-attaching")
	pingAll(ctx, t, "after re-attaching", pingCase{a1, b1.ip, true}, pingCase{a2, b2.ip, true})

	// SIGKILL: the kernel objects stay; a restarted daemon and the replayed
	// attachments restore traffic, with no duplicated kernel object.
	pingBefore, err := A.Ping()
	if err != nil {
		t.Fatal(err)
	}
	if err := A.Kill(); err != nil {
		t.Fatal(err)
	}
	if l, ok := linkOf(t, na, vx1); !ok || l.Master == "" {
		t.Fatalf("the kill removed %s: the test would not check the reconciliation", vx1)
	}
	if err := A.Start(); err != nil {
		t.Fatal(err)
	}
	if p, err := A.Ping(); err != nil || p == pingBefore {
		t.Fatalf("/ping after restart: %q (before %q), %v", p, pingBefore, err)
	}
	if err := rr.WaitEstablished(ctx, na.IP()); err != nil {
		t.Fatal(err)
	}
	for _, vm := range []*evm{a1, a2} { // the client's replay
		A.Attach(vm.req)
	}
	checkConverged("after the restart and replay")
	pingAll(ctx, t, "after the restart and replay",
		pingCase{a1, b1.ip, true}, pingCase{a2, b2.ip, true}, pingCase{a2, b1.ip, false})
	bridges, err := na.LinksOfKind("bridge", "evpn---")
	if err != nil {
		t.Fatal(err)
	}
	vxlans, err := na.LinksOfKind("vxlan", "vxlan--")
	if err != nil {
		t.Fatal(err)
	}
	if len(bridges) != 2 || len(vxlans) != 2 {
		t.Errorf("after the restart A has bridges %v and VXLAN devices %v, want 2 of each", linkNames(bridges), linkNames(vxlans))
	}
	for _, vm := range []*evm{a1, a2} {
		br, vx, _ := instanceLinks(t, A, vm.instance)
		if l, _ := linkOf(t, na, vm.HostIf); l.Master != br {
			t.Errorf("%s's port is on %q, want %s", vm.name, l.Master, br)
		}
		if l, _ := linkOf(t, na, vx); l.Master != br || !l.Up {
			t.Errorf("%s: %+v", vx, l)
		}
	}
	t.Logf("%s: done in %v", rrKind, time.Since(start).Round(time.Millisecond))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustLinkByName(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func linkOf(t *testing.T, n *testfabric.Node, name string) (testfabric.LinkInfo, bool) {
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

func linkNames(ls []testfabric.LinkInfo) string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return strings.Join(out, ",")
}
