package state

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

var local = netip.MustParseAddr("192.0.2.1")

// node is a VPN manager (dummy dataplanes) whose attachments are recorded
// in a state directory.
type node struct {
	t     *testing.T
	eng   *engine.Engine
	m     *vpn.Manager
	store *Store
	rec   *Recorder
	stop  func()
}

func newNode(t *testing.T, dir string) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	eng := engine.New(quiet(), nil)
	go eng.Run(ctx)
	m := vpn.NewManager(vpn.Config{Engine: eng, Log: quiet(), BGPAddress: local, Drivers: []dataplane.Driver{
		dummy.New(dataplane.IPVPN, local, quiet()), dummy.New(dataplane.EVPN, local, quiet())}})
	s := open(t, dir, 0)
	n := &node{t: t, eng: eng, m: m, store: s, rec: NewRecorder(s, m, quiet())}
	n.stop = func() {
		m.Shutdown(context.Background())
		s.Close()
		cancel()
	}
	t.Cleanup(func() { n.stop() })
	return n
}

func mustMAC(s string) route.MAC {
	m, err := route.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func attachReq(t dataplane.VPNType, inst, mac, ip, port string, rt ...string) *vpn.AttachRequest {
	var rts []route.RT
	for _, r := range rt {
		rts = append(rts, route.MustParseRT(r))
	}
	r := &vpn.AttachRequest{
		VPNType: t, InstanceID: inst, MACString: mac, MAC: mustMAC(mac), IPString: ip,
		LocalPort: &dataplane.LocalPort{LinuxIf: port, Raw: map[string]any{"linuxif": port}},
		ImportRTs: rts, ExportRTs: rts, Direction: dataplane.Both,
		Description: map[string]any{"n": json.Number("12"), "s": "x"},
	}
	if ip != "" {
		r.IP = netip.MustParsePrefix(ip)
	}
	if t == dataplane.IPVPN {
		r.GatewayIP = netip.MustParseAddr("10.0.0.254")
	}
	return r
}

func detachReq(a *vpn.AttachRequest) *vpn.DetachRequest {
	return &vpn.DetachRequest{VPNType: a.VPNType, InstanceID: a.InstanceID, MACString: a.MACString, MAC: a.MAC,
		IPString: a.IPString, IP: a.IP, LocalPort: a.LocalPort}
}

// summary describes the manager's state: instances with their identifiers
// and route targets, endpoints with theirs, and the routes advertised.
func (n *node) summary(withDataplane bool) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.eng.Sync(ctx); err != nil {
		n.t.Fatal(err)
	}
	var out []string
	for _, inst := range n.m.Instances() {
		h, _, _ := n.m.Identifiers(inst.ExternalID, route.MAC{}, netip.Prefix{})
		out = append(out, fmt.Sprintf("%s %s id=%d label=%d rd=%d", inst.Name, inst.ExternalID, h.InstanceID, h.InstanceLabel, *h.InstanceRD))
		for _, e := range inst.LookingGlass() {
			switch {
			case e.Value == nil || e.Name == "internals":
			case e.Name == "dataplane" && !withDataplane:
				// The dummy dataplane keeps the plug of an IP-less E-VPN
				// endpoint replaced by an IP one, which a restore does
				// not replay.
			case e.Name == "ports":
				for port, p := range e.Value().(map[string]any) {
					for _, ep := range p.(map[string]any)["endpoints"].([]any) {
						out = append(out, fmt.Sprintf("%s port %s: %v", inst.Name, port, ep))
					}
				}
			default:
				out = append(out, fmt.Sprintf("%s %s: %v", inst.Name, e.Name, e.Value()))
			}
		}
	}
	err := n.eng.Inspect(ctx, func(v engine.View) {
		v.EachRoute(func(r *route.Route) {
			out = append(out, fmt.Sprintf("route %s %+v label=%d nh=%s rts=%v", r.Source.Name, r.NLRI, r.Label, r.NextHop, r.RTs()))
		})
	})
	if err != nil {
		n.t.Fatal(err)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func (n *node) attach(r *vpn.AttachRequest) {
	n.t.Helper()
	if err := n.rec.Attach(context.Background(), r); err != nil {
		n.t.Fatalf("attach %s %s %s: %v", r.InstanceID, r.MACString, r.IPString, err)
	}
}

func (n *node) detach(r *vpn.DetachRequest) {
	n.t.Helper()
	if err := n.rec.Detach(context.Background(), r); err != nil {
		n.t.Fatalf("detach %s %s %s: %v", r.InstanceID, r.MACString, r.IPString, err)
	}
}

func TestRecordAndRestore(t *testing.T) {
	dir := t.TempDir()
	n := newNode(t, dir)
	a1 := attachReq(dataplane.IPVPN, "vrf1", "00:00:00:00:00:01", "10.0.0.1/32", "tap1", "64512:1")
	a2 := attachReq(dataplane.IPVPN, "vrf1", "00:00:00:00:00:02", "10.0.0.2/32", "tap2", "64512:1")
	a3 := attachReq(dataplane.IPVPN, "vrf1", "00:00:00:00:00:02", "10.0.1.0/24", "tap2", "64512:1") // second IP of a MAC
	a3.AdvertiseSubnet = true
	e1 := attachReq(dataplane.EVPN, "evi1", "00:00:00:00:00:11", "", "tap11", "64512:2") // IP-less
	e1ip := attachReq(dataplane.EVPN, "evi1", "00:00:00:00:00:11", "10.1.0.1/32", "tap11", "64512:2")
	e2 := attachReq(dataplane.EVPN, "evi1", "00:00:00:00:00:12", "10.1.0.2/32", "tap12", "64512:2")
	gone := attachReq(dataplane.EVPN, "evi2", "00:00:00:00:00:21", "10.2.0.1/32", "tap21", "64512:3")
	// A burned label and RD: the restored ones must not be the lowest free.
	for _, r := range []*vpn.AttachRequest{gone, a1, a2, a3, e1} {
		n.attach(r)
	}
	n.detach(detachReq(gone))
	// The IP attach replaces the IP-less endpoint; e2 changes the RTs of
	// evi1 (the latest attach sets them).
	n.attach(e1ip)
	e2.ImportRTs = append(e2.ImportRTs, route.MustParseRT("64512:9"))
	n.attach(e2)
	wantKeys := []string{
		InstanceKey("vrf1"), EndpointKey("vrf1", a1.MAC, a1.IP), EndpointKey("vrf1", a2.MAC, a2.IP), EndpointKey("vrf1", a3.MAC, a3.IP),
		InstanceKey("evi1"), EndpointKey("evi1", e1ip.MAC, e1ip.IP), EndpointKey("evi1", e2.MAC, e2.IP),
	}
	if got := keys(n.store); !slices.Equal(got, wantKeys) {
		t.Fatalf("records %q\nwant %q", got, wantKeys)
	}
	before := n.summary(false)
	recordsBefore := contents(n.store)
	n.stop()

	// A new run on the same directory: same instances, identifiers,
	// route targets and routes.
	n = newNode(t, dir)
	res := n.rec.Restore(context.Background())
	if res.Instances != 2 || res.Endpoints != 5 || res.Failed != 0 || res.Changed != 0 {
		t.Errorf("restore %+v", res)
	}
	if after := n.summary(false); after != before {
		t.Fatalf("after the restore:\n%s\nbefore:\n%s", after, before)
	}
	restored := n.summary(true)
	if got := contents(n.store); !slices.Equal(got, recordsBefore) {
		t.Fatalf("records changed by the restore:\n%q\n%q", got, recordsBefore)
	}
	// The client replays its attachments: nothing changes.
	for _, r := range []*vpn.AttachRequest{a1, a2, a3, e1ip, e2} {
		n.attach(r)
	}
	if after := n.summary(true); after != restored {
		t.Fatalf("after the replay:\n%s\nbefore:\n%s", after, restored)
	}
	got, want := contents(n.store), slices.Clone(recordsBefore)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("records changed by the replay:\n%q\n%q", got, want)
	}
	// Replaying attachments that set the same things for their instance
	// writes nothing, in any order.
	seq := n.store.seq
	for _, r := range []*vpn.AttachRequest{a3, a1, a2, a1} {
		n.attach(r)
	}
	if n.store.seq != seq {
		t.Errorf("replaying vrf1's attachments wrote %d batches", n.store.seq-seq)
	}
	// e1ip and e2 set different route targets for evi1: the order of
	// their records is kept (each replay moves its record last).
	for _, r := range []*vpn.AttachRequest{e1ip, e2} {
		n.attach(r)
	}
	if n.store.seq != seq+2 {
		t.Errorf("replaying evi1's attachments wrote %d batches, want 2", n.store.seq-seq)
	}
	if after := n.summary(true); after != restored {
		t.Fatalf("after the second replay:\n%s\nbefore:\n%s", after, restored)
	}

	// Detaching everything leaves no record; a wildcard E-VPN detach
	// takes every endpoint of the MAC.
	n.detach(detachReq(a1))
	n.detach(detachReq(a2))
	n.detach(detachReq(a3))
	wild := detachReq(e1ip)
	wild.IPString, wild.IP = "", netip.Prefix{}
	n.detach(wild)
	if got := keys(n.store); !slices.Equal(got, []string{InstanceKey("evi1"), EndpointKey("evi1", e2.MAC, e2.IP)}) {
		t.Fatalf("records %q", got)
	}
	n.detach(detachReq(e2))
	if n.store.Len() != 0 || n.m.InstanceCount() != 0 {
		t.Fatalf("records %q, %d instances", keys(n.store), n.m.InstanceCount())
	}
}

// Records that cannot be replayed are dropped, the others restored.
func TestRestoreDropsWhatFails(t *testing.T) {
	dir := t.TempDir()
	n := newNode(t, dir)
	a1 := attachReq(dataplane.IPVPN, "vrf1", "00:00:00:00:00:01", "10.0.0.1/32", "tap1", "64512:1")
	n.attach(a1)
	// An unreadable record and one the manager refuses (a direction the
	// dummy driver does not do).
	bad := attachReq(dataplane.EVPN, "evi9", "00:00:00:00:00:09", "10.9.0.1/32", "tap9", "64512:9")
	bad.Direction = dataplane.ToPort
	v, _ := EncodeAttachment(&Attachment{Kind: KindEndpoint, Request: bad})
	must(t, n.store.Commit(put("junk", json.RawMessage(`{"kind":"endpoint"}`)), put(EndpointKey("evi9", bad.MAC, bad.IP), v)))
	n.stop()
	n = newNode(t, dir)
	res := n.rec.Restore(context.Background())
	if res.Endpoints != 1 || res.Failed != 2 || res.Instances != 1 {
		t.Errorf("restore %+v", res)
	}
	if got := keys(n.store); !slices.Equal(got, []string{InstanceKey("vrf1"), EndpointKey("vrf1", a1.MAC, a1.IP)}) {
		t.Errorf("records after the restore: %q", got)
	}
	if n.m.InstanceCount() != 1 {
		t.Errorf("%d instances", n.m.InstanceCount())
	}
}

// fill sets every field reachable from v to a non-zero value.
func fill(t *testing.T, v reflect.Value, path string) {
	switch v.Type() {
	case reflect.TypeFor[netip.Prefix]():
		v.Set(reflect.ValueOf(netip.MustParsePrefix("10.1.2.3/24")))
		return
	case reflect.TypeFor[netip.Addr]():
		v.Set(reflect.ValueOf(netip.MustParseAddr("10.1.2.254")))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s: unexported field, not recorded", path, f.Name)
			}
			if f.Name == "Hints" || f.Name == "Raw" {
				continue // not part of the request's JSON (Raw goes apart)
			}
			fill(t, v.Field(i), path+"."+f.Name)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), path+"[0]")
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), path)
		}
	case reflect.Map:
		if v.Type() != reflect.TypeFor[map[string]any]() {
			t.Fatalf("%s: map type %s", path, v.Type())
		}
		v.Set(reflect.ValueOf(map[string]any{"k": json.Number("3"), "l": []any{"x", true}}))
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"k": json.Number("4")}))
	case reflect.String:
		v.SetString("s-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(9)
	default:
		t.Fatalf("%s: kind %s not covered by the recording test", path, v.Kind())
	}
}

// Every field of an attach request (whatever fields are added to it)
// comes back the same from a record.
func TestAttachmentRoundTrip(t *testing.T) {
	var req vpn.AttachRequest
	fill(t, reflect.ValueOf(&req).Elem(), "AttachRequest")
	req.LocalPort.Raw = map[string]any{"linuxif": "tap0", "vlan": json.Number("12")}
	a := &Attachment{Kind: KindEndpoint, Request: &req, IDs: vpn.Hints{InstanceID: 1, InstanceLabel: 2, InstanceRD: new(uint32), PortLabel: 3}}
	v, err := EncodeAttachment(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeAttachment(v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Request, a.Request) {
		t.Fatalf("request changed by the round trip:\n%+v\n%+v\n%s", b.Request, a.Request, v)
	}
	if !reflect.DeepEqual(b.IDs, a.IDs) {
		t.Fatalf("identifiers %+v, want %+v", b.IDs, a.IDs)
	}
	v2, _ := EncodeAttachment(b)
	if string(v2) != string(v) {
		t.Fatalf("encoding not stable:\n%s\n%s", v, v2)
	}
}

// When the state directory cannot be written (a journal write and the
// snapshot both fail), an attach or detach is in effect but not
// acknowledged: the API answers 500 instead of pretending the change
// survives a restart. A replay of the same attachment fails the same way
// until the state is written again, then succeeds; a restart restores
// what was acknowledged.
func TestAttachFailsWhenStateNotWritable(t *testing.T) {
	dir := t.TempDir()
	n := newNode(t, dir)
	ctx := context.Background()
	a1 := attachReq(dataplane.IPVPN, "vrf1", "00:00:00:00:00:01", "10.0.0.1/32", "tap1", "64512:1")
	a2 := attachReq(dataplane.IPVPN, "vrf1", "00:00:00:00:00:02", "10.0.0.2/32", "tap2", "64512:1")
	n.attach(a1)
	unblock := blockSnapshot(t, dir)
	breakJournal(n.store)
	for range 2 {
		err := n.rec.Attach(ctx, a2)
		if err == nil || !strings.Contains(err.Error(), "not written to the state directory") {
			t.Fatalf("attach with the state directory not writable: %v", err)
		}
	}
	if _, _, plugged := n.m.Identifiers("vrf1", a2.MAC, a2.IP); !plugged {
		t.Error("the refused attachment is not in effect")
	}
	if err := n.rec.Detach(ctx, detachReq(a1)); err == nil || !strings.Contains(err.Error(), "not written to the state directory") {
		t.Fatalf("detach with the state directory not writable: %v", err)
	}
	unblock()
	retryNow(n.store)
	n.attach(a2) // the client's retry: written now
	want := []string{InstanceKey("vrf1"), EndpointKey("vrf1", a2.MAC, a2.IP)}
	n.stop()
	n = newNode(t, dir)
	if got := keys(n.store); !slices.Equal(got, want) {
		t.Fatalf("records after a restart: %q, want %q", got, want)
	}
	if res := n.rec.Restore(ctx); res.Endpoints != 1 || res.Failed != 0 {
		t.Errorf("restore %+v", res)
	}
}
