package ovs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ofConn is an OpenFlow 1.5 connection to ovs-vswitchd's management socket
// of a bridge (<rundir>/<bridge>.mgmt). Batches of messages are sent and
// confirmed with a barrier: errors the switch returns for any message of
// the batch are reported by Send.
type ofConn struct {
	path string

	mu   sync.Mutex // one batch at a time; guards conn, rd, xid
	conn net.Conn
	rd   *bufio.Reader
	xid  uint32
}

func newOFConn(path string) *ofConn { return &ofConn{path: path} }

// OFError is an OFPT_ERROR the switch returned.
type OFError struct {
	Type, Code uint16
	MsgType    uint8 // type of the offending message, when included
}

func (e *OFError) Error() string {
	return fmt.Sprintf("OpenFlow error type %d code %d (offending message type %d)", e.Type, e.Code, e.MsgType)
}

func (c *ofConn) connect(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return fmt.Errorf("OpenFlow connection to %s: %w", c.path, err)
	}
	c.conn, c.rd = conn, bufio.NewReader(conn)
	c.xid++
	if _, err := conn.Write(hello(c.xid)); err != nil {
		c.closeLocked()
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, _, body, err := c.read()
	if err != nil {
		c.closeLocked()
		return fmt.Errorf("OpenFlow hello from %s: %w", c.path, err)
	}
	if typ == ofptError {
		c.closeLocked()
		return fmt.Errorf("OpenFlow hello from %s: version negotiation failed (OpenFlow 1.5 not enabled on the bridge?): %s", c.path, body)
	}
	if typ != ofptHello {
		c.closeLocked()
		return fmt.Errorf("OpenFlow hello from %s: unexpected message type %d", c.path, typ)
	}
	return nil
}

func (c *ofConn) closeLocked() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.rd = nil, nil
	}
}

// Close closes the connection.
func (c *ofConn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

// read reads one message: type, xid, body.
func (c *ofConn) read() (uint8, uint32, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(c.rd, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return 0, 0, nil, fmt.Errorf("bad OpenFlow message length %d", n)
	}
	body := make([]byte, n-8)
	if _, err := io.ReadFull(c.rd, body); err != nil {
		return 0, 0, nil, err
	}
	if h[0] != ofVersion && h[1] != ofptHello && h[1] != ofptError {
		return 0, 0, nil, fmt.Errorf("unexpected OpenFlow version %d", h[0])
	}
	return h[1], binary.BigEndian.Uint32(h[4:]), body, nil
}

// Send sends the messages (xids are assigned here) followed by a barrier,
// and waits for the barrier reply. It reconnects once if the connection
// was lost.
func (c *ofConn) Send(ctx context.Context, msgs ...[]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.sendLocked(ctx, msgs)
	var ofErr *OFError
	if err != nil && !errors.As(err, &ofErr) && ctx.Err() == nil {
		c.closeLocked()
		err = c.sendLocked(ctx, msgs)
	}
	return err
}

func (c *ofConn) sendLocked(ctx context.Context, msgs [][]byte) error {
	if c.conn == nil {
		if err := c.connect(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	first := c.xid + 1
	var buf []byte
	for _, m := range msgs {
		c.xid++
		binary.BigEndian.PutUint32(m[4:], c.xid)
		buf = append(buf, m...)
	}
	c.xid++
	barrierXID := c.xid
	buf = append(buf, barrier(barrierXID)...)
	if _, err := c.conn.Write(buf); err != nil {
		return err
	}
	var errs []error
	for {
		typ, xid, body, err := c.read()
		if err != nil {
			return err
		}
		switch typ {
		case ofptEchoRequest:
			reply := header(ofptEchoReply, 8+len(body), xid)
			if _, err := c.conn.Write(append(reply, body...)); err != nil {
				return err
			}
		case ofptError:
			if xid >= first && xid < barrierXID && len(body) >= 4 {
				e := &OFError{Type: binary.BigEndian.Uint16(body), Code: binary.BigEndian.Uint16(body[2:])}
				if len(body) >= 6 {
					e.MsgType = body[5]
				}
				errs = append(errs, e)
			}
		case ofptBarrierReply:
			if xid == barrierXID {
				return errors.Join(errs...)
			}
		}
	}
}

// GroupIDs returns the ids of the groups of the bridge (OFPMP_GROUP_DESC).
func (c *ofConn) GroupIDs(ctx context.Context) ([]uint32, error) {
	entries, err := c.Dump(ctx, func(xid uint32) []byte { return groupDescRequest(xid) })
	if err != nil {
		return nil, err
	}
	ids := make([]uint32, 0, len(entries))
	for _, e := range entries {
		if len(e) >= 8 {
			ids = append(ids, binary.BigEndian.Uint32(e[4:]))
		}
	}
	return ids, nil
}

// Groups returns the description of the groups of the bridge.
func (c *ofConn) Groups(ctx context.Context) ([]GroupDesc, error) {
	entries, err := c.Dump(ctx, func(xid uint32) []byte { return groupDescRequest(xid) })
	if err != nil {
		return nil, err
	}
	out := make([]GroupDesc, 0, len(entries))
	for _, e := range entries {
		g, err := decodeGroupDesc(e)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// Flows returns the flows of every table whose cookie matches cookie
// under mask (OFPMP_FLOW_DESC).
func (c *ofConn) Flows(ctx context.Context, cookie, mask uint64) ([]FlowDesc, error) {
	entries, err := c.Dump(ctx, func(xid uint32) []byte { return flowDescRequest(xid, cookie, mask) })
	if err != nil {
		return nil, err
	}
	out := make([]FlowDesc, 0, len(entries))
	for _, e := range entries {
		f, err := decodeFlowDesc(e)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Dump sends the multipart request req builds (given its xid) and returns
// the entries of the replies (each starting with its 16-bit length, as
// flow and group descriptions do). It reconnects once if the connection
// was lost.
func (c *ofConn) Dump(ctx context.Context, req func(xid uint32) []byte) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, err := c.dumpLocked(ctx, req)
	var ofErr *OFError
	if err != nil && !errors.As(err, &ofErr) && ctx.Err() == nil {
		c.closeLocked()
		out, err = c.dumpLocked(ctx, req)
	}
	return out, err
}

func (c *ofConn) dumpLocked(ctx context.Context, req func(xid uint32) []byte) ([][]byte, error) {
	if c.conn == nil {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	c.xid++
	want := c.xid
	if _, err := c.conn.Write(req(want)); err != nil {
		c.closeLocked()
		return nil, err
	}
	var out [][]byte
	for {
		typ, xid, body, err := c.read()
		if err != nil {
			c.closeLocked()
			return nil, err
		}
		switch {
		case typ == ofptEchoRequest:
			reply := header(ofptEchoReply, 8+len(body), xid)
			if _, err := c.conn.Write(append(reply, body...)); err != nil {
				c.closeLocked()
				return nil, err
			}
		case typ == ofptError && xid == want:
			e := &OFError{}
			if len(body) >= 4 {
				e.Type, e.Code = binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
			}
			return nil, e
		case typ == ofptMultipartReply && xid == want && len(body) >= 8:
			more := binary.BigEndian.Uint16(body[2:])&ofpmpReplyMore != 0
			entries := body[8:]
			for len(entries) >= 4 {
				n := int(binary.BigEndian.Uint16(entries))
				if n < 4 || n > len(entries) {
					c.closeLocked()
					return nil, fmt.Errorf("bad entry length %d in a multipart reply", n)
				}
				out = append(out, entries[:n])
				entries = entries[n:]
			}
			if !more {
				return out, nil
			}
		}
	}
}
