package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/cli/lookingglass"
)

// These tests run two daemons in this process, peering with each other
// over the loopback interface (127.0.0.1 and 127.0.0.2, on a free BGP
// port), with dummy dataplanes, and look at one of them as an operator
// would: the bagpipe-looking-glass tool, the web view in headless
// Chromium, the metrics and the log level switch.

var updateScreenshot = flag.Bool("update-screenshot", false, "write the web view screenshots to docs/")

// freePort returns a TCP port free on 127.0.0.1 and 127.0.0.2.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln2, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			ln2.Close()
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1 and 127.0.0.2")
	return 0
}

// node is a running daemon.
type node struct {
	d   *Daemon
	url string // http://127.0.0.1:<API port>
}

func startNode(t *testing.T, local, peer string, bgpPort int, extra string) *node {
	t.Helper()
	n, _ := startStateNode(t, local, peer, bgpPort, extra)
	return n
}

func (n *node) post(t *testing.T, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(n.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %d %s", path, b, resp.StatusCode, answer)
	}
}

func (n *node) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(n.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// summary reads the looking glass summary.
func (n *node) summary(t *testing.T) map[string]any {
	var s map[string]any
	if err := json.Unmarshal([]byte(n.get(t, "/looking-glass/summary")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func attachments(node, ip string) []map[string]any {
	port := func(s string) map[string]any { return map[string]any{"linuxif": s + node} }
	return []map[string]any{
		{"vpn_type": "ipvpn", "vpn_instance_id": "blue", "mac_address": "52:54:00:00:0" + ip + ":01",
			"ip_address": "10.1.0." + ip + "/24", "gateway_ip": "10.1.0.254", "local_port": port("tap-blue-"),
			"import_rt": []string{"64512:100"}, "export_rt": []string{"64512:100"}, "instance_description": "tenant blue"},
		{"vpn_type": "ipvpn", "vpn_instance_id": "red", "mac_address": "52:54:00:00:0" + ip + ":02",
			"ip_address": "10.2.0." + ip + "/24", "gateway_ip": "10.2.0.254", "local_port": port("tap-red-"),
			"import_rt": []string{"64512:200", "64512:100"}, "export_rt": []string{"64512:200"},
			"readvertise": map[string]any{"from_rt": []string{"64512:100"}, "to_rt": []string{"64512:201"}}},
		{"vpn_type": "evpn", "vpn_instance_id": "green", "mac_address": "52:54:00:00:0" + ip + ":03",
			"ip_address": "10.3.0." + ip, "local_port": port("tap-green-"),
			"import_rt": []string{"64512:300"}, "export_rt": []string{"64512:300"}},
	}
}

// TestOperatorTools runs two peering daemons and checks the operator
// tools against the first one.
func TestOperatorTools(t *testing.T) {
	bgpPort := freePort(t)
	a := startNode(t, "127.0.0.1", "127.0.0.2", bgpPort, "metrics_port = 0\n")
	b := startNode(t, "127.0.0.2", "127.0.0.1", bgpPort, "")
	for _, req := range attachments("a", "1") {
		a.post(t, "/attach_localport", req)
	}
	for _, req := range attachments("b", "2") {
		b.post(t, "/attach_localport", req)
	}
	// Wait for the session and B's routes (3 instance routes, E-VPN
	// multicast route, re-advertised route).
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		s := a.summary(t)
		counts, _ := s["route_counts"].(map[string]any)
		if s["BGP_established_peers"] == 1.0 && counts["received_routes_count"].(float64) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session or routes between the daemons: %v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("session up and routes exchanged in %v", time.Since(start).Round(time.Millisecond))

	t.Run("looking-glass tool", func(t *testing.T) { testLookingGlassTool(t, a) })
	t.Run("metrics", func(t *testing.T) { testMetrics(t, a) })
	t.Run("log level", func(t *testing.T) { testLogLevel(t, a) })
	t.Run("web view in chromium", func(t *testing.T) { testWebView(t, a) })
}

func runLG(t *testing.T, n *node, args ...string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.url, "http://"))
	var stdout, stderr bytes.Buffer
	full := append([]string{"--server", "127.0.0.1", "--port", port}, args...)
	if status := lookingglass.Run(full, &stdout, &stderr); status != 0 || stderr.Len() > 0 {
		t.Fatalf("bagpipe-looking-glass %q: status %d, stderr %s", args, status, stderr.String())
	}
	return stdout.String()
}

// containsLines checks that out has every line of want (in order).
func containsLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w+"\n")
		if i < 0 {
			t.Errorf("%s: missing line %q (in order) in:\n%s", what, w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}

func testLookingGlassTool(t *testing.T, a *node) {
	containsLines(t, "summary", runLG(t, a, "summary"),
		"BGP_established_peers: 1",
		"route_counts: ",
		"vpn_instances_count: 3",
	)
	containsLines(t, "instances", runLG(t, a, "vpns", "instances"),
		"* blue (...)", "  description: tenant blue", "  name: VRF-1",
		"* red (...)", "  name: VRF-2",
		"* green (...)", "  name: EVI-3",
	)
	containsLines(t, "peers", runLG(t, a, "bgp", "peers"), "* 127.0.0.2 (...)", "  state: Established")
	containsLines(t, "instance", runLG(t, a, "vpns", "instances", "red"),
		"route_targets: ",
		"  export: ",
		"    * target:64512:200",
		"  import: ",
		"    * target:64512:200",
		"    * target:64512:100",
		"readvertise: ",
		"  from: ",
		"    * target:64512:100",
		"  to: ",
		"    * target:64512:201",
	)
	out := runLG(t, a, "-r", "vpns", "instances", "blue", "ports")
	containsLines(t, "ports", out, "tap-blue-a: ", "  endpoints: ", "    * description: None",
		"      ip_address: 10.1.0.1/24", "      mac_address: 52:54:00:00:01:01")
	// B's route, received by A's VRF, and its source.
	out = runLG(t, a, "vpns", "instances", "blue", "received_routes")
	if !strings.Contains(out, "10.1.0.2/32 label") || !strings.Contains(out, "BGP-127.0.0.2") {
		t.Errorf("received routes of blue:\n%s", out)
	}
	// --json, and paging.
	var routes []any
	if err := json.Unmarshal([]byte(runLG(t, a, "--json", "vpns", "instances", "blue", "adv_routes")), &routes); err != nil || len(routes) != 1 {
		t.Errorf("--json adv_routes: %v %v", err, routes)
	}
	out = runLG(t, a, "--limit", "1", "bgp", "routes")
	if n := strings.Count(out, "afi-safi: ipv4/mpls-vpn"); n != 1 {
		t.Errorf("--limit 1 bgp routes shows %d ipv4/mpls-vpn routes:\n%s", n, out)
	}
	var paged map[string][]any
	if err := json.Unmarshal([]byte(a.get(t, "/looking-glass/bgp/routes?limit=1")), &paged); err != nil {
		t.Fatal(err)
	}
	if n := len(paged["ipv4/mpls-vpn,*"]); n != 1 {
		t.Errorf("bgp/routes?limit=1 gives %d ipv4/mpls-vpn routes", n)
	}
}

func testMetrics(t *testing.T, a *node) {
	for _, url := range []string{a.url + "/metrics", "http://" + a.d.MetricsAddr().String() + "/metrics"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := string(b)
		for _, want := range []string{
			`bagpipe_bgp_peer_up{peer="127.0.0.2"} 1`,
			`bagpipe_bgp_peer_state{peer="127.0.0.2",state="Established"} 1`,
			`bagpipe_vpn_instances{vpn_type="ipvpn"} 2`,
			`bagpipe_api_requests_total{code="200",operation="attach",vpn_type="evpn"} 1`,
			`bagpipe_dataplane_operations_total{driver="DummyDataplaneDriver",operation="vif_plugged",vpn_type="ipvpn"} 2`,
			`bagpipe_vpn_instance_routes_received{family="ipv4/mpls-vpn",instance="blue",name="VRF-1",vpn_type="ipvpn"} 1`,
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("%s: missing %s", url, want)
			}
		}
		if !regexp.MustCompile(`bagpipe_bgp_routes_received\{family="ipv4/mpls-vpn",peer="127.0.0.2"\} [1-9]`).MatchString(out) {
			t.Errorf("%s: no ipv4/mpls-vpn route received from 127.0.0.2", url)
		}
	}
}

func testLogLevel(t *testing.T, a *node) {
	for _, level := range []string{"debug", "info"} {
		req, _ := http.NewRequest(http.MethodPut, a.url+"/log-level", strings.NewReader(level))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), strings.ToUpper(level)) {
			t.Errorf("PUT /log-level %s: %d %s", level, resp.StatusCode, b)
		}
		if got := a.d.logs.Level.Level().String(); got != strings.ToUpper(level) {
			t.Errorf("level %s after PUT %s", got, level)
		}
	}
}

// chromium runs headless Chromium with args. A missing Chromium is an
// error (the test fails, it does not skip): scripts/setup.sh installs it.
func chromium(args ...string) ([]byte, error) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("chromium is needed to test the web view (Debian package chromium, installed by scripts/setup.sh): %w", err)
	}
	profile, err := os.MkdirTemp("", "bagpipe-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--no-pings", "--disable-domain-reliability", "--user-data-dir=" + profile}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("chromium %q: %w\n%s", args, err, stderr.String())
	}
	return out, nil
}

// visibleText strips the tags of a DOM dump.
func visibleText(dom string) string {
	dom = regexp.MustCompile(`(?s)<style.*?</style>`).ReplaceAllString(dom, "")
	dom = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " ")
	dom = strings.NewReplacer("&gt;", ">", "&lt;", "<", "&amp;", "&", "&#39;", "'", "&quot;", `"`).Replace(dom)
	return strings.Join(strings.Fields(dom), " ")
}

func testWebView(t *testing.T, a *node) {
	dir := t.TempDir()
	if *updateScreenshot {
		dir = "../../docs"
	}
	pages := []struct {
		path string
		want []string
		shot string // screenshot file, window size
		size string
	}{
		{"/ui/", []string{
			"bagpipe-bgp looking glass", "BGP established peers", "127.0.0.2 Established",
			"VPN instances 3", "blue tenant blue VRF-1 VRF", "target:64512:100", "tap-blue-a",
			"red VRF-2 VRF", "target:64512:100 → target:64512:201", "green EVI-3 EVI",
		}, "webui-overview.png", "1400,520"},
		{"/ui/instances/blue", []string{
			"VRF-1 blue", "external_instance_id blue", "import target:64512:100",
			"tap-blue-a 52:54:00:00:01:01 10.1.0.1/24", "Best routes 1",
			"'10.1.0.2/32' 10.1.0.2/32 label", "BGP-127.0.0.2", "Advertised routes 1", "Dataplane",
		}, "webui-instance.png", "1400,1250"},
		// Pages without screenshot are read with a plain GET: Chromium
		// costs about a second per page.
		{"/ui/peers/127.0.0.2", []string{"BGP peer 127.0.0.2", "Established", "Routes received", "10.1.0.2/32 label"}, "", ""},
		{"/ui/routes?family=ipv4/rtc", []string{"ipv4/rtc (", "rtc 64512:target:64512:100", "BGPManager"}, "", ""},
		{"/ui/lg/vpns/instances/red/route_targets", []string{"export target:64512:200", "import target:64512:200 target:64512:100"}, "", ""},
	}
	doms := make([]string, len(pages))
	errs := make(chan error, len(pages))
	for i, p := range pages {
		if p.shot == "" {
			doms[i] = a.get(t, p.path)
			errs <- nil
			continue
		}
		go func() {
			args := []string{"--dump-dom"}
			if p.shot != "" {
				file, _ := filepath.Abs(filepath.Join(dir, p.shot))
				args = append(args, "--hide-scrollbars", "--window-size="+p.size, "--screenshot="+file)
			}
			out, err := chromium(append(args, a.url+p.path)...)
			doms[i] = string(out)
			errs <- err
		}()
	}
	for range pages {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range pages {
		text := visibleText(doms[i])
		for _, w := range p.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %q not shown; page text:\n%s", p.path, w, text)
			}
		}
		if strings.Contains(doms[i], "<script") {
			t.Errorf("%s: the page has scripts", p.path)
		}
		if p.shot == "" {
			continue
		}
		f, err := os.Open(filepath.Join(dir, p.shot))
		if err != nil {
			t.Fatalf("no screenshot of %s: %v", p.path, err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 1000 {
			t.Errorf("screenshot of %s: %v %+v", p.path, err, cfg)
		}
	}
	// The overview links to the instance page.
	if !strings.Contains(doms[0], `href="/ui/instances/blue"`) {
		t.Errorf("overview has no link to /ui/instances/blue")
	}
}
