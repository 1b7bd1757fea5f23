package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/config"
	"bagpipe/internal/logging"
)

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

// TestReload: a reload applies the log level and the peer list, and names
// the other changed options as needing a restart (without their values).
func TestReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bgp.conf")
	port := freePort(t)
	write := func(debug bool, peers string, extra string) *config.Config {
		t.Helper()
		content := fmt.Sprintf("[DEFAULT]\ndebug = %v\n[BGP]\nlocal_address = 127.0.0.1\npeers = %s\nmy_as = 64512\n"+
			"bgp_port = %d\n%s[API]\nhost = 127.0.0.1\nport = 0\n", debug, peers, port, extra)
		if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, warnings, err := config.Load(&config.Flags{Sources: []config.Source{{Path: conf}}}, config.BuiltinDriverOptions()...)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("config: %v %q", err, warnings)
		}
		return cfg
	}
	out := &syncBuffer{}
	logs, err := logging.New(logging.Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(write(false, "127.0.0.2", "md5_password = first-s3cret\n"), logs)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	peerAddrs := func() []netip.Addr {
		var out []netip.Addr
		for _, p := range d.router.Peers() {
			out = append(out, p.PeerAddress)
		}
		return out
	}

	// New peers and debug logging; two options that need a restart.
	cfg := write(true, "127.0.0.3, 127.0.0.4", "md5_password = second-s3cret\nmax_prefixes = 10\n")
	if err := d.Reload(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := logs.Level.Level(); got != slog.LevelDebug {
		t.Errorf("log level %v after the reload, want DEBUG", got)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")}
	if got := peerAddrs(); !slices.Equal(got, want) {
		t.Errorf("peers %v after the reload, want %v", got, want)
	}
	logText := out.String()
	if !strings.Contains(logText, "need a restart") || !strings.Contains(logText, "[BGP] md5_password") ||
		!strings.Contains(logText, "[BGP] max_prefixes") || strings.Contains(logText, "[BGP] peers") {
		t.Errorf("restart warning missing or wrong:\n%s", logText)
	}
	if strings.Contains(logText, "s3cret") {
		t.Errorf("a password is in the logs:\n%s", logText)
	}

	// An invalid peer list changes nothing; the level stays.
	if err := d.Reload(t.Context(), write(true, "127.0.0.1", "")); err == nil {
		t.Error("our own address accepted as a peer")
	}
	if got := peerAddrs(); !slices.Equal(got, want) {
		t.Errorf("peers %v after a failed reload, want %v", got, want)
	}
	// Back to info, one peer removed.
	if err := d.Reload(t.Context(), write(false, "127.0.0.4", "")); err != nil {
		t.Fatal(err)
	}
	if got := logs.Level.Level(); got != slog.LevelInfo {
		t.Errorf("log level %v, want INFO", got)
	}
	if got := peerAddrs(); !slices.Equal(got, want[1:]) {
		t.Errorf("peers %v, want %v", got, want[1:])
	}
}
