// Package api is the REST API of the daemon (spec §3): /ping,
// /attach_localport, /detach_localport and the /looking-glass tree, served
// with net/http, compatible with the clients of the reference daemon.
package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"bagpipe/internal/bgp"
	"bagpipe/internal/engine"
	"bagpipe/internal/logging"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/vpn"
)

// MaxBodySize bounds attach and detach request bodies.
const MaxBodySize = 1 << 20

// DefaultInspectTimeout bounds the wait for the engine when the looking
// glass reads its state.
const DefaultInspectTimeout = 10 * time.Second

// VPNService applies attachments: the VPN manager.
type VPNService interface {
	Attach(ctx context.Context, r *vpn.AttachRequest) error
	Detach(ctx context.Context, r *vpn.DetachRequest) error
}

// Inspector gives read access to the route engine (*engine.Engine).
type Inspector interface {
	Inspect(ctx context.Context, f func(engine.View)) error
}

// PeerLister lists the BGP peers (the bgp.Router).
type PeerLister interface {
	Peers() []bgp.PeerStatus
}

// Config holds what the server serves. Only VPN is needed for attachments;
// nil looking glass sources show as empty.
type Config struct {
	// VPN applies attach and detach requests.
	VPN VPNService
	// Engine is the route engine, read by the looking glass.
	Engine Inspector
	// Peers lists the BGP peers.
	Peers PeerLister
	// VPNs is the looking glass object of the VPN manager (/vpns).
	VPNs lookingglass.Object
	// InstanceCount returns the number of VPN instances (summary); when
	// nil, the items of the "instances" collection of VPNs are counted.
	InstanceCount func() int
	// Settings returns the effective configuration (/config), e.g.
	// (*config.Config).Effective.
	Settings func() map[string]map[string]any
	// Logs keeps the warnings and errors shown by /logs and per worker.
	Logs *logging.Catcher
	// Logger logs the server's own events (slog.Default when nil).
	Logger *slog.Logger
	// StartTime is the daemon start time (summary); time.Now when zero.
	StartTime time.Time
	// InspectTimeout bounds each engine read (DefaultInspectTimeout when 0).
	InspectTimeout time.Duration
	// Requests is told the outcome and duration of each attach and detach
	// (metrics); nil: nobody.
	Requests RequestObserver
	// Handlers serve extra paths, by first path segment (e.g. "metrics"
	// for /metrics, "ui" for /ui/...), before the API's own routes.
	Handlers map[string]http.Handler
}

// Server is the REST API server. It is an http.Handler.
type Server struct {
	cfg  Config
	log  *slog.Logger
	ping string // JSON text of the ping number
	root lookingglass.Object
}

// New returns a server. It chooses the /ping number: a random non-zero
// 128-bit integer, different at each start.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartTime.IsZero() {
		cfg.StartTime = time.Now()
	}
	if cfg.InspectTimeout <= 0 {
		cfg.InspectTimeout = DefaultInspectTimeout
	}
	ping, err := randomPing()
	if err != nil {
		return nil, fmt.Errorf("choosing the ping number: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With(logging.ComponentKey, "api"), ping: ping.String()}
	s.root = s.lookingGlassRoot()
	return s, nil
}

// randomPing returns a random integer in [1, 2^128).
func randomPing() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// Ping returns the number /ping answers.
func (s *Server) Ping() *big.Int {
	n, _ := new(big.Int).SetString(s.ping, 10)
	return n
}

// LookingGlass returns the root looking glass object.
func (s *Server) LookingGlass() lookingglass.Object { return s.root }

// ServeHTTP routes a request (spec §3.2).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic while serving a request", "path", r.URL.Path, "panic", v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	if h := s.cfg.Handlers[firstSegment(r.URL.Path)]; h != nil {
		h.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodHead {
		w = headWriter{w}
	}
	segs, ok := splitPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "The resource could not be found.")
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case len(segs) == 0:
		s.methods(w, r, get, nil, "GET, HEAD")
	case len(segs) == 1 && segs[0] == "ping":
		writeJSON(w, http.StatusOK, s.ping)
	case len(segs) == 1 && segs[0] == "attach_localport":
		s.methods(w, r, get, s.observed("attach", s.attach), "GET, HEAD, POST")
	case len(segs) == 1 && segs[0] == "detach_localport":
		s.methods(w, r, get, s.observed("detach", s.detach), "GET, HEAD, POST")
	case segs[0] == "looking-glass":
		if !get {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		s.lookingGlass(w, r, segs[1:])
	default:
		writeError(w, http.StatusNotFound, "The resource could not be found.")
	}
}

// headWriter drops the body of a HEAD answer.
type headWriter struct{ http.ResponseWriter }

func (headWriter) Write(p []byte) (int, error) { return len(p), nil }

// methods answers GET with {} and POST with post (when not nil).
func (s *Server) methods(w http.ResponseWriter, r *http.Request, get bool, post http.HandlerFunc, allow string) {
	switch {
	case get:
		writeJSON(w, http.StatusOK, "{}")
	case r.Method == http.MethodPost && post != nil:
		post(w, r)
	default:
		methodNotAllowed(w, r, allow)
	}
}

// ignoredExtensions are the suffixes the reference (pecan) takes as a
// content type: ".json" is stripped from the last path segment, the others
// are not found.
var ignoredExtensions = []string{
	".html", ".htm", ".xml", ".txt", ".js", ".css", ".csv", ".yaml", ".yml",
	".pdf", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico",
}

// splitPath splits a request path into segments, dropping empty ones (a
// trailing slash is accepted) and a ".json" suffix of the last segment.
func splitPath(p string) ([]string, bool) {
	var segs []string
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return nil, true
	}
	last := &segs[len(segs)-1]
	if t, ok := strings.CutSuffix(*last, ".json"); ok && t != "" {
		*last = t
		return segs, true
	}
	for _, ext := range ignoredExtensions {
		if len(*last) > len(ext) && strings.EqualFold((*last)[len(*last)-len(ext):], ext) {
			return nil, false
		}
	}
	return segs, true
}

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully
// (in-flight requests get up to 5 seconds).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		case <-done:
		}
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on addr ("host:port") and serves until ctx is
// done. The listen backlog is the system's (somaxconn), not the
// reference's 5.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	s.log.Info("API listening", "address", ln.Addr().String())
	return s.Serve(ctx, ln)
}
