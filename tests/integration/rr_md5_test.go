package integration

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"bagpipe/internal/testfabric"
)

const md5Password = "bagpipe-Md5-s3cret"

// TestRRMD5AndReload: TCP MD5 signed sessions with gobgpd
// (auth-password) and FRR (neighbor X password) route reflectors; a daemon
// with the wrong password gets no session at all; the password is never
// logged, even at debug level. Then SIGHUP reloads the peer list (one
// route reflector removed) and the log level.
func TestRRMD5AndReload(t *testing.T) {
	t.Parallel()
	testfabric.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 4, Names: []string{"gobgp", "frr", "a", "b"}})
	na, nb := fab.Node(2), fab.Node(3)
	rrCfg := testfabric.RRConfig{AS: 64512, Clients: []netip.Addr{na.IP(), nb.IP()}, Password: md5Password}
	rrs := []testfabric.RouteReflector{
		testfabric.StartGoBGPRR(t, fab.Node(0), rrCfg),
		testfabric.StartFRRRR(t, fab.Node(1), rrCfg),
	}
	peers := []netip.Addr{rrs[0].Addr(), rrs[1].Addr()}
	A := testfabric.StartBagpipe(t, na, testfabric.BagpipeConfig{Peers: peers, Debug: true,
		ExtraConf: "\n[BGP]\nmd5_password = " + md5Password + "\n"})
	B := testfabric.StartBagpipe(t, nb, testfabric.BagpipeConfig{Peers: peers, Debug: true,
		ExtraConf: "\n[BGP]\nmd5_password = not-the-password\n"})
	for _, rr := range rrs {
		if err := rr.WaitEstablished(ctx, na.IP()); err != nil {
			t.Fatal(err)
		}
	}
	// B: nothing, for several connection attempts (its SYNs are dropped
	// by the route reflectors' kernels).
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		for _, rr := range rrs {
			if s := peerState(B, rr.Addr()); s == "Established" {
				t.Fatalf("session of B with %s established with a wrong TCP MD5 password", rr.Node())
			}
			if n, err := rr.Neighbor(ctx, nb.IP()); err == nil && n.Established() {
				t.Fatalf("%s established B's session with a wrong TCP MD5 password", rr.Node())
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, b := range []*testfabric.Bagpipe{A, B} {
		if strings.Contains(daemonLog(b), "s3cret") || strings.Contains(daemonLog(b), "not-the-password") {
			t.Errorf("%s logged its TCP MD5 password", b.Node())
		}
		if cfg, err := b.LG("config/BGP"); err != nil || get(cfg, "md5_password") != "<secret>" {
			t.Errorf("%s looking glass shows md5_password %v (%v)", b.Node(), get(cfg, "md5_password"), err)
		}
	}
	if !strings.Contains(daemonLog(A), "level=DEBUG") {
		t.Fatal("A does not log at debug level: the password check proves little")
	}

	// SIGHUP: drop the FRR route reflector and debug logging.
	path := configPath(t, A)
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	newConf := strings.Replace(string(conf), "debug = true", "debug = false", 1)
	newConf = strings.Replace(newConf, "peers = "+peers[0].String()+","+peers[1].String(), "peers = "+peers[0].String(), 1)
	if newConf == string(conf) || !strings.Contains(newConf, "debug = false") {
		t.Fatalf("could not edit the configuration:\n%s", conf)
	}
	if err := os.WriteFile(path, []byte(newConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := A.Process().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the FRR route reflector removed from A", func() (bool, string) {
		s := peerState(A, peers[1])
		return s == "absent", "state " + s
	})
	waitFor(ctx, t, "FRR sees A gone", func() (bool, string) {
		n, err := rrs[1].Neighbor(ctx, na.IP())
		return err == nil && !n.Established(), "still established"
	})
	if s := peerState(A, peers[0]); s != "Established" {
		t.Errorf("session with gobgpd after the reload: %s", s)
	}
	waitFor(ctx, t, "reload logged", func() (bool, string) {
		l := daemonLog(A)
		return strings.Contains(l, "BGP peers changed") && strings.Contains(l, "log level changed"), "not yet"
	})
	if _, err := A.Ping(); err != nil || A.Process().Exited() {
		t.Errorf("A after SIGHUP: %v", err)
	}
}
