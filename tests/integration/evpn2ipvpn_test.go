package integration

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

// E-VPN ↔ IP VPN linkage (spec §6.9): on node a, an E-VPN (linux driver)
// is plugged into a VRF (ovs driver) through a veth pair; a VM on that
// E-VPN reaches a VM of the IP VPN on node b.
func TestEVPNPluggedIntoIPVPN(t *testing.T) {
	testfabric.RequireRoot(t)
	t.Parallel()
	start := time.Now()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "a", "b"}})
	clients := []netip.Addr{fab.Node(1).IP(), fab.Node(2).IP()}
	rr := testfabric.StartGoBGPRR(t, fab.Node(0), testfabric.RRConfig{AS: 64512, Clients: clients, RTC: true})
	var ns []ovsNode
	for i, fn := range fab.Nodes()[1:] {
		o := testfabric.StartOVS(t, fn, "br-mpls")
		b := testfabric.StartBagpipeOVS(t, fn, testfabric.BagpipeConfig{
			Peers: []netip.Addr{rr.Addr()}, RTC: true, EVPN: "linux", ExtraConf: "arp_responder = True\n",
		}, o)
		ns = append(ns, ovsNode{Bagpipe: b, ovs: o, name: fn.Name(), idx: i + 1})
	}
	a, b := ns[0], ns[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cl := range clients {
		if err := rr.WaitEstablished(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}

	// e1 is a VM of the E-VPN evi1 on a; b1 is in the IP VPN on b.
	e1, b1 := a.addVM(t, "e1", 1), b.addVM(t, "b1", 1)
	a.Attach(map[string]any{
		"vpn_type": "evpn", "vpn_instance_id": "evi1",
		"mac_address": e1.MAC.String(), "ip_address": e1.ip,
		"local_port": map[string]any{"linuxif": e1.HostIf},
		"import_rt":  []string{"64512:21"}, "export_rt": []string{"64512:21"},
	})
	link := e1.req("vpn1", rtVPN1, e1.ip, nil)
	link["local_port"] = map[string]any{"evpn": map[string]any{"id": "evi1"}}
	a.Attach(link)
	b1.attach("vpn1", rtVPN1, b1.ip, nil)

	waitPing(ctx, t, e1, "10.1.2.1")
	waitPing(ctx, t, b1, "10.1.1.1")
	gp, err := a.LG("vpns/instances/evi1")
	if err != nil {
		t.Fatal(err)
	}
	if iface := fmt.Sprint(get(gp, "gateway_port", "interface")); iface != "'evpn1-ipvpn2'" {
		t.Fatalf("EVI gateway port %v", get(gp, "gateway_port"))
	}
	links, err := a.Node().Links()
	if err != nil {
		t.Fatal(err)
	}
	var veth []string
	for _, l := range links {
		if l.Name == "evpn1-ipvpn2" || l.Name == "ipvpn2-evpn1" {
			veth = append(veth, l.Name+" master "+l.Master)
		}
	}
	if len(veth) != 2 {
		t.Fatalf("veth pair: %v", veth)
	}
	t.Logf("E-VPN VM e1 and IP VPN VM b1 ping each other (%v); veth %v", time.Since(start).Round(time.Millisecond), veth)

	// Detaching the link removes the veth pair and the traffic stops.
	d := map[string]any{"vpn_type": "ipvpn", "vpn_instance_id": "vpn1", "mac_address": e1.MAC.String(),
		"ip_address": e1.ip, "local_port": map[string]any{"evpn": map[string]any{"id": "evi1"}}}
	a.Detach(d)
	waitFor(ctx, t, "veth pair removed", func() (bool, string) {
		links, err := a.Node().Links()
		for _, l := range links {
			if l.Name == "evpn1-ipvpn2" || l.Name == "ipvpn2-evpn1" {
				return false, l.Name
			}
		}
		return err == nil, fmt.Sprint(err)
	})
	if pingable(e1, "10.1.2.1", 2) {
		t.Fatal("e1 still reaches b1 once unplugged from the IP VPN")
	}
}
