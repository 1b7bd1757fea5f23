package bgp

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// checkAcceptedAsIs fails when acceptedAsIs claims an UPDATE that GoBGP's
// validator would reject or change.
func checkAcceptedAsIs(t *testing.T, u *bgp.BGPUpdate) {
	t.Helper()
	if !acceptedAsIs(u) {
		return
	}
	before := slices.Clone(u.PathAttributes)
	ok, err := bgp.ValidateUpdateMsg(u, presentFamilies(u), false, false, true)
	if !ok || err != nil {
		t.Fatalf("acceptedAsIs says yes, the validator says %v", err)
	}
	if !slices.Equal(before, u.PathAttributes) {
		t.Fatal("acceptedAsIs says yes, the validator changed the attributes")
	}
}

func TestAcceptedAsIsAgreesWithGoBGP(t *testing.T) {
	rd, _ := bgp.NewRouteDistinguisherIPAddressAS(netip.MustParseAddr("192.0.2.1"), 1)
	nlri, _ := bgp.NewLabeledVPNIPAddrPrefix(netip.MustParsePrefix("10.0.0.1/32"), *bgp.NewMPLSLabelStack(16), rd)
	reach, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv4_VPN, []bgp.PathNLRI{{NLRI: nlri}}, netip.MustParseAddr("192.0.2.1"))
	unreach, _ := bgp.NewPathAttributeMpUnreachNLRI(bgp.RF_IPv4_VPN, []bgp.PathNLRI{{NLRI: nlri}})
	origin := bgp.NewPathAttributeOrigin(0)
	asPath := bgp.NewPathAttributeAsPath(nil)
	lp := bgp.NewPathAttributeLocalPref(100)
	nh, _ := bgp.NewPathAttributeNextHop(netip.MustParseAddr("0.0.0.0"))
	badOrigin := bgp.NewPathAttributeOrigin(7)
	cases := []struct {
		name  string
		attrs []bgp.PathAttributeInterface
		clean bool
	}{
		{"clean advertisement", []bgp.PathAttributeInterface{reach, origin, asPath, lp}, true},
		{"clean withdrawal", []bgp.PathAttributeInterface{unreach}, true},
		{"missing AS_PATH", []bgp.PathAttributeInterface{reach, origin, lp}, false},
		{"missing ORIGIN", []bgp.PathAttributeInterface{reach, asPath}, false},
		{"duplicate LOCAL_PREF", []bgp.PathAttributeInterface{reach, origin, asPath, lp, lp}, false},
		{"duplicate MP_REACH", []bgp.PathAttributeInterface{reach, origin, asPath, reach}, false},
		{"bad ORIGIN", []bgp.PathAttributeInterface{reach, badOrigin, asPath}, false},
		{"zero NEXT_HOP", []bgp.PathAttributeInterface{reach, origin, asPath, nh}, false},
	}
	for _, c := range cases {
		u := bgp.NewBGPUpdateMessage(nil, slices.Clone(c.attrs), nil).Body.(*bgp.BGPUpdate)
		if got := acceptedAsIs(u); got != c.clean {
			t.Errorf("%s: acceptedAsIs %v, want %v", c.name, got, c.clean)
		}
		checkAcceptedAsIs(t, u)
	}
}

// FuzzAcceptedAsIs decodes arbitrary UPDATEs: whenever acceptedAsIs skips
// the validator, the validator must agree.
func FuzzAcceptedAsIs(f *testing.F) {
	mac, _ := route.ParseMAC("52:54:00:00:00:11")
	attrs := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}, Encaps: []route.Encap{route.EncapVXLAN},
		PMSI: &route.PMSI{Type: 6, Label: 5000, Endpoint: localIP}, HasLocalPref: true, LocalPref: 100}
	seeds := []*route.Route{
		localVPNRoute("10.0.0.0/24", 100, "64512:1"),
		{NLRI: route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: 1, MAC: mac, Prefix: netip.MustParsePrefix("10.0.0.1/32")}, Label: 5000, NextHop: localIP, Attrs: attrs},
		{NLRI: route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: 1, Prefix: netip.MustParsePrefix("10.0.0.1/32")}, NextHop: localIP, Attrs: attrs},
		{NLRI: route.NLRI{Family: route.RTC, Origin: 1, Target: route.MustParseRT("64512:1")}, NextHop: localIP},
	}
	enc := newEncoder(allFams, localIP, func(string, ...any) {})
	for _, r := range seeds {
		for _, kind := range []route.EventKind{route.Advertise, route.Withdraw} {
			enc.encode([]outMsg{{ev: route.Event{Kind: kind, Route: r}}}, func(b []byte) error {
				f.Add(bytes.Clone(b))
				return nil
			})
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newMsgReader(bytes.NewReader(data))
		for {
			msg, _, err := r.next()
			if err != nil || msg == nil {
				return
			}
			if u, ok := msg.Body.(*bgp.BGPUpdate); ok {
				checkAcceptedAsIs(t, u)
			}
		}
	})
}
