package testfabric

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binary returns the path of one of the project's commands (e.g.
// "bagpipe-bgp"), built once per test process with the race detector off.
func Binary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		buildDir, buildErr = os.MkdirTemp("", "bagpipe-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/...")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

// BagpipeConfig configures one of our daemons on a node.
type BagpipeConfig struct {
	AS        uint32
	Peers     []netip.Addr
	RTC       bool
	APIPort   uint16 // default 8082, on 127.0.0.1 inside the node
	IPVPN     string // dataplane driver, default dummy
	EVPN      string // dataplane driver, default dummy
	Debug     bool
	IPVPNConf string   // extra lines of the [DATAPLANE_DRIVER_IPVPN] section
	ExtraConf string   // appended to bgp.conf
	Env       []string // extra environment of the daemon (e.g. OVS_RUNDIR)
}

// Bagpipe is a bagpipe-bgp daemon running on a node.
type Bagpipe struct {
	t       testing.TB
	node    *Node
	cfg     BagpipeConfig
	conf    string
	proc    *Process
	client  *http.Client
	baseURL string
}

// StartBagpipe writes a bgp.conf for the node and starts bagpipe-bgp in
// its namespace; it returns when the REST API answers /ping.
func StartBagpipe(t testing.TB, node *Node, cfg BagpipeConfig) *Bagpipe {
	t.Helper()
	if cfg.AS == 0 {
		cfg.AS = 64512
	}
	if cfg.APIPort == 0 {
		cfg.APIPort = 8082
	}
	if cfg.IPVPN == "" {
		cfg.IPVPN = "dummy"
	}
	if cfg.EVPN == "" {
		cfg.EVPN = "dummy"
	}
	peers := make([]string, len(cfg.Peers))
	for i, p := range cfg.Peers {
		peers[i] = p.String()
	}
	conf := fmt.Sprintf(`[DEFAULT]
debug = %v

[BGP]
local_address = %s
peers = %s
my_as = %d
enable_rtc = %v

[API]
host = 127.0.0.1
port = %d

[DATAPLANE_DRIVER_IPVPN]
dataplane_driver = %s
%s
[DATAPLANE_DRIVER_EVPN]
dataplane_driver = %s
%s`, cfg.Debug, node.IP(), strings.Join(peers, ","), cfg.AS, cfg.RTC, cfg.APIPort, cfg.IPVPN, cfg.IPVPNConf, cfg.EVPN, cfg.ExtraConf)
	path := filepath.Join(t.TempDir(), "bgp.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Bagpipe{
		t: t, node: node, cfg: cfg, conf: path,
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{DialContext: node.DialContext, DisableKeepAlives: true},
		},
		baseURL: fmt.Sprintf("http://127.0.0.1:%d", cfg.APIPort),
	}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *Bagpipe) start() error {
	cmd := exec.Command(Binary(b.t, "bagpipe-bgp"), "--config-file", b.conf)
	if len(b.cfg.Env) > 0 {
		cmd.Env = append(os.Environ(), b.cfg.Env...)
	}
	p, err := b.node.StartCmd("bagpipe-bgp", cmd)
	if err != nil {
		return err
	}
	b.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			stdout, stderr := p.Output()
			return false, fmt.Errorf("bagpipe-bgp on %s exited: %v\n%s%s", b.node, p.Err(), stdout, stderr)
		}
		_, err := b.Ping()
		return err == nil, nil
	})
}

// Node returns the node the daemon runs on.
func (b *Bagpipe) Node() *Node { return b.node }

// Process returns the daemon process.
func (b *Bagpipe) Process() *Process { return b.proc }

// Ping returns the /ping number.
func (b *Bagpipe) Ping() (string, error) {
	body, code, err := b.do("GET", "/ping", nil)
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("/ping: HTTP %d", code)
	}
	return strings.TrimSpace(string(body)), nil
}

func (b *Bagpipe) do(method, path string, body any) ([]byte, int, error) {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		r = strings.NewReader(string(data))
	}
	req, err := http.NewRequest(method, b.baseURL+path, r)
	if err != nil {
		return nil, 0, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return data, resp.StatusCode, err
}

// Attach posts an attach_localport request and fails the test unless it
// succeeds.
func (b *Bagpipe) Attach(req map[string]any) {
	b.t.Helper()
	b.post("/attach_localport", req)
}

// Detach posts a detach_localport request and fails the test unless it
// succeeds.
func (b *Bagpipe) Detach(req map[string]any) {
	b.t.Helper()
	b.post("/detach_localport", req)
}

func (b *Bagpipe) post(path string, req map[string]any) {
	b.t.Helper()
	body, code, err := b.do("POST", path, req)
	if err != nil {
		b.t.Fatalf("%s on %s: %v", path, b.node, err)
	}
	if code != 200 {
		b.t.Fatalf("%s on %s: HTTP %d: %s", path, b.node, code, body)
	}
}

// Get fetches an API path (e.g. "/metrics") and returns the body and status.
func (b *Bagpipe) Get(path string) ([]byte, int, error) { return b.do("GET", path, nil) }

// Post sends a request and returns the status and body.
func (b *Bagpipe) Post(path string, req any) (int, []byte, error) {
	body, code, err := b.do("POST", path, req)
	return code, body, err
}

// LG fetches a looking glass path (e.g. "vpns/instances/x") and decodes it.
func (b *Bagpipe) LG(path string) (any, error) {
	body, code, err := b.do("GET", "/looking-glass/"+path, nil)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("looking glass %s: HTTP %d: %s", path, code, body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("looking glass %s: %v", path, err)
	}
	return v, nil
}

// WaitLG polls a looking glass path until cond holds on it.
func (b *Bagpipe) WaitLG(ctx context.Context, path string, cond func(any) bool) (any, error) {
	var last any
	var lastErr error
	err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
		last, lastErr = b.LG(path)
		return lastErr == nil && cond(last), nil
	})
	if err != nil {
		data, _ := json.MarshalIndent(last, "", "  ")
		return last, fmt.Errorf("%s on %s: %v (last error %v); last value:\n%s", path, b.node, err, lastErr, data)
	}
	return last, nil
}
