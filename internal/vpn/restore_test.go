package vpn

import (
	"context"
	"net/http"
	"testing"
)

func u32(v uint32) *uint32 { return &v }

// Hinted identifiers are given when free; a busy one gives way to another.
func TestAttachWithHints(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	req := ipvpnReq("v1", "00:00:00:00:00:01", "10.0.0.1/32", "tap1", "64512:1")
	req.Hints = &Hints{InstanceID: 7, InstanceLabel: 500, InstanceRD: u32(42), PortLabel: 600}
	if err := f.m.Attach(ctx, req); err != nil {
		t.Fatal(err)
	}
	h, inst, ep := f.m.Identifiers("v1", req.MAC, req.IP)
	if !inst || !ep || h.InstanceID != 7 || h.InstanceLabel != 500 || *h.InstanceRD != 42 || h.PortLabel != 600 || h.EndpointRD != nil {
		t.Fatalf("identifiers %+v (instance %v, endpoint %v)", h, inst, ep)
	}
	if got := f.m.Instance("v1").Name; got != "VRF-7" {
		t.Errorf("instance name %s, want VRF-7", got)
	}
	// An E-VPN endpoint without IP has an RD of its own.
	e := evpnReq("e1", "00:00:00:00:00:02", "", "tap2", "64512:2")
	e.Hints = &Hints{InstanceID: 3, InstanceLabel: 700, InstanceRD: u32(43), PortLabel: 701, EndpointRD: u32(44)}
	if err := f.m.Attach(ctx, e); err != nil {
		t.Fatal(err)
	}
	h, _, _ = f.m.Identifiers("e1", e.MAC, e.IP)
	if h.InstanceID != 3 || h.InstanceLabel != 700 || *h.InstanceRD != 43 || h.PortLabel != 701 || h.EndpointRD == nil || *h.EndpointRD != 44 {
		t.Fatalf("E-VPN identifiers %+v", h)
	}
	// Busy hints: other identifiers, no collision.
	b := ipvpnReq("v2", "00:00:00:00:00:03", "10.0.0.3/32", "tap3", "64512:1")
	b.Hints = &Hints{InstanceID: 7, InstanceLabel: 500, InstanceRD: u32(42), PortLabel: 600}
	if err := f.m.Attach(ctx, b); err != nil {
		t.Fatal(err)
	}
	h, _, _ = f.m.Identifiers("v2", b.MAC, b.IP)
	if h.InstanceID == 7 || h.InstanceID == 3 || h.InstanceLabel == 500 || *h.InstanceRD == 42 || h.PortLabel == 600 {
		t.Fatalf("busy hints reused: %+v", h)
	}
	// New instances get ids above every hinted one.
	if got := f.m.Instance("v2").ID; got != 8 {
		t.Errorf("next instance id %d, want 8", got)
	}
}

// Hold keeps an instance without endpoint until released.
func TestHold(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	req := evpnReq("e1", "00:00:00:00:00:01", "10.0.0.1/32", "tap1", "64512:1")
	release, err := f.m.Hold(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f.m.Instance("e1") == nil {
		t.Fatal("no instance while held")
	}
	if _, _, ep := f.m.Identifiers("e1", req.MAC, req.IP); ep {
		t.Fatal("Hold plugged the endpoint")
	}
	if err := f.m.Attach(ctx, req); err != nil {
		t.Fatal(err)
	}
	release()
	if f.m.Instance("e1") == nil {
		t.Fatal("instance with an endpoint removed at release")
	}
	other := evpnReq("e2", "00:00:00:00:00:02", "10.0.0.2/32", "tap2", "64512:1")
	release, err = f.m.Hold(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if f.m.Instance("e2") != nil {
		t.Fatal("empty instance kept after release")
	}
	if labels, rds := f.m.Allocated(); labels != 2 || rds != 1 { // e1: instance and port labels
		t.Errorf("allocated labels %d, RDs %d, want 2 and 1", labels, rds)
	}
}

// Shutdown stops the instances but leaves their dataplane.
func TestShutdownKeepsDataplane(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	req := evpnReq("e1", "00:00:00:00:00:01", "10.0.0.1/32", "tap1", "64512:1")
	if err := f.m.Attach(ctx, req); err != nil {
		t.Fatal(err)
	}
	d := dp(t, f.m.Instance("e1"))
	f.m.Shutdown(ctx)
	if f.m.InstanceCount() != 0 {
		t.Fatal("instances left after Shutdown")
	}
	if d.Cleaned() {
		t.Fatal("Shutdown cleaned the dataplane up")
	}
	// Nothing would stop an instance created now.
	err := f.m.Attach(ctx, evpnReq("e2", "00:00:00:00:00:02", "10.0.0.2/32", "tap2", "64512:1"))
	if e, ok := err.(*Error); !ok || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("attach after Shutdown: %v", err)
	}
	if f.m.InstanceCount() != 0 {
		t.Fatal("instance created after Shutdown")
	}
}
