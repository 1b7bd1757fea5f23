package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *Flags
		wantErr string
	}{
		{name: "none", args: nil, want: &Flags{}},
		{name: "config files and dirs keep their order",
			args: []string{"--config-file", "a.conf", "--config-dir=d1", "--config-file=b.conf", "--config-dir", "d2"},
			want: &Flags{Sources: []Source{{"a.conf", false}, {"d1", true}, {"b.conf", false}, {"d2", true}}}},
		{name: "debug", args: []string{"--debug"}, want: &Flags{Debug: ptr(true)}},
		{name: "short debug", args: []string{"-d"}, want: &Flags{Debug: ptr(true)}},
		{name: "last of debug/nodebug wins", args: []string{"-d", "--nodebug"}, want: &Flags{Debug: ptr(false)}},
		{name: "log config aliases", args: []string{"--log-config-append", "a"}, want: &Flags{LogConfigAppend: ptr("a")}},
		{name: "log config old name", args: []string{"--log-config=b"}, want: &Flags{LogConfigAppend: ptr("b")}},
		{name: "log config underscore", args: []string{"--log_config", "c"}, want: &Flags{LogConfigAppend: ptr("c")}},
		{name: "log file and dir", args: []string{"--logfile", "/var/log/x", "--logdir=/var/log"},
			want: &Flags{LogFile: ptr("/var/log/x"), LogDir: ptr("/var/log")}},
		{name: "later value wins", args: []string{"--log-file=a", "--log-file=b"}, want: &Flags{LogFile: ptr("b")}},
		{name: "empty value", args: []string{"--log-file="}, want: &Flags{LogFile: ptr("")}},
		{name: "value with equal sign", args: []string{"--log-date-format=%H=%M"}, want: &Flags{LogDateFormat: ptr("%H=%M")}},
		{name: "negative number value", args: []string{"--syslog-log-facility", "-1"}, want: &Flags{SyslogLogFacility: ptr("-1")}},
		{name: "switches", args: []string{"--use-journal", "--use-json", "--use-syslog", "--watch-log-file", "--nouse-json"},
			want: &Flags{UseJournal: ptr(true), UseJSON: ptr(false), UseSyslog: ptr(true), WatchLogFile: ptr(true)}},
		{name: "negated switches", args: []string{"--nouse-journal", "--nouse-syslog", "--nowatch-log-file"},
			want: &Flags{UseJournal: ptr(false), UseSyslog: ptr(false), WatchLogFile: ptr(false)}},
		{name: "unambiguous prefix", args: []string{"--config-f", "x.conf", "--use-jso"},
			want: &Flags{Sources: []Source{{Path: "x.conf"}}, UseJSON: ptr(true)}},
		{name: "help", args: []string{"--help"}, want: &Flags{Help: true}},
		{name: "combined short switches", args: []string{"-dh"}, want: &Flags{Debug: ptr(true), Help: true}},
		{name: "short help stops parsing", args: []string{"positional", "-h", "--bogus"}, want: &Flags{Help: true}},
		{name: "version", args: []string{"--debug", "--version"}, want: &Flags{Debug: ptr(true), Version: true}},

		{name: "positional", args: []string{"foo"}, wantErr: "unrecognized arguments: foo"},
		{name: "unknown options", args: []string{"--bogus", "x", "-x"}, wantErr: "unrecognized arguments: --bogus x -x"},
		{name: "after double dash", args: []string{"--", "--debug"}, wantErr: "unrecognized arguments: -- --debug"},
		{name: "single-dash long option", args: []string{"-debug"}, wantErr: "argument --debug/-d: ignored explicit argument 'ebug'"},
		{name: "short switch with value", args: []string{"-d=1"}, wantErr: "argument --debug/-d: ignored explicit argument '1'"},
		{name: "help with trailing letters", args: []string{"-hx"}, wantErr: "argument -h/--help: ignored explicit argument 'x'"},
		{name: "unknown short option", args: []string{"-x"}, wantErr: "unrecognized arguments: -x"},
		{name: "missing value", args: []string{"--log-file"}, wantErr: "argument --log-file/--logfile: expected one argument"},
		{name: "option as value", args: []string{"--log-file", "--debug"}, wantErr: "argument --log-file/--logfile: expected one argument"},
		{name: "missing dir", args: []string{"--config-d"}, wantErr: "argument --config-dir: expected one argument"},
		{name: "ambiguous prefix", args: []string{"--use"}, wantErr: "ambiguous option: --use could match --use-journal, --use-json, --use-syslog"},
		{name: "ambiguous prefix with value", args: []string{"--log-c=x"}, wantErr: "ambiguous option: --log-c=x could match --log-config-append, --log-config"},
		{name: "switch with value", args: []string{"--debug=true"}, wantErr: "argument --debug/-d: ignored explicit argument 'true'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlags(tt.args)
			if tt.wantErr != "" {
				var fe *FlagError
				if !errors.As(err, &fe) || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFlags(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestFlagsConfigFilesAndDirs(t *testing.T) {
	f, err := ParseFlags([]string{"--config-file", "a", "--config-dir", "d", "--config-file", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.ConfigFiles(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ConfigFiles() = %q", got)
	}
	if got := f.ConfigDirs(); !slices.Equal(got, []string{"d"}) {
		t.Errorf("ConfigDirs() = %q", got)
	}
}

// TestUsage compares the help text with the one of the reference daemon
// (bagpipe-bgp 17.0.0 --help, 80 columns).
func TestUsage(t *testing.T) {
	want, err := os.ReadFile("testdata/bagpipe-bgp-help.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := Usage("bagpipe-bgp"); got != string(want) {
		t.Errorf("Usage() =\n%s\nwant\n%s", got, want)
	}
	if got := usageLine("bagpipe-bgp-cleanup"); got[:len("usage: bagpipe-bgp-cleanup [-h]")] != "usage: bagpipe-bgp-cleanup [-h]" {
		t.Errorf("usage line for another program = %q", got)
	}
}

func TestConfigPaths(t *testing.T) {
	dir := t.TempDir()
	def := writeFile(t, dir, "bgp.conf", minimal)
	a := writeFile(t, dir, "a.conf", "")
	confD := filepath.Join(dir, "conf.d")
	defaultD := filepath.Join(dir, "home", "bagpipe-bgp.conf.d")
	for _, d := range []string{confD, defaultD} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	z := writeFile(t, confD, "z.conf", "")
	y := writeFile(t, confD, "y.conf", "")
	dd := writeFile(t, defaultD, "00.conf", "")
	missing := filepath.Join(dir, "missing.conf")

	tests := []struct {
		name        string
		defaultFile string
		defaultDirs bool // a default bagpipe-bgp.conf.d exists
		sources     []Source
		want        []string
		wantErr     error
	}{
		{name: "default file", defaultFile: def, want: []string{def}},
		{name: "default file and default dir", defaultFile: def, defaultDirs: true, want: []string{def, dd}},
		{name: "config file replaces default", defaultFile: def, sources: []Source{{Path: a}}, want: []string{a}},
		{name: "config dir replaces default dir", defaultFile: def, defaultDirs: true,
			sources: []Source{{Path: confD, Dir: true}}, want: []string{def, y, z}},
		{name: "command line order", defaultFile: def,
			sources: []Source{{Path: confD, Dir: true}, {Path: a}}, want: []string{y, z, a}},
		{name: "missing default file alone", defaultFile: missing, wantErr: fs.ErrNotExist},
		{name: "missing default file with config dir", defaultFile: missing,
			sources: []Source{{Path: confD, Dir: true}}, want: []string{y, z}},
		{name: "missing default file with default dir", defaultFile: missing, defaultDirs: true, want: []string{dd}},
		{name: "missing config dir", defaultFile: def,
			sources: []Source{{Path: filepath.Join(dir, "nodir"), Dir: true}}, wantErr: fs.ErrNotExist},
	}
	savedFiles, savedRoots := defaultConfigFiles, defaultConfigDirRoots
	defer func() { defaultConfigFiles, defaultConfigDirRoots = savedFiles, savedRoots }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defaultConfigFiles = []string{tt.defaultFile}
			defaultConfigDirRoots = func() []string {
				if tt.defaultDirs {
					return []string{filepath.Join(dir, "nohome"), filepath.Join(dir, "home")}
				}
				return nil
			}
			got, err := (&Flags{Sources: tt.sources}).ConfigPaths()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ConfigPaths() = %q\nwant %q", got, tt.want)
			}
		})
	}

	t.Run("missing config file fails Load", func(t *testing.T) {
		_, _, err := Load(&Flags{Sources: []Source{{Path: missing}}})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("Load with nil flags reads the default file", func(t *testing.T) {
		defaultConfigFiles = []string{def}
		defaultConfigDirRoots = func() []string { return nil }
		c, _, err := Load(nil)
		if err != nil || c.BGP.MyAS != 64512 || !slices.Equal(c.Files, []string{def}) {
			t.Errorf("Load(nil) = %+v, %v", c, err)
		}
	})
}
