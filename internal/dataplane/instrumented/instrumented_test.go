package instrumented

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/route"
)

type call struct {
	vpnType dataplane.VPNType
	driver  string
	op      string
	failed  bool
}

type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) DataplaneCall(t dataplane.VPNType, driver, op string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	r.calls = append(r.calls, call{t, driver, op, err != nil})
}

func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

var local = netip.MustParseAddr("192.0.2.10")

func TestWrapKeepsInterfacesAndReportsCalls(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	log := slog.New(slog.DiscardHandler)

	evpn := Wrap(dummy.New(dataplane.EVPN, local, log), rec)
	ed, ok := evpn.(dataplane.EVPNDriver)
	if !ok {
		t.Fatal("wrapped E-VPN driver is not a dataplane.EVPNDriver")
	}
	if _, ok := Unwrap(evpn).(*dummy.Driver); !ok {
		t.Errorf("Unwrap gives %T", Unwrap(evpn))
	}
	if evpn.Name() != "DummyDataplaneDriver" || evpn.Type() != dataplane.EVPN || evpn.LocalAddress() != local {
		t.Errorf("pass-through methods: %s %s %s", evpn.Name(), evpn.Type(), evpn.LocalAddress())
	}
	if err := evpn.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := evpn.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	inst, err := ed.NewEVPNInstance(ctx, dataplane.InstanceConfig{ID: 1, ExternalID: "e1", Label: 5000})
	if err != nil {
		t.Fatal(err)
	}
	pe := netip.MustParseAddr("192.0.2.20")
	mac, _ := route.ParseMAC("52:54:00:00:00:01")
	ep := dataplane.Endpoint{MAC: mac, Port: &dataplane.LocalPort{LinuxIf: "tap1"}, Label: 5000, Direction: dataplane.Both}
	remote := dataplane.Remote{MAC: mac, PE: pe, Label: 5000}
	for _, err := range []error{
		inst.VIFPlugged(ctx, ep),
		inst.SetupRemote(ctx, remote),
		inst.AddBUM(ctx, pe, 5000, nil),
		inst.SetGatewayPort(ctx, "gw", netip.Addr{}),
		inst.GatewayPortDown(ctx, "gw"),
		inst.RemoveBUM(ctx, pe, 5000),
		inst.RemoveRemote(ctx, remote),
		inst.UpdateFallback(ctx, nil),
		inst.VIFUnplugged(ctx, ep, true),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := inst.RemoveRemote(ctx, remote); err == nil { // not set up: the dummy refuses
		t.Fatal("removing an unknown remote succeeded")
	}
	if lg := inst.LookingGlass(); lg == nil {
		t.Error("instance looking glass not passed through")
	}
	if err := inst.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, c := range rec.take() {
		if c.vpnType != dataplane.EVPN || c.driver != "DummyDataplaneDriver" {
			t.Errorf("call reported as %+v", c)
		}
		op := c.op
		if c.failed {
			op += "!"
		}
		ops = append(ops, op)
	}
	want := []string{"reset_state", "initialize", "new_instance", "vif_plugged", "setup_remote", "add_bum",
		"set_gateway_port", "gateway_port_down", "remove_bum", "remove_remote", "update_fallback",
		"vif_unplugged", "remove_remote!", "cleanup"}
	if !slices.Equal(ops, want) {
		t.Errorf("reported operations\n got %q\nwant %q", ops, want)
	}
	for _, op := range ops {
		if !slices.Contains(Operations, op) && !slices.Contains(Operations, op[:len(op)-1]) {
			t.Errorf("operation %q missing from Operations", op)
		}
	}

	ipvpn := Wrap(dummy.New(dataplane.IPVPN, local, log), rec)
	id, ok := ipvpn.(dataplane.IPVPNDriver)
	if !ok {
		t.Fatal("wrapped IP VPN driver is not a dataplane.IPVPNDriver")
	}
	vrf, err := id.NewIPVPNInstance(ctx, dataplane.InstanceConfig{ID: 2, ExternalID: "v1", Label: 17})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := vrf.(interface{ Unwrap() dataplane.Instance })
	if !ok {
		t.Fatalf("wrapped instance %T has no Unwrap", vrf)
	}
	if _, ok := u.Unwrap().(*dummy.Instance); !ok {
		t.Errorf("instance Unwrap gives %T", u.Unwrap())
	}
	// The dummy records classifiers; removing one it does not have fails.
	if err := vrf.AddClassifier(ctx, route.Classifier{Protocol: 6}, 3); err != nil {
		t.Errorf("dummy AddClassifier through the wrapper: %v", err)
	}
	if err := vrf.RemoveClassifier(ctx, route.Classifier{Protocol: 6}); err != nil {
		t.Errorf("dummy RemoveClassifier through the wrapper: %v", err)
	}
	if err := vrf.RemoveClassifier(ctx, route.Classifier{Protocol: 6}); err == nil {
		t.Error("dummy RemoveClassifier of a removed classifier: no error")
	}
	if got := rec.take(); len(got) != 4 || got[0] != (call{dataplane.IPVPN, "DummyDataplaneDriver", OpNewInstance, false}) ||
		got[1] != (call{dataplane.IPVPN, "DummyDataplaneDriver", OpAddClassifier, false}) ||
		got[2] != (call{dataplane.IPVPN, "DummyDataplaneDriver", OpRemoveClassifier, false}) ||
		got[3] != (call{dataplane.IPVPN, "DummyDataplaneDriver", OpRemoveClassifier, true}) {
		t.Errorf("IP VPN calls: %+v", got)
	}
}

// both is a driver serving both VPN types.
type both struct{ *dummy.Driver }

func (b both) NewIPVPNInstance(ctx context.Context, cfg dataplane.InstanceConfig) (dataplane.IPVPNInstance, error) {
	return b.Driver.NewIPVPNInstance(ctx, cfg)
}

func TestWrapDriverOfBothTypes(t *testing.T) {
	rec := &recorder{}
	d := Wrap(both{dummy.New(dataplane.EVPN, local, nil)}, rec)
	if _, ok := d.(dataplane.EVPNDriver); !ok {
		t.Error("not an EVPNDriver")
	}
	if _, ok := d.(dataplane.IPVPNDriver); !ok {
		t.Error("not an IPVPNDriver")
	}
	if err := d.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := Unwrap(d).(both); !ok {
		t.Errorf("Unwrap gives %T", Unwrap(d))
	}
	if got := rec.take(); len(got) != 1 || got[0].op != OpInitialize {
		t.Errorf("calls: %+v", got)
	}
	if Wrap(nil, rec) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	plain := dummy.New(dataplane.EVPN, local, nil)
	if Wrap(plain, nil) != dataplane.Driver(plain) {
		t.Error("Wrap without observer does not return the driver")
	}
}
