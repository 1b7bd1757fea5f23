// Package logging sets up the daemon's log/slog logger from its oslo.log
// style flags (--debug, --log-file, --log-dir, --use-json), with a level
// that can be changed at run time, and keeps the last warnings and errors
// (globally and per worker) for the looking glass.
//
// Components tag their records with a "component" attribute (the name shown
// by the looking glass) and workers with a "worker" attribute ("VRF-1",
// "BGP-10.0.0.2"), usually through slog.Logger.With.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Options are the logging flags of the daemon.
type Options struct {
	// Debug selects the debug level (else info).
	Debug bool
	// LogFile is the file to append to ("" with LogDir "": Output).
	LogFile string
	// LogDir is the directory of LogFile; alone, the log goes to
	// <LogDir>/<Program>.log.
	LogDir string
	// UseJSON selects the JSON handler (else text).
	UseJSON bool
	// Program names the default log file ("bagpipe-bgp" when empty).
	Program string
	// Output is where logs go without a log file (os.Stderr when nil).
	Output io.Writer
	// Keep is the number of records the catcher keeps (DefaultKeep when 0).
	Keep int
}

// Logging is the configured logging of the daemon.
type Logging struct {
	// Logger is the root logger (also installed as slog.Default by Setup).
	Logger *slog.Logger
	// Level is the level of the output handler; it can be changed at run
	// time (the catcher keeps warnings and errors whatever the level).
	Level *slog.LevelVar
	// Catcher keeps the last warnings and errors for the looking glass.
	Catcher *Catcher
	// Path is the log file in use ("" when logging to Output).
	Path string

	file *os.File
}

// New builds the logging described by opts without touching slog.Default.
// A log_file ending in ".conf" (a logging configuration in old setups) is
// ignored with a warning, like the reference does.
func New(opts Options) (*Logging, error) {
	l := &Logging{Level: new(slog.LevelVar), Catcher: NewCatcher(opts.Keep)}
	l.SetDebug(opts.Debug)

	var warning string
	logFile := opts.LogFile
	if strings.HasSuffix(logFile, ".conf") {
		warning = fmt.Sprintf("log_file %q looks like a logging configuration file and is ignored: "+
			"give logging configuration files with --log-config-append", logFile)
		logFile = ""
	}
	out := opts.Output
	if out == nil {
		out = os.Stderr
	}
	if path := logPath(logFile, opts.LogDir, opts.Program); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening log file: %w", err)
		}
		l.file, l.Path, out = f, path, f
	}

	hopts := &slog.HandlerOptions{Level: l.Level}
	var h slog.Handler
	if opts.UseJSON {
		h = slog.NewJSONHandler(out, hopts)
	} else {
		h = slog.NewTextHandler(out, hopts)
	}
	l.Logger = slog.New(NewCatchHandler(h, l.Catcher))
	if warning != "" {
		l.Logger.Warn(warning, ComponentKey, "logging")
	}
	return l, nil
}

// Setup is New followed by installing the logger as slog.Default.
func Setup(opts Options) (*Logging, error) {
	l, err := New(opts)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(l.Logger)
	return l, nil
}

// SetDebug switches the output level between debug and info.
func (l *Logging) SetDebug(debug bool) {
	if debug {
		l.Level.Set(slog.LevelDebug)
	} else {
		l.Level.Set(slog.LevelInfo)
	}
}

// Close closes the log file, if any.
func (l *Logging) Close() error {
	if l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file = nil
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// logPath applies oslo.log's rules: log_dir/log_file, log_file alone, or
// log_dir/<program>.log.
func logPath(file, dir, program string) string {
	switch {
	case file != "" && dir != "" && !filepath.IsAbs(file):
		return filepath.Join(dir, file)
	case file != "":
		return file
	case dir != "":
		if program == "" {
			program = "bagpipe-bgp"
		}
		return filepath.Join(dir, program+".log")
	}
	return ""
}
