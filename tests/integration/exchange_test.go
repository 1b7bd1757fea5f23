// Package integration runs our daemons against real route reflectors
// (gobgpd, FRR bgpd) in network namespaces the tests create. They need
// root; CI runs them as root.
package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

const (
	rtEVPN  = "64512:100"
	rtIPVPN = "64512:200"
	rtOther = "64512:999" // exported by node B only, imported by nobody on A
)

type node struct {
	*testfabric.Bagpipe
	name string
	mac  string // VM MAC in both VPNs
	ip   string // VM address (last octet differs per node)
}

func evpnAttach(n node, instance, rt, mac, ip string) map[string]any {
	return map[string]any{
		"vpn_type": "evpn", "vpn_instance_id": instance,
		"mac_address": mac, "ip_address": "10.0.0." + ip,
		"local_port": map[string]any{"linuxif": "tap-e" + ip},
		"import_rt":  []string{rt}, "export_rt": []string{rt},
	}
}

func ipvpnAttach(n node, ip string) map[string]any {
	return map[string]any{
		"vpn_type": "ipvpn", "vpn_instance_id": "ipvpn-net1",
		"mac_address": n.mac, "ip_address": "10.1.0." + ip + "/24",
		"gateway_ip": "10.1.0.254",
		"local_port": map[string]any{"linuxif": "tap-i" + ip},
		"import_rt":  []string{rtIPVPN}, "export_rt": rtIPVPN, // string form, as some clients send
	}
}

func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

// remotes returns the remote entries the dummy dataplane of an instance holds.
func remotes(n node, instance string) ([]string, []string, error) {
	v, err := n.LG("vpns/instances/" + instance + "/dataplane")
	if err != nil {
		return nil, nil, err
	}
	return strs(get(v, "remotes")), strs(get(v, "flooding")), nil
}

func instanceLabel(t *testing.T, n node, instance string) int {
	v, err := n.LG("vpns/instances/" + instance)
	if err != nil {
		t.Fatal(err)
	}
	return int(get(v, "instance_dataplane_id").(float64))
}

func portLabel(t *testing.T, n node, instance, port string) int {
	v, err := n.LG("vpns/instances/" + instance + "/ports")
	if err != nil {
		t.Fatal(err)
	}
	eps, _ := get(v, port, "endpoints").([]any)
	if len(eps) != 1 {
		t.Fatalf("%s %s ports: %v", n.name, instance, v)
	}
	return int(get(eps[0], "label").(float64))
}

// receivedRoutes returns the NLRI texts and route targets of the routes a
// daemon learned from BGP, per family.
func receivedRoutes(n node) (map[string][]string, error) {
	v, err := n.LG("bgp/routes")
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for fam, list := range v.(map[string]any) {
		for _, item := range list.([]any) {
			for nlri, r := range item.(map[string]any) {
				src := fmt.Sprint(get(r, "source", "id"))
				if !strings.HasPrefix(src, "BGP-") {
					continue
				}
				out[fam] = append(out[fam], nlri+" "+strings.Join(strs(get(r, "route_targets")), ","))
			}
		}
	}
	return out, nil
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last state: %s", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestExchangeThroughGoBGPWithRTC(t *testing.T) {
	t.Parallel()
	runExchange(t, "gobgp")
}

func TestExchangeThroughFRR(t *testing.T) {
	t.Parallel()
	runExchange(t, "frr")
}

func runExchange(t *testing.T, rrKind string) {
	testfabric.RequireRoot(t)
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "a", "b"}})
	rrNode := fab.Node(0)
	nodes := fab.Nodes()[1:]
	clients := []netip.Addr{nodes[0].IP(), nodes[1].IP()}
	rtc := rrKind == "gobgp"
	var rr testfabric.RouteReflector
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: clients, RTC: rtc}
	if rtc {
		rr = testfabric.StartGoBGPRR(t, rrNode, rrCfg)
	} else {
		rr = testfabric.StartFRRRR(t, rrNode, rrCfg)
	}
	var ns []node
	for i, fn := range nodes {
		b := testfabric.StartBagpipe(t, fn, testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: rtc})
		ns = append(ns, node{Bagpipe: b, name: fn.Name(), mac: fmt.Sprintf("52:54:00:00:00:%02x", i+1), ip: fmt.Sprint(i + 1)})
	}
	a, b := ns[0], ns[1]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, c := range clients {
		if err := rr.WaitEstablished(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range ns {
		n.Attach(evpnAttach(n, "evpn-net1", rtEVPN, n.mac, n.ip))
		n.Attach(ipvpnAttach(n, n.ip))
	}
	// Node B also exports a route of an RT that node A does not import.
	b.Attach(evpnAttach(b, "evpn-other", rtOther, "52:54:00:00:09:99", "99"))

	// Each node installs the other's routes with its labels/VNIs and next hop.
	for _, pair := range [][2]node{{a, b}, {b, a}} {
		local, remote := pair[0], pair[1]
		vni := instanceLabel(t, remote, "evpn-net1")
		label := portLabel(t, remote, "ipvpn-net1", "tap-i"+remote.ip)
		pe := remote.Node().IP()
		wantMAC := fmt.Sprintf("%s 10.0.0.%s via %s vni %d", remote.mac, remote.ip, pe, vni)
		wantBUM := fmt.Sprintf("%s vni %d", pe, vni)
		wantVPN := fmt.Sprintf("10.1.0.%s/32 via %s label %d", remote.ip, pe, label)
		waitFor(ctx, t, local.name+" installs "+remote.name+"'s routes", func() (bool, string) {
			er, ef, err1 := remotes(local, "evpn-net1")
			ir, _, err2 := remotes(local, "ipvpn-net1")
			state := fmt.Sprintf("evpn remotes %v flooding %v, ipvpn remotes %v (errors %v %v)", er, ef, ir, err1, err2)
			return slices.Contains(er, wantMAC) && slices.Contains(ef, wantBUM) && slices.Contains(ir, wantVPN), state
		})
		// The routes in the BGP table carry the right route targets.
		recv, err := receivedRoutes(local)
		if err != nil {
			t.Fatal(err)
		}
		evpnOK := slices.ContainsFunc(recv["l2vpn/evpn,*"], func(s string) bool {
			return strings.Contains(s, remote.mac) && strings.HasSuffix(s, "target:"+rtEVPN)
		})
		vpnOK := slices.ContainsFunc(recv["ipv4/mpls-vpn,*"], func(s string) bool {
			return strings.HasPrefix(s, fmt.Sprintf("10.1.0.%s/32 label %d ", remote.ip, label)) &&
				strings.Contains(s, "next-hop "+pe.String()) && strings.HasSuffix(s, "target:"+rtIPVPN)
		})
		if !evpnOK || !vpnOK {
			t.Fatalf("%s received routes lack %s's routes with their RTs: %v", local.name, remote.name, recv)
		}
	}

	// A never installs, and with RT Constraint never even receives, the
	// route of an RT it does not import.
	recv, err := receivedRoutes(a)
	if err != nil {
		t.Fatal(err)
	}
	gotOther := slices.ContainsFunc(recv["l2vpn/evpn,*"], func(s string) bool { return strings.Contains(s, rtOther) })
	if rtc && gotOther {
		t.Fatalf("with RTC, node a received a route of %s it does not import: %v", rtOther, recv)
	}
	if !rtc && !gotOther {
		t.Logf("FRR has no RTC: node a did not receive the %s route either", rtOther)
	}
	if er, _, _ := remotes(a, "evpn-net1"); slices.ContainsFunc(er, func(s string) bool { return strings.Contains(s, "09:99") }) {
		t.Fatalf("node a installed a route of %s: %v", rtOther, er)
	}

	// Detaching on B withdraws its route on A.
	b.Detach(map[string]any{"vpn_type": "ipvpn", "vpn_instance_id": "ipvpn-net1", "mac_address": b.mac,
		"ip_address": "10.1.0." + b.ip + "/24", "local_port": map[string]any{"linuxif": "tap-i" + b.ip}})
	waitFor(ctx, t, "b's IP VPN route withdrawn on a", func() (bool, string) {
		ir, _, err := remotes(a, "ipvpn-net1")
		return err == nil && len(ir) == 0, fmt.Sprint(ir, err)
	})
	b.Attach(ipvpnAttach(b, b.ip))

	// Losing the route reflector withdraws remote routes; its return brings
	// them back.
	waitFor(ctx, t, "b's IP VPN route back on a", func() (bool, string) {
		ir, _, err := remotes(a, "ipvpn-net1")
		return err == nil && len(ir) == 1, fmt.Sprint(ir, err)
	})
	if err := rr.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "remote routes withdrawn after the route reflector stopped", func() (bool, string) {
		er, ef, err1 := remotes(a, "evpn-net1")
		ir, _, err2 := remotes(a, "ipvpn-net1")
		return err1 == nil && err2 == nil && len(er)+len(ef)+len(ir) == 0, fmt.Sprint(er, ef, ir, err1, err2)
	})
	if err := rr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "remote routes back after the route reflector restarted", func() (bool, string) {
		er, ef, _ := remotes(a, "evpn-net1")
		ir, _, _ := remotes(a, "ipvpn-net1")
		return len(er) == 1 && len(ef) == 1 && len(ir) == 1, fmt.Sprint(er, ef, ir)
	})
}

// TestDirectPeeringWithoutRouteReflector: two nodes list each other as
// peers; both connect and both listen, collision detection keeps one
// session, and routes flow both ways.
func TestDirectPeeringWithoutRouteReflector(t *testing.T) {
	t.Parallel()
	testfabric.RequireRoot(t)
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 2, Names: []string{"a", "b"}})
	fa, fb := fab.Node(0), fab.Node(1)
	a := node{Bagpipe: testfabric.StartBagpipe(t, fa, testfabric.BagpipeConfig{Peers: []netip.Addr{fb.IP()}, RTC: true}), name: "a", mac: "52:54:00:00:00:01", ip: "1"}
	b := node{Bagpipe: testfabric.StartBagpipe(t, fb, testfabric.BagpipeConfig{Peers: []netip.Addr{fa.IP()}, RTC: true}), name: "b", mac: "52:54:00:00:00:02", ip: "2"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range []node{a, b} {
		if _, err := n.WaitLG(ctx, "summary", func(v any) bool { return get(v, "BGP_established_peers") == 1.0 }); err != nil {
			t.Fatal(err)
		}
		n.Attach(ipvpnAttach(n, n.ip))
	}
	for _, pair := range [][2]node{{a, b}, {b, a}} {
		local, remote := pair[0], pair[1]
		label := portLabel(t, remote, "ipvpn-net1", "tap-i"+remote.ip)
		want := fmt.Sprintf("10.1.0.%s/32 via %s label %d", remote.ip, remote.Node().IP(), label)
		waitFor(ctx, t, local.name+" installs "+remote.name+"'s route", func() (bool, string) {
			ir, _, err := remotes(local, "ipvpn-net1")
			return slices.Contains(ir, want), fmt.Sprint(ir, err)
		})
	}
	// One session each side, established, with RTC negotiated.
	v, err := a.LG("bgp/peers/" + fb.IP().String())
	if err != nil {
		t.Fatal(err)
	}
	if get(v, "protocol", "state") != "Established" || get(v, "rtc", "active") != true {
		t.Fatalf("peer object %v", v)
	}
}
