package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// rtcResult is scenario 6 for one implementation.
type rtcResult struct {
	Impl      string  `json:"impl"`
	VPNs      int     `json:"rr_vpns"`
	PerVPN    int     `json:"routes_per_vpn"`
	RRRoutes  int     `json:"rr_routes"`       // routes the route reflector held
	RRLoad    float64 `json:"rr_load_s"`       // time gobgpd took to take them from the feeder
	Received  int     `json:"routes_received"` // received routes the node holds once settled
	Expected  int     `json:"routes_expected"` // routes of the imported VPN
	Seconds   float64 `json:"convergence_s"`   // attach POST sent -> the instance has the VPN's routes
	RSSBefore int64   `json:"rss_before"`      // bytes, session up, nothing imported
	RSSAfter  int64   `json:"rss_after"`       // bytes, converged
	Settle    float64 `json:"settle_s"`        // how long the count was watched after convergence
	Err       string  `json:"error,omitempty"`
}

// The VPN the node imports, and its route target.
func rtcRT(v int) uint32 { return uint32(1000 + v) }

// rtcFeed encodes the route reflector's content: vpns VPNs of perVPN VPNv4
// /32 routes, each VPN with its own route target, spread over 10 PEs;
// routes of one VPN and one PE share an UPDATE.
func rtcFeed(vpns, perVPN int) (*stream, error) {
	st := &stream{}
	rds := map[[2]int]bgp.RouteDistinguisherInterface{}
	for v := range vpns {
		e := newEncoder(famVPNv4, rtcRT(v))
		for p := range min(10, perVPN) {
			nh := netip.AddrFrom4([4]byte{172, 17, 0, byte(p + 1)})
			var nlris []bgp.PathNLRI
			for j := p; j < perVPN; j += 10 {
				rd := rds[[2]int{p, v}]
				if rd == nil {
					x, err := bgp.NewRouteDistinguisherIPAddressAS(nh, uint16(v))
					if err != nil {
						return nil, err
					}
					rd, rds[[2]int{p, v}] = x, x
				}
				pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(v >> 8), byte(v), byte(j + 1)}), 32)
				n, err := bgp.NewLabeledVPNIPAddrPrefix(pfx, *bgp.NewMPLSLabelStack(uint32(16 + j)), rd)
				if err != nil {
					return nil, err
				}
				nlris = append(nlris, bgp.PathNLRI{NLRI: n})
			}
			b, err := e.update(nlris, nh, false)
			if err != nil {
				return nil, err
			}
			st.add(b)
		}
	}
	return st, nil
}

// gobgpd is the route reflector of the RT Constraint scenario, on loopback.
type gobgpd struct {
	cmd     *exec.Cmd
	done    chan struct{}
	bgpPort int
	apiPort int
}

func startGoBGPD(ctx context.Context, dir string, clients []netip.Addr, feeder netip.Addr) (*gobgpd, error) {
	bgpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n  port = %d\n  local-address-list = [%q]\n", feedAS, rrAddr, bgpPort, rrAddr)
	for _, c := range append([]netip.Addr{feeder}, clients...) {
		fmt.Fprintf(&b, "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", c, feedAS)
		// The reference refuses hold times of 30 s or less.
		fmt.Fprintf(&b, "  [neighbors.timers.config]\n    hold-time = 180\n    keepalive-interval = 60\n    connect-retry = 1\n")
		fmt.Fprintf(&b, "  [neighbors.transport.config]\n    local-address = %q\n    passive-mode = true\n", rrAddr)
		fmt.Fprintf(&b, "  [neighbors.route-reflector.config]\n    route-reflector-client = true\n    route-reflector-cluster-id = %q\n", rrAddr)
		for _, f := range []string{"l3vpn-ipv4-unicast", "l2vpn-evpn", "rtc"} {
			fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "gobgpd.log"))
	if err != nil {
		return nil, err
	}
	g := &gobgpd{bgpPort: bgpPort, apiPort: apiPort, done: make(chan struct{})}
	g.cmd = exec.Command("gobgpd", "-f", conf, "-t", "toml", "-p", "-l", "warn",
		"--api-hosts", fmt.Sprintf("%s:%d", rrAddr, apiPort), "--pprof-disable")
	g.cmd.Stdout, g.cmd.Stderr = out, out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("gobgpd: %w (scripts/setup.sh installs it)", err)
	}
	go func() { _ = g.cmd.Wait(); out.Close(); close(g.done) }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := g.cli(ctx, "global"); err == nil {
			return g, nil
		}
		select {
		case <-g.done:
			return nil, errors.New("gobgpd exited at start (see its log)")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, errors.New("gobgpd API not answering")
		}
	}
}

func (g *gobgpd) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	full := append([]string{"-u", rrAddr.String(), "-p", strconv.Itoa(g.apiPort)}, args...)
	b, err := exec.CommandContext(ctx, "gobgp", full...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gobgp %s: %v: %s", strings.Join(args, " "), err, firstLine(string(b)))
	}
	return string(b), nil
}

var ribSummary = regexp.MustCompile(`Destination:\s*(\d+),\s*Path:\s*(\d+)`)

// vpnv4Paths returns the number of VPNv4 paths in gobgpd's RIB.
func (g *gobgpd) vpnv4Paths(ctx context.Context) (int, error) {
	out, err := g.cli(ctx, "global", "rib", "summary", "-a", "vpnv4")
	if err != nil {
		return 0, err
	}
	m := ribSummary.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unexpected gobgp output: %s", firstLine(out))
	}
	return strconv.Atoi(m[2])
}

// established reports whether gobgpd's session with a neighbor is up.
func (g *gobgpd) established(ctx context.Context, n netip.Addr) bool {
	out, err := g.cli(ctx, "neighbor", n.String())
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if l := strings.ToLower(sc.Text()); strings.Contains(l, "bgp state") && strings.Contains(l, "established") {
			return true
		}
	}
	return false
}

func (g *gobgpd) stop() {
	if g == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// runRTC runs scenario 6: a gobgpd route reflector loaded by the feeder
// with VPNs of routes; each node in turn connects to it (RT Constraint
// on), attaches one port to one VPN, and must receive exactly that VPN's
// routes.
func runRTC(ctx context.Context, cfg *config, impls []impl, dir string) ([]rtcResult, error) {
	clients := make([]netip.Addr, 0, len(impls))
	for _, im := range impls {
		clients = append(clients, im.addr)
	}
	fe, err := newFeeder(feederAddr, 0) // the feeder's own listener is unused here
	if err != nil {
		return nil, err
	}
	defer fe.close()
	g, err := startGoBGPD(ctx, dir, clients, fe.addr)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	st, err := rtcFeed(cfg.rtcVPNs, cfg.rtcRoutes)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := fe.dialSession(dctx, netip.AddrPortFrom(rrAddr, uint16(g.bgpPort)))
	cancel()
	if err != nil {
		return nil, err
	}
	defer s.close()
	loadStart := time.Now()
	if err := s.send(ctx, st); err != nil {
		return nil, fmt.Errorf("loading the route reflector: %w", err)
	}
	total := cfg.rtcVPNs * cfg.rtcRoutes
	held := 0
	for deadline := time.Now().Add(5 * time.Minute); held < total; {
		if held, err = g.vpnv4Paths(ctx); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("the route reflector holds %d of %d routes", held, total)
		}
		time.Sleep(200 * time.Millisecond)
	}
	load := time.Since(loadStart)
	var out []rtcResult
	for _, im := range impls {
		r := rtcNode(ctx, cfg, g, im, held, filepath.Join(dir, im.name))
		r.RRLoad = load.Seconds()
		out = append(out, r)
	}
	return out, nil
}

func rtcNode(ctx context.Context, cfg *config, g *gobgpd, im impl, held int, dir string) rtcResult {
	v := cfg.rtcVPNs / 2
	r := rtcResult{Impl: im.name, VPNs: cfg.rtcVPNs, PerVPN: cfg.rtcRoutes, RRRoutes: held, Expected: cfg.rtcRoutes}
	quiesce()
	d, err := startDaemon(ctx, im, daemonConfig{peer: rrAddr, bgpPort: g.bgpPort, rtc: true}, dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer d.stop()
	for deadline := time.Now().Add(60 * time.Second); !g.established(ctx, im.addr); {
		if time.Now().After(deadline) {
			r.Err = "no BGP session with the route reflector"
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(cfg.rtcSettle) // what the route reflector sends before any RTC route arrives
	if n, err := d.receivedCount(ctx); err == nil && n != 0 {
		r.Err = fmt.Sprintf("%d routes received before anything was imported", n)
	}
	r.RSSBefore, _ = d.rss()
	inst := "bench-rtc"
	req := attachRequestRT("ipvpn", inst, localPortMAC, netip.AddrFrom4([4]byte{192, 168, 50, 1}), "tap-rtc", rtcRT(v))
	start := time.Now()
	if _, err := d.post(ctx, "/attach_localport", req); err != nil {
		r.Err = err.Error()
		return r
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	end, _, last, err := waitInstance(wctx, d, inst, 0, cfg.rtcRoutes, start)
	cancel()
	if err != nil {
		r.Received = last
		r.Err = fmt.Sprintf("not converged: %d routes received", last)
		return r
	}
	r.Seconds = end.Sub(start).Seconds()
	r.RSSAfter, _ = d.rss()
	// Anything more would come right after: watch the count a while.
	settle := cfg.rtcSettle
	time.Sleep(settle)
	r.Settle = settle.Seconds()
	if r.Received, err = d.receivedCount(ctx); err != nil {
		r.Err = err.Error()
	}
	return r
}
