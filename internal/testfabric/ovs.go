package testfabric

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A userspace Open vSwitch per node. This kernel has neither the
// openvswitch module nor MPLS nor GRE: ovs-vswitchd runs with the userspace
// datapath (datapath_type=netdev), its ports are veths read through
// AF_PACKET, the bridge's internal port is a tap device, and tunnels are
// OVS's own userspace tunnels: the node address is moved from the fabric
// interface onto the bridge, so that OVS's route table (learnt from the
// namespace's routes) and ARP snooping resolve the tunnel next hops.
//
// The userspace datapath forwards what AF_PACKET hands it as is, including
// the partial checksums of senders with checksum offload: such TCP/UDP
// packets arrive with a wrong checksum. So transmit checksum offload is
// turned off on the fabric side of the node's veth (the bridge then
// computes the checksums of whatever goes to the node) and should be on the
// VM side of VM veths (VM.DisableOffload).

// OVS is an ovsdb-server and ovs-vswitchd pair running in a node's
// namespace, with its own database and run directory.
type OVS struct {
	node   *Node
	RunDir string // holds conf.db, db.sock, <bridge>.mgmt, logs
	Bridge string
	db, vs *Process
	bins   map[string]string // paths of the OVS programs
}

// StartOVS starts a userspace Open vSwitch in the node's namespace, creates
// the bridge (datapath_type=netdev, OpenFlow 1.0 to 1.5), adds the node's
// fabric interface to it and moves the node address onto the bridge. The
// processes are stopped (by PID) and the run directory removed at cleanup.
func StartOVS(t testing.TB, n *Node, bridge string) *OVS {
	t.Helper()
	bins := map[string]string{}
	for _, b := range []string{"ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl"} {
		bins[b] = requireBinary(t, b, "/usr/sbin/"+b, "/usr/bin/"+b)
	}
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	if _, err := os.Stat(schema); err != nil {
		requireBinary(t, schema) // skips (or fails when strict)
	}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "bp-ovs-")
	if err != nil {
		t.Fatal(err)
	}
	o := &OVS{node: n, RunDir: dir, Bridge: bridge, bins: bins}
	t.Cleanup(func() {
		o.Stop()
		if !t.Failed() {
			os.RemoveAll(dir)
			return
		}
		for _, f := range []string{"ovs-vswitchd.log", "ovsdb-server.log"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				t.Logf("%s %s:\n%s", n, f, lastBytes(b, 16<<10))
			}
		}
		os.RemoveAll(dir)
	})
	if err := o.start(); err != nil {
		t.Fatalf("%s: starting Open vSwitch: %v", n, err)
	}
	return o
}

func (o *OVS) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+o.RunDir, "OVS_DBDIR="+o.RunDir, "OVS_LOGDIR="+o.RunDir, "OVS_SYSCONFDIR="+o.RunDir)
}

// Env returns the environment telling OVS clients (and our daemon) where
// this instance's sockets are.
func (o *OVS) Env() []string { return []string{"OVS_RUNDIR=" + o.RunDir} }

func (o *OVS) start() error {
	n, dir := o.node, o.RunDir
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.CommandContext(ctx, o.bins["ovsdb-tool"], "create", db, "/usr/share/openvswitch/vswitch.ovsschema").CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create: %v: %s", err, out)
	}
	cmd := exec.Command(o.bins["ovsdb-server"], db,
		"--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"), "-vconsole:off")
	cmd.Env = o.env()
	var err error
	if o.db, err = n.StartCmd("ovsdb-server", cmd); err != nil {
		return err
	}
	if err := waitFile(ctx, filepath.Join(dir, "db.sock")); err != nil {
		return fmt.Errorf("ovsdb-server: %w", err)
	}
	if _, err := o.Vsctl(ctx, "--no-wait", "init"); err != nil {
		return err
	}
	cmd = exec.Command(o.bins["ovs-vswitchd"], "unix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
		"--unixctl="+filepath.Join(dir, "ovs-vswitchd.ctl"),
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"), "-vconsole:off", "-vfile:info")
	cmd.Env = o.env()
	if o.vs, err = n.StartCmd("ovs-vswitchd", cmd); err != nil {
		return err
	}
	if _, err := o.Vsctl(ctx, "--timeout=20", "add-br", o.Bridge,
		"--", "set", "bridge", o.Bridge, "datapath_type=netdev",
		"protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15",
		"--", "add-port", o.Bridge, NodeInterface); err != nil {
		return err
	}
	// Move the node address from the fabric interface onto the bridge.
	h := n.link
	fab, err := h.LinkByName(NodeInterface)
	if err != nil {
		return err
	}
	br, err := h.LinkByName(o.Bridge)
	if err != nil {
		return fmt.Errorf("bridge interface %s: %w", o.Bridge, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.ip.AsSlice(), Mask: net.CIDRMask(FabricSubnet.Bits(), 32)}}
	if err := h.AddrDel(fab, addr); err != nil {
		return fmt.Errorf("removing %s from %s: %w", n.ip, NodeInterface, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return err
	}
	if err := h.AddrAdd(br, addr); err != nil {
		return fmt.Errorf("adding %s on %s: %w", n.ip, o.Bridge, err)
	}
	// The fabric side of the node's veth computes the checksums of what
	// goes to the node (see the comment at the top of this file).
	return disableTxChecksum(n.fabric.fabricNsH, fmt.Sprintf("v%d", n.index))
}

func waitFile(ctx context.Context, path string) error {
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(path)
		return err == nil, nil
	})
}

// Stop stops ovs-vswitchd then ovsdb-server (SIGTERM, then SIGKILL).
func (o *OVS) Stop() {
	if o.vs != nil {
		_ = o.vs.Stop(5 * time.Second)
	}
	if o.db != nil {
		_ = o.db.Stop(5 * time.Second)
	}
}

// Vsctl runs ovs-vsctl against this instance (test assertions and setup).
func (o *OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	return o.run(ctx, "ovs-vsctl", append([]string{"--db=unix:" + filepath.Join(o.RunDir, "db.sock")}, args...)...)
}

// Ofctl runs ovs-ofctl -O OpenFlow15 against this instance's bridge (test
// assertions), e.g. Ofctl(ctx, "dump-flows").
func (o *OVS) Ofctl(ctx context.Context, cmd string, args ...string) (string, error) {
	return o.run(ctx, "ovs-ofctl", append([]string{"-O", "OpenFlow15", cmd, o.Bridge}, args...)...)
}

func (o *OVS) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, o.bins[name], args...)
	cmd.Env = o.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s %s: %v: %s", o.node, name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// StartBagpipeOVS is StartBagpipe for a node running its own OVS: the
// daemon is told where the OVS sockets are (OVS_RUNDIR), the IP VPN driver
// defaults to ovs on the OVS bridge, and cfg.ExtraConf goes into the IP VPN
// section. The daemon is stopped before its OVS.
func StartBagpipeOVS(t testing.TB, n *Node, cfg BagpipeConfig, o *OVS) *Bagpipe {
	t.Helper()
	if cfg.IPVPN == "" {
		cfg.IPVPN = "ovs"
	}
	cfg.IPVPNConf = "ovs_bridge = " + o.Bridge + "\n" + cfg.IPVPNConf + cfg.ExtraConf
	cfg.ExtraConf = ""
	cfg.Env = append(cfg.Env, o.Env()...)
	b := StartBagpipe(t, n, cfg)
	// Cleanups run last-in first-out: this one runs before the OVS's.
	t.Cleanup(func() { _ = b.proc.Stop(5 * time.Second) })
	return b
}

// DisableOffload turns transmit checksum offload (and so TSO) off on the
// VM's interface, as needed for TCP and UDP through a userspace OVS.
func (v *VM) DisableOffload() error {
	return disableTxChecksum(v.ns, VMInterface)
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// disableTxChecksum runs ETHTOOL_STXCSUM(0) on a link of a namespace.
func disableTxChecksum(ns netns.NsHandle, ifname string) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // left locked on error: the thread is discarded
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		err = setTxChecksum(ifname, false)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("disabling tx checksum offload on %s: %w", ifname, err)
	}
	return nil
}

func setTxChecksum(ifname string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	val := &ethtoolValue{cmd: unix.ETHTOOL_STXCSUM}
	if on {
		val.data = 1
	}
	ifr := &ifreqData{data: unsafe.Pointer(val)}
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(val)
	if errno != 0 {
		return errno
	}
	return nil
}
