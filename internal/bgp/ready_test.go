package bgp

import (
	"bytes"
	"io"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// stepReader returns its chunks one Read at a time.
type stepReader struct{ chunks [][]byte }

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

// ready says whether the next message is entirely buffered (the session
// publishes what it decoded before reading a message that is not).
func TestReaderReady(t *testing.T) {
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	upd := encodeEvents(t, advertise(localVPNRoute("10.0.0.0/24", 100, "64512:1")))[0]
	// One read brings a keepalive, an UPDATE and the start of another.
	first := bytes.Join([][]byte{ka, upd, upd[:25]}, nil)
	r := newMsgReader(&stepReader{chunks: [][]byte{first, upd[25:]}})
	if r.ready() {
		t.Fatal("ready before anything was read")
	}
	for i, want := range []bool{true, false} {
		if _, _, err := r.next(); err != nil {
			t.Fatal(err)
		}
		if got := r.ready(); got != want {
			t.Fatalf("after message %d: ready %v, want %v", i+1, got, want)
		}
	}
	if _, _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if r.ready() {
		t.Fatal("ready with nothing buffered")
	}
}
