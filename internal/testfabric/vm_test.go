package testfabric

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestVMAttachedToNode(t *testing.T) {
	fab := NewFabric(t, Options{Nodes: 1})
	n := fab.Node(0)
	vm, err := n.AddVM(VMConfig{Name: "a", Addr: netip.MustParsePrefix("10.99.0.2/24"), Gateway: netip.MustParseAddr("10.99.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := n.Netlink().LinkByName(vm.HostIf)
	if err != nil {
		t.Fatalf("host side %s missing: %v", vm.HostIf, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 99, 0, 1), Mask: net.CIDRMask(24, 32)}}
	if err := n.Netlink().AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := vm.Ping(ctx, netip.MustParseAddr("10.99.0.1"), 2); err != nil {
		t.Fatalf("VM cannot reach its host side: %v", err)
	}
	vmLink, err := vm.Netlink().LinkByName(VMInterface)
	if err != nil || vmLink.Attrs().HardwareAddr.String() != vm.MAC.String() {
		t.Fatalf("VM interface MAC %v, want %s (%v)", vmLink.Attrs().HardwareAddr, vm.MAC, err)
	}
	if err := vm.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Netlink().LinkByName(vm.HostIf); err == nil {
		t.Fatal("host side still present after Remove")
	}
}
