package route

import (
	"net/netip"
	"testing"
)

func TestParseRT(t *testing.T) {
	cases := []struct {
		in, out string
		ok      bool
	}{
		{"64512:100", "64512:100", true},
		{"target:64512:100", "64512:100", true},
		{"65535:4294967295", "65535:4294967295", true},
		{"4200000000:7", "4200000000:7", true}, // 4-byte AS form
		{"192.0.2.1:7", "192.0.2.1:7", true},
		{"4200000000:70000", "", false},
		{"64512", "", false},
		{"a:1", "", false},
		{"1:b", "", false},
		{":1", "", false},
		{"1:", "", false},
	}
	for _, c := range cases {
		rt, err := ParseRT(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseRT(%q) error %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && rt.String() != c.out {
			t.Errorf("ParseRT(%q) = %s, want %s", c.in, rt, c.out)
		}
	}
}

func TestRTRecordRoundTrip(t *testing.T) {
	rt := MustParseRT("64512:77")
	rec := rt.Record()
	if !IsRTRecordEcom(rec) || IsRouteTargetEcom(rec) {
		t.Fatalf("record %x not recognised", rec)
	}
	if !IsRouteTargetEcom(uint64(rt)) {
		t.Fatalf("rt %x not recognised", uint64(rt))
	}
	if RTFromRecord(rec) != rt {
		t.Fatal("RT-Record round trip failed")
	}
	if rt.Target() != "target:64512:77" {
		t.Fatal(rt.Target())
	}
}

func TestRDString(t *testing.T) {
	rd := NewRDIP(netip.MustParseAddr("127.0.0.1"), 3)
	if rd.String() != "127.0.0.1:3" {
		t.Fatal(rd.String())
	}
	if uint64(rd)>>48 != 1 {
		t.Fatal("not a type 1 RD")
	}
}

func TestParseMAC(t *testing.T) {
	want := "52:54:00:0a:0b:0c"
	for _, in := range []string{"52:54:00:0a:0b:0c", "52-54-00-0A-0B-0C", "5254.000a.0b0c", "5254000a0b0c", "52:54:0:a:b:c"} {
		m, err := ParseMAC(in)
		if err != nil || m.String() != want {
			t.Errorf("ParseMAC(%q) = %v, %v", in, m, err)
		}
	}
	for _, in := range []string{"", "52:54:00:0a:0b", "52:54:00:0a:0b:0c:0d", "zz:54:00:0a:0b:0c", "52:54:00:0a:0b:0c0", "00:11:22:33:44:55:66:77"} {
		if _, err := ParseMAC(in); err == nil {
			t.Errorf("ParseMAC(%q) accepted", in)
		}
	}
}

func TestAttrsEqualIgnoresOrder(t *testing.T) {
	a := &Attrs{RTs: []RT{1, 2}, Encaps: []Encap{EncapVXLAN, EncapMPLS}}
	b := &Attrs{RTs: []RT{2, 1}, Encaps: []Encap{EncapMPLS, EncapVXLAN}}
	if !a.Equal(b) {
		t.Fatal("order must not matter")
	}
	c := &Attrs{RTs: []RT{2, 1}, Encaps: []Encap{EncapMPLS, EncapVXLAN}, HasLocalPref: true, LocalPref: 200}
	if a.Equal(c) {
		t.Fatal("local pref must matter")
	}
	if a.Equal(nil) {
		t.Fatal("nil")
	}
}

func TestFamilies(t *testing.T) {
	for _, f := range Families {
		afi, safi := f.AFISAFI()
		if FamilyOf(afi, safi) != f {
			t.Errorf("%s round trip", f)
		}
	}
	if FamilyOf(1, 1) != FamilyAny {
		t.Error("ipv4 unicast must be unsupported")
	}
}
