// Package vpn implements the VPN instances of bagpipe-bgp: E-VPN instances
// (EVI, RFC 7432 with VXLAN per RFC 8365) and IP VPN VRFs (RFC 4364), their
// endpoints, route generation, best path selection and dataplane calls, and
// the manager that creates them on the first attach and removes them with
// the last detach.
package vpn

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// Label and RD number ranges (spec §6.2).
const (
	minLabel = 16
	maxLabel = 1<<20 - 1
)

// Config configures a Manager.
type Config struct {
	Engine *engine.Engine
	Log    *slog.Logger
	// BGPAddress is the BGP local address: RD prefix and E-VPN originator.
	BGPAddress netip.Addr
	Drivers    []dataplane.Driver
	// DriverConfig is shown as the "config" of each driver in the looking
	// glass (the effective options of its configuration section).
	DriverConfig map[dataplane.VPNType]map[string]any
	// Logs returns the recent warnings and errors of a worker, for the
	// looking glass (nil: none).
	Logs func(worker string) any
	// ForgetLogs drops the logs kept for a worker that stopped (nil: none).
	ForgetLogs func(worker string)
	// FlowCodec converts traffic classifiers to and from Flowspec rules
	// (attract_traffic, Flowspec redirection; redirect.go).
	FlowCodec FlowCodec
}

// Manager owns the VPN instances.
type Manager struct {
	eng          *engine.Engine
	log          *slog.Logger
	bgpAddr      netip.Addr
	drivers      map[dataplane.VPNType]dataplane.Driver
	labels       *Allocator
	driverConfig map[dataplane.VPNType]map[string]any
	logs         func(worker string) any
	forgetLogs   func(worker string)
	rds          *Allocator
	flow         FlowCodec
	bg           bgTasks // removals of redirection VRFs (redirect.go)
	// Bounds of the delay between retries of failed redirections
	// (redirect.go; tests shorten them).
	redirRetryMin, redirRetryMax time.Duration

	mu          sync.Mutex
	lastID      uint32
	instances   map[string]*Instance
	byVNI       map[uint32]*Instance
	initialized map[dataplane.VPNType]bool
	stopping    bool // no instance is created once set (Stop, Shutdown)

	linksOnce sync.Once
	evpnLinks *evpnLinks // E-VPN ↔ IP VPN links (evpn2ipvpn.go)
}

// NewManager returns a manager.
func NewManager(cfg Config) *Manager {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{
		eng:           cfg.Engine,
		log:           log,
		bgpAddr:       cfg.BGPAddress,
		drivers:       map[dataplane.VPNType]dataplane.Driver{},
		labels:        NewAllocator("label", minLabel, maxLabel),
		rds:           NewAllocator("route distinguisher", 0, math.MaxUint16),
		instances:     map[string]*Instance{},
		byVNI:         map[uint32]*Instance{},
		initialized:   map[dataplane.VPNType]bool{},
		driverConfig:  cfg.DriverConfig,
		logs:          cfg.Logs,
		forgetLogs:    cfg.ForgetLogs,
		flow:          cfg.FlowCodec,
		redirRetryMin: redirRetryMin,
		redirRetryMax: redirRetryMax,
	}
	for _, d := range cfg.Drivers {
		m.drivers[d.Type()] = d
	}
	return m
}

// Driver returns the driver of a VPN type, or nil.
func (m *Manager) Driver(t dataplane.VPNType) dataplane.Driver { return m.drivers[t] }

// Attach plugs an endpoint, creating its instance if needed. A failed
// attach leaves nothing behind: no instance, label or RD.
func (m *Manager) Attach(ctx context.Context, req *AttachRequest) error {
	if m.drivers[req.VPNType] == nil {
		return BadRequest("No dataplane driver for VPN type %s", req.VPNType)
	}
	if req.LocalPort.EVPN != nil {
		return m.attachEVPN(ctx, req) // evpn2ipvpn.go
	}
	inst, err := m.acquire(ctx, req)
	if err != nil {
		return err
	}
	defer m.release(ctx, inst)
	return inst.attach(ctx, req)
}

// attach applies an attach request to its (acquired) instance.
func (inst *Instance) attach(ctx context.Context, req *AttachRequest) error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if err := inst.checkPlug(req); err != nil {
		return err
	}
	inst.updateRTs(req.ImportRTs, req.ExportRTs)
	if err := inst.plug(ctx, req); err != nil {
		return err
	}
	if req.InstanceDesc != nil {
		inst.description = req.InstanceDesc
	}
	if req.Fallback != nil && (inst.fallback == nil || *inst.fallback != *req.Fallback) {
		inst.dpMu.Lock()
		err := inst.dp.UpdateFallback(ctx, req.Fallback)
		inst.dpMu.Unlock()
		if err != nil {
			return fmt.Errorf("fallback: %w", err)
		}
		inst.fallback = req.Fallback
	}
	return nil
}

// Detach unplugs an endpoint; the last one removes the instance.
func (m *Manager) Detach(ctx context.Context, req *DetachRequest) error {
	m.mu.Lock()
	inst := m.instances[req.InstanceID]
	if inst == nil {
		m.mu.Unlock()
		return BadRequest("VPN %s could not be found", req.InstanceID)
	}
	if inst.Type != req.VPNType {
		m.mu.Unlock()
		return BadRequest("vpn_type: VPN %s is of type %s, not %s", req.InstanceID, inst.Type, req.VPNType)
	}
	inst.pending++
	m.mu.Unlock()
	defer m.release(ctx, inst)
	inst.mu.Lock()
	err := inst.detach(ctx, req)
	inst.mu.Unlock()
	if err == nil {
		m.unlinkUnused(ctx, inst) // evpn2ipvpn.go
	}
	return err
}

// acquire returns the instance of req, creating it when needed, with its
// pending count raised so that it is not removed under the caller.
func (m *Manager) acquire(ctx context.Context, req *AttachRequest) (*Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inst := m.instances[req.InstanceID]; inst != nil {
		if inst.Type != req.VPNType {
			return nil, BadRequest("vpn_type: found an existing vpn_instance with external id %s but a different type (%s)", req.InstanceID, inst.Type)
		}
		inst.pending++
		return inst, nil
	}
	inst, err := m.create(ctx, req)
	if err != nil {
		return nil, err
	}
	inst.pending++
	return inst, nil
}

// release lowers the pending count and removes the instance if it has no
// endpoint left.
func (m *Manager) release(ctx context.Context, inst *Instance) {
	m.mu.Lock()
	inst.pending--
	remove := inst.pending == 0 && !inst.stopped && len(inst.redirectUsers) == 0 && inst.empty()
	if remove {
		inst.stopped = true
		delete(m.instances, inst.ExternalID)
		if inst.forcedVNI {
			delete(m.byVNI, inst.label)
		}
	}
	m.mu.Unlock()
	if remove {
		inst.log.Info("VPN instance removed (no endpoint left)")
		inst.stop(ctx)
	}
}

func (inst *Instance) empty() bool {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return len(inst.endpoints) == 0
}

// validateCreation checks the creation-time parameters before any side
// effect (spec §6.8 rules for attract_traffic).
func validateCreation(req *AttachRequest) error {
	at := req.AttractTraffic
	if req.VPNType != dataplane.IPVPN || at == nil {
		return nil
	}
	if req.Readvertise == nil && len(at.ToRTs) == 0 {
		return nil // inactive, as the reference
	}
	if len(at.ToRTs) > 0 && req.Readvertise != nil && !sameRTs(at.ToRTs, req.Readvertise.ToRTs) {
		return BadRequest("if both are set, then 'attract_traffic/to_rt' and 'readvertise/to_rt' have to be equal")
	}
	if len(at.ToRTs) > 0 && len(at.StaticDestinationPrefixes) == 0 {
		return BadRequest("attract_traffic: 'to_rt' requires 'static_destination_prefixes'")
	}
	toRTs := at.ToRTs
	if len(toRTs) == 0 {
		toRTs = req.Readvertise.ToRTs
	}
	if len(toRTs) != 1 {
		return BadRequest("attract_traffic requires exactly one RT in 'to_rt' (or in 'readvertise/to_rt'), got %d", len(toRTs))
	}
	if at.Classifier == nil {
		return BadRequest("'attract_traffic' specified with no 'classifier'")
	}
	return nil
}

// errStopping refuses new instances once the daemon stops: nothing would
// stop them.
var errStopping = &Error{Status: http.StatusServiceUnavailable, Msg: "daemon stopping"}

// create builds, initialises and registers a new instance (m.mu held).
func (m *Manager) create(ctx context.Context, req *AttachRequest) (inst *Instance, err error) {
	if m.stopping {
		return nil, errStopping
	}
	if err := validateCreation(req); err != nil {
		return nil, err
	}
	if req.VNI != 0 {
		if req.VNI > maxLabel && req.VPNType == dataplane.IPVPN {
			return nil, BadRequest("vni: %d is not a valid MPLS label (16..%d)", req.VNI, maxLabel)
		}
		if req.VNI > 1<<24-1 {
			return nil, BadRequest("vni: %d is out of range (1..16777215)", req.VNI)
		}
		if other := m.byVNI[req.VNI]; other != nil {
			return nil, BadRequest("A VPN instance using vni %d already exists.", req.VNI)
		}
	}
	if m.lastID == math.MaxUint32 {
		return nil, fmt.Errorf("max instance id was reached")
	}
	drv := m.drivers[req.VPNType]
	id := m.instanceID(req.Hints) // restore.go
	name := fmt.Sprintf("EVI-%d", id)
	if req.VPNType == dataplane.IPVPN {
		name = fmt.Sprintf("VRF-%d", id)
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	label, forced := req.VNI, req.VNI != 0
	if !forced {
		if label, err = m.labels.Allocate("Instance label for "+name, req.Hints.instanceLabel()); err != nil {
			return nil, err
		}
		undo = append(undo, func() { m.labels.Release(label) })
	}
	rdNum, err := m.rds.Allocate("Instance RD for "+name, req.Hints.instanceRD())
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { m.rds.Release(rdNum) })
	if !m.initialized[req.VPNType] {
		if err := drv.ResetState(ctx); err != nil {
			return nil, fmt.Errorf("dataplane reset failed: %w", err)
		}
		if err := drv.Initialize(ctx); err != nil {
			return nil, fmt.Errorf("dataplane initialisation failed: %w", err)
		}
		m.initialized[req.VPNType] = true
	}
	prefixLen := -1
	if req.IP.IsValid() {
		prefixLen = req.IP.Bits()
	}
	inst = &Instance{
		m:           m,
		Type:        req.VPNType,
		ID:          id,
		Name:        name,
		ExternalID:  req.InstanceID,
		src:         route.Source{Name: name},
		log:         m.log.With("worker", name),
		label:       label,
		forcedVNI:   forced,
		rd:          route.NewRDIP(m.bgpAddr, uint16(rdNum)),
		gatewayIP:   req.GatewayIP,
		prefixLen:   prefixLen,
		readvertise: req.Readvertise,
		attract:     req.AttractTraffic,
		linuxBridge: req.LinuxBridge,
		driver:      drv,
		macs:        map[route.MAC]*macState{},
		endpoints:   map[epKey]*endpoint{},
		ipOwner:     map[netip.Addr]route.MAC{},
		inbox:       engine.NewQueue[route.Event](),
		installed:   map[remoteKey]int32{},
	}
	for _, e := range drv.Encaps() {
		if e != route.EncapDefault {
			inst.encaps = append(inst.encaps, e)
		}
	}
	inst.tracker = newTracker(drv.ECMP(), inst)
	if req.VPNType == dataplane.IPVPN {
		inst.steer = newSteering(inst, req) // steering.go
	}
	dcfg := dataplane.InstanceConfig{
		ID: id, ExternalID: req.InstanceID, GatewayIP: req.GatewayIP,
		PrefixLen: prefixLen, Label: label, LinuxBridge: req.LinuxBridge,
	}
	// By VPN type: a driver may serve both (the dummy, and so its
	// instrumented wrapper), and a VRF needs an IP VPN instance (classifiers).
	evd, isEVPN := drv.(dataplane.EVPNDriver)
	ipd, isIPVPN := drv.(dataplane.IPVPNDriver)
	switch {
	case req.VPNType == dataplane.IPVPN && isIPVPN:
		inst.dp, err = ipd.NewIPVPNInstance(ctx, dcfg)
	case req.VPNType == dataplane.EVPN && isEVPN:
		inst.dp, err = evd.NewEVPNInstance(ctx, dcfg)
	default:
		err = fmt.Errorf("driver %s cannot create %s instances", drv.Name(), req.VPNType)
	}
	if err != nil {
		return nil, fmt.Errorf("dataplane initialisation of %s failed: %w", name, err)
	}
	inst.importRTs = slices.Clone(req.ImportRTs)
	inst.exportRTs = slices.Clone(req.ExportRTs)
	inst.start()
	m.instances[req.InstanceID] = inst
	if forced {
		m.byVNI[label] = inst
	}
	inst.log.Info("VPN instance created", "external_id", req.InstanceID, "label", label, "rd", inst.rd.String())
	return inst, nil
}

// Instances returns the current instances.
func (m *Manager) Instances() []*Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Instance, 0, len(m.instances))
	for _, inst := range m.instances {
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b *Instance) int { return int(a.ID) - int(b.ID) })
	return out
}

// Instance returns the instance of an external id, or nil.
func (m *Manager) Instance(externalID string) *Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.instances[externalID]
}

// InstanceCount returns the number of instances.
func (m *Manager) InstanceCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.instances)
}

// Allocated returns the number of labels and route distinguishers in use.
func (m *Manager) Allocated() (labels, rds int) { return m.labels.Count(), m.rds.Count() }

// takeAll marks the manager stopping (no new instance) and removes every
// instance from it; the caller stops them.
func (m *Manager) takeAll() []*Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopping = true
	insts := make([]*Instance, 0, len(m.instances))
	for id, inst := range m.instances {
		inst.stopped = true
		insts = append(insts, inst)
		delete(m.instances, id)
	}
	clear(m.byVNI)
	return insts
}

// Stop removes every instance (daemon shutdown).
func (m *Manager) Stop(ctx context.Context) {
	for _, inst := range m.takeAll() {
		inst.stop(ctx)
	}
	// Redirection VRFs being removed in the background.
	m.bg.wait(ctx)
	m.stopEVPNLinks() // evpn2ipvpn.go
}
