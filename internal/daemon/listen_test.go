package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/config"
)

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}, Timeout: 5 * time.Second}
}

// The API is served on the Unix socket with its configured permissions,
// alone when tcp_listener is false, and the socket goes with the daemon.
func TestAPIUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "api.sock")
	n := startNode(t, "127.0.0.1", "127.0.0.2", freePort(t), "unix_socket = "+sock+"\nunix_socket_mode = 0600\ntcp_listener = false\n")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if a := n.d.APIAddr(); a.IsValid() {
		t.Errorf("TCP API address %v with tcp_listener = false", a)
	}
	resp, err := unixClient(sock).Get("http://bagpipe/ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(strings.TrimSpace(string(body))) == 0 {
		t.Errorf("GET /ping over the socket: %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after stop: %v", err)
	}
	if dir, _ := os.ReadDir(filepath.Dir(sock)); len(dir) != 0 {
		t.Errorf("files left beside the socket: %v", dir)
	}
}

// A regular file in the socket's place is an error, not removed.
func TestAPIUnixSocketRefusesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	lns, err := apiListeners(&config.APIConfig{UnixSocket: path, UnixSocketMode: 0o600})
	if err == nil {
		for _, ln := range lns {
			ln.Close()
		}
		t.Fatal("listening over a regular file succeeded")
	}
	if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("error %q", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Error("the file was changed")
	}
}
