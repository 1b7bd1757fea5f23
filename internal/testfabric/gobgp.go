package testfabric

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GoBGPAPIPort is the gRPC port gobgpd listens on, on the node's address.
const GoBGPAPIPort = 50051

// gobgpd families: configuration (afi-safi-name) and CLI (-a) names. The
// CLI calls flowspec-VPN "ipv4-l3vpn-flowspec" while the configuration
// calls it "l3vpn-ipv4-flowspec".
var gobgpFamilyNames = map[Family]struct{ conf, cli string }{
	FamilyIPv4VPN:         {"l3vpn-ipv4-unicast", "vpnv4"},
	FamilyEVPN:            {"l2vpn-evpn", "evpn"},
	FamilyRTC:             {"rtc", "rtc"},
	FamilyIPv4FlowspecVPN: {"l3vpn-ipv4-flowspec", "ipv4-l3vpn-flowspec"},
}

// GoBGP is a gobgpd process running in a node's namespace, either as route
// reflector (StartGoBGPRR) or as route-reflector client (StartGoBGPClient).
// Its gRPC API listens on <node IP>:50051 inside the namespace and is driven
// with the gobgp CLI run inside the namespace.
type GoBGP struct {
	t        testing.TB
	node     *Node
	gobgpd   string
	cli      string
	confPath string
	api      netip.AddrPort
	families []Family
	debug    bool
	timeout  time.Duration
	gr       bool // graceful restart: restarts announce it (-r)

	mu     sync.Mutex
	proc   *Process
	starts int
}

var _ RouteReflector = (*GoBGP)(nil)

// ClientConfig configures a gobgpd acting as a route-reflector client.
type ClientConfig struct {
	// AS is the (iBGP) autonomous system number; required.
	AS uint32
	// RouterID defaults to the node's IP.
	RouterID netip.Addr
	// RRs are the route reflectors to connect to (actively). The client
	// does not listen for BGP connections.
	RRs []netip.Addr
	// RTC adds the RT-Constraint family.
	RTC bool
	// Families overrides DefaultFamilies.
	Families []Family
	// HoldTime defaults to 9 s (keepalive is a third of it).
	HoldTime time.Duration
	// Debug turns on debug logging.
	Debug bool
	// Extra is appended verbatim to the generated TOML.
	Extra string
}

type gobgpNeighbor struct {
	addr     netip.Addr
	rrClient bool
	passive  bool
	password string                 // TCP MD5
	gr       *GracefulRestartConfig // nil: no graceful restart
}

// StartGoBGPRR starts gobgpd on node as a passive route reflector for
// cfg.Clients and waits until its API answers. It fails the test on error,
// skips it when gobgpd/gobgp are not installed, and stops the daemon at
// cleanup.
func StartGoBGPRR(t testing.TB, node *Node, cfg RRConfig) *GoBGP {
	t.Helper()
	cfg.setDefaults(node)
	var nbrs []gobgpNeighbor
	for _, c := range cfg.Clients {
		nbrs = append(nbrs, gobgpNeighbor{addr: c, rrClient: true, passive: true, password: cfg.Password, gr: cfg.GracefulRestart})
	}
	conf := gobgpConfig(cfg.AS, cfg.RouterID, cfg.ClusterID, node.IP(), int(cfg.Port), cfg.HoldTime, cfg.Families, nbrs, cfg.Extra)
	g := startGoBGP(t, node, "gobgpd-rr", conf, cfg.Families, cfg.Debug)
	g.gr = cfg.GracefulRestart != nil
	return g
}

// StartGoBGPClient starts gobgpd on node as an ordinary iBGP speaker that
// connects to the route reflectors cfg.RRs, and waits until its API answers.
// It fails the test on error, skips it when gobgpd/gobgp are not installed,
// and stops the daemon at cleanup.
func StartGoBGPClient(t testing.TB, node *Node, cfg ClientConfig) *GoBGP {
	t.Helper()
	rr := RRConfig{AS: cfg.AS, RouterID: cfg.RouterID, RTC: cfg.RTC, Families: cfg.Families, HoldTime: cfg.HoldTime}
	rr.setDefaults(node)
	var nbrs []gobgpNeighbor
	for _, a := range cfg.RRs {
		nbrs = append(nbrs, gobgpNeighbor{addr: a})
	}
	conf := gobgpConfig(rr.AS, rr.RouterID, netip.Addr{}, node.IP(), -1, rr.HoldTime, rr.Families, nbrs, cfg.Extra)
	return startGoBGP(t, node, "gobgpd-client", conf, rr.Families, cfg.Debug)
}

func startGoBGP(t testing.TB, node *Node, label, conf string, families []Family, debug bool) *GoBGP {
	t.Helper()
	if node.IP().Is6() {
		t.Fatalf("testfabric: IPv6 node addresses are not supported")
	}
	for _, f := range families {
		if _, ok := gobgpFamilyNames[f]; !ok {
			t.Fatalf("testfabric: gobgpd: family %s: %v", f, ErrUnsupportedFamily)
		}
	}
	g := &GoBGP{
		t:        t,
		node:     node,
		gobgpd:   requireBinary(t, "gobgpd"),
		cli:      requireBinary(t, "gobgp"),
		api:      netip.AddrPortFrom(node.IP(), GoBGPAPIPort),
		families: families,
		debug:    debug,
		timeout:  node.fabric.opts.StopTimeout,
	}
	dir := t.TempDir()
	g.confPath = filepath.Join(dir, label+".toml")
	if err := os.WriteFile(g.confPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("testfabric: %v", err)
	}
	// Registered after TempDir so the daemon stops before the directory
	// is removed.
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("testfabric: stopping gobgpd on %s: %v", node, err)
		}
		if t.Failed() {
			g.dumpLogs()
			if b, err := os.ReadFile(g.confPath); err == nil {
				t.Logf("testfabric: ---- %s:\n%s", g.confPath, b)
			}
		}
	})
	if err := g.start(); err != nil {
		t.Fatalf("testfabric: starting gobgpd on %s: %v\nconfig %s:\n%s", node, err, g.confPath, conf)
	}
	t.Logf("testfabric: gobgpd (%s) running on %s, API %s, config %s", label, node, g.api, g.confPath)
	return g
}

// gobgpConfig renders a gobgpd TOML configuration. port < 0 disables the
// BGP listener; an invalid clusterID omits route-reflector settings.
func gobgpConfig(as uint32, routerID, clusterID, local netip.Addr, port int, hold time.Duration, fams []Family, nbrs []gobgpNeighbor, extra string) string {
	var b strings.Builder
	holdS := int(hold.Round(time.Second) / time.Second)
	if holdS < 3 {
		holdS = 3
	}
	fmt.Fprintf(&b, "# generated by bagpipe/internal/testfabric for gobgpd 3.x\n")
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n  port = %d\n", as, routerID, port)
	if port >= 0 {
		fmt.Fprintf(&b, "  local-address-list = [%q]\n", local)
	}
	for _, n := range nbrs {
		fmt.Fprintf(&b, "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", n.addr, as)
		if n.password != "" {
			fmt.Fprintf(&b, "    auth-password = %q\n", n.password)
		}
		fmt.Fprintf(&b, "  [neighbors.timers.config]\n    hold-time = %d\n    keepalive-interval = %d\n    connect-retry = 1\n", holdS, holdS/3)
		fmt.Fprintf(&b, "  [neighbors.transport.config]\n    local-address = %q\n", local)
		if n.passive {
			fmt.Fprintf(&b, "    passive-mode = true\n")
		}
		if n.rrClient {
			fmt.Fprintf(&b, "  [neighbors.route-reflector.config]\n    route-reflector-client = true\n    route-reflector-cluster-id = %q\n", clusterID)
		}
		if n.gr != nil {
			rt := n.gr.restartSeconds()
			fmt.Fprintf(&b, "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = %d\n    deferral-time = %d\n    notification-enabled = %v\n",
				rt, rt, n.gr.Notification)
		}
		for _, f := range fams {
			fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", gobgpFamilyNames[f].conf)
			if n.gr != nil {
				fmt.Fprintf(&b, "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n")
			}
		}
	}
	if extra != "" {
		b.WriteString("\n")
		b.WriteString(extra)
		b.WriteString("\n")
	}
	return b.String()
}

func (g *GoBGP) start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil && !g.proc.Exited() {
		return errors.New("already running")
	}
	level := "info"
	if g.debug {
		level = "debug"
	}
	args := []string{
		"-f", g.confPath,
		"-t", "toml",
		"-p", // plain-text logs
		"-l", level,
		"--api-hosts", g.api.String(),
		"--pprof-disable",
	}
	if g.gr && g.starts > 0 {
		args = append(args, "-r") // restarting: R and F bits, deferred updates
	}
	p, err := g.node.Start(g.gobgpd, args...)
	if err != nil {
		return err
	}
	g.proc = p
	g.starts++
	// Wait until the gRPC API answers (or the daemon dies).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lastErr error
	err = poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("gobgpd exited: %v\n%s", p.Err(), tail(p))
		}
		_, lastErr = g.runCLI(ctx, "global")
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last API error: %v)", err, lastErr)
	}
	return nil
}

func tail(p *Process) string {
	o, e := p.Output()
	return lastBytes([]byte(o+e), 4096)
}

func (g *GoBGP) dumpLogs() {
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if p != nil {
		p.dumpLogs(g.t)
	}
}

// Node returns the node gobgpd runs on.
func (g *GoBGP) Node() *Node { return g.node }

// Addr returns the node address gobgpd uses for BGP.
func (g *GoBGP) Addr() netip.Addr { return g.node.IP() }

// APIAddr returns the address of the gRPC API (inside the namespace).
func (g *GoBGP) APIAddr() netip.AddrPort { return g.api }

// ConfigPath returns the path of the generated TOML configuration.
func (g *GoBGP) ConfigPath() string { return g.confPath }

// Families returns the configured families.
func (g *GoBGP) Families() []Family { return append([]Family(nil), g.families...) }

// Process returns the current gobgpd process (nil before the first start).
func (g *GoBGP) Process() *Process {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.proc
}

// Running reports whether gobgpd is alive.
func (g *GoBGP) Running() bool {
	p := g.Process()
	return p != nil && !p.Exited()
}

// Stop stops gobgpd (SIGTERM, then SIGKILL); it is a no-op when stopped.
func (g *GoBGP) Stop() error {
	if p := g.Process(); p != nil {
		return p.Stop(g.timeout)
	}
	return nil
}

// Kill kills gobgpd with SIGKILL.
func (g *GoBGP) Kill() error {
	if p := g.Process(); p != nil {
		return p.Kill()
	}
	return nil
}

// Restart stops gobgpd if needed and starts it again with the same
// configuration (all routes injected through the API are lost).
func (g *GoBGP) Restart() error {
	if err := g.Stop(); err != nil {
		return err
	}
	return g.start()
}

// CLI runs the gobgp CLI against this daemon's API, inside the node's
// namespace, and returns its standard output.
func (g *GoBGP) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return g.runCLI(ctx, args...)
}

func (g *GoBGP) runCLI(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	full := append([]string{"-u", g.api.Addr().String(), "-p", strconv.Itoa(int(g.api.Port()))}, args...)
	return g.node.Run(ctx, g.cli, full...)
}

// AddRoute adds a route to the global RIB with
// "gobgp global rib -a <family> add <args...>", for example
// AddRoute(ctx, FamilyIPv4VPN, "10.0.0.0/24", "label", "100", "rd", "64512:1", "rt", "64512:1", "nexthop", "10.250.0.2").
func (g *GoBGP) AddRoute(ctx context.Context, f Family, args ...string) error {
	return g.ribOp(ctx, "add", f, args)
}

// DeleteRoute removes a route with "gobgp global rib -a <family> del <args...>".
func (g *GoBGP) DeleteRoute(ctx context.Context, f Family, args ...string) error {
	return g.ribOp(ctx, "del", f, args)
}

func (g *GoBGP) ribOp(ctx context.Context, op string, f Family, args []string) error {
	names, ok := gobgpFamilyNames[f]
	if !ok {
		return fmt.Errorf("%s: %w", f, ErrUnsupportedFamily)
	}
	out, err := g.runCLI(ctx, append([]string{"global", "rib", "-a", names.cli, op}, args...)...)
	if err != nil {
		return err
	}
	// A successful add/del prints nothing; be strict about anything else.
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("gobgp global rib %s: %s", op, s)
	}
	return nil
}

// WaitEstablished waits until the session with peer is established.
func (g *GoBGP) WaitEstablished(ctx context.Context, peer netip.Addr) error {
	return waitEstablished(ctx, g, peer)
}

// gobgp session_state enum values (apipb.PeerState_SessionState).
var gobgpStates = map[int]string{
	0: "unknown", 1: "idle", 2: "connect", 3: "active",
	4: "opensent", 5: "openconfirm", 6: "established",
}

type gobgpFamily struct {
	AFI  uint16 `json:"afi"`
	SAFI uint8  `json:"safi"`
}

type gobgpNeighborJSON struct {
	State struct {
		NeighborAddress string          `json:"neighbor_address"`
		SessionState    json.RawMessage `json:"session_state"`
	} `json:"state"`
	AfiSafis []struct {
		State struct {
			Family     gobgpFamily `json:"family"`
			Enabled    bool        `json:"enabled"`
			Received   int         `json:"received"`
			Accepted   int         `json:"accepted"`
			Advertised int         `json:"advertised"`
		} `json:"state"`
	} `json:"afi_safis"`
}

// Neighbor returns the state and per-family counters of one neighbor.
func (g *GoBGP) Neighbor(ctx context.Context, peer netip.Addr) (*NeighborState, error) {
	out, err := g.runCLI(ctx, "-j", "neighbor", peer.String())
	if err != nil {
		return nil, err
	}
	return parseGoBGPNeighbor(out)
}

func parseGoBGPNeighbor(out []byte) (*NeighborState, error) {
	var n gobgpNeighborJSON
	if err := json.Unmarshal(out, &n); err != nil {
		return nil, fmt.Errorf("decoding gobgp neighbor JSON: %w: %s", err, lastBytes(out, 512))
	}
	st := &NeighborState{
		Addr:     parseAddr(n.State.NeighborAddress),
		State:    "idle",
		Families: map[Family]PrefixCounts{},
		Raw:      json.RawMessage(out),
	}
	if s := strings.Trim(string(n.State.SessionState), `"`); s != "" {
		if i, err := strconv.Atoi(s); err == nil {
			st.State = gobgpStates[i]
		} else {
			st.State = strings.ToLower(s)
		}
	}
	for _, a := range n.AfiSafis {
		f := Family{AFI: a.State.Family.AFI, SAFI: a.State.Family.SAFI}
		st.Families[f] = PrefixCounts{Received: a.State.Received, Accepted: a.State.Accepted, Advertised: a.State.Advertised}
	}
	return st, nil
}

// RIB returns every path of the global (Loc-)RIB for family f.
func (g *GoBGP) RIB(ctx context.Context, f Family) ([]Route, error) {
	names, ok := gobgpFamilyNames[f]
	if !ok {
		return nil, fmt.Errorf("%s: %w", f, ErrUnsupportedFamily)
	}
	out, err := g.runCLI(ctx, "-j", "global", "rib", "-a", names.cli)
	if err != nil {
		return nil, err
	}
	return parseGoBGPRIB(f, out)
}

// AdjRIBOut returns the paths advertised to peer for family f.
func (g *GoBGP) AdjRIBOut(ctx context.Context, peer netip.Addr, f Family) ([]Route, error) {
	names, ok := gobgpFamilyNames[f]
	if !ok {
		return nil, fmt.Errorf("%s: %w", f, ErrUnsupportedFamily)
	}
	out, err := g.runCLI(ctx, "-j", "neighbor", peer.String(), "adj-out", "-a", names.cli)
	if err != nil {
		return nil, err
	}
	return parseGoBGPRIB(f, out)
}

// AdjRIBIn returns the paths received from peer for family f.
func (g *GoBGP) AdjRIBIn(ctx context.Context, peer netip.Addr, f Family) ([]Route, error) {
	names, ok := gobgpFamilyNames[f]
	if !ok {
		return nil, fmt.Errorf("%s: %w", f, ErrUnsupportedFamily)
	}
	out, err := g.runCLI(ctx, "-j", "neighbor", peer.String(), "adj-in", "-a", names.cli)
	if err != nil {
		return nil, err
	}
	return parseGoBGPRIB(f, out)
}

type gobgpPathJSON struct {
	NLRI       json.RawMessage   `json:"nlri"`
	Best       bool              `json:"best"`
	Attrs      []json.RawMessage `json:"attrs"`
	NeighborIP string            `json:"neighbor-ip"`
}

type gobgpRD struct {
	Admin    json.RawMessage `json:"admin"`
	Assigned uint32          `json:"assigned"`
}

func (rd *gobgpRD) String() string {
	if rd == nil || len(rd.Admin) == 0 {
		return ""
	}
	return strings.Trim(string(rd.Admin), `"`) + ":" + strconv.FormatUint(uint64(rd.Assigned), 10)
}

type gobgpNLRIJSON struct {
	// IPv4 VPN (and RTC: "prefix" only).
	Prefix string   `json:"prefix"`
	Labels []uint32 `json:"labels"`
	RD     *gobgpRD `json:"rd"`
	// EVPN: type + value.
	Type  uint8           `json:"type"`
	Value json.RawMessage `json:"value"`
}

type gobgpEVPNJSON struct {
	RD     *gobgpRD `json:"rd"`
	ETag   uint32   `json:"etag"`
	MAC    string   `json:"mac"`
	IP     string   `json:"ip"`
	Labels []uint32 `json:"labels"`
}

type gobgpAttrJSON struct {
	Type    int             `json:"type"`
	Nexthop string          `json:"nexthop"`
	Value   json.RawMessage `json:"value"`
}

type gobgpExtCommJSON struct {
	Type    int    `json:"type"`
	Subtype int    `json:"subtype"`
	Value   string `json:"value"`
}

// parseGoBGPRIB decodes "gobgp -j global rib" / "neighbor X adj-out" output:
// a map from destination key to its paths.
func parseGoBGPRIB(f Family, out []byte) ([]Route, error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 || bytes.Equal(out, []byte("null")) {
		return nil, nil
	}
	var dests map[string][]json.RawMessage
	if err := json.Unmarshal(out, &dests); err != nil {
		return nil, fmt.Errorf("decoding gobgp RIB JSON: %w: %s", err, lastBytes(out, 512))
	}
	keys := make([]string, 0, len(dests))
	for k := range dests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var routes []Route
	for _, key := range keys {
		for _, raw := range dests[key] {
			var p gobgpPathJSON
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, fmt.Errorf("decoding gobgp path %s: %w", key, err)
			}
			r := Route{Family: f, NLRI: key, Best: p.Best, From: parseAddr(p.NeighborIP), Raw: raw}
			var n gobgpNLRIJSON
			if err := json.Unmarshal(p.NLRI, &n); err != nil {
				return nil, fmt.Errorf("decoding gobgp NLRI %s: %w", key, err)
			}
			switch f {
			case FamilyIPv4VPN:
				r.RD = n.RD.String()
				r.Labels = n.Labels
				if pfx, err := netip.ParsePrefix(n.Prefix); err == nil {
					r.Prefix = pfx
				}
			case FamilyEVPN:
				var e gobgpEVPNJSON
				if len(n.Value) > 0 {
					if err := json.Unmarshal(n.Value, &e); err != nil {
						return nil, fmt.Errorf("decoding gobgp EVPN NLRI %s: %w", key, err)
					}
				}
				r.RD = e.RD.String()
				r.Labels = e.Labels
				r.EVPN = &EVPNRoute{Type: n.Type, ETag: e.ETag, MAC: strings.ToLower(e.MAC), IP: parseAddr(e.IP)}
			case FamilyIPv4FlowspecVPN:
				r.RD = n.RD.String()
			}
			for _, a := range p.Attrs {
				var attr gobgpAttrJSON
				if err := json.Unmarshal(a, &attr); err != nil {
					continue
				}
				switch attr.Type {
				case 3, 14: // NEXT_HOP, MP_REACH_NLRI
					if nh := parseAddr(attr.Nexthop); nh.IsValid() {
						r.NextHop = nh
					}
				case 16: // EXTENDED_COMMUNITIES
					var ecs []gobgpExtCommJSON
					if err := json.Unmarshal(attr.Value, &ecs); err != nil {
						continue
					}
					for _, ec := range ecs {
						// Route target: transitive two-octet AS,
						// IPv4 or four-octet AS type, subtype 2.
						if ec.Subtype == 2 && ec.Type >= 0 && ec.Type <= 2 && ec.Value != "" {
							r.RouteTargets = append(r.RouteTargets, ec.Value)
						}
					}
				}
			}
			routes = append(routes, r)
		}
	}
	return routes, nil
}
