package bgp

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// TestReaderFraming reads messages delivered one byte per Read.
func TestReaderFraming(t *testing.T) {
	msgs := encodeEvents(t, advertise(
		localVPNRoute("10.0.0.0/24", 100, "64512:1"),
		localVPNRoute("10.0.1.0/24", 101, "64512:2"),
	))
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	stream := bytes.Join([][]byte{msgs[0], ka, msgs[1], ka}, nil)
	r := newMsgReader(iotest.OneByteReader(bytes.NewReader(stream)))
	var types []uint8
	for {
		msg, perr, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil || perr != nil {
			t.Fatalf("%v %v", err, perr)
		}
		types = append(types, msg.Header.Type)
	}
	want := []uint8{bgp.BGP_MSG_UPDATE, bgp.BGP_MSG_KEEPALIVE, bgp.BGP_MSG_UPDATE, bgp.BGP_MSG_KEEPALIVE}
	if !bytes.Equal(types, want) {
		t.Errorf("types %v, want %v", types, want)
	}
	// A message cut short is an I/O error, not a protocol one.
	r = newMsgReader(bytes.NewReader(msgs[0][:30]))
	if _, _, err := r.next(); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated message: %v", err)
	}
}

// TestReaderHeaderErrors checks the NOTIFICATION codes of RFC 4271 §6.1.
func TestReaderHeaderErrors(t *testing.T) {
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(ka)) }
	for _, tc := range []struct {
		name    string
		msg     []byte
		subcode uint8
		data    []byte
	}{
		{"marker", mod(func(b []byte) []byte { b[0] = 0; return b }), bgp.BGP_ERROR_SUB_CONNECTION_NOT_SYNCHRONIZED, nil},
		{"short", mod(func(b []byte) []byte { b[17] = 18; return b }), bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, []byte{0, 18}},
		{"keepalive with a body", mod(func(b []byte) []byte { b[17] = 20; return append(b, 0) }), bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, []byte{0, 20}},
		{"too long", mod(func(b []byte) []byte { b[16], b[17], b[18] = 0x10, 0x01, bgp.BGP_MSG_UPDATE; return b }), bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, []byte{0x10, 0x01}},
		{"type", mod(func(b []byte) []byte { b[18] = 9; return b }), bgp.BGP_ERROR_SUB_BAD_MESSAGE_TYPE, []byte{9}},
	} {
		_, perr, err := newMsgReader(bytes.NewReader(tc.msg)).next()
		if err != nil || perr == nil {
			t.Errorf("%s: %v %v", tc.name, err, perr)
			continue
		}
		if perr.TypeCode != bgp.BGP_ERROR_MESSAGE_HEADER_ERROR || perr.SubTypeCode != tc.subcode || !bytes.Equal(perr.Data, tc.data) {
			t.Errorf("%s: %d/%d %x", tc.name, perr.TypeCode, perr.SubTypeCode, perr.Data)
		}
	}
}

// TestOutQueue checks the writer inbox.
func TestOutQueue(t *testing.T) {
	q := newOutQueue()
	r := localVPNRoute("10.0.0.0/24", 100)
	q.pushEvents([]route.Event{{Route: r}, {Route: r}})
	q.pushEOR([]route.Family{route.IPv4VPN})
	if q.len() != 3 {
		t.Fatalf("len %d", q.len())
	}
	items := q.take()
	if len(items) != 3 || items[2].eor != route.IPv4VPN || q.take() != nil {
		t.Fatalf("take %+v", items)
	}
	q.recycle(items)
	q.pushEvents([]route.Event{{Route: r}})
	q.clear()
	if q.len() != 0 {
		t.Error("clear")
	}
}
