package lookingglass

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"bagpipe/internal/route"
)

var (
	lo    = netip.MustParseAddr("127.0.0.1")
	vrf4  = &route.Source{Name: "VRF-4"}
	evi2  = &route.Source{Name: "EVI-2"}
	mgr   = &route.Source{Name: "BGPManager"}
	peer2 = &route.Source{Name: "BGP-127.0.0.2", Peer: true}
)

func mustMAC(s string) route.MAC {
	m, err := route.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// The expected texts below are those the reference (17.0.0) shows for the
// same routes (observed with dummy drivers).
func TestNLRIAndAttributeTexts(t *testing.T) {
	rt := route.MustParseRT
	for _, tc := range []struct {
		name  string
		r     *route.Route
		nlri  string
		attrs map[string]any
	}{
		{"vpnv4", &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(lo, 0), Prefix: netip.MustParsePrefix("10.0.0.1/32")},
			Label:   17,
			NextHop: lo,
			Attrs:   &route.Attrs{HasLocalPref: true, LocalPref: 200, RTs: []route.RT{rt("64512:78"), rt("64512:77")}, Encaps: []route.Encap{route.EncapMPLS}},
			Source:  vrf4,
		}, "10.0.0.1/32 label 17 next-hop 127.0.0.1 rd 127.0.0.1:0",
			map[string]any{"extended-community": "[ target:64512:77 target:64512:78 encap:MPLS ]", "local-preference": "200"}},
		{"vpnv4 subnet keeps host bits", &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(lo, 1), Prefix: netip.MustParsePrefix("10.9.0.5/24")},
			Label:   17,
			NextHop: lo,
			Attrs:   &route.Attrs{RTs: []route.RT{rt("64512:300")}},
			Source:  vrf4,
		}, "10.9.0.5/24 label 17 next-hop 127.0.0.1 rd 127.0.0.1:1",
			map[string]any{"extended-community": "target:64512:300"}},
		{"vpnv4 default route with hash order", &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(lo, 5), Prefix: netip.MustParsePrefix("0.0.0.0/0")},
			Label:   20,
			NextHop: lo,
			Attrs:   &route.Attrs{RTs: []route.RT{rt("64512:96")}, Encaps: []route.Encap{route.EncapMPLS}, HasHashOrder: true},
			Source:  vrf4,
		}, "0.0.0.0/0 label 20 next-hop 127.0.0.1 rd 127.0.0.1:5",
			map[string]any{"extended-community": "[ target:64512:96 encap:MPLS consistentHashSortOrder:0 ]"}},
		{"vpnv4 received", &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(netip.MustParseAddr("127.0.0.2"), 3), Prefix: netip.MustParsePrefix("10.77.0.0/24")},
			Label:   17,
			NextHop: netip.MustParseAddr("127.0.0.2"),
			Attrs:   &route.Attrs{HasLocalPref: true, LocalPref: 100, HasMED: true, MED: 5, RTs: []route.RT{rt("64512:99")}, RTRecords: []route.RT{rt("64512:77")}, Encaps: []route.Encap{route.EncapMPLS}, HasHashOrder: true, HashOrder: 0},
			Source:  peer2,
		}, "10.77.0.0/24 label 17 (273) next-hop 127.0.0.2 rd 127.0.0.2:3",
			map[string]any{"extended-community": "[ target:64512:99 rtrecord:64512:77 encap:MPLS consistentHashSortOrder:0 ]", "local-preference": "100", "med": "5"}},
		{"evpn mac/ip", &route.Route{
			NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: route.NewRDIP(lo, 2), MAC: mustMAC("52:54:00:00:00:11"), Prefix: netip.MustParsePrefix("10.1.0.1/32")},
			Label:   5000,
			NextHop: lo,
			Attrs:   &route.Attrs{HasLocalPref: true, LocalPref: 100, RTs: []route.RT{rt("64512:88")}, Encaps: []route.Encap{route.EncapVXLAN}},
			Source:  evi2,
		}, "evpn:macadv::127.0.0.1:2:-:0:52:54:00:00:00:11/48:10.1.0.1: label 312 (5000)",
			map[string]any{"extended-community": "[ target:64512:88 encap:VXLAN ]", "local-preference": "100"}},
		{"evpn mac only", &route.Route{
			NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: route.NewRDIP(lo, 4), MAC: mustMAC("52:54:00:00:01:03")},
			Label:   18,
			NextHop: lo,
			Attrs:   &route.Attrs{HasLocalPref: true, LocalPref: 100, RTs: []route.RT{rt("64512:301")}, Encaps: []route.Encap{route.EncapVXLAN}},
			Source:  evi2,
		}, "evpn:macadv::127.0.0.1:4:-:0:52:54:00:00:01:03/48:: label 1 (18)",
			map[string]any{"extended-community": "[ target:64512:301 encap:VXLAN ]", "local-preference": "100"}},
		{"evpn imet", &route.Route{
			NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: route.NewRDIP(lo, 2), Prefix: netip.PrefixFrom(lo, 32)},
			NextHop: lo,
			Attrs: &route.Attrs{RTs: []route.RT{rt("64512:88")}, Encaps: []route.Encap{route.EncapVXLAN},
				PMSI: &route.PMSI{Type: route.PMSIIngressReplication, Label: 5000, Endpoint: lo}},
			Source: evi2,
		}, "evpn:multicast::127.0.0.1:2:0:127.0.0.1",
			map[string]any{"extended-community": "[ target:64512:88 encap:VXLAN ]", "pmsi-tunnel": "pmsi:ingressreplication:0:0(5000):127.0.0.1"}},
		{"evpn imet received", &route.Route{
			NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: route.NewRDIP(lo, 2), Prefix: netip.PrefixFrom(lo, 32)},
			NextHop: lo,
			Attrs:   &route.Attrs{PMSI: &route.PMSI{Type: route.PMSIIngressReplication, Label: 5000, Endpoint: lo}},
			Source:  peer2,
		}, "evpn:multicast::127.0.0.1:2:0:127.0.0.1",
			map[string]any{"pmsi-tunnel": "pmsi:ingressreplication:0:312(5000):127.0.0.1"}},
		{"rtc", &route.Route{
			NLRI:    route.NLRI{Family: route.RTC, Origin: 64512, Target: rt("64512:77")},
			NextHop: lo,
			Attrs:   &route.Attrs{},
			Source:  mgr,
		}, "rtc 64512:target:64512:77", map[string]any{}},
		{"rtc wildcard", &route.Route{
			NLRI:    route.NLRI{Family: route.RTC},
			NextHop: lo,
			Attrs:   &route.Attrs{},
			Source:  peer2,
		}, "rtc wildcard", map[string]any{}},
		{"flow", &route.Route{
			NLRI:   route.NLRI{Family: route.FlowVPN, RD: route.NewRDIP(lo, 4), Flow: "\x01\x18\x0a"},
			Attrs:  &route.Attrs{RTs: []route.RT{rt("64512:97")}, HasRedirect: true, Redirect: rt("64512:96")},
			Source: vrf4,
		}, "flow 01180a rd 127.0.0.1:4",
			map[string]any{"extended-community": "[ target:64512:97 redirect:64512:96 ]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NLRIText(tc.r); got != tc.nlri {
				t.Errorf("NLRI text\n got %q\nwant %q", got, tc.nlri)
			}
			m := RouteJSON(tc.r)
			body, ok := m[tc.nlri].(map[string]any)
			if !ok || len(m) != 1 {
				t.Fatalf("RouteJSON = %v", m)
			}
			got, _ := json.Marshal(body["attributes"])
			want, _ := json.Marshal(tc.attrs)
			if string(got) != string(want) {
				t.Errorf("attributes\n got %s\nwant %s", got, want)
			}
			if body["afi-safi"] != tc.r.NLRI.Family.String() {
				t.Errorf("afi-safi = %v", body["afi-safi"])
			}
			_, hasRTs := body["route_targets"]
			if hasRTs != (tc.r.NLRI.Family == route.IPv4VPN || tc.r.NLRI.Family == route.EVPN) {
				t.Errorf("route_targets presence = %v", hasRTs)
			}
			checkStreamed(t, tc.r)
		})
	}
}

// checkStreamed compares the streamed encoding of a route (Routes) with
// the encoding of RouteJSON.
func checkStreamed(t *testing.T, r *route.Route) {
	t.Helper()
	streamed, err := json.Marshal(JSON{Value: Routes{r}, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	built, err := json.Marshal(JSON{Value: []any{RouteJSON(r)}, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	assertSameJSON(t, "streamed route", string(streamed), string(built))
}

func TestRouteJSONSourceAndNextHop(t *testing.T) {
	r := &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(lo, 0), Prefix: netip.MustParsePrefix("10.0.0.1/32")},
		Label:   18,
		NextHop: lo,
		Attrs:   &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:77")}},
		Source:  vrf4,
	}
	var b bytes.Buffer
	if err := (JSON{Value: Routes{r}, BaseURL: base}).Encode(&b); err != nil {
		t.Fatal(err)
	}
	want := `[{"10.0.0.1/32 label 18 next-hop 127.0.0.1 rd 127.0.0.1:0": {"afi-safi": "ipv4/mpls-vpn", ` +
		`"attributes": {"extended-community": "target:64512:77"}, "next_hop": "127.0.0.1", ` +
		`"source": {"id": "VRF-4", "href": "` + base + `/bgp/workers/VRF-4"}, "route_targets": ["target:64512:77"]}}]`
	if b.String() != want {
		t.Errorf("\n got %s\nwant %s", b.String(), want)
	}

	flow := &route.Route{NLRI: route.NLRI{Family: route.FlowVPN, RD: route.NewRDIP(lo, 8)}}
	m := RouteJSON(flow)
	for _, body := range m {
		body := body.(map[string]any)
		if body["next_hop"] != nil {
			t.Errorf("next_hop = %v, want null", body["next_hop"])
		}
		if _, ok := body["source"]; ok {
			t.Error("source must be omitted when unknown")
		}
		if _, ok := body["route_targets"]; ok {
			t.Error("no route_targets for flow-vpn")
		}
	}
}

func TestFlowTextHook(t *testing.T) {
	old := FlowText
	defer func() { FlowText = old }()
	FlowText = func(string) string { return "destination-ipv4 10.77.0.0/24 protocol =tcp destination-port =80" }
	r := &route.Route{NLRI: route.NLRI{Family: route.FlowVPN, RD: route.NewRDIP(lo, 8)}}
	if got, want := NLRIText(r), "flow destination-ipv4 10.77.0.0/24 protocol =tcp destination-port =80 rd 127.0.0.1:8"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEcomTexts(t *testing.T) {
	for _, tc := range []struct {
		ecom uint64
		want string
	}{
		{uint64(route.MustParseRT("192.0.2.1:5")), "target:192.0.2.1:5"},
		{uint64(route.MustParseRT("4200000000:5")), "target:4200000000L:5"},
		{route.MustParseRT("192.0.2.1:5").Record(), "rtrecord:192.0.2.1:5"},
		{0x030c<<48 | 13, "encap:MPLS-in-UDP"},
		{0x030c<<48 | 99, "encap:encap:UNKNOWN-99"},
		{0x0600<<48 | 1<<40 | 7, "mac-mobility:7:sticky"},
		{0x8008<<48 | 64512<<32 | 98, "redirect:64512:98"},
		{0x1234, "0x0000000000001234"},
	} {
		if got := ecomText(tc.ecom); got != tc.want {
			t.Errorf("ecomText(%#x) = %q, want %q", tc.ecom, got, tc.want)
		}
	}
}

func TestSortRoutes(t *testing.T) {
	mk := func(f route.Family, src *route.Source, p string) *route.Route {
		return &route.Route{NLRI: route.NLRI{Family: f, Prefix: netip.MustParsePrefix(p)}, Source: src}
	}
	rs := []*route.Route{
		mk(route.EVPN, evi2, "10.0.0.1/32"),
		mk(route.IPv4VPN, vrf4, "10.0.0.2/32"),
		mk(route.IPv4VPN, evi2, "10.0.0.9/32"),
		mk(route.IPv4VPN, vrf4, "10.0.0.1/32"),
	}
	SortRoutes(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.NLRI.Family.String()+" "+r.Source.Name+" "+r.NLRI.Prefix.String())
	}
	want := "ipv4/mpls-vpn EVI-2 10.0.0.9/32|ipv4/mpls-vpn VRF-4 10.0.0.1/32|ipv4/mpls-vpn VRF-4 10.0.0.2/32|l2vpn/evpn EVI-2 10.0.0.1/32"
	if strings.Join(got, "|") != want {
		t.Errorf("order:\n got %v\nwant %v", strings.Join(got, "|"), want)
	}
}
