package testfabric

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// VMInterface is the name of a VM's interface inside its namespace.
const VMInterface = "eth0"

// VMConfig describes a VM: a namespace attached to a node by a veth pair,
// as a hypervisor attaches a VM by a tap interface.
type VMConfig struct {
	// Name labels the VM (messages, log files).
	Name string
	// HostIf names the host side of the veth, in the node's namespace
	// (the "linuxif" to attach); default "tap-<Name>", at most 15 bytes.
	HostIf string
	// MAC of the VM interface; a random locally administered one when nil.
	MAC net.HardwareAddr
	// Addr is the VM address with its subnet length, e.g. 10.0.0.1/24.
	Addr netip.Prefix
	// Gateway, when valid, becomes the VM's default route.
	Gateway netip.Addr
	// MTU of the VM interface (0: kernel default).
	MTU int
}

// VM is a namespace attached to a node.
type VM struct {
	*Node
	Host   *Node
	HostIf string
	MAC    net.HardwareAddr
	Addr   netip.Prefix
}

// AddVM creates a VM attached to node n. The VM is removed with the
// fabric (or earlier by Remove).
func (n *Node) AddVM(cfg VMConfig) (*VM, error) {
	f := n.fabric
	f.mu.Lock()
	k := len(f.vms)
	f.mu.Unlock()
	if cfg.Name == "" {
		cfg.Name = "vm" + strconv.Itoa(k)
	}
	if cfg.HostIf == "" {
		cfg.HostIf = "tap-" + cfg.Name
	}
	if len(cfg.HostIf) > 15 {
		return nil, fmt.Errorf("host interface name %q longer than 15 bytes", cfg.HostIf)
	}
	if cfg.MAC == nil {
		cfg.MAC = make(net.HardwareAddr, 6)
		_, _ = rand.Read(cfg.MAC)
		cfg.MAC[0] = cfg.MAC[0]&0xfe | 0x02
	}
	vm := &VM{Host: n, HostIf: cfg.HostIf, MAC: cfg.MAC, Addr: cfg.Addr}
	vm.Node = &Node{fabric: f, index: -1, name: cfg.Name, ip: cfg.Addr.Addr(), ns: netns.None()}
	nsName := fmt.Sprintf("%sv%d", f.prefix, k)
	var err error
	if vm.ns, err = newNamedNS(nsName); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", nsName, err)
	}
	vm.nsName = nsName
	f.mu.Lock()
	f.vms = append(f.vms, vm)
	f.mu.Unlock()
	if vm.link, err = netlink.NewHandleAt(vm.ns); err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", nsName, err)
	}
	if err := linkUp(vm.link, "lo"); err != nil {
		return nil, err
	}
	if err := vm.addVeth(VMInterfaceConfig{Name: VMInterface, HostIf: cfg.HostIf, MAC: cfg.MAC, Addr: cfg.Addr,
		Gateway: cfg.Gateway, MTU: cfg.MTU}); err != nil {
		return nil, err
	}
	return vm, nil
}

// Ping sends count pings (one second apart at most) from the VM to dst and
// returns nil if at least one answer came back.
func (v *VM) Ping(ctx context.Context, dst netip.Addr, count int) error {
	_, err := v.Run(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", dst.String())
	return err
}

// Remove deletes the VM namespace (and so its veth pair) before the fabric
// cleanup.
func (v *VM) Remove() error {
	f := v.fabric
	f.mu.Lock()
	for i, x := range f.vms {
		if x == v {
			f.vms = append(f.vms[:i], f.vms[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
	return v.teardown()
}

func (v *VM) teardown() error {
	if v.link != nil {
		// Deleting the VM side deletes the pair at once; namespace
		// destruction alone would remove the host side asynchronously.
		if l, err := v.link.LinkByName(VMInterface); err == nil {
			_ = v.link.LinkDel(l)
		}
		v.link.Close()
		v.link = nil
	}
	if v.ns.IsOpen() {
		v.ns.Close()
	}
	if v.nsName == "" {
		return nil
	}
	err := deleteNamedNS(v.nsName)
	v.nsName = ""
	return err
}
