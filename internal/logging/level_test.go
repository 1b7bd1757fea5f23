package logging

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the handler and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLevelHandler(t *testing.T) {
	out := &syncBuffer{}
	l, err := New(Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.LevelHandler())
	defer srv.Close()
	do := func(method, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		method, body string
		status       int
		answer       string
		level        slog.Level
	}{
		{"GET", "", 200, `{"level":"INFO"}`, slog.LevelInfo},
		{"PUT", "debug", 200, `{"level":"DEBUG"}`, slog.LevelDebug},
		{"POST", `"Warning"`, 200, `{"level":"WARNING"}`, slog.LevelWarn},
		{"PUT", `{"level": "INFO"}`, 200, `{"level":"INFO"}`, slog.LevelInfo},
		{"PUT", "verbose", 400, `{"error":"unknown log level \"verbose\" (use debug, info, warning, error or critical)"}`, slog.LevelInfo},
		{"DELETE", "", 405, `{"error":"The method DELETE is not allowed for this resource."}`, slog.LevelInfo},
	}
	for _, tt := range tests {
		status, answer := do(tt.method, tt.body)
		if status != tt.status || answer != tt.answer {
			t.Errorf("%s %q: %d %s, want %d %s", tt.method, tt.body, status, answer, tt.status, tt.answer)
		}
		if got := l.Level.Level(); got != tt.level {
			t.Errorf("%s %q: level %v, want %v", tt.method, tt.body, got, tt.level)
		}
	}
	// Debug records show only while the level is DEBUG; the changes are
	// logged.
	l.Logger.Debug("hidden")
	do("PUT", "debug")
	l.Logger.Debug("shown")
	do("PUT", "info")
	got := out.String()
	if strings.Contains(got, "hidden") || !strings.Contains(got, "msg=shown") {
		t.Errorf("debug output not switched:\n%s", got)
	}
	if n := strings.Count(got, `msg="log level changed"`); n != 5 {
		t.Errorf("%d level changes logged, want 5:\n%s", n, got)
	}
}
