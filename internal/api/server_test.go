package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/vpn"
)

// pingValue decodes a /ping answer: a bare JSON integer.
func pingValue(t *testing.T, r response) *big.Int {
	t.Helper()
	if r.status != http.StatusOK || r.contentType != "application/json" {
		t.Fatalf("ping answer %d %q", r.status, r.contentType)
	}
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("ping body %q: %v", r.body, err)
	}
	num, ok := v.(json.Number)
	if !ok {
		t.Fatalf("ping body %q is not a number", r.body)
	}
	n, ok := new(big.Int).SetString(string(num), 10)
	if !ok {
		t.Fatalf("ping body %q is not an integer", r.body)
	}
	return n
}

func TestPing(t *testing.T) {
	s1 := newTestServer(t, Config{})
	s2 := newTestServer(t, Config{})
	first := pingValue(t, do(t, s1, http.MethodGet, "/ping", ""))
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	if first.Sign() <= 0 || first.Cmp(limit) >= 0 {
		t.Errorf("ping %v is not a non-zero 128-bit number", first)
	}
	if first.Cmp(s1.Ping()) != 0 {
		t.Errorf("Ping() = %v, served %v", s1.Ping(), first)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, p := range []string{"/ping", "/ping/", "/ping.json"} {
			if got := pingValue(t, do(t, s1, m, p, "")); got.Cmp(first) != 0 {
				t.Errorf("%s %s = %v, want the stable %v", m, p, got, first)
			}
		}
	}
	if other := pingValue(t, do(t, s2, http.MethodGet, "/ping", "")); other.Cmp(first) == 0 {
		t.Error("two servers answered the same ping number")
	}
}

func TestRandomPingNeverZero(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		n, err := randomPing()
		if err != nil {
			t.Fatal(err)
		}
		if n.Sign() <= 0 || n.BitLen() > 128 || seen[n.String()] {
			t.Fatalf("bad ping %v", n)
		}
		seen[n.String()] = true
	}
}

func TestRoutingTable(t *testing.T) {
	s := newTestServer(t, Config{VPN: &fakeVPN{}})
	for _, tc := range []struct {
		method, path string
		body         string
		status       int
		want         string // body for successes ("" = any JSON)
	}{
		{"GET", "/", "", 200, "{}"},
		{"HEAD", "/", "", 200, ""},
		{"POST", "/", "", 405, ""},
		{"PUT", "/", "", 405, ""},
		{"DELETE", "/", "", 405, ""},
		{"GET", "/attach_localport", "", 200, "{}"},
		{"GET", "/attach_localport/", "", 200, "{}"},
		{"GET", "/attach_localport.json", "", 200, "{}"},
		{"GET", "/detach_localport", "", 200, "{}"},
		{"POST", "/attach_localport", evpnBase, 200, "null"},
		{"POST", "/attach_localport/", evpnBase, 200, "null"},
		{"POST", "/attach_localport.json", evpnBase, 200, "null"},
		{"POST", "/detach_localport", evpnBase, 200, "null"},
		{"PUT", "/attach_localport", evpnBase, 405, ""},
		{"DELETE", "/attach_localport", "", 405, ""},
		{"PATCH", "/detach_localport", "", 405, ""},
		{"PUT", "/detach_localport", "", 405, ""},
		{"GET", "/looking-glass", "", 200, ""},
		{"GET", "/looking-glass/", "", 200, ""},
		{"GET", "/looking-glass.json", "", 200, ""},
		{"GET", "/looking-glass/summary/", "", 200, ""},
		{"GET", "/looking-glass/summary.json", "", 200, ""},
		{"GET", "/looking-glass/summary.json/", "", 200, ""},
		{"HEAD", "/looking-glass/summary", "", 200, ""},
		{"POST", "/looking-glass", "", 405, ""},
		{"PUT", "/looking-glass/", "", 405, ""},
		{"DELETE", "/looking-glass/summary", "", 405, ""},
		{"GET", "/nope", "", 404, ""},
		{"POST", "/nope", "", 404, ""},
		{"GET", "/ping.html", "", 404, ""},
		{"GET", "/ping/x", "", 404, ""},
		{"GET", "/attach_localport/x", "", 404, ""},
		{"POST", "/attach_localport/x", evpnBase, 404, ""},
		{"GET", "/looking-glass/summary.txt", "", 404, ""},
		{"GET", "/looking-glass/summary.HTML", "", 404, ""},
		{"GET", "/looking-glass/nope", "", 404, ""},
	} {
		r := do(t, s, tc.method, tc.path, tc.body)
		name := tc.method + " " + tc.path
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", name, r.status, tc.status, r.body)
			continue
		}
		if r.contentType != "application/json" {
			t.Errorf("%s: content type %q", name, r.contentType)
		}
		switch {
		case tc.method == "HEAD":
			if r.body != "" {
				t.Errorf("%s: HEAD answered a body", name)
			}
		case tc.status >= 400:
			if msg := errorMessage(t, r); msg == "" {
				t.Errorf("%s: empty error message", name)
			}
		case tc.want != "":
			if r.body != tc.want {
				t.Errorf("%s: body %q, want %q", name, r.body, tc.want)
			}
		default:
			decode(t, r.body)
		}
	}
}

func TestMethodNotAllowedAllowHeader(t *testing.T) {
	s := newTestServer(t, Config{})
	req, _ := http.NewRequest(http.MethodPut, "/attach_localport", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if msg := errorMessage(t, response{rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()}); msg != "The method PUT is not allowed for this resource." {
		t.Errorf("message %q", msg)
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := &fakeVPN{}
	s := newTestServer(t, Config{VPN: f})
	big := `{"vpn_type": "evpn", "pad": "` + strings.Repeat("x", MaxBodySize) + `"}`
	r := do(t, s, http.MethodPost, "/attach_localport", big)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d", r.status)
	}
	if msg := errorMessage(t, r); !strings.Contains(msg, "too large") {
		t.Errorf("message %q", msg)
	}
	if f.calls() != 0 {
		t.Error("VPN service called")
	}
	// Just under the limit is fine.
	ok := edit(evpnBase, "pad", `"`+strings.Repeat("x", MaxBodySize-300)+`"`)
	if r := do(t, s, http.MethodPost, "/attach_localport", ok); r.status != 200 {
		t.Errorf("body of %d bytes: status %d", len(ok), r.status)
	}
}

func TestVPNErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		msg    string
	}{
		{"bad request", vpn.BadRequest("VPN %s could not be found", "v9"), 400, "VPN v9 could not be found"},
		{"not found", vpn.NotFound("no such thing"), 404, "no such thing"},
		{"wrapped", fmt.Errorf("plugging: %w", vpn.BadRequest("Unsupported direction: to-port")), 400, "Unsupported direction: to-port"},
		{"internal", errors.New("dataplane exploded"), 500, "An error occurred during local port plug to VPN: dataplane exploded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeVPN{err: tc.err}
			s := newTestServer(t, Config{VPN: f})
			r := do(t, s, http.MethodPost, "/attach_localport", evpnBase)
			if r.status != tc.status || errorMessage(t, r) != tc.msg {
				t.Errorf("got %d %s, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
			r = do(t, s, http.MethodPost, "/detach_localport", evpnBase)
			if r.status != tc.status {
				t.Errorf("detach: got %d %s", r.status, r.body)
			}
			if tc.status == 500 && errorMessage(t, r) != "An error occurred during local port unplug from VPN: dataplane exploded" {
				t.Errorf("detach message %q", errorMessage(t, r))
			}
		})
	}
}

func TestNoVPNServiceIsInternalError(t *testing.T) {
	s := newTestServer(t, Config{})
	if r := do(t, s, http.MethodPost, "/attach_localport", evpnBase); r.status != 500 {
		t.Errorf("status %d", r.status)
	}
}

func TestPanicIsInternalError(t *testing.T) {
	f := &fakeVPN{hook: func() { panic("boom") }}
	s := newTestServer(t, Config{VPN: f})
	r := do(t, s, http.MethodPost, "/attach_localport", evpnBase)
	if r.status != 500 || errorMessage(t, r) != "internal error" {
		t.Errorf("got %d %s", r.status, r.body)
	}
}

// TestConcurrentAttachments checks that attachments are handled
// concurrently, over real connections: every request waits until all are
// in the VPN service at once.
func TestConcurrentAttachments(t *testing.T) {
	const n = 16
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	f := &fakeVPN{hook: func() {
		arrived.Done()
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
	}}
	s := newTestServer(t, Config{VPN: f})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	url := "http://" + ln.Addr().String() + "/attach_localport"
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		wg.Go(func() {
			body := edit(evpnBase, "mac_address", fmt.Sprintf(`"52:54:00:00:01:%02x"`, i))
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	select {
	case <-all:
	default:
		t.Error("the requests were not handled concurrently")
	}
	for st := range statuses {
		if st != 200 {
			t.Errorf("status %d", st)
		}
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestListenAndServe(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.ListenAndServe(context.Background(), "256.0.0.1:1"); err == nil {
		t.Error("listening on an invalid address should fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
}

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"/", "", true},
		{"/ping/", "ping", true},
		{"/looking-glass//bgp/", "looking-glass|bgp", true},
		{"/looking-glass/bgp/peers/10.0.0.1", "looking-glass|bgp|peers|10.0.0.1", true},
		{"/looking-glass/bgp/peers/10.0.0.1.json", "looking-glass|bgp|peers|10.0.0.1", true},
		{"/looking-glass/vpns/instances/net.v1", "looking-glass|vpns|instances|net.v1", true},
		{"/index.html", "", false},
		{"/.json", ".json", true},
	} {
		segs, ok := splitPath(tc.in)
		if ok != tc.ok || (ok && strings.Join(segs, "|") != tc.want) {
			t.Errorf("splitPath(%q) = %q %v, want %q %v", tc.in, segs, ok, tc.want, tc.ok)
		}
	}
}
