package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/api"
	"bagpipe/internal/bgp"
	"bagpipe/internal/bgp/bgptest"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/dataplane/instrumented"
	"bagpipe/internal/engine"
	"bagpipe/internal/metrics"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

var (
	local    = netip.MustParseAddr("192.0.2.1")
	peerAddr = netip.MustParseAddr("192.0.2.2")
	rt       = route.MustParseRT("64512:1")
)

// fakePeer is a BGP peer as the engine sees it: a route source.
type fakePeer struct{ src route.Source }

func (p *fakePeer) Source() *route.Source { return &p.src }
func (p *fakePeer) Deliver([]route.Event) {}

// stack is the daemon's assembly without BGP sessions: engine, VPN
// manager with instrumented dummy drivers, API with the metrics mounted,
// and a fake peer publishing into the engine.
type stack struct {
	t     *testing.T
	eng   *engine.Engine
	peers *bgptest.Fake
	peer  *fakePeer
	url   string
	m     *metrics.Metrics
}

func newStack(t *testing.T) *stack {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	eng := engine.New(log, &engine.RTCConfig{AS: 64512, NextHop: local})
	go eng.Run(ctx)
	peers := bgptest.NewFake()
	s := &stack{t: t, eng: eng, peers: peers, peer: &fakePeer{route.Source{Name: "BGP-" + peerAddr.String(), Peer: true}}}
	var mgr *vpn.Manager
	s.m = metrics.New(metrics.Sources{Engine: eng, Peers: peers.Peers, Instances: func() []metrics.InstanceStatus {
		return metrics.VPNInstances(mgr)()
	}})
	mgr = vpn.NewManager(vpn.Config{Engine: eng, Log: log, BGPAddress: local, Drivers: []dataplane.Driver{
		instrumented.Wrap(dummy.New(dataplane.IPVPN, local, log), s.m),
		instrumented.Wrap(dummy.New(dataplane.EVPN, local, log), s.m),
	}})
	srv, err := api.New(api.Config{VPN: mgr, Engine: eng, Peers: peers, VPNs: mgr, InstanceCount: mgr.InstanceCount,
		Logger: log, Requests: s.m, Handlers: map[string]http.Handler{"metrics": s.m.Handler()}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv) // 127.0.0.1
	s.url = hs.URL
	t.Cleanup(func() { hs.Close(); mgr.Stop(context.Background()); cancel() })
	return s
}

func (s *stack) post(path, body string, want int) {
	s.t.Helper()
	resp, err := http.Post(s.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		s.t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, b, want)
	}
}

// scrape returns every sample of /metrics by series: name{k="v",...}
// with the labels sorted.
func (s *stack) scrape() map[string]float64 {
	s.t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		s.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return parseExposition(s.t, resp.Body)
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

func parseExposition(t *testing.T, r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable exposition line %q", line)
		}
		var labels []string
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, p[1], p[2])
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		out[series(m[1], labels...)] = v
	}
	return out
}

// series formats a series key: name{k="v",...} with sorted labels.
func series(name string, kv ...string) string {
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+`="`+kv[i+1]+`"`)
	}
	sort.Strings(pairs)
	if len(pairs) == 0 {
		return name
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// expect checks the values of series.
func expect(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, k)
		case g != v:
			t.Errorf("%s: %s = %v, want %v", what, k, g, v)
		}
	}
}

// waitFor scrapes until cond holds (the instance goroutine works
// asynchronously).
func (s *stack) waitFor(what string, cond func(map[string]float64) bool) map[string]float64 {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.scrape()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *stack) publish(kind route.EventKind) {
	r := &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(peerAddr, 1), Prefix: netip.MustParsePrefix("10.0.1.0/24")},
		Label:   100,
		NextHop: peerAddr,
		Attrs:   &route.Attrs{RTs: []route.RT{rt}, Encaps: []route.Encap{route.EncapMPLS}},
	}
	s.eng.Publish(s.peer, []route.Event{{Kind: kind, Route: r}})
}

const attach = `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "52:54:00:00:00:01",
	"ip_address": "10.0.0.1/24", "gateway_ip": "10.0.0.254", "local_port": {"linuxif": "tap1"},
	"import_rt": ["64512:1"], "export_rt": ["64512:1"]}`

const detach = `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "52:54:00:00:00:01",
	"ip_address": "10.0.0.1/24", "local_port": {"linuxif": "tap1"}}`

// TestScenario attaches a port, receives a route from a peer, loses it and
// detaches, and checks the metrics after each step.
func TestScenario(t *testing.T) {
	s := newStack(t)
	peer := peerAddr.String()
	s.peers.SetPeers(bgp.PeerStatus{
		Name: "BGP-" + peer, PeerAddress: peerAddr, LocalAddress: local,
		Protocol:    bgp.ProtocolStatus{State: bgp.Established, PreviousState: bgp.OpenConfirm, LastTransitionTime: time.Unix(1700000000, 0)},
		QueueLength: 3,
		Stats:       bgp.PeerStats{SessionsUp: 2, UpdatesReceived: 5, UpdatesSent: 7, RoutesReceived: 9},
	})
	dp := func(op string) string {
		return series("bagpipe_dataplane_operations_total", "vpn_type", "ipvpn", "driver", "DummyDataplaneDriver", "operation", op)
	}
	inst := []string{"instance", "v1", "name", "VRF-1", "vpn_type", "ipvpn"}
	fam := func(f string, labels ...string) []string { return append(slices.Clone(labels), "family", f) }

	// Before anything: the daemon's static metrics.
	got := s.scrape()
	expect(t, "start", got, map[string]float64{
		series("bagpipe_vpn_instances", "vpn_type", "ipvpn"):                                            0,
		series("bagpipe_bgp_peer_up", "peer", peer):                                                     1,
		series("bagpipe_bgp_peer_state", "peer", peer, "state", "Established"):                          1,
		series("bagpipe_bgp_peer_state", "peer", peer, "state", "Idle"):                                 0,
		series("bagpipe_bgp_peer_sessions_established_total", "peer", peer):                             2,
		series("bagpipe_bgp_peer_flaps_total", "peer", peer):                                            1,
		series("bagpipe_bgp_peer_updates_received_total", "peer", peer):                                 5,
		series("bagpipe_bgp_peer_updates_sent_total", "peer", peer):                                     7,
		series("bagpipe_bgp_peer_route_events_received_total", "peer", peer):                            9,
		series("bagpipe_bgp_peer_queue_length", "peer", peer):                                           3,
		series("bagpipe_bgp_peer_last_transition_timestamp_seconds", "peer", peer):                      1700000000,
		series("bagpipe_bgp_routes_advertised", "family", "ipv4/mpls-vpn"):                              0,
		series("bagpipe_engine_queue_capacity"):                                                         float64(s.eng.QueueCapacity()),
		series("bagpipe_api_requests_total", "operation", "attach", "vpn_type", "ipvpn", "code", "200"): 0,
	})
	if _, ok := got[series("bagpipe_build_info", "version", "0.1.0-dev", "goversion", "")]; ok {
		t.Error("build_info without Go version")
	}

	// Attach (and a refused attach).
	s.post("/attach_localport", attach, http.StatusOK)
	s.post("/attach_localport", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1"}`, http.StatusBadRequest)
	s.post("/attach_localport", `{"vpn_type": "l3vpn"}`, http.StatusBadRequest)
	got = s.waitFor("the attach", func(m map[string]float64) bool {
		return m[series("bagpipe_vpn_instance_routes_advertised", fam("ipv4/mpls-vpn", inst...)...)] == 1
	})
	expect(t, "after attach", got, map[string]float64{
		series("bagpipe_api_requests_total", "operation", "attach", "vpn_type", "ipvpn", "code", "200"):  1,
		series("bagpipe_api_requests_total", "operation", "attach", "vpn_type", "ipvpn", "code", "400"):  1,
		series("bagpipe_api_requests_total", "operation", "attach", "vpn_type", "", "code", "400"):       1,
		series("bagpipe_api_request_duration_seconds_count", "operation", "attach", "vpn_type", "ipvpn"): 2,
		series("bagpipe_vpn_instances", "vpn_type", "ipvpn"):                                             1,
		series("bagpipe_vpn_instances", "vpn_type", "evpn"):                                              0,
		series("bagpipe_vpn_instance_queue_length", inst...):                                             0,
		series("bagpipe_bgp_routes_advertised", "family", "ipv4/mpls-vpn"):                               1,
		series("bagpipe_bgp_routes_advertised", "family", "ipv4/rtc"):                                    1,
		dp("reset_state"): 1, dp("initialize"): 1, dp("new_instance"): 1, dp("vif_plugged"): 1,
	})

	// A route received from the peer, imported by the VRF.
	s.publish(route.Advertise)
	got = s.waitFor("the received route", func(m map[string]float64) bool { return m[dp("setup_remote")] == 1 })
	expect(t, "after the route", got, map[string]float64{
		series("bagpipe_bgp_routes_received", "peer", peer, "family", "ipv4/mpls-vpn"):                                 1,
		series("bagpipe_vpn_instance_routes_received", fam("ipv4/mpls-vpn", inst...)...):                               1,
		series("bagpipe_dataplane_operation_duration_seconds_count", "vpn_type", "ipvpn", "operation", "setup_remote"): 1,
	})

	// The peer withdraws it.
	s.publish(route.Withdraw)
	got = s.waitFor("the withdrawal", func(m map[string]float64) bool { return m[dp("remove_remote")] == 1 })
	for _, k := range []string{
		series("bagpipe_vpn_instance_routes_received", fam("ipv4/mpls-vpn", inst...)...),
		series("bagpipe_bgp_routes_received", "peer", peer, "family", "ipv4/mpls-vpn"),
	} {
		if _, ok := got[k]; ok {
			t.Errorf("%s still reported for a family without routes", k)
		}
	}

	// Detach: the instance goes away.
	s.post("/detach_localport", detach, http.StatusOK)
	got = s.waitFor("the detach", func(m map[string]float64) bool { return m[dp("cleanup")] == 1 })
	expect(t, "after detach", got, map[string]float64{
		series("bagpipe_api_requests_total", "operation", "detach", "vpn_type", "ipvpn", "code", "200"):  1,
		series("bagpipe_api_request_duration_seconds_count", "operation", "detach", "vpn_type", "ipvpn"): 1,
		series("bagpipe_vpn_instances", "vpn_type", "ipvpn"):                                             0,
		series("bagpipe_bgp_routes_advertised", "family", "ipv4/mpls-vpn"):                               0,
		series("bagpipe_bgp_routes_advertised", "family", "ipv4/rtc"):                                    0,
		dp("vif_unplugged"): 1,
	})
	for k := range got {
		if strings.HasPrefix(k, "bagpipe_vpn_instance_") || strings.HasPrefix(k, "bagpipe_dataplane_errors_total") {
			t.Errorf("unexpected series after detach: %s", k)
		}
	}
}

func TestDataplaneErrorsAndMethods(t *testing.T) {
	s := newStack(t)
	s.m.DataplaneCall(dataplane.EVPN, "LinuxVXLANDataplaneDriver", instrumented.OpAddBUM, time.Millisecond, errors.New("boom"))
	got := s.scrape()
	expect(t, "error", got, map[string]float64{
		series("bagpipe_dataplane_operations_total", "vpn_type", "evpn", "driver", "LinuxVXLANDataplaneDriver", "operation", "add_bum"): 1,
		series("bagpipe_dataplane_errors_total", "vpn_type", "evpn", "driver", "LinuxVXLANDataplaneDriver", "operation", "add_bum"):     1,
	})
	resp, err := http.Post(s.url+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
}

// TestDocumented checks that docs/operations.md lists every bagpipe_
// metric family the daemon exposes.
func TestDocumented(t *testing.T) {
	s := newStack(t)
	s.m.DataplaneCall(dataplane.EVPN, "x", "y", 0, errors.New("e")) // create the dataplane families
	s.peers.SetPeers(bgp.PeerStatus{PeerAddress: peerAddr, Protocol: bgp.ProtocolStatus{LastTransitionTime: time.Now()}})
	s.publish(route.Advertise)
	if err := s.eng.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	families, err := s.m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, metrics.Namespace+"_") {
			continue
		}
		n++
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("metric %s is not documented in docs/operations.md", name)
		}
	}
	if n < 20 {
		t.Errorf("only %d bagpipe metric families", n)
	}
}
