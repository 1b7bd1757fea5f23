package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

// State across restarts with the ovs IP VPN dataplane: a daemon killed with
// SIGKILL (then stopped with SIGTERM) and started again on the same state
// directory restores its VRFs with the same ids and labels, takes over the
// flows, groups and ports its previous run left on the bridge (the groups
// keep their ids and are never deleted nor added again), and once BGP is
// back removes what no route confirmed. A ping at 10 ms intervals from a
// VM on the restarted node to a VM on the other runs across each restart;
// with graceful restart on the route reflector nothing should be lost
// (restartLossBoundWithGR, restart_linux_test.go).
func TestRestartOVS(t *testing.T) {
	testfabric.RequireRoot(t)
	t.Parallel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "n1", "n2"}})
	f1, f2 := fab.Node(1), fab.Node(2)
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: []netip.Addr{f1.IP(), f2.IP()}, RTC: true,
		GracefulRestart: &testfabric.GracefulRestartConfig{}}
	rr := testfabric.StartGoBGPRR(t, fab.Node(0), rrCfg)
	const driverConf = "arp_responder = True\ngre_tunnel_options = packet_type=legacy_l3\n"
	stateDir := t.TempDir()
	o1, o2 := testfabric.StartOVS(t, f1, "br-mpls"), testfabric.StartOVS(t, f2, "br-mpls")
	a := ovsNode{Bagpipe: testfabric.StartBagpipeOVS(t, f1, testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: true,
		ExtraConf: driverConf + "\n[COMMON]\nstate_dir = " + stateDir + "\nstate_sweep_timeout = 15\n"}, o1), ovs: o1, name: "n1", idx: 1}
	b := ovsNode{Bagpipe: testfabric.StartBagpipeOVS(t, f2, testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: true,
		ExtraConf: driverConf}, o2), ovs: o2, name: "n2", idx: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	for _, c := range rrCfg.Clients {
		if err := rr.WaitEstablished(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// vpn1: a1 on n1, b1 and b2 on n2, and an anycast address behind b1
	// and b2 (a two-bucket group on n1); vpn2: a2 alone on n1 (a second
	// restored VRF).
	a1, a2 := a.addVM(t, "a1", 1), a.addVM(t, "a2", 2)
	b1, b2 := b.addVM(t, "b1", 1), b.addVM(t, "b2", 2)
	a1.attach("vpn1", rtVPN1, a1.ip, nil)
	a2.attach("vpn2", rtVPN2, a2.ip, nil)
	b1.attach("vpn1", rtVPN1, b1.ip, nil)
	b2.attach("vpn1", rtVPN1, b2.ip, nil)
	b1.attach("vpn1", rtVPN1, anycastIP, map[string]any{"lb_consistent_hash_order": 1})
	// (Another VRF of n2 with vpn1's route target: one MAC per IP in a VRF.)
	b2.attach("vpn1b", rtVPN1, anycastIP, map[string]any{"lb_consistent_hash_order": 2})
	waitPing(ctx, t, a1, "10.1.2.1")
	waitPing(ctx, t, a1, "10.1.2.2")
	waitFor(ctx, t, "n1's two-bucket group for "+anycastIP, func() (bool, string) {
		g := routeGroup(t, a, anycastIP)
		return strings.Count(g, ",bucket=") == 2, g
	})
	name, name2 := get(mustLG(t, a.Bagpipe, "vpns/instances/vpn1"), "name"), get(mustLG(t, a.Bagpipe, "vpns/instances/vpn2"), "name")
	b1Group, b2Group := routeGroupID(t, a, "10.1.2.1"), routeGroupID(t, a, "10.1.2.2")
	greUUID, tapUUID := vsGet(t, a, "port", "mpls_gre", "_uuid"), vsGet(t, a, "port", "tap-a1", "_uuid")

	cycle := func(how string, whileDown func()) {
		t.Helper()
		flowsBefore, groupsBefore := bridgeState(t, a)
		genBefore := generations(t, a)
		ping, err := a1.Start("ping", "-n", "-q", "-i", strconv.FormatFloat(restartPingInterval.Seconds(), 'f', 3, 64), "-W", "1", "10.1.2.1")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		ageBefore := groupAges(t, a)
		stopped := restartDaemon(t, a.Bagpipe, how, whileDown)
		apiBack := time.Since(stopped)
		if v := mustLG(t, a.Bagpipe, "vpns/instances/vpn1"); get(v, "name") != name {
			t.Errorf("%s: restored VRF %v, want %v", how, get(v, "name"), name)
		}
		if v := mustLG(t, a.Bagpipe, "vpns/instances/vpn2"); get(v, "name") != name2 {
			t.Errorf("%s: restored VRF %v, want %v", how, get(v, "name"), name2)
		}
		if err := rr.WaitEstablished(ctx, f1.IP()); err != nil {
			t.Fatal(err)
		}
		// The adopted flows, groups and buckets no route confirmed are swept.
		waitFor(ctx, t, "sweep of the adopted OVS state", func() (bool, string) {
			dp := mustLG(t, a.Bagpipe, "vpns/instances/vpn1/dataplane")
			_, pending := dp.(map[string]any)["adopted_unconfirmed"]
			return !pending, fmt.Sprintf("dataplane: %v", dp)
		})
		swept := time.Since(stopped)
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
		t.Logf("%s restart: API back after %v, adopted state swept after %v; ping every %v: %d sent, %d lost",
			how, apiBack.Round(time.Millisecond), swept.Round(time.Millisecond), restartPingInterval, sent, lost)
		fmt.Printf("RESTART-LOSS-OVS stop=%s lost=%d sent=%d restart=%v swept=%v\n", how, lost, sent,
			apiBack.Round(time.Millisecond), swept.Round(time.Millisecond))
		if received == 0 || lost > restartLossBoundWithGR {
			t.Errorf("%s: %d of %d packets lost across the restart, more than %d", how, lost, sent, restartLossBoundWithGR)
		}

		// The bridge holds what it held, minus what went while the daemon
		// was down; every flow of ours is of the new run's generation.
		flowsAfter, groupsAfter := bridgeState(t, a)
		if gens := generations(t, a); len(gens) != 1 || slices.Equal(gens, genBefore) {
			t.Errorf("%s: cookie generations %v after the sweep (before the restart %v)", how, gens, genBefore)
		}
		wantFlows, wantGroups := flowsBefore, groupsBefore
		if how == "kill" { // b2 was detached while n1 was down
			wantFlows = slices.DeleteFunc(slices.Clone(flowsBefore), func(f string) bool {
				return strings.Contains(f, "nw_dst=10.1.2.2 ")
			})
			// b2's group goes; the anycast group loses b2's bucket, the
			// other keeps its bucket id.
			wantGroups = nil
			for _, g := range groupsBefore {
				switch head, bs := splitBuckets(g); {
				case strings.HasPrefix(g, fmt.Sprintf("group_id=%d,", b2Group)):
				case len(bs) == 2:
					for k := range bs {
						if cand := head + bs[1-k]; slices.Contains(groupsAfter, cand) {
							g = cand
						}
					}
					wantGroups = append(wantGroups, g)
				default:
					wantGroups = append(wantGroups, g)
				}
			}
		}
		if !slices.Equal(flowsAfter, wantFlows) {
			t.Errorf("%s: flows of ours after the sweep:\n%s\nwant\n%s", how, strings.Join(flowsAfter, "\n"), strings.Join(wantFlows, "\n"))
		}
		if !slices.Equal(groupsAfter, wantGroups) {
			t.Errorf("%s: groups after the sweep:\n%s\nwant\n%s", how, strings.Join(groupsAfter, "\n"), strings.Join(wantGroups, "\n"))
		}
		// Not deleted and added again: the groups that stayed are as old as
		// before plus the time elapsed.
		elapsed := time.Since(stopped)
		for id, age := range groupAges(t, a) {
			if before, ok := ageBefore[id]; ok && age < before+elapsed-500*time.Millisecond {
				t.Errorf("%s: group %d is %v old, was %v old %v ago: created again", how, id, age, before, elapsed.Round(time.Millisecond))
			}
		}
		if routeGroupID(t, a, "10.1.2.1") != b1Group {
			t.Errorf("%s: the group of 10.1.2.1 changed id", how)
		}
		if vsGet(t, a, "port", "mpls_gre", "_uuid") != greUUID || vsGet(t, a, "port", "tap-a1", "_uuid") != tapUUID {
			t.Errorf("%s: GRE or VM port created again", how)
		}
	}
	cycle("kill", func() {
		b2.detach("vpn1b", rtVPN1, anycastIP)
		b2.detach("vpn1", rtVPN1, b2.ip)
	})
	cycle("term", func() {})
	if pingable(a1, "10.1.2.2", 2) {
		t.Error("a1 reaches b2 after its detach")
	}

	// The client's replay changes nothing.
	flows, groups := bridgeState(t, a)
	a1.attach("vpn1", rtVPN1, a1.ip, nil)
	a2.attach("vpn2", rtVPN2, a2.ip, nil)
	if f, g := bridgeState(t, a); !slices.Equal(f, flows) || !slices.Equal(g, groups) {
		t.Errorf("the replay changed the bridge:\n%s\n%s", strings.Join(f, "\n"), strings.Join(g, "\n"))
	}
	waitPing(ctx, t, a1, "10.1.2.1")

	// Detaching the last endpoints removes everything of ours, and a
	// restart then has nothing to restore.
	a1.detach("vpn1", rtVPN1, a1.ip)
	a2.detach("vpn2", rtVPN2, a2.ip)
	waitFor(ctx, t, "nothing of ours left on n1", func() (bool, string) {
		f, g := bridgeState(t, a)
		ports, err := a.ovs.Vsctl(ctx, "list-ports", "br-mpls")
		return err == nil && len(f) == 0 && len(g) == 0 && strings.TrimSpace(ports) == testfabric.NodeInterface,
			fmt.Sprintf("flows %v groups %v ports %q", f, g, ports)
	})
	must(t, a.Kill())
	must(t, a.Start())
	if v, err := a.LG("vpns/instances"); err != nil || len(v.([]any)) != 0 {
		t.Errorf("instances after a restart with nothing attached: %v %v", v, err)
	}
}

var (
	flowCounters = regexp.MustCompile(`(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, `)
	flowCookie   = regexp.MustCompile(`cookie=(0x[0-9a-f]+)`)
	groupAge     = regexp.MustCompile(`group_id=(\d+),duration=([0-9.]+)s`)
)

// bridgeState returns the flows of ours (without their counters, cookie
// generations masked) and the groups on a node's bridge, sorted.
func bridgeState(t *testing.T, n ovsNode) (flows, groups []string) {
	t.Helper()
	for _, f := range ourFlows(n.ofctl(t, "dump-flows")) {
		f = flowCounters.ReplaceAllString(f, "")
		f = flowCookie.ReplaceAllStringFunc(f, func(c string) string {
			v, _ := strconv.ParseUint(strings.TrimPrefix(c, "cookie="), 0, 64)
			return fmt.Sprintf("cookie=%#x", v&^(0xffff<<32))
		})
		flows = append(flows, f)
	}
	groups = groupLines(n.ofctl(t, "dump-groups"))
	slices.Sort(flows)
	slices.Sort(groups)
	return flows, groups
}

// splitBuckets splits a group line into what precedes its buckets and its
// buckets (each ",bucket=...").
func splitBuckets(g string) (head string, buckets []string) {
	parts := strings.Split(g, ",bucket=")
	for _, b := range parts[1:] {
		buckets = append(buckets, ",bucket="+b)
	}
	return parts[0], buckets
}

// generations returns the cookie generations of our flows on a node.
func generations(t *testing.T, n ovsNode) []uint64 {
	t.Helper()
	var out []uint64
	for _, m := range flowCookie.FindAllStringSubmatch(strings.Join(ourFlows(n.ofctl(t, "dump-flows")), "\n"), -1) {
		v, _ := strconv.ParseUint(m[1], 0, 64)
		if g := v >> 32 & 0xffff; !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// groupAges returns how long each group of a node has existed.
func groupAges(t *testing.T, n ovsNode) map[uint32]time.Duration {
	t.Helper()
	out := map[uint32]time.Duration{}
	for _, m := range groupAge.FindAllStringSubmatch(n.ofctl(t, "dump-group-stats"), -1) {
		id, _ := strconv.ParseUint(m[1], 10, 32)
		s, _ := strconv.ParseFloat(m[2], 64)
		out[uint32(id)] = time.Duration(s * float64(time.Second))
	}
	return out
}

// routeGroupID returns the group the route flow of a /32 points to.
func routeGroupID(t *testing.T, n ovsNode, ip string) uint32 {
	t.Helper()
	for _, f := range ourFlows(n.ofctl(t, "dump-flows")) {
		if strings.Contains(f, "nw_dst="+ip+" ") {
			id, err := strconv.ParseUint(f[strings.Index(f, "group:")+len("group:"):], 10, 32)
			if err != nil {
				t.Fatalf("route flow %s: %v", f, err)
			}
			return uint32(id)
		}
	}
	t.Fatalf("no route flow to %s on %s", ip, n.name)
	return 0
}

// routeGroup returns the group line of the route to a /32 ("" if none).
func routeGroup(t *testing.T, n ovsNode, ip string) string {
	t.Helper()
	for _, f := range ourFlows(n.ofctl(t, "dump-flows")) {
		if strings.Contains(f, "nw_dst="+ip+" ") {
			id := f[strings.Index(f, "group:")+len("group:"):]
			for _, g := range groupLines(n.ofctl(t, "dump-groups")) {
				if strings.HasPrefix(g, "group_id="+id+",") {
					return g
				}
			}
		}
	}
	return ""
}

func vsGet(t *testing.T, n ovsNode, table, record, column string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := n.ovs.Vsctl(ctx, "get", table, record, column)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}
