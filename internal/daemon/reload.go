package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"

	"bagpipe/internal/config"
	"bagpipe/internal/logging"
)

// applied is what Reload changed at run time, compared with the next
// reload's configuration.
type applied struct {
	peers []netip.Addr
	debug bool
}

// reloadable are the options Reload applies; every other option needs a
// restart.
var reloadable = map[string]map[string]bool{
	config.DefaultSection: {"debug": true},
	config.SectionBGP:     {"peers": true},
}

// reloadSections are the sections whose options Reload compares.
var reloadSections = []string{
	config.DefaultSection, config.SectionCommon, config.SectionAPI, config.SectionBGP,
	config.IPVPN.Section(), config.EVPN.Section(),
}

// Reload applies a new configuration (SIGHUP): the log level ([DEFAULT]
// debug, when it changed since the last load: a level set through the API
// stays otherwise) and the BGP peers ([BGP] peers: new ones are connected,
// removed ones closed and their routes withdrawn). Other options that
// changed are logged as needing a restart and are not applied.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) error {
	log := d.log.With(logging.ComponentKey, "reload")
	var errs []error
	if cfg.Log.Debug != d.applied.debug {
		level := slog.LevelInfo
		if cfg.Log.Debug {
			level = slog.LevelDebug
		}
		d.logs.SetLevel(level, "configuration reload")
		d.applied.debug = cfg.Log.Debug
	}
	if !slices.Equal(cfg.BGP.Peers, d.applied.peers) {
		if err := d.router.UpdatePeers(ctx, cfg.BGP.Peers); err != nil {
			errs = append(errs, fmt.Errorf("[BGP] peers: %w", err))
		} else {
			log.Info("BGP peers changed", "from", fmt.Sprint(d.applied.peers), "to", fmt.Sprint(cfg.BGP.Peers))
			d.applied.peers = slices.Clone(cfg.BGP.Peers)
		}
	}
	var restart []string
	for _, name := range reloadSections {
		old, cur := d.cfg.Section(name), cfg.Section(name)
		if old == nil || cur == nil {
			continue
		}
		for _, o := range cur.Options() {
			if reloadable[name][o.Name] || !old.Declared(o.Name) {
				continue
			}
			if !reflect.DeepEqual(old.Value(o.Name), cur.Value(o.Name)) {
				restart = append(restart, "["+name+"] "+o.Name)
			}
		}
	}
	if len(restart) > 0 {
		// Names only: values may be secrets.
		log.Warn("configuration reloaded: these changed options need a restart of bagpipe-bgp and are not applied",
			"options", restart)
	}
	log.Info("configuration reloaded", "files", cfg.Files)
	return errors.Join(errs...)
}
