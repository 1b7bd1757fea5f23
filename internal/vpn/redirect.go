package vpn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

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
// last of them. The best path callbacks (trMu held) update what is wanted
// (clsUses, rtUses) and mark what changed; the instance goroutine then
// brings the dataplane and the redirection VRFs in use to it, without any
// instance lock (reconcileRedirects): it gets the redirection VRFs wanted,
// points each changed classifier at the VRF of its redirect RT, then
// releases the VRFs no longer wanted. What fails (a redirection VRF that
// could not be created, a classifier the dataplane refused) stays pending:
// retried with the next event of that classifier or route target, and by a
// timer with a bounded exponential backoff. A classifier whose new
// redirection failed is removed rather than left pointing at a VRF about
// to be released.

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

// redirWant is what is wanted, at the time it was read, of a route target
// (a redirection VRF) or of a classifier (redirected to the VRF of rt).
type redirWant struct {
	cls  route.Classifier
	rt   route.RT
	want bool
}

// redirWork is a run of reconcileRedirects: the route targets and
// classifiers to bring to what is wanted.
type redirWork struct {
	rts []redirWant
	cls []redirWant
}

// Bounds of the delay between retries of failed redirections.
const (
	redirRetryMin = time.Second
	redirRetryMax = time.Minute
)

// markRedir records that a classifier and a route target may have changed
// (trMu held).
func (inst *Instance) markRedir(c route.Classifier, rt route.RT) {
	if inst.dirtyCls == nil {
		inst.dirtyCls, inst.dirtyRTs = map[route.Classifier]struct{}{}, map[route.RT]struct{}{}
	}
	inst.dirtyCls[c] = struct{}{}
	inst.dirtyRTs[rt] = struct{}{}
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
	}
	if isNew {
		u.active = rt
	}
	inst.markRedir(c, rt)
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
	if u.rts[rt] == 0 {
		delete(u.rts, rt)
		inst.rtUses[rt]--
		if inst.rtUses[rt] == 0 {
			delete(inst.rtUses, rt)
		}
	}
	switch {
	case len(u.rts) == 0:
		delete(inst.clsUses, c)
	case u.rts[rt] == 0 && u.active == rt:
		// Another route redirects the same traffic elsewhere: it takes over.
		u.active = slices.MinFunc(keysOf(u.rts), cmp.Compare[route.RT])
	}
	inst.markRedir(c, rt)
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

// clearRedirects forgets what the Flowspec routes wanted (instance stop,
// goroutine stopped, trMu held); teardownRedirects then undoes it.
func (inst *Instance) clearRedirects() {
	inst.clsUses, inst.rtUses = nil, nil
	inst.dirtyCls, inst.dirtyRTs = nil, nil
}

// teardownRedirects removes every classifier installed and releases every
// redirection VRF (instance stop, after the goroutine ended).
func (inst *Instance) teardownRedirects(ctx context.Context) {
	for c := range inst.clsInstalled {
		inst.classifierCall(ctx, false, c, nil)
	}
	for _, v := range inst.redirVRFs {
		inst.m.releaseRedirect(inst, v)
	}
	inst.clsInstalled, inst.redirVRFs = nil, nil
	inst.retryCls, inst.retryRTs = nil, nil
}

// takeRedirWork returns what changed since the last call and, with retry,
// what failed before (trMu held).
func (inst *Instance) takeRedirWork(retry bool) *redirWork {
	if len(inst.dirtyRTs)+len(inst.dirtyCls) == 0 && (!retry || len(inst.retryRTs)+len(inst.retryCls) == 0) {
		return nil
	}
	w := &redirWork{}
	addRT := func(rt route.RT) { w.rts = append(w.rts, redirWant{rt: rt, want: inst.rtUses[rt] > 0}) }
	addCls := func(c route.Classifier) {
		x := redirWant{cls: c}
		if u := inst.clsUses[c]; u != nil {
			x.rt, x.want = u.active, true
		}
		w.cls = append(w.cls, x)
	}
	for rt := range inst.dirtyRTs {
		addRT(rt)
	}
	for c := range inst.dirtyCls {
		addCls(c)
	}
	if retry {
		for rt := range inst.retryRTs {
			if _, ok := inst.dirtyRTs[rt]; !ok {
				addRT(rt)
			}
		}
		for c := range inst.retryCls {
			if _, ok := inst.dirtyCls[c]; !ok {
				addCls(c)
			}
		}
	}
	clear(inst.dirtyRTs)
	clear(inst.dirtyCls)
	return w
}

// reconcileRedirects brings the redirection VRFs in use and the dataplane
// classifiers to what w wants, on the instance goroutine, without any
// instance lock held but dpMu around dataplane calls. What fails is kept
// for a retry.
func (inst *Instance) reconcileRedirects(ctx context.Context, w *redirWork) {
	if w == nil {
		return
	}
	// The redirection VRFs wanted first: classifiers move to them.
	for _, x := range w.rts {
		if !x.want || inst.redirVRFs[x.rt] != nil {
			continue
		}
		v, retry, err := inst.m.acquireRedirect(ctx, inst, x.rt)
		if err != nil {
			inst.log.Error("no redirection VRF: traffic redirection not installed", "redirect_rt", x.rt.String(), "err", err, "retry", retry)
			setIf(&inst.retryRTs, x.rt, retry)
			continue
		}
		if inst.redirVRFs == nil {
			inst.redirVRFs = map[route.RT]*Instance{}
		}
		inst.redirVRFs[x.rt] = v
		setIf(&inst.retryRTs, x.rt, false)
	}
	for _, x := range w.cls {
		cur := inst.clsInstalled[x.cls]
		var to *Instance
		if x.want {
			to = inst.redirVRFs[x.rt]
		}
		switch {
		case to != nil && cur == to:
			setIf(&inst.retryCls, x.cls, false)
		case to != nil:
			ok, retry := inst.classifierCall(ctx, true, x.cls, to)
			if ok {
				if inst.clsInstalled == nil {
					inst.clsInstalled = map[route.Classifier]*Instance{}
				}
				inst.clsInstalled[x.cls] = to
				setIf(&inst.retryCls, x.cls, false)
				continue
			}
			if cur != nil {
				// Not left redirecting to a VRF that may go.
				delete(inst.clsInstalled, x.cls)
				inst.classifierCall(ctx, false, x.cls, nil)
			}
			setIf(&inst.retryCls, x.cls, retry)
		default:
			if cur != nil {
				delete(inst.clsInstalled, x.cls)
				inst.classifierCall(ctx, false, x.cls, nil)
			}
			// Wanted but without its redirection VRF: installed when the
			// VRF comes.
			_, rtRetry := inst.retryRTs[x.rt]
			setIf(&inst.retryCls, x.cls, x.want && rtRetry)
		}
	}
	// Then the redirection VRFs no longer wanted.
	for _, x := range w.rts {
		if x.want {
			continue
		}
		setIf(&inst.retryRTs, x.rt, false)
		if v := inst.redirVRFs[x.rt]; v != nil {
			delete(inst.redirVRFs, x.rt)
			inst.m.releaseRedirect(inst, v)
		}
	}
}

// setIf adds k to *set when on, else removes it.
func setIf[K comparable](set *map[K]struct{}, k K, on bool) {
	if on {
		if *set == nil {
			*set = map[K]struct{}{}
		}
		(*set)[k] = struct{}{}
		return
	}
	delete(*set, k)
}

// scheduleRetry sets the time of the next retry of failed redirections:
// none when nothing failed; after a retry round that left failures, twice
// the previous delay (bounded).
func (inst *Instance) scheduleRetry(afterRetry bool) {
	if len(inst.retryRTs)+len(inst.retryCls) == 0 {
		inst.retryAt, inst.retryDelay = time.Time{}, 0
		return
	}
	switch {
	case inst.retryDelay == 0:
		inst.retryDelay = inst.m.redirRetryMin
	case afterRetry:
		inst.retryDelay = min(2*inst.retryDelay, inst.m.redirRetryMax)
	case !inst.retryAt.IsZero():
		return // keep the time set
	}
	inst.retryAt = time.Now().Add(inst.retryDelay)
}

// retryDue reports whether failed redirections are to be retried now.
func (inst *Instance) retryDue() bool {
	return !inst.retryAt.IsZero() && !time.Now().Before(inst.retryAt)
}

// retryRedirects retries the failed redirections (instance goroutine).
func (inst *Instance) retryRedirects(ctx context.Context) {
	inst.trMu.Lock()
	w := inst.takeRedirWork(true)
	inst.trMu.Unlock()
	inst.reconcileRedirects(ctx, w)
	inst.scheduleRetry(true)
}

// classifierCall adds or removes a classifier in the dataplane; it reports
// whether that worked and, if not, whether trying again may work.
func (inst *Instance) classifierCall(ctx context.Context, add bool, c route.Classifier, to *Instance) (ok, retry bool) {
	ip, isIP := inst.dp.(dataplane.IPVPNInstance)
	if !isIP {
		inst.log.Error("traffic classifier not installed: the dataplane has no classifiers", "classifier", c.String())
		return false, false
	}
	inst.dpMu.Lock()
	var err error
	if add {
		err = ip.AddClassifier(ctx, c, to.ID)
	} else {
		err = ip.RemoveClassifier(ctx, c)
	}
	inst.dpMu.Unlock()
	if err == nil {
		return true, false
	}
	if add {
		inst.log.Error("dataplane: traffic classifier not installed", "classifier", c.String(), "redirect_to", to.Name, "err", err)
	} else {
		inst.log.Error("dataplane: traffic classifier removal failed", "classifier", c.String(), "err", err)
	}
	return false, !errors.Is(err, dataplane.ErrNotSupported)
}

// RedirectInstanceID returns the external id of the redirection VRF of a
// route target: "redirect-to-ipvpn-64512_98" for 64512:98.
func RedirectInstanceID(rt route.RT) string {
	return "redirect-to-" + string(dataplane.IPVPN) + "-" + strings.ReplaceAll(rt.String(), ":", "_")
}

var redirectGateway = netip.MustParseAddr("127.0.0.1")

// acquireRedirect returns the redirection VRF of rt for user, creating it
// when needed. On failure, retry tells whether a later call may succeed.
func (m *Manager) acquireRedirect(ctx context.Context, user *Instance, rt route.RT) (v *Instance, retry bool, err error) {
	id := RedirectInstanceID(rt)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping || user.stopped {
		return nil, false, errors.New("stopping")
	}
	v = m.instances[id]
	switch {
	case v == nil:
		if m.drivers[dataplane.IPVPN] == nil {
			return nil, false, errors.New("no IP VPN dataplane driver")
		}
		req := &AttachRequest{
			VPNType: dataplane.IPVPN, InstanceID: id, ImportRTs: []route.RT{rt},
			GatewayIP: redirectGateway, IP: netip.PrefixFrom(redirectGateway, 24),
		}
		if v, err = m.create(ctx, req); err != nil {
			return nil, true, err
		}
		v.log.Info("redirection VRF created", "redirect_rt", rt.String())
	case v.Type != dataplane.IPVPN:
		// Until that instance goes.
		return nil, true, fmt.Errorf("instance %s is not an IP VPN", id)
	case v == user:
		return nil, false, fmt.Errorf("%s would redirect traffic to itself", user.Name)
	}
	if v.redirectUsers == nil {
		v.redirectUsers = map[*Instance]struct{}{}
	}
	v.redirectUsers[user] = struct{}{}
	return v, false, nil
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
		m.bg.add()
	}
	m.mu.Unlock()
	if remove {
		go func() {
			defer m.bg.done()
			v.log.Info("redirection VRF removed (no VRF redirects to it)")
			v.stop(context.Background())
		}()
	}
}

// WaitBackground waits for the removals of redirection VRFs in progress.
func (m *Manager) WaitBackground() { m.bg.wait(context.Background()) }

// bgTasks counts tasks running in the background. Unlike a
// sync.WaitGroup, tasks may start while someone waits (an instance
// goroutine releasing a redirection VRF while the looking glass or a test
// waits for the removals in progress), and waiting takes a context.
type bgTasks struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (b *bgTasks) add() {
	b.mu.Lock()
	if b.n == 0 {
		b.idle = make(chan struct{})
	}
	b.n++
	b.mu.Unlock()
}

func (b *bgTasks) done() {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		close(b.idle)
	}
	b.mu.Unlock()
}

// wait waits until no task runs, or ctx is done.
func (b *bgTasks) wait(ctx context.Context) {
	b.mu.Lock()
	if b.n == 0 {
		b.mu.Unlock()
		return
	}
	idle := b.idle
	b.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// flowText formats a Flowspec rule for logs.
func flowText(flow string) string { return lookingglass.FlowText(flow) }
