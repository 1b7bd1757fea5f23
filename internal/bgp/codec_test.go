package bgp

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

var (
	localIP = netip.MustParseAddr("127.0.0.1")
	allFams = setOf(route.IPv4VPN, route.EVPN, route.RTC, route.FlowVPN)
)

// encodeEvents encodes events as a session would and returns the messages.
func encodeEvents(t *testing.T, items []outMsg) [][]byte {
	t.Helper()
	enc := newEncoder(allFams, localIP, func(msg string, args ...any) { t.Errorf("encoder: %s %v", msg, args) })
	var out [][]byte
	if _, err := enc.encode(items, func(b []byte) error {
		out = append(out, bytes.Clone(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeMessages parses messages with the session reader and decoder.
func decodeMessages(t *testing.T, msgs [][]byte, routerID netip.Addr) []route.Event {
	t.Helper()
	r := newMsgReader(bytes.NewReader(bytes.Join(msgs, nil)))
	dec := decoder{routerID: routerID, families: allFams}
	var events []route.Event
	for range msgs {
		msg, perr, err := r.next()
		if err != nil || perr != nil {
			t.Fatalf("parse: %v %v", err, perr)
		}
		u, ok := msg.Body.(*bgp.BGPUpdate)
		if !ok {
			t.Fatalf("not an UPDATE: %T", msg.Body)
		}
		if ok, err := bgp.ValidateUpdateMsg(u, presentFamilies(u), false, false, true); !ok {
			t.Fatalf("invalid UPDATE: %v", err)
		}
		events = append(events, dec.update(u, false).events...)
	}
	return events
}

func advertise(routes ...*route.Route) []outMsg {
	var items []outMsg
	for _, r := range routes {
		items = append(items, outMsg{ev: route.Event{Kind: route.Advertise, Route: r}})
	}
	return items
}

// roundTrip checks that routes survive encoding and decoding.
func roundTrip(t *testing.T, routes ...*route.Route) [][]byte {
	t.Helper()
	msgs := encodeEvents(t, advertise(routes...))
	events := decodeMessages(t, msgs, netip.MustParseAddr("10.0.0.99"))
	if len(events) != len(routes) {
		t.Fatalf("got %d events, want %d", len(events), len(routes))
	}
	for i, ev := range events {
		want := *routes[i]
		got := *ev.Route
		if ev.Kind != route.Advertise {
			t.Errorf("route %d: kind %v", i, ev.Kind)
		}
		wa, ga := want.Attrs, got.Attrs
		want.Attrs, got.Attrs = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("route %d:\n got %+v\nwant %+v", i, got, want)
		}
		if wa == nil {
			wa = &route.Attrs{}
		}
		wantAttrs := *wa
		if !wantAttrs.HasLocalPref { // LOCAL_PREF 100 is always sent
			wantAttrs.LocalPref, wantAttrs.HasLocalPref = 100, true
		}
		if !wantAttrs.Equal(ga) {
			t.Errorf("route %d attrs:\n got %+v\nwant %+v", i, *ga, wantAttrs)
		}
	}
	return msgs
}

func TestRoundTripVPNv4(t *testing.T) {
	attrs := &route.Attrs{
		LocalPref: 200, HasLocalPref: true,
		MED: 7, HasMED: true,
		RTs:       []route.RT{route.MustParseRT("64512:77"), route.MustParseRT("10.0.0.1:5"), route.MustParseRT("4200000000:9")},
		RTRecords: []route.RT{route.MustParseRT("64512:78")},
		Encaps:    []route.Encap{route.EncapMPLS, route.EncapGRE, route.EncapVXLAN},
		HashOrder: 3, HasHashOrder: true,
		OtherEcoms: []uint64{0x030b_0000_0000_0064}, // color 100
	}
	r := &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(localIP, 3), Prefix: netip.MustParsePrefix("10.0.0.0/24")},
		Label:   1048575,
		NextHop: netip.MustParseAddr("192.0.2.1"),
		Attrs:   attrs,
	}
	r2 := &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.RD(64512<<32 | 9), Prefix: netip.MustParsePrefix("10.1.2.3/32")},
		Label:   16,
		NextHop: netip.MustParseAddr("192.0.2.1"),
		Attrs:   attrs,
	}
	msgs := roundTrip(t, r, r2)
	if len(msgs) != 1 {
		t.Errorf("two routes sharing attributes took %d UPDATEs", len(msgs))
	}
	// The default encapsulation is never put on the wire.
	roundTrip(t, &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(localIP, 1), Prefix: netip.MustParsePrefix("10.0.0.1/32")},
		Label:   20,
		NextHop: localIP,
		Attrs:   &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}},
	})
}

// TestVPNv4Bytes checks the NLRI bytes of spec §5.5: 10.0.0.1/32, label 18,
// RD 127.0.0.1:0, next hop 8 zero bytes + IPv4.
func TestVPNv4Bytes(t *testing.T) {
	r := &route.Route{
		NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(localIP, 0), Prefix: netip.MustParsePrefix("10.0.0.1/32")},
		Label:   18,
		NextHop: localIP,
	}
	msgs := encodeEvents(t, advertise(r))
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := hex.EncodeToString(msgs[0])
	nlri := "78" + "000121" + "00017f000001" + "0000" + "0a000001"
	mpReach := "0001" + "80" + "0c" + "0000000000000000" + "7f000001" + "00" + nlri
	if !strings.Contains(m, mpReach) {
		t.Errorf("UPDATE %s does not contain MP_REACH value %s", m, mpReach)
	}
	for _, attr := range []string{"40010100", "400200", "40050400000064"} { // ORIGIN IGP, empty AS_PATH, LOCAL_PREF 100
		if !strings.Contains(m, attr) {
			t.Errorf("UPDATE %s lacks %s", m, attr)
		}
	}
	// Withdrawal: MP_UNREACH only, label 0x800000 (RFC 8277).
	msgs = encodeEvents(t, []outMsg{{ev: route.Event{Kind: route.Withdraw, Route: r}}})
	w := hex.EncodeToString(msgs[0])
	if !strings.HasSuffix(w, "0001"+"80"+"78"+"800000"+"00017f000001"+"0000"+"0a000001") {
		t.Errorf("withdrawal %s", w)
	}
	events := decodeMessages(t, msgs, netip.Addr{})
	if len(events) != 1 || events[0].Kind != route.Withdraw || events[0].Route.NLRI != r.NLRI {
		t.Errorf("withdrawal decoded as %+v", events)
	}
}

func TestRoundTripEVPN(t *testing.T) {
	mac, _ := route.ParseMAC("52:54:00:00:00:11")
	attrs := &route.Attrs{
		RTs:    []route.RT{route.MustParseRT("64512:10")},
		Encaps: []route.Encap{route.EncapVXLAN},
	}
	withIP := &route.Route{
		NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: route.NewRDIP(localIP, 1), ETag: 0, MAC: mac, Prefix: netip.MustParsePrefix("10.1.0.1/32")},
		Label:   5000, // a VNI: raw 24-bit value
		NextHop: localIP,
		Attrs:   attrs,
	}
	noIP := &route.Route{
		NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: route.NewRDIP(localIP, 1), ETag: 7, MAC: mac},
		Label:   312<<4 | 1, // an MPLS label as the instance encodes it
		NextHop: localIP,
		Attrs:   attrs,
	}
	msgs := roundTrip(t, withIP, noIP)
	if !strings.Contains(hex.EncodeToString(msgs[0]), "0a010001"+"001388") {
		t.Errorf("VNI 5000 not sent raw: %x", msgs[0])
	}

	imet := &route.Route{
		NLRI:    route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: route.NewRDIP(localIP, 1), Prefix: netip.MustParsePrefix("127.0.0.1/32")},
		NextHop: netip.MustParseAddr("192.0.2.7"),
		Attrs: &route.Attrs{
			RTs:    []route.RT{route.MustParseRT("64512:10")},
			Encaps: []route.Encap{route.EncapVXLAN},
			PMSI:   &route.PMSI{Type: route.PMSIIngressReplication, Label: 5000, Endpoint: netip.MustParseAddr("192.0.2.7")},
		},
	}
	msgs = roundTrip(t, imet)
	if !strings.Contains(hex.EncodeToString(msgs[0]), "c01609"+"00"+"06"+"001388"+"c0000207") {
		t.Errorf("PMSI tunnel attribute not as expected: %x", msgs[0])
	}
}

func TestRoundTripRTC(t *testing.T) {
	rtcAttrs := &route.Attrs{}
	roundTrip(t,
		&route.Route{NLRI: route.NLRI{Family: route.RTC, Origin: 64512, Target: route.MustParseRT("64512:77")}, NextHop: localIP, Attrs: rtcAttrs},
		&route.Route{NLRI: route.NLRI{Family: route.RTC, Origin: 4200000000, Target: route.MustParseRT("1.2.3.4:5")}, NextHop: localIP, Attrs: rtcAttrs},
		&route.Route{NLRI: route.NLRI{Family: route.RTC}, NextHop: localIP, Attrs: rtcAttrs},                // default route (length 0)
		&route.Route{NLRI: route.NLRI{Family: route.RTC, Origin: 64512}, NextHop: localIP, Attrs: rtcAttrs}, // origin only (length 32)
	)
	msgs := encodeEvents(t, advertise(&route.Route{NLRI: route.NLRI{Family: route.RTC, Origin: 64512, Target: route.MustParseRT("64512:77")}, NextHop: localIP}))
	if !strings.Contains(hex.EncodeToString(msgs[0]), "60"+"0000fc00"+"0002fc000000004d") {
		t.Errorf("RTC NLRI: %x", msgs[0])
	}
}

func TestRoundTripFlowVPN(t *testing.T) {
	flow, err := FlowFromText("destination-ipv4 10.77.0.0/24 protocol =tcp destination-port =80")
	if err != nil {
		t.Fatal(err)
	}
	for _, redirect := range []string{"64512:98", "10.0.0.1:98", "4200000000:98"} {
		r := &route.Route{
			NLRI: route.NLRI{Family: route.FlowVPN, RD: route.NewRDIP(localIP, 8), Flow: flow},
			Attrs: &route.Attrs{
				RTs:      []route.RT{route.MustParseRT("64512:97")},
				Redirect: route.MustParseRT(redirect), HasRedirect: true,
			},
		}
		msgs := roundTrip(t, r)
		if redirect == "64512:98" && !strings.Contains(hex.EncodeToString(msgs[0]), "8008fc0000000062") {
			t.Errorf("redirect ecom: %x", msgs[0])
		}
	}
	if got, want := FlowText(flow), "destination-ipv4 10.77.0.0/24 protocol =tcp destination-port =80"; got != want {
		t.Errorf("FlowText = %q, want %q", got, want)
	}
}

func TestFlowText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		textOnly bool // exabgp flag names are not GoBGP syntax
	}{
		{in: "destination 10.0.0.0/8 source 192.168.0.0/16 protocol ==udp", want: "destination-ipv4 10.0.0.0/8 source-ipv4 192.168.0.0/16 protocol =udp"},
		{in: "destination-port >=1000&<=2000", want: "destination-port [ >=1000&<=2000 ]"},
		{in: "protocol ==tcp ==udp source-port =53", want: "protocol [ =tcp =udp ] source-port =53"},
		{in: "destination-ipv4 10.2.0.0/24 protocol =tcp destination-port =8080", want: "destination-ipv4 10.2.0.0/24 protocol =tcp destination-port =8080"},
		{in: "tcp-flags ==S", want: "tcp-flags =syn", textOnly: true},
	} {
		flow, err := FlowFromText(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := FlowText(flow); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		if tc.textOnly {
			continue
		}
		again, err := FlowFromText(FlowText(flow))
		if err != nil || again != flow {
			t.Errorf("%q: text does not parse back: %v", tc.in, err)
		}
	}
	if _, err := FlowFromText("nonsense 1"); err == nil {
		t.Error("bad rule accepted")
	}
}

// TestPacking checks that many routes sharing attributes are packed into
// few UPDATEs, each within the 4096-byte limit, in order.
func TestPacking(t *testing.T) {
	attrs := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}}
	var routes []*route.Route
	for i := range 2000 {
		routes = append(routes, &route.Route{
			NLRI:    route.NLRI{Family: route.IPv4VPN, RD: route.NewRDIP(localIP, 1), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)},
			Label:   uint32(16 + i),
			NextHop: localIP,
			Attrs:   attrs,
		})
	}
	items := advertise(routes...)
	items = append(items, outMsg{eor: route.IPv4VPN})
	msgs := encodeEvents(t, items)
	for _, m := range msgs {
		if len(m) > bgp.BGP_MAX_MESSAGE_LENGTH {
			t.Fatalf("message of %d bytes", len(m))
		}
	}
	if len(msgs) > 2000*15/4000+2 {
		t.Errorf("%d routes took %d UPDATEs", len(routes), len(msgs))
	}
	events := decodeMessages(t, msgs[:len(msgs)-1], netip.Addr{})
	for i, ev := range events {
		if ev.Route.NLRI != routes[i].NLRI || ev.Route.Label != routes[i].Label {
			t.Fatalf("route %d out of order", i)
		}
	}
	eor, err := bgp.ParseBGPMessage(msgs[len(msgs)-1])
	if err != nil {
		t.Fatal(err)
	}
	if ok, f := eor.Body.(*bgp.BGPUpdate).IsEndOfRib(); !ok || f != bgp.RF_IPv4_VPN {
		t.Errorf("last message is not the VPNv4 End-of-RIB")
	}
	// A change of attributes, next hop or kind starts a new UPDATE.
	other := *routes[1]
	other.Attrs = &route.Attrs{}
	msgs = encodeEvents(t, []outMsg{
		{ev: route.Event{Kind: route.Advertise, Route: routes[0]}},
		{ev: route.Event{Kind: route.Advertise, Route: &other}},
		{ev: route.Event{Kind: route.Withdraw, Route: routes[2]}},
		{ev: route.Event{Kind: route.Withdraw, Route: routes[3]}},
	})
	if len(msgs) != 3 {
		t.Errorf("got %d UPDATEs, want 3", len(msgs))
	}
}

// TestDecodeOwnOriginator checks RFC 4456 §8: routes carrying our
// ORIGINATOR_ID are turned into withdrawals.
func TestDecodeOwnOriginator(t *testing.T) {
	rd, _ := bgp.NewRouteDistinguisherIPAddressAS(netip.MustParseAddr("10.0.0.2"), 1)
	n, _ := bgp.NewLabeledVPNIPAddrPrefix(netip.MustParsePrefix("10.9.0.0/16"), *bgp.NewMPLSLabelStack(100), rd)
	mp, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv4_VPN, []bgp.PathNLRI{{NLRI: n}}, netip.MustParseAddr("10.0.0.2"))
	oid, _ := bgp.NewPathAttributeOriginatorId(localIP)
	u := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), oid, mp,
	}, nil).Body.(*bgp.BGPUpdate)
	d := decoder{routerID: localIP, families: allFams}
	res := d.update(u, false)
	if res.ownDropped != 1 || len(res.events) != 1 || res.events[0].Kind != route.Withdraw {
		t.Errorf("got %+v", res)
	}
	d.routerID = netip.MustParseAddr("127.0.0.9")
	if res := d.update(u, false); res.ownDropped != 0 || res.events[0].Kind != route.Advertise || res.events[0].Route.Label != 100 {
		t.Errorf("route of another originator: %+v", res)
	}
}
