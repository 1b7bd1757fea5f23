package vpn

import (
	"bagpipe/internal/testfabric"
	"context"
	"errors"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"bagpipe/internal/dataplane"
)

// inNewNetns runs fn on a thread switched to a fresh network namespace
// (the veth pairs are created there), and discards that thread after.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		testfabric.SkipUnlessStrict(t, "requires root: creates a network namespace and veth pairs")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.New()
		if err != nil {
			t.Errorf("new netns: %v", err)
			return
		}
		defer ns.Close()
		fn()
	}()
	<-done
}

func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

func evpnPortReq(vrf, evi, mac, ip string) *AttachRequest {
	r := ipvpnReq(vrf, mac, ip, "", "64512:1")
	r.LocalPort = &dataplane.LocalPort{EVPN: &dataplane.EVPNPort{ID: evi}, Raw: map[string]any{"evpn": map[string]any{"id": evi}}}
	return r
}

func wantBadRequest(t *testing.T, what string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("%s: got %v, want a 400", what, err)
	}
}

func TestEVPN2IPVPN(t *testing.T) {
	inNewNetns(t, func() {
		f := newFixture(t, false)
		ctx := context.Background()
		m := f.m
		if err := m.Attach(ctx, evpnReq("evi-a", "52:54:00:00:00:01", "10.0.0.1", "tap-e1", "64512:9")); err != nil {
			t.Fatal(err)
		}
		if err := m.Attach(ctx, ipvpnReq("vrf-x", "52:54:00:00:00:09", "10.0.0.9/24", "tap-x", "64512:1")); err != nil {
			t.Fatal(err)
		}
		before := m.InstanceCount()

		// Client mistakes: 400 and nothing created.
		bad := map[string]*AttachRequest{}
		bad["unknown E-VPN"] = evpnPortReq("vrf-1", "nosuch", "52:54:00:00:00:01", "10.0.0.1/24")
		bad["not an E-VPN"] = evpnPortReq("vrf-1", "vrf-x", "52:54:00:00:00:01", "10.0.0.1/24")
		r := evpnPortReq("vrf-1", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")
		r.LocalPort.LinuxIf = "tap9"
		bad["linuxif and evpn"] = r
		r = evpnPortReq("vrf-1", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")
		r.LocalPort.EVPN.OVSPortName = "patch-evpn"
		bad["ovs_port_name without a plugged OVS port"] = r
		r = evpnPortReq("evi-b", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")
		r.VPNType = dataplane.EVPN
		bad["E-VPN attach with local_port.evpn"] = r
		r = evpnPortReq("evi-a", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")
		bad["existing instance of another type"] = r
		for what, req := range bad {
			wantBadRequest(t, what, m.Attach(ctx, req))
		}
		if m.InstanceCount() != before || linkExists("evpn1-ipvpn3") {
			t.Fatalf("a refused request left something: %d instances (was %d)", m.InstanceCount(), before)
		}

		// The link: a veth pair, the EVI side as the EVI's gateway port,
		// the VRF side as the endpoint's port.
		if err := m.Attach(ctx, evpnPortReq("vrf-1", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")); err != nil {
			t.Fatal(err)
		}
		evi, vrf := m.Instance("evi-a"), m.Instance("vrf-1")
		evpnIf, ipvpnIf := "evpn1-ipvpn3", "ipvpn3-evpn1"
		if evi.ID != 1 || vrf.ID != 3 {
			t.Fatalf("instance ids %d %d", evi.ID, vrf.ID)
		}
		if !linkExists(evpnIf) || !linkExists(ipvpnIf) {
			t.Fatalf("veth pair %s/%s not created", evpnIf, ipvpnIf)
		}
		gp, _ := evi.lgGatewayPort().(map[string]any)
		if gp == nil || gp["interface"] != "'"+evpnIf+"'" {
			t.Fatalf("EVI gateway port %v", evi.lgGatewayPort())
		}
		plugged := dp(t, vrf).LookingGlass()["plugged"].([]string)
		if len(plugged) != 1 || vrf.endpoints[epKey{mac: mustMAC("52:54:00:00:00:01"), ip: parseIP("10.0.0.1/24")}].mac.port.LinuxIf != ipvpnIf {
			t.Fatalf("VRF endpoint not plugged on %s: %v", ipvpnIf, plugged)
		}

		// Same link again (another address): reused. Another E-VPN into
		// this VRF, or this E-VPN into another VRF: refused.
		if err := m.Attach(ctx, evpnPortReq("vrf-1", "evi-a", "52:54:00:00:00:01", "10.0.0.2/24")); err != nil {
			t.Fatal(err)
		}
		if err := m.Attach(ctx, evpnReq("evi-b", "52:54:00:00:00:02", "10.0.0.3", "tap-e2", "64512:8")); err != nil {
			t.Fatal(err)
		}
		wantBadRequest(t, "second E-VPN into the VRF", m.Attach(ctx, evpnPortReq("vrf-1", "evi-b", "52:54:00:00:00:02", "10.0.0.3/24")))
		wantBadRequest(t, "E-VPN into a second VRF", m.Attach(ctx, evpnPortReq("vrf-2", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")))
		if m.Instance("vrf-2") != nil {
			t.Fatal("refused attach left VRF vrf-2")
		}

		// The link goes with the VRF's last endpoint on it.
		for _, ip := range []string{"10.0.0.1/24", "10.0.0.2/24"} {
			d := &DetachRequest{VPNType: dataplane.IPVPN, InstanceID: "vrf-1", MACString: "52:54:00:00:00:01", MAC: mustMAC("52:54:00:00:00:01"),
				IPString: ip, IP: parseIP(ip), LocalPort: &dataplane.LocalPort{EVPN: &dataplane.EVPNPort{ID: "evi-a"}}}
			if err := m.Detach(ctx, d); err != nil {
				t.Fatal(err)
			}
			if ip == "10.0.0.1/24" && (!linkExists(evpnIf) || evi.lgGatewayPort() == nil) {
				t.Fatal("link removed while the VRF still has an endpoint on it")
			}
		}
		if linkExists(evpnIf) || linkExists(ipvpnIf) || evi.lgGatewayPort() != nil || m.Instance("vrf-1") != nil {
			t.Fatalf("after the last detach: veth %v/%v, gateway port %v, VRF %v", linkExists(evpnIf), linkExists(ipvpnIf), evi.lgGatewayPort(), m.Instance("vrf-1"))
		}

		// Linked again, then the daemon stops: the veth goes.
		if err := m.Attach(ctx, evpnPortReq("vrf-1", "evi-a", "52:54:00:00:00:01", "10.0.0.1/24")); err != nil {
			t.Fatal(err)
		}
		name := "evpn1-ipvpn" + strconv.Itoa(int(m.Instance("vrf-1").ID))
		if !linkExists(name) {
			t.Fatalf("%s not created", name)
		}
		m.Stop(ctx)
		if linkExists(name) {
			t.Fatalf("%s left after stop", name)
		}
	})
}
