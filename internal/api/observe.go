package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"bagpipe/internal/dataplane"
)

// RequestObserver is told the outcome of each attach and detach request
// (internal/metrics implements it). It must be quick and safe for
// concurrent use.
type RequestObserver interface {
	// APIRequest reports one request: op is "attach" or "detach", vpnType
	// "ipvpn", "evpn" or "" when the body named no valid type, status the
	// HTTP status answered and took the time from the request to the
	// answer.
	APIRequest(op, vpnType string, status int, took time.Duration)
}

// routeCounter gives the route counts without going through Inspect
// (*engine.Engine does).
type routeCounter interface {
	RouteCounts() (received, local int)
}

// requestInfo is filled while an observed request is served.
type requestInfo struct{ vpnType string }

type requestInfoKey struct{}

// observed wraps an attach or detach handler to report it to the
// RequestObserver.
func (s *Server) observed(op string, h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Requests == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.cfg.Requests.APIRequest(op, info.vpnType, sw.status, time.Since(start))
	}
}

// noteVPNType records the vpn_type of an observed request body, when it is
// a valid one.
func noteVPNType(ctx context.Context, p params) {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	if info == nil {
		return
	}
	if t, _ := p["vpn_type"].(string); t == string(dataplane.IPVPN) || t == string(dataplane.EVPN) {
		info.vpnType = t
	}
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// firstSegment returns the first segment of a request path ("metrics" for
// "/metrics", "ui" for "/ui/instances/x").
func firstSegment(path string) string {
	path = strings.TrimLeft(path, "/")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return path
}

// pageParams reads the optional offset and limit query parameters of a
// looking glass request (see lookingglass.Page). Without either, paged is
// false and the answer is the reference's, whole.
func pageParams(r *http.Request) (offset, limit int, paged bool, err error) {
	q := r.URL.Query()
	offset, limit = 0, -1
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &offset}, {"limit", &limit}} {
		v, ok := q[p.name]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v[len(v)-1]))
		if err != nil || n < 0 {
			return 0, 0, false, fmt.Errorf("%s: %q is not a non-negative integer", p.name, v[len(v)-1])
		}
		*p.dst, paged = n, true
	}
	return offset, limit, paged, nil
}
