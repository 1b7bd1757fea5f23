package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// impl is one of the two implementations under test.
type impl struct {
	name string // "ours" or "reference"
	bin  string
	addr netip.Addr // BGP local_address (a loopback address of its own)
}

// daemonConfig is what changes between the daemons a scenario starts.
type daemonConfig struct {
	peer    netip.Addr
	bgpPort int
	rtc     bool
}

// daemon is a running bagpipe-bgp (ours or the reference).
type daemon struct {
	impl    impl
	cmd     *exec.Cmd
	pid     int
	done    chan struct{}
	apiURL  string
	apiAddr string // host:port of the REST API
	logPath string
	client  *http.Client
}

// quiesce flushes dirty pages to disk before a measurement: the
// reference logs about 2.5 kB per route at INFO (hundreds of MB over a
// run), and their writeback would otherwise run during the next
// measurement, on the same 2 cores.
func quiesce() { syscall.Sync() }

// freePort returns a TCP port free on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startDaemon writes a bgp.conf (the same for both implementations: dummy
// dataplanes, INFO logging to a file) and starts the daemon; it returns
// once the REST API answers /ping.
func startDaemon(ctx context.Context, im impl, dc daemonConfig, dir string) (*daemon, error) {
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`[DEFAULT]
debug = False

[BGP]
local_address = %s
peers = %s
my_as = %d
enable_rtc = %v
bgp_port = %d

[API]
host = 127.0.0.1
port = %d

[DATAPLANE_DRIVER_IPVPN]
dataplane_driver = dummy

[DATAPLANE_DRIVER_EVPN]
dataplane_driver = dummy
`, im.addr, dc.peer, feedAS, pyBool(dc.rtc), dc.bgpPort, apiPort)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "bgp.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d := &daemon{
		impl:    im,
		apiURL:  fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		apiAddr: fmt.Sprintf("127.0.0.1:%d", apiPort),
		logPath: filepath.Join(dir, "bagpipe-bgp.log"),
		done:    make(chan struct{}),
		// A new connection per request, as the reference (HTTP/1.0,
		// connection closed) and its clients do.
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	out, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(im.bin, "--config-file", confPath, "--log-file", d.logPath)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	d.pid = d.cmd.Process.Pid
	go func() {
		_ = d.cmd.Wait()
		out.Close()
		close(d.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.get(ctx, "/ping"); err == nil {
			return d, nil
		}
		select {
		case <-d.done:
			b, _ := os.ReadFile(filepath.Join(dir, "output"))
			return nil, fmt.Errorf("%s exited at start: %s", im.name, lastLines(string(b), 20))
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("%s: REST API not answering", im.name)
		}
	}
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM to the daemon (the process this bench started), then
// SIGKILL after a grace period.
func (d *daemon) stop() {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// rss returns the daemon's resident set size (VmRSS) in bytes.
func (d *daemon) rss() (int64, error) { return vmRSS(d.pid) }

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuTime returns the user+system CPU time the daemon used so far.
func (d *daemon) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func (d *daemon) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.apiURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return body, nil
}

// post sends a JSON request and returns the time from the connection
// attempt to the complete response. It speaks just enough HTTP/1.1 over a
// new TCP connection per request (as the Neutron agent's httplib2 client
// does with the reference): one write for the request, then the status
// line, headers and Content-Length body, so that the figure is the
// daemon's and not a heavy client's.
func (d *daemon) post(ctx context.Context, path string, body []byte) (time.Duration, error) {
	var dialer net.Dialer
	if dl, ok := ctx.Deadline(); ok {
		dialer.Deadline = dl
	}
	t0 := time.Now()
	nc, err := dialer.DialContext(ctx, "tcp", d.apiAddr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	req := make([]byte, 0, 256+len(body))
	req = fmt.Appendf(req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, d.apiAddr, len(body))
	req = append(req, body...)
	if _, err := nc.Write(req); err != nil {
		return 0, err
	}
	status, data, err := readResponse(bufio.NewReaderSize(nc, 4096))
	dt := time.Since(t0)
	if err != nil {
		return dt, err
	}
	if status != http.StatusOK {
		return dt, fmt.Errorf("POST %s: HTTP %d: %s", path, status, firstLine(string(data)))
	}
	return dt, nil
}

// readResponse reads an HTTP/1.x response: status, headers, and the body
// (Content-Length bytes, or up to the end of the connection).
func readResponse(br *bufio.Reader) (int, []byte, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, err
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, err
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			if length, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		data, err := io.ReadAll(br)
		return status, data, err
	}
	data := make([]byte, length)
	_, err = io.ReadFull(br, data)
	return status, data, err
}

// firstLine shortens a response body for a message: one line, 300 bytes.
func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// receivedCount returns route_counts.received_routes_count of the looking
// glass summary: the routes the daemon holds from BGP peers (RTC routes
// excluded).
func (d *daemon) receivedCount(ctx context.Context) (int, error) {
	b, err := d.get(ctx, "/looking-glass/summary")
	if err != nil {
		return 0, err
	}
	var s struct {
		RouteCounts struct {
			Received int `json:"received_routes_count"`
		} `json:"route_counts"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, err
	}
	return s.RouteCounts.Received, nil
}

// queueLength returns the "event queue length" of a VPN instance: route
// events the instance's worker has not processed yet.
func (d *daemon) queueLength(ctx context.Context, instance string) (int, error) {
	b, err := d.get(ctx, "/looking-glass/vpns/instances/"+instance)
	if err != nil {
		return 0, err
	}
	var s struct {
		Internals struct {
			Queue *int `json:"event queue length"`
		} `json:"internals"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, err
	}
	if s.Internals.Queue == nil {
		return 0, errors.New("no event queue length in the instance's looking glass")
	}
	return *s.Internals.Queue, nil
}

// trackedEntries returns the number of destinations in the instance's best
// routes (looking glass best_routes), for verification.
func (d *daemon) trackedEntries(ctx context.Context, instance string) (int, error) {
	b, err := d.get(ctx, "/looking-glass/vpns/instances/"+instance+"/best_routes")
	if err != nil {
		return 0, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	return len(m), nil
}

// attachRequest is the JSON body of an attach or detach importing and
// exporting the fed route target.
func attachRequest(vpnType, instance, mac string, ip netip.Addr, port string) []byte {
	return attachRequestRT(vpnType, instance, mac, ip, port, feedRT)
}

// attachRequestRT is attachRequest with route target 64512:rt.
func attachRequestRT(vpnType, instance, mac string, ip netip.Addr, port string, rt uint32) []byte {
	req := map[string]any{
		"vpn_type":        vpnType,
		"vpn_instance_id": instance,
		"mac_address":     mac,
		"ip_address":      ip.String(),
		"local_port":      map[string]any{"linuxif": port},
		"import_rt":       []string{fmt.Sprintf("%d:%d", feedAS, rt)},
		"export_rt":       []string{fmt.Sprintf("%d:%d", feedAS, rt)},
		"gateway_ip":      netip.AddrFrom4([4]byte{192, 168, 255, 254}).String(),
	}
	b, _ := json.Marshal(req)
	return b
}
