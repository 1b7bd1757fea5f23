// Package dummy is the "dummy" dataplane driver: it programs nothing, logs
// every call at debug level and keeps the resulting state so that the
// looking glass and tests can see what a real dataplane would hold.
package dummy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// Driver is a dummy driver for one VPN type.
type Driver struct {
	vpnType dataplane.VPNType
	local   netip.Addr
	encaps  []route.Encap
	ecmp    bool
	log     *slog.Logger
}

// New returns the dummy driver of a VPN type: E-VPN supports VXLAN, IP VPN
// the default and MPLS encapsulations (as the reference's dummies).
func New(t dataplane.VPNType, local netip.Addr, log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	d := &Driver{vpnType: t, local: local, log: log.With("driver", "dummy", "vpn_type", string(t))}
	if t == dataplane.EVPN {
		d.encaps = []route.Encap{route.EncapVXLAN}
	} else {
		d.encaps = []route.Encap{route.EncapDefault, route.EncapMPLS}
	}
	return d
}

// SetECMP makes the driver install every equal best path (as the ovs and
// linux IP VPN drivers do). The reference dummy does not.
func (d *Driver) SetECMP(on bool) { d.ecmp = on }

func (d *Driver) Name() string                     { return "DummyDataplaneDriver" }
func (d *Driver) Type() dataplane.VPNType          { return d.vpnType }
func (d *Driver) Encaps() []route.Encap            { return d.encaps }
func (d *Driver) ECMP() bool                       { return d.ecmp }
func (d *Driver) LocalAddress() netip.Addr         { return d.local }
func (d *Driver) NeedsCleanupAssist() bool         { return false }
func (d *Driver) ResetState(context.Context) error { return nil }
func (d *Driver) Initialize(context.Context) error { return nil }

// ValidateDirection accepts only "both", as every driver but IP VPN ovs.
func (d *Driver) ValidateDirection(dir dataplane.Direction) error {
	if dir != dataplane.Both {
		return fmt.Errorf("Unsupported direction: %s", dir)
	}
	return nil
}

// LookingGlass implements dataplane.Driver.
func (d *Driver) LookingGlass() map[string]any { return map[string]any{} }

// NewEVPNInstance implements dataplane.EVPNDriver.
func (d *Driver) NewEVPNInstance(_ context.Context, cfg dataplane.InstanceConfig) (dataplane.EVPNInstance, error) {
	return d.newInstance(cfg), nil
}

// NewIPVPNInstance implements dataplane.IPVPNDriver.
func (d *Driver) NewIPVPNInstance(_ context.Context, cfg dataplane.InstanceConfig) (dataplane.IPVPNInstance, error) {
	return d.newInstance(cfg), nil
}

func (d *Driver) newInstance(cfg dataplane.InstanceConfig) *Instance {
	return &Instance{
		cfg:     cfg,
		log:     d.log.With("worker", cfg.ExternalID),
		ports:   map[string]dataplane.Endpoint{},
		remotes: map[remoteID]struct{}{},
		bum:     map[string]bool{},
		cls:     map[route.Classifier]uint32{},
	}
}

// Instance is the recorded dataplane state of one VPN instance.
type Instance struct {
	cfg     dataplane.InstanceConfig
	log     *slog.Logger
	mu      sync.Mutex
	ports   map[string]dataplane.Endpoint
	remotes map[remoteID]struct{}
	bum     map[string]bool
	gwPort  string
	cls     map[route.Classifier]uint32 // traffic classifier -> redirection VRF id
	cleaned bool
}

func epKey(ep dataplane.Endpoint) string { return ep.MAC.String() + "/" + ep.IP.String() }

// remoteID is what the dummy records of a remote entry: compact and free
// of pointers, so that a million entries cost little memory and nothing
// to the garbage collector. Its text (the looking glass form) is built on
// demand.
type remoteID struct {
	mac    route.MAC
	hasIP  bool
	ip4    bool
	bits   uint8
	pe4    bool
	label  uint32
	prefix [16]byte
	pe     [16]byte
}

func newRemoteID(r dataplane.Remote) remoteID {
	id := remoteID{mac: r.MAC, hasIP: r.Prefix.IsValid(), label: r.Label, pe4: r.PE.Is4(), pe: r.PE.As16()}
	if id.hasIP {
		id.ip4, id.bits, id.prefix = r.Prefix.Addr().Is4(), uint8(r.Prefix.Bits()), r.Prefix.Addr().As16()
	}
	return id
}

func addrOf(b [16]byte, is4 bool) netip.Addr {
	a := netip.AddrFrom16(b)
	if is4 {
		a = a.Unmap()
	}
	return a
}

// String returns "<prefix> via <pe> label <n>" (IP VPN) or
// "<mac>[ <ip>] via <pe> vni <n>" (E-VPN).
func (id remoteID) String() string {
	pe := addrOf(id.pe, id.pe4)
	if id.hasIP && id.mac == (route.MAC{}) {
		return fmt.Sprintf("%s via %s label %d", netip.PrefixFrom(addrOf(id.prefix, id.ip4), int(id.bits)), pe, id.label)
	}
	ip := ""
	if id.hasIP {
		ip = " " + addrOf(id.prefix, id.ip4).String()
	}
	return fmt.Sprintf("%s%s via %s vni %d", id.mac, ip, pe, id.label)
}

// VIFPlugged implements dataplane.Instance.
func (i *Instance) VIFPlugged(_ context.Context, ep dataplane.Endpoint) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.log.Debug("vif plugged", "mac", ep.MAC.String(), "ip", ep.IP.String(), "port", ep.Port.LinuxIf)
	i.ports[epKey(ep)] = ep
	return nil
}

// VIFUnplugged implements dataplane.Instance.
func (i *Instance) VIFUnplugged(_ context.Context, ep dataplane.Endpoint, last bool) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.log.Debug("vif unplugged", "mac", ep.MAC.String(), "ip", ep.IP.String(), "last", last)
	delete(i.ports, epKey(ep))
	return nil
}

// SetupRemote implements dataplane.Instance.
func (i *Instance) SetupRemote(ctx context.Context, r dataplane.Remote) error {
	k := newRemoteID(r)
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, dup := i.remotes[k]; dup {
		return fmt.Errorf("remote %s set up twice", k)
	}
	if i.log.Enabled(ctx, slog.LevelDebug) {
		i.log.Debug("setup remote", "remote", k.String())
	}
	i.remotes[k] = struct{}{}
	return nil
}

// RemoveRemote implements dataplane.Instance.
func (i *Instance) RemoveRemote(ctx context.Context, r dataplane.Remote) error {
	k := newRemoteID(r)
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.remotes[k]; !ok {
		return fmt.Errorf("remote %s removed but not set up", k)
	}
	if i.log.Enabled(ctx, slog.LevelDebug) {
		i.log.Debug("remove remote", "remote", k.String())
	}
	delete(i.remotes, k)
	return nil
}

// AddBUM implements dataplane.EVPNInstance.
func (i *Instance) AddBUM(_ context.Context, pe netip.Addr, vni uint32, _ []route.Encap) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.bum[fmt.Sprintf("%s vni %d", pe, vni)] = true
	return nil
}

// RemoveBUM implements dataplane.EVPNInstance.
func (i *Instance) RemoveBUM(_ context.Context, pe netip.Addr, vni uint32) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := fmt.Sprintf("%s vni %d", pe, vni)
	if !i.bum[k] {
		return fmt.Errorf("flooding entry %s removed but not added", k)
	}
	delete(i.bum, k)
	return nil
}

// SetGatewayPort implements dataplane.EVPNInstance.
func (i *Instance) SetGatewayPort(_ context.Context, ifname string, _ netip.Addr) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.gwPort = ifname
	return nil
}

// GatewayPortDown implements dataplane.EVPNInstance.
func (i *Instance) GatewayPortDown(context.Context, string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.gwPort = ""
	return nil
}

// UpdateFallback implements dataplane.Instance (the dummy only logs it).
func (i *Instance) UpdateFallback(_ context.Context, f *dataplane.Fallback) error {
	i.log.Debug("fallback", "fallback", f)
	return nil
}

// Cleanup implements dataplane.Instance.
func (i *Instance) Cleanup(context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cleaned = true
	clear(i.ports)
	clear(i.remotes)
	clear(i.bum)
	clear(i.cls)
	return nil
}

// Remotes returns the remote entries installed, sorted.
func (i *Instance) Remotes() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.remotes))
	for k := range i.remotes {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

// Flooding returns the flooding entries, sorted.
func (i *Instance) Flooding() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.bum))
	for k := range i.bum {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Cleaned reports whether Cleanup ran.
func (i *Instance) Cleaned() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cleaned
}

// LookingGlass shows the recorded state.
func (i *Instance) LookingGlass() map[string]any {
	i.mu.Lock()
	ports := make([]string, 0, len(i.ports))
	for k := range i.ports {
		ports = append(ports, k)
	}
	i.mu.Unlock()
	slices.Sort(ports)
	return map[string]any{"plugged": ports, "remotes": i.Remotes(), "flooding": i.Flooding(), "classifiers": i.Classifiers()}
}

// AddClassifier implements dataplane.IPVPNInstance: it records the
// classifier and its redirection (the reference's dummy raised "not
// implemented"; recording lets operators of the dummy dataplane and the
// tests see what a real one would install). Adding a classifier again
// replaces its redirection.
func (i *Instance) AddClassifier(_ context.Context, c route.Classifier, redirectTo uint32) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.log.Debug("add traffic classifier", "classifier", c.String(), "redirect_to", redirectTo)
	i.cls[c] = redirectTo
	return nil
}

// RemoveClassifier implements dataplane.IPVPNInstance.
func (i *Instance) RemoveClassifier(_ context.Context, c route.Classifier) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.cls[c]; !ok {
		return fmt.Errorf("traffic classifier %s removed but not added", c)
	}
	i.log.Debug("remove traffic classifier", "classifier", c.String())
	delete(i.cls, c)
	return nil
}

// Classifiers returns the traffic classifiers installed, as "<classifier>
// -> <redirection instance id>", sorted.
func (i *Instance) Classifiers() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.cls))
	for c, to := range i.cls {
		out = append(out, fmt.Sprintf("%s -> %d", c, to))
	}
	slices.Sort(out)
	return out
}

// Redirect returns the redirection instance id of a classifier, and whether
// it is installed.
func (i *Instance) Redirect(c route.Classifier) (uint32, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	to, ok := i.cls[c]
	return to, ok
}
