package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"bagpipe/internal/api"
	"bagpipe/internal/bgp"
	"bagpipe/internal/config"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/instrumented"
	"bagpipe/internal/engine"
	"bagpipe/internal/logging"
	"bagpipe/internal/metrics"
	"bagpipe/internal/vpn"
	"bagpipe/internal/webui"
)

// observability holds what operators look at beside the looking glass:
// the Prometheus metrics (/metrics on the API, and on their own listener
// when [API] metrics_port is set), the web view (/ui) and the run-time log
// level (/log-level). See docs/operations.md.
type observability struct {
	log      *slog.Logger
	addr     string // own metrics listener, "" for none
	metrics  *metrics.Metrics
	handlers map[string]http.Handler // extra API paths, by first segment

	// bound by bind, read at scrape time
	router  bgp.Router
	manager *vpn.Manager

	server *http.Server
	ln     net.Listener
	served chan error
}

func newObservability(cfg *config.Config, logs *logging.Logging, eng *engine.Engine) *observability {
	o := &observability{log: logs.Logger.With(logging.ComponentKey, "metrics"), addr: cfg.API.MetricsAddr}
	o.metrics = metrics.New(metrics.Sources{
		Engine: eng,
		Peers: func() []bgp.PeerStatus {
			if o.router == nil {
				return nil
			}
			return o.router.Peers()
		},
		Instances: func() []metrics.InstanceStatus {
			if o.manager == nil {
				return nil
			}
			return metrics.VPNInstances(o.manager)()
		},
	})
	o.handlers = map[string]http.Handler{
		"metrics":   o.metrics.Handler(),
		"log-level": logs.LevelHandler(),
	}
	return o
}

// wrap instruments a dataplane driver.
func (o *observability) wrap(d dataplane.Driver) dataplane.Driver {
	return instrumented.Wrap(d, o.metrics)
}

// bind gives the metrics the components they read (before serving).
func (o *observability) bind(router bgp.Router, manager *vpn.Manager, srv *api.Server) {
	o.router, o.manager = router, manager
	o.handlers["ui"] = webui.New(srv.LookingGlass(), "/ui", o.log)
}

// start opens the metrics listener, if configured.
func (o *observability) start() error {
	if o.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("metrics listener ([API] metrics_host, metrics_port): %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", o.metrics.Handler())
	o.ln = ln
	o.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	o.served = make(chan error, 1)
	go func() { o.served <- o.server.Serve(ln) }()
	o.log.Info("metrics listening", "address", ln.Addr().String())
	return nil
}

// stop closes the metrics listener.
func (o *observability) stop(ctx context.Context) error {
	if o.server == nil {
		return nil
	}
	if err := o.server.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MetricsAddr returns the address of the metrics listener (invalid when
// there is none).
func (d *Daemon) MetricsAddr() net.Addr {
	if d.obs == nil || d.obs.ln == nil {
		return nil
	}
	return d.obs.ln.Addr()
}
