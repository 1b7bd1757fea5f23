package api

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"bagpipe/internal/bgp"
	"bagpipe/internal/engine"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/version"
)

// lookingGlass serves GET /looking-glass/<path>.
func (s *Server) lookingGlass(w http.ResponseWriter, r *http.Request, path []string) {
	offset, limit, paged, err := pageParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	doc, err := lookingglass.Render(s.root, path, baseURL(r))
	if err == nil && paged {
		doc.Value = lookingglass.Page(doc.Value, offset, limit)
	}
	if lookingglass.IsNotFound(err) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		s.log.Error("looking glass failure", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "looking glass error: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := doc.Encode(w); err != nil {
		s.log.Debug("looking glass response interrupted", "path", r.URL.Path, "error", err)
	}
}

// baseURL returns the absolute URL of the looking glass root as the client
// addressed the server: <scheme>://<Host header>/looking-glass.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	return scheme + "://" + host + "/looking-glass"
}

// inspect reads the engine state with f (run on the engine goroutine: it
// must only copy what it needs).
func (s *Server) inspect(f func(engine.View)) error {
	if s.cfg.Engine == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.InspectTimeout)
	defer cancel()
	if err := s.cfg.Engine.Inspect(ctx, f); err != nil {
		return fmt.Errorf("route engine unavailable: %w", err)
	}
	return nil
}

// lookingGlassRoot is the root of the tree (spec §4.2).
func (s *Server) lookingGlassRoot() lookingglass.Object {
	return lookingglass.Entries{
		{Name: "summary", Kind: lookingglass.SubItem, Value: s.summary},
		{Name: "config", Kind: lookingglass.SubTree, Value: s.settings},
		{Name: "bgp", Kind: lookingglass.Delegate, Object: func() lookingglass.Object { return s.bgpObject() }},
		{Name: "vpns", Kind: lookingglass.Delegate, Object: s.vpnsObject},
		{Name: "logs", Kind: lookingglass.SubTree, Value: s.logs},
	}
}

func (s *Server) summary() any {
	counts, err := s.routeCounts()
	if err != nil {
		return err
	}
	established := 0
	for _, p := range s.peers() {
		if p.Protocol.State == bgp.Established {
			established++
		}
	}
	warnings := 0
	if s.cfg.Logs != nil {
		warnings = s.cfg.Logs.Count()
	}
	return lookingglass.Dict{
		{Key: "BGP_established_peers", Value: established},
		{Key: "route_counts", Value: counts},
		{Key: "vpn_instances_count", Value: s.instanceCount()},
		{Key: "warnings_and_errors", Value: warnings},
		{Key: "start_time", Value: s.cfg.StartTime.Local().Format("2006-01-02 15:04:05")},
		{Key: "version", Value: version.Version},
	}
}

// routeCounts returns {local_routes_count, received_routes_count}.
func (s *Server) routeCounts() (lookingglass.Dict, error) {
	var received, local int
	if c, ok := s.cfg.Engine.(routeCounter); ok {
		received, local = c.RouteCounts() // no wait for the engine goroutine
	} else if err := s.inspect(func(v engine.View) { received, local = v.Counts() }); err != nil {
		return nil, err
	}
	return lookingglass.Dict{
		{Key: "local_routes_count", Value: local},
		{Key: "received_routes_count", Value: received},
	}, nil
}

func (s *Server) instanceCount() int {
	if s.cfg.InstanceCount != nil {
		return s.cfg.InstanceCount()
	}
	if s.cfg.VPNs == nil {
		return 0
	}
	for _, e := range s.cfg.VPNs.LookingGlass() {
		if e.Name == "instances" && e.Kind == lookingglass.Collection && e.List != nil {
			return len(e.List())
		}
	}
	return 0
}

func (s *Server) settings() any {
	if s.cfg.Settings == nil {
		return map[string]any{}
	}
	return s.cfg.Settings()
}

func (s *Server) logs() any {
	if s.cfg.Logs == nil {
		return []any{}
	}
	return s.cfg.Logs.Logs()
}

func (s *Server) vpnsObject() lookingglass.Object {
	if s.cfg.VPNs == nil {
		return lookingglass.Entries{}
	}
	return s.cfg.VPNs
}

func (s *Server) peers() []bgp.PeerStatus {
	if s.cfg.Peers == nil {
		return nil
	}
	return s.cfg.Peers.Peers()
}
