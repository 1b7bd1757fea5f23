package testfabric_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"bagpipe/internal/testfabric"
)

const testAS = 64512

// TestFabricConnectivity checks addressing, namespace inheritance of Run and
// Do, and TCP between nodes through the bridge.
func TestFabricConnectivity(t *testing.T) {
	t.Parallel()
	f := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"a", "b"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if got := f.Node(2).Name(); got != "n2" {
		t.Errorf("default name of node 2 = %q, want n2", got)
	}
	for _, n := range f.Nodes() {
		if !strings.HasPrefix(n.Namespace(), f.Prefix()) {
			t.Errorf("%s: namespace %q lacks prefix %q", n, n.Namespace(), f.Prefix())
		}
		want := testfabric.FabricSubnet.Addr().As4()
		want[3] = byte(n.Index() + 1)
		if n.IP() != netip.AddrFrom4(want) {
			t.Errorf("%s: IP %s, want %s", n, n.IP(), netip.AddrFrom4(want))
		}
		checkAddressing(t, n)
		checkNamespaceInheritance(ctx, t, n)
	}

	// A tiny TCP echo server in node a, dialled from b and n2, and one in
	// n2 dialled from a.
	echo := func(srv *testfabric.Node) netip.AddrPort {
		l, err := srv.Listen("tcp", netip.AddrPortFrom(srv.IP(), 0).String())
		if err != nil {
			t.Fatalf("listen in %s: %v", srv, err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					io.Copy(c, c)
				}()
			}
		}()
		return netip.MustParseAddrPort(l.Addr().String())
	}
	srvA := echo(f.Node(0))
	srvC := echo(f.Node(2))
	for _, c := range []struct {
		from *testfabric.Node
		to   netip.AddrPort
	}{{f.Node(1), srvA}, {f.Node(2), srvA}, {f.Node(0), srvC}} {
		conn, err := c.from.DialContext(ctx, "tcp", c.to.String())
		if err != nil {
			t.Fatalf("dial %s from %s: %v", c.to, c.from, err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		msg := fmt.Sprintf("hello from %s\n", c.from.Name())
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatalf("write from %s: %v", c.from, err)
		}
		got, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || got != msg {
			t.Errorf("echo %s -> %s: got %q, %v; want %q", c.from, c.to, got, err, msg)
		}
		if la := netip.MustParseAddrPort(conn.LocalAddr().String()).Addr(); la != c.from.IP() {
			t.Errorf("connection from %s has source %s, want %s", c.from, la, c.from.IP())
		}
		conn.Close()
	}

	// A detached node is unreachable; reattached, it is reachable again.
	if err := f.Node(0).SetConnected(false); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if c, err := f.Node(1).DialContext(dctx, "tcp", srvA.String()); err == nil {
		c.Close()
		t.Errorf("%s reachable while node a is disconnected", srvA)
	}
	dcancel()
	if err := f.Node(0).SetConnected(true); err != nil {
		t.Fatal(err)
	}
	if c, err := f.Node(1).DialContext(ctx, "tcp", srvA.String()); err != nil {
		t.Errorf("%s unreachable after reconnecting node a: %v", srvA, err)
	} else {
		c.Close()
	}

	// Nothing of the fabric leaked into the test's own namespace (checked
	// through netlink only: no traffic leaves the fabric).
	hostAddrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range hostAddrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && testfabric.FabricSubnet.Contains(ip.Unmap()) {
			t.Errorf("host namespace has fabric address %s", a.IPNet)
		}
	}
}

func checkAddressing(t *testing.T, n *testfabric.Node) {
	t.Helper()
	h := n.Netlink()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatalf("%s: lo: %v", n, err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s: lo is down", n)
	}
	l, err := h.LinkByName(n.Interface())
	if err != nil {
		t.Fatalf("%s: %s: %v", n, n.Interface(), err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s: %s is down", n, n.Interface())
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("%s: addresses: %v", n, err)
	}
	var found []string
	for _, a := range addrs {
		found = append(found, a.IPNet.String())
	}
	if !slices.Contains(found, n.Prefix().String()) {
		t.Errorf("%s: %s has %v, want %s", n, n.Interface(), found, n.Prefix())
	}
}

// checkNamespaceInheritance verifies that commands started with Run and code
// run with Do are in the node's namespace.
func checkNamespaceInheritance(ctx context.Context, t *testing.T, n *testfabric.Node) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(n.NsPath(), &st); err != nil {
		t.Fatalf("%s: %v", n, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	out, err := n.Run(ctx, "readlink", "/proc/self/ns/net")
	if err != nil {
		t.Fatalf("%s: %v", n, err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("%s: child runs in %s, want %s", n, got, want)
	}
	err = n.Do(func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		if !cur.Equal(n.NsHandle()) {
			return errors.New("Do does not run in the node namespace")
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s: %v", n, err)
	}
	// And the test goroutine is back in its own namespace.
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if cur.Equal(n.NsHandle()) {
		t.Errorf("%s: still in the node namespace after Do", n)
	}
}

// TestFabricCleanup checks that namespaces and processes are gone once the
// test that created them has finished, including when processes are left
// running.
func TestFabricCleanup(t *testing.T) {
	t.Parallel()
	testfabric.RequireRoot(t)
	var names []string
	var pid int
	var logDir string
	t.Run("build", func(t *testing.T) {
		f := testfabric.NewFabric(t, testfabric.Options{Nodes: 2, StopTimeout: time.Second})
		names = f.Namespaces()
		logDir = f.LogDir()
		// sh ignores SIGTERM here, so cleanup has to escalate to SIGKILL.
		p, err := f.Node(1).Start("sh", "-c", "trap '' TERM; echo started; while :; do sleep 1; done")
		if err != nil {
			t.Fatal(err)
		}
		pid = p.Pid()
		// Wait until the trap is set.
		deadline := time.Now().Add(5 * time.Second)
		for out, _ := p.Output(); !strings.Contains(out, "started"); out, _ = p.Output() {
			if time.Now().After(deadline) || p.Exited() {
				t.Fatalf("shell did not start: %q, %v", out, p.Err())
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, name := range names {
			if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
				t.Errorf("namespace %s missing: %v", name, err)
			}
		}
	})
	if len(names) != 3 {
		t.Fatalf("namespaces %v, want 3", names)
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists after cleanup (%v)", name, err)
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after cleanup (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(logDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log dir %s still exists after cleanup", logDir)
	}
}

// startRR starts a route reflector implementation.
type startRR func(t testing.TB, n *testfabric.Node, cfg testfabric.RRConfig) testfabric.RouteReflector

// TestGoBGPRouteReflector runs a gobgpd RR (with RTC) and two gobgpd
// clients; one injects routes, the other must receive them reflected.
func TestGoBGPRouteReflector(t *testing.T) {
	t.Parallel()
	rr := runRRScenario(t, func(t testing.TB, n *testfabric.Node, cfg testfabric.RRConfig) testfabric.RouteReflector {
		return testfabric.StartGoBGPRR(t, n, cfg)
	}, true)
	g := rr.(*testfabric.GoBGP)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Flowspec-VPN went through too (CLI family "ipv4-l3vpn-flowspec").
	fs, err := testfabric.WaitRIB(ctx, g, testfabric.FamilyIPv4FlowspecVPN, func(rs []testfabric.Route) bool {
		return len(rs) == 1 && rs[0].RD == "64512:3" && rs[0].HasRT("64512:3")
	})
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("RR flowspec-vpn RIB: %s", fs[0])
	}
	// RTC is configured (and its RIB readable) on the RR.
	if !slices.Contains(g.Families(), testfabric.FamilyRTC) {
		t.Errorf("RR families %v lack RTC", g.Families())
	}
	if _, err := g.RIB(ctx, testfabric.FamilyRTC); err != nil {
		t.Errorf("reading RTC RIB: %v", err)
	}
}

// TestFRRRouteReflector is the same scenario with FRR bgpd as RR, plus a
// restart of the RR.
func TestFRRRouteReflector(t *testing.T) {
	t.Parallel()
	runRRScenario(t, func(t testing.TB, n *testfabric.Node, cfg testfabric.RRConfig) testfabric.RouteReflector {
		return testfabric.StartFRRRR(t, n, cfg)
	}, false)
}

// runRRScenario: node 0 runs the RR, nodes 1 and 2 run gobgpd clients
// (without RTC: with RTC negotiated a gobgpd client only sends VPN routes
// whose RTs a peer asked for, and a lone RR asks for none). Client 1 injects
// a VPNv4, two EVPN and a flowspec-VPN route; the RR must hold them and
// reflect them to client 2.
func runRRScenario(t *testing.T, start startRR, rtc bool) testfabric.RouteReflector {
	f := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "pe1", "pe2"}})
	rrNode, pe1Node, pe2Node := f.Node(0), f.Node(1), f.Node(2)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	rr := start(t, rrNode, testfabric.RRConfig{
		AS:      testAS,
		Clients: []netip.Addr{pe1Node.IP(), pe2Node.IP()},
		RTC:     rtc,
	})
	pe1 := testfabric.StartGoBGPClient(t, pe1Node, testfabric.ClientConfig{AS: testAS, RRs: []netip.Addr{rrNode.IP()}})
	pe2 := testfabric.StartGoBGPClient(t, pe2Node, testfabric.ClientConfig{AS: testAS, RRs: []netip.Addr{rrNode.IP()}})

	for _, pe := range []*testfabric.GoBGP{pe1, pe2} {
		if err := rr.WaitEstablished(ctx, pe.Addr()); err != nil {
			t.Fatal(err)
		}
	}

	inject := func(f testfabric.Family, args ...string) {
		t.Helper()
		if err := pe1.AddRoute(ctx, f, args...); err != nil {
			t.Fatal(err)
		}
	}
	inject(testfabric.FamilyIPv4VPN, "10.1.1.0/24", "label", "100", "rd", "64512:1", "rt", "64512:1", "nexthop", pe1Node.IP().String())
	inject(testfabric.FamilyEVPN, "macadv", "aa:bb:cc:dd:ee:01", "10.1.1.5", "etag", "0", "label", "200", "rd", "64512:2", "rt", "64512:2", "encap", "vxlan")
	inject(testfabric.FamilyEVPN, "multicast", pe1Node.IP().String(), "etag", "0", "rd", "64512:2", "rt", "64512:2", "encap", "vxlan", "pmsi", "ingress-repl", "200", pe1Node.IP().String())
	inject(testfabric.FamilyIPv4FlowspecVPN, "rd", "64512:3", "match", "destination", "10.1.2.0/24", "then", "redirect", "64512:9", "rt", "64512:3")

	checkRIBs(ctx, t, rr, pe1Node.IP())

	// The RR reflects them to pe2.
	if err := rr.WaitEstablished(ctx, pe2.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := testfabric.WaitRIB(ctx, pe2, testfabric.FamilyIPv4VPN, hasVPN(pe1Node.IP())); err != nil {
		t.Errorf("pe2 did not get the reflected VPNv4 route: %v", err)
	}
	if _, err := testfabric.WaitRIB(ctx, pe2, testfabric.FamilyEVPN, hasMAC(pe1Node.IP())); err != nil {
		t.Errorf("pe2 did not get the reflected EVPN route: %v", err)
	}
	out, err := rr.AdjRIBOut(ctx, pe2.Addr(), testfabric.FamilyIPv4VPN)
	if err != nil || len(out) != 1 || out[0].Prefix != netip.MustParsePrefix("10.1.1.0/24") {
		t.Errorf("RR adj-rib-out to pe2: %v, %v; want the VPNv4 route", out, err)
	}
	out, err = rr.AdjRIBOut(ctx, pe2.Addr(), testfabric.FamilyEVPN)
	if err != nil || len(out) != 2 {
		t.Errorf("RR EVPN adj-rib-out to pe2: %v, %v; want 2 routes", out, err)
	}

	// Counters.
	nb, err := rr.Neighbor(ctx, pe1Node.IP())
	if err != nil {
		t.Fatal(err)
	}
	if c := nb.Families[testfabric.FamilyIPv4VPN]; c.Received != 1 || c.Accepted != 1 {
		t.Errorf("RR counters for pe1 ipv4-vpn: %+v, want 1 received/accepted", c)
	}
	if c := nb.Families[testfabric.FamilyEVPN]; c.Received != 2 {
		t.Errorf("RR counters for pe1 evpn: %+v, want 2 received", c)
	}
	if nb, err := rr.Neighbor(ctx, pe2Node.IP()); err != nil {
		t.Error(err)
	} else if c := nb.Families[testfabric.FamilyIPv4VPN]; c.Advertised != 1 {
		t.Errorf("RR counters for pe2 ipv4-vpn: %+v, want 1 advertised", c)
	}

	if !rtc {
		// Restart the RR: the clients reconnect and pe1 re-advertises.
		t0 := time.Now()
		if err := rr.Restart(); err != nil {
			t.Fatal(err)
		}
		if err := rr.WaitEstablished(ctx, pe1Node.IP()); err != nil {
			t.Fatal(err)
		}
		checkRIBs(ctx, t, rr, pe1Node.IP())
		t.Logf("RR restarted and routes back after %v", time.Since(t0).Round(time.Millisecond))
	}
	return rr
}

func hasVPN(nh netip.Addr) func([]testfabric.Route) bool {
	return func(rs []testfabric.Route) bool {
		for _, r := range rs {
			if r.RD == "64512:1" && r.Prefix == netip.MustParsePrefix("10.1.1.0/24") && r.NextHop == nh && r.HasRT("64512:1") {
				return true
			}
		}
		return false
	}
}

func hasMAC(nh netip.Addr) func([]testfabric.Route) bool {
	return func(rs []testfabric.Route) bool {
		for _, r := range rs {
			if r.EVPN != nil && r.EVPN.Type == 2 && r.EVPN.MAC == "aa:bb:cc:dd:ee:01" && r.RD == "64512:2" && r.NextHop == nh {
				return true
			}
		}
		return false
	}
}

// checkRIBs waits for pe1's routes in the RR and checks their details.
func checkRIBs(ctx context.Context, t *testing.T, rr testfabric.RouteReflector, pe1 netip.Addr) {
	t.Helper()
	vpn, err := testfabric.WaitRIB(ctx, rr, testfabric.FamilyIPv4VPN, hasVPN(pe1))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range vpn {
		t.Logf("RR ipv4-vpn RIB: %s", r)
		if !r.Best || r.From != pe1 || !slices.Equal(r.Labels, []uint32{100}) {
			t.Errorf("RR VPNv4 route %s: want best, from %s, label 100", r, pe1)
		}
	}
	evpn, err := testfabric.WaitRIB(ctx, rr, testfabric.FamilyEVPN, func(rs []testfabric.Route) bool {
		return len(rs) == 2 && hasMAC(pe1)(rs)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range evpn {
		t.Logf("RR evpn RIB: %s", r)
		if !r.Best || r.From != pe1 || !r.HasRT("64512:2") {
			t.Errorf("RR EVPN route %s: want best, from %s, RT 64512:2", r, pe1)
		}
		switch r.EVPN.Type {
		case 2:
			if r.EVPN.IP != netip.MustParseAddr("10.1.1.5") || !slices.Equal(r.Labels, []uint32{200}) {
				t.Errorf("RR EVPN type-2 route %s: want ip 10.1.1.5, label 200", r)
			}
		case 3:
			if r.EVPN.IP != pe1 {
				t.Errorf("RR EVPN type-3 route %s: want originator %s", r, pe1)
			}
		default:
			t.Errorf("unexpected EVPN route %s", r)
		}
	}
}
