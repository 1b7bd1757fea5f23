package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

// State across restarts with the linux E-VPN dataplane: a daemon killed
// with SIGKILL and started again on the same state directory restores its
// instances (same VNI, same kernel devices), keeps forwarding with the
// kernel state it adopts, and removes what no route confirms once BGP is
// back. A ping at 10 ms intervals between VMs on the two nodes runs across
// the restart; the packets lost are reported.

// restartLossBoundWithGR is the packet loss allowed across the restart
// when the route reflector keeps node 1's routes while it restarts (BGP
// graceful restart, RFC 4724, on the route reflector; the daemons announce
// it by default): neither node's dataplane changes, so nothing should be
// lost; a few packets of slack absorb a loaded machine. Without graceful
// restart on the route reflector (TestRestartLinuxEVPN) it withdraws node
// 1's routes as soon as the session drops, node 2 removes its entries and
// its replies are lost until node 1 is back: that loss is reported, not
// bounded.
const restartLossBoundWithGR = 5

// restartPingInterval is the interval of the continuous ping.
const restartPingInterval = 10 * time.Millisecond

var restartPingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

func TestRestartLinuxEVPN(t *testing.T) {
	t.Parallel()
	runRestartLinux(t, false)
}

func TestRestartLinuxEVPNGracefulRestart(t *testing.T) {
	t.Parallel()
	runRestartLinux(t, true)
}

func runRestartLinux(t *testing.T, gr bool) {
	testfabric.RequireRoot(t)
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "n1", "n2"}})
	rrNode, n1, n2 := fab.Node(0), fab.Node(1), fab.Node(2)
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: []netip.Addr{n1.IP(), n2.IP()}, RTC: true}
	if gr {
		rrCfg.GracefulRestart = &testfabric.GracefulRestartConfig{}
	}
	rr := testfabric.StartGoBGPRR(t, rrNode, rrCfg)
	stateDir := t.TempDir()
	cfg1 := testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: true, EVPN: "linux",
		ExtraConf: "\n[COMMON]\nstate_dir = " + stateDir + "\nstate_sweep_timeout = 15\n"}
	cfg2 := testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: true, EVPN: "linux"}
	A, B := testfabric.StartBagpipe(t, n1, cfg1), testfabric.StartBagpipe(t, n2, cfg2)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	for _, c := range rrCfg.Clients {
		if err := rr.WaitEstablished(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	addVM := func(n *testfabric.Node, name, ip string) *evm {
		vm, err := n.AddVM(testfabric.VMConfig{Name: name, Addr: netip.MustParsePrefix(ip + "/24"), MTU: 1450})
		if err != nil {
			t.Fatal(err)
		}
		return &evm{VM: vm, name: name, instance: "evpn-net1", ip: netip.MustParseAddr(ip),
			req: linuxAttachReq("evpn-net1", rtNet1, vm.HostIf, vm.MAC, ip)}
	}
	a1, b1, b2 := addVM(n1, "a1", "10.0.0.1"), addVM(n2, "b1", "10.0.0.2"), addVM(n2, "b2", "10.0.0.3")
	A.Attach(a1.req)
	B.Attach(b1.req)
	B.Attach(b2.req)

	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	waitFDB := func(what string, local *testfabric.Bagpipe, want func(own int) []string) {
		t.Helper()
		_, vx, own := instanceLinks(t, local, "evpn-net1")
		waitFor(ctx, t, what, func() (bool, string) {
			got, err := remoteFDB(local.Node(), vx)
			w := want(own)
			slices.Sort(w)
			return err == nil && slices.Equal(got, w), fmt.Sprintf("FDB of %s: %q (error %v), want %q", vx, got, err, w)
		})
	}
	vniA := func() int { _, _, v := instanceLinks(t, A, "evpn-net1"); return v }
	_, _, vniB := instanceLinks(t, B, "evpn-net1")
	onA := func(vms ...*evm) func(int) []string {
		return func(own int) []string {
			out := []string{fdbEntry(zero, n2.IP(), vniB, own)}
			for _, vm := range vms {
				out = append(out, fdbEntry(vm.MAC, n2.IP(), vniB, own))
			}
			return out
		}
	}
	onB := func(own int) []string {
		v := vniA()
		return []string{fdbEntry(zero, n1.IP(), v, own), fdbEntry(a1.MAC, n1.IP(), v, own)}
	}
	waitFDB("B's MACs in A's FDB", A, onA(b1, b2))
	waitFDB("A's MAC in B's FDB", B, onB)
	pingAll(ctx, t, "before the restart", pingCase{a1, b1.ip, true}, pingCase{a1, b2.ip, true})

	br, vx, vni := instanceLinks(t, A, "evpn-net1")
	brIdx, vxIdx := linkIndex(t, n1, br), linkIndex(t, n1, vx)
	name := get(mustLG(t, A, "vpns/instances/evpn-net1"), "name")

	// restartCycle runs the continuous ping across a restart of A (how:
	// "kill", SIGKILL then start; "term", SIGTERM then start), checks that
	// A restored its instance on the same kernel devices and swept what no
	// route confirms, and reports the packets lost.
	restartCycle := func(how string, whileDown func()) {
		t.Helper()
		ping, err := a1.Start("ping", "-n", "-q", "-i", strconv.FormatFloat(restartPingInterval.Seconds(), 'f', 3, 64), "-W", "1", b1.ip.String())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		stopped := restartDaemon(t, A, how, whileDown)
		apiBack := time.Since(stopped)
		// Restored before any client replay: same instance, VNI and devices.
		v := mustLG(t, A, "vpns/instances/evpn-net1")
		if get(v, "name") != name || int(get(v, "instance_dataplane_id").(float64)) != vni {
			t.Errorf("%s: restored instance: name %v VNI %v, want %v and %d", how, get(v, "name"), get(v, "instance_dataplane_id"), name, vni)
		}
		if b, x, _ := instanceLinks(t, A, "evpn-net1"); b != br || x != vx {
			t.Errorf("%s: restored instance links %s/%s, want %s/%s", how, b, x, br, vx)
		}
		if linkIndex(t, n1, br) != brIdx || linkIndex(t, n1, vx) != vxIdx {
			t.Errorf("%s: bridge or VXLAN device re-created (ifindex %d/%d, before %d/%d)",
				how, linkIndex(t, n1, br), linkIndex(t, n1, vx), brIdx, vxIdx)
		}
		// Converged: B has A's routes again.
		if err := rr.WaitEstablished(ctx, n1.IP()); err != nil {
			t.Fatal(err)
		}
		established := time.Since(stopped)
		waitFDB("A's MAC in B's FDB after the restart", B, onB)
		converged := time.Since(stopped)
		// The adopted entries no route confirms are swept.
		waitFor(ctx, t, "sweep of the adopted entries", func() (bool, string) {
			dp := mustLG(t, A, "vpns/instances/evpn-net1/dataplane")
			_, pending := dp.(map[string]any)["adopted_unconfirmed"]
			return !pending, fmt.Sprintf("dataplane: %v", dp)
		})
		swept := time.Since(stopped)
		waitFDB("A's FDB after the sweep", A, onA(b1))
		if ns, err := n1.Neighbours(br); err != nil || slices.ContainsFunc(ns, func(e testfabric.NeighEntry) bool { return e.IP == b2.ip }) {
			t.Errorf("%s: stale neighbour entry of b2 on A after the sweep: %v %v", how, ns, err)
		}
		time.Sleep(time.Second)
		must(t, ping.Signal(os.Interrupt))
		<-ping.Done()
		out, _ := ping.Output()
		m := restartPingStats.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("ping output: %s", out)
		}
		sent, _ := strconv.Atoi(m[1])
		received, _ := strconv.Atoi(m[2])
		lost := sent - received
		t.Logf("%s restart (route reflector graceful restart %v): API back after %v, session up after %v, B converged after %v, adopted entries swept after %v; ping every %v: %d sent, %d lost (%v without answers)",
			how, gr, apiBack.Round(time.Millisecond), established.Round(time.Millisecond), converged.Round(time.Millisecond), swept.Round(time.Millisecond),
			restartPingInterval, sent, lost, time.Duration(lost)*restartPingInterval)
		fmt.Printf("RESTART-LOSS lost=%d sent=%d restart=%v converged=%v stop=%s rr_graceful_restart=%v\n", lost, sent,
			apiBack.Round(time.Millisecond), converged.Round(time.Millisecond), how, gr)
		if received == 0 {
			t.Errorf("%s: ping: %d sent, none received", how, sent)
		}
		if gr && lost > restartLossBoundWithGR {
			t.Errorf("%s: %d packets lost across the restart, more than %d", how, lost, restartLossBoundWithGR)
		}
	}
	// SIGKILL; while A is down, b2 goes: A's kernel keeps its entries
	// (stale, to be swept).
	restartCycle("kill", func() { B.Detach(detachReq(b2.req)) })
	// SIGTERM (a planned restart: the dataplane is left for the next run).
	restartCycle("term", func() {})
	pingAll(ctx, t, "after the restart", pingCase{a1, b1.ip, true}, pingCase{a1, b2.ip, false})

	// The client's replay changes nothing.
	A.Attach(a1.req)
	if linkIndex(t, n1, br) != brIdx || linkIndex(t, n1, vx) != vxIdx || vniA() != vni {
		t.Error("the replay re-created the instance's links")
	}
	waitFDB("A's MAC in B's FDB after the replay", B, onB)
	pingAll(ctx, t, "after the replay", pingCase{a1, b1.ip, true})

	// Detaching the last endpoint still removes everything, state included.
	A.Detach(detachReq(a1.req))
	for _, l := range []string{br, vx} {
		if _, ok := linkOf(t, n1, l); ok {
			t.Errorf("%s left after the last detach", l)
		}
	}
	if err := A.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := A.Start(); err != nil {
		t.Fatal(err)
	}
	if v, err := A.LG("vpns/instances"); err != nil || len(v.([]any)) != 0 {
		t.Errorf("instances after a restart with nothing attached: %v %v", v, err)
	}
}

func linkIndex(t *testing.T, n *testfabric.Node, name string) int {
	t.Helper()
	l, err := n.Netlink().LinkByName(name)
	if err != nil {
		t.Fatalf("%s on %s: %v", name, n, err)
	}
	return l.Attrs().Index
}

func mustLG(t *testing.T, b *testfabric.Bagpipe, path string) any {
	t.Helper()
	v, err := b.LG(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// restartDaemon stops b (how: "kill" for SIGKILL, else SIGTERM), runs
// whileDown, and starts it again with the same configuration; it returns
// the time it was stopped.
func restartDaemon(t *testing.T, b *testfabric.Bagpipe, how string, whileDown func()) time.Time {
	t.Helper()
	stopped := time.Now()
	var err error
	if how == "kill" {
		err = b.Kill()
	} else {
		err = b.Process().Stop(10 * time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	whileDown()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	return stopped
}
