// Package daemon assembles bagpipe-bgp from its parts: configuration,
// logging, the route engine, the BGP speaker, the dataplane drivers, the VPN
// manager and the REST API.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"bagpipe/internal/api"
	"bagpipe/internal/bgp"
	"bagpipe/internal/config"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/dataplane/linux"
	"bagpipe/internal/dataplane/ovs"
	"bagpipe/internal/engine"
	"bagpipe/internal/logging"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/vpn"
)

// Daemon is a running bagpipe-bgp.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	logs    *logging.Logging
	eng     *engine.Engine
	router  bgp.Router
	manager *vpn.Manager
	server  *http.Server
	lns     []net.Listener // REST API listeners (TCP and/or Unix socket)
	cancel  context.CancelFunc
	served  chan error
	obs     *observability // metrics, web view, log level
	state   *persistence   // state directory, nil when none (state.go)
	applied applied        // what Reload changed (reload.go)
}

// New builds a daemon from its configuration; Start runs it.
func New(cfg *config.Config, logs *logging.Logging) (*Daemon, error) {
	log := logs.Logger
	lookingglass.FlowText = bgp.FlowText
	var rtc *engine.RTCConfig
	if cfg.BGP.EnableRTC {
		rtc = &engine.RTCConfig{AS: cfg.BGP.MyAS, NextHop: cfg.BGP.LocalAddress}
	}
	eng := engine.New(log, rtc)
	obs := newObservability(cfg, logs, eng)
	var drivers, rawDrivers []dataplane.Driver
	driverConfig := map[dataplane.VPNType]map[string]any{}
	effective := cfg.Effective()
	for _, t := range []config.VPNType{config.IPVPN, config.EVPN} {
		dc := cfg.Dataplane(t)
		d, err := newDriver(dc, log)
		if err != nil {
			return nil, err
		}
		drivers = append(drivers, obs.wrap(d)) // instrumented for the metrics
		rawDrivers = append(rawDrivers, d)
		driverConfig[d.Type()] = effective[t.Section()]
	}
	mgr := vpn.NewManager(vpn.Config{
		Engine:       eng,
		Log:          log,
		BGPAddress:   cfg.BGP.LocalAddress,
		Drivers:      drivers,
		DriverConfig: driverConfig,
		Logs:         func(worker string) any { return logs.Catcher.WorkerLogs(worker) },
		ForgetLogs:   logs.Catcher.Forget,
		FlowCodec:    vpn.FlowCodec{Encode: bgp.ClassifierToFlow, Decode: bgp.FlowToClassifier},
	})
	st, err := openState(cfg, log, mgr, rawDrivers)
	if err != nil {
		return nil, err
	}
	router := bgp.New(bgp.Config{
		LocalAddress: cfg.BGP.LocalAddress,
		AS:           cfg.BGP.MyAS,
		Peers:        cfg.BGP.Peers,
		Port:         cfg.BGP.Port,
		Listen:       true,
		EnableRTC:    cfg.BGP.EnableRTC,

		GracefulRestart:  cfg.BGP.GracefulRestart,
		RestartTime:      uint16(cfg.BGP.GracefulRestartTime / time.Second),
		StaleTime:        cfg.BGP.GracefulRestartStaleTime,
		SyncTimeout:      cfg.Common.StateSweepTimeout,
		MD5Password:      cfg.BGP.MD5Password,
		PeerMD5Passwords: cfg.BGP.MD5PeerPasswords,
		MaxPrefixes:      cfg.BGP.MaxPrefixes,

		Restarted:           st.restarted(),           // state.go
		ForwardingPreserved: st.forwardingPreserved(), // state.go
	}, eng, log)
	d := &Daemon{cfg: cfg, log: log, logs: logs, eng: eng, router: router, manager: mgr, obs: obs, state: st,
		applied: applied{peers: cfg.BGP.Peers, debug: cfg.Log.Debug}}
	handler, err := api.New(api.Config{
		VPN:           st.service(mgr),
		Engine:        eng,
		Peers:         router,
		VPNs:          mgr,
		InstanceCount: mgr.InstanceCount,
		Settings:      cfg.Effective,
		Logs:          logs.Catcher,
		Logger:        log,
		Requests:      obs.metrics,
		Handlers:      obs.handlers,
	})
	if err != nil {
		return nil, err
	}
	obs.bind(router, mgr, handler)
	d.server = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	return d, nil
}

// newDriver returns the dataplane driver a configuration section selects.
func newDriver(dc *config.DataplaneConfig, log *slog.Logger) (dataplane.Driver, error) {
	local := dc.LocalAddress
	t := dataplane.VPNType(dc.VPNType)
	switch dc.Driver {
	case config.DriverDummy:
		return dummy.New(t, local, log), nil
	case config.DriverLinux:
		if t == dataplane.EVPN {
			return linux.New(linux.Config{LocalAddress: local, VXLANPort: dc.Options.Int("vxlan_dst_port"), Log: log})
		}
	case config.DriverOVS:
		if t == dataplane.IPVPN {
			c, err := ovs.ConfigFrom(dc)
			if err != nil {
				return nil, err
			}
			return ovs.New(c, log), nil
		}
	}
	return nil, fmt.Errorf("[%s] dataplane_driver = %s: this driver is not available in this version (available: dummy, and linux for E-VPN, ovs for IP VPN)",
		dc.VPNType.Section(), dc.DriverName)
}

// Start opens the API listeners and starts the engine and the BGP speaker.
func (d *Daemon) Start(ctx context.Context) error {
	lns, err := apiListeners(&d.cfg.API)
	if err != nil {
		return fmt.Errorf("REST API: %w", err)
	}
	d.lns = lns
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.eng.Run(runCtx)
	d.state.restore(ctx)
	if err := d.router.Start(ctx); err != nil {
		cancel()
		closeAll()
		return fmt.Errorf("BGP: %w", err)
	}
	if err := d.obs.start(); err != nil {
		_ = d.router.Stop(ctx)
		cancel()
		closeAll()
		return err
	}
	d.state.sweepLater(runCtx, d.router, d.eng, d.manager)
	d.served = make(chan error, len(lns))
	addrs := make([]string, 0, len(lns))
	for _, ln := range lns {
		go func() { d.served <- d.server.Serve(ln) }()
		addrs = append(addrs, ln.Addr().String())
	}
	d.log.Info("bagpipe-bgp started", "api", strings.Join(addrs, " "), "bgp_local_address", d.cfg.BGP.LocalAddress.String(),
		"peers", fmt.Sprint(d.cfg.BGP.Peers), "my_as", d.cfg.BGP.MyAS, "rtc", d.cfg.BGP.EnableRTC)
	return nil
}

// APIAddr returns the address the REST API listens on over TCP (the zero
// AddrPort when tcp_listener is false).
func (d *Daemon) APIAddr() netip.AddrPort {
	for _, ln := range d.lns {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			return a.AddrPort()
		}
	}
	return netip.AddrPort{}
}

// Served returns a channel that receives the API server's error if it
// stops on its own.
func (d *Daemon) Served() <-chan error { return d.served }

// Stop closes the API, closes the BGP sessions (with a Cease notification)
// and removes every VPN instance.
func (d *Daemon) Stop(ctx context.Context) error {
	var errs []error
	if err := d.server.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := d.obs.stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if d.state != nil {
		// The instances stop first, leaving the dataplane for the next run
		// to adopt (the sessions closing do not reach it).
		if err := d.state.stop(ctx, d.manager); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.router.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if d.state == nil {
		d.manager.Stop(ctx)
	}
	_ = d.eng.Sync(ctx)
	d.cancel()
	d.log.Info("bagpipe-bgp stopped")
	return errors.Join(errs...)
}
