package webui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"bagpipe/internal/api"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
	"bagpipe/internal/webui"
)

type peer struct{ src route.Source }

func (p *peer) Source() *route.Source { return &p.src }
func (p *peer) Deliver([]route.Event) {}

// newServer serves the API with the web view on a real engine and VPN
// manager; the peer has published n routes.
func newServer(t *testing.T, n int) *httptest.Server {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	local := netip.MustParseAddr("192.0.2.1")
	eng := engine.New(log, &engine.RTCConfig{AS: 64512, NextHop: local})
	go eng.Run(ctx)
	mgr := vpn.NewManager(vpn.Config{Engine: eng, Log: log, BGPAddress: local, Drivers: []dataplane.Driver{
		dummy.New(dataplane.IPVPN, local, log), dummy.New(dataplane.EVPN, local, log)}})
	handlers := map[string]http.Handler{}
	srv, err := api.New(api.Config{VPN: mgr, Engine: eng, VPNs: mgr, InstanceCount: mgr.InstanceCount, Logger: log, Handlers: handlers})
	if err != nil {
		t.Fatal(err)
	}
	handlers["ui"] = webui.New(srv.LookingGlass(), "/ui", log)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); mgr.Stop(context.Background()); cancel() })

	p := &peer{route.Source{Name: "BGP-192.0.2.2", Peer: true}}
	attrs := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}}
	events := make([]route.Event, n)
	for i := range events {
		events[i] = route.Event{Kind: route.Advertise, Route: &route.Route{
			NLRI:  route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(local, 1), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 32)},
			Label: 16, NextHop: netip.MustParseAddr("192.0.2.2"), Attrs: attrs,
		}}
	}
	eng.Publish(p, events)
	if err := eng.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(hs.URL+"/attach_localport", "application/json", strings.NewReader(`{"vpn_type": "evpn",
		"vpn_instance_id": "a/b <x>", "mac_address": "52:54:00:00:00:01", "local_port": {"linuxif": "tap<1>"},
		"import_rt": ["64512:1"], "export_rt": ["64512:1"], "instance_description": "<b>bold</b>"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("attach: %d", resp.StatusCode)
	}
	return hs
}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestPages(t *testing.T) {
	hs := newServer(t, 250)
	tests := []struct {
		path   string
		status int
		want   []string
		absent []string
	}{
		{"/ui/", 200, []string{`href="/ui/instances/a%2Fb%20%3Cx%3E"`, "a/b &lt;x&gt;", "&lt;b&gt;bold&lt;/b&gt;", "EVI-1", "target:64512:1"},
			[]string{"<b>bold</b>", "<x>"}},
		{"/ui/instances/a%2Fb%20%3Cx%3E", 200, []string{"EVI-1 a/b &lt;x&gt;", "tap&lt;1&gt;", "52:54:00:00:00:01", "evpn:multicast::192.0.2.1:0:0:192.0.2.1"}, nil},
		{"/ui/routes", 200, []string{"ipv4/mpls-vpn (250)", "1–100 of 250", "10.9.0.0/32 label 16", "offset=100"}, []string{"10.9.0.100/32 label"}},
		{"/ui/routes?offset=200&limit=100", 200, []string{"201–250 of 250", "10.9.0.249/32", "offset=100"}, []string{"10.9.0.100/32 label"}},
		{"/ui/lg/bgp/peers", 200, []string{"[]"}, nil},
		{"/ui/lg/vpns/instances/a%2Fb%20%3Cx%3E/ports", 200, []string{"tap&lt;1&gt;", "endpoints"}, nil},
		{"/ui/lg/config", 200, []string{"Browse"}, nil},
		{"/ui/logs", 200, []string{"Warnings and errors"}, nil},
		{"/ui/instances/nosuch", 404, []string{"No such looking glass object: nosuch"}, nil},
		{"/ui/lg/nosuch", 404, []string{"No such looking glass object"}, nil},
		{"/ui/other", 404, []string{"No such page"}, nil},
	}
	for _, tt := range tests {
		status, h, body := get(t, "GET", hs.URL+tt.path)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.path, status, tt.status)
		}
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tt.path, ct)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %q missing", tt.path, w)
			}
		}
		for _, a := range tt.absent {
			if strings.Contains(body, a) {
				t.Errorf("%s: %q present", tt.path, a)
			}
		}
		if strings.Contains(body, "<script") {
			t.Errorf("%s: script in page", tt.path)
		}
	}
	if status, h, _ := get(t, "GET", hs.URL+"/ui"); status != http.StatusMovedPermanently || h.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %s", status, h.Get("Location"))
	}
	if status, _, _ := get(t, "POST", hs.URL+"/ui/"); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d", status)
	}
	if status, h, body := get(t, "HEAD", hs.URL+"/ui/"); status != 200 || body != "" || h.Get("Content-Length") == "" {
		t.Errorf("HEAD /ui/: %d %q %q", status, h.Get("Content-Length"), body)
	}
	// The JSON API is untouched.
	if status, _, body := get(t, "GET", hs.URL+"/looking-glass/vpns/instances"); status != 200 || !strings.Contains(body, `"name": "EVI-1"`) {
		t.Errorf("looking glass: %d %s", status, body)
	}
}
