package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Section names of the bagpipe-bgp configuration.
const (
	SectionBGP    = "BGP"
	SectionAPI    = "API"
	SectionCommon = "COMMON"
)

// DefaultConfigFile is read when no --config-file is given.
const DefaultConfigFile = "/etc/bagpipe-bgp/bgp.conf"

// obsoleteDataplaneSection is the pre-IPVPN/EVPN dataplane section name.
const obsoleteDataplaneSection = "DATAPLANE_DRIVER"

// Config is the validated bagpipe-bgp configuration.
type Config struct {
	BGP    BGPConfig
	API    APIConfig
	Common CommonConfig
	IPVPN  DataplaneConfig
	EVPN   DataplaneConfig
	Log    LogConfig
	// Files lists the configuration files read, in order.
	Files []string

	sections map[string]*Section // by normalised name
	order    []*Section
}

// BGPConfig is the [BGP] section.
type BGPConfig struct {
	// LocalAddress is local_address, resolved when it names an interface.
	LocalAddress netip.Addr
	// LocalAddressRaw is local_address as written (address or interface).
	LocalAddressRaw string
	Peers           []netip.Addr
	// MyAS is the local (and peer) AS; 4-byte AS numbers are accepted.
	MyAS      uint32
	EnableRTC bool
	// Port is bgp_port, the destination port of outgoing BGP sessions.
	Port uint16

	// Not in the reference (docs/operations.md, "BGP graceful restart,
	// MD5, max-prefix, reload").

	// GracefulRestart is graceful_restart (RFC 4724 capability and helper
	// role); GracefulRestartTime is graceful_restart_time, the restart
	// time we announce; GracefulRestartStaleTime is
	// graceful_restart_stale_time, how long the stale routes of a
	// restarted peer wait for its End-of-RIB.
	GracefulRestart          bool
	GracefulRestartTime      time.Duration
	GracefulRestartStaleTime time.Duration
	// MD5Password is md5_password, the TCP MD5 (RFC 2385) password of
	// every peer ("" for none); MD5PeerPasswords overrides it per peer
	// (md5_peer_passwords, "address=password" items).
	MD5Password      string
	MD5PeerPasswords map[netip.Addr]string
	// MaxPrefixes is max_prefixes: the most routes a peer may send (0:
	// no limit).
	MaxPrefixes int
}

// APIConfig is the [API] section (REST API listening address).
type APIConfig struct {
	Host string
	Port uint16
	// MetricsAddr is the "host:port" of a listener serving only /metrics
	// (metrics_host, metrics_port), "" when metrics_port is unset: then
	// /metrics is served on the REST API listener only.
	MetricsAddr string
	// UnixSocket is the path of a Unix-socket listener serving the API
	// ("" when unset), created with UnixSocketMode and UnixSocketGroup
	// ("": the daemon's group).
	UnixSocket      string
	UnixSocketMode  os.FileMode
	UnixSocketGroup string
	// TCP is false when the API is served on the Unix socket only.
	TCP bool
}

// CommonConfig is the [COMMON] section.
type CommonConfig struct {
	RootHelper string
	// RootHelperDaemon is empty when unset.
	RootHelperDaemon string
	// StateDir is the directory where attachments are kept across
	// restarts ("" when unset: nothing is kept, as the reference).
	StateDir string
	// StateSweepTimeout bounds how long dataplane entries adopted at a
	// restart wait for the routes that confirm them.
	StateSweepTimeout time.Duration
}

// DataplaneConfig is a [DATAPLANE_DRIVER_IPVPN] or [DATAPLANE_DRIVER_EVPN]
// section.
type DataplaneConfig struct {
	VPNType VPNType
	// Driver is the normalised driver name: "dummy", "linux" or "ovs" (or a
	// driver name declared through DriverOptions).
	Driver string
	// DriverName is dataplane_driver as written (possibly a legacy alias).
	DriverName string
	// LocalAddress is dataplane_local_address, resolved, or the BGP local
	// address when unset.
	LocalAddress netip.Addr
	// LocalAddressRaw is dataplane_local_address as written, "" when unset.
	LocalAddressRaw string
	// Options gives typed access to every option of the section, including
	// the options declared by the selected driver.
	Options *Section
}

// LogConfig holds the oslo.log options of [DEFAULT], overridden by the
// command line.
type LogConfig struct {
	Debug          bool
	ConfigAppend   string // log_config_append
	DateFormat     string // log_date_format (strftime format)
	Dir            string // log_dir
	File           string // log_file
	UseJournal     bool
	UseJSON        bool
	UseSyslog      bool
	SyslogFacility string // syslog_log_facility
	WatchLogFile   bool
	UseStderr      bool
}

// coreOptions is the schema of the sections bagpipe-bgp always reads.
func coreOptions() map[string][]Option {
	return map[string][]Option{
		DefaultSection: {
			{Name: "debug", Kind: Bool, Default: false, Help: "log at DEBUG level"},
			{Name: "log_config_append", Kind: String, Deprecated: []string{"log_config"}},
			{Name: "log_date_format", Kind: String, Default: "%Y-%m-%d %H:%M:%S"},
			{Name: "log_file", Kind: String, Deprecated: []string{"logfile"}},
			{Name: "log_dir", Kind: String, Deprecated: []string{"logdir"}},
			{Name: "watch_log_file", Kind: Bool, Default: false},
			{Name: "use_syslog", Kind: Bool, Default: false},
			{Name: "use_journal", Kind: Bool, Default: false},
			{Name: "syslog_log_facility", Kind: String, Default: "LOG_USER"},
			{Name: "use_json", Kind: Bool, Default: false},
			{Name: "use_stderr", Kind: Bool, Default: false},
		},
		SectionCommon: {
			{Name: "root_helper", Kind: String, Default: "sudo", Help: "root helper command"},
			{Name: "root_helper_daemon", Kind: String, Help: "root helper daemon application to use when possible"},
			// Not in the reference: state across restarts (docs/operations.md).
			{Name: "state_dir", Kind: String,
				Help: "directory where attachments are kept across restarts (default: none, nothing is kept)"},
			{Name: "state_sweep_timeout", Kind: Int, Default: 120, Bounds: &Bounds{1, 86400},
				Help: "seconds after which dataplane entries adopted at a restart and confirmed by no route are removed, even if a BGP peer is still down"},
		},
		SectionAPI: {
			{Name: "host", Kind: Host, Default: "127.0.0.1", Deprecated: []string{"api_host"},
				Help: "IP address on which the API server should listen"},
			{Name: "port", Kind: Port, Default: 8082, Deprecated: []string{"api_port"},
				Help: "port on which the API server should listen"},
			// Not in the reference: Prometheus metrics (docs/operations.md).
			{Name: "metrics_host", Kind: Host,
				Help: "IP address of the listener serving only /metrics (default: the API host)"},
			{Name: "metrics_port", Kind: Port, Nullable: true,
				Help: "port of a listener serving only /metrics (default: none, /metrics is on the API port)"},
			// Not in the reference: a Unix-socket listener (docs/operations.md).
			{Name: "unix_socket", Kind: String,
				Help: "path of a Unix socket also serving the REST API (default: none)"},
			{Name: "unix_socket_mode", Kind: String, Default: "0660",
				Help: "file permissions of the Unix socket (octal)"},
			{Name: "unix_socket_group", Kind: String,
				Help: "group owning the Unix socket, name or number (default: the daemon's)"},
			{Name: "tcp_listener", Kind: Bool, Default: true,
				Help: "serve the REST API on host:port (false: only on unix_socket, which is then required)"},
		},
		SectionBGP: {
			{Name: "local_address", Kind: IPOrInterface, Required: true, Help: "IP address used for BGP peerings"},
			{Name: "peers", Kind: IPv4List, Default: []netip.Addr{}, Help: "IP addresses of BGP peers"},
			{Name: "my_as", Kind: Int, Required: true, Bounds: &Bounds{1, 1<<32 - 1}, Help: "our BGP Autonomous System"},
			{Name: "enable_rtc", Kind: Bool, Default: true, Help: "enable RT Constraint (RFC4684)"},
			{Name: "bgp_port", Kind: Port, Default: 179, Help: "TCP port of connections to BGP peers"},
			// Not in the reference: graceful restart, TCP MD5, maximum
			// number of prefixes (docs/operations.md).
			{Name: "graceful_restart", Kind: Bool, Default: true,
				Help: "BGP graceful restart (RFC 4724): announce the capability and keep the routes of a restarting peer"},
			{Name: "graceful_restart_time", Kind: Int, Default: 120, Bounds: &Bounds{1, 4095},
				Help: "restart time announced to the peers, in seconds: how long they keep our routes while we restart"},
			{Name: "graceful_restart_stale_time", Kind: Int, Default: 360, Bounds: &Bounds{1, 86400},
				Help: "seconds the stale routes of a restarted peer wait for its End-of-RIB"},
			{Name: "md5_password", Kind: String, Secret: true,
				Help: "TCP MD5 signature (RFC 2385) password of the sessions with every peer (default: none)"},
			{Name: "md5_peer_passwords", Kind: List, Default: []string{}, Secret: true,
				Help: "per-peer TCP MD5 passwords, address=password items overriding md5_password (empty password: none)"},
			{Name: "max_prefixes", Kind: Int, Default: 0, Bounds: &Bounds{0, 1<<31 - 1},
				Help: "most routes a peer may send; more closes the session (0: no limit)"},
		},
	}
}

// dataplaneOptions is the common schema of the dataplane sections.
func dataplaneOptions() []Option {
	return []Option{
		{Name: "dataplane_local_address", Kind: IPOrInterface,
			Help: "IP address to use as next-hop in our route advertisements"},
		{Name: "dataplane_driver", Kind: String, Default: DriverDummy, Help: "dataplane driver"},
	}
}

// lookingGlassSections are the sections shown by the looking glass, in the
// reference order.
var lookingGlassSections = []string{SectionCommon, SectionAPI, SectionBGP, IPVPN.Section(), EVPN.Section()}

// Section returns the section of the given name (matched the oslo way:
// case-insensitively except DEFAULT), nil if it is not a known section.
func (c *Config) Section(name string) *Section {
	return c.sections[normalizeSection(name)]
}

// Dataplane returns the dataplane configuration of a VPN type.
func (c *Config) Dataplane(t VPNType) *DataplaneConfig {
	switch t {
	case IPVPN:
		return &c.IPVPN
	case EVPN:
		return &c.EVPN
	}
	return nil
}

// Effective returns the effective value of every declared option of the
// sections shown by the looking glass config subtree (COMMON, API, BGP,
// DATAPLANE_DRIVER_IPVPN, DATAPLANE_DRIVER_EVPN), nil for unset options.
// Values are JSON-friendly: strings (addresses included), numbers, bools,
// lists of strings and nil. [DEFAULT] is not included, as in the reference.
func (c *Config) Effective() map[string]map[string]any {
	out := make(map[string]map[string]any, len(lookingGlassSections))
	for _, name := range lookingGlassSections {
		if s := c.Section(name); s != nil {
			out[name] = s.Effective()
		}
	}
	return out
}

// Load reads the configuration sources named by flags (see
// Flags.ConfigPaths), validates them against the bagpipe-bgp schema plus
// the options of the selected dataplane drivers, and applies the command
// line overrides. It returns the configuration and the warnings (unknown
// sections and options, deprecated names, obsolete settings), which are
// also logged through log/slog. Invalid values and missing required
// options make it fail with *ValueError errors (joined when several).
func Load(flags *Flags, drivers ...DriverOptions) (*Config, []string, error) {
	if flags == nil {
		flags = &Flags{}
	}
	paths, err := flags.ConfigPaths()
	if err != nil {
		return nil, nil, err
	}
	ini, err := ReadINI(paths...)
	if err != nil {
		return nil, nil, err
	}
	c, warnings, err := build(ini, flags, drivers)
	for _, w := range warnings {
		slog.Warn(w)
	}
	if err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// loader holds the state of one build.
type loader struct {
	ini      *INI
	cfg      *Config
	drivers  driverSet
	filled   map[*Option]bool // options already read
	warnings []string
	errs     []error
}

func (l *loader) warnf(format string, args ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf(format, args...))
}

// build validates the INI content; flags may carry command line overrides.
func build(ini *INI, flags *Flags, decls []DriverOptions) (*Config, []string, error) {
	drivers, err := newDriverSet(decls)
	if err != nil {
		return nil, nil, err
	}
	l := &loader{
		ini:     ini,
		drivers: drivers,
		filled:  map[*Option]bool{},
		cfg:     &Config{Files: ini.Files(), sections: map[string]*Section{}},
	}
	// Declare every section first, so that interpolation references can
	// reach any option (and its default) whatever the section order.
	core := coreOptions()
	for _, name := range []string{DefaultSection, SectionCommon, SectionAPI, SectionBGP} {
		if err := l.addSection(name).declare(core[name]...); err != nil {
			return nil, nil, err
		}
	}
	for _, t := range VPNTypes {
		if err := l.declareDataplane(t); err != nil {
			return nil, nil, err
		}
	}
	for _, s := range l.cfg.order {
		l.fill(s)
	}
	l.applyFlags(flags)
	l.unknownSections()
	if len(l.errs) == 1 {
		return nil, l.warnings, l.errs[0]
	}
	if len(l.errs) > 1 {
		return nil, l.warnings, errors.Join(l.errs...)
	}
	if err := l.typed(); err != nil {
		return nil, l.warnings, err
	}
	return l.cfg, l.warnings, nil
}

func (l *loader) addSection(name string) *Section {
	s := newSection(name)
	l.cfg.sections[normalizeSection(name)] = s
	l.cfg.order = append(l.cfg.order, s)
	return s
}

// declareDataplane declares the section of a VPN type: the common options,
// then those of the driver selected by dataplane_driver.
func (l *loader) declareDataplane(t VPNType) error {
	s := l.addSection(t.Section())
	if err := s.declare(dataplaneOptions()...); err != nil {
		return err
	}
	l.fillOption(s, s.byName["dataplane_driver"])
	name, parsed := s.values["dataplane_driver"].(string)
	driver, known := l.drivers.normalize(t, name)
	if !known {
		if parsed { // else fillOption already reported the error
			l.errs = append(l.errs, l.valueError(s, "dataplane_driver", name,
				"unknown dataplane driver (known: "+strings.Join(l.drivers.names(t), ", ")+")"))
		}
		driver = ""
	}
	if err := s.declare(l.drivers[t][driver]...); err != nil {
		return err
	}
	d := l.cfg.Dataplane(t)
	d.VPNType, d.Driver, d.DriverName, d.Options = t, driver, name, s
	return nil
}

// fill sets every declared option of s not read yet, and warns about the
// undeclared options of s.
func (l *loader) fill(s *Section) {
	for _, o := range s.opts {
		if !l.filled[o] {
			l.fillOption(s, o)
		}
	}
	for _, opt := range l.ini.Options(s.name) {
		switch {
		case s.Declared(opt):
		case l.otherDriverOption(s, opt) != "":
			l.warnings = append(l.warnings, l.otherDriverOption(s, opt))
		default:
			l.warnf("unknown option %s in section [%s] (ignored)", opt, s.name)
		}
	}
}

// otherDriverOption explains why opt, undeclared in the dataplane section
// s, is ignored when it is an option of a driver other than the selected
// one; "" otherwise.
func (l *loader) otherDriverOption(s *Section, opt string) string {
	for _, t := range VPNTypes {
		d := l.cfg.Dataplane(t)
		if d.Options != s || d.Driver == "" {
			continue
		}
		if users := l.drivers.usedBy(t, d.Driver, opt); len(users) > 0 {
			return fmt.Sprintf("option %s in section [%s] is ignored: it is an option of the %s dataplane driver, not of the selected %s driver",
				opt, s.name, strings.Join(users, "/"), d.Driver)
		}
	}
	return ""
}

// fillOption sets the value of one option from the files, or its default.
func (l *loader) fillOption(s *Section, o *Option) {
	l.filled[o] = true
	names := append([]string{o.Name}, o.Deprecated...)
	e, found, file, ok := l.ini.lookupAny(s.name, names...)
	if !ok {
		if o.Required {
			l.errs = append(l.errs, &ValueError{Section: s.name, Option: o.Name, Missing: true})
			return
		}
		s.values[o.Name] = copyValue(o.Default)
		return
	}
	if found != o.Name {
		l.warnf("Option %q from group %q is deprecated. Use option %q from group %q.", found, s.name, o.Name, s.name)
	}
	value, err := l.ini.expand(s.name, e.value, l.refLookup, false)
	if err != nil {
		l.errs = append(l.errs, &ValueError{Section: s.name, Option: o.Name, Value: e.value,
			Reason: "cannot substitute " + err.Error(), File: file, Line: e.line})
		return
	}
	v, err := o.parse(value)
	if err != nil {
		l.errs = append(l.errs, &ValueError{Section: s.name, Option: o.Name, Value: value,
			Reason: err.Error(), File: file, Line: e.line})
		return
	}
	s.raw[o.Name] = value
	s.values[o.Name] = v
}

// refLookup resolves interpolation references: a declared option stands
// for its value in the files or else its default; an undeclared one is
// looked up in the files only.
func (l *loader) refLookup(section, option string) (string, bool) {
	if s := l.cfg.Section(section); s != nil {
		if o, ok := s.byName[option]; ok {
			names := append([]string{o.Name}, o.Deprecated...)
			if e, _, _, ok := l.ini.lookupAny(section, names...); ok {
				return e.value, true
			}
			return formatValue(o.Default), true
		}
	}
	return l.ini.Raw(section, option)
}

func (l *loader) valueError(s *Section, option, value, reason string) *ValueError {
	file, line, _ := l.ini.Location(s.name, option)
	return &ValueError{Section: s.name, Option: option, Value: value, Reason: reason, File: file, Line: line}
}

// unknownSections warns about sections that are not part of the schema.
func (l *loader) unknownSections() {
	for _, name := range l.ini.Sections() {
		switch norm := normalizeSection(name); {
		case l.cfg.sections[norm] != nil:
		case norm == normalizeSection(obsoleteDataplaneSection):
			l.warnf("Config file is obsolete, should have a DATAPLANE_DRIVER_IPVPN section instead of DATAPLANE_DRIVER")
		case strings.EqualFold(name, DefaultSection):
			l.warnf("unknown section [%s] (ignored): the default section must be spelled [DEFAULT]", name)
		default:
			l.warnf("unknown section [%s] (ignored)", name)
		}
	}
}

// applyFlags applies the command line logging options over [DEFAULT] and
// drops a log_file naming a logging configuration file.
func (l *loader) applyFlags(flags *Flags) {
	s := l.cfg.Section(DefaultSection)
	for name, v := range flags.overrides() {
		s.values[name] = v
		delete(s.raw, name)
	}
	if f, _ := s.values["log_file"].(string); strings.HasSuffix(f, ".conf") {
		s.values["log_file"] = nil
		l.warnf("log_file %s ignored: now using oslo.log, specifying a log configuration file should be done with --log-config-append", f)
	}
}

// typed fills the typed views of the configuration and reports the errors
// that involve several options or a value format of ours.
func (l *loader) typed() error {
	var errs []error
	c := l.cfg
	bgp := c.Section(SectionBGP)
	c.BGP = BGPConfig{
		LocalAddress:    bgp.Addr("local_address"),
		LocalAddressRaw: bgp.String("local_address"),
		Peers:           bgp.Addrs("peers"),
		MyAS:            uint32(bgp.Int("my_as")),
		EnableRTC:       bgp.Bool("enable_rtc"),
		Port:            uint16(bgp.Int("bgp_port")),

		GracefulRestart:          bgp.Bool("graceful_restart"),
		GracefulRestartTime:      time.Duration(bgp.Int("graceful_restart_time")) * time.Second,
		GracefulRestartStaleTime: time.Duration(bgp.Int("graceful_restart_stale_time")) * time.Second,
		MD5Password:              bgp.String("md5_password"),
		MaxPrefixes:              bgp.Int("max_prefixes"),
	}
	errs = append(errs, c.BGP.md5Passwords(bgp.List("md5_peer_passwords"))...)
	api := c.Section(SectionAPI)
	c.API = APIConfig{Host: api.String("host"), Port: uint16(api.Int("port")),
		UnixSocket: api.String("unix_socket"), UnixSocketGroup: api.String("unix_socket_group"), TCP: api.Bool("tcp_listener")}
	if mode, err := strconv.ParseUint(api.String("unix_socket_mode"), 8, 32); err != nil || mode > 0o777 {
		errs = append(errs, fmt.Errorf("[API] unix_socket_mode = %q: an octal file mode such as 0660 is required", api.String("unix_socket_mode")))
	} else {
		c.API.UnixSocketMode = os.FileMode(mode)
	}
	if !c.API.TCP && c.API.UnixSocket == "" {
		errs = append(errs, errors.New("[API] tcp_listener = false requires unix_socket"))
	}
	if api.IsSet("metrics_port") {
		host := api.String("metrics_host")
		if host == "" {
			host = c.API.Host
		}
		c.API.MetricsAddr = net.JoinHostPort(host, strconv.Itoa(api.Int("metrics_port")))
	}
	common := c.Section(SectionCommon)
	c.Common = CommonConfig{
		RootHelper:        common.String("root_helper"),
		RootHelperDaemon:  common.String("root_helper_daemon"),
		StateDir:          common.String("state_dir"),
		StateSweepTimeout: time.Duration(common.Int("state_sweep_timeout")) * time.Second,
	}
	for _, t := range VPNTypes {
		d := c.Dataplane(t)
		d.LocalAddress = d.Options.Addr("dataplane_local_address")
		d.LocalAddressRaw = d.Options.String("dataplane_local_address")
		if !d.LocalAddress.IsValid() {
			d.LocalAddress = c.BGP.LocalAddress
		}
	}
	def := c.Section(DefaultSection)
	c.Log = LogConfig{
		Debug:          def.Bool("debug"),
		ConfigAppend:   def.String("log_config_append"),
		DateFormat:     def.String("log_date_format"),
		Dir:            def.String("log_dir"),
		File:           def.String("log_file"),
		UseJournal:     def.Bool("use_journal"),
		UseJSON:        def.Bool("use_json"),
		UseSyslog:      def.Bool("use_syslog"),
		SyslogFacility: def.String("syslog_log_facility"),
		WatchLogFile:   def.Bool("watch_log_file"),
		UseStderr:      def.Bool("use_stderr"),
	}
	return errors.Join(errs...)
}

// copyValue returns a copy of a default value, so that slices are not
// shared with the schema.
func copyValue(v any) any {
	switch v := v.(type) {
	case []string:
		return slices.Clone(v)
	case []netip.Addr:
		return slices.Clone(v)
	}
	return v
}

// defaultConfigDirRoots are the directories searched, in order, for a
// default "bagpipe-bgp.conf.d" config directory (oslo.config
// find_config_dirs). A variable for tests.
var defaultConfigDirRoots = func() []string {
	var roots []string
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".bagpipe-bgp"), home)
	}
	return append(roots, "/etc/bagpipe-bgp", "/etc")
}

// defaultConfigDir returns the first existing default config directory.
func defaultConfigDir() (string, bool) {
	for _, root := range defaultConfigDirRoots() {
		dir := filepath.Join(root, "bagpipe-bgp.conf.d")
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir, true
		}
	}
	return "", false
}

// maxMD5Password is the longest TCP MD5 key Linux accepts.
const maxMD5Password = 80

// md5Passwords checks md5_password and parses md5_peer_passwords. Errors
// never quote a password.
func (b *BGPConfig) md5Passwords(items []string) []error {
	var errs []error
	if len(b.MD5Password) > maxMD5Password {
		errs = append(errs, fmt.Errorf("[BGP] md5_password: at most %d bytes", maxMD5Password))
	}
	for i, it := range items {
		addr, pw, ok := strings.Cut(it, "=")
		a, err := netip.ParseAddr(strings.TrimSpace(addr))
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("[BGP] md5_peer_passwords: item %d is not address=password", i+1))
			continue
		case err != nil || !a.Is4():
			errs = append(errs, fmt.Errorf("[BGP] md5_peer_passwords: item %d: %q is not an IPv4 address", i+1, strings.TrimSpace(addr)))
			continue
		case len(pw) > maxMD5Password:
			errs = append(errs, fmt.Errorf("[BGP] md5_peer_passwords: password of %s: at most %d bytes", a, maxMD5Password))
			continue
		}
		if _, dup := b.MD5PeerPasswords[a]; dup {
			errs = append(errs, fmt.Errorf("[BGP] md5_peer_passwords: %s given twice", a))
			continue
		}
		if b.MD5PeerPasswords == nil {
			b.MD5PeerPasswords = map[netip.Addr]string{}
		}
		b.MD5PeerPasswords[a] = pw
	}
	return errs
}
