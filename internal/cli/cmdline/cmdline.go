// Package cmdline holds what the bagpipe command-line tools share: option
// parsing in the style of Python's optparse (options and positional
// arguments may be mixed, "--opt value" and "--opt=value" both work), an
// optparse-like help text, repeatable options and the --version option.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"bagpipe/internal/version"
)

// ErrVersion is returned by Parse when --version was given; the version has
// already been printed.
var ErrVersion = errors.New("version requested")

// ErrUsage is returned by Parse (wrapped) and Fail for command-line errors;
// the error has already been reported.
var ErrUsage = errors.New("usage error")

// Command describes the command line of one tool. Options are defined on the
// embedded FlagSet.
type Command struct {
	*flag.FlagSet

	// Synopsis is printed after "Usage: " in the help and in error reports;
	// it may span several lines.
	Synopsis string

	stdout, stderr io.Writer
	version        bool
	aliases        map[string]string // long option name -> short alias
}

// New returns a Command for the tool name, printing help and version to
// stdout and errors to stderr. It defines -h/--help and --version.
func New(name, synopsis string, stdout, stderr io.Writer) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse reports errors itself.
	fs.Usage = func() {}
	c := &Command{FlagSet: fs, Synopsis: synopsis, stdout: stdout, stderr: stderr}
	fs.BoolVar(&c.version, "version", false, "show program's version number and exit")
	return c
}

// Alias makes short (e.g. "r") another name of the already defined option long.
func (c *Command) Alias(short, long string) {
	f := c.Lookup(long)
	c.Var(f.Value, short, f.Usage)
	if c.aliases == nil {
		c.aliases = map[string]string{}
	}
	c.aliases[long] = short
}

// Parse parses args (without the program name) and returns the positional
// arguments. Options and positional arguments may be interleaved; everything
// after "--" is positional. For -h/--help and --version it prints the help or
// the version and returns flag.ErrHelp or ErrVersion; for an invalid command
// line it reports the problem on stderr and returns an error wrapping ErrUsage.
func (c *Command) Parse(args []string) ([]string, error) {
	var positional []string
	for {
		err := c.FlagSet.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.PrintHelp()
			return nil, err
		}
		if err != nil {
			return nil, c.Fail(optparseWording(err.Error()))
		}
		rest := c.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if c.version {
		fmt.Fprintf(c.stdout, "%s %s\n", c.Name(), version.Version)
		return nil, ErrVersion
	}
	return positional, nil
}

// IsSet reports whether the option name was given on the command line.
func (c *Command) IsSet(name string) bool {
	set := false
	c.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Fail reports a command-line error the way optparse does (synopsis, blank
// line, "<tool>: error: <msg>") and returns an error wrapping ErrUsage.
func (c *Command) Fail(msg string) error {
	fmt.Fprintf(c.stderr, "Usage: %s\n\n%s: error: %s\n", c.Synopsis, c.Name(), msg)
	return fmt.Errorf("%w: %s", ErrUsage, msg)
}

// ExitStatus maps an error returned by Parse or Fail to a process exit
// status: 0 for --help and --version, 2 for usage errors, 1 otherwise.
func ExitStatus(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, ErrVersion):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		return 1
	}
}

// helpColumn is the column where option descriptions start in the help.
const helpColumn = 24

// PrintHelp prints the synopsis and the list of options on stdout.
func (c *Command) PrintHelp() {
	fmt.Fprintf(c.stdout, "Usage: %s\n\nOptions:\n", c.Synopsis)
	c.printOption("-h, --help", "show this help message and exit")
	for _, names := range c.optionGroups() {
		f := c.Lookup(names[len(names)-1])
		metavar, usage := flag.UnquoteUsage(f)
		var spelled []string
		for _, n := range names {
			spelled = append(spelled, dashes(n)+n)
		}
		label := strings.Join(spelled, ", ")
		if !isBool(f) {
			if !strings.Contains(f.Usage, "`") {
				metavar = strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			}
			label += "=" + metavar
		}
		c.printOption(label, usage)
	}
}

// optionGroups lists the defined options in name order, each as its
// short alias (if any) followed by its own name.
func (c *Command) optionGroups() [][]string {
	isAlias := map[string]bool{}
	for _, short := range c.aliases {
		isAlias[short] = true
	}
	var groups [][]string
	c.VisitAll(func(f *flag.Flag) {
		switch {
		case isAlias[f.Name]:
		case c.aliases[f.Name] != "":
			groups = append(groups, []string{c.aliases[f.Name], f.Name})
		default:
			groups = append(groups, []string{f.Name})
		}
	})
	return groups
}

// printOption prints one option line: label, then the description wrapped
// at 79 columns and aligned on helpColumn.
func (c *Command) printOption(label, usage string) {
	line := "  " + label
	if len(line) >= helpColumn-1 {
		fmt.Fprintln(c.stdout, line)
		line = ""
	}
	for _, word := range strings.Fields(usage) {
		if len(line) > helpColumn && len(line)+1+len(word) > 79 {
			fmt.Fprintln(c.stdout, line)
			line = ""
		}
		if len(line) <= helpColumn {
			line += strings.Repeat(" ", helpColumn-len(line)) + word
		} else {
			line += " " + word
		}
	}
	fmt.Fprintln(c.stdout, line)
}

// optparseWording rewrites the most common errors of package flag, which
// spell every option with one dash, the way optparse words them.
func optparseWording(msg string) string {
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "no such option: " + dashes(name) + name
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return dashes(name) + name + " option requires an argument"
	}
	return msg
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-"
	}
	return "--"
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// StringList is a flag.Value collecting the values of a repeatable option.
type StringList []string

// String returns the values joined with commas.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set appends one value.
func (l *StringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
