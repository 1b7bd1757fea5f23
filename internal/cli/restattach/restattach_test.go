package restattach

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// api is a fake bagpipe-bgp REST API recording the requests it gets.
type api struct {
	port   string
	mu     sync.Mutex
	paths  []string
	bodies [][]byte
}

// newAPI serves a fake API on 127.0.0.1 answering status and body.
func newAPI(t *testing.T, status int, body string) *api {
	t.Helper()
	a := &api{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.paths = append(a.paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		a.bodies = append(a.bodies, b)
		a.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	_, a.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return a
}

// lastBody returns the body of the only request received.
func (a *api) lastBody(t *testing.T) []byte {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.bodies) != 1 {
		t.Fatalf("got %d requests, want 1", len(a.bodies))
	}
	return a.bodies[0]
}

func run(args ...string) (status int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	status = Run(args, &out, &errOut)
	return status, out.String(), errOut.String()
}

func TestMain(m *testing.M) {
	// Never depend on the host's configuration, never touch its network.
	defaultConfigFile = "/nonexistent/bgp.conf"
	newNetnsHelper = func() netnsHelper { return &fakeNetns{mac: "02:00:00:00:00:aa"} }
	os.Exit(m.Run())
}

func TestRequestObjects(t *testing.T) {
	base := func(extra ...string) []string {
		return append([]string{"--attach", "--network-type", "ipvpn", "--port", "tap1", "--ip", "10.0.0.1"}, extra...)
	}
	evpn := func(extra ...string) []string {
		return append([]string{"--attach", "--network-type", "evpn", "--port", "tap2", "--ip", "10.0.0.2",
			"--mac", "52:54:00:00:00:02"}, extra...)
	}
	// Keys sent by every request, with their defaults for base().
	const ipvpnDefaults = `"import_rt": ["64512:512"], "export_rt": ["64512:512"],
		"local_port": {"linuxif": "tap1"}, "vpn_instance_id": "ipvpn-bagpipe-test", "vpn_type": "ipvpn",
		"gateway_ip": "10.0.0.254", "mac_address": "52:54:00:99:99:22", "ip_address": "10.0.0.1/24",
		"advertise_subnet": false, "readvertise": null, "attract_traffic": {},
		"lb_consistent_hash_order": 0, "vni": 0, "direction": "both"`
	const evpnDefaults = `"import_rt": ["64512:513"], "export_rt": ["64512:513"],
		"local_port": {"linuxif": "tap2"}, "vpn_instance_id": "evpn-bagpipe-test", "vpn_type": "evpn",
		"gateway_ip": "10.0.0.254", "mac_address": "52:54:00:00:00:02", "ip_address": "10.0.0.2/24",
		"advertise_subnet": false, "readvertise": null, "attract_traffic": {},
		"lb_consistent_hash_order": 0, "vni": 0, "direction": "both"`

	for _, tc := range []struct {
		name     string
		args     []string
		defaults string // base object, overridden by want
		want     string
		path     string
	}{
		{"ipvpn defaults", base(), ipvpnDefaults, `{}`, "/attach_localport"},
		{"detach sends the same keys", append([]string{"--detach"}, base()[1:]...), ipvpnDefaults, `{}`, "/detach_localport"},
		{"last of --attach/--detach wins", base("--detach"), ipvpnDefaults, `{}`, "/detach_localport"},
		{"evpn defaults", evpn(), evpnDefaults, `{}`, "/attach_localport"},
		{"evpn detach", append([]string{"--detach"}, evpn()[1:]...), evpnDefaults, `{}`, "/detach_localport"},
		{"prefix length kept", base("--ip", "192.168.1.10/16"), ipvpnDefaults,
			`{"ip_address": "192.168.1.10/16", "gateway_ip": "192.168.255.254"}`, ""},
		{"gateway of a /31", base("--ip=10.0.0.1/31"), ipvpnDefaults,
			`{"ip_address": "10.0.0.1/31", "gateway_ip": "10.0.0.0"}`, ""},
		{"ipv6 prefix", base("--ip", "2001:db8::1/64"), ipvpnDefaults,
			`{"ip_address": "2001:db8::1/64", "gateway_ip": "2001:db8::ffff:ffff:ffff:fffe"}`, ""},
		{"explicit gateway", base("--gateway-ip", "10.0.0.1/32"), ipvpnDefaults, `{"gateway_ip": "10.0.0.1/32"}`, ""},
		{"explicit instance id", base("--vpn-instance-id", "net1"), ipvpnDefaults, `{"vpn_instance_id": "net1"}`, ""},
		{"default instance id given explicitly", evpn("--vpn-instance-id", "bagpipe-test"), evpnDefaults, `{}`, ""},
		{"repeated --rt", base("--rt", "1:1", "--rt", "2:2"), ipvpnDefaults,
			`{"import_rt": ["1:1", "2:2"], "export_rt": ["1:1", "2:2"]}`, ""},
		{"--rt with import and export only RTs", base("--import-rt", "3:3", "--rt", "1:1", "--export-rt", "4:4"), ipvpnDefaults,
			`{"import_rt": ["1:1", "3:3"], "export_rt": ["1:1", "4:4"]}`, ""},
		{"import-only RT disables the default", base("--import-rt", "3:3"), ipvpnDefaults,
			`{"import_rt": ["3:3"], "export_rt": []}`, ""},
		{"export-only RT disables the default", evpn("--export-rt", "4:4"), evpnDefaults,
			`{"import_rt": [], "export_rt": ["4:4"]}`, ""},
		{"direction", base("--direction", "to-port"), ipvpnDefaults, `{"direction": "to-port"}`, ""},
		{"advertise subnet", base("--advertise-subnet"), ipvpnDefaults, `{"advertise_subnet": true}`, ""},
		{"last advertise option wins", base("--advertise-subnet", "--advertise-singleton"), ipvpnDefaults, `{}`, ""},
		{"mac", base("--mac", "00:11:22:33:44:55"), ipvpnDefaults, `{"mac_address": "00:11:22:33:44:55"}`, ""},
		{"readvertise", base("--readv-from-rt", "5:5", "--readv-to-rt", "6:6", "--readv-from-rt", "7:7"), ipvpnDefaults,
			`{"readvertise": {"from_rt": ["5:5", "7:7"], "to_rt": ["6:6"]}}`, ""},
		{"readvertise without from RT", base("--readv-to-rt", "6:6"), ipvpnDefaults,
			`{"readvertise": {"from_rt": [], "to_rt": ["6:6"]}}`, ""},
		{"readvertise needs a to RT", base("--readv-from-rt", "5:5"), ipvpnDefaults, `{}`, ""},
		{"redirect", base("--redirect-rts", "8:8", "--protocol", "udp", "--source-prefix", "1.0.0.0/8",
			"--destination-prefix", "2.0.0.0/8", "--source-port", "1000:2000", "--destination-port", "53",
			"--protocol", "tcp"), ipvpnDefaults,
			`{"attract_traffic": {"redirect_rts": ["8:8"], "classifier": {"protocol": "tcp",
			"sourcePrefix": "1.0.0.0/8", "destinationPrefix": "2.0.0.0/8", "sourcePort": "1000:2000",
			"destinationPort": "53"}}}`, ""},
		{"attract traffic to RTs", base("--redirect-rts", "8:8", "--destination-port", "80",
			"--attract-to-rt", "9:9", "--static-destination-prefix", "3.0.0.0/8",
			"--static-destination-prefix", "4.0.0.0/8"), ipvpnDefaults,
			`{"attract_traffic": {"redirect_rts": ["8:8"], "classifier": {"destinationPort": "80"},
			"to_rt": ["9:9"], "static_destination_prefixes": ["3.0.0.0/8", "4.0.0.0/8"]}}`, ""},
		{"attract-to-rt needs redirect RTs", base("--attract-to-rt", "9:9"), ipvpnDefaults, `{}`, ""},
		{"numbers", base("--lb-consistent-hash-order", "3", "--vni", "42", "--local-pref=150"), ipvpnDefaults,
			`{"lb_consistent_hash_order": 3, "vni": 42, "local_pref": 150}`, ""},
		{"zero local pref is not sent", base("--local-pref", "0"), ipvpnDefaults, `{}`, ""},
		{"evpn port plugged into an ipvpn", base("--port", "evpn:e1"), ipvpnDefaults,
			`{"local_port": {"evpn": {"id": "e1"}}}`, ""},
		{"netns and OVS options unused without netns port or preplug",
			base("--ovs-vlan", "5", "--ovs-bridge", "br0", "--netns", "ns", "--if2vpn", "x"), ipvpnDefaults, `{}`, ""},
		{"ovs-preplug is ignored for evpn", evpn("--ovs-preplug"), evpnDefaults, `{}`, ""},
		{"dash-dash as an option value", base("--vpn-instance-id", "--", "--vni", "1"), ipvpnDefaults,
			`{"vpn_instance_id": "--", "vni": 1}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, http.StatusOK, "null")
			status, stdout, stderr := run(append(tc.args, "--api-port", a.port)...)
			if status != 0 || stderr != "" {
				t.Fatalf("status %d, stderr %q", status, stderr)
			}
			sent := a.lastBody(t)
			var got map[string]any
			if err := json.Unmarshal(sent, &got); err != nil {
				t.Fatalf("invalid JSON sent: %v\n%s", err, sent)
			}
			want := decodeObject(t, "{"+tc.defaults+"}")
			for k, v := range decodeObject(t, tc.want) {
				want[k] = v
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("sent  %s\nwant %v", sent, want)
			}
			if !strings.Contains(stdout, "request: "+string(sent)+"\n") {
				t.Errorf("stdout does not show the request sent:\n%s", stdout)
			}
			if !strings.HasSuffix(stdout, "response: 200 null\n") {
				t.Errorf("stdout does not end with the response:\n%s", stdout)
			}
			if tc.path != "" && a.paths[0] != "POST "+tc.path+" application/json" {
				t.Errorf("request %q, want POST %s", a.paths[0], tc.path)
			}
		})
	}
}

func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test data %s: %v", s, err)
	}
	return m
}

func TestUsageErrors(t *testing.T) {
	a := newAPI(t, http.StatusOK, "null")
	p := []string{"--api-port", a.port}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1"}, "Need to specify --attach or --detach"},
		{[]string{"--attach", "--network-type", "ipvpn", "--ip", "1.1.1.1"}, "Need to specify --port <localport>"},
		{[]string{"--attach", "--port", "t", "--ip", "1.1.1.1"}, "Need to specify --network-type"},
		{[]string{"--attach", "--network-type", "ipvpn", "--port", "t"}, "Need to specify --ip"},
		{[]string{"--attach", "--network-type", "l3vpn"}, "option --network-type: invalid choice: 'l3vpn' (choose from 'ipvpn', 'evpn')"},
		{[]string{"--attach", "--direction", "in"}, "option --direction: invalid choice: 'in' (choose from 'to-port', 'from-port', 'both')"},
		{[]string{"--attach", "--network-type", "evpn", "--port", "t", "--ip", "1.1.1.1"},
			"Need to specify --mac for an EVPN network attachment if port is not 'netns'"},
		{[]string{"--attach", "--network-type", "evpn", "--port", "evpn:e1", "--ip", "1.1.1.1", "--mac", "00:00:00:00:00:01"},
			"Can only plug an evpn into an ipvpn"},
		{[]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1", "--redirect-rts", "1:1"},
			"Need to specify --redirect-rt and at least one traffic classifier option"},
		{[]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1", "--redirect-rts", "1:1",
			"--protocol", "tcp", "--attract-to-rt", "2:2"},
			"Need to specify --attract-to-rt and at least one static destination prefix option"},
		{[]string{"--attach", "--network-type", "evpn", "--port", "netns", "--ip", "1.1.1.1", "--mtu", "20"}, "option --mtu: invalid MTU 20 (68..65535)"},
		{[]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1", "--ovs-preplug"}, "--ovs-preplug is not supported yet"},
		{[]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1/32"},
			"cannot choose a gateway address for --ip 1.1.1.1/32: the prefix holds a single address (use --gateway-ip)"},
		{[]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1"}, "cannot choose a gateway address for --ip 1.1.1/24"},
		{[]string{"--attach", "--vni", "x"}, `invalid value "x" for flag -vni`},
		{[]string{"--attach", "--bogus"}, "no such option: --bogus"},
		{[]string{"--attach", "stray"}, "unexpected argument: stray"},
	} {
		status, _, stderr := run(append(tc.args, p...)...)
		wantPrefix := "Usage: bagpipe-rest-attach [--attach|--detach] --network-type (ipvpn|evpn) " +
			"--port (<port>|netns) --ip <ip>[/<mask>] [options] (see --help)\n\nbagpipe-rest-attach: error: "
		if status != 2 || !strings.HasPrefix(stderr, wantPrefix+tc.msg) {
			t.Errorf("%q: status %d, stderr:\n%s\nwant error %q", tc.args, status, stderr, tc.msg)
		}
	}
	if len(a.bodies) != 0 {
		t.Errorf("requests were sent: %q", a.bodies)
	}
}

func TestHTTPError(t *testing.T) {
	body := "<html>\n API error: unknown vpn_type: x\n</html>\n"
	a := newAPI(t, http.StatusBadRequest, body)
	status, stdout, stderr := run("--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1",
		"--gateway-ip", "1.1.1.2", "--api-port", a.port)
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	if _, after, _ := strings.Cut(stdout, "\n"); after != "   "+body+"\n" {
		t.Errorf("stdout after the request line: %q", after)
	}
	if stderr != "error 400, reason: Bad Request\n" {
		t.Errorf("stderr %q", stderr)
	}
}

func TestNoServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	status, _, stderr := run("--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1", "--api-port", port)
	if status != 1 || !strings.Contains(stderr, "connection refused") {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
}

func TestAPIPortFromConfigFile(t *testing.T) {
	a := newAPI(t, http.StatusOK, "null")
	conf := filepath.Join(t.TempDir(), "bgp.conf")
	os.WriteFile(conf, []byte("[api]\nport = "+a.port+"\n"), 0o644)
	status, _, stderr := run("--detach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1",
		"--config-file", conf, "--server", "127.0.0.1")
	if status != 0 || len(a.bodies) != 1 {
		t.Errorf("status %d, %d requests, stderr %q", status, len(a.bodies), stderr)
	}
}

func TestConfigFileErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bgp.conf")
	os.WriteFile(bad, []byte("[API]\nport = eighty\n"), 0o644)
	for _, args := range [][]string{
		{"--config-file", "/nonexistent/bgp.conf"}, // an explicit file must exist
		{"--config-file", bad},
	} {
		status, _, stderr := run(append([]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1"}, args...)...)
		if status != 2 || !strings.Contains(stderr, "bagpipe-rest-attach: error: ") {
			t.Errorf("%q: status %d, stderr %q", args, status, stderr)
		}
	}
}

func TestMissingDefaultConfigFile(t *testing.T) {
	c := newCommand(io.Discard, io.Discard)
	opts, err := c.parse([]string{"--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1"})
	if err != nil || opts.apiPort != 8082 {
		t.Errorf("port %v, error %v; want 8082", opts, err)
	}
}

func TestDefaultGateway(t *testing.T) {
	for prefix, want := range map[string]string{
		"10.0.0.1/24":    "10.0.0.254",
		"10.0.0.1/30":    "10.0.0.2",
		"10.0.0.1/0":     "255.255.255.254",
		"2001:db8::1/24": "2001:dff:ffff:ffff:ffff:ffff:ffff:fffe",
	} {
		got, err := defaultGateway(prefix)
		if err != nil || got.String() != want {
			t.Errorf("defaultGateway(%s) = %v, %v; want %s", prefix, got, err, want)
		}
	}
	for _, prefix := range []string{"10.0.0.1/32", "::1/128", "10.0.0.1/33", "10.0.0.1"} {
		if got, err := defaultGateway(prefix); err == nil {
			t.Errorf("defaultGateway(%s) = %v, want an error", prefix, got)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	status, stdout, _ := run("--version")
	if status != 0 || !strings.HasPrefix(stdout, "bagpipe-rest-attach ") {
		t.Errorf("--version: %d %q", status, stdout)
	}
	status, stdout, _ = run("--help")
	for _, opt := range []string{"--attach", "--detach", "--network-type=NETWORK_TYPE", "--rt=RT", "--import-rt=IMPORT_RT",
		"--redirect-rts=REDIRECT_RTS", "--static-destination-prefix=STATIC_DESTINATION_PREFIX", "--config-file=CONFIG_FILE",
		"--api-port=API_PORT", "--server=SERVER", "--version"} {
		if status != 0 || !strings.Contains(stdout, "\n  "+opt) {
			t.Errorf("--help does not list %s", opt)
		}
	}
}

// --unix-socket sends the request over the API's Unix socket.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var mu sync.Mutex
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		io.WriteString(w, "null")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	status, stdout, stderr := run("--attach", "--network-type", "ipvpn", "--port", "t", "--ip", "1.1.1.1",
		"--unix-socket", sock, "--api-port", "1")
	mu.Lock()
	defer mu.Unlock()
	if status != 0 || len(got) != 1 || got[0] != "POST /attach_localport" || !strings.Contains(stdout, "response: 200 null") {
		t.Errorf("status %d, requests %q, stdout %q, stderr %q", status, got, stdout, stderr)
	}
}
