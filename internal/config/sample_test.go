package config

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// samplePath is the documented sample configuration shipped with the code.
const samplePath = "../../etc/bgp.conf.sample"

// TestSampleLoadsWithoutWarning loads etc/bgp.conf.sample as the daemon
// does: no error, no warning.
func TestSampleLoadsWithoutWarning(t *testing.T) {
	c, warnings, err := Load(&Flags{Sources: []Source{{Path: samplePath}}}, BuiltinDriverOptions()...)
	if err != nil {
		t.Fatalf("the sample does not load: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("the sample gives warnings:\n%s", strings.Join(warnings, "\n"))
	}
	if c.BGP.MyAS != 64512 || len(c.BGP.Peers) != 2 || c.API.Port != 8082 || c.API.MetricsAddr != "" {
		t.Errorf("unexpected values: BGP %+v, API %+v", c.BGP, c.API)
	}
}

var sampleOption = regexp.MustCompile(`^#?([a-z0-9_]+) =(?: (.*))?$`)

// TestSampleDocumentsEveryOption checks that the sample lists every option
// of the schema (daemon and built-in drivers) in its section, with its
// default value: "#name = default", "<None>" when the option is unset.
func TestSampleDocumentsEveryOption(t *testing.T) {
	f, err := os.Open(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string]map[string][]string{} // section -> option -> commented values
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = normalizeSection(line[1 : len(line)-1])
			documented[section] = map[string][]string{}
			continue
		}
		if m := sampleOption.FindStringSubmatch(line); m != nil && section != "" {
			if strings.HasPrefix(line, "#") {
				documented[section][m[1]] = append(documented[section][m[1]], m[2])
			} else if _, ok := documented[section][m[1]]; !ok {
				documented[section][m[1]] = nil // set, default not shown
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	schema := map[string][]Option{}
	for name, opts := range coreOptions() {
		schema[name] = opts
	}
	for _, t := range VPNTypes {
		schema[t.Section()] = append(schema[t.Section()], dataplaneOptions()...)
	}
	for _, d := range BuiltinDriverOptions() {
		schema[d.VPNType.Section()] = append(schema[d.VPNType.Section()], d.Options...)
	}
	for name, opts := range schema {
		sec := documented[normalizeSection(name)]
		if sec == nil {
			t.Errorf("section [%s] is not in the sample", name)
			continue
		}
		for _, o := range opts {
			values, ok := sec[o.Name]
			if !ok {
				t.Errorf("[%s] %s is not documented in the sample", name, o.Name)
				continue
			}
			if o.Required {
				continue
			}
			want := formatValue(o.Default)
			if o.Default == nil {
				want = "<None>"
			}
			if o.Kind == Bool {
				want = strings.ToLower(want)
			}
			found := false
			for _, v := range values {
				found = found || v == want
			}
			if !found {
				t.Errorf("[%s] %s: the sample shows %q, the default is %q", name, o.Name, values, want)
			}
		}
	}
}

func TestMetricsListenerAddress(t *testing.T) {
	for _, tt := range []struct{ api, want string }{
		{"", ""},
		{"metrics_port = 9105\n", "127.0.0.1:9105"},
		{"host = ::1\nmetrics_port = 9105\n", "[::1]:9105"},
		{"metrics_host = 0.0.0.0\nmetrics_port = 9105\n", "0.0.0.0:9105"},
		{"metrics_host = 0.0.0.0\n", ""},
		{"metrics_port =\n", ""},
	} {
		c, warnings, err := loadString(t, minimal+"[API]\n"+tt.api)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%q: %v %q", tt.api, err, warnings)
		}
		if c.API.MetricsAddr != tt.want {
			t.Errorf("%q: MetricsAddr = %q, want %q", tt.api, c.API.MetricsAddr, tt.want)
		}
	}
	if _, _, err := loadString(t, minimal+"[API]\nmetrics_port = 99999\n"); err == nil {
		t.Error("metrics_port = 99999 accepted")
	}
}
