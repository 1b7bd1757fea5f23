package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"bagpipe/internal/testfabric"
)

// TestLoadLinuxEVPN: 16 concurrent clients attach and detach E-VPN ports
// on node A (Linux dataplane: bridges, VXLAN devices, FDB entries) across
// four shared instances, so that instances are created and removed under
// contention; node B holds one port in each instance and sees A's routes
// through a gobgpd route reflector. Then: A's kernel state, B's FDB and
// both daemons' instances are exactly those of the ports left attached;
// once those are detached too, A is back to its kernel state before the
// load (no device, FDB entry or goroutine left).
func TestLoadLinuxEVPN(t *testing.T) {
	testfabric.RequireRoot(t)
	t.Parallel()
	const (
		clients   = 16
		rounds    = 312 // attach + detach pairs per client: 16 × 625 = 10,000 operations
		instances = 4
	)
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 3, Names: []string{"rr", "a", "b"}})
	rrNode, na, nb := fab.Node(0), fab.Node(1), fab.Node(2)
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: []netip.Addr{na.IP(), nb.IP()}, RTC: true}
	rr := testfabric.StartGoBGPRR(t, rrNode, rrCfg)
	cfg := testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: true, EVPN: "linux"}
	A, B := testfabric.StartBagpipe(t, na, cfg), testfabric.StartBagpipe(t, nb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	for _, c := range rrCfg.Clients {
		if err := rr.WaitEstablished(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	instance := func(i int) string { return fmt.Sprintf("load-%d", i) }
	rt := func(i int) string { return fmt.Sprintf("64512:%d", 300+i) }

	// B: one port per instance.
	for i := range instances {
		name := fmt.Sprintf("lb%d", i)
		if err := nb.Netlink().LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
			t.Fatal(err)
		}
		mac := net.HardwareAddr{0x52, 0x54, 0x00, 0xbb, 0x00, byte(i)}
		B.Attach(linuxAttachReq(instance(i), rt(i), name, mac, fmt.Sprintf("10.%d.0.200", i)))
	}

	// A: one veth per client (its host side is the bridge port, like a
	// tap; this kernel has no dummy links).
	for c := range clients {
		name := fmt.Sprintf("la%d", c)
		if err := na.Netlink().LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
			t.Fatal(err)
		}
		l, err := na.Netlink().LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := na.Netlink().LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	baseLinks := linkSummary(t, na)
	baseGoroutines := goroutines(t, A)

	type port struct {
		inst int
		req  map[string]any
	}
	left := make([]port, clients) // the port each client leaves attached
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds + 1 {
				inst := (c + r) % instances
				mac := net.HardwareAddr{0x52, 0x54, 0xaa, byte(c), byte(r >> 8), byte(r)}
				ip := fmt.Sprintf("10.%d.%d.%d", inst, c*2+r/250, r%250+1)
				req := linuxAttachReq(instance(inst), rt(inst), fmt.Sprintf("la%d", c), mac, ip)
				if code, body, err := A.Post("/attach_localport", req); err != nil || code != 200 {
					errs <- fmt.Errorf("client %d round %d attach: %d %s %v", c, r, code, body, err)
					return
				}
				if r == rounds {
					left[c] = port{inst, req}
					return
				}
				if code, body, err := A.Post("/detach_localport", detachReq(req)); err != nil || code != 200 {
					errs <- fmt.Errorf("client %d round %d detach: %d %s %v", c, r, code, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	ops := clients * (2*rounds + 1)
	t.Logf("LOAD-LINUX ops=%d clients=%d took=%v", ops, clients, time.Since(start).Round(time.Millisecond))

	// Exactly the ports left: per instance, B's FDB towards A holds their
	// MACs and nothing else; A has one bridge and one VXLAN per instance.
	want := map[int][]string{}
	for _, p := range left {
		want[p.inst] = append(want[p.inst], p.req["mac_address"].(string))
	}
	for i := range instances {
		slices.Sort(want[i])
		_, vx, _ := instanceLinks(t, B, instance(i))
		var got []string
		deadline := time.Now().Add(20 * time.Second)
		for {
			got = remoteMACs(t, nb, vx, na.IP())
			if slices.Equal(got, want[i]) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("%s: B's FDB towards A: %v, want %v", instance(i), got, want[i])
		}
	}
	if got := linkSummary(t, na); got["bridge"] != baseLinks["bridge"]+instances || got["vxlan"] != baseLinks["vxlan"]+instances {
		t.Errorf("A's links with %d instances: %v (before: %v)", instances, got, baseLinks)
	}

	// Detach the rest: A back to its state before the load.
	for _, p := range left {
		A.Detach(detachReq(p.req))
	}
	for i := range instances {
		_, vx, _ := instanceLinks(t, B, instance(i))
		deadline := time.Now().Add(20 * time.Second)
		for len(remoteMACs(t, nb, vx, na.IP())) != 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := remoteMACs(t, nb, vx, na.IP()); len(got) != 0 {
			t.Errorf("%s: B's FDB still points at A for %v", instance(i), got)
		}
	}
	if got := linkSummary(t, na); !mapsEqual(got, baseLinks) {
		t.Errorf("A's links after the load: %v, before: %v", got, baseLinks)
	}
	for c := range clients {
		l, err := na.Netlink().LinkByName(fmt.Sprintf("la%d", c))
		if err != nil || l.Attrs().MasterIndex != 0 {
			t.Errorf("la%d still enslaved or gone: %v", c, err)
		}
	}
	if v, err := A.LG("vpns/instances"); err != nil || len(v.([]any)) != 0 {
		t.Errorf("A's instances after the load: %v %v", v, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	g := goroutines(t, A)
	for g > baseGoroutines && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		g = goroutines(t, A)
	}
	if g > baseGoroutines {
		t.Errorf("A's goroutines: %d before the load, %d after", baseGoroutines, g)
	}
	if v, err := B.LG("vpns/instances"); err != nil || len(v.([]any)) != instances {
		t.Errorf("B's instances: %v %v", v, err)
	}
	t.Logf("LOAD-LINUX leaks: none (links %v, goroutines %d -> %d)", baseLinks, baseGoroutines, g)
}

// linkSummary counts a node's links by kind.
func linkSummary(t *testing.T, n *testfabric.Node) map[string]int {
	t.Helper()
	links, err := n.Links()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range links {
		out[l.Kind]++
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// remoteMACs returns the MACs of a VXLAN device's FDB entries towards vtep.
func remoteMACs(t *testing.T, n *testfabric.Node, dev string, vtep netip.Addr) []string {
	t.Helper()
	entries, err := n.FDB(dev)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Self && e.Dst == vtep && e.MAC != "00:00:00:00:00:00" {
			out = append(out, e.MAC)
		}
	}
	slices.Sort(out)
	return out
}

// goroutines reads go_goroutines from a daemon's /metrics.
func goroutines(t *testing.T, b *testfabric.Bagpipe) int {
	t.Helper()
	body, code, err := b.Get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}
