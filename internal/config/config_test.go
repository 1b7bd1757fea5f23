package config

import (
	"bagpipe/internal/testfabric"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// minimal holds the required options.
const minimal = "[BGP]\nlocal_address = 10.0.0.1\nmy_as = 64512\n"

// loadString loads content as the only config file.
func loadString(t *testing.T, content string, drivers ...DriverOptions) (*Config, []string, error) {
	t.Helper()
	p := writeFile(t, t.TempDir(), "bgp.conf", content)
	return Load(&Flags{Sources: []Source{{Path: p}}}, drivers...)
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestDefaults(t *testing.T) {
	c, warnings, err := loadString(t, minimal)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
	want := BGPConfig{LocalAddress: addr("10.0.0.1"), LocalAddressRaw: "10.0.0.1", Peers: []netip.Addr{},
		MyAS: 64512, EnableRTC: true, Port: 179,
		GracefulRestart: true, GracefulRestartTime: 120 * time.Second, GracefulRestartStaleTime: 360 * time.Second}
	if !reflect.DeepEqual(c.BGP, want) {
		t.Errorf("BGP = %+v, want %+v", c.BGP, want)
	}
	if want := (APIConfig{Host: "127.0.0.1", Port: 8082, UnixSocketMode: 0o660, TCP: true}); c.API != want {
		t.Errorf("API = %+v, want %+v", c.API, want)
	}
	if want := (CommonConfig{RootHelper: "sudo", StateSweepTimeout: 120 * time.Second}); c.Common != want {
		t.Errorf("Common = %+v, want %+v", c.Common, want)
	}
	for _, d := range []*DataplaneConfig{&c.IPVPN, &c.EVPN} {
		if d.Driver != DriverDummy || d.DriverName != "dummy" || d.LocalAddress != addr("10.0.0.1") || d.LocalAddressRaw != "" {
			t.Errorf("%s dataplane = %+v, want dummy driver using the BGP address", d.VPNType, d)
		}
	}
	wantLog := LogConfig{DateFormat: "%Y-%m-%d %H:%M:%S", SyslogFacility: "LOG_USER"}
	if c.Log != wantLog {
		t.Errorf("Log = %+v, want %+v", c.Log, wantLog)
	}
	wantEffective := map[string]map[string]any{
		"COMMON": {"root_helper": "sudo", "root_helper_daemon": nil, "state_dir": nil, "state_sweep_timeout": 120},
		"API": {"host": "127.0.0.1", "port": 8082, "metrics_host": nil, "metrics_port": nil,
			"unix_socket": nil, "unix_socket_mode": "0660", "unix_socket_group": nil, "tcp_listener": true},
		"BGP": {"local_address": "10.0.0.1", "peers": []string{}, "my_as": 64512,
			"enable_rtc": true, "bgp_port": 179, "graceful_restart": true, "graceful_restart_time": 120,
			"graceful_restart_stale_time": 360, "md5_password": nil, "md5_peer_passwords": []string{}, "max_prefixes": 0},
		"DATAPLANE_DRIVER_IPVPN": {"dataplane_local_address": nil, "dataplane_driver": "dummy"},
		"DATAPLANE_DRIVER_EVPN":  {"dataplane_local_address": nil, "dataplane_driver": "dummy"},
	}
	if got := c.Effective(); !reflect.DeepEqual(got, wantEffective) {
		t.Errorf("Effective() = %#v\nwant %#v", got, wantEffective)
	}
}

// TestOptionValues covers every option kind with good and bad values.
func TestOptionValues(t *testing.T) {
	bgp := func(extra string) string { return minimal + extra + "\n" }
	tests := []struct {
		name    string
		content string
		drivers []DriverOptions
		get     func(c *Config) any
		want    any
		wantErr string
	}{
		// Int with bounds (my_as).
		{name: "my_as 2-byte", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=65535\n",
			get: func(c *Config) any { return c.BGP.MyAS }, want: uint32(65535)},
		{name: "my_as 4-byte", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=4294967295\n",
			get: func(c *Config) any { return c.BGP.MyAS }, want: uint32(4294967295)},
		{name: "my_as not an integer", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=abc\n",
			wantErr: `invalid value "abc" for option my_as in section [BGP]: not an integer`},
		{name: "my_as zero", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=0\n",
			wantErr: `invalid value "0" for option my_as in section [BGP]: out of range 1..4294967295`},
		{name: "my_as too big", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=4294967296\n",
			wantErr: `invalid value "4294967296" for option my_as in section [BGP]: out of range 1..4294967295`},
		{name: "my_as overflow", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=99999999999999999999\n",
			wantErr: `invalid value "99999999999999999999" for option my_as in section [BGP]: out of range 1..4294967295`},
		{name: "my_as empty", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=\n",
			wantErr: `invalid value "" for option my_as in section [BGP]: not an integer`},
		{name: "my_as float", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=1.5\n",
			wantErr: `invalid value "1.5" for option my_as in section [BGP]: not an integer`},

		// Port.
		{name: "bgp_port", content: bgp("bgp_port = 1179"),
			get: func(c *Config) any { return c.BGP.Port }, want: uint16(1179)},
		{name: "bgp_port too big", content: bgp("bgp_port = 65536"),
			wantErr: `invalid value "65536" for option bgp_port in section [BGP]: out of range 0..65535`},
		{name: "bgp_port negative", content: bgp("bgp_port = -1"),
			wantErr: `invalid value "-1" for option bgp_port in section [BGP]: out of range 0..65535`},
		{name: "bgp_port empty", content: bgp("bgp_port ="),
			wantErr: `invalid value "" for option bgp_port in section [BGP]: not an integer`},
		{name: "api port zero", content: minimal + "[API]\nport = 0\n",
			get: func(c *Config) any { return c.API.Port }, want: uint16(0)},

		// Bool.
		{name: "bool yes", content: bgp("enable_rtc = yes"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: true},
		{name: "bool No", content: bgp("enable_rtc = No"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: false},
		{name: "bool ON", content: bgp("enable_rtc = ON"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: true},
		{name: "bool off", content: bgp("enable_rtc = off"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: false},
		{name: "bool 1", content: bgp("enable_rtc = 1"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: true},
		{name: "bool 0", content: bgp("enable_rtc = 0"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: false},
		{name: "bool TRUE", content: bgp("enable_rtc = TRUE"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: true},
		{name: "bool False", content: bgp("enable_rtc = False"), get: func(c *Config) any { return c.BGP.EnableRTC }, want: false},
		{name: "bool invalid", content: bgp("enable_rtc = maybe"),
			wantErr: `invalid value "maybe" for option enable_rtc in section [BGP]: not a boolean (use true/false, yes/no, on/off or 1/0)`},
		{name: "bool empty", content: bgp("enable_rtc ="),
			wantErr: `invalid value "" for option enable_rtc in section [BGP]: not a boolean (use true/false, yes/no, on/off or 1/0)`},

		// IPv4 list.
		{name: "peers", content: bgp("peers = 192.168.0.101, 192.168.0.102,,"),
			get: func(c *Config) any { return c.BGP.Peers }, want: []netip.Addr{addr("192.168.0.101"), addr("192.168.0.102")}},
		{name: "peers empty", content: bgp("peers ="),
			get: func(c *Config) any { return c.BGP.Peers }, want: []netip.Addr{}},
		{name: "peers host name", content: bgp("peers = 192.168.0.101, rr.example.com"),
			wantErr: `invalid value "192.168.0.101, rr.example.com" for option peers in section [BGP]: "rr.example.com" is not an IPv4 address`},
		{name: "peers IPv6", content: bgp("peers = ::1"),
			wantErr: `invalid value "::1" for option peers in section [BGP]: "::1" is not an IPv4 address`},

		// IPv4 address or interface.
		{name: "local_address IPv6", content: "[BGP]\nlocal_address=::1\nmy_as=1\n",
			wantErr: `invalid value "::1" for option local_address in section [BGP]: not an IPv4 address`},
		{name: "local_address empty", content: "[BGP]\nlocal_address=\nmy_as=1\n",
			wantErr: `invalid value "" for option local_address in section [BGP]: empty value: expected an IPv4 address or an interface name`},
		{name: "local_address missing interface", content: "[BGP]\nlocal_address=nosuchif0\nmy_as=1\n",
			wantErr: `invalid value "nosuchif0" for option local_address in section [BGP]: interface nosuchif0 does not exist`},

		// Host.
		{name: "host name", content: minimal + "[API]\nhost = localhost\n", get: func(c *Config) any { return c.API.Host }, want: "localhost"},
		{name: "host fqdn", content: minimal + "[API]\nhost = api-1.example.com.\n", get: func(c *Config) any { return c.API.Host }, want: "api-1.example.com."},
		{name: "host IPv6", content: minimal + "[API]\nhost = ::\n", get: func(c *Config) any { return c.API.Host }, want: "::"},
		{name: "host invalid", content: minimal + "[API]\nhost = bad_host!\n",
			wantErr: `invalid value "bad_host!" for option host in section [API]: not an IP address or host name`},
		{name: "host numeric TLD", content: minimal + "[API]\nhost = 10.0.0\n",
			wantErr: `invalid value "10.0.0" for option host in section [API]: not an IP address or host name`},
		{name: "host leading hyphen", content: minimal + "[API]\nhost = -api\n",
			wantErr: `invalid value "-api" for option host in section [API]: not an IP address or host name`},

		// String.
		{name: "string", content: minimal + "[COMMON]\nroot_helper_daemon = sudo neutron-rootwrap-daemon /etc/bagpipe-bgp/rootwrap.conf\n",
			get: func(c *Config) any { return c.Common.RootHelperDaemon }, want: "sudo neutron-rootwrap-daemon /etc/bagpipe-bgp/rootwrap.conf"},
		{name: "string empty", content: minimal + "[COMMON]\nroot_helper =\n",
			get: func(c *Config) any { return c.Common.RootHelper }, want: ""},

		// Enum (case-sensitive, as oslo.config choices).
		{name: "enum", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\nmpls_over_gre = True\n",
			drivers: BuiltinDriverOptions(),
			get:     func(c *Config) any { return c.IPVPN.Options.String("mpls_over_gre") }, want: "True"},
		{name: "enum wrong case", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\nmpls_over_gre = true\n",
			drivers: BuiltinDriverOptions(),
			wantErr: `invalid value "true" for option mpls_over_gre in section [DATAPLANE_DRIVER_IPVPN]: must be one of: auto, True, False`},
		{name: "enum hash_method", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\nhash_method = sha\n",
			drivers: BuiltinDriverOptions(),
			wantErr: `invalid value "sha" for option hash_method in section [DATAPLANE_DRIVER_IPVPN]: must be one of: hash, dp_hash`},

		// List.
		{name: "list", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\ngre_tunnel_options = packet_type=legacy_l3 , key=flow,,\n",
			drivers: BuiltinDriverOptions(),
			get:     func(c *Config) any { return c.IPVPN.Options.List("gre_tunnel_options") }, want: []string{"packet_type=legacy_l3", "key=flow"}},
		{name: "list quoted", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\ngre_tunnel_options=\"packet_type=legacy_l3\"\n",
			drivers: BuiltinDriverOptions(),
			get:     func(c *Config) any { return c.IPVPN.Options.List("gre_tunnel_options") }, want: []string{"packet_type=legacy_l3"}},

		// Int: nullable and bounded driver options.
		{name: "nullable int empty", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux\nvxlan_dst_port =\n",
			drivers: BuiltinDriverOptions(),
			get:     func(c *Config) any { return c.EVPN.Options.Value("vxlan_dst_port") }, want: nil},
		{name: "nullable int set", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux\nvxlan_dst_port = 8472\n",
			drivers: BuiltinDriverOptions(),
			get:     func(c *Config) any { return c.EVPN.Options.Int("vxlan_dst_port") }, want: 8472},
		{name: "nullable int invalid", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux\nvxlan_dst_port = x\n",
			drivers: BuiltinDriverOptions(),
			wantErr: `invalid value "x" for option vxlan_dst_port in section [DATAPLANE_DRIVER_EVPN]: not an integer`},
		{name: "int bounds", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\ninput_table = 255\n",
			drivers: BuiltinDriverOptions(),
			wantErr: `invalid value "255" for option input_table in section [DATAPLANE_DRIVER_IPVPN]: out of range 0..254`},

		// dataplane_driver names.
		{name: "driver legacy ipvpn alias", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = bagpipe.bgp.vpn.ipvpn.mpls_ovs_dataplane.MPLSOVSDataplaneDriver\n",
			get: func(c *Config) any { return c.IPVPN.Driver }, want: "ovs"},
		{name: "driver legacy evpn alias", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux_vxlan.LinuxVXLANDataplaneDriver\n",
			get: func(c *Config) any { return c.EVPN.Driver }, want: "linux"},
		{name: "driver legacy dummy alias", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = DummyDataplaneDriver\n",
			get: func(c *Config) any { return c.EVPN.Driver + "/" + c.EVPN.DriverName }, want: "dummy/DummyDataplaneDriver"},
		{name: "driver unknown", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = foo\n",
			wantErr: `invalid value "foo" for option dataplane_driver in section [DATAPLANE_DRIVER_IPVPN]: unknown dataplane driver (known: dummy, linux, ovs)`},
		{name: "driver reference error reported once", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = $nosuch\n",
			wantErr: `invalid value "$nosuch" for option dataplane_driver in section [DATAPLANE_DRIVER_IPVPN]: cannot substitute $nosuch: no such option`},
		{name: "driver ipvpn alias in evpn", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = mpls_ovs_dataplane.MPLSOVSDataplaneDriver\n",
			wantErr: `invalid value "mpls_ovs_dataplane.MPLSOVSDataplaneDriver" for option dataplane_driver in section [DATAPLANE_DRIVER_EVPN]: unknown dataplane driver (known: dummy, linux, ovs)`},

		// Interpolation in the schema: defaults and other sections are visible.
		{name: "interpolate default of other section", content: minimal + "[API]\nport = ${BGP.bgp_port}0\n",
			get: func(c *Config) any { return c.API.Port }, want: uint16(1790)},
		{name: "interpolate same section", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=$bgp_port\n",
			get: func(c *Config) any { return c.BGP.MyAS }, want: uint32(179)},
		{name: "interpolate from DEFAULT", content: "[DEFAULT]\nasn = 65000\n" + "[BGP]\nlocal_address=10.0.0.1\nmy_as=$asn\n",
			get: func(c *Config) any { return c.BGP.MyAS }, want: uint32(65000)},
		{name: "interpolated value is validated", content: "[DEFAULT]\nasn = x\n" + "[BGP]\nlocal_address=10.0.0.1\nmy_as=$asn\n",
			wantErr: `invalid value "x" for option my_as in section [BGP]: not an integer`},
		{name: "interpolate bool default", content: minimal + "[COMMON]\nroot_helper = rtc=${BGP.enable_rtc}\n",
			get: func(c *Config) any { return c.Common.RootHelper }, want: "rtc=True"},
		{name: "interpolate unknown", content: "[BGP]\nlocal_address=10.0.0.1\nmy_as=$nosuch\n",
			wantErr: `invalid value "$nosuch" for option my_as in section [BGP]: cannot substitute $nosuch: no such option`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := loadString(t, tt.content, tt.drivers...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant    %s", err, tt.wantErr)
				}
				var ve *ValueError
				if !errors.As(err, &ve) || ve.Line == 0 || ve.File == "" {
					t.Errorf("error %#v should be a *ValueError with a location", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRequiredOptions(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"no local_address", "[BGP]\nmy_as = 1\n", []string{"missing required option local_address in section [BGP]"}},
		{"no my_as", "[BGP]\nlocal_address = 10.0.0.1\n", []string{"missing required option my_as in section [BGP]"}},
		{"empty file", "", []string{
			"missing required option local_address in section [BGP]",
			"missing required option my_as in section [BGP]",
		}},
		{"all errors are reported", "[BGP]\nmy_as = x\n[API]\nport = y\n", []string{
			`invalid value "y" for option port in section [API]: not an integer`,
			"missing required option local_address in section [BGP]",
			`invalid value "x" for option my_as in section [BGP]: not an integer`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadString(t, tt.content)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q\nwant %q", got, tt.want)
			}
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Errorf("error is not a *ValueError: %#v", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name    string
		content string
		drivers []DriverOptions
		want    []string
	}{
		{name: "unknown option", content: minimal + "router_id = 1.2.3.4\n",
			want: []string{"unknown option router_id in section [BGP] (ignored)"}},
		{name: "option name is case-sensitive", content: minimal + "Enable_RTC = false\n",
			want: []string{"unknown option Enable_RTC in section [BGP] (ignored)"}},
		{name: "unknown section", content: minimal + "[FOO]\na = 1\n",
			want: []string{"unknown section [FOO] (ignored)"}},
		{name: "lower-case default section", content: minimal + "[default]\ndebug = true\n",
			want: []string{"unknown section [default] (ignored): the default section must be spelled [DEFAULT]"}},
		{name: "unknown DEFAULT option", content: "[DEFAULT]\ncore_plugin = ml2\n" + minimal,
			want: []string{"unknown option core_plugin in section [DEFAULT] (ignored)"}},
		{name: "obsolete dataplane section", content: minimal + "[DATAPLANE_DRIVER]\ndataplane_driver = dummy\n",
			want: []string{"Config file is obsolete, should have a DATAPLANE_DRIVER_IPVPN section instead of DATAPLANE_DRIVER"}},
		{name: "option of another driver", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = linux\narp_responder = true\nmpls_interface = eth1\n",
			drivers: BuiltinDriverOptions(),
			want:    []string{"option arp_responder in section [DATAPLANE_DRIVER_IPVPN] is ignored: it is an option of the ovs dataplane driver, not of the selected linux driver"}},
		{name: "option of non-selected drivers", content: minimal + "[DATAPLANE_DRIVER_IPVPN]\nmpls_interface = eth1\n",
			drivers: BuiltinDriverOptions(),
			want:    []string{"option mpls_interface in section [DATAPLANE_DRIVER_IPVPN] is ignored: it is an option of the linux/ovs dataplane driver, not of the selected dummy driver"}},
		{name: "driver option without schema", content: minimal + "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux\nvxlan_dst_port = 4789\n",
			want: []string{"unknown option vxlan_dst_port in section [DATAPLANE_DRIVER_EVPN] (ignored)"}},
		{name: "deprecated alias", content: minimal + "[API]\napi_host = 0.0.0.0\n",
			want: []string{`Option "api_host" from group "API" is deprecated. Use option "host" from group "API".`}},
		{name: "log_file naming a logging config", content: "[DEFAULT]\nlog_file = /etc/bagpipe-bgp/log.conf\n" + minimal,
			want: []string{"log_file /etc/bagpipe-bgp/log.conf ignored: now using oslo.log, specifying a log configuration file should be done with --log-config-append"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := loadString(t, tt.content, tt.drivers...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(warnings, tt.want) {
				t.Errorf("warnings = %q\nwant %q", warnings, tt.want)
			}
		})
	}
}

func TestDeprecatedAliases(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		files    []string
		wantHost string
		wantPort uint16
		warnings int
	}{
		{"aliases", []string{minimal + "[API]\napi_host = 0.0.0.0\napi_port = 9000\n"}, "0.0.0.0", 9000, 2},
		{"alias in lower-case section", []string{minimal + "[api]\napi_port = 9000\n"}, "127.0.0.1", 9000, 1},
		{"new name wins in the same file", []string{minimal + "[API]\nport = 9001\napi_port = 9000\n"}, "127.0.0.1", 9001, 0},
		{"later file wins even with the old name", []string{minimal + "[API]\nport = 9001\n", "[API]\napi_port = 9000\n"}, "127.0.0.1", 9000, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flags Flags
			for j, content := range tt.files {
				p := writeFile(t, dir, fmt.Sprintf("%d-%d.conf", i, j), content)
				flags.Sources = append(flags.Sources, Source{Path: p})
			}
			c, warnings, err := Load(&flags)
			if err != nil {
				t.Fatal(err)
			}
			if c.API.Host != tt.wantHost || c.API.Port != tt.wantPort || len(warnings) != tt.warnings {
				t.Errorf("API = %+v, warnings %q; want %s:%d with %d warnings", c.API, warnings, tt.wantHost, tt.wantPort, tt.warnings)
			}
			api := c.Section("api")
			if got := api.Int("api_port"); got != int(tt.wantPort) {
				t.Errorf("Int(api_port) = %d, want the value of port %d", got, tt.wantPort)
			}
		})
	}
}

func TestInterfaceAddresses(t *testing.T) {
	t.Run("loopback interface", func(t *testing.T) {
		c, _, err := loadString(t, "[BGP]\nlocal_address = lo\nmy_as = 1\n[DATAPLANE_DRIVER_EVPN]\ndataplane_local_address = 192.0.2.10\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.BGP.LocalAddress != addr("127.0.0.1") || c.BGP.LocalAddressRaw != "lo" {
			t.Errorf("local_address = %v (%q), want 127.0.0.1 (lo)", c.BGP.LocalAddress, c.BGP.LocalAddressRaw)
		}
		if got := c.Effective()["BGP"]["local_address"]; got != "127.0.0.1" {
			t.Errorf("effective local_address = %#v, want the resolved address", got)
		}
		if c.IPVPN.LocalAddress != addr("127.0.0.1") || c.IPVPN.LocalAddressRaw != "" {
			t.Errorf("IPVPN local address = %v (%q), want the BGP one", c.IPVPN.LocalAddress, c.IPVPN.LocalAddressRaw)
		}
		if c.EVPN.LocalAddress != addr("192.0.2.10") || c.EVPN.Options.String("dataplane_local_address") != "192.0.2.10" {
			t.Errorf("EVPN local address = %v, want 192.0.2.10", c.EVPN.LocalAddress)
		}
	})
	t.Run("dataplane interface", func(t *testing.T) {
		c, _, err := loadString(t, minimal+"[DATAPLANE_DRIVER_IPVPN]\ndataplane_local_address = lo\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.IPVPN.LocalAddress != addr("127.0.0.1") || c.IPVPN.LocalAddressRaw != "lo" || c.IPVPN.Options.Addr("dataplane_local_address") != addr("127.0.0.1") {
			t.Errorf("IPVPN = %+v, want 127.0.0.1 from lo", c.IPVPN)
		}
	})
	t.Run("missing interface", func(t *testing.T) {
		_, _, err := loadString(t, minimal+"[DATAPLANE_DRIVER_EVPN]\ndataplane_local_address = nosuchif0\n")
		want := `invalid value "nosuchif0" for option dataplane_local_address in section [DATAPLANE_DRIVER_EVPN]: interface nosuchif0 does not exist`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
	t.Run("interface without IPv4 address", func(t *testing.T) {
		saved := interfaceResolver
		defer func() { interfaceResolver = saved }()
		interfaceResolver = func(name string) (netip.Addr, error) {
			return netip.Addr{}, fmt.Errorf("no IPv4 address found on interface %s", name)
		}
		_, _, err := loadString(t, "[BGP]\nlocal_address = ifb0\nmy_as = 1\n")
		want := `invalid value "ifb0" for option local_address in section [BGP]: no IPv4 address found on interface ifb0`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
}

func TestInterfaceIPv4(t *testing.T) {
	if a, err := interfaceIPv4("lo"); err != nil || a != addr("127.0.0.1") {
		t.Errorf(`interfaceIPv4("lo") = %v, %v; want 127.0.0.1`, a, err)
	}
	for _, name := range []string{"nosuchif0", "name-longer-than-ifnamsiz"} {
		want := "interface " + name + " does not exist"
		if _, err := interfaceIPv4(name); err == nil || err.Error() != want {
			t.Errorf("interfaceIPv4(%q) error = %v, want %q", name, err, want)
		}
	}
}

func TestDriverOptions(t *testing.T) {
	t.Run("selected driver options are typed and effective", func(t *testing.T) {
		c, warnings, err := loadString(t, minimal+"[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\ninput_table = 3\narp_responder = yes\n", BuiltinDriverOptions()...)
		if err != nil || len(warnings) != 0 {
			t.Fatalf("err = %v, warnings = %q", err, warnings)
		}
		s := c.IPVPN.Options
		if s.Int("input_table") != 3 || s.Int("ovs_table_id_start") != 1 || !s.Bool("arp_responder") ||
			s.String("ovs_bridge") != "br-mpls" || s.String("hash_method") != "dp_hash" || s.IsSet("mpls_interface") {
			t.Errorf("unexpected IPVPN options: %v", s.Effective())
		}
		if !s.FromFile("input_table") || s.FromFile("ovs_bridge") {
			t.Errorf("FromFile: input_table=%v ovs_bridge=%v", s.FromFile("input_table"), s.FromFile("ovs_bridge"))
		}
		eff := c.Effective()["DATAPLANE_DRIVER_IPVPN"]
		want := map[string]any{
			"dataplane_local_address": nil, "dataplane_driver": "ovs",
			"mpls_interface": nil, "mpls_over_gre": "auto", "proxy_arp": false, "arp_responder": true,
			"vxlan_encap": false, "ovs_bridge": "br-mpls", "input_table": 3, "ovs_table_id_start": 1,
			"gre_tunnel": "mpls_gre", "gre_tunnel_options": []string{}, "ovsbr_interfaces_mtu": nil,
			"hash_method": "dp_hash", "hash_method_param": "0", "hash_fields": []string{},
		}
		if !reflect.DeepEqual(eff, want) {
			t.Errorf("effective = %#v\nwant %#v", eff, want)
		}
		if evpn := c.Effective()["DATAPLANE_DRIVER_EVPN"]; len(evpn) != 2 {
			t.Errorf("EVPN dummy driver section = %#v, want only the common options", evpn)
		}
	})
	t.Run("same option name in both sections", func(t *testing.T) {
		c, _, err := loadString(t, minimal+"[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\n[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = ovs\novs_bridge = br-tun2\n", BuiltinDriverOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.IPVPN.Options.String("ovs_bridge") + " " + c.EVPN.Options.String("ovs_bridge"); got != "br-mpls br-tun2" {
			t.Errorf("ovs_bridge = %q, want br-mpls br-tun2", got)
		}
	})
	t.Run("custom driver", func(t *testing.T) {
		vpp := DriverOptions{VPNType: IPVPN, Driver: "vpp", Options: []Option{
			{Name: "socket", Kind: String, Default: "/run/vpp/api.sock"},
			{Name: "workers", Kind: Int, Default: 2, Bounds: &Bounds{1, 64}},
		}}
		c, _, err := loadString(t, minimal+"[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = vpp\nworkers = 4\n", vpp)
		if err != nil {
			t.Fatal(err)
		}
		if c.IPVPN.Driver != "vpp" || c.IPVPN.Options.Int("workers") != 4 || c.IPVPN.Options.String("socket") != "/run/vpp/api.sock" {
			t.Errorf("IPVPN = %+v", c.IPVPN.Options.Effective())
		}
	})
	t.Run("legacy alias in declaration", func(t *testing.T) {
		d := IPVPNOVSOptions
		d.Driver = "mpls_ovs_dataplane.MPLSOVSDataplaneDriver"
		c, _, err := loadString(t, minimal+"[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\n", d)
		if err != nil || !c.IPVPN.Options.Declared("hash_fields") {
			t.Errorf("err = %v; options of the aliased declaration should be declared", err)
		}
	})
	badDecls := []struct {
		name string
		decl []DriverOptions
		want string
	}{
		{"duplicate", []DriverOptions{EVPNOVSOptions, EVPNOVSOptions}, "driver options for evpn driver ovs given twice"},
		{"clash with common option", []DriverOptions{{VPNType: EVPN, Driver: "ovs", Options: []Option{{Name: "dataplane_driver", Kind: String}}}},
			"section [DATAPLANE_DRIVER_EVPN]: option dataplane_driver declared twice"},
		{"bad default", []DriverOptions{{VPNType: EVPN, Driver: "ovs", Options: []Option{{Name: "x", Kind: Int, Default: "1"}}}},
			`section [DATAPLANE_DRIVER_EVPN]: option x: default "1" does not suit kind integer`},
		{"enum default not a choice", []DriverOptions{{VPNType: EVPN, Driver: "ovs", Options: []Option{{Name: "x", Kind: Enum, Choices: []string{"a"}, Default: "b"}}}},
			`section [DATAPLANE_DRIVER_EVPN]: option x: default "b" is not one of its choices`},
		{"unknown VPN type", []DriverOptions{{VPNType: "l3vpn", Driver: "ovs"}}, `driver options for "ovs": unknown VPN type "l3vpn"`},
	}
	for _, tt := range badDecls {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadString(t, minimal+"[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = ovs\n", tt.decl...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSectionAccessors(t *testing.T) {
	c, _, err := loadString(t, minimal+"peers = 10.0.0.2\n")
	if err != nil {
		t.Fatal(err)
	}
	bgp := c.Section("bgp")
	if bgp == nil || bgp.Name() != "BGP" || c.Section("nope") != nil || c.Section("default") != nil || c.Section("DEFAULT") == nil {
		t.Fatalf("Section lookups are not oslo-style")
	}
	if got := bgp.Addrs("peers"); !reflect.DeepEqual(got, []netip.Addr{addr("10.0.0.2")}) {
		t.Errorf("Addrs(peers) = %v", got)
	}
	if got := bgp.Value("my_as"); got != 64512 {
		t.Errorf("Value(my_as) = %#v", got)
	}
	names := []string{}
	for _, o := range bgp.Options() {
		names = append(names, o.Name)
	}
	if want := []string{"local_address", "peers", "my_as", "enable_rtc", "bgp_port", "graceful_restart", "graceful_restart_time",
		"graceful_restart_stale_time", "md5_password", "md5_peer_passwords", "max_prefixes"}; !slices.Equal(names, want) {
		t.Errorf("Options() = %q, want %q", names, want)
	}
	panics := []struct {
		name string
		call func()
		want string
	}{
		{"undeclared", func() { bgp.String("router_id") }, "option router_id is not declared in section [BGP]"},
		{"kind mismatch", func() { bgp.Bool("my_as") }, "option my_as in section [BGP] is of kind integer, not readable with Bool"},
		{"list of int", func() { bgp.List("my_as") }, "not readable with List"},
	}
	for _, tt := range panics {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Errorf("panic = %v, want %q", r, tt.want)
				}
			}()
			tt.call()
		})
	}
}

func TestCommandLineOverrides(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		args     []string
		want     LogConfig
		warnings int
	}{
		{"file debug", "[DEFAULT]\ndebug = true\nuse_syslog = yes\n", nil,
			LogConfig{Debug: true, UseSyslog: true}, 0},
		{"--debug overrides file", "[DEFAULT]\ndebug = false\n", []string{"--debug"},
			LogConfig{Debug: true}, 0},
		{"--nodebug overrides file", "[DEFAULT]\ndebug = true\n", []string{"-d", "--nodebug"},
			LogConfig{}, 0},
		{"log options", "[DEFAULT]\nlogfile = /var/log/a.log\nlog_dir = /tmp\n",
			[]string{"--log-file", "/var/log/b.log", "--use-json", "--syslog-log-facility=LOG_LOCAL0", "--log-date-format", "%H"},
			LogConfig{File: "/var/log/b.log", Dir: "/tmp", UseJSON: true, SyslogFacility: "LOG_LOCAL0", DateFormat: "%H"}, 1},
		{"log file naming a logging config is dropped", "", []string{"--log-file", "/etc/bagpipe-bgp/logging.conf", "--log-config", "/etc/x.ini"},
			LogConfig{ConfigAppend: "/etc/x.ini"}, 1},
		{"file log option overridden to off", "[DEFAULT]\nuse_journal = true\nwatch_log_file = true\n", []string{"--nouse-journal", "--nowatch-log-file"},
			LogConfig{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "bgp.conf", tt.content+minimal)
			flags, err := ParseFlags(append([]string{"--config-file", p}, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			c, warnings, err := Load(flags)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.DateFormat == "" {
				want.DateFormat = "%Y-%m-%d %H:%M:%S"
			}
			if want.SyslogFacility == "" {
				want.SyslogFacility = "LOG_USER"
			}
			if c.Log != want || len(warnings) != tt.warnings {
				t.Errorf("Log = %+v, warnings %q\nwant %+v with %d warnings", c.Log, warnings, want, tt.warnings)
			}
			if got := c.Section(DefaultSection).Bool("debug"); got != want.Debug {
				t.Errorf("[DEFAULT] debug = %v, want the overridden %v", got, want.Debug)
			}
		})
	}
}

// TestShippedTemplate loads the reference's bgp.conf.template, with its
// local_address=eth0 pointed at the loopback interface.
func TestShippedTemplate(t *testing.T) {
	data, err := os.ReadFile("testdata/bgp.conf.template")
	if err != nil {
		t.Fatal(err)
	}
	content := strings.Replace(string(data), "local_address=eth0", "local_address=lo", 1)
	c, warnings, err := loadString(t, content, BuiltinDriverOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if c.BGP.LocalAddress != addr("127.0.0.1") || !slices.Equal(c.BGP.Peers, []netip.Addr{addr("192.168.0.101")}) ||
		c.BGP.MyAS != 64512 || !c.BGP.EnableRTC || c.BGP.Port != 179 {
		t.Errorf("BGP = %+v", c.BGP)
	}
	if c.API.Host != "localhost" || c.API.Port != 8082 {
		t.Errorf("API = %+v", c.API)
	}
	if c.IPVPN.Driver != DriverDummy || c.EVPN.Driver != DriverDummy || c.Common.RootHelper != "sudo" {
		t.Errorf("IPVPN %q, EVPN %q, root helper %q", c.IPVPN.Driver, c.EVPN.Driver, c.Common.RootHelper)
	}
	want := []string{
		"option mpls_interface in section [DATAPLANE_DRIVER_IPVPN] is ignored: it is an option of the linux/ovs dataplane driver, not of the selected dummy driver",
		"option ovsbr_interfaces_mtu in section [DATAPLANE_DRIVER_IPVPN] is ignored: it is an option of the ovs dataplane driver, not of the selected dummy driver",
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q\nwant %q", warnings, want)
	}

	t.Run("with the ovs driver", func(t *testing.T) {
		content := strings.Replace(content, "dataplane_driver = dummy", "dataplane_driver = ovs", 1)
		c, warnings, err := loadString(t, content, BuiltinDriverOptions()...)
		if err != nil || len(warnings) != 0 {
			t.Fatalf("err = %v, warnings = %q", err, warnings)
		}
		if o := c.IPVPN.Options; o.String("mpls_interface") != "*gre*" || o.Int("ovsbr_interfaces_mtu") != 4000 {
			t.Errorf("IPVPN options = %v", o.Effective())
		}
	})
}

// TestInstalledSamples loads the sample files generated by oslo-config-
// generator that the Debian package installs (lower-case section names).
func TestInstalledSamples(t *testing.T) {
	samples, _ := filepath.Glob("/etc/bagpipe-bgp/*.conf")
	samples = slices.DeleteFunc(samples, func(p string) bool {
		return filepath.Base(p) == "rootwrap.conf" || filepath.Base(p) == "bgp.conf"
	})
	if len(samples) == 0 {
		testfabric.SkipUnlessStrict(t, "no sample configuration installed in /etc/bagpipe-bgp (Debian package python3-networking-bagpipe)")
	}
	var flags Flags
	for _, p := range samples {
		flags.Sources = append(flags.Sources, Source{Path: p})
	}
	flags.Sources = append(flags.Sources, Source{Path: writeFile(t, t.TempDir(), "local.conf", "[bgp]\nlocal_address = lo\nmy_as = 64512\n")})
	c, warnings, err := Load(&flags, BuiltinDriverOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
	if c.BGP.LocalAddress != addr("127.0.0.1") || c.API.Port != 8082 {
		t.Errorf("BGP = %+v, API = %+v", c.BGP, c.API)
	}
}

func TestAPIUnixSocketOptions(t *testing.T) {
	for _, tc := range []struct {
		api, err string
	}{
		{"unix_socket = /run/b.sock\nunix_socket_mode = 0600\ntcp_listener = false\n", ""},
		{"unix_socket_mode = 0999\n", "unix_socket_mode"},
		{"unix_socket_mode = 1777\n", "unix_socket_mode"},
		{"tcp_listener = false\n", "requires unix_socket"},
	} {
		_, _, err := loadString(t, "[BGP]\nlocal_address = 10.0.0.1\nmy_as = 64512\n[API]\n"+tc.api)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.api, err, tc.err)
		}
	}
}

// TestBGPReliabilityOptions: graceful restart, TCP MD5 and max-prefix
// options; passwords are hidden from Effective and from error messages.
func TestBGPReliabilityOptions(t *testing.T) {
	c, warnings, err := loadString(t, minimal+`graceful_restart = false
graceful_restart_time = 30
graceful_restart_stale_time = 60
md5_password = s3cret-all
md5_peer_passwords = 10.0.0.2=s3cret-two, 10.0.0.3=
max_prefixes = 5000
`)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("%v %q", err, warnings)
	}
	b := c.BGP
	if b.GracefulRestart || b.GracefulRestartTime != 30*time.Second || b.GracefulRestartStaleTime != time.Minute ||
		b.MD5Password != "s3cret-all" || b.MaxPrefixes != 5000 ||
		!reflect.DeepEqual(b.MD5PeerPasswords, map[netip.Addr]string{addr("10.0.0.2"): "s3cret-two", addr("10.0.0.3"): ""}) {
		t.Errorf("BGP = %+v", b)
	}
	eff := c.Effective()["BGP"]
	if eff["md5_password"] != SecretMask || eff["md5_peer_passwords"] != SecretMask {
		t.Errorf("passwords shown by Effective: %v %v", eff["md5_password"], eff["md5_peer_passwords"])
	}
	for _, bad := range []string{
		"graceful_restart_time = 4096\n",
		"graceful_restart_time = 0\n",
		"max_prefixes = -1\n",
		"md5_password = " + strings.Repeat("x", 81) + "\n",
		"md5_peer_passwords = s3cret-nope\n",
		"md5_peer_passwords = host=s3cret-nope\n",
		"md5_peer_passwords = 10.0.0.2=s3cret-nope, 10.0.0.2=s3cret-nope\n",
	} {
		_, _, err := loadString(t, minimal+bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "xxxx") {
			t.Errorf("%q: the error quotes the password: %v", bad, err)
		}
	}
}
