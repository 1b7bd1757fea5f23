package cmdline

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"bagpipe/internal/version"
)

type testCommand struct {
	*Command
	stdout, stderr bytes.Buffer
	server         string
	recurse        bool
	rts            StringList
}

func newTestCommand() *testCommand {
	c := &testCommand{}
	c.Command = New("tool", "tool [options] path...", &c.stdout, &c.stderr)
	c.StringVar(&c.server, "server", "127.0.0.1", "`IP` address of the server")
	c.BoolVar(&c.recurse, "recurse", false, "recurse down")
	c.Alias("r", "recurse")
	c.Var(&c.rts, "rt", "route target (repeatable)")
	return c
}

func TestParseMixesOptionsAndArguments(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		positional []string
		server     string
		recurse    bool
		rts        []string
	}{
		{nil, nil, "127.0.0.1", false, nil},
		{[]string{"a", "-r", "b", "--server", "s", "c"}, []string{"a", "b", "c"}, "s", true, nil},
		{[]string{"--server=s", "--recurse", "--rt", "1:1", "x", "--rt=2:2"}, []string{"x"}, "s", true, []string{"1:1", "2:2"}},
		{[]string{"a", "--", "-r", "--server", "s"}, []string{"a", "-r", "--server", "s"}, "127.0.0.1", false, nil},
		{[]string{"--server", "--", "a"}, []string{"a"}, "--", false, nil},
		{[]string{"--recurse=false", "-"}, []string{"-"}, "127.0.0.1", false, nil},
	} {
		c := newTestCommand()
		positional, err := c.Parse(tc.args)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(positional, tc.positional) || c.server != tc.server || c.recurse != tc.recurse ||
			!reflect.DeepEqual([]string(c.rts), tc.rts) {
			t.Errorf("Parse(%q) = %q, server %q, recurse %v, rts %q", tc.args, positional, c.server, c.recurse, c.rts)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for args, msg := range map[string]string{
		"--nope":     "no such option: --nope",
		"-x":         "no such option: -x",
		"--server":   "--server option requires an argument",
		"-r=maybe":   `invalid boolean value "maybe" for -r`,
		"a --rt":     "--rt option requires an argument",
		"--recurse=": `invalid boolean value "" for -recurse`,
	} {
		c := newTestCommand()
		_, err := c.Parse(strings.Fields(args))
		if !errors.Is(err, ErrUsage) || ExitStatus(err) != 2 {
			t.Errorf("Parse(%q) error %v, want a usage error", args, err)
		}
		want := "Usage: tool [options] path...\n\ntool: error: " + msg
		if !strings.HasPrefix(c.stderr.String(), want) {
			t.Errorf("Parse(%q) stderr %q, want prefix %q", args, c.stderr.String(), want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		c := newTestCommand()
		_, err := c.Parse([]string{"a", arg})
		if !errors.Is(err, flag.ErrHelp) || ExitStatus(err) != 0 {
			t.Errorf("%s: error %v", arg, err)
		}
		want := `Usage: tool [options] path...

Options:
  -h, --help            show this help message and exit
  -r, --recurse         recurse down
  --rt=RT               route target (repeatable)
  --server=IP           IP address of the server
  --version             show program's version number and exit
`
		if got := c.stdout.String(); got != want {
			t.Errorf("%s printed:\n%s\nwant:\n%s", arg, got, want)
		}
	}
}

func TestHelpWrapsLongDescriptions(t *testing.T) {
	c := newTestCommand()
	c.String("a-very-long-option-name", "", strings.Repeat("word ", 30))
	c.PrintHelp()
	for _, line := range strings.Split(c.stdout.String(), "\n") {
		if len(line) > 79 {
			t.Errorf("line longer than 79 columns: %q", line)
		}
	}
	if !strings.Contains(c.stdout.String(), "\n  --a-very-long-option-name=A_VERY_LONG_OPTION_NAME\n"+strings.Repeat(" ", 24)+"word word") {
		t.Errorf("long option not laid out on two lines:\n%s", c.stdout.String())
	}
}

func TestVersion(t *testing.T) {
	c := newTestCommand()
	_, err := c.Parse([]string{"--version"})
	if !errors.Is(err, ErrVersion) || ExitStatus(err) != 0 {
		t.Errorf("error %v", err)
	}
	if got, want := c.stdout.String(), "tool "+version.Version+"\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}

func TestIsSet(t *testing.T) {
	c := newTestCommand()
	if _, err := c.Parse([]string{"--server", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if !c.IsSet("server") || c.IsSet("rt") {
		t.Errorf("IsSet(server) = %v, IsSet(rt) = %v", c.IsSet("server"), c.IsSet("rt"))
	}
}

func TestAPIPort(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]int{
		"[DEFAULT]\n":                          DefaultAPIPort,
		"[API]\nhost = 127.0.0.1\n":            DefaultAPIPort,
		"[API]\nport = 9999\n":                 9999,
		"[api]\nport=1234\n":                   1234,
		"[API]\napi_port = 4321\n":             4321,
		"[API]\napi_port = 1\nport = 2\n":      2,
		"[API]\nport = 8080\n[API]\nport=81\n": 81,
	} {
		path := filepath.Join(dir, "bgp.conf")
		os.WriteFile(path, []byte(content), 0o644)
		if got, err := APIPort(path); err != nil || got != want {
			t.Errorf("APIPort(%q) = %d, %v; want %d", content, got, err, want)
		}
	}
	for _, content := range []string{"[API]\nport = x\n", "[API]\nport = 65536\n", "[API]\nport = -1\n"} {
		path := filepath.Join(dir, "bad.conf")
		os.WriteFile(path, []byte(content), 0o644)
		if got, err := APIPort(path); err == nil {
			t.Errorf("APIPort(%q) = %d, want an error", content, got)
		}
	}
	if _, err := APIPort(filepath.Join(dir, "missing.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v, want fs.ErrNotExist", err)
	}
}
