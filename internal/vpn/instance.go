package vpn

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// Instance is a VPN instance: a VRF (IP VPN) or an EVI (E-VPN). API calls
// plug and unplug endpoints under mu and publish the endpoint routes; the
// instance goroutine receives routes from the engine, selects best paths and
// programs the dataplane.
type Instance struct {
	m          *Manager
	Type       dataplane.VPNType
	ID         uint32
	Name       string // VRF-<id> or EVI-<id>
	ExternalID string
	src        route.Source
	log        *slog.Logger

	// Fixed at creation.
	label       uint32 // instance label, the VNI of an EVI
	forcedVNI   bool
	rd          route.RD
	gatewayIP   netip.Addr
	prefixLen   int // -1 when unknown
	readvertise *Readvertise
	attract     *AttractTraffic
	linuxBridge string
	driver      dataplane.Driver
	dp          dataplane.Instance
	encaps      []route.Encap // advertised encapsulations (no Default)

	mu          sync.Mutex // serialises API changes; guards the fields below
	importRTs   []route.RT
	exportRTs   []route.RT
	description *string
	fallback    *dataplane.Fallback
	macs        map[route.MAC]*macState
	endpoints   map[epKey]*endpoint
	ipOwner     map[netip.Addr]route.MAC
	imet        *route.Route // EVI inclusive multicast route

	pending int  // attaches in progress (guarded by Manager.mu)
	stopped bool // guarded by Manager.mu
	// redirectUsers are the VRFs redirecting traffic to this one, a
	// redirection VRF (guarded by Manager.mu; redirect.go).
	redirectUsers map[*Instance]struct{}

	// steer is the route leaking and traffic attraction state (nil when
	// the VRF has neither readvertise nor attract_traffic; steering.go).
	steer *steering

	dpMu sync.Mutex // serialises dataplane calls

	inbox       *engine.Queue[route.Event]
	unprocessed atomic.Int64 // events delivered and not processed yet (queued or in the batch at work)
	trMu        sync.RWMutex // guards tracker (written by the instance goroutine)
	tracker     *tracker
	installed   map[remoteKey]int32 // references to each dataplane entry; owned by the instance goroutine
	pendingOp   []dpOp              // owned by the instance goroutine
	// Flowspec redirection (redirect.go): what is wanted, classifier and
	// redirect RT uses, and what changed (guarded by trMu); what is done,
	// the redirection VRFs in use, the classifiers installed and the
	// failures to retry (owned by the instance goroutine, then by stop).
	clsUses      map[route.Classifier]*clsUse
	rtUses       map[route.RT]int
	dirtyCls     map[route.Classifier]struct{}
	dirtyRTs     map[route.RT]struct{}
	redirVRFs    map[route.RT]*Instance
	clsInstalled map[route.Classifier]*Instance // added to the dataplane, redirecting to that VRF
	retryCls     map[route.Classifier]struct{}
	retryRTs     map[route.RT]struct{}
	retryAt      time.Time // zero: no retry scheduled
	retryDelay   time.Duration
	cancel       context.CancelFunc
	done         chan struct{}
}

// macState is what an instance knows of a plugged MAC (a VM port).
type macState struct {
	port      *dataplane.LocalPort
	portJSON  string // canonical form of the local_port object, for comparisons
	label     uint32 // port label
	lbOrder   uint32
	endpoints int
}

type epKey struct {
	mac route.MAC
	ip  netip.Prefix // zero for an IP-less endpoint
}

// endpoint is a plugged (MAC, IP) of the instance.
type endpoint struct {
	key         epKey
	ipString    string // as the client sent it
	mac         *macState
	direction   dataplane.Direction
	localPref   *uint32
	description any
	rd          route.RD
	ownRD       bool         // rd allocated for this endpoint
	route       *route.Route // advertised route, nil for from-port endpoints
	// ownPrefix is the prefix of route while it is advertised with rd (an
	// advertise_subnet route in a VRF that re-advertises): no
	// re-advertisement is made for it in this endpoint's name (written
	// under Instance.mu and steering.mu, read under either; steering.go).
	ownPrefix netip.Prefix
}

// Source implements engine.Worker.
func (inst *Instance) Source() *route.Source { return &inst.src }

// Deliver implements engine.Worker.
func (inst *Instance) Deliver(events []route.Event) {
	inst.unprocessed.Add(int64(len(events)))
	inst.inbox.Push(events...)
}

// pendingEvents returns the number of route events delivered to the
// instance and not processed yet: those queued and those of the batch the
// instance goroutine is working on (the looking glass "event queue
// length"; the reference processes one event at a time, so for it too an
// empty queue means every delivered event was handled).
func (inst *Instance) pendingEvents() int64 { return inst.unprocessed.Load() }

// isVRF reports whether the instance is an IP VPN VRF.
func (inst *Instance) isVRF() bool { return inst.Type == dataplane.IPVPN }

// importFamilies are the families subscribed to for each import RT.
func (inst *Instance) importFamilies() []route.Family {
	if inst.isVRF() {
		return []route.Family{route.IPv4VPN, route.FlowVPN}
	}
	return []route.Family{route.EVPN}
}

func (inst *Instance) subscribeRTs(rts []route.RT) {
	for _, rt := range rts {
		for _, f := range inst.importFamilies() {
			inst.m.eng.Subscribe(inst, engine.Match{Family: f, RT: rt})
		}
	}
}

func (inst *Instance) unsubscribeRTs(rts []route.RT) {
	for _, rt := range rts {
		for _, f := range inst.importFamilies() {
			inst.m.eng.Unsubscribe(inst, engine.Match{Family: f, RT: rt})
		}
	}
}

// start launches the route processing goroutine and subscribes.
func (inst *Instance) start() {
	ctx, cancel := context.WithCancel(context.Background())
	inst.cancel = cancel
	inst.done = make(chan struct{})
	go inst.run(ctx)
	inst.subscribeRTs(inst.importRTs)
	if inst.readvertise != nil {
		for _, rt := range inst.readvertise.FromRTs {
			inst.m.eng.Subscribe(inst, engine.Match{Family: route.IPv4VPN, RT: rt})
			if inst.steer != nil && inst.steer.attract {
				// Flowspec routes of from_rt are re-advertised too.
				inst.m.eng.Subscribe(inst, engine.Match{Family: route.FlowVPN, RT: rt})
			}
		}
	}
	if !inst.isVRF() {
		inst.advertiseIMET()
	}
}

// stop withdraws everything, removes the dataplane state and releases the
// instance's identifiers.
func (inst *Instance) stop(ctx context.Context) {
	// The goroutine ends first: it publishes re-advertisements.
	if inst.cancel != nil {
		inst.cancel()
		<-inst.done
	}
	if inst.steer != nil {
		inst.steer.stop()
	}
	inst.m.eng.Cleanup(inst) // withdraws every route of the instance
	inst.trMu.Lock()
	if inst.driver.NeedsCleanupAssist() {
		inst.tracker.clear()
	}
	inst.clearRedirects()
	ops := inst.takeOps()
	inst.trMu.Unlock()
	inst.runOps(ctx, ops)
	inst.teardownRedirects(ctx)
	inst.dpMu.Lock()
	if err := inst.dp.Cleanup(ctx); err != nil {
		inst.log.Error("dataplane cleanup failed", "err", err)
	}
	inst.dpMu.Unlock()
	if !inst.forcedVNI {
		inst.m.labels.Release(inst.label)
	}
	inst.m.rds.Release(uint32(uint16(inst.rd)))
	if inst.m.forgetLogs != nil {
		inst.m.forgetLogs(inst.Name)
	}
}

// maxReusedOps bounds the dataplane operations array an instance keeps
// between batches.
const maxReusedOps = 4096

func (inst *Instance) run(ctx context.Context) {
	defer close(inst.done)
	for {
		if inst.retryDue() {
			inst.retryRedirects(ctx) // redirect.go
		}
		events, err := inst.take(ctx)
		if ctx.Err() != nil {
			return // stopping: what is queued no longer matters
		}
		if err != nil {
			continue // time to retry
		}
		inst.trMu.Lock()
		for _, ev := range events {
			if k, ok := inst.entryKey(ev.Route); ok {
				inst.tracker.update(k, ev)
			}
		}
		ops, redir := inst.takeOps(), inst.takeRedirWork(false)
		inst.trMu.Unlock()
		if inst.steer != nil {
			inst.steer.flush()
		}
		inst.runOps(ctx, ops)
		if redir != nil {
			inst.reconcileRedirects(ctx, redir)
			inst.scheduleRetry(false)
		}
		inst.unprocessed.Add(-int64(len(events)))
		// Reuse the operations' array for the next batch (growing a new
		// one each time costs), unless a burst made it large.
		if cap(ops) <= maxReusedOps {
			clear(ops)
			inst.trMu.Lock()
			if inst.pendingOp == nil {
				inst.pendingOp = ops[:0]
			}
			inst.trMu.Unlock()
		}
	}
}

// take waits for events, until the next retry of failed redirections if
// one is scheduled (then it returns an error).
func (inst *Instance) take(ctx context.Context) ([]route.Event, error) {
	if inst.retryAt.IsZero() {
		return inst.inbox.Take(ctx)
	}
	tctx, cancel := context.WithDeadline(ctx, inst.retryAt)
	defer cancel()
	return inst.inbox.Take(tctx)
}

// entryKey returns the tracked destination of a received route.
func (inst *Instance) entryKey(r *route.Route) (entryKey, bool) {
	n := &r.NLRI
	switch n.Family {
	case route.IPv4VPN, route.FlowVPN:
		return destination(n), inst.isVRF()
	case route.EVPN:
		if inst.isVRF() {
			return entryKey{}, false
		}
		if n.Type == route.EVPNMACIP || n.Type == route.EVPNMulticast {
			return destination(n), true
		}
		inst.log.Debug("ignoring EVPN route of unsupported type", "type", n.Type)
	}
	return entryKey{}, false
}

// destination returns the tracked destination of an NLRI of a family and
// route type an instance tracks: the prefix of a VPNv4 route, the rules of a
// Flowspec route, the (MAC, IP) of an E-VPN MAC/IP route, the (originator,
// RD) of an E-VPN multicast route.
func destination(n *route.NLRI) entryKey {
	switch n.Family {
	case route.IPv4VPN:
		return entryKey{family: route.IPv4VPN, prefix: n.Prefix}
	case route.FlowVPN:
		return entryKey{family: route.FlowVPN, flow: n.Flow}
	case route.EVPN:
		switch n.Type {
		case route.EVPNMACIP:
			k := entryKey{family: route.EVPN, typ: n.Type, mac: n.MAC}
			if n.Prefix.IsValid() {
				k.prefix = hostPrefix(n.Prefix.Addr())
			}
			return k
		case route.EVPNMulticast:
			return entryKey{family: route.EVPN, typ: n.Type, prefix: hostPrefix(n.Prefix.Addr()), rd: n.RD}
		}
	}
	return entryKey{}
}

// hostPrefix returns the host prefix of a.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// dpOp is a dataplane change decided while the tracker lock is held and
// run after it is released.
type dpOp struct {
	add    bool
	bum    bool
	remote dataplane.Remote
}

// remoteKey identifies what is installed in the dataplane for a best route.
// It is compact and free of pointers (one per received route; the garbage
// collector does not scan the map).
type remoteKey struct {
	bum    bool
	ip4    bool
	pe4    bool
	bits   uint8
	mac    route.MAC
	label  uint32
	prefix [16]byte
	pe     [16]byte
}

func newRemoteKey(bum bool, prefix netip.Prefix, mac route.MAC, pe netip.Addr, label uint32) remoteKey {
	k := remoteKey{bum: bum, mac: mac, label: label, pe4: pe.Is4(), pe: pe.As16()}
	if prefix.IsValid() {
		k.ip4, k.bits, k.prefix = prefix.Addr().Is4(), uint8(prefix.Bits()+1), prefix.Addr().As16()
	}
	return k
}

func (inst *Instance) takeOps() []dpOp {
	ops := inst.pendingOp
	inst.pendingOp = nil
	return ops
}

func (inst *Instance) runOps(ctx context.Context, ops []dpOp) {
	if len(ops) == 0 {
		return
	}
	inst.dpMu.Lock()
	defer inst.dpMu.Unlock()
	for _, op := range ops {
		var err error
		evi, _ := inst.dp.(dataplane.EVPNInstance)
		switch {
		case op.bum && op.add:
			err = evi.AddBUM(ctx, op.remote.PE, op.remote.Label, op.remote.Encaps)
		case op.bum:
			err = evi.RemoveBUM(ctx, op.remote.PE, op.remote.Label)
		case op.add:
			err = inst.dp.SetupRemote(ctx, op.remote)
		default:
			err = inst.dp.RemoveRemote(ctx, op.remote)
		}
		if err != nil {
			inst.log.Error("dataplane update failed", "add", op.add, "pe", op.remote.PE.String(), "err", err)
		}
	}
}

// usableEncaps returns the encapsulations of r the dataplane can use, or
// nil when there is none.
func (inst *Instance) usableEncaps(r *route.Route) []route.Encap {
	theirs := r.Attrs.Encaps
	if len(theirs) == 0 {
		theirs = []route.Encap{route.EncapDefault}
		// RFC 8365 peers always send the VXLAN encapsulation, but some
		// omit it: a VXLAN-only E-VPN dataplane takes such routes as VXLAN.
		if !inst.isVRF() && slices.Contains(inst.driver.Encaps(), route.EncapVXLAN) {
			theirs = []route.Encap{route.EncapVXLAN}
		}
	}
	ours := inst.driver.Encaps()
	all := true
	for _, e := range theirs {
		if !slices.Contains(ours, e) {
			all = false
			break
		}
	}
	if all {
		return theirs // the common case: no copy (routes and their attributes are immutable)
	}
	var out []route.Encap
	for _, e := range theirs {
		if slices.Contains(ours, e) {
			out = append(out, e)
		}
	}
	return out
}

// imported reports whether r carries one of the current import RTs.
func (inst *Instance) imported(r *route.Route) bool {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	for _, rt := range r.RTs() {
		if slices.Contains(inst.importRTs, rt) {
			return true
		}
	}
	return false
}

func (inst *Instance) remoteFor(k entryKey, r *route.Route) (remoteKey, dataplane.Remote, bool) {
	switch {
	case r.NLRI.Family == route.IPv4VPN:
		rem := dataplane.Remote{Prefix: r.NLRI.Prefix, PE: r.NextHop, Label: r.Label}
		if r.Attrs.HasHashOrder {
			rem.LBOrder = r.Attrs.HashOrder
		}
		return newRemoteKey(false, rem.Prefix, route.MAC{}, rem.PE, rem.Label), rem, true
	case r.NLRI.Family == route.EVPN && r.NLRI.Type == route.EVPNMACIP:
		rem := dataplane.Remote{MAC: r.NLRI.MAC, Prefix: r.NLRI.Prefix, PE: r.NextHop, Label: r.Label}
		return newRemoteKey(false, rem.Prefix, rem.MAC, rem.PE, rem.Label), rem, true
	case r.NLRI.Family == route.EVPN && r.NLRI.Type == route.EVPNMulticast:
		p := r.Attrs.PMSI
		if p == nil || p.Type != route.PMSIIngressReplication {
			inst.log.Warn("multicast route without ingress replication PMSI tunnel ignored", "worker", inst.Name)
			return remoteKey{}, dataplane.Remote{}, false
		}
		rem := dataplane.Remote{PE: p.Endpoint, Label: p.Label}
		return newRemoteKey(true, netip.Prefix{}, route.MAC{}, rem.PE, rem.Label), rem, true
	}
	return remoteKey{}, dataplane.Remote{}, false
}

// newBest implements bestCallbacks: install the route in the dataplane.
func (inst *Instance) newBest(k entryKey, r *route.Route) {
	if inst.steer != nil {
		inst.steer.bestAdded(r)
	}
	if r.NLRI.Family == route.FlowVPN {
		inst.flowAdded(r)
		return
	}
	if !inst.imported(r) {
		return
	}
	encaps := inst.usableEncaps(r)
	if len(encaps) == 0 {
		inst.log.Warn("route ignored: no encapsulation in common with the dataplane", "worker", inst.Name, "encaps", r.Attrs.Encaps)
		return
	}
	key, rem, ok := inst.remoteFor(k, r)
	if !ok {
		return
	}
	rem.Encaps = encaps
	refs := inst.installed[key]
	if refs == 0 {
		inst.pendingOp = append(inst.pendingOp, dpOp{add: true, bum: key.bum, remote: rem})
	}
	inst.installed[key] = refs + 1
}

// bestRemoved implements bestCallbacks: remove the route from the dataplane
// once no equivalent best route needs the entry.
func (inst *Instance) bestRemoved(k entryKey, r *route.Route, last bool) {
	if inst.steer != nil {
		inst.steer.bestRemoved(r)
	}
	if r.NLRI.Family == route.FlowVPN {
		inst.flowRemoved(r)
		return
	}
	key, rem, ok := inst.remoteFor(k, r)
	if !ok {
		return
	}
	refs := inst.installed[key]
	if refs == 0 {
		return
	}
	if refs > 1 {
		inst.installed[key] = refs - 1
		return
	}
	delete(inst.installed, key)
	inst.pendingOp = append(inst.pendingOp, dpOp{add: false, bum: key.bum, remote: rem})
}
