package testfabric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Node is one network namespace of a fabric.
type Node struct {
	fabric *Fabric
	index  int
	name   string
	nsName string
	ns     netns.NsHandle
	link   *netlink.Handle
	ip     netip.Addr
}

// String returns the node label and namespace, for messages.
func (n *Node) String() string { return fmt.Sprintf("%s(%s)", n.name, n.nsName) }

// Name returns the node's label ("n<i>" unless Options.Names set one).
func (n *Node) Name() string { return n.name }

// Index returns the node's 0-based position in the fabric.
func (n *Node) Index() int { return n.index }

// Fabric returns the fabric the node belongs to.
func (n *Node) Fabric() *Fabric { return n.fabric }

// Namespace returns the name of the node's network namespace
// (usable with "ip netns exec" or "nsenter --net=/run/netns/<name>").
func (n *Node) Namespace() string { return n.nsName }

// NsPath returns the bind-mount path of the node's namespace.
func (n *Node) NsPath() string { return filepath.Join(netnsDir, n.nsName) }

// NsHandle returns the node's namespace handle. It is owned by the fabric
// and closed at cleanup: do not close it.
func (n *Node) NsHandle() netns.NsHandle { return n.ns }

// Netlink returns a netlink handle bound to the node's namespace, for
// configuring links, addresses and routes there. It is owned by the fabric
// and closed at cleanup: do not close it.
func (n *Node) Netlink() *netlink.Handle { return n.link }

// IP returns the node's address on the fabric.
func (n *Node) IP() netip.Addr { return n.ip }

// Prefix returns the node's address with the fabric prefix length.
func (n *Node) Prefix() netip.Prefix { return netip.PrefixFrom(n.ip, FabricSubnet.Bits()) }

// Interface returns the name of the node's fabric interface.
func (n *Node) Interface() string { return NodeInterface }

// SetConnected attaches (true) or detaches (false) the fabric side of the
// node's veth to/from the bridge. Detaching partitions the node silently:
// its interface keeps its carrier and address, packets are just dropped and
// no TCP reset is sent, so BGP sessions die by hold-timer expiry as with a
// real network failure.
func (n *Node) SetConnected(connected bool) error {
	h := n.fabric.fabricLink
	l, err := h.LinkByName(fmt.Sprintf("v%d", n.index))
	if err != nil {
		return fmt.Errorf("%s: fabric link: %w", n, err)
	}
	if connected {
		br, err := h.LinkByName(BridgeName)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		err = h.LinkSetMaster(l, br)
	} else {
		err = h.LinkSetNoMaster(l)
	}
	if err != nil {
		return fmt.Errorf("%s: SetConnected(%v): %w", n, connected, err)
	}
	return nil
}

// Do runs fn on the calling goroutine, locked to an OS thread switched to
// the node's namespace, and switches the thread back afterwards. Sockets
// opened by fn live in the node's namespace; goroutines started by fn do not
// run in it.
func (n *Node) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(n.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", n.nsName, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked so the runtime discards it when
			// the goroutine exits instead of reusing it elsewhere.
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Listen is net.Listen inside the node's namespace (e.g. "tcp",
// "10.250.0.1:179").
func (n *Node) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket is net.ListenPacket inside the node's namespace.
func (n *Node) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// DialContext dials address (an IP literal and port: no name resolution)
// from inside the node's namespace.
func (n *Node) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Run runs a command inside the node's namespace, waits for it and returns
// its standard output. A non-zero exit gives an error carrying the standard
// error. The command is killed when ctx is done.
func (n *Node) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	setChildAttrs(cmd)
	if err := n.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("%s: starting %s: %w", n, cmdline(name, args), err)
	}
	if err := cmd.Wait(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(lastBytes(stdout.Bytes(), 2048))
		}
		return stdout.Bytes(), fmt.Errorf("%s: %s: %w: %s", n, cmdline(name, args), err, msg)
	}
	return stdout.Bytes(), nil
}

// Start starts a long-running command inside the node's namespace; see
// StartCmd.
func (n *Node) Start(name string, args ...string) (*Process, error) {
	return n.StartCmd(filepath.Base(name), exec.Command(name, args...))
}

// StartCmd starts cmd inside the node's namespace. label names the log files
// (<node>-<label>-<seq>.stdout/.stderr in Fabric.LogDir). Nil cmd.Stdout and
// cmd.Stderr are redirected to those files. The process is tracked by the
// fabric and stopped at cleanup; its output is dumped with t.Log if the test
// failed. cmd must not have been started.
func (n *Node) StartCmd(label string, cmd *exec.Cmd) (*Process, error) {
	if cmd.Process != nil {
		return nil, errors.New("testfabric: StartCmd: command already started")
	}
	p, err := newProcess(n, label, cmd)
	if err != nil {
		return nil, err
	}
	if err := n.fabric.track(p); err != nil {
		p.closeFiles()
		return nil, err
	}
	setChildAttrs(cmd)
	if err := n.Do(cmd.Start); err != nil {
		p.closeFiles()
		p.markNeverStarted(err)
		return nil, fmt.Errorf("%s: starting %s: %w", n, cmdline(cmd.Path, cmd.Args[1:]), err)
	}
	p.started()
	return p, nil
}

// setChildAttrs makes the child die with the test binary.
func setChildAttrs(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

func cmdline(name string, args []string) string {
	return strings.Join(append([]string{name}, args...), " ")
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
