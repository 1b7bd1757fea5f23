package dummy

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// The dummy IP VPN dataplane records traffic classifiers (the reference's
// raised "not implemented"), shows them in its looking glass and refuses
// to remove one it does not have.
func TestClassifiers(t *testing.T) {
	ctx := context.Background()
	d := New(dataplane.IPVPN, netip.MustParseAddr("192.0.2.1"), nil)
	vrf, err := d.NewIPVPNInstance(ctx, dataplane.InstanceConfig{ID: 1, ExternalID: "v"})
	if err != nil {
		t.Fatal(err)
	}
	inst := vrf.(*Instance)
	web := route.Classifier{Dst: netip.MustParsePrefix("10.0.0.0/24"), Protocol: 6, DstPort: route.PortRange{Min: 80, Max: 80}}
	dns := route.Classifier{Protocol: 17, DstPort: route.PortRange{Min: 53, Max: 53}}
	for _, c := range []route.Classifier{web, dns} {
		if err := vrf.AddClassifier(ctx, c, 7); err != nil {
			t.Fatal(err)
		}
	}
	if err := vrf.AddClassifier(ctx, web, 9); err != nil { // replaces the redirection
		t.Fatal(err)
	}
	want := []string{"dst 10.0.0.0/24 proto 6 dport 80 -> 9", "proto 17 dport 53 -> 7"}
	if got := inst.Classifiers(); !slices.Equal(got, want) {
		t.Fatalf("classifiers %v, want %v", got, want)
	}
	if got := vrf.LookingGlass()["classifiers"]; !slices.Equal(got.([]string), want) {
		t.Fatalf("looking glass classifiers %v", got)
	}
	if to, ok := inst.Redirect(web); !ok || to != 9 {
		t.Fatalf("Redirect(web) = %d, %v", to, ok)
	}
	if err := vrf.RemoveClassifier(ctx, dns); err != nil {
		t.Fatal(err)
	}
	if err := vrf.RemoveClassifier(ctx, dns); err == nil {
		t.Fatal("removing a classifier twice: no error")
	}
	if err := vrf.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if got := inst.Classifiers(); len(got) != 0 {
		t.Fatalf("classifiers after cleanup: %v", got)
	}
}
