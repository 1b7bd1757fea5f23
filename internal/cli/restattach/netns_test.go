package restattach

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"bagpipe/internal/testfabric"
)

// fakeNetns records what the command asks of the namespace helper.
type fakeNetns struct {
	mac     string
	err     error
	plugged []netnsPort
	macs    []string
}

func (f *fakeNetns) Plug(p netnsPort) (string, error) {
	f.plugged = append(f.plugged, p)
	return f.mac, f.err
}

func (f *fakeNetns) MAC(namespace, ifname string) (string, error) {
	f.macs = append(f.macs, namespace+"/"+ifname)
	return f.mac, f.err
}

func withFake(t *testing.T, f *fakeNetns) {
	t.Helper()
	prev := newNetnsHelper
	newNetnsHelper = func() netnsHelper { return f }
	t.Cleanup(func() { newNetnsHelper = prev })
}

func TestNetnsPort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantPlug *netnsPort
		wantMACs string // MAC lookups
		wantPort string
		wantMAC  string
	}{
		{name: "defaults",
			args: []string{"--attach", "--network-type", "evpn", "--port", "netns", "--ip", "10.0.0.5", "--vpn-instance-id", "net1"},
			wantPlug: &netnsPort{Namespace: "net1", HostIf: "ns-net1", NsIf: "tovpn", Addr: netip.MustParsePrefix("10.0.0.5/24"),
				Gateway: netip.MustParseAddr("10.0.0.254"), MTU: DefaultMTU},
			wantPort: "ns-net1", wantMAC: "02:00:00:00:00:aa"},
		{name: "default instance and long names",
			args: []string{"--attach", "--network-type", "evpn", "--port", "netns", "--ip", "10.0.0.5/16"},
			wantPlug: &netnsPort{Namespace: "evpn-bagpipe-test", HostIf: "ns-evpn-bagpipe", NsIf: "tovpn",
				Addr: netip.MustParsePrefix("10.0.0.5/16"), Gateway: netip.MustParseAddr("10.0.255.254"), MTU: DefaultMTU},
			wantPort: "ns-evpn-bagpipe", wantMAC: "02:00:00:00:00:aa"},
		{name: "every option",
			args: []string{"--attach", "--network-type", "ipvpn", "--port", "netns:tapx", "--ip", "10.1.0.5/24", "--netns", "vm1",
				"--if2vpn", "eth0", "--mac", "52:54:00:00:00:05", "--mtu", "1400", "--ovs-vlan", "7", "--gateway-ip", "10.1.0.1"},
			wantPlug: &netnsPort{Namespace: "vm1", HostIf: "tapx", NsIf: "eth0", VLAN: 7, MAC: "52:54:00:00:00:05",
				Addr: netip.MustParsePrefix("10.1.0.5/24"), Gateway: netip.MustParseAddr("10.1.0.1"), MTU: 1400},
			wantPort: "tapx", wantMAC: "52:54:00:00:00:05"},
		{name: "detach reads the MAC",
			args:     []string{"--detach", "--network-type", "evpn", "--port", "netns", "--ip", "10.0.0.5", "--netns", "vm1"},
			wantMACs: "vm1/tovpn", wantPort: "ns-vm1", wantMAC: "02:00:00:00:00:aa"},
		{name: "detach with --mac",
			args:     []string{"--detach", "--network-type", "evpn", "--port", "netns:t1", "--ip", "10.0.0.5", "--mac", "52:54:00:00:00:01"},
			wantPort: "t1", wantMAC: "52:54:00:00:00:01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeNetns{mac: "02:00:00:00:00:aa"}
			withFake(t, f)
			a := newAPI(t, http.StatusOK, "null")
			status, stdout, stderr := run(append(tc.args, "--api-port", a.port)...)
			if status != 0 {
				t.Fatalf("status %d, stderr %q", status, stderr)
			}
			switch {
			case tc.wantPlug == nil && len(f.plugged) != 0:
				t.Errorf("namespace port created on detach: %+v", f.plugged)
			case tc.wantPlug != nil && (len(f.plugged) != 1 || f.plugged[0] != *tc.wantPlug):
				t.Errorf("plugged %+v, want %+v", f.plugged, *tc.wantPlug)
			}
			if got := strings.Join(f.macs, ","); got != tc.wantMACs {
				t.Errorf("MAC lookups %q, want %q", got, tc.wantMACs)
			}
			body := string(a.lastBody(t))
			if !strings.Contains(body, fmt.Sprintf(`"local_port": {"linuxif": "%s"}`, tc.wantPort)) ||
				!strings.Contains(body, fmt.Sprintf(`"mac_address": "%s"`, tc.wantMAC)) {
				t.Errorf("request %s: want port %s and MAC %s", body, tc.wantPort, tc.wantMAC)
			}
			if !strings.Contains(stdout, fmt.Sprintf("Local port: %s (%s)\n", tc.wantPort, tc.wantMAC)) {
				t.Errorf("stdout %q", stdout)
			}
			if tc.wantPlug != nil && !strings.Contains(stdout, "Will plug local namespace "+tc.wantPlug.Namespace+" into network\n") {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
}

func TestNetnsPortFailure(t *testing.T) {
	withFake(t, &fakeNetns{err: errors.New("boom")})
	a := newAPI(t, http.StatusOK, "null")
	status, _, stderr := run("--attach", "--network-type", "evpn", "--port", "netns", "--ip", "10.0.0.5", "--api-port", a.port)
	if status != 1 || !strings.Contains(stderr, "boom") {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
	if len(a.bodies) != 0 {
		t.Errorf("a request was sent: %q", a.bodies)
	}
}

// TestKernelNetns runs the real helper inside a node of a test fabric: the
// host side of the veth goes there, the namespace is a new named one.
func TestKernelNetns(t *testing.T) {
	fab := testfabric.NewFabric(t, testfabric.Options{Nodes: 1})
	node := fab.Node(0)
	name := fab.Prefix() + "vm"
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(filepath.Join(netnsDir, name))
		}
	})
	p := netnsPort{Namespace: name, HostIf: defaultHostIf(name), NsIf: "tovpn", Addr: netip.MustParsePrefix("10.0.0.5/24"),
		Gateway: netip.MustParseAddr("10.0.0.254"), MTU: DefaultMTU}
	var mac, mac2, mac3 string
	err := node.Do(func() error {
		var err error
		if mac, err = (kernelNetns{}).Plug(p); err != nil {
			return err
		}
		// Attaching again re-creates the pair (a new MAC) without error.
		if mac2, err = (kernelNetns{}).Plug(p); err != nil {
			return fmt.Errorf("second plug: %w", err)
		}
		mac3, err = (kernelNetns{}).MAC(name, "tovpn")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.ParseMAC(mac); err != nil || mac2 != mac3 {
		t.Errorf("MACs: %q %q %q", mac, mac2, mac3)
	}
	host, err := node.Netlink().LinkByName(p.HostIf)
	if err != nil {
		t.Fatalf("host side: %v", err)
	}
	if host.Attrs().MTU != hostSideMTU || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host side %s: MTU %d flags %v", p.HostIf, host.Attrs().MTU, host.Attrs().Flags)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	in, err := h.LinkByName("tovpn")
	if err != nil {
		t.Fatal(err)
	}
	if in.Attrs().MTU != DefaultMTU || in.Attrs().Flags&net.FlagUp == 0 || in.Attrs().HardwareAddr.String() != mac2 {
		t.Errorf("namespace side: %+v", in.Attrs())
	}
	addrs, _ := h.AddrList(in, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.0.0.5/24" {
		t.Errorf("addresses: %v", addrs)
	}
	routes, _ := h.RouteList(in, netlink.FAMILY_V4)
	foundDefault := false
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.0.0.254" {
			foundDefault = true
		}
	}
	if !foundDefault {
		t.Errorf("no default route via 10.0.0.254: %v", routes)
	}

	// With a VLAN and a MAC.
	p.VLAN, p.MAC, p.MTU = 7, "52:54:00:00:00:07", 1400
	err = node.Do(func() error {
		var err error
		mac, err = (kernelNetns{}).Plug(p)
		return err
	})
	if errors.Is(err, unix.EOPNOTSUPP) {
		// Kernels without 802.1Q support (no 8021q module): the error
		// must say what failed.
		if !strings.Contains(err.Error(), "creating VLAN 7 interface tovpn") {
			t.Errorf("VLAN error: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	vl, err := h.LinkByName("tovpn")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := h.LinkByName(rawIfName)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := vl.(*netlink.Vlan); !ok || v.VlanId != 7 || v.ParentIndex != raw.Attrs().Index || v.MTU != 1400 || mac != p.MAC {
		t.Errorf("VLAN interface: %+v (MAC %s)", vl.Attrs(), mac)
	}
}
