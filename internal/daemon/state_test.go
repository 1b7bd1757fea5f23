package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bagpipe/internal/config"
	"bagpipe/internal/logging"
	"bagpipe/internal/state"
	"bagpipe/internal/testfabric"
)

// A daemon with a state directory, restarted: the same instances, labels,
// RDs and routes (as its BGP peer sees them) come back before any client
// replays anything, and a client replaying its attachments changes
// nothing.

// startStateNode starts a daemon; stop stops it (once; also at cleanup).
func startStateNode(t *testing.T, local, peer string, bgpPort int, extra string) (*node, func()) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "bgp.conf")
	content := fmt.Sprintf("[BGP]\nlocal_address = %s\npeers = %s\nmy_as = 64512\nbgp_port = %d\n[API]\nhost = %s\nport = 0\n%s",
		local, peer, bgpPort, local, extra)
	if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := config.Load(&config.Flags{Sources: []config.Source{{Path: conf}}}, config.BuiltinDriverOptions()...)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("config: %v %q", err, warnings)
	}
	logs, err := logging.New(logging.Options{Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := d.Stop(ctx); err != nil {
				t.Errorf("stop %s: %v", local, err)
			}
		})
	}
	t.Cleanup(stop)
	return &node{d: d, url: "http://" + d.APIAddr().String()}, stop
}

func stateAttachments() []map[string]any {
	port := func(s string) map[string]any { return map[string]any{"linuxif": s} }
	return []map[string]any{
		{"vpn_type": "ipvpn", "vpn_instance_id": "blue", "mac_address": "52:54:00:00:01:01",
			"ip_address": "10.1.0.1/24", "gateway_ip": "10.1.0.254", "local_port": port("tap-b1"),
			"import_rt": []string{"64512:100"}, "export_rt": []string{"64512:100"}, "instance_description": "tenant blue",
			"description": map[string]any{"vm": "b1", "n": 12}},
		{"vpn_type": "ipvpn", "vpn_instance_id": "blue", "mac_address": "52:54:00:00:01:02",
			"ip_address": "10.1.0.2/24", "gateway_ip": "10.1.0.254", "local_port": port("tap-b2"),
			"import_rt": []string{"64512:100"}, "export_rt": []string{"64512:100"}, "local_pref": 200},
		{"vpn_type": "ipvpn", "vpn_instance_id": "red", "mac_address": "52:54:00:00:02:01",
			"ip_address": "10.2.0.0/24", "advertise_subnet": true, "gateway_ip": "10.2.0.254", "local_port": port("tap-r1"),
			"import_rt": []string{"64512:200", "64512:100"}, "export_rt": []string{"64512:200"},
			"readvertise": map[string]any{"from_rt": []string{"64512:100"}, "to_rt": []string{"64512:201"}}},
		{"vpn_type": "evpn", "vpn_instance_id": "green", "mac_address": "52:54:00:00:03:01",
			"local_port": port("tap-g1"), "import_rt": []string{"64512:300"}, "export_rt": []string{"64512:300"}},
		{"vpn_type": "evpn", "vpn_instance_id": "green", "mac_address": "52:54:00:00:03:02",
			"ip_address": "10.3.0.2", "local_port": port("tap-g2"),
			"import_rt": []string{"64512:300"}, "export_rt": []string{"64512:300"}},
		{"vpn_type": "evpn", "vpn_instance_id": "white", "mac_address": "52:54:00:00:04:01", "vni": 5000,
			"ip_address": "10.4.0.1", "local_port": port("tap-w1"),
			"import_rt": []string{"64512:400"}, "export_rt": []string{"64512:400"}},
	}
}

// stateMarkers are an endpoint more in blue, green and white (not in red:
// each of its endpoints re-advertises blue's routes with its own RD),
// with addresses found in no other route.
func stateMarkers() []map[string]any {
	var out []map[string]any
	for _, i := range []int{0, 3, 5} { // blue, green, white
		m := stateAttachments()[i]
		id := m["vpn_instance_id"].(string)
		m["mac_address"] = m["mac_address"].(string)[:15] + "f0"
		m["local_port"] = map[string]any{"linuxif": "tap-" + id + "-m"}
		ip := markerIPs[id]
		if m["vpn_type"] == "ipvpn" {
			ip += "/24"
		}
		m["ip_address"] = ip
		delete(m, "advertise_subnet")
		delete(m, "description")
		out = append(out, m)
	}
	return out
}

var markerIPs = map[string]string{"blue": "10.1.0.200", "green": "10.3.0.200", "white": "10.4.0.200"}

// markerRoutes: blue's marker and its re-advertisement by red, green's and
// white's MAC/IP routes.
const markerRoutes = 4

func isMarkerRoute(r string) bool {
	for _, ip := range markerIPs {
		if strings.Contains(r, ip) {
			return true
		}
	}
	return false
}

func (n *node) lgJSON(t *testing.T, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(n.get(t, "/looking-glass/"+path)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// instancesView is what the looking glass shows of every instance, minus
// what changes with time (logs, queue lengths) or depends on map order.
func instancesView(t *testing.T, n *node) string {
	t.Helper()
	var names []string
	for _, item := range n.lgJSON(t, "vpns/instances").([]any) {
		names = append(names, item.(map[string]any)["id"].(string))
	}
	sort.Strings(names)
	var out []string
	for _, id := range names {
		v := n.lgJSON(t, "vpns/instances/"+id).(map[string]any)
		for _, k := range []string{"name", "instance_dataplane_id", "route_targets", "gateway_ip", "subnet_prefix_length",
			"description", "readvertise"} {
			b, _ := json.Marshal(v[k])
			out = append(out, fmt.Sprintf("%s %s: %s", id, k, b))
		}
		for _, r := range n.lgJSON(t, "vpns/instances/"+id+"/adv_routes").([]any) {
			for k, v := range r.(map[string]any) {
				delete(v.(map[string]any), "source") // a link, with the API port
				b, _ := json.Marshal(v)
				out = append(out, fmt.Sprintf("%s route %s: %s", id, k, b))
			}
		}
		for port, p := range n.lgJSON(t, "vpns/instances/"+id+"/ports").(map[string]any) {
			for _, ep := range p.(map[string]any)["endpoints"].([]any) {
				b, _ := json.Marshal(ep)
				out = append(out, fmt.Sprintf("%s port %s: %s", id, port, b))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// routesFrom lists the VPN routes n received from source, as JSON lines.
func routesFrom(t *testing.T, n *node, source string) []string {
	t.Helper()
	var out []string
	for _, list := range n.lgJSON(t, "bgp/routes").(map[string]any) {
		for _, r := range list.([]any) {
			for k, v := range r.(map[string]any) {
				b, _ := json.Marshal(v)
				if strings.Contains(string(b), `"`+source+`"`) && !strings.Contains(string(b), `"ipv4/rtc"`) {
					out = append(out, k+" "+string(b))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func waitRoutes(t *testing.T, n *node, source string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs := routesFrom(t, n, source)
		if cond(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("routes from %s: %q", source, rs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func records(d *Daemon) []string {
	var out []string
	for _, r := range d.state.store.Records() {
		out = append(out, r.Key+"="+string(r.Value))
	}
	slices.Sort(out)
	return out
}

func TestStateAcrossRestart(t *testing.T) {
	bgpPort := freePort(t)
	stateDir := t.TempDir()
	extra := "[COMMON]\nstate_dir = " + stateDir + "\n"
	y := startNode(t, "127.0.0.2", "127.0.0.1", bgpPort, "")
	x, stop := startStateNode(t, "127.0.0.1", "127.0.0.2", bgpPort, extra)
	// Y imports every route target of X (RT Constraint).
	y.post(t, "/attach_localport", map[string]any{"vpn_type": "ipvpn", "vpn_instance_id": "y", "mac_address": "52:54:00:00:00:99",
		"ip_address": "10.8.0.1/24", "gateway_ip": "10.8.0.254", "local_port": map[string]any{"linuxif": "tap-y"},
		"import_rt": []string{"64512:100", "64512:200", "64512:201"}, "export_rt": []string{"64512:800"}})
	for i, rt := range []string{"64512:300", "64512:400"} {
		y.post(t, "/attach_localport", map[string]any{"vpn_type": "evpn", "vpn_instance_id": fmt.Sprintf("y%d", i),
			"mac_address": fmt.Sprintf("52:54:00:00:00:9%d", i), "local_port": map[string]any{"linuxif": fmt.Sprintf("tap-y%d", i)},
			"import_rt": []string{rt}, "export_rt": []string{"64512:800"}})
	}
	// Identifiers burned before: the restored ones are not the first free.
	burn := map[string]any{"vpn_type": "evpn", "vpn_instance_id": "gone", "mac_address": "52:54:00:00:09:01",
		"ip_address": "10.9.0.1", "local_port": map[string]any{"linuxif": "tap-x"},
		"import_rt": []string{"64512:900"}, "export_rt": []string{"64512:900"}}
	x.post(t, "/attach_localport", burn)
	for _, req := range stateAttachments() {
		x.post(t, "/attach_localport", req)
	}
	x.post(t, "/detach_localport", burn)
	// 2 blue, 1 red, 1 readvertised, 2 green MAC/IP + 1 multicast, 1 white + 1 multicast.
	const routes = 10
	before := waitRoutes(t, y, "BGP-127.0.0.1", func(rs []string) bool { return len(rs) == routes })
	view := instancesView(t, x)
	recs := records(x.d)
	if len(recs) != 4+len(stateAttachments()) {
		t.Fatalf("records: %q", recs)
	}
	ping := x.get(t, "/ping")
	stop()
	waitRoutes(t, y, "BGP-127.0.0.1", func(rs []string) bool { return len(rs) == 0 })

	// The new run: everything is back before any replay.
	x, stop = startStateNode(t, "127.0.0.1", "127.0.0.2", bgpPort, extra)
	defer stop()
	if p := x.get(t, "/ping"); p == ping {
		t.Errorf("/ping unchanged across the restart (%s): clients would not replay", p)
	}
	if got := instancesView(t, x); got != view {
		t.Fatalf("instances after the restart:\n%s\nbefore:\n%s", got, view)
	}
	after := waitRoutes(t, y, "BGP-127.0.0.1", func(rs []string) bool { return len(rs) == routes })
	if !slices.Equal(after, before) {
		t.Fatalf("routes after the restart:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	if got := records(x.d); !slices.Equal(got, recs) {
		t.Fatalf("records after the restart:\n%q\nbefore:\n%q", got, recs)
	}
	select {
	case <-x.d.state.swept:
	case <-time.After(10 * time.Second):
		t.Error("adopted state not swept after the BGP session came up")
	}

	// The client replays: nothing changes.
	for _, req := range stateAttachments() {
		x.post(t, "/attach_localport", req)
	}
	if got := instancesView(t, x); got != view {
		t.Fatalf("instances after the replay:\n%s\nbefore:\n%s", got, view)
	}
	if got := records(x.d); !slices.Equal(got, recs) {
		t.Fatalf("records after the replay:\n%q\nbefore:\n%q", got, recs)
	}
	// Then marker endpoints: once Y has their routes, it has whatever the
	// replay sent before them (attachments publish their routes before
	// they return, the session sends them in order, and red re-advertises
	// blue's marker after whatever blue sent before it). Apart from the
	// markers' routes, nothing changed.
	for _, m := range stateMarkers() {
		x.post(t, "/attach_localport", m)
	}
	got := waitRoutes(t, y, "BGP-127.0.0.1", func(rs []string) bool { return len(rs) == routes+markerRoutes })
	var rest []string
	for _, r := range got {
		if !isMarkerRoute(r) {
			rest = append(rest, r)
		}
	}
	if !slices.Equal(rest, before) {
		t.Fatalf("routes after the replay (markers aside):\n%s\nbefore:\n%s", strings.Join(rest, "\n"), strings.Join(before, "\n"))
	}
	recs = records(x.d)
	// A bad request is still refused and recorded nowhere.
	bad := stateAttachments()[0]
	bad["vpn_type"] = "evpn"
	b, _ := json.Marshal(bad)
	resp, err := http.Post(x.url+"/attach_localport", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("attach with a conflicting type: %d", resp.StatusCode)
	}
	if got := records(x.d); !slices.Equal(got, recs) {
		t.Fatalf("records changed by a refused attach")
	}
}

// A corrupt state file gives an error in the log and a daemon that
// starts (empty), never a crash.
func TestStateCorruptFileStarts(t *testing.T) {
	bgpPort := freePort(t)
	stateDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(stateDir, state.SnapshotFile), []byte("\x00garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	x, stop := startStateNode(t, "127.0.0.1", "127.0.0.2", bgpPort, "[COMMON]\nstate_dir = "+stateDir+"\n")
	defer stop()
	if n := x.d.manager.InstanceCount(); n != 0 {
		t.Errorf("%d instances restored from garbage", n)
	}
	if ps := x.d.state.store.Problems(); len(ps) != 1 {
		t.Errorf("problems: %v", ps)
	}
	m, _ := filepath.Glob(filepath.Join(stateDir, state.SnapshotFile+".corrupt-*"))
	if len(m) != 1 {
		t.Errorf("damaged snapshot not set aside: %v", m)
	}
	x.post(t, "/attach_localport", stateAttachments()[0])
	if got := records(x.d); len(got) != 2 {
		t.Errorf("records: %q", got)
	}
}

// A full disk: an attachment whose record cannot be written is in effect
// but refused (500, saying why), never acknowledged as if a restart would
// restore it; once the disk has room again, the client's retry is
// acknowledged, and a restart restores every acknowledged attachment.
func TestStateDiskFull(t *testing.T) {
	stateDir := t.TempDir()
	if err := unix.Mount("tmpfs", stateDir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		testfabric.SkipUnlessStrict(t, "cannot mount a tmpfs (needs root): "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(stateDir, unix.MNT_DETACH) }) // after the daemon's stop (registered later)
	extra := "[COMMON]\nstate_dir = " + stateDir + "\n"
	reqs := stateAttachments()
	x, stop := startStateNode(t, "127.0.0.1", "127.0.0.2", freePort(t), extra)
	x.post(t, "/attach_localport", reqs[0])
	// Fill the file system.
	filler := filepath.Join(stateDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 4096); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// An attachment whose record needs more than the page the journal
	// has left.
	big := reqs[1]
	big["description"] = map[string]any{"vm": strings.Repeat("x", 16384)}
	for range 2 { // a client retrying while the disk is full
		status, body := postStatus(t, x.url+"/attach_localport", big)
		if status != http.StatusInternalServerError || !strings.Contains(body, "not written to the state directory") ||
			!strings.Contains(body, "no space left on device") {
			t.Fatalf("attach with the disk full: %d %s", status, body)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The client retries until acknowledged (the state directory tries a
	// snapshot again at most every second).
	for deadline := time.Now().Add(20 * time.Second); ; {
		status, body := postStatus(t, x.url+"/attach_localport", big)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attach once the disk has room again: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.post(t, "/attach_localport", reqs[2])
	recs := records(x.d)
	if len(recs) != 5 { // instances blue and red, 3 endpoints
		t.Fatalf("records: %q", recs)
	}
	stop()
	x, stop = startStateNode(t, "127.0.0.1", "127.0.0.2", freePort(t), extra)
	defer stop()
	if got := records(x.d); !slices.Equal(got, recs) {
		t.Fatalf("records after a restart:\n%q\nbefore:\n%q", got, recs)
	}
	if ps := x.d.state.store.Problems(); len(ps) != 0 {
		t.Errorf("problems: %v", ps)
	}
	if n := len(x.lgJSON(t, "vpns/instances/blue/ports").(map[string]any)); n != 2 {
		t.Errorf("blue has %d ports after the restart, want 2", n)
	}
}

// postStatus posts body as JSON and returns the status and the answer.
func postStatus(t *testing.T, url string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// TestAttachLatencyWithState measures attach latency through the REST API
// (in process, dummy dataplanes), without and with a state directory,
// sequential and from 16 concurrent clients, and the restore time of the
// attachments. BAGPIPE_STATE_LATENCY_N sets the number of ports (default
// 2000; docs/design.md quotes 10,000).
func TestAttachLatencyWithState(t *testing.T) {
	n := 2000
	if s := os.Getenv("BAGPIPE_STATE_LATENCY_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	body := func(i int) []byte {
		b, _ := json.Marshal(map[string]any{"vpn_type": "ipvpn", "vpn_instance_id": fmt.Sprintf("vrf%d", i%100),
			"mac_address": fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i)),
			"ip_address":  fmt.Sprintf("10.%d.%d.%d/24", byte(i>>16), byte(i>>8), byte(i)), "gateway_ip": "10.0.0.254",
			"local_port": map[string]any{"linuxif": fmt.Sprintf("tap%d", i)},
			"import_rt":  []string{fmt.Sprintf("64512:%d", i%100)}, "export_rt": []string{fmt.Sprintf("64512:%d", i%100)}})
		return b
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	post := func(url string, i int) time.Duration {
		start := time.Now()
		resp, err := client.Post(url+"/attach_localport", "application/json", bytes.NewReader(body(i)))
		if err != nil {
			t.Error(err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("attach %d: HTTP %d", i, resp.StatusCode)
		}
		return time.Since(start)
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		slices.Sort(d)
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	run := func(name, extra string, clients int) (*node, func()) {
		x, stop := startStateNode(t, "127.0.0.1", "127.0.0.2", freePort(t), extra)
		lat := make([]time.Duration, n)
		start := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < n; i += clients {
					lat[i] = post(x.url, i)
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		t.Logf("STATE-LATENCY %s clients=%d ports=%d p50=%v p99=%v max=%v rate=%.0f/s", name, clients, n,
			pct(lat, 0.5).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond), pct(lat, 1).Round(time.Microsecond),
			float64(n)/took.Seconds())
		if got := x.d.manager.InstanceCount(); got != min(n, 100) {
			t.Fatalf("%d instances", got)
		}
		return x, stop
	}
	run("no-state", "", 1)
	run("no-state", "", 16)
	dir := t.TempDir()
	x, stop := run("state", "[COMMON]\nstate_dir = "+dir+"\n", 1)
	if got := x.d.state.store.Len(); got != n+min(n, 100) {
		t.Fatalf("%d records, want %d", got, n+min(n, 100))
	}
	run("state", "[COMMON]\nstate_dir = "+t.TempDir()+"\n", 16)
	// Restore time: a new daemon on the first directory.
	stop()
	start := time.Now()
	y, _ := startStateNode(t, "127.0.0.1", "127.0.0.2", freePort(t), "[COMMON]\nstate_dir = "+dir+"\n")
	t.Logf("STATE-RESTORE ports=%d start+restore=%v", n, time.Since(start).Round(time.Millisecond))
	if got := y.d.manager.InstanceCount(); got != min(n, 100) {
		t.Fatalf("%d instances restored", got)
	}
	if l, _ := y.d.manager.Allocated(); l != n+min(n, 100) {
		t.Fatalf("%d labels allocated after the restore, want %d", l, n+min(n, 100))
	}
}
