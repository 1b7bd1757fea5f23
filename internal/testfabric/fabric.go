package testfabric

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Fixed names and addressing of a fabric.
const (
	// BridgeName is the Linux bridge in the fabric namespace.
	BridgeName = "br0"
	// NodeInterface is the name of every node's fabric interface.
	NodeInterface = "fab0"
	// netnsDir is where named network namespaces are bind-mounted
	// (same place as iproute2 and github.com/vishvananda/netns).
	netnsDir = "/run/netns"
	// lockDir holds one lock file per live fabric (see SweepStale).
	lockDir = "/run/bagpipe-testfabric"
	// NamePrefix starts every namespace name created by this package.
	NamePrefix = "bp"
	// StrictEnv, when set to "1", turns "daemon binary not found" skips into
	// test failures (for CI, where the binaries must be there).
	StrictEnv = "BAGPIPE_TESTFABRIC_STRICT"
)

// FabricSubnet is the IPv4 subnet of every fabric; node i gets the (i+1)th
// address of it.
var FabricSubnet = netip.MustParsePrefix("10.250.0.0/16")

// Options describes the fabric to build.
type Options struct {
	// Nodes is the number of node namespaces (at least 1).
	Nodes int
	// Names optionally labels the nodes (used in log file names and
	// messages, not in namespace names); missing labels default to "n<i>".
	Names []string
	// MTU of the veth pairs and the bridge; 0 keeps the kernel default (1500).
	MTU int
	// StopTimeout is how long cleanup waits after SIGTERM before sending
	// SIGKILL to a process still running; 0 means 5 s.
	StopTimeout time.Duration
}

// Fabric is a set of network namespaces attached to one L2 segment.
type Fabric struct {
	t      testing.TB
	prefix string
	opts   Options
	logDir string

	lock       *os.File // flock'ed lock file reserving prefix
	fabricNS   string
	fabricNsH  netns.NsHandle
	fabricLink *netlink.Handle

	nodes []*Node

	mu     sync.Mutex
	vms    []*VM
	procs  []*Process
	seq    int
	closed bool
}

// NewFabric builds a fabric of opts.Nodes namespaces connected to a bridge
// and registers its teardown with t.Cleanup. It skips the test when not run
// as root and fails it (t.Fatal) when the fabric cannot be built.
func NewFabric(t testing.TB, opts Options) *Fabric {
	t.Helper()
	RequireRoot(t)
	if opts.Nodes < 1 {
		t.Fatalf("testfabric: Options.Nodes must be >= 1, got %d", opts.Nodes)
	}
	if opts.Nodes > 60000 {
		t.Fatalf("testfabric: too many nodes: %d", opts.Nodes)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 5 * time.Second
	}
	f := &Fabric{
		t:         t,
		opts:      opts,
		fabricNsH: netns.None(),
	}
	// The log directory must be created before our cleanup is registered so
	// that it is removed after the processes writing into it are stopped
	// and after their output has been dumped.
	f.logDir = t.TempDir()
	t.Cleanup(f.cleanup)

	if removed, err := SweepStale(); err != nil {
		t.Logf("testfabric: sweeping stale namespaces: %v", err)
	} else if len(removed) > 0 {
		t.Logf("testfabric: removed stale namespaces of dead test processes: %v", removed)
	}

	if err := f.build(); err != nil {
		t.Fatalf("testfabric: building fabric %s: %v", f.prefix, err)
	}
	names := make([]string, 0, len(f.nodes))
	for _, n := range f.nodes {
		names = append(names, fmt.Sprintf("%s=%s(%s)", n.name, n.nsName, n.ip))
	}
	t.Logf("testfabric: fabric %s up: %s", f.prefix, strings.Join(names, " "))
	return f
}

// RequireRoot skips the test unless it runs as root (namespaces, links and
// daemons need CAP_SYS_ADMIN and CAP_NET_ADMIN).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipUnlessStrict(t, "requires root: creates network namespaces")
	}
}

// SkipUnlessStrict skips the test with reason, or fails it when StrictEnv
// is 1: CI sets it, so that a missing package or privilege can never turn a
// test into a silent pass there.
func SkipUnlessStrict(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(StrictEnv) == "1" {
		t.Fatal(reason + " (" + StrictEnv + "=1: not skipping)")
	}
	t.Skip(reason)
}

// requireBinary returns the path of an executable, skipping the test (or
// failing it when StrictEnv=1) when it cannot be found.
func requireBinary(t testing.TB, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	SkipUnlessStrict(t, fmt.Sprintf("testfabric: none of %v found (install the Debian packages gobgpd / frr)", candidates))
	return ""
}

// Prefix returns the name prefix shared by all namespaces of the fabric.
func (f *Fabric) Prefix() string { return f.prefix }

// Nodes returns the nodes in creation order.
func (f *Fabric) Nodes() []*Node { return append([]*Node(nil), f.nodes...) }

// Node returns node i (0-based); it panics when out of range.
func (f *Fabric) Node(i int) *Node { return f.nodes[i] }

// Namespaces returns the names of every namespace of the fabric, the fabric
// (bridge) namespace last.
func (f *Fabric) Namespaces() []string {
	out := make([]string, 0, len(f.nodes)+1)
	for _, n := range f.nodes {
		out = append(out, n.nsName)
	}
	if f.fabricNS != "" {
		out = append(out, f.fabricNS)
	}
	return out
}

// LogDir returns the directory receiving the output of started processes.
func (f *Fabric) LogDir() string { return f.logDir }

func (f *Fabric) build() error {
	var err error
	for attempt := 0; ; attempt++ {
		prefix := fmt.Sprintf("%s%04d%04x-", NamePrefix, os.Getpid()%10000, rand.Uint32N(0x10000))
		f.lock, err = acquirePrefix(prefix)
		if err == nil {
			f.prefix = prefix
			break
		}
		if !errors.Is(err, os.ErrExist) || attempt > 10 {
			return fmt.Errorf("reserving a name prefix: %w", err)
		}
	}
	if f.fabricNsH, err = newNamedNS(f.prefix + "fab"); err != nil {
		return fmt.Errorf("creating fabric namespace: %w", err)
	}
	f.fabricNS = f.prefix + "fab"
	if f.fabricLink, err = netlink.NewHandleAt(f.fabricNsH); err != nil {
		return fmt.Errorf("netlink handle in %s: %w", f.fabricNS, err)
	}
	if err := linkUp(f.fabricLink, "lo"); err != nil {
		return fmt.Errorf("%s: %w", f.fabricNS, err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName, MTU: f.opts.MTU}}
	if err := f.fabricLink.LinkAdd(br); err != nil {
		return fmt.Errorf("adding bridge in %s: %w", f.fabricNS, err)
	}
	brLink, err := f.fabricLink.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("bridge in %s: %w", f.fabricNS, err)
	}
	if err := f.fabricLink.LinkSetUp(brLink); err != nil {
		return fmt.Errorf("bridge up in %s: %w", f.fabricNS, err)
	}

	for i := 0; i < f.opts.Nodes; i++ {
		if err := f.addNode(i, brLink); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fabric) addNode(i int, br netlink.Link) error {
	name := fmt.Sprintf("n%d", i)
	if i < len(f.opts.Names) && f.opts.Names[i] != "" {
		name = f.opts.Names[i]
	}
	ip, err := nthAddr(FabricSubnet, i+1)
	if err != nil {
		return err
	}
	n := &Node{
		fabric: f,
		index:  i,
		name:   name,
		ip:     ip,
		ns:     netns.None(),
	}
	nsName := fmt.Sprintf("%sn%d", f.prefix, i)
	if n.ns, err = newNamedNS(nsName); err != nil {
		return fmt.Errorf("creating namespace %s: %w", nsName, err)
	}
	n.nsName = nsName
	f.nodes = append(f.nodes, n) // from now on cleanup knows about it
	if n.link, err = netlink.NewHandleAt(n.ns); err != nil {
		return fmt.Errorf("netlink handle in %s: %w", nsName, err)
	}

	hostSide := fmt.Sprintf("v%d", i)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostSide, MTU: f.opts.MTU, MasterIndex: br.Attrs().Index},
		PeerName:      NodeInterface,
		PeerNamespace: netlink.NsFd(n.ns),
	}
	if f.opts.MTU > 0 {
		veth.PeerMTU = uint32(f.opts.MTU)
	}
	if err := f.fabricLink.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth %s/%s for %s: %w", hostSide, NodeInterface, nsName, err)
	}
	if err := linkUp(f.fabricLink, hostSide); err != nil {
		return fmt.Errorf("%s: %w", f.fabricNS, err)
	}
	if err := linkUp(n.link, "lo"); err != nil {
		return fmt.Errorf("%s: %w", nsName, err)
	}
	l, err := n.link.LinkByName(NodeInterface)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", NodeInterface, nsName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{
		IP:   ip.AsSlice(),
		Mask: net.CIDRMask(FabricSubnet.Bits(), 32),
	}}
	if err := n.link.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("adding %s to %s in %s: %w", addr, NodeInterface, nsName, err)
	}
	if err := n.link.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s up in %s: %w", NodeInterface, nsName, err)
	}
	return nil
}

// cleanup tears everything down; it is safe on a partially built fabric.
func (f *Fabric) cleanup() {
	f.mu.Lock()
	f.closed = true
	procs := append([]*Process(nil), f.procs...)
	f.mu.Unlock()

	for _, p := range procs {
		if err := p.stop(f.opts.StopTimeout); err != nil {
			f.t.Errorf("testfabric: stopping %s: %v", p, err)
		}
	}
	if f.t.Failed() {
		for _, p := range procs {
			p.dumpLogs(f.t)
		}
	}

	var errs []error
	f.mu.Lock()
	vms := f.vms
	f.vms = nil
	f.mu.Unlock()
	for _, vm := range vms {
		if err := vm.teardown(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range f.nodes {
		if n.link != nil {
			n.link.Close()
		}
	}
	if f.fabricLink != nil {
		// Deleting the host side of each veth also deletes the peer in
		// the node namespace; the bridge goes last.
		for _, n := range f.nodes {
			if l, err := f.fabricLink.LinkByName(fmt.Sprintf("v%d", n.index)); err == nil {
				if err := f.fabricLink.LinkDel(l); err != nil {
					errs = append(errs, fmt.Errorf("deleting %s: %w", l.Attrs().Name, err))
				}
			}
		}
		if l, err := f.fabricLink.LinkByName(BridgeName); err == nil {
			if err := f.fabricLink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("deleting %s: %w", BridgeName, err))
			}
		}
		f.fabricLink.Close()
	}
	for _, n := range f.nodes {
		if n.ns.IsOpen() {
			n.ns.Close()
		}
		if n.nsName != "" {
			if err := deleteNamedNS(n.nsName); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if f.fabricNsH.IsOpen() {
		f.fabricNsH.Close()
	}
	if f.fabricNS != "" {
		if err := deleteNamedNS(f.fabricNS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		f.t.Errorf("testfabric: cleaning up fabric %s: %v", f.prefix, err)
		return // keep the lock file: SweepStale retries once we are gone
	}
	if f.lock != nil {
		os.Remove(lockPath(f.prefix))
		f.lock.Close()
	}
}

// track registers a started process; it fails when the fabric is closed.
func (f *Fabric) track(p *Process) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("fabric already cleaned up")
	}
	f.procs = append(f.procs, p)
	return nil
}

// nextSeq returns a fabric-unique sequence number for log file names.
func (f *Fabric) nextSeq() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return f.seq
}

// newNamedNS creates a network namespace bind-mounted at /run/netns/name
// without leaving the calling thread in it. It fails with an error wrapping
// os.ErrExist when the name is already taken.
func newNamedNS(name string) (netns.NsHandle, error) {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
		return netns.None(), fmt.Errorf("namespace %s: %w", name, os.ErrExist)
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), err
	}
	defer orig.Close()
	h, nerr := netns.NewNamed(name)
	// NewNamed may have switched the thread even when it fails.
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when the
		// goroutine exits, so no other goroutine runs in the wrong
		// namespace.
		if h.IsOpen() {
			h.Close()
		}
		return netns.None(), fmt.Errorf("restoring namespace after creating %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	if nerr != nil {
		return netns.None(), nerr
	}
	return h, nil
}

// deleteNamedNS unmounts and removes /run/netns/name (the kernel frees the
// namespace once nothing references it any more).
func deleteNamedNS(name string) error {
	p := filepath.Join(netnsDir, name)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil {
		// A stale file without a mount: just remove it.
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("deleting namespace %s: %w", name, err)
		}
	}
	return nil
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}

// nthAddr returns the n-th address of an IPv4 prefix.
func nthAddr(p netip.Prefix, n int) (netip.Addr, error) {
	if n <= 0 || n >= 1<<(32-p.Bits())-1 {
		return netip.Addr{}, fmt.Errorf("address #%d does not fit in %s", n, p)
	}
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

func lockPath(prefix string) string { return filepath.Join(lockDir, prefix+"lock") }

// acquirePrefix reserves a namespace name prefix for this process: it
// publishes lockDir/<prefix>lock already flock'ed (created under a temporary
// name, locked, then hard-linked into place), so a visible lock file is
// always held by its owner until the owner dies. It fails with an error
// wrapping os.ErrExist when the prefix is taken or a namespace already uses
// it.
func acquirePrefix(prefix string) (*os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, err
	}
	if m, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"*")); len(m) > 0 {
		return nil, fmt.Errorf("namespaces %v: %w", m, os.ErrExist)
	}
	tmp, err := os.CreateTemp(lockDir, ".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := syscall.Flock(int(tmp.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("locking %s: %w", tmp.Name(), err)
	}
	fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if err := os.Link(tmp.Name(), lockPath(prefix)); err != nil {
		tmp.Close()
		return nil, err // *LinkError wrapping EEXIST matches os.ErrExist
	}
	return tmp, nil
}

// SweepStale removes the namespaces of fabrics whose test process died
// without cleaning up (killed by a timeout, SIGKILL, ...): a fabric's lock
// file in /run/bagpipe-testfabric is flock'ed for as long as its process
// lives, so a lock file that can be locked marks a dead owner. The daemons of
// such fabrics died with the test binary (PR_SET_PDEATHSIG), so deleting the
// namespaces frees everything. Fabrics of live processes, including
// concurrent test runs, are never touched. NewFabric calls it; it returns the
// namespaces removed.
func SweepStale() ([]string, error) {
	entries, err := os.ReadDir(lockDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(lockDir, name)
		if strings.HasPrefix(name, ".tmp-") {
			// A prefix being reserved right now: its owner has not locked
			// it yet, so the flock test below would take it for stale.
			// Only old leftovers of killed processes are removed.
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
				os.Remove(path)
			}
			continue
		}
		lf, err := os.Open(path)
		if err != nil {
			continue // raced with its owner's cleanup
		}
		if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			lf.Close() // owner alive
			continue
		}
		removeArtifacts(lf)
		if prefix, ok := strings.CutSuffix(name, "lock"); ok && strings.HasPrefix(prefix, NamePrefix) {
			nss, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"*"))
			for _, ns := range nss {
				if err := deleteNamedNS(filepath.Base(ns)); err != nil {
					errs = append(errs, err)
					continue
				}
				removed = append(removed, filepath.Base(ns))
			}
		}
		os.Remove(path)
		lf.Close()
	}
	return removed, errors.Join(errs...)
}

// frrCrashDir matches the per-process directory bgpd keeps in /var/tmp/frr
// and removes only on a clean exit.
var frrCrashDir = regexp.MustCompile(`^/var/tmp/frr/bgpd\.[0-9]+$`)

// recordArtifact notes in the fabric's lock file a path outside the test's
// temporary directories that a daemon may leave behind if the test process
// dies; SweepStale removes it. Only FRR crash directories are accepted.
func (f *Fabric) recordArtifact(path string) {
	if !frrCrashDir.MatchString(path) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lock != nil {
		fmt.Fprintf(f.lock, "artifact %s\n", path)
	}
}

// removeArtifacts removes the paths recorded by recordArtifact in a dead
// fabric's lock file.
func removeArtifacts(lf *os.File) {
	b, err := io.ReadAll(lf)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "artifact "); ok && frrCrashDir.MatchString(p) {
			os.RemoveAll(p)
		}
	}
}
