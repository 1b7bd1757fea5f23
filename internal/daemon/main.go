package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"bagpipe/internal/config"
	"bagpipe/internal/logging"
	"bagpipe/internal/version"
)

// Main is the bagpipe-bgp command: it parses the command line, loads the
// configuration, runs the daemon until SIGTERM or SIGINT (SIGHUP reloads
// what can be reloaded) and returns the exit status. stdout and stderr
// receive the usage, version and start-up errors.
func Main(prog string, args []string, stdout, stderr io.Writer) int {
	flags, err := config.ParseFlags(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if flags.Help {
		fmt.Fprint(stdout, config.Usage(prog))
		return 0
	}
	if flags.Version {
		fmt.Fprintln(stdout, prog, version.Version)
		return 0
	}
	cfg, warnings, err := config.Load(flags, config.BuiltinDriverOptions()...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration error: %v\n", prog, err)
		return 1
	}
	logs, err := logging.Setup(logging.Options{
		Debug: cfg.Log.Debug, LogFile: cfg.Log.File, LogDir: cfg.Log.Dir, UseJSON: cfg.Log.UseJSON, Program: prog,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	defer logs.Close()
	for _, w := range warnings {
		logs.Logger.Warn(w, logging.ComponentKey, "config")
	}
	d, err := New(cfg, logs)
	if err != nil {
		logs.Logger.Error("cannot start", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		logs.Logger.Error("cannot start", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-d.Served():
			logs.Logger.Error("REST API server stopped", "err", err)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				// The reference dies on SIGHUP; we reload what can be
				// reloaded (log level, BGP peers).
				reloadFromFlags(ctx, flags, d, logs)
				continue
			}
			logs.Logger.Info("signal received, stopping", "signal", sig.String())
			stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := d.Stop(stopCtx)
			cancel()
			if err != nil {
				logs.Logger.Error("stop", "err", err)
				return 1
			}
			return 0
		}
	}
}

// reloadFromFlags reads the configuration again (same command line) and
// applies it; an invalid configuration is logged and changes nothing.
func reloadFromFlags(ctx context.Context, flags *config.Flags, d *Daemon, logs *logging.Logging) {
	log := logs.Logger.With(logging.ComponentKey, "reload")
	log.Info("SIGHUP received: reloading the configuration")
	cfg, _, err := config.Load(flags, config.BuiltinDriverOptions()...) // warnings go to slog.Default: our logger
	if err != nil {
		log.Error("configuration invalid: nothing reloaded", "err", err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.Reload(rctx, cfg); err != nil {
		log.Error("reload incomplete", "err", err)
	}
}
