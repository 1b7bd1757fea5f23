package bgp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// ioTimeout bounds every wait of the tests (never asserted on).
const ioTimeout = 15 * time.Second

const testAS = 64512

var fakeIP = netip.MustParseAddr("127.0.0.2")

// testLogger logs to the test output.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelInfo // per-route debug logs would dominate
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// fakeWorker is a local engine worker recording what it receives.
type fakeWorker struct {
	src route.Source
	q   *engine.Queue[route.Event]
	buf []route.Event
}

func newFakeWorker(name string) *fakeWorker {
	return &fakeWorker{src: route.Source{Name: name}, q: engine.NewQueue[route.Event]()}
}

func (w *fakeWorker) Source() *route.Source        { return &w.src }
func (w *fakeWorker) Deliver(events []route.Event) { w.q.Push(events...) }

// next returns the next event received.
func (w *fakeWorker) next(t testing.TB) route.Event {
	t.Helper()
	if len(w.buf) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		evs, err := w.q.Take(ctx)
		if err != nil {
			t.Fatalf("%s: no route event: %v", w.src.Name, err)
		}
		w.buf = evs
	}
	ev := w.buf[0]
	w.buf = w.buf[1:]
	return ev
}

// env is a route engine and a speaker with one peer, the fake peer.
type env struct {
	t   testing.TB
	eng *engine.Engine
	sp  *Speaker
	cfg Config
	fp  *fakePeer
}

// newEnv starts an engine (with RTC generation when rtc) and a speaker whose
// only peer is a fake peer listening on 127.0.0.2. mod adjusts the config.
func newEnv(t testing.TB, rtc bool, mod func(*Config)) *env {
	t.Helper()
	return newEnvLog(t, rtc, mod, testLogger(t))
}

// newEnvLog is newEnv logging to log.
func newEnvLog(t testing.TB, rtc bool, mod func(*Config), log *slog.Logger) *env {
	t.Helper()
	t.Cleanup(func() { checkNoLeak(t) }) // runs last
	fp := newFakePeer(t)
	for !portFree(localIP, fp.port()) { // the speaker may listen on it too
		fp = newFakePeer(t)
	}
	cfg := Config{
		LocalAddress:   localIP,
		AS:             testAS,
		Peers:          []netip.Addr{fakeIP},
		Port:           fp.port(),
		EnableRTC:      true,
		ConnectRetry:   100 * time.Millisecond,
		ReconnectDelay: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	var rtcCfg *engine.RTCConfig
	if rtc {
		rtcCfg = &engine.RTCConfig{AS: cfg.AS, NextHop: cfg.LocalAddress}
	}
	eng := engine.New(log, rtcCfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		eng.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	sp := New(cfg, eng, log).(*Speaker)
	if err := sp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopSpeaker(t, sp) })
	return &env{t: t, eng: eng, sp: sp, cfg: sp.cfg, fp: fp}
}

func stopSpeaker(t testing.TB, sp *Speaker) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := sp.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// peerStatus returns the status of the only peer.
func (e *env) peerStatus() PeerStatus { return e.sp.Peers()[0] }

// fakePeer is a scripted BGP peer built from GoBGP's codec.
type fakePeer struct {
	t    testing.TB
	ln   *net.TCPListener
	mu   sync.Mutex
	conn net.Conn
	r    *msgReader
}

func newFakePeer(t testing.TB) *fakePeer {
	t.Helper()
	return newFakePeerAt(t, fakeIP, 0)
}

// newFakePeerAt returns a fake peer listening on ip:port (0: any port).
func newFakePeerAt(t testing.TB, ip netip.Addr, port uint16) *fakePeer {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // plain TCP: TCP MD5 tests set keys on it
	l, err := lc.Listen(context.Background(), "tcp4", net.JoinHostPort(ip.String(), itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	ln := l.(*net.TCPListener)
	fp := &fakePeer{t: t, ln: ln}
	t.Cleanup(func() {
		ln.Close()
		fp.close()
	})
	return fp
}

func (f *fakePeer) port() uint16 { return uint16(f.ln.Addr().(*net.TCPAddr).Port) }

// accept waits for the speaker's connection.
func (f *fakePeer) accept() {
	f.t.Helper()
	f.ln.SetDeadline(time.Now().Add(ioTimeout))
	c, err := f.ln.Accept()
	if err != nil {
		f.t.Fatalf("accept: %v", err)
	}
	f.use(c)
}

func (f *fakePeer) use(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conn, f.r = c, newMsgReader(c)
	f.r.opt.Use2ByteAS = false
}

func (f *fakePeer) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
	}
}

func (f *fakePeer) sendRaw(b []byte) {
	f.t.Helper()
	if _, err := f.conn.Write(b); err != nil {
		f.t.Fatalf("send: %v", err)
	}
}

func (f *fakePeer) send(m *bgp.BGPMessage) {
	f.t.Helper()
	f.sendRaw(serialize(f.t, m))
}

func serialize(t testing.TB, m *bgp.BGPMessage) []byte {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recv returns the next message from the speaker (NOTIFICATIONs included).
func (f *fakePeer) recv() *bgp.BGPMessage {
	f.t.Helper()
	msg, err := f.tryRecv()
	if err != nil {
		f.t.Fatalf("recv: %v", err)
	}
	return msg
}

func (f *fakePeer) tryRecv() (*bgp.BGPMessage, error) {
	f.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	msg, perr, err := f.r.next()
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	// Messages alias the reader's buffer: reparse a copy.
	n := int(binary.BigEndian.Uint16(f.r.hdr[16:18]))
	raw := append(f.r.hdr[:], f.r.body[:n-bgp.BGP_HEADER_LENGTH]...)
	_ = msg
	return bgp.ParseBGPMessage(raw)
}

// recvUpdate returns the next UPDATE, skipping keepalives.
func (f *fakePeer) recvUpdate() *bgp.BGPUpdate {
	f.t.Helper()
	for {
		msg := f.recv()
		switch b := msg.Body.(type) {
		case *bgp.BGPUpdate:
			return b
		case *bgp.BGPKeepAlive:
		default:
			f.t.Fatalf("unexpected message %T %+v", b, b)
		}
	}
}

// recvNotification returns the next NOTIFICATION, skipping other messages,
// and checks that the connection is then closed.
func (f *fakePeer) recvNotification() *bgp.BGPNotification {
	f.t.Helper()
	for {
		msg := f.recv()
		if n, ok := msg.Body.(*bgp.BGPNotification); ok {
			if _, err := f.tryRecv(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				f.t.Errorf("connection still open after NOTIFICATION: %v", err)
			}
			return n
		}
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

// openOpts describe the fake peer's OPEN.
type openOpts struct {
	as       uint32
	id       netip.Addr
	hold     uint16
	families []bgp.Family
	noAS4    bool
	version  uint8
	gr       *bgp.CapGracefulRestart // Graceful Restart capability, if any
}

func defaultOpen() openOpts {
	return openOpts{
		as: testAS, id: fakeIP, hold: 180,
		families: []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN, bgp.RF_FS_IPv4_VPN, bgp.RF_RTC_UC},
	}
}

func (o openOpts) message() *bgp.BGPMessage {
	var caps []bgp.ParameterCapabilityInterface
	for _, f := range o.families {
		caps = append(caps, bgp.NewCapMultiProtocol(f))
	}
	if !o.noAS4 {
		caps = append(caps, bgp.NewCapFourOctetASNumber(o.as))
	}
	caps = append(caps, bgp.NewCapRouteRefresh())
	if o.gr != nil {
		caps = append(caps, o.gr)
	}
	as := uint16(asTrans)
	if o.as <= 0xffff {
		as = uint16(o.as)
	}
	m, _ := bgp.NewBGPOpenMessage(as, o.hold, o.id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	if o.version != 0 {
		m.Body.(*bgp.BGPOpen).Version = o.version
	}
	return m
}

// handshake accepts the speaker's connection and establishes the session;
// it returns the speaker's OPEN.
func (f *fakePeer) handshake(o openOpts) *bgp.BGPOpen {
	f.t.Helper()
	f.accept()
	return f.establish(o)
}

func (f *fakePeer) establish(o openOpts) *bgp.BGPOpen {
	f.t.Helper()
	msg := f.recv()
	open, ok := msg.Body.(*bgp.BGPOpen)
	if !ok {
		f.t.Fatalf("expected OPEN, got %T", msg.Body)
	}
	f.send(o.message())
	f.send(bgp.NewBGPKeepAliveMessage())
	if _, ok := f.recv().Body.(*bgp.BGPKeepAlive); !ok {
		f.t.Fatal("expected KEEPALIVE")
	}
	return open
}

// waitEOR reads UPDATEs until End-of-RIB was received for n families and
// returns the other UPDATEs.
func (f *fakePeer) waitEOR(n int) []*bgp.BGPUpdate {
	f.t.Helper()
	var other []*bgp.BGPUpdate
	for n > 0 {
		u := f.recvUpdate()
		if eor, _ := u.IsEndOfRib(); eor {
			n--
			continue
		}
		other = append(other, u)
	}
	return other
}

// Route builders for the fake peer.

func vpnUpdate(t testing.TB, prefix string, label uint32, rt string, extra ...bgp.PathAttributeInterface) *bgp.BGPMessage {
	t.Helper()
	rd, _ := bgp.NewRouteDistinguisherIPAddressAS(fakeIP, 1)
	n, err := bgp.NewLabeledVPNIPAddrPrefix(netip.MustParsePrefix(prefix), *bgp.NewMPLSLabelStack(label), rd)
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv4_VPN, []bgp.PathNLRI{{NLRI: n}}, fakeIP)
	ec, _ := bgp.ParseRouteTarget(rt)
	attrs := []bgp.PathAttributeInterface{
		mp, bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100),
		bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{ec}),
	}
	return bgp.NewBGPUpdateMessage(nil, append(attrs, extra...), nil)
}

func vpnWithdraw(t testing.TB, prefix string) *bgp.BGPMessage {
	t.Helper()
	rd, _ := bgp.NewRouteDistinguisherIPAddressAS(fakeIP, 1)
	n, _ := bgp.NewLabeledVPNIPAddrPrefix(netip.MustParsePrefix(prefix), *bgp.NewMPLSLabelStack(bgp.WITHDRAW_LABEL), rd)
	mp, _ := bgp.NewPathAttributeMpUnreachNLRI(bgp.RF_IPv4_VPN, []bgp.PathNLRI{{NLRI: n}})
	return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{mp}, nil)
}

func rtcNLRI(origin uint32, rt string) bgp.NLRI {
	if rt == "" {
		return bgp.NewRouteTargetMembershipNLRI(origin, nil)
	}
	ec, _ := bgp.ParseRouteTarget(rt)
	return bgp.NewRouteTargetMembershipNLRI(origin, ec)
}

func rtcUpdate(origin uint32, rt string) *bgp.BGPMessage {
	mp, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_RTC_UC, []bgp.PathNLRI{{NLRI: rtcNLRI(origin, rt)}}, fakeIP)
	return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		mp, bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100),
	}, nil)
}

func rtcWithdraw(origin uint32, rt string) *bgp.BGPMessage {
	mp, _ := bgp.NewPathAttributeMpUnreachNLRI(bgp.RF_RTC_UC, []bgp.PathNLRI{{NLRI: rtcNLRI(origin, rt)}})
	return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{mp}, nil)
}

// reachNLRIs returns the NLRIs advertised and withdrawn by u.
func reachNLRIs(u *bgp.BGPUpdate) (adv, wd []bgp.NLRI) {
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			for _, p := range a.Value {
				adv = append(adv, p.NLRI)
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			for _, p := range a.Value {
				wd = append(wd, p.NLRI)
			}
		}
	}
	return adv, wd
}

// localRoute publishes a VPNv4 route from w.
func localVPNRoute(prefix string, label uint32, rts ...string) *route.Route {
	a := &route.Attrs{}
	for _, rt := range rts {
		a.RTs = append(a.RTs, route.MustParseRT(rt))
	}
	return &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(localIP, 1), Prefix: netip.MustParsePrefix(prefix)},
		Label:   label,
		NextHop: localIP,
		Attrs:   a,
	}
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }

// portFree reports whether port can be listened on at ip.
func portFree(ip netip.Addr, port uint16) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
