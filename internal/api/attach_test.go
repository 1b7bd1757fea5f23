package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

const (
	evpnBase = `{"vpn_type": "evpn", "vpn_instance_id": "e1", "mac_address": "52:54:00:00:00:01",
		"local_port": "tap1", "import_rt": "64512:1", "export_rt": "64512:1"}`
	ipvpnBase = `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "52:54:00:00:00:01",
		"local_port": "tap1", "import_rt": "64512:1", "export_rt": "64512:1",
		"ip_address": "10.0.0.1", "gateway_ip": "10.0.0.254"}`
	readv = `{"from_rt": ["64512:5"], "to_rt": ["64512:6"]}`
)

// classifierBody is an ipvpn attach with readvertise and attract_traffic
// using the given classifier.
func classifierBody(classifier string) string {
	return edit(ipvpnBase, "readvertise", readv, "attract_traffic", `{"redirect_rts": ["64512:7"], "classifier": `+classifier+`}`)
}

// edit returns base with keys set to raw JSON values ("-" deletes the key).
func edit(base string, kv ...string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		panic(err)
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type badCase struct {
	name string
	body string
	want string // exact error message
}

// attachBadCases are attach requests the reference rejects with a 400
// (messages kept) or a 500 (now a 400 naming the field).
var attachBadCases = []badCase{
	{"empty body", "", "No local port details received"},
	{"not JSON", "xx", "No local port details received"},
	{"trailing data", "{} x", "No local port details received"},
	{"list body", "[]", "the request body must be a JSON object, not a list"},
	{"string body", `"s"`, "the request body must be a JSON object, not a string"},
	{"no vpn_type", "{}", "missing instance_type"},
	{"unknown vpn_type", `{"vpn_type": "foo"}`, "unknown vpn_type: foo"},
	{"null vpn_type", `{"vpn_type": null}`, "unknown vpn_type: null"},
	{"numeric vpn_type", `{"vpn_type": 1}`, "unknown vpn_type: 1"},
	{"vpn_type checked first", `{"vpn_type": "x", "vpn_instance_id": "v"}`, "unknown vpn_type: x"},
	{"no vpn_instance_id", edit(evpnBase, "vpn_instance_id", "-"), "Missing parameter: 'vpn_instance_id'"},
	{"no mac_address", edit(evpnBase, "mac_address", "-"), "Missing parameter: 'mac_address'"},
	{"no local_port", edit(evpnBase, "local_port", "-"), "Missing parameter: 'local_port'"},
	{"no import_rt", edit(evpnBase, "import_rt", "-"), "Missing parameter: 'import_rt'"},
	{"no export_rt", edit(evpnBase, "export_rt", "-"), "Missing parameter: 'export_rt'"},
	{"ipvpn without ip_address", edit(ipvpnBase, "ip_address", "-"), "Missing parameter: 'ip_address'"},
	{"presence before formats", `{"vpn_type": "evpn", "vpn_instance_id": null}`, "Missing parameter: 'mac_address'"},
	{"mac before local_port presence", `{"vpn_type": "evpn", "vpn_instance_id": "x", "mac_address": "zz"}`, "Missing parameter: 'local_port'"},
	{"import_rt before export_rt", edit(evpnBase, "import_rt", "-", "export_rt", "-"), "Missing parameter: 'import_rt'"},
	{"local_port keys before mac", edit(evpnBase, "mac_address", `"zz"`, "local_port", `{}`), "Mandatory key is missing in local_port parameter (linuxif, or evpn)"},
	{"local_port list", edit(evpnBase, "local_port", `["a"]`), "Mandatory key is missing in local_port parameter (linuxif, or evpn)"},
	{"local_port number", edit(evpnBase, "local_port", `5`), "'local_port' must be a string or an object, not a number"},
	{"local_port null", edit(evpnBase, "local_port", `null`), "'local_port' must be a string or an object, not null"},
	{"RT shape before local_port", edit(evpnBase, "import_rt", `null`, "local_port", `{}`), "import_rt: must be a list of route targets or a comma-separated string, not null"},
	{"bad mac", edit(evpnBase, "mac_address", `"zz"`), "MAC address zz is not valid"},
	{"empty mac", edit(evpnBase, "mac_address", `""`), "MAC address  is not valid"},
	{"seven-group mac", edit(evpnBase, "mac_address", `"52:54:00:00:00:05:06"`), "MAC address 52:54:00:00:00:05:06 is not valid"},
	{"numeric mac", edit(evpnBase, "mac_address", `5`), "MAC address 5 is not valid"},
	{"null mac", edit(evpnBase, "mac_address", `null`), "MAC address null is not valid"},
	{"mac before ip", edit(evpnBase, "mac_address", `"zz"`, "ip_address", `"zz"`), "MAC address zz is not valid"},
	{"bad ip", edit(evpnBase, "ip_address", `"zz"`), "IP address zz is not valid"},
	{"empty ip", edit(evpnBase, "ip_address", `""`), "IP address  is not valid"},
	{"ip length too long", edit(evpnBase, "ip_address", `"1.2.3.4/33"`), "IP address 1.2.3.4/33 is not valid"},
	{"ip without length", edit(evpnBase, "ip_address", `"1.2.3.4/"`), "IP address 1.2.3.4/ is not valid"},
	{"numeric ip", edit(evpnBase, "ip_address", `5`), "IP address 5 is not valid"},
	{"ipvpn null ip", edit(ipvpnBase, "ip_address", `null`), "Missing parameter: 'ip_address'"},
	{"ipvpn IPv6", edit(ipvpnBase, "ip_address", `"2001:db8::1"`), "IP address 2001:db8::1 is not valid: ipvpn only supports IPv4"},
	{"ip before advertise_subnet", edit(evpnBase, "ip_address", `"zz"`, "advertise_subnet", `5`), "IP address zz is not valid"},
	{"null advertise_subnet", edit(evpnBase, "advertise_subnet", `null`), "'advertise_subnet' must be a boolean"},
	{"string advertise_subnet", edit(evpnBase, "advertise_subnet", `"true"`), "'advertise_subnet' must be a boolean"},
	{"bad direction", edit(evpnBase, "direction", `"x"`), "direction should be one of: both, to-port, from-port"},
	{"numeric direction", edit(evpnBase, "direction", `5`), "direction should be one of: both, to-port, from-port"},
	{"direction before gateway", edit(ipvpnBase, "direction", `"x"`, "gateway_ip", "-"), "direction should be one of: both, to-port, from-port"},
	{"ipvpn without gateway_ip", edit(ipvpnBase, "gateway_ip", "-"), "Missing parameter: 'gateway_ip'"},
	{"bad gateway_ip", edit(evpnBase, "gateway_ip", `"zz"`), "gateway_ip: IP address zz is not valid"},
	{"numeric gateway_ip", edit(evpnBase, "gateway_ip", `5`), "gateway_ip: IP address 5 is not valid"},
	{"ipvpn IPv6 gateway_ip", edit(ipvpnBase, "gateway_ip", `"::1"`), "gateway_ip: IP address ::1 is not valid"},
	{"null vpn_instance_id", edit(evpnBase, "vpn_instance_id", `null`), "'vpn_instance_id' must be a non-empty string, not null"},
	{"empty vpn_instance_id", edit(evpnBase, "vpn_instance_id", `""`), "'vpn_instance_id' must be a non-empty string, not "},
	{"numeric vpn_instance_id", edit(evpnBase, "vpn_instance_id", `5`), "'vpn_instance_id' must be a non-empty string, not 5"},
	{"malformed import_rt", edit(evpnBase, "import_rt", `"x"`), `import_rt: malformed route target "x": expected ASN:NN`},
	{"malformed export_rt in list", edit(evpnBase, "export_rt", `["64512:1", "64512:x"]`), `export_rt: malformed route target "64512:x": local part must be an integer 0..4294967295`},
	{"non-string RT", edit(evpnBase, "export_rt", `["64512:1", 5]`), `export_rt: route targets must be strings like "64512:1", not 5`},
	{"object RT list", edit(evpnBase, "import_rt", `{"a": 1}`), "import_rt: must be a list of route targets or a comma-separated string, not an object"},
	{"4-byte AS with a large local part", edit(evpnBase, "import_rt", `"4200000000:70000"`), "import_rt: route target 4200000000:70000: with a 4-byte AS the local part must be at most 65535"},
	{"numeric linuxif", edit(evpnBase, "local_port", `{"linuxif": 5}`), "local_port: 'linuxif' must be a string, not a number"},
	{"bad vlan", edit(evpnBase, "local_port", `{"linuxif": "t", "vlan": "x"}`), "local_port: 'vlan' must be an integer, not x"},
	{"ovs not an object", edit(ipvpnBase, "local_port", `{"linuxif": "t", "ovs": 1}`), "local_port: 'ovs' must be an object, not a number"},
	{"bad ovs plugged", edit(ipvpnBase, "local_port", `{"linuxif": "t", "ovs": {"plugged": "yes"}}`), "local_port: ovs: 'plugged' must be a boolean"},
	{"bad ovs port_number", edit(ipvpnBase, "local_port", `{"linuxif": "t", "ovs": {"port_number": 1.5}}`), "local_port: ovs: 'port_number' must be an integer, not 1.5"},
	{"evpn port on evpn", edit(evpnBase, "local_port", `{"evpn": {"id": "e0"}}`), "local_port: 'evpn' can only be given to attach an E-VPN to an ipvpn"},
	{"linuxif and evpn", edit(ipvpnBase, "local_port", `{"linuxif": "t", "evpn": {"id": "e1"}}`), "local_port: 'linuxif' and 'evpn' cannot both be given"},
	{"evpn port without id", edit(ipvpnBase, "local_port", `{"evpn": {}}`), "local_port: evpn: missing 'id' (the vpn_instance_id of the E-VPN)"},
	{"evpn port not an object", edit(ipvpnBase, "local_port", `{"evpn": "e1"}`), "local_port: 'evpn' must be an object, not a string"},
	{"readvertise not an object", edit(ipvpnBase, "readvertise", `"x"`), "'readvertise' must be an object, not a string"},
	{"readvertise without to_rt", edit(ipvpnBase, "readvertise", `{"from_rt": ["64512:5"]}`), "'readvertise' specified with no 'to_rt'"},
	{"readvertise without from_rt", edit(ipvpnBase, "readvertise", `{"to_rt": ["64512:5"]}`), "'readvertise' specified with no 'from_rt'"},
	{"malformed readvertise RT", edit(ipvpnBase, "readvertise", `{"from_rt": "bad", "to_rt": "64512:6"}`), `readvertise/from_rt: malformed route target "bad": expected ASN:NN`},
	{"attract_traffic not an object", edit(ipvpnBase, "attract_traffic", `[]`), "'attract_traffic' must be an object, not a list"},
	{"attract_traffic without redirect_rts", edit(ipvpnBase, "attract_traffic", `{"x": 1}`), "'attract_traffic' specified with no 'redirect_rts'"},
	{"attract_traffic with empty redirect_rts", edit(ipvpnBase, "attract_traffic", `{"redirect_rts": []}`), "attract_traffic/redirect_rts: at least one route target is required"},
	{"attract_traffic without classifier", edit(ipvpnBase, "readvertise", readv, "attract_traffic", `{"redirect_rts": ["64512:7"]}`), "'attract_traffic' specified with no 'classifier'"},
	{"attract_traffic classifier not an object", edit(ipvpnBase, "readvertise", readv, "attract_traffic", `{"redirect_rts": ["64512:7"], "classifier": "tcp"}`), "attract_traffic/classifier: must be an object, not a string"},
	{"attract_traffic to_rt without static prefixes", edit(ipvpnBase, "attract_traffic", `{"redirect_rts": ["64512:7"], "to_rt": ["64512:6"], "classifier": {}}`), "'attract_traffic/to_rt' specified without 'static_destination_prefixes'"},
	{"attract_traffic to_rt differs from readvertise", edit(ipvpnBase, "readvertise", readv, "attract_traffic", `{"redirect_rts": ["64512:7"], "to_rt": ["64512:8"], "static_destination_prefixes": [], "classifier": {}}`), "if both are set, then 'attract_traffic/to_rt' and 'readvertise/to_rt' have to be equal"},
	{"attract_traffic with two to RTs", edit(ipvpnBase, "readvertise", `{"from_rt": [], "to_rt": ["64512:6", "64512:8"]}`, "attract_traffic", `{"redirect_rts": ["64512:7"], "classifier": {}}`), "attract_traffic requires exactly one RT to be provided in 'readvertise/to_rt' and 'attract_traffic/to_rt'"},
	{"bad static prefix", edit(ipvpnBase, "readvertise", readv, "attract_traffic", `{"redirect_rts": ["64512:7"], "classifier": {}, "static_destination_prefixes": ["zz"]}`), "attract_traffic/static_destination_prefixes: zz is not a valid IPv4 prefix"},
	{"classifier unknown key", classifierBody(`{"srcPort": "80"}`), "attract_traffic/classifier/srcPort: unknown key (expected one of sourcePrefix, destinationPrefix, sourcePort, destinationPort, protocol)"},
	{"classifier bad sourcePrefix", classifierBody(`{"sourcePrefix": "zz"}`), "attract_traffic/classifier/sourcePrefix: zz is not a valid IPv4 prefix"},
	{"classifier bad prefix length", classifierBody(`{"sourcePrefix": "10.0.0.0/33"}`), "attract_traffic/classifier/sourcePrefix: 10.0.0.0/33 is not a valid IPv4 prefix"},
	{"classifier IPv6 destinationPrefix", classifierBody(`{"destinationPrefix": "2001:db8::/64"}`), "attract_traffic/classifier/destinationPrefix: 2001:db8::/64 is not a valid IPv4 prefix"},
	{"classifier numeric destinationPrefix", classifierBody(`{"destinationPrefix": 5}`), "attract_traffic/classifier/destinationPrefix: 5 is not a valid IPv4 prefix"},
	{"classifier port name", classifierBody(`{"destinationPort": "http"}`), "attract_traffic/classifier/destinationPort: http is not a port (a port N or a range min:max, 0..65535)"},
	{"classifier port too large", classifierBody(`{"sourcePort": "70000"}`), "attract_traffic/classifier/sourcePort: 70000 is not a port (a port N or a range min:max, 0..65535)"},
	{"classifier negative port", classifierBody(`{"sourcePort": -1}`), "attract_traffic/classifier/sourcePort: -1 is not a port (a port N or a range min:max, 0..65535)"},
	{"classifier bad range end", classifierBody(`{"destinationPort": "80:x"}`), "attract_traffic/classifier/destinationPort: 80:x is not a port range (a port N or a range min:max, 0..65535)"},
	{"classifier three-part range", classifierBody(`{"destinationPort": "1:2:3"}`), "attract_traffic/classifier/destinationPort: 1:2:3 is not a port range (a port N or a range min:max, 0..65535)"},
	{"classifier empty range", classifierBody(`{"destinationPort": "2000:1000"}`), "attract_traffic/classifier/destinationPort: 2000:1000 is an empty range (a port N or a range min:max, 0..65535)"},
	{"classifier port 0", classifierBody(`{"destinationPort": "0"}`), "attract_traffic/classifier/destinationPort: 0 cannot be matched (port 0); leave the key out to match any port (a port N or a range min:max, 0..65535)"},
	{"classifier port list", classifierBody(`{"destinationPort": [80]}`), "attract_traffic/classifier/destinationPort: [80] is not a port (a port N or a range min:max, 0..65535)"},
	{"classifier unknown protocol", classifierBody(`{"protocol": "foo"}`), "attract_traffic/classifier/protocol: foo is not a protocol (a name such as tcp, udp, icmp, sctp, or a number 1..255)"},
	{"classifier protocol 0", classifierBody(`{"protocol": 0}`), "attract_traffic/classifier/protocol: 0 is not a protocol (a name such as tcp, udp, icmp, sctp, or a number 1..255)"},
	{"classifier protocol 256", classifierBody(`{"protocol": "256"}`), "attract_traffic/classifier/protocol: 256 is not a protocol (a name such as tcp, udp, icmp, sctp, or a number 1..255)"},
	{"classifier boolean protocol", classifierBody(`{"protocol": true}`), "attract_traffic/classifier/protocol: true is not a protocol (a name such as tcp, udp, icmp, sctp, or a number 1..255)"},
	{"classifier checked with static prefixes", edit(ipvpnBase, "attract_traffic", `{"redirect_rts": ["64512:7"], "to_rt": ["64512:6"], "static_destination_prefixes": ["10.1.0.0/16"], "classifier": {"protocol": "x"}}`), "attract_traffic/classifier/protocol: x is not a protocol (a name such as tcp, udp, icmp, sctp, or a number 1..255)"},
	{"negative vni", edit(evpnBase, "vni", `-5`), "'vni' must be an integer between 0 and 16777215, not -5"},
	{"vni too large", edit(evpnBase, "vni", `16777216`), "'vni' must be an integer between 0 and 16777215, not 16777216"},
	{"string vni", edit(evpnBase, "vni", `"x"`), "'vni' must be an integer between 0 and 16777215, not x"},
	{"string local_pref", edit(evpnBase, "local_pref", `"x"`), "'local_pref' must be an integer between 0 and 4294967295, not x"},
	{"fractional local_pref", edit(evpnBase, "local_pref", `1.5`), "'local_pref' must be an integer between 0 and 4294967295, not 1.5"},
	{"local_pref too large", edit(evpnBase, "local_pref", `4294967296`), "'local_pref' must be an integer between 0 and 4294967295, not 4294967296"},
	{"boolean hash order", edit(evpnBase, "lb_consistent_hash_order", `true`), "'lb_consistent_hash_order' must be an integer between 0 and 4294967295, not true"},
	{"numeric linuxbr", edit(evpnBase, "linuxbr", `5`), "'linuxbr' must be a string, not a number"},
	{"numeric instance_description", edit(evpnBase, "instance_description", `5`), "'instance_description' must be a string, not a number"},
	{"fallback not an object", edit(ipvpnBase, "fallback", `"x"`), "'fallback' must be an object, not a string"},
	{"fallback bad mac", edit(ipvpnBase, "fallback", `{"src_mac": "zz", "dst_mac": "fa:16:3e:aa:bb:cc", "ovs_port_number": 6}`), "fallback: src_mac: MAC address zz is not valid"},
	{"fallback without port", edit(ipvpnBase, "fallback", `{"src_mac": "00:00:5e:2a:10:00", "dst_mac": "fa:16:3e:aa:bb:cc"}`), "fallback: 'ovs_port_number' must be a non-negative integer"},
}

// detachBadCases follow the detach checks of the reference.
var detachBadCases = []badCase{
	{"empty body", "", "No local port details received"},
	{"list body", "[]", "the request body must be a JSON object, not a list"},
	{"no vpn_type", "{}", "missing instance_type"},
	{"unknown vpn_type", `{"vpn_type": "l3vpn"}`, "unknown vpn_type: l3vpn"},
	{"no vpn_instance_id", `{"vpn_type": "ipvpn"}`, "Missing parameter: 'vpn_instance_id'"},
	{"no mac_address", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1"}`, "Missing parameter: 'mac_address'"},
	{"no local_port", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "zz"}`, "Missing parameter: 'local_port'"},
	{"ipvpn without ip_address", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "zz", "local_port": "t"}`, "Missing parameter: 'ip_address'"},
	{"bad mac before ip", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "zz", "local_port": "t", "ip_address": "zz"}`, "MAC address zz is not valid"},
	{"local_port keys", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "52:54:00:00:00:01", "local_port": {}, "ip_address": "zz"}`, "Mandatory key is missing in local_port parameter (linuxif, or evpn)"},
	{"bad ip", `{"vpn_type": "ipvpn", "vpn_instance_id": "v1", "mac_address": "52:54:00:00:00:01", "local_port": "t", "ip_address": "zz"}`, "IP address zz is not valid"},
	{"bad advertise_subnet", edit(evpnBase, "advertise_subnet", `5`), "'advertise_subnet' must be a boolean"},
	{"numeric vpn_instance_id", edit(evpnBase, "vpn_instance_id", `5`), "'vpn_instance_id' must be a non-empty string, not 5"},
	{"evpn port on evpn", edit(evpnBase, "local_port", `{"evpn": {"id": "e0"}}`), "local_port: 'evpn' can only be given to attach an E-VPN to an ipvpn"},
}

func TestAttachValidation(t *testing.T) {
	runBadCases(t, "/attach_localport", attachBadCases)
}

func TestDetachValidation(t *testing.T) {
	runBadCases(t, "/detach_localport", detachBadCases)
}

func runBadCases(t *testing.T, path string, cases []badCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeVPN{}
			s := newTestServer(t, Config{VPN: f})
			r := do(t, s, http.MethodPost, path, tc.body)
			if r.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400 (body %s)", r.status, r.body)
			}
			if msg := errorMessage(t, r); msg != tc.want {
				t.Errorf("message\n got %q\nwant %q", msg, tc.want)
			}
			if f.calls() != 0 {
				t.Error("the VPN service must not be called")
			}
		})
	}
}

// postAttach posts a body that must be accepted and returns the request
// the VPN service received.
func postAttach(t *testing.T, body string) *vpn.AttachRequest {
	t.Helper()
	f := &fakeVPN{}
	s := newTestServer(t, Config{VPN: f})
	r := do(t, s, http.MethodPost, "/attach_localport", body)
	if r.status != http.StatusOK || r.body != "null" || r.contentType != "application/json" {
		t.Fatalf("answer = %d %q %q, want 200 null", r.status, r.contentType, r.body)
	}
	if len(f.attaches) != 1 {
		t.Fatalf("%d attach calls", len(f.attaches))
	}
	return f.attaches[0]
}

func rts(s ...string) []route.RT {
	out := make([]route.RT, len(s))
	for i, x := range s {
		out[i] = route.MustParseRT(x)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func num(s string) json.Number { return json.Number(s) }

// The client requests of spec §3.9, verbatim where the spec gives them in
// full.
func TestAttachClientExamples(t *testing.T) {
	neutronIPVPN := `{
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
	got := postAttach(t, neutronIPVPN)
	want := &vpn.AttachRequest{
		VPNType: dataplane.IPVPN, InstanceID: "ipvpn_<network-uuid>",
		MACString: "fa:16:3e:11:22:33", MAC: route.MAC{0xfa, 0x16, 0x3e, 0x11, 0x22, 0x33},
		IPString: "10.0.0.5", IP: netip.MustParsePrefix("10.0.0.5/32"),
		LocalPort: &dataplane.LocalPort{
			LinuxIf: "patch2tun:3",
			OVS:     &dataplane.OVSPort{Plugged: true, PortNumber: ptr(5), VLAN: ptr(3)},
			Raw: map[string]any{"linuxif": "patch2tun:3",
				"ovs": map[string]any{"plugged": true, "port_number": num("5"), "vlan": num("3")}},
		},
		ImportRTs: rts("64512:100"), ExportRTs: rts("64512:100"),
		GatewayIP:    netip.MustParseAddr("10.0.0.1"),
		Direction:    dataplane.Both,
		LocalPref:    ptr(uint32(200)),
		Description:  map[string]any{"port": "<port-uuid>"},
		InstanceDesc: ptr("BGPVPN ipvpn associations for net <uuid> (10.0.0.1)"),
		Fallback:     &dataplane.Fallback{SrcMAC: "00:00:5e:2a:10:00", DstMAC: "fa:16:3e:aa:bb:cc", OVSPortNumber: 6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("neutron ipvpn:\n got %+v\nwant %+v", got, want)
	}

	// Port association prefix route: the spec elides the common keys.
	got = postAttach(t, edit(neutronIPVPN,
		"vpn_instance_id", `"ipvpn_portassoc_<assoc-uuid>_prefix_20_1_0_0_24"`,
		"ip_address", `"20.1.0.0/24"`, "advertise_subnet", "true",
		"direction", `"to-port"`, "local_pref", "300"))
	if got.IPString != "20.1.0.0/24" || got.IP != netip.MustParsePrefix("20.1.0.0/24") || !got.AdvertiseSubnet ||
		got.Direction != dataplane.ToPort || *got.LocalPref != 300 {
		t.Errorf("port association: %+v", got)
	}

	// Route leaking: the same plus readvertise.
	got = postAttach(t, edit(neutronIPVPN, "readvertise", `{"from_rt": ["64512:200"], "to_rt": ["64512:300"]}`))
	if !reflect.DeepEqual(got.Readvertise, &vpn.Readvertise{FromRTs: rts("64512:200"), ToRTs: rts("64512:300")}) {
		t.Errorf("readvertise = %+v", got.Readvertise)
	}

	got = postAttach(t, `{ "vpn_type": "evpn", "vpn_instance_id": "evpn_<network-uuid>",
  "mac_address": "fa:16:3e:11:22:33", "ip_address": "10.0.0.5",
  "gateway_ip": "10.0.0.1",
  "local_port": {"linuxif": "patch2tun:3", "vlan": 3},
  "vni": 1012, "import_rt": ["64512:200"], "export_rt": ["64512:200"],
  "description": {"port": "<port-uuid>"} }`)
	if got.VPNType != dataplane.EVPN || got.VNI != 1012 || *got.LocalPort.VLAN != 3 || got.LocalPort.LinuxIf != "patch2tun:3" ||
		got.GatewayIP != netip.MustParseAddr("10.0.0.1") || got.LocalPref != nil || got.InstanceDesc != nil {
		t.Errorf("neutron evpn: %+v", got)
	}

	// Linux bridge agent variants (17.0.0).
	got = postAttach(t, `{"vpn_type": "evpn", "vpn_instance_id": "evpn_net", "mac_address": "fa:16:3e:11:22:33",
		"ip_address": "10.0.0.5", "local_port": {"linuxif": "tap456abc-12"}, "linuxbr": "brq456abc-12",
		"import_rt": ["64512:200"], "export_rt": ["64512:200"]}`)
	if got.LinuxBridge != "brq456abc-12" || got.LocalPort.LinuxIf != "tap456abc-12" {
		t.Errorf("linuxbridge evpn: %+v", got)
	}

	// SFC (networking-sfc classifier, to_rt and static prefixes).
	got = postAttach(t, edit(neutronIPVPN, "lb_consistent_hash_order", "2", "attract_traffic",
		`{"redirect_rts": ["64512:97"], "classifier": {"destinationPort": "80", "protocol": "tcp", "sourcePrefix": "10.0.0.0/24"},
		  "to_rt": ["64512:96"], "static_destination_prefixes": ["10.99.0.0/16"]}`))
	wantAT := &vpn.AttractTraffic{
		RedirectRTs:               rts("64512:97"),
		Classifier:                map[string]any{"destinationPort": "80", "protocol": "tcp", "sourcePrefix": "10.0.0.0/24"},
		Match:                     route.Classifier{Src: netip.MustParsePrefix("10.0.0.0/24"), Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}},
		ToRTs:                     rts("64512:96"),
		StaticDestinationPrefixes: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
	}
	if !reflect.DeepEqual(got.AttractTraffic, wantAT) || got.LBHashOrder != 2 {
		t.Errorf("sfc: %+v %+v", got.AttractTraffic, got)
	}

	// bagpipe-rest-attach, as observed (with its ignored "to" key).
	got = postAttach(t, `{"import_rt": ["64512:512"], "export_rt": ["64512:512"],
 "local_port": {"linuxif": "tap99"}, "vpn_instance_id": "ipvpn-bagpipe-test",
 "vpn_type": "ipvpn", "gateway_ip": "10.9.0.254",
 "mac_address": "52:54:00:99:99:22", "ip_address": "10.9.0.1/24",
 "advertise_subnet": false,
 "readvertise": {"from_rt": ["64512:1"], "to_rt": ["64512:2"]},
 "attract_traffic": {"redirect_rts": ["64512:3"],
                     "classifier": {"destinationPort": "80", "protocol": "tcp"},
                     "to": ["64512:4"], "static_destination_prefixes": ["1.2.3.0/24"]},
 "lb_consistent_hash_order": 0, "vni": 0, "local_pref": 300, "direction": "both"}`)
	wantAT = &vpn.AttractTraffic{
		RedirectRTs:               rts("64512:3"),
		Classifier:                map[string]any{"destinationPort": "80", "protocol": "tcp"},
		Match:                     route.Classifier{Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}},
		StaticDestinationPrefixes: []netip.Prefix{netip.MustParsePrefix("1.2.3.0/24")},
	}
	if got.IPString != "10.9.0.1/24" || got.IP != netip.MustParsePrefix("10.9.0.1/24") ||
		!reflect.DeepEqual(got.AttractTraffic, wantAT) || *got.LocalPref != 300 || got.VNI != 0 {
		t.Errorf("rest-attach: %+v %+v", got, got.AttractTraffic)
	}

	// bagpipe-rest-attach without readvertise nor attract_traffic.
	got = postAttach(t, `{"import_rt": ["64512:513"], "export_rt": ["64512:513"],
 "local_port": {"linuxif": "tap99"}, "vpn_instance_id": "evpn-bagpipe-test",
 "vpn_type": "evpn", "gateway_ip": "10.9.0.254", "mac_address": "52:54:00:99:99:23",
 "ip_address": "10.9.0.2/24", "advertise_subnet": false, "readvertise": null,
 "attract_traffic": {}, "lb_consistent_hash_order": 0, "vni": 0, "direction": "both"}`)
	if got.Readvertise != nil || got.AttractTraffic != nil {
		t.Errorf("unused readvertise/attract_traffic: %+v", got)
	}
}

func TestAttachConversions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		check func(*vpn.AttachRequest) bool
	}{
		{"RT string split, dedup, empty items", edit(evpnBase, "import_rt", `"64512:2, 64512:1,,64512:2 target:64512:1  64512:3"`, "export_rt", `""`),
			func(r *vpn.AttachRequest) bool {
				return reflect.DeepEqual(r.ImportRTs, rts("64512:2", "64512:1", "64512:3")) && len(r.ExportRTs) == 0
			}},
		{"RT list dedup and blanks", edit(evpnBase, "import_rt", `["64512:1", "", "64512:1", " 64512:4 "]`, "export_rt", `[]`),
			func(r *vpn.AttachRequest) bool { return reflect.DeepEqual(r.ImportRTs, rts("64512:1", "64512:4")) }},
		{"IP and 4-byte AS RTs", edit(evpnBase, "import_rt", `"192.0.2.1:5,4200000000:3"`),
			func(r *vpn.AttachRequest) bool {
				return reflect.DeepEqual(r.ImportRTs, rts("192.0.2.1:5", "4200000000:3"))
			}},
		{"local_port string", evpnBase,
			func(r *vpn.AttachRequest) bool {
				return r.LocalPort.LinuxIf == "tap1" && reflect.DeepEqual(r.LocalPort.Raw, map[string]any{"linuxif": "tap1"})
			}},
		{"ipvpn with evpn port", edit(ipvpnBase, "local_port", `{"evpn": {"id": "e1", "ovs_port_name": "qvb1"}}`),
			func(r *vpn.AttachRequest) bool {
				return *r.LocalPort.EVPN == dataplane.EVPNPort{ID: "e1", OVSPortName: "qvb1"} && r.LocalPort.LinuxIf == ""
			}},
		{"evpn without ip", evpnBase,
			func(r *vpn.AttachRequest) bool { return r.IPString == "" && !r.IP.IsValid() }},
		{"evpn null ip", edit(evpnBase, "ip_address", "null"),
			func(r *vpn.AttachRequest) bool { return r.IPString == "" && !r.IP.IsValid() }},
		{"evpn IPv6", edit(evpnBase, "ip_address", `"2001:db8::5"`),
			func(r *vpn.AttachRequest) bool { return r.IP == netip.MustParsePrefix("2001:db8::5/128") }},
		{"ip raw string kept", edit(evpnBase, "ip_address", `" 10.1.0.5/024"`),
			func(r *vpn.AttachRequest) bool {
				return r.IPString == " 10.1.0.5/024" && r.IP == netip.MustParsePrefix("10.1.0.5/24")
			}},
		{"ip with netmask", edit(evpnBase, "ip_address", `"10.1.0.5/255.255.255.0"`),
			func(r *vpn.AttachRequest) bool { return r.IP == netip.MustParsePrefix("10.1.0.5/24") }},
		{"mac kept as given", edit(evpnBase, "mac_address", `"52-54-00-AB-00-01"`),
			func(r *vpn.AttachRequest) bool {
				return r.MACString == "52-54-00-AB-00-01" && r.MAC == route.MAC{0x52, 0x54, 0, 0xab, 0, 1}
			}},
		{"null direction", edit(evpnBase, "direction", "null"),
			func(r *vpn.AttachRequest) bool { return r.Direction == dataplane.Both }},
		{"from-port direction", edit(evpnBase, "direction", `"from-port"`),
			func(r *vpn.AttachRequest) bool { return r.Direction == dataplane.FromPort }},
		{"ipvpn null gateway", edit(ipvpnBase, "gateway_ip", "null"),
			func(r *vpn.AttachRequest) bool { return !r.GatewayIP.IsValid() }},
		{"null optional values", edit(evpnBase, "vni", "null", "local_pref", "null", "lb_consistent_hash_order", "null",
			"linuxbr", "null", "instance_description", "null", "fallback", "null", "description", "null"),
			func(r *vpn.AttachRequest) bool {
				return r.VNI == 0 && r.LocalPref == nil && r.LBHashOrder == 0 && r.LinuxBridge == "" &&
					r.InstanceDesc == nil && r.Fallback == nil && r.Description == nil
			}},
		{"local_pref zero", edit(evpnBase, "local_pref", "0"),
			func(r *vpn.AttachRequest) bool { return r.LocalPref != nil && *r.LocalPref == 0 }},
		{"largest vni", edit(evpnBase, "vni", "16777215"),
			func(r *vpn.AttachRequest) bool { return r.VNI == 16777215 }},
		{"unknown keys ignored", edit(evpnBase, "foo", `{"bar": 1}`),
			func(r *vpn.AttachRequest) bool { return r.InstanceID == "e1" }},
		{"inactive attract_traffic ignored", edit(ipvpnBase, "attract_traffic", `{"redirect_rts": ["64512:5"]}`),
			func(r *vpn.AttachRequest) bool { return r.AttractTraffic == nil }},
		{"attract_traffic with readvertise", edit(ipvpnBase, "readvertise", readv, "attract_traffic", `{"redirect_rts": "64512:7", "classifier": {"protocol": "udp"}}`),
			func(r *vpn.AttachRequest) bool {
				return r.AttractTraffic != nil && reflect.DeepEqual(r.AttractTraffic.RedirectRTs, rts("64512:7")) && r.AttractTraffic.ToRTs == nil
			}},
		{"classifier defaults to tcp", classifierBody(`{}`),
			func(r *vpn.AttachRequest) bool { return r.AttractTraffic.Match == route.Classifier{Protocol: 6} }},
		{"classifier with every key", classifierBody(`{"sourcePrefix": "10.0.0.1", "destinationPrefix": "10.1.2.3/255.255.0.0",
			"sourcePort": 1024, "destinationPort": "1000:2000", "protocol": 17}`),
			func(r *vpn.AttachRequest) bool {
				return r.AttractTraffic.Match == route.Classifier{Src: netip.MustParsePrefix("10.0.0.1/32"), Dst: netip.MustParsePrefix("10.1.0.0/16"),
					Protocol: 17, SrcPort: route.PortRange{Min: 1024, Max: 1024}, DstPort: route.PortRange{Min: 1000, Max: 2000}}
			}},
		{"classifier null protocol matches any", classifierBody(`{"protocol": null, "destinationPort": "80", "sourcePrefix": null, "sourcePort": ""}`),
			func(r *vpn.AttachRequest) bool {
				return r.AttractTraffic.Match == route.Classifier{DstPort: route.PortRange{Min: 80, Max: 80}}
			}},
		{"classifier protocol names and numbers", classifierBody(`{"protocol": "SCTP", "sourcePort": "0:65535"}`),
			func(r *vpn.AttachRequest) bool { return r.AttractTraffic.Match == route.Classifier{Protocol: 132} }},
		{"classifier hex protocol", classifierBody(`{"protocol": "0x2f", "destinationPort": "0:1023"}`),
			func(r *vpn.AttachRequest) bool {
				return r.AttractTraffic.Match == route.Classifier{Protocol: 47, DstPort: route.PortRange{Min: 0, Max: 1023}}
			}},
		{"classifier kept as given", classifierBody(`{"protocol": "UDP", "destinationPort": 53}`),
			func(r *vpn.AttachRequest) bool {
				return reflect.DeepEqual(r.AttractTraffic.Classifier, map[string]any{"protocol": "UDP", "destinationPort": json.Number("53")}) &&
					r.AttractTraffic.Match == route.Classifier{Protocol: 17, DstPort: route.PortRange{Min: 53, Max: 53}}
			}},
		{"empty readvertise", edit(ipvpnBase, "readvertise", "{}"),
			func(r *vpn.AttachRequest) bool { return r.Readvertise == nil }},
		{"readvertise RT strings", edit(ipvpnBase, "readvertise", `{"from_rt": "64512:5, 64512:6", "to_rt": "64512:7"}`),
			func(r *vpn.AttachRequest) bool {
				return reflect.DeepEqual(r.Readvertise, &vpn.Readvertise{FromRTs: rts("64512:5", "64512:6"), ToRTs: rts("64512:7")})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := postAttach(t, tc.body); !tc.check(r) {
				t.Errorf("unexpected request %+v (local port %+v)", r, r.LocalPort)
			}
		})
	}
}

func TestDetachConversions(t *testing.T) {
	f := &fakeVPN{}
	s := newTestServer(t, Config{VPN: f})
	bodies := []string{
		// E-VPN wildcard detach; attach-only keys are ignored, even invalid.
		edit(evpnBase, "import_rt", `[5]`, "direction", `"x"`, "readvertise", `{"a": 1}`, "vni", `"x"`),
		edit(ipvpnBase, "ip_address", `"10.0.0.1/32"`, "local_port", `{"evpn": {"id": "e1"}}`),
	}
	for _, b := range bodies {
		if r := do(t, s, http.MethodPost, "/detach_localport", b); r.status != http.StatusOK || r.body != "null" {
			t.Fatalf("detach %s: %d %s", b, r.status, r.body)
		}
	}
	want := []*vpn.DetachRequest{
		{VPNType: dataplane.EVPN, InstanceID: "e1", MACString: "52:54:00:00:00:01", MAC: route.MAC{0x52, 0x54, 0, 0, 0, 1},
			LocalPort: &dataplane.LocalPort{LinuxIf: "tap1", Raw: map[string]any{"linuxif": "tap1"}}},
		{VPNType: dataplane.IPVPN, InstanceID: "v1", MACString: "52:54:00:00:00:01", MAC: route.MAC{0x52, 0x54, 0, 0, 0, 1},
			IPString: "10.0.0.1/32", IP: netip.MustParsePrefix("10.0.0.1/32"),
			LocalPort: &dataplane.LocalPort{EVPN: &dataplane.EVPNPort{ID: "e1"},
				Raw: map[string]any{"evpn": map[string]any{"id": "e1"}}}},
	}
	if !reflect.DeepEqual(f.detaches, want) {
		for i := range f.detaches {
			t.Errorf("detach %d: %+v (port %+v)", i, f.detaches[i], f.detaches[i].LocalPort)
		}
	}
}

func TestAttachIgnoresContentType(t *testing.T) {
	f := &fakeVPN{}
	s := newTestServer(t, Config{VPN: f})
	for _, ct := range []string{"text/plain; charset=latin1", "application/x-www-form-urlencoded", ""} {
		req := httptest.NewRequest(http.MethodPost, "/attach_localport", strings.NewReader(evpnBase))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("Content-Type %q: status %d %s", ct, rec.Code, rec.Body)
		}
	}
	if len(f.attaches) != 3 {
		t.Errorf("%d attaches, want 3", len(f.attaches))
	}
}
