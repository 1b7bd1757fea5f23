package impex2dot

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests serve canned looking glass documents (testdata/*.json: per
// server address, the instances list and each instance's object) on
// 127.0.0.1 and 127.0.0.2, on one port as the tool wants, and compare the
// output with golden files (testdata/*.dot) and with the reference tool.

var update = flag.Bool("update", false, "rewrite the golden files testdata/*.dot (and docs/impex2dot-example.svg)")

func TestMain(m *testing.M) {
	configFile = "/nonexistent/bgp.conf" // the default port must not depend on the machine
	os.Exit(m.Run())
}

type canned struct {
	Instances []map[string]any          `json:"instances"`
	Objects   map[string]map[string]any `json:"objects"`
}

// serve serves the canned sites of file and returns the port.
func serve(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var sites map[string]canned
	if err := json.Unmarshal(data, &sites); err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, 0, len(sites))
	for a := range sites {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for range 20 {
		var lns []net.Listener
		port := 0
		for _, a := range addrs {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				break
			}
			port = ln.Addr().(*net.TCPAddr).Port
			lns = append(lns, ln)
		}
		if len(lns) < len(addrs) {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		for i, ln := range lns {
			site := sites[addrs[i]]
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				site.serve(w, r)
			}), ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		}
		return port
	}
	t.Fatal("no free port on the canned server addresses")
	return 0
}

func (c canned) serve(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, s := range segs {
		segs[i], _ = url.PathUnescape(s)
	}
	var v any
	ok := false
	if len(segs) >= 3 && segs[0] == "looking-glass" && segs[1] == "vpns" && segs[2] == "instances" {
		if len(segs) == 3 {
			v, ok = c.Instances, true
		} else if obj, found := c.Objects[segs[3]]; found {
			v, ok = any(obj), true
			for _, k := range segs[4:] {
				m, isMap := v.(map[string]any)
				if !isMap {
					ok = false
					break
				}
				if v, ok = m[k]; !ok {
					break
				}
			}
		}
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error": "No such looking glass object"}`))
		return
	}
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	status := Run(args, &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (create it with go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got:\n%s\n--- want:\n%s", file, got, want)
	}
}

func servers(port int, addrs ...string) []string {
	var args []string
	for _, a := range addrs {
		args = append(args, "--server", a)
	}
	return append(args, "--port", strconv.Itoa(port))
}

func TestGoldenTopology(t *testing.T) {
	port := serve(t, "testdata/topology.json")
	status, out, errOut := run(servers(port, "127.0.0.1", "127.0.0.2")...)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %s", status, errOut)
	}
	golden(t, "testdata/topology.dot", out)
}

func TestGoldenAttractAndQuoting(t *testing.T) {
	port := serve(t, "testdata/attract.json")
	status, out, errOut := run(servers(port, "127.0.0.1")...)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %s", status, errOut)
	}
	golden(t, "testdata/attract.dot", out)
	// Identifiers and labels with special characters are quoted: dot
	// accepts the graph.
	renderWithDot(t, out)
}

func renderWithDot(t *testing.T, dot string) []byte {
	t.Helper()
	bin, err := exec.LookPath("dot")
	if err != nil {
		t.Fatalf("Graphviz's dot is needed (Debian package graphviz, installed by scripts/setup.sh): %v", err)
	}
	cmd := exec.Command(bin, "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	svg, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("dot rejects the graph: %v %s", err, stderr.String())
	}
	return svg
}

// TestSameAsReference runs the reference tool on the same canned sites:
// it prints the same statements (in another order: it iterates Python
// sets).
func TestSameAsReference(t *testing.T) {
	ref, err := exec.LookPath("bagpipe-impex2dot")
	if err == nil {
		if real, _ := filepath.EvalSymlinks(ref); strings.HasPrefix(real, "/usr/bin") || strings.HasPrefix(ref, "/usr/bin") {
			err = nil
		}
	}
	if err != nil {
		t.Fatalf("the reference bagpipe-impex2dot is needed (Debian package python3-networking-bagpipe, installed by scripts/setup.sh): %v", err)
	}
	port := serve(t, "testdata/topology.json")
	args := servers(port, "127.0.0.1", "127.0.0.2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/bagpipe-impex2dot", args...)
	cmd.Env = append(os.Environ(), "NO_PROXY=*")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	refOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference: %v\n%s", err, stderr.String())
	}
	status, out, errOut := run(args...)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %s", status, errOut)
	}
	sorted := func(s string) []string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(lines)
		return lines
	}
	got, want := sorted(out), sorted(string(refOut))
	if !slices.Equal(got, want) {
		t.Errorf("statements differ from the reference's\n--- ours (sorted):\n%s\n--- reference (sorted):\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The reference keeps Python's set order: ours is sorted, the
	// subgraph blocks stay where they are.
	if !strings.HasPrefix(out, "digraph import_export {\n") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("unexpected framing:\n%s", out)
	}
}

func TestSVG(t *testing.T) {
	port := serve(t, "testdata/topology.json")
	file := filepath.Join(t.TempDir(), "impex.svg")
	if *update {
		file = "../../../docs/impex2dot-example.svg"
	}
	status, out, errOut := run(append(servers(port, "127.0.0.1", "127.0.0.2"), "--svg", file)...)
	if status != 0 || errOut != "" || out != "" {
		t.Fatalf("status %d, stdout %q, stderr %s", status, out, errOut)
	}
	svg, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "vpn_127_0_0_1__blue", "rt_64512_100", "VRF", "EVI"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("SVG without %q", want)
		}
	}
	status, out, _ = run(append(servers(port, "127.0.0.1"), "--svg", "-")...)
	if status != 0 || !strings.Contains(out, "<svg") {
		t.Errorf("--svg -: status %d, %.100q", status, out)
	}
}

func TestErrors(t *testing.T) {
	// No server: the reference prints which request failed and fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	status, out, errOut := run(servers(dead, "127.0.0.1")...)
	wantURL := "http://127.0.0.1:" + strconv.Itoa(dead) + "/looking-glass/vpns/instances"
	if status != 1 || out != "Error requesting "+wantURL+"\n" || !strings.Contains(errOut, "connection refused") {
		t.Errorf("no server: %d %q %q", status, out, errOut)
	}

	// A server error fails; a 404 is an empty answer.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/looking-glass/vpns/instances" {
			_, _ = w.Write([]byte(`[{"id": "x", "name": "VRF-1"}]`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/ports") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	status, out, errOut = run(servers(port, "127.0.0.1")...)
	if status != 1 || !strings.HasPrefix(out, "Error requesting http://127.0.0.1:") || !strings.Contains(errOut, "HTTP status 500") {
		t.Errorf("server error: %d %q %q", status, out, errOut)
	}

	status, _, errOut = run("--bogus")
	if status != 2 || !strings.Contains(errOut, "no such option: --bogus") {
		t.Errorf("--bogus: %d %q", status, errOut)
	}
	status, out, _ = run("--version")
	if status != 0 || !strings.HasPrefix(out, "bagpipe-impex2dot ") {
		t.Errorf("--version: %d %q", status, out)
	}
}

// TestDefaults checks the default server (localhost, no "[server]" in the
// labels) and port.
func TestDefaults(t *testing.T) {
	opts, err := parseArgs(nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opts.servers, []string{"localhost"}) || opts.port != 8082 || opts.prefix != "looking-glass" {
		t.Errorf("defaults: %+v", opts)
	}
	g := &graph{servers: []string{"localhost"}, rts: map[string]bool{"rt_1_1": true},
		instances: []*instance{{server: "localhost", id: "v", typ: "VRF", imports: []string{"target:1:1"}}}}
	var b bytes.Buffer
	g.write(&b)
	if !strings.Contains(b.String(), `vpn_localhost__v [label="{<0>VRF\nv|<readv>}",shape="record"];`) {
		t.Errorf("localhost label:\n%s", b.String())
	}
	if u, err := url.Parse("http://" + hostPort("::1") + ":8082/"); err != nil || u.Hostname() != "::1" {
		t.Errorf("IPv6 server: %v %v", u, err)
	}
}
