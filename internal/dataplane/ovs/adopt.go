package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"bagpipe/internal/dataplane"
)

// Adoption of what an earlier run left on the bridge (dataplane.Adopter):
// after a restart with a state directory, the daemon restores its VRFs
// with the same instance ids, labels and ports, and traffic keeps flowing
// through the flows, groups and ports the earlier run installed while the
// new run takes them over.
//
//   - Flows: ResetState removes nothing; it reads our flows back (flow
//     description, cookie tag) and picks a new generation, one no flow
//     found carries, for the cookies of the flows this run installs
//     (flows.go). Plugs, routes, classifiers and the driver's own flows
//     install their flows as usual: an OFPFC_ADD of a flow with the match
//     and priority of an existing one replaces it in place (same
//     forwarding, new cookie, new actions when they changed: a classifier
//     redirecting to another VRF id), so a flow "confirmed" is one
//     installed again. The sweep deletes, per earlier generation, every
//     flow still carrying it (cookie=<tag|gen>/0xffffffff00000000): what
//     no plug, route or classifier of this run installed, and everything
//     of VRFs that were not restored (redirection VRFs, whose ids are not
//     kept, included). No flow needs to be compared or parsed for that.
//   - Groups: they have no cookie, and their ids come from a counter. The
//     route flows read back give, per VRF id, the group of each prefix
//     (table vrf, ip,reg0=VRF[,nw_dst=P], actions=group:G); the group
//     descriptions give their buckets. The first route to a prefix of the
//     VRF reuses its group (OFPGC_MODIFY, never delete and add): same
//     group id, and a bucket whose actions are those of a next hop keeps
//     its bucket id. Buckets no next hop confirmed stay until the sweep.
//     New groups get ids above every id found. The sweep deletes the
//     groups no prefix took and removes the unconfirmed buckets.
//   - Ports: the GRE/VXLAN tunnel ports are kept when their type and
//     options still fit; VM ports we plugged are found again by name (their
//     external_ids mark them ours). The sweep removes our ports no VRF
//     uses.

var _ dataplane.Adopter = (*Driver)(nil)

// adoption is what ResetState found of an earlier run, until the sweep.
type adoption struct {
	gens   map[uint16]int                     // flows found by cookie generation
	vrfs   map[uint32]int                     // flows found by VRF id (0: the driver's)
	routes map[uint32]map[netip.Prefix]uint32 // route groups: VRF id → prefix → group id
	groups map[uint32]*adoptedGroup           // our groups, by id
	ports  []string                           // our ports
	found  time.Time
}

// adoptedGroup is a group of ours found on the bridge.
type adoptedGroup struct {
	buckets map[uint32][]Action // buckets whose actions were all understood
	taken   bool                // a prefix uses it (or it was deleted since)
}

// KeepForAdoption implements dataplane.Adopter: ResetState then keeps
// everything of ours on the bridge for the restored VRFs to take over.
// Flows are identified by VRF id, which the restore keeps: the external
// ids only tell that there is something to adopt.
func (d *Driver) KeepForAdoption(externalIDs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keep = map[string]bool{}
	for _, id := range externalIDs {
		d.keep[id] = true
	}
}

// readBack lists what an earlier run left (ResetState with adoption, d.mu
// held, connected): nothing is removed.
func (d *Driver) readBack(ctx context.Context) error {
	start := time.Now()
	flows, err := d.of.Flows(ctx, cookieTag, cookieTagMask)
	if err != nil {
		return fmt.Errorf("reading our flows back: %w", err)
	}
	groups, err := d.of.Groups(ctx)
	if err != nil {
		return fmt.Errorf("reading the groups back: %w", err)
	}
	var ports []string
	if d.db != nil {
		if ports, err = d.db.ownedPorts(ctx, d.cfg.Bridge); err != nil {
			return err
		}
	}
	a := &adoption{
		gens: map[uint16]int{}, vrfs: map[uint32]int{}, routes: map[uint32]map[netip.Prefix]uint32{},
		groups: map[uint32]*adoptedGroup{}, ports: ports, found: time.Now(),
	}
	var maxGroup uint32
	partial := 0
	for _, g := range groups {
		if g.ID&groupTagMask != groupTag || g.Type != ofpgtSelect {
			continue
		}
		ag := &adoptedGroup{buckets: map[uint32][]Action{}}
		for _, b := range g.Buckets {
			if b.Complete {
				ag.buckets[b.ID] = b.Actions
			} else {
				partial++
			}
		}
		a.groups[g.ID] = ag
		maxGroup = max(maxGroup, g.ID&^groupTagMask)
	}
	vrfTable := d.cfg.TableStart + 1
	for k := range flows {
		f := &flows[k]
		gen, vrf := cookieGen(f.Cookie), cookieVRF(f.Cookie)
		a.gens[gen]++
		a.vrfs[vrf]++
		if p, gid, ok := routeOf(f, vrf, vrfTable); ok && a.groups[gid] != nil {
			if a.routes[vrf] == nil {
				a.routes[vrf] = map[netip.Prefix]uint32{}
			}
			a.routes[vrf][p] = gid
		}
	}
	// This run's generation: one no flow found carries.
	var gen uint16
	for a.gens[gen] > 0 {
		gen++
	}
	d.gen, d.pl.gen = gen, gen
	d.nextGroup = max(d.nextGroup, maxGroup)
	d.adopt = a
	nroutes := 0
	for _, r := range a.routes {
		nroutes += len(r)
	}
	d.log.Info("keeping the flows, groups and ports of the earlier run for the restored VRFs",
		"flows", len(flows), "vrfs", len(a.vrfs), "route_groups", nroutes, "groups", len(a.groups),
		"ports", len(ports), "previous_generations", slices.Sorted(maps.Keys(a.gens)), "generation", gen,
		"undecoded_buckets", partial, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// routeOf recognizes the route flow of a VRF: its prefix and group.
func routeOf(f *FlowDesc, vrf uint32, vrfTable uint8) (netip.Prefix, uint32, bool) {
	m := &f.Match
	if vrf == 0 || f.Table != vrfTable || !f.Complete || len(f.Actions) != 1 || m.Reg0 != vrf ||
		m.EthType != ethTypeIPv4 || m.IPProto != 0 || m.IPSrc.IsValid() || m.InPort != 0 || m.HasTunID {
		return netip.Prefix{}, 0, false
	}
	g, ok := f.Actions[0].(GroupAction)
	if !ok || uint32(g)&groupTagMask != groupTag {
		return netip.Prefix{}, 0, false
	}
	p := m.IPDst
	if !p.IsValid() {
		p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if f.Priority != routePriority(p) {
		return netip.Prefix{}, 0, false
	}
	return p, uint32(g), true
}

// adoptRoutes gives a new VRF the route groups found for its id (d.mu
// held).
func (d *Driver) adoptRoutes(inst *Instance) {
	if d.adopt == nil {
		return
	}
	inst.adopted = d.adopt.routes[inst.id()]
	delete(d.adopt.routes, inst.id())
}

// adoptGroup installs the first next hop of a prefix whose group an
// earlier run left: the group is modified in place (same id; the bucket of
// the same actions keeps its id; the other buckets stay until the sweep)
// and the route flow installed again (d.mu held).
func (i *Instance) adoptGroup(ctx context.Context, r remoteHop, gid uint32) (bool, error) {
	d := i.d
	delete(i.adopted, r.prefix)
	if d.adopt == nil {
		return false, nil
	}
	ag := d.adopt.groups[gid]
	if ag == nil || ag.taken {
		return false, nil
	}
	g := d.groupTemplate()
	g.ID = gid
	pg := &prefixGroup{
		group: g, route: d.pl.routeFlow(i.id(), r.prefix, gid),
		nexthops: map[nextHop]*bucketState{}, prior: maps.Clone(ag.buckets),
	}
	id, _, _ := pg.bucketFor(r.acts, r.lbOrder)
	pg.nexthops[r.nh] = &bucketState{id: id, actions: r.acts}
	pg.group.Buckets = buckets(pg.nexthops, pg.prior)
	if err := d.of.Send(ctx, groupMod(0, ofpgcModify, &pg.group), flowMod(0, ofpfcAdd, &pg.route, 0)); err != nil {
		i.adopted[r.prefix] = gid
		return true, fmt.Errorf("installing route to %s: %w", r.prefix, err)
	}
	ag.taken = true
	i.prefixes[r.prefix] = pg
	return true, nil
}

// remoteHop is what SetupRemote computed for a next hop.
type remoteHop struct {
	prefix  netip.Prefix
	nh      nextHop
	acts    []Action
	lbOrder uint32
}

// bucketFor returns the bucket id of a new next hop of pg: that of the
// adopted bucket with the same actions, which is then confirmed (returned
// with wasPrior, to put back if the change fails), else its consistent
// hash order when free, else the lowest free id.
func (pg *prefixGroup) bucketFor(acts []Action, lbOrder uint32) (id uint32, prior []Action, wasPrior bool) {
	used := map[uint32]bool{}
	for _, b := range pg.nexthops {
		used[b.id] = true
	}
	if len(pg.prior) > 0 {
		s := actionsString(acts)
		for _, id := range slices.Sorted(maps.Keys(pg.prior)) {
			if p := pg.prior[id]; !used[id] && actionsString(p) == s {
				delete(pg.prior, id)
				return id, p, true
			}
		}
		for id := range pg.prior {
			used[id] = true
		}
	}
	return allocBucket(used, lbOrder), nil, false
}

// dropAdopted returns the deletion of the adopted groups of a VRF that no
// route took (Cleanup, d.mu held).
func (i *Instance) dropAdopted() [][]byte {
	d := i.d
	if d.adopt == nil {
		i.adopted = nil
		return nil
	}
	var msgs [][]byte
	for _, gid := range slices.Sorted(maps.Values(i.adopted)) {
		if ag := d.adopt.groups[gid]; ag != nil && !ag.taken {
			ag.taken = true
			msgs = append(msgs, groupMod(0, ofpgcDelete, &Group{ID: gid}))
			d.freeGroupID(gid)
		}
	}
	i.adopted = nil
	return msgs
}

// unconfirmed counts the adopted route groups and buckets of a VRF that no
// route confirmed yet (d.mu held).
func (i *Instance) unconfirmed() int {
	n := len(i.adopted)
	for _, pg := range i.prefixes {
		n += len(pg.prior)
	}
	return n
}

// SweepAdopted implements dataplane.Adopter: the flows of earlier
// generations (installed by an earlier run, not again by this one), the
// groups no prefix took, the buckets no next hop confirmed and our ports
// no VRF uses are removed.
func (d *Driver) SweepAdopted(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.adopt
	d.adopt, d.keep = nil, nil
	if a == nil {
		return nil
	}
	var msgs [][]byte
	nBuckets, groups, gens := 0, 0, 0
	inUse := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(d.instances)) {
		inst := d.instances[id]
		for _, pg := range inst.prefixes {
			if len(pg.prior) == 0 {
				continue
			}
			nBuckets += len(pg.prior)
			pg.prior = nil
			pg.group.Buckets = buckets(pg.nexthops, nil)
			msgs = append(msgs, groupMod(0, ofpgcModify, &pg.group))
		}
		inst.adopted = nil
		for _, p := range inst.ports {
			if p.ours {
				inUse[p.name] = true
			}
		}
	}
	for _, gen := range slices.Sorted(maps.Keys(a.gens)) {
		if gen != d.gen {
			gens++
			msgs = append(msgs, flowMod(0, ofpfcDelete, &Flow{Table: ofpttAll, Cookie: cookieOf(gen, 0)}, cookieTagMask|cookieGenMask))
		}
	}
	for _, gid := range slices.Sorted(maps.Keys(a.groups)) {
		if !a.groups[gid].taken {
			groups++
			msgs = append(msgs, groupMod(0, ofpgcDelete, &Group{ID: gid}))
			d.freeGroupID(gid)
		}
	}
	var errs []error
	if err := d.of.Send(ctx, msgs...); err != nil {
		errs = append(errs, fmt.Errorf("removing adopted flows and groups: %w", err))
	}
	if d.active > 0 {
		if d.cfg.UseGRE {
			inUse[d.cfg.GRETunnel] = true
		}
		if d.cfg.VXLAN {
			inUse[vxlanTunnel] = true
		}
	}
	ports := 0
	for _, p := range a.ports {
		if inUse[p] || d.db == nil {
			continue
		}
		ports++
		if err := d.db.delPort(ctx, d.cfg.Bridge, p); err != nil {
			errs = append(errs, fmt.Errorf("removing port %s: %w", p, err))
		}
	}
	d.log.Info("adopted OVS flows, groups and ports swept", "previous_generations", gens,
		"groups_removed", groups, "buckets_removed", nBuckets, "ports_removed", ports,
		"after", time.Since(a.found).Round(time.Millisecond).String())
	return errors.Join(errs...)
}

// adoptionLG is the looking glass view of a pending adoption (d.mu held).
func (d *Driver) adoptionLG() map[string]any {
	a := d.adopt
	prev := make([]int, 0, len(a.gens))
	flows := 0
	for g, n := range a.gens {
		prev = append(prev, int(g))
		flows += n
	}
	slices.Sort(prev)
	unconfirmedGroups := 0
	for _, ag := range a.groups {
		if !ag.taken {
			unconfirmedGroups++
		}
	}
	return map[string]any{
		"generation": int(d.gen), "previous_generations": prev, "flows_found": flows,
		"groups_found": len(a.groups), "groups_unconfirmed": unconfirmedGroups, "ports_found": a.ports,
	}
}
