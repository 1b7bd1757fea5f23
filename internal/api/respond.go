package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"bagpipe/internal/vpn"
)

// writeJSON sends a JSON text.
func writeJSON(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// writeError sends {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	writeJSON(w, status, string(b))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("The method %s is not allowed for this resource.", r.Method))
}

// readBody reads a request body of at most MaxBodySize bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &vpn.Error{Status: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("request body too large (limit %d bytes)", MaxBodySize)}
	}
	if err != nil {
		return nil, vpn.BadRequest("reading the request body: %v", err)
	}
	return body, nil
}

func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	s.apply(w, r, "plug to", func(ctx context.Context, p params) error {
		req, err := parseAttach(p)
		if err != nil {
			return err
		}
		return s.callVPN(func() error { return s.cfg.VPN.Attach(ctx, req) })
	})
}

func (s *Server) detach(w http.ResponseWriter, r *http.Request) {
	s.apply(w, r, "unplug from", func(ctx context.Context, p params) error {
		req, err := parseDetach(p)
		if err != nil {
			return err
		}
		return s.callVPN(func() error { return s.cfg.VPN.Detach(ctx, req) })
	})
}

// errNoVPN is returned when the server has no VPN service.
var errNoVPN = errors.New("no VPN service")

func (s *Server) callVPN(f func() error) error {
	if s.cfg.VPN == nil {
		return errNoVPN
	}
	return f()
}

// apply runs an attach or detach: read and decode the body, run op, and
// answer null (200) or the error. The operation is not canceled when the
// client goes away: a half-applied attachment would be worse.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, what string, op func(context.Context, params) error) {
	body, err := readBody(w, r)
	var p params
	if err == nil {
		p, err = decodeParams(body)
	}
	if err == nil {
		noteVPNType(r.Context(), p)
		err = op(context.WithoutCancel(r.Context()), p)
	}
	if err == nil {
		writeJSON(w, http.StatusOK, "null")
		return
	}
	var ve *vpn.Error
	if errors.As(err, &ve) {
		s.log.Info("local port "+what+" VPN refused", "path", r.URL.Path, "vpn_instance_id", p["vpn_instance_id"],
			"status", ve.Status, "error", ve.Msg)
		writeError(w, ve.Status, ve.Msg)
		return
	}
	s.log.Error("local port "+what+" VPN failed", "path", r.URL.Path, "vpn_instance_id", p["vpn_instance_id"], "error", err)
	writeError(w, http.StatusInternalServerError, fmt.Sprintf("An error occurred during local port %s VPN: %v", what, err))
}
