package bgp

import (
	"reflect"
	"testing"

	"bagpipe/internal/route"
)

// TestIdenticalCoversAttrs guards the decoder's attribute interning: a
// field added to route.Attrs must be compared by identical.
func TestIdenticalCoversAttrs(t *testing.T) {
	if n := reflect.TypeOf(route.Attrs{}).NumField(); n != 13 {
		t.Fatalf("route.Attrs has %d fields: update identical() in decode.go, then this test", n)
	}
	a := &route.Attrs{RTs: []route.RT{1, 2}, LocalPref: 100, HasLocalPref: true}
	b := &route.Attrs{RTs: []route.RT{2, 1}, LocalPref: 100, HasLocalPref: true}
	if identical(a, b) {
		t.Fatal("RTs in another order are not identical")
	}
	d := &decoder{}
	x := d.intern(a)
	if y := d.intern(&route.Attrs{RTs: []route.RT{1, 2}, LocalPref: 100, HasLocalPref: true}); y != x {
		t.Fatal("identical attributes not shared")
	}
	if y := d.intern(b); y == x || !identical(y, b) {
		t.Fatal("different attributes shared")
	}
}
