package lookingglass

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"

	"bagpipe/internal/route"
)

func TestEncodeStringsLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "new\nline\ttab\rcr", "\x00\x1f ctl", "<html> & co",
		"héllo wörld", "emoji 🙂", "bad \xff utf8", "line\u2028sep\u2029", "'single'",
	} {
		var b bytes.Buffer
		if err := (JSON{Value: s}).Encode(&b); err != nil {
			t.Fatal(err)
		}
		got := b.Bytes()
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if back != want {
			t.Errorf("%q round-trips to %q", s, back)
		}
		if strings.Contains(s, "<") && !strings.Contains(string(got), "<") {
			t.Errorf("HTML characters should not be escaped: %s", got)
		}
	}
}

func TestEncodeValues(t *testing.T) {
	type custom struct {
		A int `json:"a"`
	}
	ref := Ref{ID: "VRF-1", Path: "bgp/workers/VRF-1"}
	v := map[string]any{
		"nil":      nil,
		"bool":     true,
		"ints":     []any{1, int64(-2), uint32(3), uint64(4), uint16(5), uint8(6), int32(7)},
		"float":    1.5,
		"nan":      math.NaN(),
		"number":   json.Number("123456789012345678901234567890"),
		"strings":  []string{"a", "b"},
		"typed":    map[string][]int{"z": {1}, "a": {2}},
		"refs":     []map[string]any{{"source": ref}},
		"refptr":   &ref,
		"nilref":   (*Ref)(nil),
		"addr":     netip.MustParseAddr("10.0.0.1"),
		"struct":   custom{A: 1},
		"ptr":      &custom{A: 2},
		"nilslice": []int(nil),
		"bytes":    []byte("hi"),
		"nested":   Dict{{"z", 1}, {"a", Dict{}}},
	}
	got, err := json.Marshal(JSON{Value: v, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"addr":"10.0.0.1","bool":true,"bytes":"aGk=","float":1.5,"ints":[1,-2,3,4,5,6,7],"nan":null,` +
		`"nested":{"z":1,"a":{}},"nil":null,"nilref":null,"nilslice":null,"number":123456789012345678901234567890,` +
		`"ptr":{"a":2},"refptr":{"id":"VRF-1","href":"` + base + `/bgp/workers/VRF-1"},` +
		`"refs":[{"source":{"id":"VRF-1","href":"` + base + `/bgp/workers/VRF-1"}}],` +
		`"strings":["a","b"],"struct":{"a":1},"typed":{"a":[2],"z":[1]}}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if compact.String() != want {
		t.Errorf("\n got %s\nwant %s", compact.String(), want)
	}
}

// countingWriter records the size of each write.
type countingWriter struct {
	bytes.Buffer
	writes []int
	fail   bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, errors.New("client gone")
	}
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

func TestEncodeStreamsLargeRouteLists(t *testing.T) {
	rs := make(Routes, 20000)
	attrs := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}}
	for i := range rs {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		rs[i] = &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(lo, 1), Prefix: netip.PrefixFrom(a, 32)},
			Label:   16,
			NextHop: lo,
			Attrs:   attrs,
			Source:  peer2,
		}
	}
	var w countingWriter
	if err := (JSON{Value: map[string]any{"ipv4/mpls-vpn,*": rs}, BaseURL: base}).Encode(&w); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) < 10 {
		t.Errorf("expected the output in many chunks, got %d writes", len(w.writes))
	}
	for _, n := range w.writes {
		if n > 2*flushSize {
			t.Errorf("chunk of %d bytes exceeds the flush size", n)
		}
	}
	var back map[string][]map[string]any
	if err := json.Unmarshal(w.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back["ipv4/mpls-vpn,*"]) != len(rs) {
		t.Errorf("decoded %d routes", len(back["ipv4/mpls-vpn,*"]))
	}

	failing := countingWriter{fail: true}
	if err := (JSON{Value: rs}).Encode(&failing); err == nil {
		t.Error("write errors must be reported")
	}
}
