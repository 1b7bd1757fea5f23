package lookingglass

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Never depend on the host's configuration.
	configFile = "/nonexistent/bgp.conf"
	os.Exit(m.Run())
}

// run runs the command with args and returns its exit status and outputs.
func run(args ...string) (status int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	status = Run(args, &out, &errOut)
	return status, out.String(), errOut.String()
}

// The cases below are those where the reference tool crashes with a Python
// traceback, or options it does not have.

func TestNonStringHrefIsNotFollowed(t *testing.T) {
	srv := serveSite(t, "testdata/edge-site.txt")
	status, stdout, stderr := run("--port", srv.port, "--prefix", "edge", "-r", "nonstrid")
	want := " (...)\nx:  (...)\n"
	if status != 0 || stdout != want || stderr != "" {
		t.Errorf("got %d %q %q, want 0 %q", status, stdout, stderr, want)
	}
}

func TestInvalidJSON(t *testing.T) {
	srv := serveSite(t, "testdata/edge-site.txt")
	status, stdout, stderr := run("--port", srv.port, "--prefix", "edge", "badjson")
	if status != 1 || stdout != "" || !strings.Contains(stderr, "invalid JSON at "+srv.base+"/edge/badjson") {
		t.Errorf("got %d %q %q", status, stdout, stderr)
	}
}

func TestRecursionIntoNon200Success(t *testing.T) {
	site := filepath.Join(t.TempDir(), "site.txt")
	os.WriteFile(site, []byte("-- /x/ 200 --\n{\"a\": {\"href\": \"{{base}}/x/empty\"}, \"b\": 1}\n-- /x/empty 204 --\n\n"), 0o644)
	srv := serveSite(t, site)
	status, stdout, _ := run("--port", srv.port, "--prefix", "x", "-r")
	if want := "a:  (ERROR 204)\nb: 1\n"; status != 0 || stdout != want {
		t.Errorf("got %d %q, want %q", status, stdout, want)
	}
}

func TestJSONOption(t *testing.T) {
	srv := serveSite(t, "testdata/edge-site.txt")
	status, stdout, _ := run("--port", srv.port, "--prefix", "edge", "--json", "follow")
	want := `{
  "target": "reached",
  "sub": {
    "href": "` + srv.base + `/edge/target/sub"
  },
  "sibling": {
    "href": "` + srv.base + `/edge/list"
  }
}
`
	if status != 0 || stdout != want {
		t.Errorf("got %d\n%s\nwant\n%s", status, stdout, want)
	}

	// Errors are reported as without --json.
	_, stdout, _ = run("--port", srv.port, "--prefix", "edge", "--json", "missing")
	if !strings.HasPrefix(stdout, "No such looking glass path: missing\n") {
		t.Errorf("404 with --json: %q", stdout)
	}
}

func TestPortFromConfigFile(t *testing.T) {
	srv := serveSite(t, "testdata/edge-site.txt")
	for _, conf := range []string{
		"[api]\nport = " + srv.port + "\n",
		"[API]\napi_port=" + srv.port + "\n",
	} {
		configFile = filepath.Join(t.TempDir(), "bgp.conf")
		os.WriteFile(configFile, []byte(conf), 0o644)
		status, stdout, stderr := run("--prefix", "edge", "scalar")
		if status != 0 || stdout != "just a string\n" {
			t.Errorf("config %q: got %d %q %q", conf, status, stdout, stderr)
		}
	}
}

func TestDefaultPort(t *testing.T) {
	dir := t.TempDir()
	for conf, want := range map[string]int{
		"":                     8082, // no file
		"[BGP]\nmy_as = 1\n":   8082,
		"[API]\nport = 9000\n": 9000,
	} {
		configFile = filepath.Join(dir, "absent.conf")
		if conf != "" {
			configFile = filepath.Join(dir, "bgp.conf")
			os.WriteFile(configFile, []byte(conf), 0o644)
		}
		opts, err := parseArgs(nil, &bytes.Buffer{}, &bytes.Buffer{})
		if err != nil || opts.port != want {
			t.Errorf("config %q: port %v, %v; want %d", conf, opts, err, want)
		}
	}
}

func TestInvalidConfiguredPort(t *testing.T) {
	configFile = filepath.Join(t.TempDir(), "bgp.conf")
	os.WriteFile(configFile, []byte("[API]\nport = http\n"), 0o644)
	status, _, stderr := run("summary")
	if status != 2 || !strings.Contains(stderr, "cannot get the default --port") {
		t.Errorf("got %d %q", status, stderr)
	}
	// An explicit --port does not need the configuration.
	if _, err := parseArgs([]string{"--port", "1"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("explicit --port: %v", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	status, stdout, _ := run("--version")
	if status != 0 || !strings.HasPrefix(stdout, "bagpipe-looking-glass ") {
		t.Errorf("--version: %d %q", status, stdout)
	}
	status, stdout, _ = run("-h")
	for _, opt := range []string{"--server=SERVER", "--port=PORT", "--prefix=PREFIX", "-r, --recurse", "--json", "--version"} {
		if status != 0 || !strings.Contains(stdout, "\n  "+opt) {
			t.Errorf("-h does not list %s:\n%s", opt, stdout)
		}
	}
	status, _, stderr := run("--port", "x")
	if status != 2 || !strings.Contains(stderr, "bagpipe-looking-glass: error: ") {
		t.Errorf("--port x: %d %q", status, stderr)
	}
}
