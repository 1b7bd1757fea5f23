package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/vpn"
)

// stack is the API on top of the real VPN manager, engine and dummy drivers.
type stack struct {
	t   testing.TB
	srv *Server
	eng *engine.Engine
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	local := netip.MustParseAddr("192.0.2.1")
	eng := engine.New(nil, &engine.RTCConfig{AS: 64512, NextHop: local})
	go eng.Run(ctx)
	mgr := vpn.NewManager(vpn.Config{Engine: eng, BGPAddress: local, Drivers: []dataplane.Driver{
		dummy.New(dataplane.IPVPN, local, nil), dummy.New(dataplane.EVPN, local, nil),
	}})
	t.Cleanup(func() { mgr.Stop(context.Background()); cancel() })
	srv, err := New(Config{VPN: mgr, Engine: eng, VPNs: mgr, InstanceCount: mgr.InstanceCount})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, srv: srv, eng: eng}
}

// state renders what the looking glass shows of the VPN state: instances
// with their ports, routes and dataplane, label allocations and every route
// of the engine.
func (s *stack) state() string {
	s.t.Helper()
	if err := s.eng.Sync(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]any{}
	for _, p := range []string{"/looking-glass/bgp/routes", "/looking-glass/vpns/dataplane/ids", "/looking-glass/vpns/instances", "/looking-glass/summary/vpn_instances_count"} {
		out[p] = decode(s.t, do(s.t, s.srv, "GET", p, "").body)
	}
	var insts []map[string]any
	_ = json.Unmarshal([]byte(do(s.t, s.srv, "GET", "/looking-glass/vpns/instances", "").body), &insts)
	for _, inst := range insts {
		id := inst["id"].(string)
		for _, sub := range []string{"ports", "route_targets", "adv_routes", "dataplane", "description"} {
			p := "/looking-glass/vpns/instances/" + id + "/" + sub
			out[p] = decode(s.t, do(s.t, s.srv, "GET", p, "").body)
		}
	}
	b, _ := json.MarshalIndent(out, "", " ")
	return string(b)
}

func (s *stack) ok(path, body string) {
	s.t.Helper()
	if r := do(s.t, s.srv, "POST", path, body); r.status != http.StatusOK {
		s.t.Fatalf("POST %s %s: %d %s", path, body, r.status, r.body)
	}
}

// TestBadInputsLeaveStateUnchanged replays every API validation case, and
// the rules only the VPN manager can check, against the real stack: each
// answer is a 400 with a JSON error message and the looking glass shows the
// same state before and after.
func TestBadInputsLeaveStateUnchanged(t *testing.T) {
	s := newStack(t)
	// Some state to keep: an E-VPN and an IP VPN port, an instance with a forced VNI.
	s.ok("/attach_localport", edit(evpnBase, "vpn_instance_id", `"e1"`, "ip_address", `"10.0.0.1"`))
	s.ok("/attach_localport", ipvpnBase)
	s.ok("/attach_localport", edit(evpnBase, "vpn_instance_id", `"e5000"`, "vni", "5000", "mac_address", `"52:54:00:00:50:00"`, "local_port", `"tap50"`))
	before := s.state()

	managerCases := []badCase{
		{"same MAC on another port", edit(ipvpnBase, "local_port", `"tap2"`, "ip_address", `"10.0.0.2"`), ""},
		{"same IP bound to another MAC", edit(ipvpnBase, "mac_address", `"52:54:00:00:00:02"`, "local_port", `"tap2"`), ""},
		{"existing instance of another type", edit(evpnBase, "vpn_instance_id", `"v1"`), ""},
		{"unsupported direction", edit(ipvpnBase, "vpn_instance_id", `"v2"`, "direction", `"to-port"`), ""},
		{"VNI already used", edit(evpnBase, "vpn_instance_id", `"e2"`, "vni", "5000"), ""},
		{"E-VPN route for a prefix", edit(evpnBase, "vpn_instance_id", `"e3"`, "ip_address", `"10.0.0.0/24"`, "advertise_subnet", "true"), ""},
	}
	detachManagerCases := []badCase{
		{"unknown instance", edit(ipvpnBase, "vpn_instance_id", `"nope"`), ""},
		{"unknown endpoint", edit(ipvpnBase, "ip_address", `"10.0.0.9"`), ""},
		{"IP bound to another MAC", edit(ipvpnBase, "mac_address", `"52:54:00:00:00:09"`), ""},
		{"wrong type", edit(evpnBase, "vpn_instance_id", `"v1"`), ""},
	}
	check := func(path string, cases []badCase) {
		for _, c := range cases {
			r := do(t, s.srv, "POST", path, c.body)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %s: status %d (%s), want 400", path, c.name, r.status, r.body)
				continue
			}
			msg := errorMessage(t, r)
			if msg == "" || (c.want != "" && msg != c.want) {
				t.Errorf("%s %s: message %q, want %q", path, c.name, msg, c.want)
			}
			if after := s.state(); after != before {
				t.Fatalf("%s %s changed the state:\nbefore %s\nafter %s", path, c.name, before, after)
			}
		}
	}
	check("/attach_localport", attachBadCases)
	check("/attach_localport", managerCases)
	check("/detach_localport", detachBadCases)
	check("/detach_localport", detachManagerCases)
}

// TestReferenceExamplesOnRealStack replays the reference's client examples
// (spec §3.9) against the real manager: each is accepted and creates the
// instance it names.
func TestReferenceExamplesOnRealStack(t *testing.T) {
	s := newStack(t)
	for _, ex := range referenceExamples {
		s.ok("/attach_localport", ex.body)
	}
	var insts []map[string]any
	_ = json.Unmarshal([]byte(do(t, s.srv, "GET", "/looking-glass/vpns/instances", "").body), &insts)
	if len(insts) != len(referenceExamples) {
		t.Fatalf("%d instances after %d examples: %v", len(insts), len(referenceExamples), insts)
	}
}

const neutronIPVPNExample = `{
  "vpn_type": "ipvpn",
  "vpn_instance_id": "ipvpn_<network-uuid>",
  "mac_address": "fa:16:3e:11:22:33",
  "ip_address": "10.0.0.5",
  "gateway_ip": "10.0.0.1",
  "local_port": {
    "linuxif": "patch2tun:3",
    "ovs": {"plugged": true, "port_number": 5, "vlan": 3}
  },
  "fallback": {"dst_mac": "fa:16:3e:aa:bb:cc", "src_mac": "00:00:5e:2a:10:00",
               "ovs_port_number": 6},
  "import_rt": ["64512:100"], "export_rt": ["64512:100"],
  "local_pref": 200,
  "description": {"port": "<port-uuid>"},
  "instance_description": "BGPVPN ipvpn associations for net <uuid> (10.0.0.1)"
}`

// referenceExamples are the client requests of spec §3.9, each given its
// own instance (the spec elides common keys of some: they come from the
// Neutron IP VPN example).
var referenceExamples = []struct{ name, body string }{
	{"neutron ipvpn", neutronIPVPNExample},
	{"route leaking", edit(neutronIPVPNExample, "vpn_instance_id", `"ipvpn_leak"`,
		"readvertise", `{"from_rt": ["64512:200"], "to_rt": ["64512:300"]}`)},
	{"neutron evpn", `{ "vpn_type": "evpn", "vpn_instance_id": "evpn_<network-uuid>",
  "mac_address": "fa:16:3e:11:22:33", "ip_address": "10.0.0.5",
  "gateway_ip": "10.0.0.1",
  "local_port": {"linuxif": "patch2tun:3", "vlan": 3},
  "vni": 1012, "import_rt": ["64512:200"], "export_rt": ["64512:200"],
  "description": {"port": "<port-uuid>"} }`},
	{"linuxbridge evpn", `{"vpn_type": "evpn", "vpn_instance_id": "evpn_net", "mac_address": "fa:16:3e:11:22:34",
		"ip_address": "10.0.0.6", "local_port": {"linuxif": "tap456abc-12"}, "linuxbr": "brq456abc-12",
		"import_rt": ["64512:200"], "export_rt": ["64512:200"]}`},
	{"sfc", edit(neutronIPVPNExample, "vpn_instance_id", `"ipvpn_sfc"`, "lb_consistent_hash_order", "2", "attract_traffic",
		`{"redirect_rts": ["64512:97"], "classifier": {"destinationPort": "80", "protocol": "tcp", "sourcePrefix": "10.0.0.0/24"},
		  "to_rt": ["64512:96"], "static_destination_prefixes": ["10.99.0.0/16"]}`)},
	{"rest-attach ipvpn", `{"import_rt": ["64512:512"], "export_rt": ["64512:512"],
 "local_port": {"linuxif": "tap99"}, "vpn_instance_id": "ipvpn-bagpipe-test",
 "vpn_type": "ipvpn", "gateway_ip": "10.9.0.254",
 "mac_address": "52:54:00:99:99:22", "ip_address": "10.9.0.1/24",
 "advertise_subnet": false,
 "readvertise": {"from_rt": ["64512:1"], "to_rt": ["64512:2"]},
 "attract_traffic": {"redirect_rts": ["64512:3"],
                     "classifier": {"destinationPort": "80", "protocol": "tcp"},
                     "to": ["64512:4"], "static_destination_prefixes": ["1.2.3.0/24"]},
 "lb_consistent_hash_order": 0, "vni": 0, "local_pref": 300, "direction": "both"}`},
	{"rest-attach evpn", `{"import_rt": ["64512:513"], "export_rt": ["64512:513"],
 "local_port": {"linuxif": "tap99"}, "vpn_instance_id": "evpn-bagpipe-test",
 "vpn_type": "evpn", "gateway_ip": "10.9.0.254", "mac_address": "52:54:00:99:99:23",
 "ip_address": "10.9.0.2/24", "advertise_subnet": false, "readvertise": null,
 "attract_traffic": {}, "lb_consistent_hash_order": 0, "vni": 0, "direction": "both"}`},
}

// TestPortAssociationNeedsDirectionSupport: the port association prefix
// route of §3.9 is to-port only, which the dummy driver (like the
// reference's) refuses with the reference's message.
func TestPortAssociationNeedsDirectionSupport(t *testing.T) {
	s := newStack(t)
	body := edit(neutronIPVPNExample,
		"vpn_instance_id", `"ipvpn_portassoc_<assoc-uuid>_prefix_20_1_0_0_24"`,
		"ip_address", `"20.1.0.0/24"`, "advertise_subnet", "true",
		"direction", `"to-port"`, "local_pref", "300")
	r := do(t, s.srv, "POST", "/attach_localport", body)
	if r.status != http.StatusBadRequest || errorMessage(t, r) != "Unsupported direction: to-port" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}
