package vpn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/lookingglass"
	"bagpipe/internal/route"
)

// Flowspec redirect-to-VRF, the VRF side that receives (spec §6.8): an
// imported Flowspec-VPN route with a redirect-to-VRF action to route target
// X makes the VRF send the traffic its rule matches into the redirection
// VRF of X, "redirect-to-ipvpn-<asn>_<nn>": a VRF the manager creates on
// first use (importing X, exporting nothing, gateway 127.0.0.1/24, no
// ports) and stops when no VRF redirects to it any more.
//
// Routes are reference counted per traffic classifier: routes with
// different RDs or encodings of the same rule (several service nodes
// advertising one chain) share one dataplane classifier, removed with the
// last of them. The decisions are taken in the best path callbacks (trMu
// held); the dataplane calls and the redirection VRF changes run afterwards
// on the instance goroutine, in order (redirOp).

// FlowCodec converts traffic classifiers to and from Flowspec rules (the
// RFC 5575 component bytes of route.NLRI.Flow). The daemon gives the bgp
// package's GoBGP based functions; without them Flowspec routes are
// neither generated nor acted upon.
type FlowCodec struct {
	Encode func(route.Classifier) (string, error)
	Decode func(flow string) (route.Classifier, error)
}

// clsUse is what uses one traffic classifier of a VRF: references per
// redirect RT, and the RT the dataplane redirects to.
type clsUse struct {
	rts    map[route.RT]int
	active route.RT
}

type redirOpKind uint8

const (
	redirAcquire redirOpKind = iota // get or create the redirection VRF of rt
	redirRelease                    // stop using the redirection VRF of rt
	redirAdd                        // AddClassifier(cls, redirection VRF of rt)
	redirRemove                     // RemoveClassifier(cls)
)

type redirOp struct {
	kind redirOpKind
	rt   route.RT
	cls  route.Classifier
}

// flowAdded handles a new best Flowspec route (trMu held).
func (inst *Instance) flowAdded(r *route.Route) {
	if r.Attrs == nil || !r.Attrs.HasRedirect {
		if inst.imported(r) {
			inst.log.Warn("flowspec route without a redirect-to-VRF action ignored", "rule", flowText(r.NLRI.Flow))
		}
		return
	}
	if !inst.imported(r) {
		return
	}
	c, ok := inst.flowClassifier(r, true)
	if !ok {
		return
	}
	rt := r.Attrs.Redirect
	if inst.clsUses == nil {
		inst.clsUses, inst.rtUses = map[route.Classifier]*clsUse{}, map[route.RT]int{}
	}
	u := inst.clsUses[c]
	isNew := u == nil
	if isNew {
		u = &clsUse{rts: map[route.RT]int{}}
		inst.clsUses[c] = u
	}
	u.rts[rt]++
	if u.rts[rt] == 1 {
		inst.rtUses[rt]++
		if inst.rtUses[rt] == 1 {
			inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirAcquire, rt: rt})
		}
	}
	if isNew {
		u.active = rt
		inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirAdd, rt: rt, cls: c})
	}
}

// flowRemoved handles the loss of a best Flowspec route (trMu held).
func (inst *Instance) flowRemoved(r *route.Route) {
	if r.Attrs == nil || !r.Attrs.HasRedirect || inst.clsUses == nil {
		return
	}
	c, ok := inst.flowClassifier(r, false)
	if !ok {
		return
	}
	rt := r.Attrs.Redirect
	u := inst.clsUses[c]
	if u == nil || u.rts[rt] == 0 {
		return // not used (not imported when it was added)
	}
	u.rts[rt]--
	release := false
	if u.rts[rt] == 0 {
		delete(u.rts, rt)
		inst.rtUses[rt]--
		if inst.rtUses[rt] == 0 {
			delete(inst.rtUses, rt)
			release = true
		}
	}
	switch {
	case len(u.rts) == 0:
		delete(inst.clsUses, c)
		inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirRemove, cls: c})
	case u.rts[rt] == 0 && u.active == rt:
		// Another route redirects the same traffic elsewhere: it takes over.
		u.active = slices.MinFunc(keysOf(u.rts), cmp.Compare[route.RT])
		inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirAdd, rt: u.active, cls: c})
	}
	if release {
		inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirRelease, rt: rt})
	}
}

func keysOf[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// flowClassifier decodes the rule of a Flowspec route; failures are
// logged when warn is set.
func (inst *Instance) flowClassifier(r *route.Route, warn bool) (route.Classifier, bool) {
	dec := inst.m.flow.Decode
	if dec == nil {
		if warn {
			inst.log.Warn("flowspec redirect ignored: no Flowspec codec")
		}
		return route.Classifier{}, false
	}
	c, err := dec(r.NLRI.Flow)
	if err != nil {
		if warn {
			inst.log.Warn("flowspec route ignored: its rule is not a supported traffic classifier", "rule", flowText(r.NLRI.Flow), "err", err)
		}
		return route.Classifier{}, false
	}
	return c, true
}

// clearRedirects removes every classifier and releases every redirection
// VRF (instance stop, goroutine stopped, trMu held).
func (inst *Instance) clearRedirects() {
	for c := range inst.clsUses {
		inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirRemove, cls: c})
	}
	for rt := range inst.rtUses {
		inst.pendingRedir = append(inst.pendingRedir, redirOp{kind: redirRelease, rt: rt})
	}
	inst.clsUses, inst.rtUses = nil, nil
}

func (inst *Instance) takeRedirOps() []redirOp {
	ops := inst.pendingRedir
	inst.pendingRedir = nil
	return ops
}

// runRedirOps applies redirection decisions, on the instance goroutine
// (or in stop once it ended), without any instance lock held but dpMu
// around dataplane calls.
func (inst *Instance) runRedirOps(ctx context.Context, ops []redirOp) {
	for _, op := range ops {
		switch op.kind {
		case redirAcquire:
			v, err := inst.m.acquireRedirect(ctx, inst, op.rt)
			if err != nil {
				inst.log.Error("no redirection VRF: traffic redirection not installed", "redirect_rt", op.rt.String(), "err", err)
				continue
			}
			if inst.redirVRFs == nil {
				inst.redirVRFs = map[route.RT]*Instance{}
			}
			inst.redirVRFs[op.rt] = v
		case redirRelease:
			v := inst.redirVRFs[op.rt]
			delete(inst.redirVRFs, op.rt)
			if v != nil {
				inst.m.releaseRedirect(inst, v)
			}
		case redirAdd:
			v := inst.redirVRFs[op.rt]
			if v == nil {
				continue // logged at acquisition
			}
			if inst.classifierCall(ctx, true, op.cls, v) {
				if inst.clsInstalled == nil {
					inst.clsInstalled = map[route.Classifier]struct{}{}
				}
				inst.clsInstalled[op.cls] = struct{}{}
			}
		case redirRemove:
			if _, ok := inst.clsInstalled[op.cls]; ok {
				delete(inst.clsInstalled, op.cls)
				inst.classifierCall(ctx, false, op.cls, nil)
			}
		}
	}
}

// classifierCall adds or removes a classifier in the dataplane; it reports
// whether that worked.
func (inst *Instance) classifierCall(ctx context.Context, add bool, c route.Classifier, to *Instance) bool {
	ip, ok := inst.dp.(dataplane.IPVPNInstance)
	if !ok {
		inst.log.Error("traffic classifier not installed: the dataplane has no classifiers", "classifier", c.String())
		return false
	}
	inst.dpMu.Lock()
	var err error
	if add {
		err = ip.AddClassifier(ctx, c, to.ID)
	} else {
		err = ip.RemoveClassifier(ctx, c)
	}
	inst.dpMu.Unlock()
	if err != nil {
		if add {
			inst.log.Error("dataplane: traffic classifier not installed", "classifier", c.String(), "redirect_to", to.Name, "err", err)
		} else {
			inst.log.Error("dataplane: traffic classifier removal failed", "classifier", c.String(), "err", err)
		}
	}
	return err == nil
}

// RedirectInstanceID returns the external id of the redirection VRF of a
// route target: "redirect-to-ipvpn-64512_98" for 64512:98.
func RedirectInstanceID(rt route.RT) string {
	return "redirect-to-" + string(dataplane.IPVPN) + "-" + strings.ReplaceAll(rt.String(), ":", "_")
}

var redirectGateway = netip.MustParseAddr("127.0.0.1")

// acquireRedirect returns the redirection VRF of rt for user, creating it
// when needed.
func (m *Manager) acquireRedirect(ctx context.Context, user *Instance, rt route.RT) (*Instance, error) {
	id := RedirectInstanceID(rt)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return nil, errors.New("daemon stopping")
	}
	v := m.instances[id]
	switch {
	case v == nil:
		if m.drivers[dataplane.IPVPN] == nil {
			return nil, errors.New("no IP VPN dataplane driver")
		}
		req := &AttachRequest{
			VPNType: dataplane.IPVPN, InstanceID: id, ImportRTs: []route.RT{rt},
			GatewayIP: redirectGateway, IP: netip.PrefixFrom(redirectGateway, 24),
		}
		var err error
		if v, err = m.create(ctx, req); err != nil {
			return nil, err
		}
		v.log.Info("redirection VRF created", "redirect_rt", rt.String())
	case v.Type != dataplane.IPVPN:
		return nil, fmt.Errorf("instance %s is not an IP VPN", id)
	case v == user:
		return nil, fmt.Errorf("%s would redirect traffic to itself", user.Name)
	}
	if v.redirectUsers == nil {
		v.redirectUsers = map[*Instance]struct{}{}
	}
	v.redirectUsers[user] = struct{}{}
	return v, nil
}

// releaseRedirect records that user no longer redirects to v, and removes
// v when nothing uses it (no redirecting VRF, no endpoint). The removal
// runs in the background: the caller may be another instance's goroutine.
func (m *Manager) releaseRedirect(user, v *Instance) {
	m.mu.Lock()
	delete(v.redirectUsers, user)
	remove := len(v.redirectUsers) == 0 && v.pending == 0 && !v.stopped && v.empty()
	if remove {
		v.stopped = true
		if m.instances[v.ExternalID] == v {
			delete(m.instances, v.ExternalID)
		}
		if v.forcedVNI && m.byVNI[v.label] == v {
			delete(m.byVNI, v.label)
		}
		m.bg.Add(1)
	}
	m.mu.Unlock()
	if remove {
		go func() {
			defer m.bg.Done()
			v.log.Info("redirection VRF removed (no VRF redirects to it)")
			v.stop(context.Background())
		}()
	}
}

// WaitBackground waits for the removals of redirection VRFs in progress.
func (m *Manager) WaitBackground() { m.bg.Wait() }

// flowText formats a Flowspec rule for logs.
func flowText(flow string) string { return lookingglass.FlowText(flow) }
