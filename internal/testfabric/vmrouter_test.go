package testfabric

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestRouterVM: a VM with a second interface routes what its node sends
// through it (node → eth0 → VM → eth1 → node, where it stops: the node
// does not forward), and its nftables counters count it by rule; a TCP
// echo in the VM answers the node.
func TestRouterVM(t *testing.T) {
	RequireRoot(t)
	fab := NewFabric(t, Options{Nodes: 1})
	n := fab.Node(0)
	vm, err := n.AddVM(VMConfig{Name: "r", HostIf: "tap-r0", Addr: netip.MustParsePrefix("10.98.1.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.AddInterface(VMInterfaceConfig{Name: "eth1", HostIf: "tap-r1", Addr: netip.MustParsePrefix("10.98.2.1/24"),
		MAC: net.HardwareAddr{2, 0, 0, 0, 0x98, 2}, Gateway: netip.MustParseAddr("10.98.2.254")}); err != nil {
		t.Fatal(err)
	}
	if err := vm.AddInterface(VMInterfaceConfig{Name: "eth1", HostIf: "tap-r2"}); err == nil {
		t.Fatal("a second eth1 accepted")
	}
	for i, ifname := range []string{"tap-r0", "tap-r1"} {
		l, err := n.Netlink().LinkByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 98, byte(i+1), 254), Mask: net.CIDRMask(24, 32)}}
		if err := n.Netlink().AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
	}
	// 10.98.9.9 is behind the VM, which sends it back to the node.
	r0, _ := n.Netlink().LinkByName("tap-r0")
	if err := n.Netlink().RouteAdd(&netlink.Route{LinkIndex: r0.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 98, 9, 9), Mask: net.CIDRMask(32, 32)}, Gw: net.IPv4(10, 98, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := n.Sysctl("ipv4/ip_forward", "0"); err != nil {
		t.Fatal(err)
	}
	if err := vm.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"ipv4/ip_forward": "1", "ipv4/conf/eth1/rp_filter": "0", "ipv4/conf/all/rp_filter": "0"} {
		var got []byte
		if err := vm.Do(func() (err error) { got, err = os.ReadFile("/proc/sys/net/" + key); return err }); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("VM sysctl %s = %q (%v), want %s", key, got, err, want)
		}
	}
	ctr, err := vm.AddForwardCounters(
		CounterRule{Name: "udp7", InIf: VMInterface, Proto: 17, DstPort: 7, Accept: true},
		CounterRule{Name: "other"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.AddForwardCounters(CounterRule{Name: "bad", DstPort: 7}); err == nil {
		t.Error("a port counter without protocol accepted")
	}
	send := func(port string, count int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := n.DialContext(ctx, "udp4", "10.98.9.9:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range count {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("7", 3)
	send("9", 2)
	var got map[string]uint64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got, err = ctr.Read(); err != nil {
			t.Fatal(err)
		}
		if got["udp7"] == 3 && got["other"] == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got["udp7"] != 3 || got["other"] != 2 {
		t.Fatalf("counters %v, want udp7 3 and other 2", got)
	}

	vm.StartTCPEcho(t, "10.98.2.1:7000")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ans, err := n.TCPExchange(ctx, "10.98.2.1:7000", "hi", 5*time.Second); err != nil || ans != "r:hi" {
		t.Fatalf("TCP echo: %q %v", ans, err)
	}
}
