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

	"bagpipe/internal/testfabric"
)

// IP VPN with the ovs dataplane driver: a gobgpd route reflector and three
// compute nodes, each with its own userspace Open vSwitch and bagpipe-bgp.
// VMs are namespaces plugged into the node's bridge by the driver.

const (
	rtVPN1      = "64512:11"
	rtVPN2      = "64512:12"
	anycastIP   = "10.9.9.9"
	anycastPort = 7000
)

func TestIPVPNOVS(t *testing.T) {
	testfabric.RequireRoot(t)
	t.Run("mpls-over-gre", func(t *testing.T) {
		t.Parallel()
		// RFC 4023 MPLS-over-GRE (the reference's default is Ethernet-in-GRE).
		runIPVPNOVS(t, "arp_responder = True\ngre_tunnel_options = packet_type=legacy_l3\n", "gre")
	})
	t.Run("ethernet-over-gre", func(t *testing.T) {
		t.Parallel()
		// The reference's default MPLS-over-GRE: MPLS in Ethernet in GRE.
		runIPVPNOVS(t, "arp_responder = True\n", "gre-eth")
	})
	t.Run("bare-mpls", func(t *testing.T) {
		t.Parallel()
		runIPVPNOVS(t, "arp_responder = True\nproxy_arp = True\nmpls_interface = "+testfabric.NodeInterface+"\n", "mpls")
	})
}

type ovsNode struct {
	*testfabric.Bagpipe
	ovs  *testfabric.OVS
	name string
	idx  int // 1, 2, 3: the node's VM subnet is 10.1.<idx>.0/24
}

type vm struct {
	*testfabric.VM
	n  ovsNode
	ip string // address with prefix length, as attached
}

func (n ovsNode) addVM(t *testing.T, name string, host int) vm {
	t.Helper()
	addr := netip.MustParsePrefix(fmt.Sprintf("10.1.%d.%d/24", n.idx, host))
	v, err := n.Node().AddVM(testfabric.VMConfig{
		Name: name, HostIf: "tap-" + name, Addr: addr,
		Gateway: netip.MustParseAddr(fmt.Sprintf("10.1.%d.254", n.idx)),
		MAC:     net.HardwareAddr{0x52, 0x54, 0, 0, byte(n.idx), byte(host)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.DisableOffload(); err != nil {
		t.Fatal(err)
	}
	return vm{VM: v, n: n, ip: addr.String()}
}

func (v vm) req(instance, rt, ip string, extra map[string]any) map[string]any {
	r := map[string]any{
		"vpn_type": "ipvpn", "vpn_instance_id": instance,
		"mac_address": v.MAC.String(), "ip_address": ip,
		"gateway_ip": fmt.Sprintf("10.1.%d.254", v.n.idx),
		"local_port": map[string]any{"linuxif": v.HostIf},
		"import_rt":  []string{rt}, "export_rt": []string{rt},
	}
	for k, x := range extra {
		r[k] = x
	}
	return r
}

func (v vm) attach(instance, rt, ip string, extra map[string]any) {
	v.n.Attach(v.req(instance, rt, ip, extra))
}

func (v vm) detach(instance, rt, ip string) {
	r := v.req(instance, rt, ip, nil)
	delete(r, "import_rt")
	delete(r, "export_rt")
	delete(r, "gateway_ip")
	v.n.Detach(r)
}

// ofctl runs an ovs-ofctl command on a node's bridge.
func (n ovsNode) ofctl(t *testing.T, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := n.ovs.Ofctl(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pingable reports whether one of count pings from v to dst is answered.
func pingable(v vm, dst string, count int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+2)*time.Second)
	defer cancel()
	return v.Ping(ctx, netip.MustParseAddr(dst), count) == nil
}

func waitPing(ctx context.Context, t *testing.T, v vm, dst string) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%s pings %s", v.Name(), dst), func() (bool, string) {
		return pingable(v, dst, 1), "no answer"
	})
}

// anycastServer answers every UDP datagram to the anycast address with the
// server's name.
func anycastServer(t *testing.T, v vm) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := v.Run(ctx, "ip", "addr", "add", anycastIP+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	pc, err := v.ListenPacket("udp4", fmt.Sprintf("%s:%d", anycastIP, anycastPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(v.Name()), from)
		}
	}()
}

// anycastResponders sends one datagram from each of flows source ports of
// the client VM and returns how many answers each server gave.
func anycastResponders(t *testing.T, client vm, flows int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < flows; i++ {
		pc, err := client.ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			dst := &net.UDPAddr{IP: net.ParseIP(anycastIP), Port: anycastPort}
			buf := make([]byte, 64)
			for try := 0; try < 3; try++ {
				_ = pc.SetDeadline(time.Now().Add(700 * time.Millisecond))
				if _, err := pc.WriteTo([]byte("who"), dst); err != nil {
					continue
				}
				if n, _, err := pc.ReadFrom(buf); err == nil {
					mu.Lock()
					got[string(buf[:n])]++
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return got
}

func ourFlows(dump string) []string {
	var out []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.Contains(l, "cookie=0x4250") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func groupLines(dump string) []string {
	var out []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.Contains(l, "group_id=") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// startOVSFabric starts a fabric of a gobgpd route reflector (RT
// Constraint) and one node per name, each with its userspace Open vSwitch
// and our daemon using the OVS IP VPN driver (driverConf: lines of its
// section), and waits for every session.
func startOVSFabric(ctx context.Context, t *testing.T, driverConf string, names ...string) (*testfabric.GoBGP, []ovsNode) {
	t.Helper()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 1 + len(names), Names: append([]string{"rr"}, names...)})
	var clients []netip.Addr
	for _, n := range fab.Nodes()[1:] {
		clients = append(clients, n.IP())
	}
	rr := testfabric.StartGoBGPRR(t, fab.Node(0), testfabric.RRConfig{AS: 64512, Clients: clients, RTC: true})
	var ns []ovsNode
	for i, fn := range fab.Nodes()[1:] {
		o := testfabric.StartOVS(t, fn, "br-mpls")
		b := testfabric.StartBagpipeOVS(t, fn, testfabric.BagpipeConfig{
			Peers: []netip.Addr{rr.Addr()}, RTC: true, ExtraConf: driverConf,
		}, o)
		ns = append(ns, ovsNode{Bagpipe: b, ovs: o, name: fn.Name(), idx: i + 1})
	}
	for _, cl := range clients {
		if err := rr.WaitEstablished(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	return rr, ns
}

func runIPVPNOVS(t *testing.T, driverConf, mode string) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	_, ns := startOVSFabric(ctx, t, driverConf, "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]

	a1, b1, b2, c1 := a.addVM(t, "a1", 1), b.addVM(t, "b1", 1), b.addVM(t, "b2", 2), c.addVM(t, "c1", 1)
	t.Logf("%s: fabric, OVS and daemons up (%v)", mode, time.Since(start).Round(time.Millisecond))
	a1.attach("vpn1", rtVPN1, a1.ip, nil)
	b1.attach("vpn1", rtVPN1, b1.ip, nil)
	c1.attach("vpn1", rtVPN1, c1.ip, nil)
	b2.attach("vpn2", rtVPN2, b2.ip, nil) // another VPN on b: other RTs

	// VMs of one IP VPN on different nodes reach each other.
	waitPing(ctx, t, a1, "10.1.2.1")
	waitPing(ctx, t, b1, "10.1.1.1")
	waitPing(ctx, t, c1, "10.1.1.1")
	t.Logf("%s: VMs of vpn1 ping each other (%v)", mode, time.Since(start).Round(time.Millisecond))
	switch mode {
	case "gre":
		opts, err := a.ovs.Vsctl(ctx, "get", "interface", "mpls_gre", "type", "options:packet_type")
		if err != nil || !strings.Contains(opts, "gre") || !strings.Contains(opts, "legacy_l3") {
			t.Fatalf("GRE tunnel port: %q %v", opts, err)
		}
	case "gre-eth":
		opts, err := a.ovs.Vsctl(ctx, "get", "interface", "mpls_gre", "type")
		if err != nil || !strings.Contains(opts, "gre") {
			t.Fatalf("GRE tunnel port: %q %v", opts, err)
		}
	default:
		if flows := a.ofctl(t, "dump-flows"); !strings.Contains(flows, "in_port=fab0") && !strings.Contains(flows, "in_port=1 ") {
			t.Fatalf("bare MPLS: no flow for MPLS from the fabric interface:\n%s", flows)
		}
	}

	// A prefix route (advertise_subnet): b1 advertises 10.60.0.0/24 too,
	// a installs it by prefix length and a1 reaches an address in it.
	if _, err := b1.Run(ctx, "ip", "addr", "add", "10.60.0.1/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	b1.attach("vpn1", rtVPN1, "10.60.0.0/24", map[string]any{"advertise_subnet": true})
	waitPing(ctx, t, a1, "10.60.0.1")
	if flows := a.ofctl(t, "dump-flows"); !strings.Contains(flows, "priority=36760,ip,reg0=0x1,nw_dst=10.60.0.0/24 ") {
		t.Fatalf("no /24 route flow on a:\n%s", strings.Join(ourFlows(flows), "\n"))
	}
	b1.detach("vpn1", rtVPN1, "10.60.0.0/24")
	waitFor(ctx, t, "a removes the prefix route", func() (bool, string) {
		flows := a.ofctl(t, "dump-flows")
		return !strings.Contains(flows, "nw_dst=10.60.0.0/24"), strings.Join(ourFlows(flows), "\n")
	})

	// VMs of other route targets cannot: a does not import vpn2's RT and
	// b's vpn2 has no route to a.
	if pingable(a1, "10.1.2.2", 2) {
		t.Fatal("a1 (vpn1) reaches b2 (vpn2)")
	}
	if pingable(b2, "10.1.1.1", 2) {
		t.Fatal("b2 (vpn2) reaches a1 (vpn1)")
	}

	if mode == "gre" {
		checkDirections(ctx, t, a, c)
	}

	// The same anycast address behind a port on a and one on b: node c
	// installs both paths in one select group, ordered by
	// lb_consistent_hash_order (bucket ids), and flows reach both.
	a2, b3 := a.addVM(t, "a2", 2), b.addVM(t, "b3", 3)
	anycastServer(t, a2)
	anycastServer(t, b3)
	a2.attach("vpn1", rtVPN1, anycastIP, map[string]any{"lb_consistent_hash_order": 1})
	b3.attach("vpn1", rtVPN1, anycastIP, map[string]any{"lb_consistent_hash_order": 2})
	var group string
	waitFor(ctx, t, "c's ECMP group for "+anycastIP, func() (bool, string) {
		flows, groups := c.ofctl(t, "dump-flows"), c.ofctl(t, "dump-groups")
		for _, f := range ourFlows(flows) {
			if !strings.Contains(f, "nw_dst="+anycastIP+" ") {
				continue
			}
			id := f[strings.Index(f, "group:")+len("group:"):]
			for _, g := range groupLines(groups) {
				if strings.HasPrefix(g, "group_id="+id+",") && strings.Contains(g, "bucket_id:1,") && strings.Contains(g, "bucket_id:2,") {
					group = g
					return true, g
				}
			}
		}
		return false, strings.Join(groupLines(groups), "\n")
	})
	for _, pe := range []string{a.Node().IP().String(), b.Node().IP().String()} {
		want := "->tun_dst"
		if mode == "mpls" {
			want = "set_field:" // MAC rewrite towards the PE
		}
		if !strings.Contains(group, want) || (mode != "mpls" && !strings.Contains(group, pe)) {
			t.Fatalf("ECMP group lacks the path via %s: %s", pe, group)
		}
	}
	// The looking glass shows the driver and the VRF's flows and groups.
	lgDP, err := c.LG("vpns/instances/vpn1/dataplane")
	if err != nil {
		t.Fatal(err)
	}
	if groups := strs(get(lgDP, "groups")); !slices.ContainsFunc(groups, func(g string) bool {
		return strings.Contains(g, "bucket=bucket_id:1,") && strings.Contains(g, "bucket=bucket_id:2,")
	}) || len(strs(get(lgDP, "flows"))) == 0 {
		t.Fatalf("looking glass of c's VRF: %v", lgDP)
	}
	lgDrv, err := c.LG("vpns/dataplane/drivers/ipvpn")
	if err != nil {
		t.Fatal(err)
	}
	if get(lgDrv, "ovs_bridge") != "br-mpls" || get(lgDrv, "tables", "vrf") != float64(2) {
		t.Fatalf("looking glass of c's driver: %v", lgDrv)
	}
	var got map[string]int
	waitFor(ctx, t, "UDP flows from c1 reach both anycast servers", func() (bool, string) {
		got = anycastResponders(t, c1, 32)
		return got["a2"] > 0 && got["b3"] > 0, fmt.Sprint(got)
	})
	t.Logf("%s: ECMP group %s; answers per server %v", mode, group, got)

	// Detaching b's anycast endpoint leaves one bucket: every flow goes to a2.
	b3.detach("vpn1", rtVPN1, anycastIP)
	waitFor(ctx, t, "one bucket left for "+anycastIP, func() (bool, string) {
		got = anycastResponders(t, c1, 16)
		return got["b3"] == 0 && got["a2"] == 16, fmt.Sprint(got, "\n", c.ofctl(t, "dump-groups"), "\n", a.ofctl(t, "dump-flows"))
	})

	// Detach removes the route on the other node and stops the traffic.
	b1.detach("vpn1", rtVPN1, b1.ip)
	waitFor(ctx, t, "a removes its route to b1", func() (bool, string) {
		flows := a.ofctl(t, "dump-flows")
		return !strings.Contains(flows, "nw_dst=10.1.2.1 "), strings.Join(ourFlows(flows), "\n")
	})
	if pingable(a1, "10.1.2.1", 2) {
		t.Fatal("a1 still reaches b1 after its detach")
	}
	if !pingable(a1, "10.1.3.1", 3) {
		t.Fatal("a1 no longer reaches c1")
	}

	// The last detach on b leaves no flow, group or port of ours.
	b2.detach("vpn2", rtVPN2, b2.ip)
	waitFor(ctx, t, "nothing of ours left on b", func() (bool, string) {
		flows, groups := b.ofctl(t, "dump-flows"), b.ofctl(t, "dump-groups")
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		ports, err := b.ovs.Vsctl(pctx, "list-ports", "br-mpls")
		pcancel()
		state := fmt.Sprintf("flows %v groups %v ports %q err %v", ourFlows(flows), groupLines(groups), ports, err)
		return err == nil && len(ourFlows(flows)) == 0 && len(groupLines(groups)) == 0 && strings.TrimSpace(ports) == testfabric.NodeInterface, state
	})
	if mode == "gre" {
		restartReconciles(ctx, t, a, a1, c1)
	}
	t.Logf("%s: done in %v", mode, time.Since(start).Round(time.Millisecond))
}

// restartReconciles kills a's daemon (its VRF still has a1 and a2) and
// starts a new one: at its first attach, what the dead one left is removed
// (a2's port and flows), and a1, attached again, works.
func restartReconciles(ctx context.Context, t *testing.T, a ovsNode, a1, c1 vm) {
	t.Helper()
	if err := a.Process().Kill(); err != nil {
		t.Fatal(err)
	}
	if len(ourFlows(a.ofctl(t, "dump-flows"))) == 0 {
		t.Fatal("the killed daemon left no flow: nothing to reconcile")
	}
	a.Bagpipe = testfabric.StartBagpipeOVS(t, a.Node(), testfabric.BagpipeConfig{
		Peers: []netip.Addr{testfabric.FabricSubnet.Addr().Next()}, RTC: true,
		ExtraConf: "arp_responder = True\ngre_tunnel_options = packet_type=legacy_l3\n",
	}, a.ovs)
	a1.n = a
	a1.attach("vpn1", rtVPN1, a1.ip, nil)
	flows := a.ofctl(t, "dump-flows")
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ports, err := a.ovs.Vsctl(pctx, "list-ports", "br-mpls")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ports, "tap-a2") || strings.Contains(flows, "52:54:00:00:01:02") {
		t.Fatalf("leftovers of the killed daemon: ports %q flows\n%s", ports, strings.Join(ourFlows(flows), "\n"))
	}
	waitPing(ctx, t, a1, "10.1.3.1")
}

// checkDirections plugs a from-port VM and a to-port VM on c: the first
// gets only the classification of its traffic (no route advertised, no
// incoming flow), the second only its route and incoming flow.
func checkDirections(ctx context.Context, t *testing.T, a, c ovsNode) {
	t.Helper()
	from, to := c.addVM(t, "c2", 2), c.addVM(t, "c3", 3)
	from.attach("vpn1", rtVPN1, from.ip, map[string]any{"direction": "from-port"})
	to.attach("vpn1", rtVPN1, to.ip, map[string]any{"direction": "to-port"})
	waitFor(ctx, t, "a's route to the to-port VM", func() (bool, string) {
		flows := a.ofctl(t, "dump-flows")
		return strings.Contains(flows, "nw_dst=10.1.3.3 "), strings.Join(ourFlows(flows), "\n")
	})
	flows := a.ofctl(t, "dump-flows")
	cf := strings.Join(ourFlows(c.ofctl(t, "dump-flows")), "\n")
	ports, err := c.ovs.Vsctl(ctx, "--columns=name,ofport", "list", "interface", "tap-c2", "tap-c3")
	if err != nil {
		t.Fatal(err)
	}
	var fromPort, toPort string
	for _, blk := range strings.Split(ports, "\n\n") {
		fields := strings.Fields(blk)
		if len(fields) >= 6 {
			if strings.Contains(blk, "tap-c2") {
				fromPort = fields[5]
			} else {
				toPort = fields[5]
			}
		}
	}
	switch {
	case strings.Contains(flows, "nw_dst=10.1.3.2 "):
		t.Fatalf("a has a route to the from-port VM:\n%s", strings.Join(ourFlows(flows), "\n"))
	case fromPort == "" || toPort == "":
		t.Fatalf("ofports of tap-c2 / tap-c3: %q", ports)
	case !strings.Contains(cf, "ip,in_port="+fromPort+" "):
		t.Fatalf("no classification of the from-port VM's traffic on c (port %s):\n%s", fromPort, cf)
	case strings.Contains(cf, "dl_dst:"+from.MAC.String()) || strings.Contains(cf, "->eth_dst,output:"+fromPort):
		t.Fatalf("incoming flow to the from-port VM on c:\n%s", cf)
	case strings.Contains(cf, "in_port="+toPort+" "):
		t.Fatalf("classification of the to-port VM's traffic on c:\n%s", cf)
	case !strings.Contains(cf, "->eth_dst,output:"+toPort):
		t.Fatalf("no incoming flow to the to-port VM on c (port %s):\n%s", toPort, cf)
	}
	from.detach("vpn1", rtVPN1, from.ip)
	to.detach("vpn1", rtVPN1, to.ip)
}
