package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

// Traffic steering through service VMs with the ovs IP VPN driver (spec
// §6.7, §6.8, §7.4; networking-sfc's bagpipe driver does this): a service
// VM's ingress port is attached to a VRF re-advertising the VPN's routes
// with attract_traffic, so that the VPN's VRFs receive Flowspec routes
// redirecting the classified traffic into a redirection VRF whose default
// route leads to the service VM; its egress port (from-port) is attached
// to a VRF importing the VPN's routes, which forwards to the destination.
//
// Route targets, as networking-sfc's bagpipe driver allocates them: the
// VPN's VMs import and export rtSteerVPN and also import rtSteerRedirect,
// the RT of the Flowspec routes (redirect_rts), which nothing else imports.
// Were redirect_rts the VPN's RT, the egress VRFs (importing the VPN's
// routes) would redirect the service VMs' own output back into them (a
// loop), and the ingress VRFs of two service VMs of one hop (reading the
// VPN's RT) would re-advertise each other's Flowspec routes, with the same
// NLRI (instance RD + rules) as their own.
const (
	rtSteerVPN      = "64512:21"
	rtSteerHop      = "64512:22"
	rtSteerRedirect = "64512:24"
	steerPort       = 8080
	otherPort       = 8081
	redirectVRF     = "redirect-to-ipvpn-64512_22"
	steerDriver     = "arp_responder = True\ngre_tunnel_options = packet_type=legacy_l3\n"
	steerTimeout    = 3 * time.Second
)

// serviceVM is a namespace routing from its ingress port (eth0) to its
// egress port (eth1), with nftables counters in its forward path:
// "steered" (TCP to steerPort from the ingress port) and "other"
// (everything else it forwards).
type serviceVM struct {
	*testfabric.VM
	n             ovsNode
	inIf, outIf   string
	inMAC, outMAC net.HardwareAddr
	inIP, outIP   string // with prefix length
	inGW, outGW   string
	ctr           *testfabric.ForwardCounters
}

func addServiceVM(t *testing.T, n ovsNode, name string, k int) *serviceVM {
	t.Helper()
	s := &serviceVM{
		n: n, inIf: "tap-" + name + "i", outIf: "tap-" + name + "e",
		inMAC:  net.HardwareAddr{0x52, 0x54, 0, 0x5e, byte(k), 1},
		outMAC: net.HardwareAddr{0x52, 0x54, 0, 0x5e, byte(k), 2},
		inIP:   fmt.Sprintf("10.3.%d.1/24", 2*k-1), inGW: fmt.Sprintf("10.3.%d.254", 2*k-1),
		outIP: fmt.Sprintf("10.3.%d.1/24", 2*k), outGW: fmt.Sprintf("10.3.%d.254", 2*k),
	}
	v, err := n.Node().AddVM(testfabric.VMConfig{Name: name, HostIf: s.inIf, MAC: s.inMAC, Addr: netip.MustParsePrefix(s.inIP)})
	if err != nil {
		t.Fatal(err)
	}
	s.VM = v
	if err := v.DisableOffload(); err != nil {
		t.Fatal(err)
	}
	if err := v.AddInterface(testfabric.VMInterfaceConfig{
		Name: "eth1", HostIf: s.outIf, MAC: s.outMAC, Addr: netip.MustParsePrefix(s.outIP), Gateway: netip.MustParseAddr(s.outGW),
	}); err != nil {
		t.Fatal(err)
	}
	if err := v.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	if s.ctr, err = v.AddForwardCounters(
		testfabric.CounterRule{Name: "steered", InIf: testfabric.VMInterface, Proto: 6, DstPort: steerPort, Accept: true},
		testfabric.CounterRule{Name: "other"},
	); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *serviceVM) counters(t *testing.T) (steered, other uint64) {
	t.Helper()
	c, err := s.ctr.Read()
	if err != nil {
		t.Fatal(err)
	}
	return c["steered"], c["other"]
}

func (s *serviceVM) ingressReq() map[string]any {
	return map[string]any{
		"vpn_type": "ipvpn", "vpn_instance_id": "svc-in",
		"mac_address": s.inMAC.String(), "ip_address": s.inIP, "gateway_ip": s.inGW,
		"local_port": map[string]any{"linuxif": s.inIf},
		"import_rt":  []string{}, "export_rt": []string{rtSteerHop},
		"direction":   "to-port",
		"readvertise": map[string]any{"from_rt": []string{rtSteerVPN}, "to_rt": []string{rtSteerHop}},
		"attract_traffic": map[string]any{
			"redirect_rts": []string{rtSteerRedirect},
			"classifier":   map[string]any{"destinationPort": fmt.Sprint(steerPort), "protocol": "tcp"},
		},
	}
}

func (s *serviceVM) egressReq() map[string]any {
	return map[string]any{
		"vpn_type": "ipvpn", "vpn_instance_id": "svc-out",
		"mac_address": s.outMAC.String(), "ip_address": s.outIP, "gateway_ip": s.outGW,
		"local_port": map[string]any{"linuxif": s.outIf},
		"import_rt":  []string{rtSteerVPN}, "export_rt": []string{},
		"direction": "from-port",
	}
}

func (s *serviceVM) attachSteering() {
	s.n.Attach(s.ingressReq())
	s.n.Attach(s.egressReq())
}

func (s *serviceVM) detachSteering() {
	for _, r := range []map[string]any{s.ingressReq(), s.egressReq()} {
		for _, k := range []string{"import_rt", "export_rt", "gateway_ip", "readvertise", "attract_traffic", "direction"} {
			delete(r, k)
		}
		s.n.Detach(r)
	}
}

func rrRIB(ctx context.Context, rr testfabric.RouteReflector, f testfabric.Family) string {
	rs, err := rr.RIB(ctx, f)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprint(rs)
}

// lgText returns a looking glass path as JSON text ("" on error).
func lgText(n ovsNode, path string) string {
	v, err := n.LG(path)
	if err != nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// classifierFlows returns the flows of a dump matching the steered port.
func classifierFlows(dump string) []string {
	var out []string
	for _, f := range ourFlows(dump) {
		if strings.Contains(f, fmt.Sprintf("tp_dst=%d", steerPort)) {
			out = append(out, f)
		}
	}
	return out
}

func TestSteeringOVS(t *testing.T) {
	testfabric.RequireRoot(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	rr, ns := startOVSFabric(ctx, t, steerDriver, "n1", "n2", "n3")
	n1, n2, n3 := ns[0], ns[1], ns[2]

	// A on n1 and B on n2 in one IP VPN; B answers on both TCP ports.
	a, b := n1.addVM(t, "sa", 1), n2.addVM(t, "sb", 1)
	const bIP = "10.1.2.1"
	b.StartTCPEcho(t, fmt.Sprintf("%s:%d", bIP, steerPort))
	b.StartTCPEcho(t, fmt.Sprintf("%s:%d", bIP, otherPort))
	vpnExtra := map[string]any{"import_rt": []string{rtSteerVPN, rtSteerRedirect}}
	a.attach("vpn", rtSteerVPN, a.ip, vpnExtra)
	b.attach("vpn", rtSteerVPN, b.ip, vpnExtra)
	s1 := addServiceVM(t, n3, "s1", 1)
	waitPing(ctx, t, a, bIP)
	t.Logf("fabric, OVS, daemons and VPN up (%v)", time.Since(start).Round(time.Millisecond))

	exchange := func(port int) (string, error) {
		return a.TCPExchange(ctx, fmt.Sprintf("%s:%d", bIP, port), "hello", steerTimeout)
	}
	mustExchange := func(what string, port int) {
		t.Helper()
		got, err := exchange(port)
		if err != nil || got != "sb:hello" {
			t.Fatalf("%s: TCP A→B:%d: %q %v", what, port, got, err)
		}
	}
	// checkOther: nothing but steered TCP ever crosses a service VM.
	checkOther := func(ss ...*serviceVM) {
		t.Helper()
		for _, s := range ss {
			if _, other := s.counters(t); other != 0 {
				t.Fatalf("%s forwarded %d packets that are not TCP to port %d", s.Name(), other, steerPort)
			}
		}
	}

	// waitDirect waits until n1 holds nothing of the steering: no
	// classifier flow, no redirection VRF, no flow but the driver's and
	// the VPN's VRF's, one group (the route to B).
	vpnDP, err := n1.LG("vpns/instances/vpn/dataplane")
	if err != nil {
		t.Fatal(err)
	}
	vpnCookie := fmt.Sprint(get(vpnDP, "cookie"))
	waitDirect := func(what string) {
		t.Helper()
		waitFor(ctx, t, what, func() (bool, string) {
			flows, groups := ourFlows(n1.ofctl(t, "dump-flows")), groupLines(n1.ofctl(t, "dump-groups"))
			lg := lgText(n1, "vpns/instances")
			foreign := 0
			for _, f := range flows {
				if !strings.HasPrefix(f, "cookie=0x4250000000000000,") && !strings.HasPrefix(f, "cookie="+vpnCookie+",") {
					foreign++
				}
			}
			return lg != "" && len(classifierFlows(strings.Join(flows, "\n"))) == 0 && !strings.Contains(lg, redirectVRF) &&
					foreign == 0 && len(groups) == 1,
				fmt.Sprintf("flows:\n%s\ngroups:\n%s\ninstances: %s", strings.Join(flows, "\n"), strings.Join(groups, "\n"), lg)
		})
	}

	// 1. Without steering, A→B goes direct: S counts nothing.
	mustExchange("direct", steerPort)
	mustExchange("direct", otherPort)
	if st, _ := s1.counters(t); st != 0 {
		t.Fatalf("s1 counted %d steered packets without steering", st)
	}
	checkOther(s1)

	// 2. One service VM: TCP to steerPort crosses it, the rest does not.
	s1.attachSteering()
	waitFor(ctx, t, "n1's classifier flows and redirection VRF", func() (bool, string) {
		flows := n1.ofctl(t, "dump-flows")
		lg := lgText(n1, "vpns/instances")
		return len(classifierFlows(flows)) > 0 && strings.Contains(lg, redirectVRF),
			fmt.Sprintf("flows:\n%s\ninstances: %s\nflowspec routes: %s", strings.Join(ourFlows(flows), "\n"), lg, lgText(n1, "bgp/routes"))
	})
	waitFor(ctx, t, "TCP A→B:8080 through s1", func() (bool, string) {
		before, _ := s1.counters(t)
		got, err := exchange(steerPort)
		after, _ := s1.counters(t)
		return err == nil && got == "sb:hello" && after > before,
			fmt.Sprintf("answer %q err %v, s1 steered %d→%d\nn1 flows:\n%s\nn1 groups:\n%s\nn3 flows:\n%s", got, err, before, after,
				strings.Join(ourFlows(n1.ofctl(t, "dump-flows")), "\n"), strings.Join(groupLines(n1.ofctl(t, "dump-groups")), "\n"),
				strings.Join(ourFlows(n3.ofctl(t, "dump-flows")), "\n"))
	})
	flows1 := n1.ofctl(t, "dump-flows")
	var vrfTable []string
	for _, f := range ourFlows(flows1) {
		if strings.Contains(f, " table=2,") {
			vrfTable = append(vrfTable, f)
		}
	}
	t.Logf("steering through s1 (%v); n1 vrf table (classifiers, routes of the VPN's and the redirection VRF):\n%s\nn1 groups:\n%s",
		time.Since(start).Round(time.Millisecond), strings.Join(vrfTable, "\n"), strings.Join(groupLines(n1.ofctl(t, "dump-groups")), "\n"))
	for _, f := range classifierFlows(flows1) {
		if !strings.Contains(f, "priority=36864,tcp,reg0=") || !strings.Contains(f, "->reg0,resubmit(,2)") {
			t.Fatalf("unexpected classifier flow on n1: %s", f)
		}
	}
	if !strings.Contains(strings.Join(classifierFlows(flows1), "\n"), "nw_dst="+bIP+",tp_dst=8080") {
		t.Fatalf("no classifier flow for B on n1:\n%s", strings.Join(classifierFlows(flows1), "\n"))
	}
	if lg := lgText(n1, "vpns/instances/vpn/dataplane"); !strings.Contains(lg, "redirect_to") {
		t.Fatalf("n1's VRF looking glass shows no classifier: %s", lg)
	}
	steered, _ := s1.counters(t)
	for range 3 {
		mustExchange("steered", steerPort)
	}
	mustExchange("not steered", otherPort)
	if !pingable(a, bIP, 3) {
		t.Fatal("A no longer pings B while steering")
	}
	if after, _ := s1.counters(t); after < steered+3 {
		t.Fatalf("s1 steered counter %d→%d for 3 more connections", steered, after)
	}
	checkOther(s1)

	// 3. Removing the steering attachments restores direct forwarding and
	// removes every classifier flow and the redirection VRF.
	s1.detachSteering()
	waitDirect("n1 without classifier flows nor redirection VRF")
	steered, _ = s1.counters(t)
	mustExchange("after the steering detach", steerPort)
	if after, _ := s1.counters(t); after != steered {
		t.Fatalf("s1 still steered to after its detach (%d→%d)", steered, after)
	}
	checkOther(s1)
	t.Logf("direct forwarding restored (%v)", time.Since(start).Round(time.Millisecond))

	// 4. Two service VMs in the hop (s1 on n3, s2 on n2): n1's redirection
	// VRF has a two-bucket group; TCP connections are spread over both.
	s2 := addServiceVM(t, n2, "s2", 2)
	s1.attachSteering()
	s2.attachSteering()
	var group string
	waitFor(ctx, t, "n1's redirection VRF with two next hops", func() (bool, string) {
		v, err := n1.LG("vpns/instances/" + redirectVRF + "/dataplane")
		if err != nil {
			return false, fmt.Sprintf("%v\nn1 instances: %s\nn1 routes: %s\nn1 flows:\n%s\nn3 svc-in: %s\nn2 svc-in: %s", err,
				lgText(n1, "vpns/instances"), lgText(n1, "bgp/routes"), strings.Join(ourFlows(n1.ofctl(t, "dump-flows")), "\n"),
				lgText(n3, "vpns/instances/svc-in/adv_routes")+" "+lgText(n3, "vpns/instances/svc-in/readvertised"),
				lgText(n2, "vpns/instances/svc-in/adv_routes")+" "+lgText(n2, "vpns/instances/svc-in/readvertised")+"\nrr flowspec: "+rrRIB(ctx, rr, testfabric.FamilyIPv4FlowspecVPN))
		}
		for _, g := range strs(get(v, "groups")) {
			if strings.Count(g, "bucket=") == 2 {
				group = g
				return len(classifierFlows(n1.ofctl(t, "dump-flows"))) > 0, g
			}
		}
		return false, fmt.Sprint(v)
	})
	b1, _ := s1.counters(t)
	b2, _ := s2.counters(t)
	var answered, tried int
	waitFor(ctx, t, "TCP connections through both service VMs", func() (bool, string) {
		const flows = 16
		var mu sync.Mutex
		var wg sync.WaitGroup
		ok := 0
		for range flows {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got, err := exchange(steerPort); err == nil && got == "sb:hello" {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		answered, tried = answered+ok, tried+flows
		c1, _ := s1.counters(t)
		c2, _ := s2.counters(t)
		return ok == flows && c1 > b1 && c2 > b2, fmt.Sprintf("%d/%d answered; steered packets s1 %d→%d, s2 %d→%d", ok, flows, b1, c1, b2, c2)
	})
	c1, _ := s1.counters(t)
	c2, _ := s2.counters(t)
	t.Logf("ECMP over s1 and s2 (%v): group %s; %d/%d connections answered; steered packets s1 +%d, s2 +%d",
		time.Since(start).Round(time.Millisecond), group, answered, tried, c1-b1, c2-b2)
	checkOther(s1, s2)

	// Everything goes with the attachments.
	s1.detachSteering()
	s2.detachSteering()
	waitDirect("n1 back to direct forwarding")
	mustExchange("at the end", steerPort)
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}
