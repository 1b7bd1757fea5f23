package bgp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// openHoldTime is the hold time while waiting for the peer's OPEN
// (RFC 4271 §8: "a large value", 4 minutes suggested).
const openHoldTime = 4 * time.Minute

// Errors ending a connection.
var (
	errCollision        = errors.New("connection collision")
	errHoldTimerExpired = errors.New("hold timer expired")
	// errPeerReconnected ends an established session when the peer, which
	// announced graceful restart, opens a new one (RFC 4724 §4.2): as a
	// TCP failure, its routes are kept as stale.
	errPeerReconnected = errors.New("the peer opened a new session (graceful restart)")
)

// notificationError is a NOTIFICATION sent or received.
type notificationError struct {
	code, subcode uint8
	received      bool
}

func (e *notificationError) Error() string {
	dir := "sent"
	if e.received {
		dir = "received"
	}
	return fmt.Sprintf("NOTIFICATION %s: %s", dir, bgp.NewNotificationErrorCode(e.code, e.subcode).String())
}

// conn is one TCP connection to the peer and its FSM, from OpenSent to the
// end of the session. Its goroutine (run) reads; writes go through write,
// serialised by wmu, so that shutdown can send a NOTIFICATION at any time.
type conn struct {
	p        *peer
	nc       net.Conn
	outgoing bool
	log      *slog.Logger

	state    atomic.Uint32 // State, read by the peer goroutine
	remoteID netip.Addr    // set before evOpenConfirm
	verdict  chan bool     // the peer goroutine's answers
	doomed   bool          // closed by collision resolution (peer goroutine only)
	replaced bool          // established session closed for a new connection (peer goroutine only)

	ctx    context.Context // canceled by shutdown
	cancel context.CancelFunc
	rd     *msgReader

	wmu  sync.Mutex
	bw   *bufio.Writer
	werr error

	closeOnce sync.Once
	closeErr  error // why shutdown was called, when it sent a NOTIFICATION
}

func newConn(p *peer, nc net.Conn, outgoing bool) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		p:        p,
		nc:       nc,
		outgoing: outgoing,
		log:      p.log,
		verdict:  make(chan bool, 1),
		ctx:      ctx,
		cancel:   cancel,
		rd:       newMsgReader(nc),
		bw:       bufio.NewWriterSize(nc, 64<<10),
	}
	c.state.Store(uint32(Connect))
	return c
}

// run is the connection goroutine: handshake, then session.
func (c *conn) run() {
	err := c.handshakeAndServe()
	c.shutdown(nil)
	if c.closeErr != nil {
		err = c.closeErr // the NOTIFICATION we sent says why
	}
	c.p.events <- connEvent{kind: evClosed, c: c, err: err}
}

func (c *conn) handshakeAndServe() error {
	neg, err := c.handshake()
	if err != nil {
		return err
	}
	return newSession(c, neg).run()
}

// handshake runs OpenSent and OpenConfirm.
func (c *conn) handshake() (*negotiated, error) {
	cfg := c.p.cfg
	if err := c.writeMsg(openMessage(cfg, c.p.restarting())); err != nil {
		return nil, err
	}
	c.setState(OpenSent)
	if !c.tell(evOpenSent) {
		return nil, context.Canceled
	}

	msg, _, err := c.read(openHoldTime)
	if err != nil {
		return nil, err
	}
	open, ok := msg.Body.(*bgp.BGPOpen)
	if !ok {
		return nil, c.fail(bgp.BGP_ERROR_FSM_ERROR, bgp.BGP_ERROR_SUB_RECEIVE_UNEXPECTED_MESSAGE_IN_OPENSENT_STATE)
	}
	neg, perr := negotiate(open, cfg)
	if perr != nil {
		c.log.Warn("OPEN refused", "error", perr.Error())
		c.shutdown(notification(perr))
		return nil, &notificationError{code: perr.TypeCode, subcode: perr.SubTypeCode}
	}
	c.remoteID = neg.peerID
	c.rd.opt.Use2ByteAS = !neg.as4
	c.setState(OpenConfirm)
	if !c.ask(evOpenConfirm, nil) {
		c.shutdown(bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION, nil))
		return nil, errCollision
	}
	if err := c.writeMsg(bgp.NewBGPKeepAliveMessage()); err != nil {
		return nil, err
	}

	wait := time.Duration(neg.holdTime) * time.Second
	if wait == 0 {
		wait = openHoldTime
	}
	msg, _, err = c.read(wait)
	if err != nil {
		return nil, err
	}
	if _, ok := msg.Body.(*bgp.BGPKeepAlive); !ok {
		return nil, c.fail(bgp.BGP_ERROR_FSM_ERROR, bgp.BGP_ERROR_SUB_RECEIVE_UNEXPECTED_MESSAGE_IN_OPENCONFIRM_STATE)
	}
	if !c.ask(evEstablished, &neg) {
		c.shutdown(bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION, nil))
		return nil, errCollision
	}
	c.setState(Established)
	return &neg, nil
}

func (c *conn) setState(s State) { c.state.Store(uint32(s)) }

// tell reports an event to the peer goroutine.
func (c *conn) tell(kind connEventKind) bool {
	select {
	case c.p.events <- connEvent{kind: kind, c: c}:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// ask reports an event and waits for the peer goroutine's verdict.
func (c *conn) ask(kind connEventKind, neg *negotiated) bool {
	select {
	case c.p.events <- connEvent{kind: kind, c: c, neg: neg}:
	case <-c.ctx.Done():
		return false
	}
	select {
	case ok := <-c.verdict:
		return ok
	case <-c.ctx.Done():
		return false
	}
}

// read reads the next message, waiting at most timeout (0: forever). Fatal
// conditions are handled here: a malformed message or an expired hold
// timer sends the NOTIFICATION and closes the connection; a NOTIFICATION
// received closes it. The message is then nil and err says why. Otherwise
// perr may report an UPDATE error whose handling lets the session go on.
func (c *conn) read(timeout time.Duration) (*bgp.BGPMessage, *bgp.MessageError, error) {
	// The deadline only matters for a read that waits for the network: a
	// message already buffered is read without one (one timer update less
	// per UPDATE of a burst).
	if !c.rd.ready() {
		var deadline time.Time
		if timeout > 0 {
			deadline = time.Now().Add(timeout)
		}
		if err := c.nc.SetReadDeadline(deadline); err != nil {
			return nil, nil, err
		}
	}
	msg, perr, err := c.rd.next()
	switch {
	case err != nil:
		if errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil {
			c.log.Warn("hold timer expired")
			c.shutdown(bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_HOLD_TIMER_EXPIRED, 0, nil))
			return nil, nil, errHoldTimerExpired
		}
		return nil, nil, err
	case msg == nil:
		c.log.Warn("malformed message", "error", perr.Error())
		c.shutdown(notification(perr))
		return nil, nil, &notificationError{code: perr.TypeCode, subcode: perr.SubTypeCode}
	}
	if n, ok := msg.Body.(*bgp.BGPNotification); ok {
		err := &notificationError{code: n.ErrorCode, subcode: n.ErrorSubcode, received: true}
		c.log.Warn("NOTIFICATION received", "error", err.Error(), "data_len", len(n.Data))
		return nil, nil, err
	}
	return msg, perr, nil
}

// fail sends a NOTIFICATION, closes the connection and returns the error.
func (c *conn) fail(code, subcode uint8) error {
	err := &notificationError{code: code, subcode: subcode}
	c.log.Warn("closing connection", "error", err.Error())
	c.shutdown(bgp.NewBGPNotificationMessage(code, subcode, nil))
	return err
}

// write buffers b, and flushes when flush is set.
func (c *conn) write(b []byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	_, err := c.bw.Write(b)
	if err == nil && flush {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = err
	}
	return err
}

func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = err
	}
	return c.werr
}

func (c *conn) writeMsg(m *bgp.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	return c.write(b, true)
}

// shutdown closes the connection once, sending notif first when not nil.
// It can be called from any goroutine; a writer blocked on a full socket is
// released by a write deadline.
func (c *conn) shutdown(notif *bgp.BGPMessage) {
	c.closeOnce.Do(func() {
		if notif != nil {
			n := notif.Body.(*bgp.BGPNotification)
			c.closeErr = &notificationError{code: n.ErrorCode, subcode: n.ErrorSubcode}
		}
		c.cancel()
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.wmu.Lock()
		if notif != nil && c.werr == nil {
			if b, err := notif.Serialize(); err == nil {
				_ = c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.bw.Write(b); err == nil {
					_ = c.bw.Flush()
				}
			}
		}
		c.werr = net.ErrClosed
		c.wmu.Unlock()
		_ = c.nc.Close()
	})
}
