package convergence

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"bagpipe/internal/testfabric"
)

var (
	attaches = flag.Int("attaches", 200, "number of attaches (and detaches) measured")
	rrKind   = flag.String("rr", "gobgp", "route reflector: gobgp (with RT Constraint) or frr")
)

const (
	instance = "bench-evpn"
	rt       = "64512:4242"
)

func mac(node, i int) net.HardwareAddr {
	return net.HardwareAddr{0x52, 0x54, 0x00, byte(node), byte(i >> 8), byte(i)}
}

func attachReq(port string, hw net.HardwareAddr, i int) map[string]any {
	return map[string]any{
		"vpn_type": "evpn", "vpn_instance_id": instance,
		"mac_address": hw.String(), "ip_address": fmt.Sprintf("10.%d.%d.%d/8", 100+i>>16, (i>>8)&255, i&255),
		"local_port": map[string]any{"linuxif": port},
		"import_rt":  []string{rt}, "export_rt": []string{rt},
	}
}

func detachReq(req map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"vpn_type", "vpn_instance_id", "mac_address", "ip_address", "local_port"} {
		out[k] = req[k]
	}
	return out
}

// addPorts creates n veth pairs on a node: the p<i> ends are the ports
// attached (VM-less endpoints).
func addPorts(b *testing.B, n *testfabric.Node, count int) []string {
	b.Helper()
	h := n.Netlink()
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: names[i]}, PeerName: fmt.Sprintf("q%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	return names
}

// fdbWatch records when entries of the watched MACs appear on and
// disappear from a VXLAN device's FDB.
type fdbWatch struct {
	mu      sync.Mutex
	link    int
	added   map[string]time.Time
	removed map[string]time.Time
	signal  chan struct{}
}

func (w *fdbWatch) run(ch <-chan netlink.NeighUpdate) {
	for u := range ch {
		now := time.Now()
		if u.Family != unix.AF_BRIDGE || u.LinkIndex != w.link || u.Flags&netlink.NTF_SELF == 0 || u.IP == nil {
			continue
		}
		k := u.HardwareAddr.String()
		w.mu.Lock()
		switch u.Type {
		case unix.RTM_NEWNEIGH:
			if _, seen := w.added[k]; !seen {
				w.added[k] = now
			}
		case unix.RTM_DELNEIGH:
			w.removed[k] = now
		}
		w.mu.Unlock()
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

// wait returns when the MAC's entry appeared (add) or disappeared.
func (w *fdbWatch) wait(ctx context.Context, k string, add bool) (time.Time, error) {
	for {
		w.mu.Lock()
		m := w.removed
		if add {
			m = w.added
		}
		at, ok := m[k]
		w.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-w.signal:
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("FDB entry of %s (add=%v): %w", k, add, ctx.Err())
		}
	}
}

type stats struct {
	n                          int
	min, median, p99, max, avg time.Duration
	beforeReturn               int // entries already there when the call returned
}

func summarize(d []time.Duration) stats {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration { return s[int(math.Ceil(p*float64(len(s))))-1] }
	var sum time.Duration
	st := stats{n: len(s), min: s[0], max: s[len(s)-1], median: rank(0.5), p99: rank(0.99)}
	for _, x := range s {
		sum += x
		if x <= 0 {
			st.beforeReturn++
		}
	}
	st.avg = sum / time.Duration(len(s))
	return st
}

func (s stats) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("n=%d median %s p99 %s (min %s, mean %s, max %s; %d already done when the call returned)",
		s.n, ms(s.median), ms(s.p99), ms(s.min), ms(s.avg), ms(s.max), s.beforeReturn)
}

func BenchmarkConvergence(b *testing.B) {
	testfabric.RequireRoot(b)
	n := *attaches
	fab := testfabric.NewFabric(b, testfabric.Options{Nodes: 3, Names: []string{"rr", "a", "b"}})
	rrNode, na, nb := fab.Node(0), fab.Node(1), fab.Node(2)
	rtc := *rrKind == "gobgp"
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: []netip.Addr{na.IP(), nb.IP()}, RTC: rtc}
	var rr testfabric.RouteReflector
	switch *rrKind {
	case "gobgp":
		rr = testfabric.StartGoBGPRR(b, rrNode, rrCfg)
	case "frr":
		rr = testfabric.StartFRRRR(b, rrNode, rrCfg)
	default:
		b.Fatalf("-rr %s: gobgp or frr", *rrKind)
	}
	cfg := testfabric.BagpipeConfig{Peers: []netip.Addr{rr.Addr()}, RTC: rtc, EVPN: "linux"}
	A, B := testfabric.StartBagpipe(b, na, cfg), testfabric.StartBagpipe(b, nb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fail := func(err error) {
		b.Helper()
		entries, ferr := nb.FDB(vxNameOf(b, B))
		dp, _ := B.LG("vpns/instances/" + instance + "/dataplane")
		routes, _ := B.LG("vpns/instances/" + instance + "/received_routes")
		b.Fatalf("%v\nB's FDB: %v %v\nB's dataplane: %v\nB's received routes: %v", err, entries, ferr, dp, routes)
	}
	for _, c := range rrCfg.Clients {
		if err := rr.WaitEstablished(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	portsA, portsB := addPorts(b, na, n+1), addPorts(b, nb, 1)
	// Both nodes in the E-VPN (B first, so that its VXLAN device exists
	// when the watch starts), one warm-up attach on A seen on B.
	B.Attach(attachReq(portsB[0], mac(0xb, 0), 0))
	vxName := vxNameOf(b, B)
	vx, err := nb.Netlink().LinkByName(vxName)
	if err != nil {
		b.Fatalf("B's VXLAN device %q: %v", vxName, err)
	}
	w := &fdbWatch{link: vx.Attrs().Index, added: map[string]time.Time{}, removed: map[string]time.Time{}, signal: make(chan struct{}, 1)}
	ch := make(chan netlink.NeighUpdate, 4096)
	done := make(chan struct{})
	defer close(done)
	nsB := nb.NsHandle()
	subErr := make(chan error, 1)
	err = netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{Namespace: &nsB, ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case subErr <- err:
			default:
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	go w.run(ch)
	A.Attach(attachReq(portsA[0], mac(0xa, 0), 1))
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = w.wait(wctx, mac(0xa, 0).String(), true)
	wcancel()
	if err != nil {
		fail(err)
	}

	b.ResetTimer()
	reqs := make([]map[string]any, n)
	fromReturn := make([]time.Duration, 0, n)
	fromRequest := make([]time.Duration, 0, n)
	for i := range n {
		hw := mac(0xa, i+1)
		reqs[i] = attachReq(portsA[i+1], hw, i+2)
		t0 := time.Now()
		A.Attach(reqs[i])
		t1 := time.Now()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		at, err := w.wait(wctx, hw.String(), true)
		wcancel()
		if err != nil {
			fail(err)
		}
		fromReturn = append(fromReturn, at.Sub(t1))
		fromRequest = append(fromRequest, at.Sub(t0))
	}
	detReturn := make([]time.Duration, 0, n)
	for i := range n {
		hw := mac(0xa, i+1)
		A.Detach(detachReq(reqs[i]))
		t1 := time.Now()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		at, err := w.wait(wctx, hw.String(), false)
		wcancel()
		if err != nil {
			fail(err)
		}
		detReturn = append(detReturn, at.Sub(t1))
	}
	b.StopTimer()
	select {
	case err := <-subErr:
		b.Fatalf("netlink notifications of B: %v (measures unreliable)", err)
	default:
	}

	att, req, det := summarize(fromReturn), summarize(fromRequest), summarize(detReturn)
	b.Logf("route reflector %s, %d attaches then %d detaches, one at a time", *rrKind, n, n)
	b.Logf("attach returned on A -> FDB entry on B:  %s", att)
	b.Logf("attach sent on A     -> FDB entry on B:  %s", req)
	b.Logf("detach returned on A -> FDB entry gone:  %s", det)
	b.ReportMetric(float64(att.median)/1e6, "attach-median-ms")
	b.ReportMetric(float64(att.p99)/1e6, "attach-p99-ms")
	b.ReportMetric(float64(det.median)/1e6, "detach-median-ms")
	b.ReportMetric(float64(det.p99)/1e6, "detach-p99-ms")
}

func vxNameOf(b *testing.B, n *testfabric.Bagpipe) string {
	v, err := n.LG("vpns/instances/" + instance + "/dataplane")
	if err != nil {
		b.Fatal(err)
	}
	name, _ := v.(map[string]any)["vxlan_if"].(string)
	return name
}
