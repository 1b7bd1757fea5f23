package config

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Flags is the parsed daemon command line (the oslo.config and oslo.log
// options, spec §1.1). Pointer fields are nil when the option was not
// given; given ones override the same option of [DEFAULT].
type Flags struct {
	Help    bool // -h/--help: the caller prints Usage and exits 0
	Version bool // --version: the caller prints "<prog> <version>" and exits 0

	// Sources are the --config-file and --config-dir arguments, in command
	// line order (oslo.config reads them in that order).
	Sources []Source

	Debug             *bool   // --debug/-d, --nodebug
	LogConfigAppend   *string // --log-config-append/--log-config/--log_config
	LogDateFormat     *string // --log-date-format
	LogDir            *string // --log-dir/--logdir
	LogFile           *string // --log-file/--logfile
	UseJournal        *bool   // --use-journal/--nouse-journal
	UseJSON           *bool   // --use-json/--nouse-json
	UseSyslog         *bool   // --use-syslog/--nouse-syslog
	SyslogLogFacility *string // --syslog-log-facility
	WatchLogFile      *bool   // --watch-log-file/--nowatch-log-file
}

// Source is a --config-file (Dir false) or --config-dir (Dir true)
// argument.
type Source struct {
	Path string
	Dir  bool
}

// FlagError is a command line error. Its message is the argparse one,
// e.g. "unrecognized arguments: foo".
type FlagError struct{ Msg string }

func (e *FlagError) Error() string { return e.Msg }

// flagDef describes one command line option.
type flagDef struct {
	names   []string // option strings, the first is the main one
	metavar string   // "" for a switch taking no argument
	set     func(f *Flags, v string)
}

func setBool(p **bool, v bool) func(*Flags, string) {
	return func(*Flags, string) { *p = &v }
}

// flagDefs returns the option table bound to f, in --help order.
func flagDefs(f *Flags) []flagDef {
	str := func(p **string) func(*Flags, string) {
		return func(_ *Flags, v string) { *p = &v }
	}
	return []flagDef{
		{names: []string{"-h", "--help"}, set: func(f *Flags, _ string) { f.Help = true }},
		{names: []string{"--config-dir"}, metavar: "DIR", set: func(f *Flags, v string) {
			f.Sources = append(f.Sources, Source{Path: v, Dir: true})
		}},
		{names: []string{"--config-file"}, metavar: "PATH", set: func(f *Flags, v string) {
			f.Sources = append(f.Sources, Source{Path: v})
		}},
		{names: []string{"--debug", "-d"}, set: setBool(&f.Debug, true)},
		{names: []string{"--log-config-append", "--log-config", "--log_config"}, metavar: "PATH", set: str(&f.LogConfigAppend)},
		{names: []string{"--log-date-format"}, metavar: "DATE_FORMAT", set: str(&f.LogDateFormat)},
		{names: []string{"--log-dir", "--logdir"}, metavar: "LOG_DIR", set: str(&f.LogDir)},
		{names: []string{"--log-file", "--logfile"}, metavar: "PATH", set: str(&f.LogFile)},
		{names: []string{"--nodebug"}, set: setBool(&f.Debug, false)},
		{names: []string{"--nouse-journal"}, set: setBool(&f.UseJournal, false)},
		{names: []string{"--nouse-json"}, set: setBool(&f.UseJSON, false)},
		{names: []string{"--nouse-syslog"}, set: setBool(&f.UseSyslog, false)},
		{names: []string{"--nowatch-log-file"}, set: setBool(&f.WatchLogFile, false)},
		{names: []string{"--syslog-log-facility"}, metavar: "SYSLOG_LOG_FACILITY", set: str(&f.SyslogLogFacility)},
		{names: []string{"--use-journal"}, set: setBool(&f.UseJournal, true)},
		{names: []string{"--use-json"}, set: setBool(&f.UseJSON, true)},
		{names: []string{"--use-syslog"}, set: setBool(&f.UseSyslog, true)},
		{names: []string{"--version"}, set: func(f *Flags, _ string) { f.Version = true }},
		{names: []string{"--watch-log-file"}, set: setBool(&f.WatchLogFile, true)},
	}
}

// ParseFlags parses the daemon command line (without the program name)
// the way Python's argparse does for oslo.config: "--opt value" and
// "--opt=value", unambiguous prefixes of long options, repeatable
// --config-file/--config-dir kept in order, the last occurrence of other
// options winning, and no positional argument. Parsing stops at -h/--help
// or --version, which only set Help or Version.
func ParseFlags(args []string) (*Flags, error) {
	f := &Flags{}
	defs := flagDefs(f)
	var extras []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			// Python 3.11's argparse reports the "--" itself too.
			extras = append(extras, args[i:]...)
			break
		}
		if !looksLikeOption(arg) {
			extras = append(extras, arg)
			continue
		}
		if !strings.HasPrefix(arg, "--") {
			chain, err := shortSwitches(defs, arg)
			if err != nil {
				return nil, err
			}
			if chain == nil {
				extras = append(extras, arg)
				continue
			}
			for _, def := range chain {
				def.set(f, "")
			}
			if f.Help || f.Version {
				return f, nil
			}
			continue
		}
		name, value, hasValue := strings.Cut(arg, "=")
		def, err := findLong(defs, name, arg)
		if err != nil {
			return nil, err
		}
		if def == nil {
			extras = append(extras, arg)
			continue
		}
		if def.metavar == "" {
			if hasValue {
				return nil, explicitArgError(def, value)
			}
			def.set(f, "")
			if f.Help || f.Version {
				return f, nil
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(args) || looksLikeOption(args[i+1]) {
				return nil, &FlagError{fmt.Sprintf("argument %s: expected one argument", strings.Join(def.names, "/"))}
			}
			i++
			value = args[i]
		}
		def.set(f, value)
	}
	if len(extras) > 0 {
		return nil, &FlagError{"unrecognized arguments: " + strings.Join(extras, " ")}
	}
	return f, nil
}

// shortSwitches resolves a single-dash argument: a short switch possibly
// followed by more short switches ("-dh"), as argparse does. It returns
// nil if arg does not start with a known short option.
func shortSwitches(defs []flagDef, arg string) ([]*flagDef, error) {
	name, rest := arg[:2], arg[2:]
	if before, after, ok := strings.Cut(arg, "="); ok && findExact(defs, before) != nil {
		name, rest = before, after // "-d=x": x is an explicit argument
		if rest == "" {
			return nil, explicitArgError(findExact(defs, name), "")
		}
	}
	def := findExact(defs, name)
	if def == nil {
		return nil, nil
	}
	chain := []*flagDef{def}
	for ; rest != ""; rest = rest[1:] {
		next := findExact(defs, "-"+rest[:1])
		if next == nil {
			return nil, explicitArgError(def, rest)
		}
		def = next
		chain = append(chain, def)
	}
	return chain, nil
}

func explicitArgError(def *flagDef, value string) error {
	return &FlagError{fmt.Sprintf("argument %s: ignored explicit argument %s", strings.Join(def.names, "/"), pyRepr(value))}
}

// findExact returns the option having the option string name, nil if none.
func findExact(defs []flagDef, name string) *flagDef {
	for i := range defs {
		if slices.Contains(defs[i].names, name) {
			return &defs[i]
		}
	}
	return nil
}

// findLong returns the long option named exactly name or else the only
// one name is a prefix of; nil if none. arg is the whole argument, for the
// ambiguity error.
func findLong(defs []flagDef, name, arg string) (*flagDef, error) {
	if def := findExact(defs, name); def != nil {
		return def, nil
	}
	var found *flagDef
	var matches []string
	for i := range defs {
		for _, n := range defs[i].names {
			if strings.HasPrefix(n, name) {
				found = &defs[i]
				matches = append(matches, n)
			}
		}
	}
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return found, nil
	}
	return nil, &FlagError{fmt.Sprintf("ambiguous option: %s could match %s", arg, strings.Join(matches, ", "))}
}

// looksLikeOption mirrors argparse: an argument starting with "-" is an
// option unless it is "-", a negative number, or contains a space.
func looksLikeOption(arg string) bool {
	if len(arg) < 2 || arg[0] != '-' {
		return false
	}
	if _, err := strconv.ParseFloat(arg, 64); err == nil {
		return false
	}
	return !strings.Contains(arg, " ")
}

// pyRepr quotes s like Python's repr of a simple string.
func pyRepr(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// ConfigFiles returns the --config-file arguments, in order.
func (f *Flags) ConfigFiles() []string { return f.sourcePaths(false) }

// ConfigDirs returns the --config-dir arguments, in order.
func (f *Flags) ConfigDirs() []string { return f.sourcePaths(true) }

func (f *Flags) sourcePaths(dir bool) []string {
	var out []string
	for _, s := range f.Sources {
		if s.Dir == dir {
			out = append(out, s.Path)
		}
	}
	return out
}

// defaultConfigFiles are read when no --config-file is given. A variable
// for tests.
var defaultConfigFiles = []string{DefaultConfigFile}

// ConfigPaths returns the configuration files to read, in order, the way
// oslo.config does for bagpipe-bgp:
//
//  1. /etc/bagpipe-bgp/bgp.conf, unless a --config-file is given;
//  2. the first existing bagpipe-bgp.conf.d directory of ~/.bagpipe-bgp,
//     ~, /etc/bagpipe-bgp and /etc, unless a --config-dir is given;
//  3. the --config-file files and the "*.conf" files of the --config-dir
//     directories, in command line order.
//
// A missing --config-file or --config-dir is an error. Unlike oslo.config,
// a missing default file is only an error when nothing else is read, i.e.
// when no --config-dir is given and no default config directory exists.
func (f *Flags) ConfigPaths() ([]string, error) {
	var paths, missing []string
	if len(f.ConfigFiles()) == 0 {
		for _, p := range defaultConfigFiles {
			if _, err := os.Stat(p); err == nil {
				paths = append(paths, p)
			} else {
				missing = append(missing, p)
			}
		}
	}
	if len(f.ConfigDirs()) == 0 {
		if dir, ok := defaultConfigDir(); ok {
			files, err := ConfigDirFiles(dir)
			if err != nil {
				return nil, err
			}
			paths = append(paths, files...)
		}
	}
	for _, s := range f.Sources {
		if !s.Dir {
			paths = append(paths, expandHome(s.Path))
			continue
		}
		files, err := ConfigDirFiles(s.Path)
		if err != nil {
			return nil, err
		}
		paths = append(paths, files...)
	}
	if len(paths) == 0 && len(missing) > 0 && len(f.ConfigDirs()) == 0 {
		return nil, fmt.Errorf("config file %s not found (use --config-file or --config-dir): %w",
			strings.Join(missing, ", "), fs.ErrNotExist)
	}
	return paths, nil
}

// overrides returns the [DEFAULT] option values set on the command line.
func (f *Flags) overrides() map[string]any {
	out := map[string]any{}
	for name, p := range map[string]*bool{
		"debug": f.Debug, "use_journal": f.UseJournal, "use_json": f.UseJSON,
		"use_syslog": f.UseSyslog, "watch_log_file": f.WatchLogFile,
	} {
		if p != nil {
			out[name] = *p
		}
	}
	for name, p := range map[string]*string{
		"log_config_append": f.LogConfigAppend, "log_date_format": f.LogDateFormat,
		"log_dir": f.LogDir, "log_file": f.LogFile, "syslog_log_facility": f.SyslogLogFacility,
	} {
		if p != nil {
			out[name] = *p
		}
	}
	return out
}

// Usage returns the --help text of the daemon (the oslo.config one).
func Usage(prog string) string {
	return usageLine(prog) + "\n\n" + optionsHelp
}

// usageLine wraps the usage synopsis the way argparse does (78 columns).
func usageLine(prog string) string {
	const width = 78
	parts := []string{prog}
	for _, d := range flagDefs(&Flags{}) {
		p := d.names[0]
		if d.metavar != "" {
			p += " " + d.metavar
		}
		parts = append(parts, "["+p+"]")
	}
	prefix := "usage: "
	indent := strings.Repeat(" ", len(prefix)+len(prog)+1)
	var lines []string
	var line []string
	lineLen := len(prefix) - 1
	for _, p := range parts {
		if lineLen+1+len(p) > width && len(line) > 0 {
			lines = append(lines, indent+strings.Join(line, " "))
			line, lineLen = nil, len(indent)-1
		}
		line = append(line, p)
		lineLen += len(p) + 1
	}
	lines = append(lines, indent+strings.Join(line, " "))
	lines[0] = prefix + lines[0][len(indent):]
	return strings.Join(lines, "\n")
}

const optionsHelp = `options:
  -h, --help            show this help message and exit
  --config-dir DIR      Path to a config directory to pull ` + "`*.conf`" + ` files
                        from. This file set is sorted, so as to provide a
                        predictable parse order if individual options are
                        over-ridden. The set is parsed after the file(s)
                        specified via previous --config-file, arguments hence
                        over-ridden options in the directory take precedence.
                        This option must be set from the command-line.
  --config-file PATH    Path to a config file to use. Multiple config files
                        can be specified, with values in later files taking
                        precedence. Defaults to None. This option must be set
                        from the command-line.
  --debug, -d           If set to true, the logging level will be set to DEBUG
                        instead of the default INFO level.
  --log-config-append PATH, --log-config PATH, --log_config PATH
                        The name of a logging configuration file. This file is
                        appended to any existing logging configuration files.
                        For details about logging configuration files, see the
                        Python logging module documentation. Note that when
                        logging configuration files are used then all logging
                        configuration is set in the configuration file and
                        other logging configuration options are ignored (for
                        example, log-date-format).
  --log-date-format DATE_FORMAT
                        Defines the format string for %(asctime)s in log
                        records. Default: None . This option is ignored if
                        log_config_append is set.
  --log-dir LOG_DIR, --logdir LOG_DIR
                        (Optional) The base directory used for relative
                        log_file paths. This option is ignored if
                        log_config_append is set.
  --log-file PATH, --logfile PATH
                        (Optional) Name of log file to send logging output to.
                        If no default is set, logging will go to stderr as
                        defined by use_stderr. This option is ignored if
                        log_config_append is set.
  --nodebug             The inverse of --debug
  --nouse-journal       The inverse of --use-journal
  --nouse-json          The inverse of --use-json
  --nouse-syslog        The inverse of --use-syslog
  --nowatch-log-file    The inverse of --watch-log-file
  --syslog-log-facility SYSLOG_LOG_FACILITY
                        Syslog facility to receive log lines. This option is
                        ignored if log_config_append is set.
  --use-journal         Enable journald for logging. If running in a systemd
                        environment you may wish to enable journal support.
                        Doing so will use the journal native protocol which
                        includes structured metadata in addition to log
                        messages.This option is ignored if log_config_append
                        is set.
  --use-json            Use JSON formatting for logging. This option is
                        ignored if log_config_append is set.
  --use-syslog          Use syslog for logging. Existing syslog format is
                        DEPRECATED and will be changed later to honor RFC5424.
                        This option is ignored if log_config_append is set.
  --version             show program's version number and exit
  --watch-log-file      Uses logging handler designed to watch file system.
                        When log file is moved or removed this handler will
                        open a new log file with specified path
                        instantaneously. It makes sense only if log_file
                        option is specified and Linux platform is used. This
                        option is ignored if log_config_append is set.
`
