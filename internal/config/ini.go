package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// DefaultSection is the name of the oslo.config default section. It is
// the only section name that is matched case-sensitively.
const DefaultSection = "DEFAULT"

// ParseError is a syntax error in a configuration file.
type ParseError struct {
	File string // path of the file
	Line int    // 1-based line number
	Msg  string // what is wrong
	Text string // the offending line, without its line terminator
}

func (e *ParseError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %q", e.File, e.Line, e.Msg, e.Text)
}

// INI is the merged content of one or more oslo.config INI files.
//
// Files are layered in the order they were read: for a given option the
// value of the last file that sets it wins, and within one file the last
// occurrence wins. Section names are compared case-insensitively except
// DEFAULT ([BGP] and [bgp] are the same section, [default] is not
// [DEFAULT]); option names are case-sensitive, as in oslo.config.
// Options of [DEFAULT] are not inherited by other sections.
type INI struct {
	files    []string
	layers   []iniLayer          // one per file, in read order
	sections []string            // normalised section names, first-seen order
	display  map[string]string   // normalised name -> name as first written
	options  map[string][]string // normalised section -> option names, first-seen order
}

// iniLayer holds the assignments of one file.
type iniLayer struct {
	file   string
	values map[string]map[string]iniEntry // normalised section -> option -> entry
}

// iniEntry is one assignment: its value (continuation lines joined with
// "\n", uninterpolated) and where it was made.
type iniEntry struct {
	value string
	line  int
}

// normalizeSection returns the key under which oslo.config files a section.
func normalizeSection(name string) string {
	if name == DefaultSection {
		return name
	}
	return strings.ToLower(name)
}

// ReadINI reads and merges the given files in order (later files win).
// Every file must exist. Syntax errors are returned as *ParseError.
func ReadINI(paths ...string) (*INI, error) {
	f := newINI()
	for _, p := range paths {
		if err := f.readFile(p); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// ReadDir reads the files of a --config-dir directory: every "*.conf" file
// of dir, in lexical order (see ConfigDirFiles).
func ReadDir(dir string) (*INI, error) {
	paths, err := ConfigDirFiles(dir)
	if err != nil {
		return nil, err
	}
	return ReadINI(paths...)
}

// ConfigDirFiles lists the "*.conf" files of dir, sorted, as oslo.config
// does for --config-dir. A missing directory is an error; an empty one is
// not.
func ConfigDirFiles(dir string) ([]string, error) {
	dir = expandHome(dir)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("config directory %s not found: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("config directory %s is not a directory", dir)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

func newINI() *INI {
	return &INI{
		display: map[string]string{},
		options: map[string][]string{},
	}
}

// Files returns the paths of the files read, in order.
func (f *INI) Files() []string { return append([]string(nil), f.files...) }

// Sections returns the names of all sections found in the files, in order
// of first appearance and spelled as first written. Sections that differ
// only by case (DEFAULT excepted) are reported once.
func (f *INI) Sections() []string {
	out := make([]string, len(f.sections))
	for i, s := range f.sections {
		out[i] = f.display[s]
	}
	return out
}

// HasSection reports whether a section (matched oslo-style) appears in the
// files, even if it has no option.
func (f *INI) HasSection(section string) bool {
	_, ok := f.display[normalizeSection(section)]
	return ok
}

// Options returns the option names set in section, in order of first
// appearance.
func (f *INI) Options(section string) []string {
	return append([]string(nil), f.options[normalizeSection(section)]...)
}

// Get returns the value of option in section, with $name / ${section.name}
// references substituted (see Expand). References that cannot be resolved
// from the files alone are left as written, and a value caught in a
// reference loop is returned uninterpolated. ok is false when the option
// is not set in any file.
func (f *INI) Get(section, option string) (value string, ok bool) {
	e, _, ok := f.lookup(section, option)
	if !ok {
		return "", false
	}
	v, err := f.expand(section, e.value, f.rawLookup, true)
	if err != nil {
		return e.value, true
	}
	return v, true
}

// Raw returns the value of option in section as written (multi-line
// values joined with "\n"), without interpolation.
func (f *INI) Raw(section, option string) (value string, ok bool) {
	e, _, ok := f.lookup(section, option)
	return e.value, ok
}

// Location returns the file and line where the effective value of option
// in section was set.
func (f *INI) Location(section, option string) (file string, line int, ok bool) {
	e, file, ok := f.lookup(section, option)
	return file, e.line, ok
}

// lookup finds the effective entry for option in section.
func (f *INI) lookup(section, option string) (iniEntry, string, bool) {
	e, _, file, ok := f.lookupAny(section, option)
	return e, file, ok
}

// lookupAny finds the effective entry among several names of one option
// (the current name first, then deprecated aliases), the way oslo.config
// does: the newest file mentioning any of the names wins and, within that
// file, the current name wins over aliases. It returns the name found.
func (f *INI) lookupAny(section string, names ...string) (iniEntry, string, string, bool) {
	sec := normalizeSection(section)
	for i := len(f.layers) - 1; i >= 0; i-- {
		opts := f.layers[i].values[sec]
		for _, n := range names {
			if e, ok := opts[n]; ok {
				return e, n, f.layers[i].file, true
			}
		}
	}
	return iniEntry{}, "", "", false
}

// rawLookup resolves an interpolation reference from the files only.
func (f *INI) rawLookup(section, option string) (string, bool) {
	return f.Raw(section, option)
}

// readFile parses one file and appends it as a new layer.
func (f *INI) readFile(path string) error {
	path = expandHome(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	layer := iniLayer{file: path, values: map[string]map[string]iniEntry{}}
	p := iniParser{file: path, ini: f, layer: &layer}
	if err := p.parse(data); err != nil {
		return err
	}
	f.files = append(f.files, path)
	f.layers = append(f.layers, layer)
	return nil
}

// iniParser implements the line grammar of oslo.config's iniparser.
type iniParser struct {
	file    string
	ini     *INI
	layer   *iniLayer
	section string // normalised; "" before the first header

	key     string   // pending assignment, "" if none
	keyLine int      // line of the pending assignment
	value   []string // its value lines
}

func (p *iniParser) errorf(line int, text, format string, args ...any) error {
	return &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...), Text: text}
}

func (p *iniParser) parse(data []byte) error {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	lineno := 0
	for sc.Scan() {
		lineno++
		line := strings.TrimRight(sc.Text(), " \t\r\n\v\f")
		switch {
		case line == "":
			// A blank line ends a multi-line value.
			p.flush()
		case line[0] == ' ' || line[0] == '\t':
			if p.key == "" {
				return p.errorf(lineno, line, "unexpected continuation line")
			}
			p.value = append(p.value, strings.TrimLeft(line, " \t\r\n\v\f"))
		default:
			p.flush()
			if err := p.statement(lineno, line); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading config file %s: %w", p.file, err)
	}
	p.flush()
	return nil
}

// statement handles a non-blank, non-continuation line.
func (p *iniParser) statement(lineno int, line string) error {
	switch line[0] {
	case '[':
		if !strings.HasSuffix(line, "]") {
			return p.errorf(lineno, line, "invalid section (must end with ])")
		}
		if len(line) <= 2 {
			return p.errorf(lineno, line, "empty section name")
		}
		p.newSection(line[1 : len(line)-1])
		return nil
	case '#', ';':
		return nil
	}
	eq, colon := strings.IndexByte(line, '='), strings.IndexByte(line, ':')
	var key, value string
	switch {
	case eq < 0 && colon < 0:
		return p.errorf(lineno, line, "no ':' or '=' found in assignment")
	case colon < 0 || (eq >= 0 && eq < colon):
		key, value = line[:eq], line[eq+1:]
	default:
		key, value = line[:colon], line[colon+1:]
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return p.errorf(lineno, line, "key cannot be empty")
	}
	if p.section == "" {
		return p.errorf(lineno, line, "section must be started before assignment")
	}
	value = strings.TrimSpace(value)
	if len(value) >= 1 && (value[0] == '"' || value[0] == '\'') && value[0] == value[len(value)-1] {
		// oslo strips one pair of matching quotes (a lone quote yields "").
		if len(value) == 1 {
			value = ""
		} else {
			value = value[1 : len(value)-1]
		}
	}
	p.key, p.keyLine, p.value = key, lineno, []string{value}
	return nil
}

func (p *iniParser) newSection(name string) {
	sec := normalizeSection(name)
	p.section = sec
	if _, ok := p.ini.display[sec]; !ok {
		p.ini.display[sec] = name
		p.ini.sections = append(p.ini.sections, sec)
	}
	if p.layer.values[sec] == nil {
		p.layer.values[sec] = map[string]iniEntry{}
	}
}

// flush records the pending assignment, if any.
func (p *iniParser) flush() {
	if p.key == "" {
		return
	}
	opts := p.layer.values[p.section]
	if !p.ini.optionSeen(p.section, p.key) {
		p.ini.options[p.section] = append(p.ini.options[p.section], p.key)
	}
	opts[p.key] = iniEntry{value: strings.Join(p.value, "\n"), line: p.keyLine}
	p.key, p.value = "", nil
}

// optionSeen reports whether option was already recorded for section.
func (f *INI) optionSeen(section, option string) bool {
	return slices.Contains(f.options[section], option)
}

// expandHome replaces a leading "~/" (or a lone "~") by the home directory,
// as oslo.config does for config file and directory paths.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}
