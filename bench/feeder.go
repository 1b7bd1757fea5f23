package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"golang.org/x/sys/unix"
)

// feederHoldTime is the hold time the feeder proposes. The reference refuses
// hold times of 30 s or less and only counts KEEPALIVEs as signs of life, so
// the feeder sends a KEEPALIVE every third of it, even while feeding.
const feederHoldTime = 180

// noPacing (experiments only, never with the reference) writes without
// looking at the receiver's window.
var noPacing = os.Getenv("BAGPIPE_BENCH_NO_PACING") != ""

// maxWrite bounds one write: whole messages only, and less than the
// loopback MSS, so that one write is one TCP segment.
const maxWrite = 16 << 10

// feeder is the BGP peer the daemons connect to (they connect out, as the
// reference only does). It listens on a loopback address; each accepted
// connection becomes a session once the OPEN/KEEPALIVE exchange is done.
type feeder struct {
	addr netip.Addr
	port int
	ln   net.Listener
	fams []bgp.Family
	rtc  bool

	mu      sync.Mutex
	waiting map[netip.Addr]chan net.Conn
}

// newFeeder listens on addr:port (port 0: any free port). Without RTC the
// daemons send it every route they advertise.
func newFeeder(addr netip.Addr, port int) (*feeder, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	f := &feeder{
		addr:    addr,
		port:    ln.Addr().(*net.TCPAddr).Port,
		ln:      ln,
		fams:    []bgp.Family{bgp.RF_IPv4_VPN, bgp.RF_EVPN},
		waiting: map[netip.Addr]chan net.Conn{},
	}
	go f.acceptLoop()
	return f, nil
}

func (f *feeder) close() { f.ln.Close() }

func (f *feeder) acceptLoop() {
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		ra, _ := netip.AddrFromSlice(nc.RemoteAddr().(*net.TCPAddr).IP)
		ra = ra.Unmap()
		f.mu.Lock()
		ch := f.waiting[ra]
		f.mu.Unlock()
		if ch == nil {
			nc.Close()
			continue
		}
		select {
		case ch <- nc:
		default:
			nc.Close() // one session per daemon
		}
	}
}

// expect prepares the feeder for a connection from a daemon whose BGP
// local address is from; call it before starting the daemon.
func (f *feeder) expect(from netip.Addr) {
	f.mu.Lock()
	f.waiting[from] = make(chan net.Conn, 1)
	f.mu.Unlock()
}

// session waits for the daemon at from to connect and establishes the
// session.
func (f *feeder) session(ctx context.Context, from netip.Addr) (*session, error) {
	f.mu.Lock()
	ch := f.waiting[from]
	f.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("feeder: no connection expected from %s", from)
	}
	var nc net.Conn
	select {
	case nc = <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("feeder: no BGP connection from %s: %w", from, ctx.Err())
	}
	f.mu.Lock()
	delete(f.waiting, from)
	f.mu.Unlock()
	s, err := newSession(nc.(*net.TCPConn), f.addr, f.fams)
	if err != nil {
		nc.Close()
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.handshake(hctx); err != nil {
		s.close()
		return nil, fmt.Errorf("feeder: handshake with %s: %w", from, err)
	}
	s.start()
	return s, nil
}

// dialSession connects the feeder from its address to a BGP speaker (the
// route reflector of the RT Constraint scenario) and establishes a session.
func (f *feeder) dialSession(ctx context.Context, to netip.AddrPort) (*session, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: f.addr.AsSlice()}}
	var nc net.Conn
	var err error
	for {
		nc, err = d.DialContext(ctx, "tcp", to.String())
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("feeder: cannot connect to %s: %w", to, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s, err := newSession(nc.(*net.TCPConn), f.addr, f.fams)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := s.handshake(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("feeder: handshake with %s: %w", to, err)
	}
	s.start()
	return s, nil
}

// session is one established BGP session of the feeder.
type session struct {
	nc  *net.TCPConn
	raw interface {
		Control(func(fd uintptr)) error
	}
	id   netip.Addr
	fams []bgp.Family

	wmu sync.Mutex // serialises writes (feed, keepalives)

	// Pacing statistics of send: how often and how long the feeder waited
	// for the receiver's window.
	waits  int
	waited time.Duration

	done    chan struct{}
	errMu   sync.Mutex
	err     error
	updates atomic.Int64 // UPDATEs received from the daemon
	nlris   atomic.Int64 // advertised NLRIs received from the daemon

	wmu2    sync.Mutex // guards waiters
	waiters map[string]chan time.Time
}

func newSession(nc *net.TCPConn, id netip.Addr, fams []bgp.Family) (*session, error) {
	raw, err := nc.SyscallConn()
	if err != nil {
		return nil, err
	}
	_ = nc.SetNoDelay(true)
	return &session{nc: nc, raw: raw, id: id, fams: fams, done: make(chan struct{}), waiters: map[string]chan time.Time{}}, nil
}

// readMsg reads one whole BGP message.
func (s *session) readMsg() ([]byte, error) {
	var hdr [bgp.BGP_HEADER_LENGTH]byte
	if _, err := io.ReadFull(s.nc, hdr[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint16(hdr[16:18]))
	if l < bgp.BGP_HEADER_LENGTH || l > bgp.BGP_MAX_MESSAGE_LENGTH {
		return nil, fmt.Errorf("bad message length %d", l)
	}
	msg := make([]byte, l)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(s.nc, msg[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func (s *session) handshake(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = s.nc.SetDeadline(dl)
		defer s.nc.SetDeadline(time.Time{})
	}
	var caps []bgp.ParameterCapabilityInterface
	for _, f := range s.fams {
		caps = append(caps, bgp.NewCapMultiProtocol(f))
	}
	open, err := bgp.NewBGPOpenMessage(feedAS, feederHoldTime, s.id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	if err != nil {
		return err
	}
	if err := s.writeMsg(open); err != nil {
		return err
	}
	gotOpen := false
	for {
		b, err := s.readMsg()
		if err != nil {
			return err
		}
		m, err := bgp.ParseBGPMessage(b)
		if err != nil {
			return err
		}
		switch body := m.Body.(type) {
		case *bgp.BGPOpen:
			if gotOpen {
				return errors.New("second OPEN")
			}
			gotOpen = true
			if err := s.writeMsg(bgp.NewBGPKeepAliveMessage()); err != nil {
				return err
			}
		case *bgp.BGPKeepAlive:
			if gotOpen {
				return nil
			}
		case *bgp.BGPNotification:
			return fmt.Errorf("NOTIFICATION %d/%d", body.ErrorCode, body.ErrorSubcode)
		}
	}
}

func (s *session) writeMsg(m *bgp.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeWhole(b)
}

// start runs the reader and the keepalive sender.
func (s *session) start() {
	go s.readLoop()
	go func() {
		t := time.NewTicker(feederHoldTime / 3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				if err := s.writeMsg(bgp.NewBGPKeepAliveMessage()); err != nil {
					s.fail(err)
					return
				}
			}
		}
	}()
}

func (s *session) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
		close(s.done)
	}
	s.errMu.Unlock()
	s.nc.Close()
}

// failed returns why the session ended (nil while it is up).
func (s *session) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *session) close() { s.fail(errors.New("closed by the bench")) }

// readLoop decodes what the daemon sends; UPDATEs wake the waiters of the
// NLRIs they advertise.
func (s *session) readLoop() {
	for {
		b, err := s.readMsg()
		if err != nil {
			s.fail(fmt.Errorf("read: %w", err))
			return
		}
		now := time.Now()
		if b[18] != bgp.BGP_MSG_UPDATE {
			if b[18] == bgp.BGP_MSG_NOTIFICATION {
				s.fail(fmt.Errorf("NOTIFICATION received from the daemon (% x)", b[19:min(len(b), 21)]))
				return
			}
			continue
		}
		s.updates.Add(1)
		m, err := bgp.ParseBGPMessage(b)
		if err != nil {
			continue // not our concern: the bench only looks for its routes
		}
		for _, a := range m.Body.(*bgp.BGPUpdate).PathAttributes {
			mp, ok := a.(*bgp.PathAttributeMpReachNLRI)
			if !ok {
				continue
			}
			s.nlris.Add(int64(len(mp.Value)))
			for _, n := range mp.Value {
				if k := nlriKey(n.NLRI); k != "" {
					s.wake(k, now)
				}
			}
		}
	}
}

// nlriKey identifies an advertised route for the latency measurement: the
// MAC of an E-VPN MAC/IP route, the prefix of a VPNv4 route.
func nlriKey(n bgp.NLRI) string {
	switch n := n.(type) {
	case *bgp.EVPNNLRI:
		if r, ok := n.RouteTypeData.(*bgp.EVPNMacIPAdvertisementRoute); ok {
			return r.MacAddress.String()
		}
	case *bgp.LabeledVPNIPAddrPrefix:
		return n.Prefix.String()
	}
	return ""
}

// await returns a channel that receives the arrival time of the first
// UPDATE advertising key (see nlriKey) received from now on.
func (s *session) await(key string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	s.wmu2.Lock()
	s.waiters[key] = ch
	s.wmu2.Unlock()
	return ch
}

func (s *session) forget(key string) {
	s.wmu2.Lock()
	delete(s.waiters, key)
	s.wmu2.Unlock()
}

func (s *session) wake(key string, t time.Time) {
	s.wmu2.Lock()
	ch := s.waiters[key]
	delete(s.waiters, key)
	s.wmu2.Unlock()
	if ch != nil {
		ch <- t
	}
}

// window returns how many bytes may be written now without the daemon ever
// seeing part of a message: nothing of ours is still unsent (so a write is
// sent at once, as one segment of its own), and the receiver's advertised
// window, minus what it has not acknowledged yet, takes the write whole.
// The reference (exabgp) loses the BGP framing when a read returns part of
// a message (spec §11); a receiver that reads faster than we write never
// makes the feeder wait here.
func (s *session) window() (int, error) {
	var avail int
	var serr error
	err := s.raw.Control(func(fd uintptr) {
		unsent, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD)
		if err != nil || unsent > 0 {
			serr = err
			return
		}
		outq, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) // unacknowledged
		if err != nil {
			serr = err
			return
		}
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			serr = err
			return
		}
		avail = max(int(info.Snd_wnd)-outq, 0)
	})
	if err != nil {
		return 0, err
	}
	return avail, serr
}

// writeWhole writes b (whole messages), paced by window. Callers hold wmu.
func (s *session) writeWhole(b []byte) error {
	for {
		w, err := s.window()
		if err != nil {
			return err
		}
		if w >= len(b) {
			_, err := s.nc.Write(b)
			return err
		}
		if err := s.failed(); err != nil {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// send writes a pre-encoded stream, cutting it only between messages, and
// returns when everything is written. Keepalives may slip between writes.
func (s *session) send(ctx context.Context, st *stream) error {
	pos := 0
	for pos < len(st.buf) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.failed(); err != nil {
			return err
		}
		s.wmu.Lock()
		w, err := s.window()
		if err != nil {
			s.wmu.Unlock()
			return err
		}
		if noPacing {
			w = maxWrite
		}
		end := st.cut(pos, min(w, maxWrite))
		wrote := end > pos
		if wrote {
			_, err = s.nc.Write(st.buf[pos:end])
			pos = end
		}
		s.wmu.Unlock()
		if err != nil {
			return err
		}
		if !wrote {
			t := time.Now()
			time.Sleep(100 * time.Microsecond)
			s.waits++
			s.waited += time.Since(t)
		}
	}
	return nil
}
