package ovs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// Instance is the dataplane of one VRF.
type Instance struct {
	d      *Driver
	cfg    dataplane.InstanceConfig
	log    *slog.Logger
	subnet netip.Prefix // gateway_ip/plen, invalid when unknown

	// Guarded by d.mu.
	vlan     uint16
	vlanSet  bool
	ports    map[string]*port // by linuxif
	labels   map[uint32]string
	fallback *dataplane.Fallback
	prefixes map[netip.Prefix]*prefixGroup
	// Traffic classifiers (classifier.go).
	classifiers map[route.Classifier]*classifierEntry
	clsFlows    map[string]*clsFlow
	closed      bool
	// adopted are the route groups an earlier run left for this VRF id
	// that no route confirmed yet, by prefix (adopt.go); nil once swept.
	adopted map[netip.Prefix]uint32
}

// port is a local port plugged in the VRF.
type port struct {
	ofport  uint32
	name    string            // OVS port name
	ours    bool              // created by us: deleted with its last endpoint
	flows   []Flow            // classification flows (from-port)
	inFlows map[uint32][]Flow // incoming flows by label (to-port)
	users   map[string]bool   // MACs plugged on the port
}

// prefixGroup is the select group of a remote prefix.
type prefixGroup struct {
	group    Group
	route    Flow
	nexthops map[nextHop]*bucketState
	// prior are the buckets of an adopted group that no next hop
	// confirmed yet, by bucket id: they stay until the sweep (adopt.go).
	prior map[uint32][]Action
}

type bucketState struct {
	id      uint32
	actions []Action
}

func newInstance(d *Driver, cfg dataplane.InstanceConfig) *Instance {
	inst := &Instance{
		d: d, cfg: cfg,
		log:      d.log.With("worker", fmt.Sprintf("VRF-%d", cfg.ID)),
		ports:    map[string]*port{},
		labels:   map[uint32]string{},
		prefixes: map[netip.Prefix]*prefixGroup{},

		classifiers: map[route.Classifier]*classifierEntry{},
		clsFlows:    map[string]*clsFlow{},
	}
	if cfg.GatewayIP.IsValid() && cfg.PrefixLen >= 0 {
		inst.subnet = netip.PrefixFrom(cfg.GatewayIP, cfg.PrefixLen).Masked()
	}
	return inst
}

func (i *Instance) id() uint32 { return i.cfg.ID }

func addMsgs(flows []Flow) [][]byte {
	msgs := make([][]byte, 0, len(flows))
	for k := range flows {
		msgs = append(msgs, flowMod(0, ofpfcAdd, &flows[k], 0))
	}
	return msgs
}

func strictDelMsgs(flows []Flow) [][]byte {
	msgs := make([][]byte, 0, len(flows))
	for k := range flows {
		msgs = append(msgs, flowMod(0, ofpfcDeleteStrict, &flows[k], cookieAllOne))
	}
	return msgs
}

// resolvePort finds (or plugs) the OVS port of a local port (spec §7.4).
func (i *Instance) resolvePort(ctx context.Context, lp *dataplane.LocalPort) (*port, error) {
	d := i.d
	if lp.OVS != nil && lp.OVS.Plugged {
		if lp.OVS.PortNumber != nil {
			return &port{ofport: uint32(*lp.OVS.PortNumber), name: lp.OVS.PortName}, nil
		}
		if lp.OVS.PortName == "" {
			return nil, errors.New("Incomplete port specification: 'ovs' needs 'port_number' or 'port_name'")
		}
		n, err := d.db.ofport(ctx, lp.OVS.PortName)
		if err != nil {
			return nil, err
		}
		return &port{ofport: uint32(n), name: lp.OVS.PortName}, nil
	}
	name := lp.LinuxIf
	if lp.OVS != nil && lp.OVS.PortName != "" {
		name = lp.OVS.PortName
	}
	if name == "" {
		return nil, errors.New("Trying to find which port to plug, but no portname was provided")
	}
	p := &port{name: name}
	existing, err := d.db.port(ctx, name)
	if err != nil {
		return nil, err
	}
	if existing == nil {
		if err := d.db.addPort(ctx, d.cfg.Bridge, name, "", nil); err != nil {
			return nil, fmt.Errorf("adding port %s to %s: %w", name, d.cfg.Bridge, err)
		}
		p.ours = true
	} else {
		p.ours = existing.ExternalIDs[ownerKey] == ownerValue
	}
	n, err := d.db.ofport(ctx, name)
	if err != nil {
		if p.ours {
			_ = d.db.delPort(ctx, d.cfg.Bridge, name)
		}
		return nil, err
	}
	p.ofport = uint32(n)
	if d.cfg.MTU > 0 {
		if l, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkSetMTU(l, d.cfg.MTU)
		}
	}
	return p, nil
}

func portKey(lp *dataplane.LocalPort) string {
	if lp.LinuxIf != "" {
		return lp.LinuxIf
	}
	if lp.OVS != nil {
		if lp.OVS.PortName != "" {
			return lp.OVS.PortName
		}
		if lp.OVS.PortNumber != nil {
			return fmt.Sprintf("ofport-%d", *lp.OVS.PortNumber)
		}
	}
	return ""
}

// VIFPlugged implements dataplane.Instance.
func (i *Instance) VIFPlugged(ctx context.Context, ep dataplane.Endpoint) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	lp := ep.Port
	var vlan uint16
	if lp.OVS != nil && lp.OVS.VLAN != nil {
		vlan = uint16(*lp.OVS.VLAN)
	}
	if i.vlanSet && vlan != i.vlan {
		return fmt.Errorf("can't specify a different VLAN for different interfaces (%d vs %d)", vlan, i.vlan)
	}
	if owner, dup := i.labels[ep.Label]; dup && owner != ep.MAC.String() {
		return fmt.Errorf("label %d already used by %s", ep.Label, owner)
	}
	key := portKey(lp)
	p := i.ports[key]
	newPort := p == nil
	if newPort {
		var err error
		if p, err = i.resolvePort(ctx, lp); err != nil {
			return err
		}
		p.inFlows = map[uint32][]Flow{}
		p.users = map[string]bool{}
	}
	var msgs [][]byte
	firstVLAN := !i.vlanSet
	i.vlan, i.vlanSet = vlan, true
	if firstVLAN && i.fallback != nil {
		if f, err := d.pl.fallbackFlow(i.id(), i.fallback, i.vlan); err == nil {
			msgs = append(msgs, addMsgs([]Flow{f})...)
		}
	}
	var classify []Flow
	if ep.Direction.FromPortAllowed() && p.flows == nil {
		classify = d.pl.portFlows(i.id(), i.cfg.GatewayIP, p.ofport, vlan)
		msgs = append(msgs, addMsgs(classify)...)
	}
	var incoming []Flow
	if ep.Direction.ToPortAllowed() {
		mac := net.HardwareAddr(ep.MAC[:])
		incoming = d.pl.incomingFlows(i.id(), ep.Label, mac, p.ofport, vlan)
		msgs = append(msgs, addMsgs(incoming)...)
	}
	if err := d.of.Send(ctx, msgs...); err != nil {
		if newPort && p.ours {
			_ = d.db.delPort(ctx, d.cfg.Bridge, p.name)
		}
		if firstVLAN {
			i.vlanSet = false
		}
		return fmt.Errorf("installing flows: %w", err)
	}
	if classify != nil {
		p.flows = classify
	}
	if incoming != nil {
		p.inFlows[ep.Label] = incoming
		i.labels[ep.Label] = ep.MAC.String()
	}
	p.users[ep.MAC.String()] = true
	i.ports[key] = p
	return nil
}

// VIFUnplugged implements dataplane.Instance. Labels are per MAC, so the
// flows of a MAC go with its last endpoint, and those of a port with the
// last MAC using it.
func (i *Instance) VIFUnplugged(ctx context.Context, ep dataplane.Endpoint, last bool) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	key := portKey(ep.Port)
	p := i.ports[key]
	if p == nil {
		return fmt.Errorf("port %s is not plugged in this VRF", key)
	}
	if !last {
		return nil
	}
	mac := ep.MAC.String()
	lastUser := len(p.users) == 1 && p.users[mac]
	msgs := strictDelMsgs(p.inFlows[ep.Label])
	if lastUser {
		msgs = append(msgs, strictDelMsgs(p.flows)...)
	}
	if err := d.of.Send(ctx, msgs...); err != nil {
		return fmt.Errorf("removing flows: %w", err)
	}
	delete(p.inFlows, ep.Label)
	delete(i.labels, ep.Label)
	delete(p.users, mac)
	if !lastUser {
		return nil
	}
	delete(i.ports, key)
	if p.ours {
		if err := d.db.delPort(ctx, d.cfg.Bridge, p.name); err != nil {
			return fmt.Errorf("removing port %s: %w", p.name, err)
		}
	}
	if len(i.ports) == 0 {
		i.vlanSet = false
	}
	return nil
}

// UpdateFallback implements dataplane.Instance.
func (i *Instance) UpdateFallback(ctx context.Context, fb *dataplane.Fallback) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if fb == nil {
		return nil
	}
	f, err := d.pl.fallbackFlow(i.id(), fb, i.vlan)
	if err != nil {
		return err
	}
	if err := d.of.Send(ctx, addMsgs([]Flow{f})...); err != nil {
		return err
	}
	i.fallback = fb
	return nil
}

// SetupRemote implements dataplane.Instance: one select group per prefix,
// one bucket per next hop.
func (i *Instance) SetupRemote(ctx context.Context, r dataplane.Remote) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i.closed {
		return nil
	}
	if !r.Prefix.Addr().Is4() {
		return fmt.Errorf("prefix %s: only IPv4 is supported", r.Prefix)
	}
	nh := nextHopOf(r)
	pg := i.prefixes[r.Prefix]
	if pg != nil && pg.nexthops[nh] != nil {
		return nil // same (prefix, next hop) twice
	}
	var peMAC net.HardwareAddr
	if d.pl.needsPEMAC(r) {
		var err error
		if peMAC, err = d.peMAC(ctx, r.PE); err != nil {
			return err
		}
	}
	acts := d.pl.bucketActions(r, i.subnet, peMAC)
	if pg == nil {
		if gid, ok := i.adopted[r.Prefix]; ok {
			if done, err := i.adoptGroup(ctx, remoteHop{prefix: r.Prefix, nh: nh, acts: acts, lbOrder: r.LBOrder}, gid); done {
				return err
			}
		}
		gid, err := d.allocGroup()
		if err != nil {
			return err
		}
		g := d.groupTemplate()
		g.ID = gid
		g.Buckets = []Bucket{{ID: allocBucket(nil, r.LBOrder), Actions: acts}}
		pg = &prefixGroup{group: g, route: d.pl.routeFlow(i.id(), r.Prefix, gid), nexthops: map[nextHop]*bucketState{}}
		err = d.of.Send(ctx, groupMod(0, ofpgcAdd, &pg.group), flowMod(0, ofpfcAdd, &pg.route, 0))
		if err != nil {
			_ = d.of.Send(ctx, groupMod(0, ofpgcDelete, &pg.group))
			d.freeGroupID(gid)
			return fmt.Errorf("installing route to %s: %w", r.Prefix, err)
		}
		pg.nexthops[nh] = &bucketState{id: g.Buckets[0].ID, actions: acts}
		i.prefixes[r.Prefix] = pg
		return nil
	}
	id, prior, wasPrior := pg.bucketFor(acts, r.LBOrder)
	pg.nexthops[nh] = &bucketState{id: id, actions: acts}
	pg.group.Buckets = buckets(pg.nexthops, pg.prior)
	if err := d.of.Send(ctx, groupMod(0, ofpgcModify, &pg.group)); err != nil {
		delete(pg.nexthops, nh)
		if wasPrior {
			pg.prior[id] = prior
		}
		pg.group.Buckets = buckets(pg.nexthops, pg.prior)
		return fmt.Errorf("adding next hop %s to %s: %w", r.PE, r.Prefix, err)
	}
	return nil
}

// buckets returns the buckets of a group in bucket id order: those of the
// next hops and the adopted ones not confirmed yet.
func buckets(nhs map[nextHop]*bucketState, prior map[uint32][]Action) []Bucket {
	out := make([]Bucket, 0, len(nhs)+len(prior))
	for _, b := range nhs {
		out = append(out, Bucket{ID: b.id, Actions: b.actions})
	}
	for id, acts := range prior {
		out = append(out, Bucket{ID: id, Actions: acts})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return int(a.ID) - int(b.ID) })
	return out
}

// RemoveRemote implements dataplane.Instance.
func (i *Instance) RemoveRemote(ctx context.Context, r dataplane.Remote) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	pg := i.prefixes[r.Prefix]
	nh := nextHopOf(r)
	if pg == nil || pg.nexthops[nh] == nil {
		i.log.Debug("removing a next hop we don't know", "prefix", r.Prefix.String(), "pe", r.PE.String())
		return nil
	}
	delete(pg.nexthops, nh)
	if len(pg.nexthops) > 0 {
		pg.group.Buckets = buckets(pg.nexthops, pg.prior)
		return d.of.Send(ctx, groupMod(0, ofpgcModify, &pg.group))
	}
	// The last next hop: the adopted buckets not confirmed go too.
	delete(i.prefixes, r.Prefix)
	err := d.of.Send(ctx, flowMod(0, ofpfcDeleteStrict, &pg.route, cookieAllOne), groupMod(0, ofpgcDelete, &pg.group))
	d.freeGroupID(pg.group.ID)
	return err
}

// Cleanup implements dataplane.Instance: every flow with the VRF's cookie,
// its groups and the ports it plugged are removed.
func (i *Instance) Cleanup(ctx context.Context) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i.closed {
		return nil
	}
	i.closed = true
	// Every generation's flows of the VRF: adopted ones too.
	msgs := [][]byte{flowMod(0, ofpfcDelete, &Flow{Table: ofpttAll, Cookie: cookieOf(0, i.id())}, cookieAnyGen)}
	for _, pg := range i.prefixes {
		msgs = append(msgs, groupMod(0, ofpgcDelete, &pg.group))
		d.freeGroupID(pg.group.ID)
	}
	msgs = append(msgs, i.dropAdopted()...)
	var errs []error
	if err := d.of.Send(ctx, msgs...); err != nil {
		errs = append(errs, err)
	}
	for _, p := range i.ports {
		if p.ours {
			i.log.Info("port still plugged at cleanup, removing it", "port", p.name)
			if err := d.db.delPort(ctx, d.cfg.Bridge, p.name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	clear(i.ports)
	clear(i.prefixes)
	clear(i.labels)
	clear(i.classifiers)
	clear(i.clsFlows)
	delete(d.instances, i.id())
	d.release(ctx)
	return errors.Join(errs...)
}

// Flows returns the flows the VRF holds, as ovs-ofctl lines (sorted).
func (i *Instance) Flows() []string {
	var out []string
	add := func(fs []Flow) {
		for k := range fs {
			out = append(out, fs[k].String())
		}
	}
	for _, p := range i.ports {
		add(p.flows)
		for _, fl := range p.inFlows {
			add(fl)
		}
	}
	for _, pg := range i.prefixes {
		add([]Flow{pg.route})
	}
	for _, cf := range i.clsFlows {
		add([]Flow{cf.flow})
	}
	if i.fallback != nil {
		if f, err := i.d.pl.fallbackFlow(i.id(), i.fallback, i.vlan); err == nil {
			add([]Flow{f})
		}
	}
	slices.Sort(out)
	return out
}

// LookingGlass implements dataplane.Instance.
func (i *Instance) LookingGlass() map[string]any {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var groups []string
	for _, pg := range i.prefixes {
		groups = append(groups, pg.group.String())
	}
	slices.Sort(groups)
	ports := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(i.ports)) {
		p := i.ports[k]
		ports[k] = map[string]any{"ovs_port": p.ofport, "ovs_port_name": p.name, "plugged_by_us": p.ours}
	}
	lg := map[string]any{
		"cookie": fmt.Sprintf("%#x", d.pl.cookie(i.id())),
		"flows":  i.Flows(),
		"groups": groups,
		"ports":  ports,
	}
	if i.vlanSet && i.vlan != 0 {
		lg["vlan"] = i.vlan
	}
	if len(i.classifiers) > 0 {
		lg["classifiers"] = i.classifierLG()
	}
	if d.adopt != nil {
		lg["adopted_unconfirmed"] = i.unconfirmed()
	}
	return lg
}
