package daemon

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"bagpipe/internal/api"
	"bagpipe/internal/bgp"
	"bagpipe/internal/config"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/engine"
	"bagpipe/internal/logging"
	"bagpipe/internal/route"
	"bagpipe/internal/state"
	"bagpipe/internal/vpn"
)

// State across restarts ([COMMON] state_dir, docs/operations.md): the
// attachments are recorded in the state directory; at start they are
// replayed before BGP comes up, the dataplane drivers that can adopt what
// the previous run left do so, and once the initial BGP exchange is over
// (or after state_sweep_timeout) what no route confirmed is removed.

// sweepQuiet is how long received routes must stay unchanged, with every
// queue empty, after the BGP peers came up, before adopted dataplane
// entries that no route confirmed are removed.
const sweepQuiet = time.Second

// persistence is the state directory of a daemon.
type persistence struct {
	log      *slog.Logger
	store    *state.Store
	recorder *state.Recorder
	adopters map[dataplane.VPNType]dataplane.Adopter
	timeout  time.Duration
	swept    chan struct{} // closed once the adopted entries were swept
	hadState bool          // the previous run left attachments to restore
}

// openState opens the state directory of cfg, nil when none is configured.
func openState(cfg *config.Config, log *slog.Logger, mgr *vpn.Manager, drivers []dataplane.Driver) (*persistence, error) {
	dir := cfg.Common.StateDir
	if dir == "" {
		return nil, nil
	}
	log = log.With(logging.ComponentKey, "state")
	store, err := state.Open(dir, state.Options{Log: log})
	if err != nil {
		return nil, err
	}
	p := &persistence{
		log: log, store: store, recorder: state.NewRecorder(store, mgr, log),
		adopters: map[dataplane.VPNType]dataplane.Adopter{},
		timeout:  cfg.Common.StateSweepTimeout,
		swept:    make(chan struct{}),
		hadState: store.Len() > 0,
	}
	for _, d := range drivers {
		if a, ok := d.(dataplane.Adopter); ok {
			p.adopters[d.Type()] = a
		}
	}
	return p, nil
}

// restarted reports whether this run restores the state of a previous one
// (the BGP Restart State bit).
func (p *persistence) restarted() bool { return p != nil && p.hadState }

// forwardingPreserved lists the families whose dataplane survives a
// restart: those of the drivers that adopt what the previous run left
// (the BGP Forwarding State bit; with it, peers keep our routes while we
// restart, and a stop asks them to).
func (p *persistence) forwardingPreserved() []route.Family {
	if p == nil {
		return nil
	}
	var out []route.Family
	for _, t := range []dataplane.VPNType{dataplane.IPVPN, dataplane.EVPN} {
		if p.adopters[t] == nil {
			continue
		}
		if t == dataplane.EVPN {
			out = append(out, route.EVPN)
		} else {
			// Our Flowspec routes redirect into VRFs whose forwarding is
			// the IP VPN dataplane's.
			out = append(out, route.IPv4VPN, route.FlowVPN)
		}
	}
	return out
}

// service returns what the API applies attachments with.
func (p *persistence) service(mgr *vpn.Manager) api.VPNService {
	if p == nil {
		return mgr
	}
	return p.recorder
}

// restore replays the recorded attachments (before the API serves and
// before BGP starts).
func (p *persistence) restore(ctx context.Context) {
	if p == nil {
		return
	}
	instances := p.recorder.Instances()
	for t, a := range p.adopters {
		if ids := instances[t]; len(ids) > 0 {
			a.KeepForAdoption(ids)
		}
	}
	if p.store.Len() == 0 {
		p.log.Info("state directory empty: nothing to restore", "dir", p.store.Dir())
		return
	}
	res := p.recorder.Restore(ctx)
	level := slog.LevelInfo
	if res.Failed > 0 || res.Changed > 0 {
		level = slog.LevelWarn
	}
	p.log.Log(ctx, level, "attachments restored from the state directory", "dir", p.store.Dir(),
		"instances", res.Instances, "endpoints", res.Endpoints, "failed", res.Failed, "changed_identifiers", res.Changed,
		"took", res.Took.Round(time.Millisecond).String())
}

// sweepLater removes the adopted dataplane entries that no route
// confirmed, once every BGP peer came up and the routes they sent were
// processed (received routes unchanged for sweepQuiet with every queue
// empty), or after the timeout.
func (p *persistence) sweepLater(ctx context.Context, router bgp.Router, eng *engine.Engine, mgr *vpn.Manager) {
	if p == nil {
		return
	}
	if len(p.adopters) == 0 {
		close(p.swept)
		return
	}
	go func() {
		defer close(p.swept)
		deadline := time.NewTimer(p.timeout)
		defer deadline.Stop()
		start := time.Now()
		select {
		case <-router.Synced():
			if !waitQuiet(ctx, deadline.C, eng, mgr) {
				if ctx.Err() != nil {
					return
				}
				p.log.Warn("routes still changing at state_sweep_timeout: removing the adopted dataplane entries no route confirmed yet",
					"timeout", p.timeout.String())
			}
		case <-deadline.C:
			p.log.Warn("not every BGP peer came up within state_sweep_timeout: removing the adopted dataplane entries no route confirmed",
				"timeout", p.timeout.String())
		case <-ctx.Done():
			return
		}
		types := make([]dataplane.VPNType, 0, len(p.adopters))
		for t := range p.adopters {
			types = append(types, t)
		}
		slices.Sort(types)
		for _, t := range types {
			if err := p.adopters[t].SweepAdopted(ctx); err != nil {
				p.log.Error("removing adopted dataplane entries", "vpn_type", string(t), "err", err)
			}
		}
		p.log.Info("adopted dataplane state swept", "after", time.Since(start).Round(time.Millisecond).String())
	}()
}

// waitQuiet waits until the received routes stay unchanged for sweepQuiet
// with the engine and the instances idle. It returns false if deadline or
// ctx came first.
func waitQuiet(ctx context.Context, deadline <-chan time.Time, eng *engine.Engine, mgr *vpn.Manager) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, since := -1, time.Now()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-tick.C:
		}
		received, _ := eng.RouteCounts()
		if received != last || eng.QueueLength() > 0 || mgr.PendingEvents() > 0 {
			last, since = received, time.Now()
			continue
		}
		if time.Since(since) >= sweepQuiet {
			return true
		}
	}
}

// stop stops the instances without touching their dataplane (the next run
// adopts it) and closes the state directory.
func (p *persistence) stop(ctx context.Context, mgr *vpn.Manager) error {
	mgr.Shutdown(ctx)
	return p.store.Close()
}
