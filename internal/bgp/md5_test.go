package bgp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
)

const md5Secret = "bagpipe-Md5-s3cret"

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// md5Env starts a speaker with the TCP MD5 password md5Secret, logging at
// debug level to the test and to the returned buffer; the fake peer's
// listener gets key as the key of the speaker's address.
func md5Env(t *testing.T, key string, mod func(*Config)) (*env, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, buf), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnvLog(t, false, func(c *Config) {
		c.MD5Password = md5Secret
		if mod != nil {
			mod(c)
		}
	}, log)
	if err := setListenerMD5(e.fp.ln, localIP, key); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(buf.String(), md5Secret) {
			t.Errorf("the TCP MD5 password is in the logs")
		}
	})
	return e, buf
}

// TestMD5: a session signed with the right password is established.
func TestMD5(t *testing.T) {
	e, buf := md5Env(t, md5Secret, nil)
	e.fp.handshake(defaultOpen())
	e.fp.waitEOR(4)
	if !strings.Contains(buf.String(), "md5=true") {
		t.Errorf("the start log does not say TCP MD5 is on")
	}
}

// TestMD5WrongPassword: with another password the peer's kernel drops
// every segment: no connection at all.
func TestMD5WrongPassword(t *testing.T) {
	e, _ := md5Env(t, "another password", nil)
	e.fp.ln.SetDeadline(time.Now().Add(3 * time.Second))
	if c, err := e.fp.ln.Accept(); err == nil {
		c.Close()
		t.Fatal("connection accepted with a wrong TCP MD5 password")
	}
	if st := e.peerStatus(); st.Stats.SessionsUp != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestMD5Listener: the listening socket holds the key of each peer:
// signed connections from the peer are accepted, others never complete.
func TestMD5Listener(t *testing.T) {
	e, _ := md5Env(t, md5Secret, func(c *Config) { c.Listen = true })
	dial := func(key string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: fakeIP.AsSlice()}, Timeout: 3 * time.Second}
		d.SetMultipathTCP(false)
		if key != "" {
			d.Control = md5Control(localIP, key)
		}
		return d.DialContext(context.Background(), "tcp4", net.JoinHostPort(localIP.String(), itoa(e.cfg.Port)))
	}
	for _, key := range []string{"", "another password"} {
		if c, err := dial(key); err == nil {
			c.Close()
			t.Errorf("connection with key %q accepted", key)
		}
	}
	c, err := dial(md5Secret)
	if err != nil {
		t.Fatal(err)
	}
	e.fp.use(c)
	if _, ok := e.fp.recv().Body.(*bgp.BGPOpen); !ok {
		t.Error("no OPEN on the signed connection")
	}
}

// TestConfigReliability: invalid graceful restart, maximum prefixes and
// TCP MD5 settings are refused by Start, without quoting the password.
func TestConfigReliability(t *testing.T) {
	long := strings.Repeat("s3cret", 14) // 84 bytes
	for _, cfg := range []Config{
		{RestartTime: 4096},
		{MaxPrefixes: -1},
		{MD5Password: long},
		{PeerMD5Passwords: map[netip.Addr]string{fakeIP: long}},
	} {
		cfg.LocalAddress, cfg.AS, cfg.Peers = localIP, 1, []netip.Addr{fakeIP}
		err := New(cfg, engine.New(nil, nil), nil).Start(t.Context())
		if err == nil {
			t.Errorf("%+v accepted", cfg)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
}
