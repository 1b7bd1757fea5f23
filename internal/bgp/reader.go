package bgp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// msgReader frames and parses BGP messages from a byte stream. Framing only
// trusts the length field of the header, so messages may arrive split or
// coalesced in any way. Parsed messages alias the reader's buffer: they are
// valid until the next call to next.
type msgReader struct {
	br   *bufio.Reader
	hdr  [bgp.BGP_HEADER_LENGTH]byte
	body [bgp.BGP_MAX_MESSAGE_LENGTH - bgp.BGP_HEADER_LENGTH]byte
	opt  bgp.MarshallingOption
}

func newMsgReader(r io.Reader) *msgReader {
	return &msgReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next reads one message. It returns an I/O error (io.EOF, timeout...) as
// err; a protocol error as perr, with the message when it is an UPDATE whose
// error handling (RFC 7606) allows going on.
func (r *msgReader) next() (msg *bgp.BGPMessage, perr *bgp.MessageError, err error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return nil, nil, err
	}
	var h bgp.BGPHeader
	if err := h.DecodeFromBytes(r.hdr[:]); err != nil {
		perr := asMessageError(err, bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, 0)
		if perr.SubTypeCode == bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH {
			perr.Data = append([]byte(nil), r.hdr[16:18]...) // RFC 4271 §6.1
		}
		return nil, perr, nil
	}
	if perr := checkLength(&h, r.hdr[16:18]); perr != nil {
		return nil, perr, nil
	}
	body := r.body[:int(h.Len)-bgp.BGP_HEADER_LENGTH]
	if _, err := io.ReadFull(r.br, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	msg, perr = parseBody(&h, body, &r.opt)
	return msg, perr, nil
}

// ready reports whether a whole message is buffered, so that next will not
// wait for the network (a bad length counts as ready: next fails at once).
func (r *msgReader) ready() bool {
	n := r.br.Buffered()
	if n < bgp.BGP_HEADER_LENGTH {
		return false
	}
	h, err := r.br.Peek(bgp.BGP_HEADER_LENGTH)
	if err != nil {
		return false
	}
	return n >= int(binary.BigEndian.Uint16(h[16:18]))
}

// checkLength applies RFC 4271 §6.1: the length must fit the message type.
func checkLength(h *bgp.BGPHeader, lenField []byte) *bgp.MessageError {
	min, max := uint16(bgp.BGP_HEADER_LENGTH), uint16(bgp.BGP_MAX_MESSAGE_LENGTH)
	switch h.Type {
	case bgp.BGP_MSG_OPEN:
		min = 29
	case bgp.BGP_MSG_UPDATE:
		min = 23
	case bgp.BGP_MSG_NOTIFICATION:
		min = 21
	case bgp.BGP_MSG_KEEPALIVE:
		max = bgp.BGP_HEADER_LENGTH
	case bgp.BGP_MSG_ROUTE_REFRESH:
		min, max = 23, 23
	default:
		return newMessageError(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_TYPE,
			[]byte{h.Type}, fmt.Sprintf("unknown message type %d", h.Type))
	}
	if h.Len < min || h.Len > max {
		return newMessageError(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH,
			append([]byte(nil), lenField...), fmt.Sprintf("bad length %d for message type %d", h.Len, h.Type))
	}
	return nil
}

// parseBody decodes a message body with GoBGP. A panic in the decoder on
// hostile input becomes a session-resetting error, never a crash.
func parseBody(h *bgp.BGPHeader, body []byte, opt *bgp.MarshallingOption) (msg *bgp.BGPMessage, perr *bgp.MessageError) {
	defer func() {
		if p := recover(); p != nil {
			msg, perr = nil, newMessageError(errorCodeFor(h.Type), 0, nil, fmt.Sprintf("undecodable message: %v", p))
		}
	}()
	m, err := bgp.ParseBGPBody(h, body, opt)
	if err == nil {
		return m, nil
	}
	perr = asMessageError(err, errorCodeFor(h.Type), 0)
	if m == nil || h.Type != bgp.BGP_MSG_UPDATE || perr.ErrorHandling == bgp.ERROR_HANDLING_SESSION_RESET {
		return nil, perr
	}
	return m, perr
}

// errorCodeFor returns the NOTIFICATION error code for a malformed message
// of type t.
func errorCodeFor(t uint8) uint8 {
	switch t {
	case bgp.BGP_MSG_OPEN:
		return bgp.BGP_ERROR_OPEN_MESSAGE_ERROR
	case bgp.BGP_MSG_UPDATE:
		return bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR
	case bgp.BGP_MSG_ROUTE_REFRESH:
		return bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR
	}
	return bgp.BGP_ERROR_MESSAGE_HEADER_ERROR
}

func newMessageError(code, subcode uint8, data []byte, msg string) *bgp.MessageError {
	return bgp.NewMessageError(code, subcode, data, msg).(*bgp.MessageError)
}

// asMessageError converts a decoder error to a MessageError, defaulting the
// codes when the decoder returned a plain error.
func asMessageError(err error, code, subcode uint8) *bgp.MessageError {
	if me, ok := err.(*bgp.MessageError); ok {
		if me.TypeCode == 0 {
			me.TypeCode, me.SubTypeCode = code, subcode
		}
		return me
	}
	return newMessageError(code, subcode, nil, err.Error())
}

// notification builds the NOTIFICATION reporting e.
func notification(e *bgp.MessageError) *bgp.BGPMessage {
	data := e.Data
	if max := bgp.BGP_MAX_MESSAGE_LENGTH - 21; len(data) > max {
		data = data[:max]
	}
	return bgp.NewBGPNotificationMessage(e.TypeCode, e.SubTypeCode, data)
}

// putUint16 is a tiny helper for NOTIFICATION data fields.
func putUint16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
