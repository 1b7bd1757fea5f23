package lookingglass

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The golden tests run the tool against a canned looking glass served on
// 127.0.0.1 and compare its output with what the reference Python tool
// printed for the same arguments and documents.
//
// testdata/*-site.txt hold the canned documents: sections headed
// "-- <request URI> <status> --" followed by the body (for a 3xx status, the
// redirection target). daemon-site.txt is a crawl of a real bagpipe-bgp
// 17.0.0 (dummy drivers); edge-site.txt is hand-written for corner cases.
// "{{base}}" stands for the server's "http://127.0.0.1:<port>".
//
// testdata/golden/*.txt hold one case each: a JSON array of arguments on the
// first line ("{{port}}" is the server's port, "{{deadport}}" a port where
// nothing listens), then the expected standard output. Regenerate them from
// the reference tool with
//
//	go test ./internal/cli/lookingglass -run Golden -update-golden=/usr/bin/bagpipe-looking-glass
var updateGolden = flag.String("update-golden", "", "regenerate golden files by running this reference `bagpipe-looking-glass`")

func TestGolden(t *testing.T) {
	srv := serveSite(t, "testdata/daemon-site.txt", "testdata/edge-site.txt")
	dead := deadPort(t)

	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			args, want := readGolden(t, file)
			for i, a := range args {
				a = strings.ReplaceAll(a, "{{deadport}}", dead)
				args[i] = strings.ReplaceAll(a, "{{port}}", srv.port)
			}
			if *updateGolden != "" {
				writeGolden(t, file, srv, dead, runReference(t, args))
				return
			}
			want = strings.ReplaceAll(want, "{{base}}", srv.base)
			want = strings.ReplaceAll(want, "127.0.0.1:{{deadport}}", "127.0.0.1:"+dead)
			var stdout, stderr bytes.Buffer
			if status := Run(args, &stdout, &stderr); status != 0 || stderr.Len() > 0 {
				t.Errorf("exit status %d, stderr %q", status, stderr.String())
			}
			if got := stdout.String(); got != want {
				t.Errorf("output differs from the reference\n--- got:\n%s\n--- want:\n%s", got, want)
			}
		})
	}
}

// site is a canned HTTP server.
type site struct {
	base string // http://127.0.0.1:<port>
	port string
}

type cannedResponse struct {
	status int
	body   string
}

// serveSite serves the documents of the given site files on 127.0.0.1.
// Unknown paths get a 404 with the daemon's plain text body.
func serveSite(t *testing.T, files ...string) *site {
	t.Helper()
	responses := map[string]cannedResponse{}
	for _, f := range files {
		for uri, r := range readSite(t, f) {
			responses[uri] = r
		}
	}
	s := &site{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok := responses[r.RequestURI]
		if !ok {
			resp = cannedResponse{http.StatusNotFound, "404 Not Found\n\nThe resource could not be found.\n\n   "}
		}
		body := strings.ReplaceAll(resp.body, "{{base}}", s.base)
		if resp.status/100 == 3 {
			http.Redirect(w, r, body, resp.status)
			return
		}
		w.WriteHeader(resp.status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	s.base = srv.URL
	_, s.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return s
}

func readSite(t *testing.T, file string) map[string]cannedResponse {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	responses := map[string]cannedResponse{}
	var uri string
	var r cannedResponse
	var body []string
	flush := func() {
		if uri != "" {
			r.body = strings.Join(body, "\n")
			responses[uri] = r
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if header, ok := strings.CutPrefix(line, "-- "); ok && strings.HasSuffix(line, " --") {
			flush()
			fields := strings.Fields(strings.TrimSuffix(header, " --"))
			if len(fields) != 2 {
				t.Fatalf("%s: bad section header %q", file, line)
			}
			status, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatalf("%s: bad status in %q", file, line)
			}
			uri, r, body = fields[0], cannedResponse{status: status}, nil
			continue
		}
		body = append(body, line)
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return responses
}

// deadPort returns a loopback TCP port where nothing listens.
func deadPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func readGolden(t *testing.T, file string) (args []string, output string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	first, output, _ := strings.Cut(string(data), "\n")
	if err := json.Unmarshal([]byte(first), &args); err != nil {
		t.Fatalf("%s: first line must be a JSON array of arguments: %v", file, err)
	}
	return args, output
}

func runReference(t *testing.T, args []string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(*updateGolden, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("reference tool: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

func writeGolden(t *testing.T, file string, s *site, dead, output string) {
	t.Helper()
	data, _ := os.ReadFile(file)
	first, _, _ := strings.Cut(string(data), "\n")
	output = strings.ReplaceAll(output, s.base, "{{base}}")
	output = strings.ReplaceAll(output, "127.0.0.1:"+dead, "127.0.0.1:{{deadport}}")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("%s\n%s", first, output)), 0o644); err != nil {
		t.Fatal(err)
	}
}
