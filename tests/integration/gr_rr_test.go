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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

// Route reflector failures with BGP graceful restart (RFC 4724): two
// compute nodes running bagpipe-bgp with the Linux E-VPN dataplane, a VM
// on each in one E-VPN, a continuous ping between them while the route
// reflector is killed and restarted, partitioned, or one of two route
// reflectors dies. The dataplane must keep forwarding (stale routes kept),
// and end with exactly the FDB entries the routes give.

const grRT = "64512:301"

// grNode is a compute node of these tests.
type grNode struct {
	b     *testfabric.Bagpipe
	vm    *evm   // the VM pinged
	extra []*evm // other VMs attached to the same E-VPN
}

// grEnv is a fabric with route reflectors and two compute nodes.
type grEnv struct {
	t    *testing.T
	ctx  context.Context
	fab  *testfabric.Fabric
	rrs  []testfabric.RouteReflector
	a, b grNode
}

// rrSpec describes a route reflector of a test.
type rrSpec struct {
	kind string // "gobgp" or "frr"
	cfg  testfabric.RRConfig
}

// newGREnv starts the route reflectors (on the first nodes), two daemons
// peering with all of them, one VM on each daemon attached to one E-VPN,
// and waits until they ping each other.
func newGREnv(t *testing.T, ctx context.Context, rrs []rrSpec, extraConf string) *grEnv {
	testfabric.RequireRoot(t)
	names := []string{}
	for i := range rrs {
		names = append(names, fmt.Sprintf("rr%d", i+1))
	}
	names = append(names, "a", "b")
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: len(names), Names: names})
	na, nb := fab.Node(len(rrs)), fab.Node(len(rrs)+1)
	e := &grEnv{t: t, ctx: ctx, fab: fab}
	rtc := false
	var peers []netip.Addr
	for i, spec := range rrs {
		cfg := spec.cfg
		cfg.AS = 64512
		cfg.Clients = []netip.Addr{na.IP(), nb.IP()}
		var rr testfabric.RouteReflector
		if spec.kind == "gobgp" {
			rtc = rtc || cfg.RTC
			rr = testfabric.StartGoBGPRR(t, fab.Node(i), cfg)
		} else {
			rr = testfabric.StartFRRRR(t, fab.Node(i), cfg)
		}
		e.rrs = append(e.rrs, rr)
		peers = append(peers, rr.Addr())
	}
	bcfg := testfabric.BagpipeConfig{Peers: peers, RTC: rtc, EVPN: "linux", ExtraConf: extraConf}
	e.a.b, e.b.b = testfabric.StartBagpipe(t, na, bcfg), testfabric.StartBagpipe(t, nb, bcfg)
	for _, rr := range e.rrs {
		for _, c := range []netip.Addr{na.IP(), nb.IP()} {
			if err := rr.WaitEstablished(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.a.vm, e.b.vm = e.addVM(na, "a1", "10.0.0.1"), e.addVM(nb, "b1", "10.0.0.2")
	e.a.b.Attach(e.a.vm.req)
	e.b.b.Attach(e.b.vm.req)
	e.waitConverged("after the attachments")
	pingAll(ctx, t, "after the attachments", pingCase{e.a.vm, e.b.vm.ip, true}, pingCase{e.b.vm, e.a.vm.ip, true})
	return e
}

// addVM adds a VM to node n, to be attached to the test's E-VPN.
func (e *grEnv) addVM(n *testfabric.Node, name, ip string) *evm {
	vm, err := n.AddVM(testfabric.VMConfig{Name: name, Addr: netip.MustParsePrefix(ip + "/24"), MTU: 1450})
	if err != nil {
		e.t.Fatal(err)
	}
	return &evm{VM: vm, name: name, instance: "evpn-gr", ip: netip.MustParseAddr(ip),
		req: linuxAttachReq("evpn-gr", grRT, vm.HostIf, vm.MAC, ip)}
}

// wantFDB returns the remote FDB entries local must have: the flooding
// entry and the MACs of remote's VMs, towards remote.
func (e *grEnv) wantFDB(local, remote grNode) (vx string, want []string) {
	vx, want = e.mainFDB(local, remote)
	_, _, own := instanceLinks(e.t, local.b, "evpn-gr")
	_, _, vni := instanceLinks(e.t, remote.b, "evpn-gr")
	for _, vm := range remote.extra {
		want = append(want, fdbEntry(vm.MAC, remote.b.Node().IP(), vni, own))
	}
	slices.Sort(want)
	return vx, want
}

// mainFDB returns the entries the ping between the main VMs needs: the
// flooding entry and the MAC of remote's main VM.
func (e *grEnv) mainFDB(local, remote grNode) (vx string, want []string) {
	_, vx, own := instanceLinks(e.t, local.b, "evpn-gr")
	_, _, vni := instanceLinks(e.t, remote.b, "evpn-gr")
	want = []string{
		fdbEntry(net.HardwareAddr{0, 0, 0, 0, 0, 0}, remote.b.Node().IP(), vni, own),
		fdbEntry(remote.vm.MAC, remote.b.Node().IP(), vni, own),
	}
	slices.Sort(want)
	return vx, want
}

// fdbIs reports whether local's FDB is exactly want (nil: no entry).
func (e *grEnv) fdbIs(local grNode, vx string, want []string) (bool, string) {
	got, err := remoteFDB(local.b.Node(), vx)
	return err == nil && slices.Equal(got, want), fmt.Sprintf("FDB of %s on %s: %q (error %v), want %q", vx, local.b.Node(), got, err, want)
}

// waitConverged waits until each node's FDB holds exactly the other's
// entries: no stale entry, nothing missing.
func (e *grEnv) waitConverged(when string) {
	e.t.Helper()
	for _, pair := range [][2]grNode{{e.a, e.b}, {e.b, e.a}} {
		vx, want := e.wantFDB(pair[0], pair[1])
		waitFor(e.ctx, e.t, when+": FDB of "+pair[0].b.Node().Name(), func() (bool, string) { return e.fdbIs(pair[0], vx, want) })
	}
}

// watchFDB polls both nodes' FDB until stop is called and reports how
// many polls found an entry between the main VMs missing.
func (e *grEnv) watchFDB() (stop func() (bad int, last string)) {
	type target struct {
		n    grNode
		vx   string
		want []string
	}
	var targets []target
	for _, pair := range [][2]grNode{{e.a, e.b}, {e.b, e.a}} {
		vx, want := e.mainFDB(pair[0], pair[1])
		targets = append(targets, target{pair[0], vx, want})
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var bad int
	var last string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for _, tg := range targets {
				got, err := remoteFDB(tg.n.b.Node(), tg.vx)
				for _, w := range tg.want {
					if err != nil || !slices.Contains(got, w) {
						bad++
						last = fmt.Sprintf("FDB of %s on %s: %q (error %v), lacks %q", tg.vx, tg.n.b.Node(), got, err, w)
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() (int, string) {
		close(done)
		wg.Wait()
		return bad, last
	}
}

// peerState returns the state of a daemon's session with peer, from the
// looking glass.
func peerState(b *testfabric.Bagpipe, peer netip.Addr) string {
	v, err := b.LG("bgp/peers")
	if err != nil {
		return "error: " + err.Error()
	}
	items, _ := v.([]any)
	for _, it := range items {
		if get(it, "id") == peer.String() {
			s, _ := get(it, "state").(string)
			return s
		}
	}
	return "absent"
}

// waitPeerState waits until both daemons' sessions with peer satisfy ok.
func (e *grEnv) waitPeerState(what string, peer netip.Addr, ok func(string) bool) {
	e.t.Helper()
	for _, n := range []grNode{e.a, e.b} {
		waitFor(e.ctx, e.t, what+" on "+n.b.Node().Name(), func() (bool, string) {
			s := peerState(n.b, peer)
			return ok(s), "state " + s
		})
	}
}

func established(s string) bool { return s == "Established" }
func down(s string) bool        { return s != "Established" }

// daemonLog returns what a daemon logged so far.
func daemonLog(b *testfabric.Bagpipe) string {
	o, e := b.Process().Output()
	return o + e
}

// waitLog waits until every daemon logged a line matching re.
func (e *grEnv) waitLog(what string, re *regexp.Regexp) {
	e.t.Helper()
	for _, n := range []grNode{e.a, e.b} {
		waitFor(e.ctx, e.t, what+" on "+n.b.Node().Name(), func() (bool, string) {
			return re.MatchString(daemonLog(n.b)), "not logged yet: " + re.String()
		})
	}
}

// pinger is a continuous ping from a VM.
type pinger struct {
	t    *testing.T
	proc *testfabric.Process
}

// startPing pings dst from vm every interval until stop.
func startPing(t *testing.T, vm *evm, dst netip.Addr, interval time.Duration) *pinger {
	t.Helper()
	p, err := vm.Start("ping", "-n", "-q", "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W", "1", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	return &pinger{t: t, proc: p}
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// stop interrupts the ping (it prints its statistics) and returns the
// packets sent and lost.
func (p *pinger) stop() (sent, lost int) {
	p.t.Helper()
	if err := p.proc.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.proc.Done():
	case <-time.After(10 * time.Second):
		p.t.Fatal("ping did not stop")
	}
	out, _ := p.proc.Output()
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		p.t.Fatalf("no ping statistics in %q", out)
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	return sent, sent - recv
}

const pingInterval = 20 * time.Millisecond

func grRR(kind string, restart time.Duration) rrSpec {
	cfg := testfabric.RRConfig{
		RTC:             kind == "gobgp",
		GracefulRestart: &testfabric.GracefulRestartConfig{RestartTime: restart, StaleTime: 30 * time.Second, Notification: true},
	}
	return rrSpec{kind: kind, cfg: cfg}
}

func TestGRRouteReflectorRestartGoBGP(t *testing.T) {
	t.Parallel()
	runRRRestart(t, "gobgp", true)
}

func TestGRRouteReflectorRestartFRR(t *testing.T) {
	t.Parallel()
	runRRRestart(t, "frr", true)
}

// TestRouteReflectorRestartWithoutGR is the baseline: graceful_restart =
// false on our side, the routes go with the session and come back with
// the route reflector.
func TestRouteReflectorRestartWithoutGR(t *testing.T) {
	t.Parallel()
	runRRRestart(t, "gobgp", false)
}

// runRRRestart kills the route reflector (SIGKILL) and restarts it under a
// continuous ping: with graceful restart the daemons keep the routes as
// stale, the dataplane is untouched, and once the route reflector is back
// and has sent End-of-RIB the FDB holds exactly the routes' entries.
func runRRRestart(t *testing.T, kind string, gr bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	extra := ""
	spec := grRR(kind, 30*time.Second)
	if !gr {
		extra = "\n[BGP]\ngraceful_restart = false\n"
		// gobgpd restarted with -r sends nothing to the peers that
		// do not announce graceful restart: none on its side either.
		spec.cfg.GracefulRestart = nil
	}
	e := newGREnv(t, ctx, []rrSpec{spec}, extra)
	rr := e.rrs[0]
	if !gr {
		ping := startPing(t, e.a.vm, e.b.vm.ip, pingInterval)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		if err := rr.Kill(); err != nil {
			t.Fatal(err)
		}
		e.waitPeerState("session lost", rr.Addr(), down)
		for _, pair := range [][2]grNode{{e.a, e.b}, {e.b, e.a}} {
			vx, _ := e.wantFDB(pair[0], pair[1])
			waitFor(ctx, t, "routes withdrawn with the session", func() (bool, string) { return e.fdbIs(pair[0], vx, nil) })
		}
		if err := rr.Restart(); err != nil {
			t.Fatal(err)
		}
		e.waitPeerState("session back", rr.Addr(), established)
		e.waitConverged("after the restart")
		restoredAfter := time.Since(start)
		time.Sleep(500 * time.Millisecond)
		sent, lost := ping.stop()
		fmt.Printf("RR-RESTART-LOSS-NO-GR rr=%s lost=%d sent=%d\n", kind, lost, sent)
		t.Logf("%s without graceful restart: routes back after %v; %d/%d pings lost", kind, restoredAfter.Round(time.Millisecond), lost, sent)
		return
	}

	// b2: detached while the route reflector is down, so that A holds a
	// stale route nobody advertises again.
	b2 := e.addVM(e.b.b.Node(), "b2", "10.0.0.3")
	e.b.b.Attach(b2.req)
	e.b.extra = []*evm{b2}
	e.waitConverged("after attaching b2")

	ping := startPing(t, e.a.vm, e.b.vm.ip, pingInterval)
	watch := e.watchFDB()
	time.Sleep(500 * time.Millisecond) // some traffic before
	start := time.Now()
	if err := rr.Kill(); err != nil {
		t.Fatal(err)
	}
	e.waitPeerState("session lost", rr.Addr(), down)
	lostAfter := time.Since(start)
	e.waitLog("stale routes kept", regexp.MustCompile(`graceful restart: peer routes kept as stale`))
	e.b.b.Detach(detachReq(b2.req))
	e.b.extra = nil
	if err := rr.Restart(); err != nil {
		t.Fatal(err)
	}
	e.waitPeerState("session back", rr.Addr(), established)
	backAfter := time.Since(start)
	// The route reflector's End-of-RIB: A withdraws b2's stale routes,
	// and only them.
	aLog := regexp.MustCompile(`stale routes not advertised again withdrawn at End-of-RIB.*routes=(\d+)`)
	waitFor(ctx, t, "stale routes swept on A", func() (bool, string) { return aLog.MatchString(daemonLog(e.a.b)), "not yet" })
	syncedAfter := time.Since(start)
	e.waitConverged("after the restart")
	time.Sleep(500 * time.Millisecond) // some traffic after
	sent, lost := ping.stop()
	bad, last := watch()
	fmt.Printf("RR-RESTART-LOSS rr=%s lost=%d sent=%d\n", kind, lost, sent)
	t.Logf("%s: session lost after %v, back after %v, stale routes confirmed after %v; %d/%d pings lost",
		kind, lostAfter.Round(time.Millisecond), backAfter.Round(time.Millisecond), syncedAfter.Round(time.Millisecond), lost, sent)
	if bad > 0 {
		t.Errorf("the FDB changed during the route reflector restart (%d polls), last: %s", bad, last)
	}
	if strings.Contains(daemonLog(e.b.b), "stale routes not advertised again withdrawn") {
		t.Errorf("B withdrew routes the route reflector should have sent again")
	}
	if m := aLog.FindAllStringSubmatch(daemonLog(e.a.b), -1); len(m) != 1 || m[0][1] != "1" {
		t.Errorf("A's stale route sweeps: %q, want one of 1 route (b2's)", m)
	}
	if lost > 0 {
		t.Errorf("%d pings lost across the route reflector restart", lost)
	}
}

// TestGRTwoRouteReflectors: with two route reflectors, killing one changes
// nothing in the dataplane, neither while its routes are stale nor when
// its restart time expires and they are withdrawn; it then comes back.
func TestGRTwoRouteReflectors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := newGREnv(t, ctx, []rrSpec{grRR("gobgp", 5*time.Second), grRR("frr", 5*time.Second)}, "")
	ping := startPing(t, e.a.vm, e.b.vm.ip, pingInterval)
	watch := e.watchFDB()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	dead := e.rrs[0]
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	e.waitPeerState("session with the dead route reflector lost", dead.Addr(), down)
	// Its restart time passes: its stale routes go, the other's stay.
	e.waitLog("restart time expiry", regexp.MustCompile(`stale routes withdrawn.*did not come back within its restart time`))
	expiredAfter := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	sent, lost := ping.stop()
	bad, last := watch()
	fmt.Printf("TWO-RR-KILL-LOSS lost=%d sent=%d\n", lost, sent)
	t.Logf("stale routes of the dead route reflector withdrawn after %v; %d/%d pings lost", expiredAfter.Round(time.Millisecond), lost, sent)
	if bad > 0 {
		t.Errorf("the FDB changed when a route reflector died (%d polls), last: %s", bad, last)
	}
	if lost > 0 {
		t.Errorf("%d pings lost when one of two route reflectors died", lost)
	}
	for _, n := range []grNode{e.a, e.b} {
		if s := peerState(n.b, e.rrs[1].Addr()); s != "Established" {
			t.Errorf("%s: session with the other route reflector %s", n.b.Node(), s)
		}
	}
	if err := dead.Restart(); err != nil {
		t.Fatal(err)
	}
	e.waitPeerState("session back", dead.Addr(), established)
	e.waitConverged("after the route reflector came back")
}

// TestGRPartition cuts the route reflector off the fabric for longer than
// the hold time plus its restart time: the daemons keep the routes after
// the hold timer expired, withdraw them when the restart time passes, and
// get them back when the partition ends, with no stale FDB entry.
func TestGRPartition(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	spec := grRR("gobgp", 6*time.Second)
	spec.cfg.HoldTime = 3 * time.Second
	e := newGREnv(t, ctx, []rrSpec{spec}, "")
	rr := e.rrs[0]
	start := time.Now()
	if err := rr.Node().SetConnected(false); err != nil {
		t.Fatal(err)
	}
	reconnected := false
	defer func() {
		if !reconnected {
			_ = rr.Node().SetConnected(true)
		}
	}()
	e.waitPeerState("hold timer expiry", rr.Addr(), down)
	holdAfter := time.Since(start)
	// Routes kept after the session loss: the FDB is intact.
	for _, pair := range [][2]grNode{{e.a, e.b}, {e.b, e.a}} {
		vx, want := e.wantFDB(pair[0], pair[1])
		if ok, state := e.fdbIs(pair[0], vx, want); !ok {
			t.Errorf("routes withdrawn at the session loss: %s", state)
		}
	}
	pingAll(ctx, t, "during the partition, routes stale", pingCase{e.a.vm, e.b.vm.ip, true})
	// The route reflector's restart time passes: routes withdrawn.
	for _, pair := range [][2]grNode{{e.a, e.b}, {e.b, e.a}} {
		vx, _ := e.wantFDB(pair[0], pair[1])
		waitFor(ctx, t, "withdrawal at restart time expiry", func() (bool, string) { return e.fdbIs(pair[0], vx, nil) })
	}
	withdrawnAfter := time.Since(start)
	e.waitLog("restart time expiry", regexp.MustCompile(`stale routes withdrawn.*did not come back within its restart time`))
	if err := rr.Node().SetConnected(true); err != nil {
		t.Fatal(err)
	}
	reconnected = true
	healed := time.Now()
	e.waitPeerState("session back", rr.Addr(), established)
	backAfter := time.Since(healed)
	e.waitConverged("after the partition")
	restoredAfter := time.Since(healed)
	pingAll(ctx, t, "after the partition", pingCase{e.a.vm, e.b.vm.ip, true}, pingCase{e.b.vm, e.a.vm.ip, true})
	fmt.Printf("PARTITION hold_expired_after=%v withdrawn_after=%v session_back_after_heal=%v restored_after_heal=%v\n",
		holdAfter.Round(time.Millisecond), withdrawnAfter.Round(time.Millisecond), backAfter.Round(time.Millisecond), restoredAfter.Round(time.Millisecond))
}

// configPath returns the --config-file of a running daemon.
func configPath(t *testing.T, b *testfabric.Bagpipe) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", b.Process().Pid()))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(string(raw), "\x00")
	i := slices.Index(args, "--config-file")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no --config-file in %q", args)
	}
	return args[i+1]
}
