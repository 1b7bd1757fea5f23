package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/bgp"
	"bagpipe/internal/engine"
	"bagpipe/internal/logging"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/route"
	"bagpipe/internal/version"
)

const lgBase = "http://bagpipe.test:8082/looking-glass"

// testWorker is an engine worker without looking glass.
type testWorker struct{ src route.Source }

func (w *testWorker) Source() *route.Source { return &w.src }
func (w *testWorker) Deliver([]route.Event) {}

// lgWorker is a worker with its own looking glass object.
type lgWorker struct{ testWorker }

func (w *lgWorker) LookingGlass() []lookingglass.Entry {
	return []lookingglass.Entry{{Name: "name", Kind: lookingglass.Value, Value: func() any { return w.src.Name }},
		{Name: "own", Kind: lookingglass.Value, Value: func() any { return true }}}
}

type fakePeers []bgp.PeerStatus

func (p fakePeers) Peers() []bgp.PeerStatus { return p }

var (
	lo    = netip.MustParseAddr("127.0.0.1")
	peer2 = netip.MustParseAddr("127.0.0.2")
)

// lgFixture runs a real engine with a VRF worker, an E-VPN worker with its
// own looking glass and an established peer, and returns a server on it.
func lgFixture(t *testing.T) (*Server, *logging.Catcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	eng := engine.New(slog.New(slog.DiscardHandler), &engine.RTCConfig{AS: 64512, NextHop: lo})
	go eng.Run(ctx)

	rt77 := route.MustParseRT("64512:77")
	vrf := &testWorker{route.Source{Name: "VRF-1"}}
	evi := &lgWorker{testWorker{route.Source{Name: "EVI-2"}}}
	peer := &testWorker{route.Source{Name: "BGP-127.0.0.2", Peer: true}}
	eng.Subscribe(vrf, engine.Match{Family: route.IPv4VPN, RT: rt77})
	eng.Subscribe(peer, engine.Match{Family: route.RTC})
	eng.Subscribe(evi, engine.Match{Family: route.EVPN, RT: route.MustParseRT("64512:88")})
	attrs := &route.Attrs{HasLocalPref: true, LocalPref: 100, RTs: []route.RT{rt77}, Encaps: []route.Encap{route.EncapMPLS}}
	eng.Publish(vrf, []route.Event{{Kind: route.Advertise, Route: &route.Route{
		NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(lo, 0), Prefix: netip.MustParsePrefix("10.0.0.1/32")},
		Label: 18, NextHop: lo, Attrs: attrs,
	}}})
	eng.Publish(peer, []route.Event{{Kind: route.Advertise, Route: &route.Route{
		NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(peer2, 1), Prefix: netip.MustParsePrefix("10.0.0.2/32")},
		Label: 20, NextHop: peer2, Attrs: attrs,
	}}})
	if err := eng.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	catcher := logging.NewCatcher(0)
	log := slog.New(logging.NewCatchHandler(slog.DiscardHandler, catcher))
	log.Warn("global warning")
	log.Error(`VRF "error"`, logging.WorkerKey, "VRF-1")

	peers := fakePeers{
		{Name: "BGP-127.0.0.2", PeerAddress: peer2, LocalAddress: lo, LocalAS: 64512, PeerAS: 64512,
			RTC: bgp.RTCStatus{Enabled: true, Active: true}, Families: []string{"(ipv4, mpls-vpn)", "(ipv4, rtc)"},
			Protocol: bgp.ProtocolStatus{State: bgp.Established, PreviousState: bgp.OpenConfirm, HoldTime: 180,
				LastTransitionTime: time.Date(2026, 11, 24, 16, 50, 31, 0, time.Local)},
			Worker: peer,
			GracefulRestart: bgp.GRStatus{Enabled: true, Negotiated: true, PeerRestartTime: 120,
				PeerFamilies: []string{"(ipv4, mpls-vpn)"}, StaleRoutes: 3, EndOfRIB: []string{"(ipv4, rtc)"}},
			Stats:       bgp.PeerStats{StaleRoutesWithdrawn: 2, MaxPrefixesExceeded: 1},
			MaxPrefixes: 1000, MD5: true},
		{Name: "BGP-127.0.0.3", PeerAddress: netip.MustParseAddr("127.0.0.3"), LocalAddress: lo, LocalAS: 64512,
			RTC:      bgp.RTCStatus{Enabled: true},
			Protocol: bgp.ProtocolStatus{State: bgp.Active, PreviousState: bgp.Connect, HoldTime: 180}},
	}
	vpns := lookingglass.Entries{{Name: "instances", Kind: lookingglass.Collection,
		List: func() []lookingglass.Item {
			return []lookingglass.Item{{ID: "v1", Fields: map[string]any{"name": "VRF-1"}}, {ID: "e1", Fields: map[string]any{"name": "EVI-2"}}}
		},
		Lookup: func(string) (lookingglass.Object, bool) { return nil, false },
	}}
	s := newTestServer(t, Config{
		Engine: eng, Peers: peers, VPNs: vpns, Logs: catcher,
		Settings: func() map[string]map[string]any {
			return map[string]map[string]any{"BGP": {"my_as": 64512, "peers": []string{"127.0.0.2"}}, "API": {"port": 8082}}
		},
		StartTime: time.Date(2026, 11, 24, 16, 0, 0, 0, time.Local),
	})
	return s, catcher
}

// get fetches a looking glass path and decodes it (200 expected).
func get(t *testing.T, s *Server, path string) any {
	t.Helper()
	r := do(t, s, http.MethodGet, "/looking-glass"+path, "")
	if r.status != http.StatusOK || r.contentType != "application/json" {
		t.Fatalf("GET %s: %d %q %s", path, r.status, r.contentType, r.body)
	}
	return decode(t, r.body)
}

func href(path string) map[string]any { return map[string]any{"href": lgBase + path} }

func check(t *testing.T, what string, got any, want string) {
	t.Helper()
	if w := decode(t, want); !reflect.DeepEqual(got, w) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, w)
	}
}

func TestLookingGlassRoot(t *testing.T) {
	s, _ := lgFixture(t)
	root := get(t, s, "").(map[string]any)
	want := map[string]any{
		"summary": map[string]any{
			"BGP_established_peers": 1.0,
			"route_counts":          map[string]any{"local_routes_count": 1.0, "received_routes_count": 1.0},
			"vpn_instances_count":   2.0,
			"warnings_and_errors":   2.0,
			"start_time":            "2026-11-24 16:00:00",
			"version":               version.Version,
		},
		"config": href("/config"), "bgp": href("/bgp"), "vpns": href("/vpns"), "logs": href("/logs"),
	}
	if !reflect.DeepEqual(root, want) {
		t.Errorf("root:\n got %v\nwant %v", root, want)
	}
	if r := do(t, s, http.MethodGet, "/looking-glass", ""); !regexp.MustCompile(`^\{"summary": \{"BGP_established_peers": 1, "route_counts"`).MatchString(r.body) {
		t.Errorf("root key order: %s", r.body)
	}
	if got := get(t, s, "/summary/route_counts/local_routes_count"); got != 1.0 {
		t.Errorf("local_routes_count = %v", got)
	}
	check(t, "config/BGP", get(t, s, "/config/BGP"), `{"my_as": 64512, "peers": ["127.0.0.2"]}`)
	if got := get(t, s, "/config/BGP/my_as"); got != 64512.0 {
		t.Errorf("my_as = %v", got)
	}
	logs := get(t, s, "/logs").([]any)
	if len(logs) != 2 || logs[0].(map[string]any)["message"] != "VRF 'error'" || logs[1].(map[string]any)["level"] != "WARNING" {
		t.Errorf("logs = %v", logs)
	}
	check(t, "vpns", get(t, s, "/vpns"), `{"instances": {"href": "`+lgBase+`/vpns/instances"}}`)
}

func TestLookingGlassBGP(t *testing.T) {
	s, _ := lgFixture(t)
	check(t, "bgp", get(t, s, "/bgp"), `{"peers": {"href": "`+lgBase+`/bgp/peers"}, "routes": {"href": "`+lgBase+`/bgp/routes"},
		"workers": {"href": "`+lgBase+`/bgp/workers"}, "route_counts": {"local_routes_count": 1, "received_routes_count": 1},
		"adv_routes": {"href": "`+lgBase+`/bgp/adv_routes"}}`)

	vrfRoute := `{"10.0.0.1/32 label 18 next-hop 127.0.0.1 rd 127.0.0.1:0": {"afi-safi": "ipv4/mpls-vpn",
		"attributes": {"extended-community": "[ target:64512:77 encap:MPLS ]", "local-preference": "100"},
		"next_hop": "127.0.0.1", "source": {"id": "VRF-1", "href": "` + lgBase + `/bgp/workers/VRF-1"},
		"route_targets": ["target:64512:77"]}}`
	peerRoute := `{"10.0.0.2/32 label 20 (321) next-hop 127.0.0.2 rd 127.0.0.2:1": {"afi-safi": "ipv4/mpls-vpn",
		"attributes": {"extended-community": "[ target:64512:77 encap:MPLS ]", "local-preference": "100"},
		"next_hop": "127.0.0.2", "source": {"id": "BGP-127.0.0.2", "href": "` + lgBase + `/bgp/workers/BGP-127.0.0.2"},
		"route_targets": ["target:64512:77"]}}`
	rtcRoute := func(rt string) string {
		return `{"rtc 64512:target:` + rt + `": {"afi-safi": "ipv4/rtc", "attributes": {}, "next_hop": "127.0.0.1",
			"source": {"id": "BGPManager", "href": "` + lgBase + `/bgp/workers/BGPManager"}}}`
	}
	check(t, "routes", get(t, s, "/bgp/routes"), `{"ipv4/mpls-vpn,*": [`+peerRoute+`, `+vrfRoute+`], "l2vpn/evpn,*": [],
		"ipv4/rtc,*": [`+rtcRoute("64512:77")+`, `+rtcRoute("64512:88")+`], "ipv4/flow-vpn,*": []}`)
	if r := do(t, s, http.MethodGet, "/looking-glass/bgp/routes", ""); !regexp.MustCompile(`^\{"ipv4/mpls-vpn,\*": \[.*\], "l2vpn/evpn,\*": \[\], "ipv4/rtc,\*": \[.*\], "ipv4/flow-vpn,\*": \[\]\}$`).MatchString(r.body) {
		t.Errorf("routes key order: %s", r.body)
	}
	check(t, "adv_routes", get(t, s, "/bgp/adv_routes"), `[`+rtcRoute("64512:77")+`, `+rtcRoute("64512:88")+`]`)
	check(t, "route_counts", get(t, s, "/bgp/route_counts"), `{"local_routes_count": 1, "received_routes_count": 1}`)

	check(t, "workers", get(t, s, "/bgp/workers"), `[{"id": "VRF-1", "href": "`+lgBase+`/bgp/workers/VRF-1"},
		{"id": "EVI-2", "href": "`+lgBase+`/bgp/workers/EVI-2"}, {"id": "BGP-127.0.0.2", "href": "`+lgBase+`/bgp/workers/BGP-127.0.0.2"}]`)
	check(t, "generic worker", get(t, s, "/bgp/workers/VRF-1"), `{"name": "VRF-1",
		"internals": {"subscriptions": ["match:ipv4/mpls-vpn,target:64512:77"]},
		"adv_routes": {"href": "`+lgBase+`/bgp/workers/VRF-1/adv_routes"}, "logs": {"href": "`+lgBase+`/bgp/workers/VRF-1/logs"}}`)
	check(t, "worker routes", get(t, s, "/bgp/workers/VRF-1/adv_routes"), `[`+vrfRoute+`]`)
	logs := get(t, s, "/bgp/workers/VRF-1/logs").([]any)
	if len(logs) != 1 || logs[0].(map[string]any)["message"] != "VRF 'error'" || logs[0].(map[string]any)["level"] != "ERROR" {
		t.Errorf("worker logs = %v", logs)
	}
	check(t, "worker with its own looking glass", get(t, s, "/bgp/workers/EVI-2"), `{"name": "EVI-2", "own": true}`)
	check(t, "engine RTC source", get(t, s, "/bgp/workers/BGPManager/internals"), `{"subscriptions": []}`)

	check(t, "peers", get(t, s, "/bgp/peers"), `[{"id": "127.0.0.2", "state": "Established", "href": "`+lgBase+`/bgp/peers/127.0.0.2"},
		{"id": "127.0.0.3", "state": "Active", "href": "`+lgBase+`/bgp/peers/127.0.0.3"}]`)
	peerObj := func(prefix string) string {
		return `{"peeringAddresses": {"peer_address": "127.0.0.2", "local_address": "127.0.0.1"},
		"as_info": {"local": 64512, "peer": 64512}, "rtc": {"active": true, "enabled": true},
		"active_families": ["(ipv4, mpls-vpn)", "(ipv4, rtc)"],
		"protocol": {"state": "Established", "previous_state": "(OpenConfirm)", "hold_time": 180, "last_transition_time": "2026-11-24 16:50:31"},
		"name": "BGP-127.0.0.2", "internals": {"event queue length": 0, "subscriptions": ["match:ipv4/rtc,*"]},
		"adv_routes": {"href": "` + lgBase + prefix + `/adv_routes"}, "logs": {"href": "` + lgBase + prefix + `/logs"},
		"graceful_restart": {"enabled": true, "negotiated": true, "peer_restart_time": 120, "peer_families": ["(ipv4, mpls-vpn)"],
			"stale_routes": 3, "stale_routes_withdrawn": 2, "end_of_rib_received": ["(ipv4, rtc)"], "synced": false},
		"max_prefixes": {"limit": 1000, "routes": 1, "exceeded": 1}, "tcp_md5": {"configured": true}}`
	}
	check(t, "peer", get(t, s, "/bgp/peers/127.0.0.2"), peerObj("/bgp/peers/127.0.0.2"))
	check(t, "peer as a worker", get(t, s, "/bgp/workers/BGP-127.0.0.2"), peerObj("/bgp/workers/BGP-127.0.0.2"))
	check(t, "peer routes", get(t, s, "/bgp/peers/127.0.0.2/adv_routes"), `[`+peerRoute+`]`)
	check(t, "idle peer", get(t, s, "/bgp/peers/127.0.0.3"), `{"peeringAddresses": {"peer_address": "127.0.0.3", "local_address": "127.0.0.1"},
		"as_info": {"local": 64512, "peer": 0}, "rtc": {"active": false, "enabled": true}, "active_families": [],
		"protocol": {"state": "Active", "previous_state": "(Connect)", "hold_time": 180, "last_transition_time": null},
		"name": "BGP-127.0.0.3", "internals": {"event queue length": 0, "subscriptions": []},
		"adv_routes": {"href": "`+lgBase+`/bgp/peers/127.0.0.3/adv_routes"}, "logs": {"href": "`+lgBase+`/bgp/peers/127.0.0.3/logs"},
		"graceful_restart": {"enabled": false, "negotiated": false, "peer_restart_time": 0, "peer_families": [],
			"stale_routes": 0, "stale_routes_withdrawn": 0, "end_of_rib_received": [], "synced": false},
		"max_prefixes": {"limit": null, "routes": 0, "exceeded": 0}, "tcp_md5": {"configured": false}}`)
	check(t, "idle peer routes", get(t, s, "/bgp/peers/127.0.0.3/adv_routes"), `[]`)
}

func TestLookingGlassNotFound(t *testing.T) {
	s, _ := lgFixture(t)
	for path, want := range map[string]string{
		"/nope":                 "No such looking glass object: 'nope' at " + lgBase + "/nope",
		"/bgp/nope":             "No such looking glass object: 'nope' at " + lgBase + "/bgp/nope",
		"/config/BGP/nope":      "No such looking glass object: 'nope' at " + lgBase + "/config",
		"/summary/x":            "No such looking glass object: 'x' at " + lgBase + "/summary",
		"/bgp/workers/VRF-9":    "No such looking glass object: VRF-9 at " + lgBase + "/bgp/workers",
		"/bgp/peers/1.2.3.4":    "No such looking glass object: 1.2.3.4 at " + lgBase + "/bgp/peers",
		"/bgp/routes/ipv4":      "No such looking glass object: 'ipv4' at " + lgBase + "/bgp/routes",
		"/vpns/instances/nope":  "No such looking glass object: nope at " + lgBase + "/vpns/instances",
		"/bgp/workers/VRF-1/no": "No such looking glass object: 'no' at " + lgBase + "/bgp/workers/VRF-1/no",
	} {
		r := do(t, s, http.MethodGet, "/looking-glass"+path, "")
		if r.status != http.StatusNotFound {
			t.Errorf("%s: status %d", path, r.status)
			continue
		}
		if msg := errorMessage(t, r); msg != want {
			t.Errorf("%s:\n got %q\nwant %q", path, msg, want)
		}
	}
}

// TestLookingGlassHostHeader checks that hrefs follow the Host header.
func TestLookingGlassHostHeader(t *testing.T) {
	s, _ := lgFixture(t)
	req, _ := http.NewRequest(http.MethodGet, "/looking-glass/bgp/workers", nil)
	req.Host = "[::1]:9999"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	items := decode(t, rec.Body.String()).([]any)
	if got := items[0].(map[string]any)["href"]; got != "http://[::1]:9999/looking-glass/bgp/workers/VRF-1" {
		t.Errorf("href = %v", got)
	}
}

// failingEngine is an engine that never answers.
type failingEngine struct{}

func (failingEngine) Inspect(context.Context, func(engine.View)) error {
	return errors.New("context deadline exceeded")
}

func TestLookingGlassEngineUnavailable(t *testing.T) {
	s := newTestServer(t, Config{Engine: failingEngine{}})
	r := do(t, s, http.MethodGet, "/looking-glass/summary", "")
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status %d", r.status)
	}
	if msg := errorMessage(t, r); msg != "looking glass error: route engine unavailable: context deadline exceeded" {
		t.Errorf("message %q", msg)
	}
	if r := do(t, s, http.MethodGet, "/looking-glass/config", ""); r.status != http.StatusOK || r.body != "{}" {
		t.Errorf("config without engine: %d %s", r.status, r.body)
	}
}

// TestLookingGlassEmpty checks a server with no sources at all.
func TestLookingGlassEmpty(t *testing.T) {
	s := newTestServer(t, Config{})
	summary := get(t, s, "/summary").(map[string]any)
	if summary["BGP_established_peers"] != 0.0 || summary["vpn_instances_count"] != 0.0 || summary["warnings_and_errors"] != 0.0 {
		t.Errorf("summary = %v", summary)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(summary["start_time"].(string)) {
		t.Errorf("start_time = %v", summary["start_time"])
	}
	check(t, "routes", get(t, s, "/bgp/routes"), `{"ipv4/mpls-vpn,*": [], "l2vpn/evpn,*": [], "ipv4/rtc,*": [], "ipv4/flow-vpn,*": []}`)
	check(t, "peers", get(t, s, "/bgp/peers"), `[]`)
	check(t, "workers", get(t, s, "/bgp/workers"), `[]`)
	check(t, "vpns", get(t, s, "/vpns"), `{}`)
	check(t, "logs", get(t, s, "/logs"), `[]`)
}

func TestWorkerOrder(t *testing.T) {
	names := []string{"BGP-10.0.0.2", "VRF-10", "EVI-2", "VRF-1", "BGP-10.0.0.1", "VRF-3", "odd"}
	slices.SortFunc(names, compareWorkerNames)
	if got := strings.Join(names, " "); got != "VRF-1 EVI-2 VRF-3 VRF-10 BGP-10.0.0.1 BGP-10.0.0.2 odd" {
		t.Errorf("order: %s", got)
	}
}
