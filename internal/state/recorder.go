package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

// VPN is what the recorder needs of the VPN manager (*vpn.Manager).
type VPN interface {
	Attach(ctx context.Context, r *vpn.AttachRequest) error
	Detach(ctx context.Context, r *vpn.DetachRequest) error
	Hold(ctx context.Context, r *vpn.AttachRequest) (release func(), err error)
	Identifiers(externalID string, mac route.MAC, ip netip.Prefix) (h vpn.Hints, instance, endpoint bool)
}

// Record kinds.
const (
	KindInstance = "instance" // the attachment that created an instance, and the instance's identifiers
	KindEndpoint = "endpoint" // a plugged endpoint: its latest attachment and identifiers
)

// Attachment is the value of a record: an attach request as the API
// validated it, with the identifiers it was given.
type Attachment struct {
	Kind    string             `json:"kind"`
	Request *vpn.AttachRequest `json:"request"`
	// LocalPortRaw is local_port as the client sent it (compared whole
	// when the MAC is plugged again, shown by the looking glass).
	LocalPortRaw map[string]any `json:"local_port_raw,omitempty"`
	IDs          vpn.Hints      `json:"ids"`
}

// EncodeAttachment returns the JSON of a record.
func EncodeAttachment(a *Attachment) (json.RawMessage, error) {
	out := *a
	if a.Request != nil && a.Request.LocalPort != nil {
		out.LocalPortRaw = a.Request.LocalPort.Raw
	}
	return json.Marshal(&out)
}

// DecodeAttachment parses a record. Numbers inside free-form values
// (description, classifier, raw local_port) are json.Number, as the API
// gives them.
func DecodeAttachment(v []byte) (*Attachment, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var a Attachment
	if err := dec.Decode(&a); err != nil {
		return nil, err
	}
	switch {
	case a.Kind != KindInstance && a.Kind != KindEndpoint:
		return nil, fmt.Errorf("unknown record kind %q", a.Kind)
	case a.Request == nil || a.Request.InstanceID == "" || a.Request.LocalPort == nil:
		return nil, fmt.Errorf("incomplete attach request")
	}
	a.Request.LocalPort.Raw = a.LocalPortRaw
	return &a, nil
}

// InstanceKey and EndpointKey are the keys of the records.
func InstanceKey(instanceID string) string { return "instance " + strconv.Quote(instanceID) }

// EndpointKey is the key of the record of endpoint (mac, ip) of an instance.
func EndpointKey(instanceID string, mac route.MAC, ip netip.Prefix) string {
	s := "endpoint " + strconv.Quote(instanceID) + " " + mac.String()
	if ip.IsValid() {
		s += " " + ip.String()
	}
	return s
}

// Recorder applies attachments through the VPN manager and records each
// one that succeeds, with its identifiers: it is the API's VPN service
// when a state directory is configured. Restore replays the records after
// a restart.
//
// The changes of one instance are applied and recorded under a lock of
// that instance (the journal order is the order they were applied), and
// made durable after it is released: concurrent requests share one
// journal write and one sync.
type Recorder struct {
	store *Store
	vpn   VPN
	log   *slog.Logger
	locks keyedMutex

	mu     sync.Mutex
	byMAC  map[macKey]map[string]netip.Prefix // endpoint record keys of a MAC of an instance
	byInst map[string]map[string]bool         // endpoint record keys of an instance
	last   map[string]string                  // key of the instance's latest endpoint record
	inst   map[string]vpn.Hints               // identifiers in the instance records
}

type macKey struct {
	instance string
	mac      route.MAC
}

// NewRecorder returns a recorder of the attachments applied to v, kept in
// store.
func NewRecorder(store *Store, v VPN, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	r := &Recorder{store: store, vpn: v, log: log, locks: keyedMutex{m: map[string]*keyedEntry{}}}
	r.reindex()
	return r
}

// reindex rebuilds the endpoint indexes from the store.
func (r *Recorder) reindex() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byMAC, r.byInst, r.last = map[macKey]map[string]netip.Prefix{}, map[string]map[string]bool{}, map[string]string{}
	r.inst = map[string]vpn.Hints{}
	for _, rec := range r.store.Records() {
		a, err := DecodeAttachment(rec.Value)
		switch {
		case err != nil:
		case a.Kind == KindInstance:
			r.inst[a.Request.InstanceID] = a.IDs
		case a.Kind == KindEndpoint:
			r.indexLocked(rec.Key, a.Request)
			r.last[a.Request.InstanceID] = rec.Key
		}
	}
}

func (r *Recorder) indexLocked(key string, req *vpn.AttachRequest) {
	mk := macKey{req.InstanceID, req.MAC}
	if r.byMAC[mk] == nil {
		r.byMAC[mk] = map[string]netip.Prefix{}
	}
	r.byMAC[mk][key] = req.IP
	if r.byInst[req.InstanceID] == nil {
		r.byInst[req.InstanceID] = map[string]bool{}
	}
	r.byInst[req.InstanceID][key] = true
}

func (r *Recorder) unindexLocked(key, instance string, mac route.MAC) {
	mk := macKey{instance, mac}
	delete(r.byMAC[mk], key)
	if len(r.byMAC[mk]) == 0 {
		delete(r.byMAC, mk)
	}
	delete(r.byInst[instance], key)
	if len(r.byInst[instance]) == 0 {
		delete(r.byInst, instance)
	}
	if r.last[instance] == key {
		delete(r.last, instance)
	}
}

// Attach implements the API's VPN service: the manager's Attach, then the
// record of what it did. The attachment is acknowledged (nil) only once
// its record is durable; if the state directory cannot be written, the
// attachment is in effect but Attach returns an error (the API answers
// 500): the client retries, and the retry succeeds once the state is
// written again.
func (r *Recorder) Attach(ctx context.Context, req *vpn.AttachRequest) error {
	unlock := r.locks.lock(req.InstanceID)
	if err := r.vpn.Attach(ctx, req); err != nil {
		unlock()
		return err
	}
	seq, err := r.apply(r.attachOps(req))
	unlock()
	if err != nil {
		return fmt.Errorf("attachment in effect but not recorded in the state directory (a restart would not restore it): %w", err)
	}
	if err := r.sync(seq); err != nil {
		return fmt.Errorf("attachment in effect but not written to the state directory (a restart would not restore it): %w", err)
	}
	return nil
}

// Detach implements the API's VPN service; as Attach, it fails if what
// it changed cannot be made durable.
func (r *Recorder) Detach(ctx context.Context, req *vpn.DetachRequest) error {
	unlock := r.locks.lock(req.InstanceID)
	err := r.vpn.Detach(ctx, req)
	// Even after an error: a wildcard detach may have unplugged some
	// endpoints before failing.
	seq, aerr := r.apply(r.detachOps(req.InstanceID, req.MAC))
	unlock()
	if aerr == nil {
		aerr = r.sync(seq)
	}
	switch {
	case err != nil:
		return err // the manager's error (and its status) first
	case aerr != nil:
		return fmt.Errorf("detach in effect but not written to the state directory (a restart would restore the attachment): %w", aerr)
	}
	return nil
}

// apply applies the changes of the records. Nothing to change (an
// attachment replayed) returns the last batch: what the request did is
// durable once every batch so far is.
func (r *Recorder) apply(ops []Op) (uint64, error) {
	if len(ops) == 0 {
		return r.store.LastSeq(), nil
	}
	seq, err := r.store.Apply(ops...)
	if err != nil {
		r.log.Error("attachment not recorded in the state directory", "err", err)
	}
	return seq, err
}

func (r *Recorder) sync(seq uint64) error {
	if seq == 0 {
		return nil
	}
	err := r.store.Sync(seq)
	if err != nil {
		r.log.Error("attachment not written to the state directory", "err", err)
	}
	return err
}

// attachOps returns the changes of the records after a successful attach
// (instance lock held).
func (r *Recorder) attachOps(req *vpn.AttachRequest) []Op {
	ids, haveInst, haveEP := r.vpn.Identifiers(req.InstanceID, req.MAC, req.IP)
	if !haveInst {
		return nil
	}
	var ops []Op
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.inst[req.InstanceID]; !ok || !sameIDs(cur, instanceIDs(ids)) {
		// A new instance (or one re-created since): this request made it.
		v, err := EncodeAttachment(&Attachment{Kind: KindInstance, Request: req, IDs: instanceIDs(ids)})
		if err != nil {
			r.log.Error("attachment not recorded in the state directory", "err", err)
			return nil
		}
		ops = append(ops, Op{Key: InstanceKey(req.InstanceID), Value: v})
		r.inst[req.InstanceID] = instanceIDs(ids)
	}
	if haveEP {
		key := EndpointKey(req.InstanceID, req.MAC, req.IP)
		v, err := EncodeAttachment(&Attachment{Kind: KindEndpoint, Request: req, IDs: ids})
		if err != nil {
			r.log.Error("attachment not recorded in the state directory", "err", err)
			return ops
		}
		// The same attachment again (a client replaying its attachments)
		// changes nothing. The order of the records matters only through
		// what the latest attachment of an instance sets for the whole
		// instance (route targets, ...): an identical record is written
		// again (moved last) only when that differs from the latest one.
		if cur, ok := r.store.Get(key); !ok || !bytes.Equal(cur, v) || !r.sameInstancePartLocked(req.InstanceID, key, v) {
			ops = append(ops, Op{Key: key, Value: v})
			r.indexLocked(key, req)
			r.last[req.InstanceID] = key
		}
	}
	// An attachment with an IP replaces the IP-less endpoint of the MAC.
	return append(ops, r.goneLocked(req.InstanceID, req.MAC)...)
}

// perEndpoint are the attach request fields that concern the endpoint
// only; any other field (those added later included) is taken as setting
// something of the whole instance.
var perEndpoint = []string{"MACString", "MAC", "IPString", "IP", "LocalPort", "AdvertiseSubnet", "Direction",
	"LocalPref", "LBHashOrder", "Description"}

// instancePart returns the JSON of what a record's request sets for the
// whole instance.
func instancePart(v []byte) ([]byte, bool) {
	var a struct {
		Request map[string]json.RawMessage `json:"request"`
	}
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, false
	}
	for _, k := range perEndpoint {
		delete(a.Request, k)
	}
	b, err := json.Marshal(a.Request) // keys sorted
	return b, err == nil
}

// sameInstancePartLocked reports whether record v of key sets for its
// instance what the instance's latest record sets (r.mu held).
func (r *Recorder) sameInstancePartLocked(instance, key string, v []byte) bool {
	last := r.last[instance]
	if last == key {
		return true
	}
	lv, ok := r.store.Get(last)
	if !ok {
		return false
	}
	a, ok1 := instancePart(v)
	b, ok2 := instancePart(lv)
	return ok1 && ok2 && bytes.Equal(a, b)
}

// detachOps returns the changes of the records after a detach (instance
// lock held).
func (r *Recorder) detachOps(instance string, mac route.MAC) []Op {
	_, haveInst, _ := r.vpn.Identifiers(instance, mac, netip.Prefix{})
	r.mu.Lock()
	defer r.mu.Unlock()
	if haveInst {
		return r.goneLocked(instance, mac)
	}
	// The instance went with its last endpoint.
	var ops []Op
	if _, ok := r.inst[instance]; ok {
		ops = append(ops, Op{Key: InstanceKey(instance), Delete: true})
		delete(r.inst, instance)
	}
	keys := make([]string, 0, len(r.byInst[instance]))
	for key := range r.byInst[instance] {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		ops = append(ops, Op{Key: key, Delete: true})
		if v, ok := r.store.Get(key); ok {
			if a, err := DecodeAttachment(v); err == nil {
				r.unindexLocked(key, instance, a.Request.MAC)
				continue
			}
		}
		delete(r.byInst[instance], key)
	}
	delete(r.byInst, instance)
	delete(r.last, instance)
	return ops
}

// goneLocked returns the deletions of the records of a MAC's endpoints
// that are no longer plugged (r.mu held).
func (r *Recorder) goneLocked(instance string, mac route.MAC) []Op {
	var ops []Op
	for key, ip := range r.byMAC[macKey{instance, mac}] {
		if _, _, plugged := r.vpn.Identifiers(instance, mac, ip); !plugged {
			ops = append(ops, Op{Key: key, Delete: true})
			r.unindexLocked(key, instance, mac)
		}
	}
	slices.SortFunc(ops, func(a, b Op) int { return strings.Compare(a.Key, b.Key) })
	return ops
}

// instanceIDs keeps the identifiers of the instance.
func instanceIDs(h vpn.Hints) vpn.Hints {
	return vpn.Hints{InstanceID: h.InstanceID, InstanceLabel: h.InstanceLabel, InstanceRD: h.InstanceRD}
}

// sameInstance reports whether an instance record has these identifiers.
func sameInstance(v json.RawMessage, ids vpn.Hints) bool {
	a, err := DecodeAttachment(v)
	if err != nil {
		return false
	}
	return a.IDs.InstanceID == ids.InstanceID && a.IDs.InstanceLabel == ids.InstanceLabel && eqPtr(a.IDs.InstanceRD, ids.InstanceRD)
}

func eqPtr(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// RestoreResult sums up a restore.
type RestoreResult struct {
	Instances int           // instances restored
	Endpoints int           // endpoints restored
	Failed    int           // records that could not be replayed (dropped)
	Changed   int           // records replayed with other identifiers than recorded
	Took      time.Duration // duration of the replay
}

// Instances returns the external ids of the recorded instances, by VPN
// type (what the dataplane drivers are to adopt).
func (r *Recorder) Instances() map[dataplane.VPNType][]string {
	out := map[dataplane.VPNType][]string{}
	for _, rec := range r.store.Records() {
		if a, err := DecodeAttachment(rec.Value); err == nil && a.Kind == KindInstance {
			out[a.Request.VPNType] = append(out[a.Request.VPNType], a.Request.InstanceID)
		}
	}
	return out
}

// Restore replays the records in the order they were written, through the
// manager (as the API would), asking for the recorded identifiers: each
// instance is created first by the attachment that created it, then its
// endpoints are plugged. Records that cannot be replayed (unreadable, or
// refused: a port gone while the daemon was down) are logged and dropped:
// the manager's state and the records stay the same. Call it before the
// API serves and before BGP sessions come up.
func (r *Recorder) Restore(ctx context.Context) RestoreResult {
	start := time.Now()
	var res RestoreResult
	var ops []Op
	var holds []func()
	recs := r.store.Records()
	instances := map[string]bool{}
	for _, rec := range recs {
		a, err := DecodeAttachment(rec.Value)
		if err != nil {
			r.log.Error("unreadable state record dropped", "key", rec.Key, "err", err)
			ops = append(ops, Op{Key: rec.Key, Delete: true})
			res.Failed++
			continue
		}
		req := a.Request
		ids := a.IDs
		req.Hints = &ids
		switch a.Kind {
		case KindInstance:
			release, err := r.vpn.Hold(ctx, req)
			if err != nil {
				r.log.Error("VPN instance not restored", "vpn_instance_id", req.InstanceID, "err", err)
				ops = append(ops, Op{Key: rec.Key, Delete: true})
				res.Failed++
				continue
			}
			holds = append(holds, release)
			instances[req.InstanceID] = true
		case KindEndpoint:
			if err := r.vpn.Attach(ctx, req); err != nil {
				r.log.Error("attachment not restored", "vpn_instance_id", req.InstanceID, "mac_address", req.MACString,
					"ip_address", req.IPString, "err", err)
				ops = append(ops, Op{Key: rec.Key, Delete: true})
				res.Failed++
				continue
			}
			res.Endpoints++
			instances[req.InstanceID] = true
			got, _, ok := r.vpn.Identifiers(req.InstanceID, req.MAC, req.IP)
			if ok && !sameIDs(got, ids) {
				r.log.Warn("attachment restored with other identifiers than recorded", "vpn_instance_id", req.InstanceID,
					"mac_address", req.MACString, "ip_address", req.IPString, "recorded", fmt.Sprintf("%+v", ids), "now", fmt.Sprintf("%+v", got))
				req.Hints = nil
				if v, err := EncodeAttachment(&Attachment{Kind: KindEndpoint, Request: req, IDs: got}); err == nil {
					ops = append(ops, Op{Key: rec.Key, Value: v})
				}
				res.Changed++
			}
			req.Hints = nil
		}
	}
	for _, release := range holds {
		release()
	}
	// Instance records of instances that did not come back (no endpoint
	// restored), and instances re-created with other identifiers.
	for id := range instances {
		key := InstanceKey(id)
		cur, ok := r.store.Get(key)
		h, alive, _ := r.vpn.Identifiers(id, route.MAC{}, netip.Prefix{})
		switch {
		case !alive && ok:
			ops = append(ops, Op{Key: key, Delete: true})
		case alive:
			res.Instances++
			if ok && !sameInstance(cur, h) {
				a, err := DecodeAttachment(cur)
				if err == nil {
					a.IDs = instanceIDs(h)
					if v, err := EncodeAttachment(a); err == nil {
						ops = append(ops, Op{Key: key, Value: v})
						res.Changed++
					}
				}
			}
		}
	}
	slices.SortStableFunc(ops, func(a, b Op) int {
		// deletions first: a record rewritten must not be deleted after
		if a.Delete != b.Delete {
			if a.Delete {
				return -1
			}
			return 1
		}
		return 0
	})
	if len(ops) > 0 {
		if err := r.store.Commit(ops...); err != nil {
			r.log.Error("state after the restore not written", "err", err)
		}
	}
	r.reindex()
	res.Took = time.Since(start)
	return res
}

func sameIDs(a, b vpn.Hints) bool {
	return a.InstanceID == b.InstanceID && a.InstanceLabel == b.InstanceLabel && eqPtr(a.InstanceRD, b.InstanceRD) &&
		a.PortLabel == b.PortLabel && eqPtr(a.EndpointRD, b.EndpointRD)
}

// keyedMutex is a mutex per key (the instance id), created on demand.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu    sync.Mutex
	users int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.users++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.users--; e.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
