package bgp

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// FuzzReadUpdate feeds arbitrary bytes to the read path (framing, GoBGP
// decoding, RFC 7606 handling, conversion) and re-encodes what it decoded:
// nothing may panic.
func FuzzReadUpdate(f *testing.F) {
	mac, _ := route.ParseMAC("52:54:00:00:00:11")
	flow, _ := FlowFromText("destination 10.0.0.0/24 protocol tcp destination-port ==80")
	attrs := &route.Attrs{RTs: []route.RT{route.MustParseRT("64512:1")}, Encaps: []route.Encap{route.EncapVXLAN},
		PMSI: &route.PMSI{Type: 6, Label: 5000, Endpoint: localIP}, HasRedirect: true, Redirect: route.MustParseRT("64512:2")}
	seeds := []*route.Route{
		localVPNRoute("10.0.0.0/24", 100, "64512:1"),
		{NLRI: route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: 1, MAC: mac, Prefix: netip.MustParsePrefix("10.0.0.1/32")}, Label: 5000, NextHop: localIP, Attrs: attrs},
		{NLRI: route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: 1, Prefix: netip.MustParsePrefix("10.0.0.1/32")}, NextHop: localIP, Attrs: attrs},
		{NLRI: route.NLRI{Family: route.RTC, Origin: 1, Target: route.MustParseRT("64512:1")}, NextHop: localIP},
		{NLRI: route.NLRI{Family: route.FlowVPN, RD: 1, Flow: flow}, Attrs: attrs},
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
		s := &session{dec: decoder{routerID: localIP, families: allFams}, log: slog.New(slog.DiscardHandler)}
		out := newEncoder(allFams, localIP, func(string, ...any) {})
		for {
			msg, perr, err := r.next()
			if err != nil || msg == nil {
				return
			}
			u, ok := msg.Body.(*bgp.BGPUpdate)
			if !ok {
				continue
			}
			res, _ := s.decode(u, perr)
			var items []outMsg
			for _, ev := range res.events {
				items = append(items, outMsg{ev: ev})
			}
			out.encode(items, func([]byte) error { return nil })
		}
	})
}
