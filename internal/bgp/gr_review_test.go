package bgp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// expectEvents checks that the next len(want) events of w are want
// ("+prefix": advertisement, "-prefix": withdrawal), in any order.
func expectEvents(t *testing.T, w *fakeWorker, want ...string) {
	t.Helper()
	left := map[string]int{}
	for _, s := range want {
		left[s]++
	}
	for range want {
		ev := w.next(t)
		s := "+" + ev.Route.NLRI.Prefix.String()
		if ev.Kind == route.Withdraw {
			s = "-" + ev.Route.NLRI.Prefix.String()
		}
		if left[s] == 0 {
			t.Fatalf("got %s, want %v", s, want)
		}
		left[s]--
	}
}

// TestGRConsecutiveRestarts: when the session is lost again before the
// routes kept from the previous loss were advertised again, those are
// withdrawn at once (RFC 4724 §4.2); the others become stale.
func TestGRConsecutiveRestarts(t *testing.T) {
	o := grOpen(30, false) // restart time longer than any wait of the test
	e, w := grSetup(t, o, nil)
	e.fp.close()
	e.lostWithStale(2)

	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1")) // identical: no event
	e.waitPeer("10.1 advertised again", func(st PeerStatus) bool { return st.GracefulRestart.StaleRoutes == 1 })
	e.fp.close() // before End-of-RIB: 10.2 is still stale

	expectEvent(t, w, route.Withdraw, "10.2.0.0/16")
	e.lostWithStale(1)
	if st := e.peerStatus(); st.Stats.StaleRoutesWithdrawn != 1 {
		t.Errorf("stats %+v", st.Stats)
	}

	// Back again: 10.1 is confirmed, nothing else happens.
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	e.fp.send(vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.3.0.0/16") // and nothing about 10.1 before it
	if st := e.peerStatus(); st.GracefulRestart.StaleRoutes != 0 || st.Stats.StaleRoutesWithdrawn != 1 {
		t.Errorf("status %+v, stats %+v", st.GracefulRestart, st.Stats)
	}
}

// dialSpeaker opens a connection from the fake peer's address to the
// speaker's listener.
func dialSpeaker(t *testing.T, e *env) *fakePeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: fakeIP.AsSlice()}, Timeout: ioTimeout}
	nc, err := d.Dial("tcp", net.JoinHostPort(localIP.String(), itoa(e.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	b := &fakePeer{t: t}
	b.use(nc)
	t.Cleanup(b.close)
	return b
}

// TestGRPeerReconnects: a peer that announced graceful restart and opens a
// new connection while our session with it is still established (it
// restarted, and its old connection was never reset) gets the new session
// at once: the old one is closed as if TCP had failed, its routes kept as
// stale (RFC 4724 §4.2).
func TestGRPeerReconnects(t *testing.T) {
	o := grOpen(30, true)
	e, w := grSetup(t, o, func(c *Config) { c.Listen = true })
	old := e.fp

	b := dialSpeaker(t, e)
	if _, ok := b.recv().Body.(*bgp.BGPOpen); !ok {
		t.Fatal("expected OPEN")
	}
	b.send(o.message())
	b.send(bgp.NewBGPKeepAliveMessage())
	if msg := b.recv(); msg.Header.Type != bgp.BGP_MSG_KEEPALIVE {
		t.Fatalf("new connection: got %T %+v, want KEEPALIVE", msg.Body, msg.Body)
	}
	b.waitEOR(3)

	// The old connection is closed, without NOTIFICATION.
	for {
		msg, err := old.tryRecv()
		if errors.Is(err, io.EOF) || isReset(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Type != bgp.BGP_MSG_KEEPALIVE && msg.Header.Type != bgp.BGP_MSG_UPDATE {
			t.Fatalf("old connection: got %T %+v", msg.Body, msg.Body)
		}
	}
	st := e.peerStatus()
	if st.Protocol.State != Established || st.GracefulRestart.StaleRoutes != 2 || st.Stats.SessionsUp != 2 {
		t.Errorf("status %+v, stats %+v", st.GracefulRestart, st.Stats)
	}
	// The routes were kept: the End-of-RIB sweeps those not sent again.
	b.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	b.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	expectEvent(t, w, route.Withdraw, "10.2.0.0/16")
	b.send(vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.3.0.0/16")
}

// TestMaxPrefixesExcludesStale: routes kept stale from the previous session
// do not count against max_prefixes, and the count follows withdrawals and
// replacements exactly.
func TestMaxPrefixesExcludesStale(t *testing.T) {
	o := grOpen(30, true)
	e, w := grSetup(t, o, func(c *Config) { c.MaxPrefixes = 2 })
	e.fp.close()
	e.lostWithStale(2)

	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))
	e.fp.send(vpnUpdate(t, "10.4.0.0/16", 104, "64512:1"))
	e.fp.send(vpnUpdate(t, "10.3.0.0/16", 113, "64512:1")) // replaces: still 2
	expectEvents(t, w, "+10.3.0.0/16", "+10.4.0.0/16", "+10.3.0.0/16")
	e.fp.send(vpnWithdraw(t, "10.4.0.0/16"))
	e.fp.send(vpnWithdraw(t, "10.1.0.0/16")) // stale: not counted either way
	e.fp.send(vpnWithdraw(t, "10.9.0.0/16")) // unknown
	e.fp.send(vpnUpdate(t, "10.5.0.0/16", 105, "64512:1"))
	expectEvents(t, w, "-10.4.0.0/16", "-10.1.0.0/16", "+10.5.0.0/16")
	e.fp.send(bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	expectEvent(t, w, route.Withdraw, "10.2.0.0/16")
	if st := e.peerStatus(); st.Stats.MaxPrefixesExceeded != 0 || st.Protocol.State != Established {
		t.Fatalf("status %+v", st)
	}

	e.fp.send(vpnUpdate(t, "10.6.0.0/16", 106, "64512:1")) // third route
	n := e.fp.recvNotification()
	if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED {
		t.Fatalf("NOTIFICATION %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
	expectEvent(t, w, route.Advertise, "10.6.0.0/16")
	expectWithdrawals(t, w, "10.3.0.0/16", "10.5.0.0/16", "10.6.0.0/16")
}

// hookHandler is a slog handler calling hook on every record first.
type hookHandler struct {
	slog.Handler
	hook func(slog.Record)
}

func (h *hookHandler) Handle(ctx context.Context, r slog.Record) error {
	h.hook(r)
	return h.Handler.Handle(ctx, r)
}

func (h *hookHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &hookHandler{h.Handler.WithAttrs(as), h.hook}
}

func (h *hookHandler) WithGroup(name string) slog.Handler {
	return &hookHandler{h.Handler.WithGroup(name), h.hook}
}

// capturedTimer is a graceful restart timer the test fires itself.
type capturedTimer struct {
	d    time.Duration
	fire func()
}

// captureTimers makes the graceful restart timers of the speaker's only
// peer fire only when the test says so.
func (e *env) captureTimers() <-chan capturedTimer {
	ch := make(chan capturedTimer, 16)
	e.sp.mu.Lock()
	p := e.sp.peers[0]
	e.sp.mu.Unlock()
	p.stale.mu.Lock()
	p.stale.afterFunc = func(d time.Duration, f func()) *time.Timer {
		ch <- capturedTimer{d, f}
		return time.AfterFunc(time.Hour, func() {})
	}
	p.stale.mu.Unlock()
	return ch
}

// TestGRStaleTimeDuringBatch: when the stale timer expires while
// re-advertisements are still in the reader's unpublished batch, they are
// not withdrawn (and advertised again): the sweep follows the batch.
func TestGRStaleTimeDuringBatch(t *testing.T) {
	const staleTime = 42 * time.Second
	blocked, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	log := slog.New(&hookHandler{testLogger(t).Handler(), func(r slog.Record) {
		if r.Message != "route received" {
			return
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "route" && strings.Contains(a.Value.String(), "10.3.0.0/16") {
				once.Do(func() {
					close(blocked)
					<-release // the reader holds 10.1 in its batch meanwhile
				})
			}
			return true
		})
	}})
	o := grOpen(30, false)
	e := newEnvLog(t, false, func(c *Config) {
		c.GracefulRestart = true
		c.StaleTime = staleTime
	}, log)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the speaker stops
	timers := e.captureTimers()
	w := newFakeWorker("VRF-1")
	e.eng.Subscribe(w, engine.Match{Family: route.IPv4VPN})
	e.fp.handshake(o)
	e.fp.waitEOR(3)
	e.fp.send(vpnUpdate(t, "10.1.0.0/16", 101, "64512:1"))
	e.fp.send(vpnUpdate(t, "10.2.0.0/16", 102, "64512:1"))
	expectEvents(t, w, "+10.1.0.0/16", "+10.2.0.0/16")
	e.fp.close()
	e.lostWithStale(2)

	e.fp.handshake(o)
	e.fp.waitEOR(3)
	var stale capturedTimer
	for stale.fire == nil {
		select {
		case tm := <-timers:
			if tm.d == staleTime {
				stale = tm
			}
		case <-time.After(ioTimeout):
			t.Fatal("no stale timer")
		}
	}
	// 10.1 (identical) and 10.3 in one write: the reader batches them.
	e.fp.sendRaw(append(serialize(t, vpnUpdate(t, "10.1.0.0/16", 101, "64512:1")),
		serialize(t, vpnUpdate(t, "10.3.0.0/16", 103, "64512:1"))...))
	select {
	case <-blocked:
	case <-time.After(ioTimeout):
		t.Fatal("reader not seen decoding 10.3")
	}
	stale.fire() // the stale time expires now
	releaseOnce.Do(func() { close(release) })
	expectEvents(t, w, "+10.3.0.0/16", "-10.2.0.0/16") // and nothing about 10.1
	e.fp.send(vpnUpdate(t, "10.4.0.0/16", 104, "64512:1"))
	expectEvent(t, w, route.Advertise, "10.4.0.0/16")
	if st := e.peerStatus(); st.GracefulRestart.StaleRoutes != 0 || st.Stats.StaleRoutesWithdrawn != 1 {
		t.Errorf("status %+v, stats %+v", st.GracefulRestart, st.Stats)
	}
}
