package linux

import (
	"strings"
	"testing"
)

func TestCandidateNames(t *testing.T) {
	for _, tc := range []struct {
		id, bridge, vxlan string
	}{
		{"net1", "evpn---net1", "vxlan--net1"},
		{"12345678", "evpn---12345678", "vxlan--12345678"},
		{"evpn-net1", "evpn---evpn-net", "vxlan--evpn-net"},
		{"8b1f2a3c-0000-4000-8000-000000000001", "evpn---8b1f2a3c", "vxlan--8b1f2a3c"},
	} {
		b, v := candidateNames(tc.id, 0)
		if b != tc.bridge || v != tc.vxlan {
			t.Errorf("candidateNames(%q, 0) = %q, %q; want %q, %q", tc.id, b, v, tc.bridge, tc.vxlan)
		}
	}
	seen := map[string]int{}
	for n := 1; n <= 3; n++ {
		b, v := candidateNames("evpn-net1", n)
		if len(b) != maxIfName || len(v) != maxIfName {
			t.Errorf("candidate %d: %q, %q: want %d bytes", n, b, v, maxIfName)
		}
		if !strings.HasPrefix(b, BridgePrefix) || !strings.HasPrefix(v, VXLANPrefix) || b[len(BridgePrefix):] != v[len(VXLANPrefix):] {
			t.Errorf("candidate %d: %q, %q: want the prefixes and a common suffix", n, b, v)
		}
		if prev, dup := seen[b]; dup {
			t.Errorf("candidates %d and %d are both %q", prev, n, b)
		}
		seen[b] = n
		// Deterministic: the same id gives the same names.
		if b2, _ := candidateNames("evpn-net1", n); b2 != b {
			t.Errorf("candidate %d not deterministic: %q then %q", n, b, b2)
		}
	}
}

func TestChooseNamesAvoidsCollisions(t *testing.T) {
	used := map[string]bool{}
	taken := func(s string) bool { return used[s] }
	// Two ids sharing their first 8 bytes: the second one gets the
	// derived names, different from the first's.
	b1, v1, err := chooseNames("evpn-net1", "", taken)
	if err != nil || b1 != "evpn---evpn-net" || v1 != "vxlan--evpn-net" {
		t.Fatalf("first instance: %q %q %v", b1, v1, err)
	}
	used[b1], used[v1] = true, true
	b2, v2, err := chooseNames("evpn-net2", "", taken)
	if err != nil {
		t.Fatal(err)
	}
	wantB, wantV := candidateNames("evpn-net2", 1)
	if b2 != wantB || v2 != wantV {
		t.Fatalf("second instance: %q %q, want %q %q", b2, v2, wantB, wantV)
	}
	used[b2], used[v2] = true, true
	// A VXLAN name taken alone (e.g. a foreign device) also moves on.
	nb, nv := candidateNames("evpn-net3", 1)
	used[nv] = true
	b3, v3, err := chooseNames("evpn-net3", "", taken)
	if err != nil || b3 == b1 || b3 == nb || v3 == nv {
		t.Fatalf("third instance: %q %q %v (taken: %v)", b3, v3, err, used)
	}
	// With linuxbr only the VXLAN name is chosen.
	b4, v4, err := chooseNames("evpn-net1", "brq1", taken)
	if err != nil || b4 != "brq1" || v4 == v1 || !strings.HasPrefix(v4, VXLANPrefix) {
		t.Fatalf("linuxbr instance: %q %q %v", b4, v4, err)
	}
}

func TestAlias(t *testing.T) {
	if a := alias("net1"); a != "bagpipe-bgp:evpn:net1" || !isOurs(a) {
		t.Errorf("alias(net1) = %q", a)
	}
	if a := alias(strings.Repeat("x", 500)); len(a) != maxAlias || !isOurs(a) {
		t.Errorf("long alias: %d bytes", len(a))
	}
	if isOurs("") || isOurs("something else") {
		t.Error("isOurs accepts foreign aliases")
	}
}
