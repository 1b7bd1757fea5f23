package fakerr

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRelay serves a Relay on an ephemeral loopback port.
func startRelay(t *testing.T) (addr string, log *lockedBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log = &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- (&Relay{Log: log}).Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String(), log
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes from c and compares them with want.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %q: %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// expectClosed checks that the relay closes c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || (err != io.EOF && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("connection not closed by the relay: n=%d err=%v", n, err)
	}
}

// waitLog waits until the relay has logged a line containing s.
func waitLog(t *testing.T, log *lockedBuffer, s string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(log.String(), s) {
			return
		}
	}
	t.Fatalf("log does not contain %q:\n%s", s, log.String())
}

func TestRelaySplicesTwoClients(t *testing.T) {
	addr, log := startRelay(t)

	a := dial(t, addr)
	send(t, a, "OPEN from a;")
	waitLog(t, log, "buffering received data (12 bytes)")
	send(t, a, "KEEPALIVE from a;")
	waitLog(t, log, "buffering received data (17 bytes)")

	b := dial(t, addr)
	expect(t, b, "OPEN from a;KEEPALIVE from a;")
	send(t, b, "hello a")
	expect(t, a, "hello a")
	send(t, a, "hello b")
	expect(t, b, "hello b")

	wantLog := "Got new peer: 127.0.0.1\n" +
		"127.0.0.1 is first peer, will buffer data until second peer arrives...\n" +
		"buffering received data (12 bytes)\n" +
		"buffering received data (17 bytes)\n" +
		"Got new peer: 127.0.0.1\n" +
		"127.0.0.1 is second peer, sending buffered data...\n" +
		"   sending buffered data to peer 127.0.0.1 (12 bytes)\n" +
		"   sending buffered data to peer 127.0.0.1 (17 bytes)\n" +
		"now ready\n"
	if got := log.String(); got != wantLog {
		t.Errorf("log:\n%s\nwant:\n%s", got, wantLog)
	}
}

func TestRelayRefusesThirdClient(t *testing.T) {
	addr, log := startRelay(t)
	a := dial(t, addr)
	b := dial(t, addr)
	waitLog(t, log, "now ready")

	c := dial(t, addr)
	expectClosed(t, c)
	waitLog(t, log, "Have already 2 peers, not accepting 127.0.0.1")

	// The established pair is not disturbed.
	send(t, a, "still")
	expect(t, b, "still")
	send(t, b, "there")
	expect(t, a, "there")
}

func TestRelayDropsPeerOfLostClient(t *testing.T) {
	addr, log := startRelay(t)
	a := dial(t, addr)
	b := dial(t, addr)
	waitLog(t, log, "now ready")

	a.Close()
	expectClosed(t, b)
	waitLog(t, log, "Lost peer 127.0.0.1\nLost peer 127.0.0.1\n")

	// The relay is free again for a new pair, and nothing of the old one
	// leaks into it.
	c := dial(t, addr)
	send(t, c, "new pair")
	d := dial(t, addr)
	expect(t, d, "new pair")
	send(t, d, "ok")
	expect(t, c, "ok")
}

func TestRelayForgetsBufferOfLostFirstClient(t *testing.T) {
	addr, log := startRelay(t)
	a := dial(t, addr)
	send(t, a, "stale")
	waitLog(t, log, "buffering received data (5 bytes)")
	a.Close()
	waitLog(t, log, "Lost peer")

	b := dial(t, addr)
	send(t, b, "fresh")
	c := dial(t, addr)
	expect(t, c, "fresh")
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--port", "x"}, {"extra"}, {"--nope"}} {
		var stdout, stderr bytes.Buffer
		if status := Run(args, &stdout, &stderr); status != 2 {
			t.Errorf("Run(%q) = %d, want 2", args, status)
		}
		if !strings.Contains(stderr.String(), "bagpipe-fakerr: error: ") {
			t.Errorf("Run(%q) stderr = %q", args, stderr.String())
		}
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if status := Run([]string{"--version"}, &stdout, &stderr); status != 0 {
		t.Fatalf("status %d", status)
	}
	if !strings.HasPrefix(stdout.String(), "bagpipe-fakerr ") {
		t.Errorf("stdout = %q", stdout.String())
	}
}
