package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"bagpipe/internal/vpn"
)

// fakeVPN records the requests it gets and answers with err.
type fakeVPN struct {
	mu       sync.Mutex
	attaches []*vpn.AttachRequest
	detaches []*vpn.DetachRequest
	err      error
	hook     func() // called on each request, outside the lock
}

func (f *fakeVPN) Attach(_ context.Context, r *vpn.AttachRequest) error {
	if f.hook != nil {
		f.hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attaches = append(f.attaches, r)
	return f.err
}

func (f *fakeVPN) Detach(_ context.Context, r *vpn.DetachRequest) error {
	if f.hook != nil {
		f.hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detaches = append(f.detaches, r)
	return f.err
}

func (f *fakeVPN) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attaches) + len(f.detaches)
}

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// response is a recorded answer.
type response struct {
	status      int
	contentType string
	body        string
}

// do sends a request to h and returns the answer.
func do(t testing.TB, h http.Handler, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = "bagpipe.test:8082"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()}
}

// errorMessage decodes {"error": msg}.
func errorMessage(t testing.TB, r response) string {
	t.Helper()
	if r.contentType != "application/json" {
		t.Errorf("error content type = %q", r.contentType)
	}
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == nil {
		t.Fatalf("error body %q is not {\"error\": ...}: %v", r.body, err)
	}
	return *e.Error
}

// decode parses a JSON body.
func decode(t testing.TB, body string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", body, err)
	}
	return v
}
