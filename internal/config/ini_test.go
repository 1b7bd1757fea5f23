package config

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Keep tests hermetic: no default file or directory of the host.
	defaultConfigFiles = []string{"/nonexistent/bagpipe-bgp/bgp.conf"}
	defaultConfigDirRoots = func() []string { return nil }
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// writeFile creates dir/name with content and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readString parses content as one INI file.
func readString(t *testing.T, content string) (*INI, error) {
	t.Helper()
	return ReadINI(writeFile(t, t.TempDir(), "test.conf", content))
}

func TestINISyntax(t *testing.T) {
	type kv struct{ section, option, want string }
	tests := []struct {
		name    string
		content string
		want    []kv
		absent  []kv // section/option pairs that must not be set
	}{
		{
			name:    "equal and colon separators, whitespace trimmed",
			content: "[BGP]\nmy_as = 64512\nlocal_address:10.0.0.1\n  \npeers   =   1.1.1.1, 2.2.2.2   \n",
			want:    []kv{{"BGP", "my_as", "64512"}, {"BGP", "local_address", "10.0.0.1"}, {"BGP", "peers", "1.1.1.1, 2.2.2.2"}},
		},
		{
			name:    "first of = and : splits",
			content: "[x]\na = b:c\nd: e=f\n",
			want:    []kv{{"x", "a", "b:c"}, {"x", "d", "e=f"}},
		},
		{
			name:    "hash and semicolon comments",
			content: "# top comment\n[BGP]\n; a comment\n#my_as = 1\nmy_as = 2\n",
			want:    []kv{{"BGP", "my_as", "2"}},
		},
		{
			name:    "inline # is part of the value",
			content: "[x]\na = b # not a comment\n",
			want:    []kv{{"x", "a", "b # not a comment"}},
		},
		{
			name:    "section names are case-insensitive",
			content: "[BGP]\na = 1\n[bgp]\nb = 2\n[Bgp]\na = 3\n",
			want:    []kv{{"BGP", "a", "3"}, {"bgp", "b", "2"}, {"bGp", "a", "3"}},
		},
		{
			name:    "DEFAULT is case-sensitive",
			content: "[default]\na = 1\n",
			want:    []kv{{"default", "a", "1"}},
			absent:  []kv{{"DEFAULT", "a", ""}},
		},
		{
			name:    "DEFAULT is not inherited",
			content: "[DEFAULT]\na = 1\n[BGP]\n",
			want:    []kv{{"DEFAULT", "a", "1"}},
			absent:  []kv{{"BGP", "a", ""}},
		},
		{
			name:    "continuation lines",
			content: "[x]\na = first\n  second\n\tthird\nb = c\n",
			want:    []kv{{"x", "a", "first\nsecond\nthird"}, {"x", "b", "c"}},
		},
		{
			name:    "indented comment is a continuation line",
			content: "[x]\na = first\n  # second\n",
			want:    []kv{{"x", "a", "first\n# second"}},
		},
		{
			name:    "matching quotes are stripped",
			content: "[x]\na = \"quoted # value\"\nb = 'single'\nc = \"mismatched'\nd = \"\ne = \"a\" \"b\"\n",
			want:    []kv{{"x", "a", "quoted # value"}, {"x", "b", "single"}, {"x", "c", "\"mismatched'"}, {"x", "d", ""}, {"x", "e", "a\" \"b"}},
		},
		{
			name:    "empty value",
			content: "[x]\na =\n",
			want:    []kv{{"x", "a", ""}},
		},
		{
			name:    "last occurrence wins",
			content: "[x]\na = 1\na = 2\n",
			want:    []kv{{"x", "a", "2"}},
		},
		{
			name:    "option names are case-sensitive",
			content: "[x]\nMy_AS = 1\n",
			want:    []kv{{"x", "My_AS", "1"}},
			absent:  []kv{{"x", "my_as", ""}},
		},
		{
			name:    "CRLF line endings and BOM",
			content: "\ufeff[x]\r\na = 1\r\n",
			want:    []kv{{"x", "a", "1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readString(t, tt.content)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				got, ok := f.Get(w.section, w.option)
				if !ok || got != w.want {
					t.Errorf("Get(%q, %q) = %q, %v; want %q", w.section, w.option, got, ok, w.want)
				}
			}
			for _, a := range tt.absent {
				if got, ok := f.Get(a.section, a.option); ok {
					t.Errorf("Get(%q, %q) = %q, want unset", a.section, a.option, got)
				}
			}
		})
	}
}

func TestINIParseErrors(t *testing.T) {
	tests := []struct {
		content string
		line    int
		msg     string
	}{
		{"a = 1\n", 1, "section must be started before assignment"},
		{"[x]\njust words\n", 2, "no ':' or '=' found in assignment"},
		{"[x]\n = 1\n", 2, "unexpected continuation line"},
		{"[x]\n\n=1\n", 3, "key cannot be empty"},
		{"[x\n", 1, "invalid section (must end with ])"},
		{"[x] # comment\n", 1, "invalid section (must end with ])"},
		{"[]\n", 1, "empty section name"},
		{"[x]\na = 1\n\n  b\n", 4, "unexpected continuation line"},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			_, err := readString(t, tt.content)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want *ParseError", err)
			}
			if pe.Line != tt.line || pe.Msg != tt.msg || !strings.HasSuffix(pe.File, "test.conf") {
				t.Errorf("got %s:%d %q, want line %d %q", pe.File, pe.Line, pe.Msg, tt.line, tt.msg)
			}
			if want := ":" + strconv.Itoa(tt.line) + ": " + tt.msg; !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestINIMissingFile(t *testing.T) {
	_, err := ReadINI(filepath.Join(t.TempDir(), "absent.conf"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error = %v, want fs.ErrNotExist", err)
	}
}

func TestINISectionsAndOptions(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.conf", "[BGP]\nmy_as = 1\n[API]\n[DEFAULT]\ndebug = true\n")
	b := writeFile(t, dir, "b.conf", "[bgp]\npeers = 1.1.1.1\nmy_as = 2\n[extra]\nx = 1\n")
	f, err := ReadINI(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Sections(), []string{"BGP", "API", "DEFAULT", "extra"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sections() = %q, want %q", got, want)
	}
	if got, want := f.Options("bgp"), []string{"my_as", "peers"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Options(bgp) = %q, want %q", got, want)
	}
	if got := f.Options("API"); len(got) != 0 {
		t.Errorf("Options(API) = %q, want none", got)
	}
	if !f.HasSection("api") || f.HasSection("nope") {
		t.Errorf("HasSection: api=%v nope=%v", f.HasSection("api"), f.HasSection("nope"))
	}
	if file, line, ok := f.Location("BGP", "my_as"); !ok || file != b || line != 3 {
		t.Errorf("Location(BGP, my_as) = %s:%d %v, want %s:3", file, line, ok, b)
	}
	if got := f.Files(); !reflect.DeepEqual(got, []string{a, b}) {
		t.Errorf("Files() = %q", got)
	}
}

func TestINIMergeOrder(t *testing.T) {
	dir := t.TempDir()
	first := writeFile(t, dir, "first.conf", "[BGP]\nmy_as = 1\nlocal_address = 10.0.0.1\n")
	second := writeFile(t, dir, "second.conf", "[bgp]\nmy_as = 2\n")
	confDir := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, confDir, "20-b.conf", "[BGP]\nmy_as = 20\n")
	writeFile(t, confDir, "10-a.conf", "[BGP]\nmy_as = 10\nenable_rtc = false\n")
	writeFile(t, confDir, "99-ignored.ini", "[BGP]\nmy_as = 99\n")

	tests := []struct {
		name    string
		paths   func(t *testing.T) []string
		option  string
		want    string
		wantSet bool
	}{
		{"later file wins", func(*testing.T) []string { return []string{first, second} }, "my_as", "2", true},
		{"order matters", func(*testing.T) []string { return []string{second, first} }, "my_as", "1", true},
		{"earlier file value kept", func(*testing.T) []string { return []string{first, second} }, "local_address", "10.0.0.1", true},
		{"config dir sorted after files", func(t *testing.T) []string {
			files, err := ConfigDirFiles(confDir)
			if err != nil {
				t.Fatal(err)
			}
			return append([]string{first, second}, files...)
		}, "my_as", "20", true},
		{"dir file sets what later dir file does not", func(t *testing.T) []string {
			files, err := ConfigDirFiles(confDir)
			if err != nil {
				t.Fatal(err)
			}
			return files
		}, "enable_rtc", "false", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadINI(tt.paths(t)...)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := f.Get("BGP", tt.option)
			if ok != tt.wantSet || got != tt.want {
				t.Errorf("Get(BGP, %s) = %q, %v; want %q", tt.option, got, ok, tt.want)
			}
		})
	}

	t.Run("ReadDir", func(t *testing.T) {
		f, err := ReadDir(confDir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(confDir, "10-a.conf"), filepath.Join(confDir, "20-b.conf")}
		if got := f.Files(); !reflect.DeepEqual(got, want) {
			t.Errorf("Files() = %q, want %q", got, want)
		}
		if got, _ := f.Get("BGP", "my_as"); got != "20" {
			t.Errorf("my_as = %q, want 20", got)
		}
	})
	t.Run("ReadDir missing", func(t *testing.T) {
		if _, err := ReadDir(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestINIInterpolation(t *testing.T) {
	f, err := readString(t, `[DEFAULT]
base = /srv
host = default-host
[BGP]
host = bgp-host
name = $base/x
other = ${name}-y
own = $host
esc = a$$b \$c $$base
dotted = ${api.port}:$API.port
lone = cost 5$ and $ alone
unknown = $nosuch and ${nosuch}
loop1 = $loop2
loop2 = $loop1
multi = $base
  $host
[api]
port = 8082
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ option, get, expand, expandErr string }{
		{option: "name", get: "/srv/x", expand: "/srv/x"},
		{option: "other", get: "/srv/x-y", expand: "/srv/x-y"},
		{option: "own", get: "bgp-host", expand: "bgp-host"},
		{option: "esc", get: "a$b $c $base", expand: "a$b $c $base"},
		{option: "dotted", get: "8082:8082", expand: "8082:8082"},
		{option: "lone", get: "cost 5$ and $ alone", expand: "cost 5$ and $ alone"},
		{option: "unknown", get: "$nosuch and ${nosuch}", expandErr: "$nosuch: no such option"},
		{option: "loop1", get: "$loop2", expandErr: "reference loop"},
		{option: "multi", get: "/srv\nbgp-host", expand: "/srv\nbgp-host"},
	}
	for _, tt := range tests {
		t.Run(tt.option, func(t *testing.T) {
			if got, _ := f.Get("BGP", tt.option); got != tt.get {
				t.Errorf("Get = %q, want %q", got, tt.get)
			}
			raw, _ := f.Raw("BGP", tt.option)
			got, err := f.Expand("BGP", raw)
			if tt.expandErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expandErr) {
					t.Errorf("Expand error = %v, want %q", err, tt.expandErr)
				}
				return
			}
			if err != nil || got != tt.expand {
				t.Errorf("Expand = %q, %v; want %q", got, err, tt.expand)
			}
		})
	}
	if raw, _ := f.Raw("BGP", "name"); raw != "$base/x" {
		t.Errorf("Raw(BGP, name) = %q, want uninterpolated", raw)
	}
}
