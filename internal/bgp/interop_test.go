package bgp

import (
	"bagpipe/internal/testfabric"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// gobgpd runs a real gobgpd (Debian package gobgpd) as a route reflector
// with RT Constraint on 127.0.0.2.
type gobgpd struct {
	t       *testing.T
	bgpPort uint16
	apiPort uint16
}

func freePort(t *testing.T, ip string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func startGobgpd(t *testing.T) *gobgpd {
	t.Helper()
	if os.Geteuid() != 0 {
		testfabric.SkipUnlessStrict(t, "interop test: needs root (gobgpd binds loopback addresses and ports as configured)")
	}
	for _, bin := range []string{"gobgpd", "gobgp"} {
		if _, err := exec.LookPath(bin); err != nil {
			testfabric.SkipUnlessStrict(t, "interop test: "+bin+" not installed (Debian package gobgpd)")
		}
	}
	g := &gobgpd{t: t, bgpPort: freePort(t, fakeIP.String()), apiPort: freePort(t, fakeIP.String())}
	conf := fmt.Sprintf(`[global.config]
  as = %d
  router-id = "%s"
  port = %d
  local-address-list = ["%s"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.transport.config]
    passive-mode = true
    local-address = "%s"
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "%s"
`, testAS, fakeIP, g.bgpPort, fakeIP, localIP, testAS, fakeIP, fakeIP)
	for _, f := range []string{"l3vpn-ipv4-unicast", "l2vpn-evpn", "rtc", "l3vpn-ipv4-flowspec"} {
		conf += fmt.Sprintf("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "gobgpd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gobgpd", "-f", path, "-p", "--pprof-disable",
		"--api-hosts", net.JoinHostPort(fakeIP.String(), itoa(g.apiPort)))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // only the gobgpd started here
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("gobgpd log:\n%s", b)
		}
	})
	g.waitFor("gobgpd API", func() (bool, string) {
		out, err := g.cli("neighbor")
		return err == nil, out
	})
	return g
}

// cli runs the gobgp client against our gobgpd.
func (g *gobgpd) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args = append([]string{"-u", fakeIP.String(), "-p", itoa(g.apiPort)}, args...)
	out, err := exec.CommandContext(ctx, "gobgp", args...).CombinedOutput()
	return string(out), err
}

// waitFor polls cond until it holds.
func (g *gobgpd) waitFor(what string, cond func() (bool, string)) {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("timeout waiting for %s; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ribPath is one path of `gobgp global rib -j`.
type ribPath struct {
	NLRI  json.RawMessage  `json:"nlri"`
	Attrs []map[string]any `json:"attrs"`
}

// rib returns the paths of a family of gobgpd's global RIB.
func (g *gobgpd) rib(family string) (map[string][]ribPath, string) {
	out, err := g.cli("global", "rib", "-a", family, "-j")
	if err != nil {
		return nil, out
	}
	var rib map[string][]ribPath
	if strings.TrimSpace(out) == "" || json.Unmarshal([]byte(out), &rib) != nil {
		return nil, out
	}
	return rib, out
}

// attr returns the attribute of type typ of p.
func (p ribPath) attr(typ float64) map[string]any {
	for _, a := range p.Attrs {
		if a["type"] == typ {
			return a
		}
	}
	return nil
}

func (p ribPath) routeTargets() []string {
	var rts []string
	if a := p.attr(16); a != nil {
		for _, v := range a["value"].([]any) {
			e := v.(map[string]any)
			if e["subtype"] == float64(2) {
				rts = append(rts, e["value"].(string))
			}
		}
	}
	return rts
}

func TestInteropGobgpd(t *testing.T) {
	g := startGobgpd(t)

	log := testLogger(t)
	t.Cleanup(func() { checkNoLeak(t) })
	eng := engine.New(log, &engine.RTCConfig{AS: testAS, NextHop: localIP})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	sp := New(Config{
		LocalAddress: localIP,
		AS:           testAS,
		Peers:        []netip.Addr{fakeIP},
		Port:         g.bgpPort,
		EnableRTC:    true,
		ConnectRetry: 200 * time.Millisecond,
	}, eng, log)
	if err := sp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopSpeaker(t, sp.(*Speaker)) })

	// A local worker importing and exporting 64512:77.
	rt := route.MustParseRT("64512:77")
	w := newFakeWorker("VRF-1")
	eng.Subscribe(w, engine.Match{Family: route.IPv4VPN, RT: rt})
	eng.Subscribe(w, engine.Match{Family: route.EVPN, RT: rt})
	mac, _ := route.ParseMAC("52:54:00:00:00:11")
	vpn := localVPNRoute("10.77.1.0/24", 1234, "64512:77")
	vpn.NLRI.RD = route.NewRDIP(localIP, 5)
	vpn.Attrs.Encaps = []route.Encap{route.EncapMPLS}
	evpn := &route.Route{
		NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: route.NewRDIP(localIP, 6), MAC: mac, Prefix: netip.MustParsePrefix("10.1.0.1/32")},
		Label:   5000,
		NextHop: localIP,
		Attrs:   &route.Attrs{RTs: []route.RT{rt}, Encaps: []route.Encap{route.EncapVXLAN}},
	}
	eng.Publish(w, []route.Event{{Kind: route.Advertise, Route: vpn}, {Kind: route.Advertise, Route: evpn}})

	// Our routes reach gobgpd.
	var vp ribPath
	g.waitFor("our VPNv4 route in gobgpd", func() (bool, string) {
		rib, out := g.rib("vpnv4")
		paths := rib["127.0.0.1:5:10.77.1.0/24"]
		if len(paths) == 0 {
			return false, out
		}
		vp = paths[0]
		return true, out
	})
	var vn struct {
		Prefix string   `json:"prefix"`
		Labels []uint32 `json:"labels"`
		RD     struct {
			Type     int    `json:"type"`
			Admin    string `json:"admin"`
			Assigned int    `json:"assigned"`
		} `json:"rd"`
	}
	if err := json.Unmarshal(vp.NLRI, &vn); err != nil {
		t.Fatal(err)
	}
	if vn.Prefix != "10.77.1.0/24" || !slices.Equal(vn.Labels, []uint32{1234}) || vn.RD.Type != 1 || vn.RD.Admin != "127.0.0.1" || vn.RD.Assigned != 5 {
		t.Errorf("VPNv4 NLRI in gobgpd: %s", vp.NLRI)
	}
	if nh := vp.attr(14)["nexthop"]; nh != "127.0.0.1" {
		t.Errorf("VPNv4 next hop in gobgpd: %v", nh)
	}
	if rts := vp.routeTargets(); !slices.Equal(rts, []string{"64512:77"}) {
		t.Errorf("VPNv4 route targets in gobgpd: %v", rts)
	}

	var ep ribPath
	g.waitFor("our EVPN route in gobgpd", func() (bool, string) {
		rib, out := g.rib("evpn")
		for k, paths := range rib {
			if strings.Contains(k, "52:54:00:00:00:11") {
				ep = paths[0]
				return true, out
			}
		}
		return false, out
	})
	var en struct {
		Type  int `json:"type"`
		Value struct {
			RD struct {
				Admin    string `json:"admin"`
				Assigned int    `json:"assigned"`
			} `json:"rd"`
			MAC    string   `json:"mac"`
			IP     string   `json:"ip"`
			Labels []uint32 `json:"labels"`
		} `json:"value"`
	}
	if err := json.Unmarshal(ep.NLRI, &en); err != nil {
		t.Fatal(err)
	}
	if en.Type != 2 || en.Value.IP != "10.1.0.1" || !slices.Equal(en.Value.Labels, []uint32{5000}) ||
		en.Value.RD.Admin != "127.0.0.1" || en.Value.RD.Assigned != 6 {
		t.Errorf("EVPN NLRI in gobgpd: %s", ep.NLRI)
	}
	if nh := ep.attr(14)["nexthop"]; nh != "127.0.0.1" {
		t.Errorf("EVPN next hop in gobgpd: %v", nh)
	}
	if rts := ep.routeTargets(); !slices.Equal(rts, []string{"64512:77"}) {
		t.Errorf("EVPN route targets in gobgpd: %v", rts)
	}

	// A route injected into gobgpd reaches our worker (gobgpd sends it
	// because of the RTC route we advertised for 64512:77).
	if out, err := g.cli("global", "rib", "-a", "vpnv4", "add", "10.88.0.0/24", "label", "4321",
		"rd", "64512:88", "rt", "64512:77", "nexthop", "10.0.0.88"); err != nil {
		t.Fatalf("gobgp: %v: %s", err, out)
	}
	if out, err := g.cli("global", "rib", "-a", "evpn", "add", "macadv", "52:54:00:00:00:22", "10.1.0.2",
		"etag", "0", "label", "5001", "rd", "64512:89", "rt", "64512:77", "encap", "vxlan", "nexthop", "10.0.0.89"); err != nil {
		t.Fatalf("gobgp: %v: %s", err, out)
	}
	got := map[route.Family]*route.Route{}
	for len(got) < 2 {
		ev := w.next(t)
		if ev.Kind != route.Advertise {
			t.Fatalf("unexpected %+v", ev)
		}
		got[ev.Route.NLRI.Family] = ev.Route
	}
	r := got[route.IPv4VPN]
	if r.NLRI.Prefix.String() != "10.88.0.0/24" || r.Label != 4321 || r.NLRI.RD.String() != "64512:88" ||
		r.NextHop.String() != "10.0.0.88" || !r.Attrs.HasRT(rt) || r.Source.Name != "BGP-127.0.0.2" {
		t.Errorf("VPNv4 route from gobgpd: %+v %+v", r, r.Attrs)
	}
	r = got[route.EVPN]
	if r.NLRI.Type != route.EVPNMACIP || r.NLRI.MAC.String() != "52:54:00:00:00:22" || r.NLRI.Prefix.String() != "10.1.0.2/32" ||
		r.Label != 5001 || r.NextHop.String() != "10.0.0.89" || !slices.Equal(r.Attrs.Encaps, []route.Encap{route.EncapVXLAN}) {
		t.Errorf("EVPN route from gobgpd: %+v %+v", r, r.Attrs)
	}

	st := sp.Peers()[0]
	if st.Protocol.State != Established || !st.RTC.Active || len(st.Families) != 4 {
		t.Errorf("status %+v", st)
	}

	// Withdrawn in gobgpd, withdrawn here.
	if out, err := g.cli("global", "rib", "-a", "vpnv4", "del", "10.88.0.0/24", "label", "4321",
		"rd", "64512:88", "rt", "64512:77", "nexthop", "10.0.0.88"); err != nil {
		t.Fatalf("gobgp: %v: %s", err, out)
	}
	if ev := w.next(t); ev.Kind != route.Withdraw || ev.Route.NLRI.Prefix.String() != "10.88.0.0/24" {
		t.Errorf("got %+v", ev)
	}
}
