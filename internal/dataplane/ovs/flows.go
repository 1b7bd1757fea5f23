package ovs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// Priorities (spec §7.4): our flows sit above OVS's default 0x8000; route
// flows get 0x9000 - (128 - prefix length), so that the longest prefix
// wins; the fallback is below any route.
const (
	defaultPriority  = 0x9000
	arpPriority      = defaultPriority + 1
	fallbackPriority = defaultPriority - 0x80 - 0x80
)

// Cookies: every flow of ours carries cookieTag in its top 16 bits, the
// generation of the run that installed it in the next 16 bits, and the VRF
// id (0 for the driver's own flows) in its low 32 bits, so that a VRF's
// flows are deleted with cookie=<tag|id>/0xffff0000ffffffff (any
// generation), a start-up reconciliation deletes exactly ours with
// cookie=<tag>/0xffff000000000000, and the sweep after an adoption deletes
// what an earlier run installed and this one did not install again with
// cookie=<tag|generation>/0xffffffff00000000 (adopt.go). The generation is
// 0 unless the run adopted the flows of an earlier one.
const (
	cookieTag     = uint64(0x4250) << 48 // "BP"
	cookieTagMask = uint64(0xffff) << 48
	cookieGenMask = uint64(0xffff) << 32
	cookieVRFMask = uint64(0xffffffff)
	// cookieAnyGen selects the flows of one VRF id whatever their
	// generation.
	cookieAnyGen = cookieTagMask | cookieVRFMask
)

// Group ids of ours: groupTag in the top byte, a counter below.
const (
	groupTag     = uint32(0x42) << 24
	groupTagMask = uint32(0xff) << 24
)

// cookieOf is the cookie of the flows of VRF id (0: the driver's)
// installed by generation gen.
func cookieOf(gen uint16, id uint32) uint64 { return cookieTag | uint64(gen)<<32 | uint64(id) }

// cookieVRF and cookieGen split a cookie of ours.
func cookieVRF(c uint64) uint32 { return uint32(c & cookieVRFMask) }
func cookieGen(c uint64) uint16 { return uint16(c >> 32) }

// gatewayMAC is the MAC address the ARP responder and the incoming flows
// use for the VRF gateway (the reference's constant).
var gatewayMAC = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x43, 0x64}

// pipeline holds what the flow computation needs to know of the driver.
type pipeline struct {
	input, encapIn, vrf uint8
	mplsInPort          uint32 // GRE tunnel port, or the bare MPLS interface
	useGRE              bool
	mplsIfMAC           net.HardwareAddr // bare MPLS: source MAC
	vxlan               bool
	vxlanPort           uint32
	arpResponder        bool
	proxyARP            bool
	local               netip.Addr
	gen                 uint16 // generation of the flows (cookies)
}

// cookie is the cookie of the flows of a VRF (0: the driver's own).
func (pl *pipeline) cookie(vrf uint32) uint64 { return cookieOf(pl.gen, vrf) }

// routePriority is the priority of the route flow of a prefix.
func routePriority(p netip.Prefix) uint16 {
	return uint16(defaultPriority - (128 - p.Bits()))
}

// driverFlows are the flows of the driver itself: traffic from the MPLS
// (GRE or bare) port and the VXLAN port goes to the encap_in table.
func (pl *pipeline) driverFlows() []Flow {
	out := []Flow{{
		Table: pl.input, Priority: defaultPriority, Cookie: pl.cookie(0),
		Match:   Match{InPort: pl.mplsInPort, EthType: ethTypeMPLS},
		Actions: []Action{Resubmit{Table: pl.encapIn}},
	}}
	if pl.vxlan {
		out = append(out, Flow{
			Table: pl.input, Priority: defaultPriority, Cookie: pl.cookie(0),
			Match:   Match{InPort: pl.vxlanPort},
			Actions: []Action{Resubmit{Table: pl.encapIn}},
		})
	}
	return out
}

// vlanActions returns the actions that tag traffic towards a port.
func pushVLAN(vlan uint16) []Action {
	if vlan == 0 {
		return nil
	}
	return []Action{PushVLAN(vlan)}
}

// portFlows classifies the traffic of a port into the VRF (from-port
// direction): ARP and IP go to the VRF table with reg0 = VRF id and
// in_port reset (so that traffic may go back out of the same port), and,
// with the ARP responder, ARP requests for the gateway (any IP with
// proxy_arp) are answered right here, back to the port they came from.
func (pl *pipeline) portFlows(vrf uint32, gw netip.Addr, ofport uint32, vlan uint16) []Flow {
	var pre []Action
	if vlan != 0 {
		pre = []Action{PopVLAN{}}
	}
	classify := append(pre, SetField{nxInPort, u16(0)}, SetField{fReg0, u32(vrf)}, Resubmit{Table: pl.vrf})
	var out []Flow
	for _, et := range []uint16{ethTypeIPv4, ethTypeARP} {
		out = append(out, Flow{
			Table: pl.input, Priority: defaultPriority, Cookie: pl.cookie(vrf),
			Match:   Match{InPort: ofport, VLAN: vlan, EthType: et},
			Actions: slices.Clone(classify),
		})
	}
	if pl.arpResponder && (pl.proxyARP || gw.IsValid()) {
		m := Match{InPort: ofport, VLAN: vlan, EthType: ethTypeARP, EthDst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ARPOp: 1}
		if !pl.proxyARP {
			m.ARPTPA = gw
		}
		out = append(out, Flow{
			Table: pl.input, Priority: arpPriority, Cookie: pl.cookie(vrf), Match: m,
			Actions: []Action{
				Move{nxEthSrc, nxEthDst},
				SetField{fEthSrc, gatewayMAC},
				SetField{fARPOp, u16(2)},
				Move{nxARPSHA, nxARPTHA},
				Move{nxARPTPA, nxReg1},
				Move{nxARPSPA, nxARPTPA},
				Move{nxReg1, nxARPSPA},
				SetField{fARPSHA, gatewayMAC},
				Output(ofppInPort),
			},
		})
	}
	return out
}

// toPortActions delivers a decapsulated IP packet to a VM port.
func toPortActions(mac net.HardwareAddr, ofport uint32, vlan uint16) []Action {
	acts := pushVLAN(vlan)
	return append(acts, SetField{fEthSrc, gatewayMAC}, SetField{fEthDst, mac}, Output(ofport))
}

// incomingFlows deliver the traffic received with a port label (to-port
// direction): MPLS label pop, or VXLAN VNI = label.
func (pl *pipeline) incomingFlows(vrf, label uint32, mac net.HardwareAddr, ofport uint32, vlan uint16) []Flow {
	out := []Flow{{
		Table: pl.encapIn, Priority: defaultPriority, Cookie: pl.cookie(vrf),
		Match:   Match{EthType: ethTypeMPLS, MPLSLabel: label, MPLSBOS: true},
		Actions: append([]Action{PopMPLS{ethTypeIPv4}}, toPortActions(mac, ofport, vlan)...),
	}}
	if pl.vxlan {
		out = append(out, Flow{
			Table: pl.encapIn, Priority: defaultPriority, Cookie: pl.cookie(vrf),
			Match:   Match{InPort: pl.vxlanPort, HasTunID: true, TunID: uint64(label)},
			Actions: toPortActions(mac, ofport, vlan),
		})
	}
	return out
}

// fallbackFlow sends what no route matches to the fallback port.
func (pl *pipeline) fallbackFlow(vrf uint32, fb *dataplane.Fallback, vlan uint16) (Flow, error) {
	src, err := net.ParseMAC(fb.SrcMAC)
	if err != nil {
		return Flow{}, fmt.Errorf("fallback src_mac %q: %w", fb.SrcMAC, err)
	}
	dst, err := net.ParseMAC(fb.DstMAC)
	if err != nil {
		return Flow{}, fmt.Errorf("fallback dst_mac %q: %w", fb.DstMAC, err)
	}
	if fb.OVSPortNumber <= 0 {
		return Flow{}, fmt.Errorf("fallback specified without 'ovs_port_number'")
	}
	acts := append(pushVLAN(vlan), SetField{fEthSrc, src}, SetField{fEthDst, dst}, Output(uint32(fb.OVSPortNumber)))
	return Flow{
		Table: pl.vrf, Priority: fallbackPriority, Cookie: pl.cookie(vrf),
		Match: Match{Reg0: vrf}, Actions: acts,
	}, nil
}

// routeFlow looks a destination prefix up in the VRF and sends to its
// next hop group.
func (pl *pipeline) routeFlow(vrf uint32, p netip.Prefix, group uint32) Flow {
	return Flow{
		Table: pl.vrf, Priority: routePriority(p), Cookie: pl.cookie(vrf),
		Match:   Match{EthType: ethTypeIPv4, Reg0: vrf, IPDst: p},
		Actions: []Action{GroupAction(group)},
	}
}

// useVXLAN tells whether traffic to a remote goes as VXLAN.
func (pl *pipeline) useVXLAN(r dataplane.Remote) bool {
	return pl.vxlan && slices.Contains(r.Encaps, route.EncapVXLAN)
}

// bucketActions are the actions of a next hop's bucket: TTL decrement
// when the prefix is outside the VRF subnet, label push (or VNI), and the
// encapsulation towards the PE. peMAC is needed with bare MPLS only.
func (pl *pipeline) bucketActions(r dataplane.Remote, subnet netip.Prefix, peMAC net.HardwareAddr) []Action {
	var acts []Action
	if !subnet.IsValid() || !subnet.Contains(r.Prefix.Addr()) || r.Prefix.Bits() < subnet.Bits() {
		acts = append(acts, DecTTL{})
	}
	vx := pl.useVXLAN(r)
	if vx {
		acts = append(acts, SetField{fTunnelID, u64(uint64(r.Label))})
	} else {
		acts = append(acts, PushMPLS{}, SetField{fMPLSLabel, u32(r.Label)})
	}
	switch {
	case r.PE == pl.local && vx:
		acts = append(acts, Resubmit{InPort: pl.vxlanPort, Table: pl.encapIn})
	case r.PE == pl.local:
		acts = append(acts, Resubmit{InPort: pl.mplsInPort, Table: pl.encapIn})
	case vx:
		acts = append(acts, SetField{fTunDst, r.PE.AsSlice()}, Output(pl.vxlanPort))
	case pl.useGRE:
		acts = append(acts, SetField{fTunDst, r.PE.AsSlice()}, Output(pl.mplsInPort))
	default:
		acts = append(acts, SetField{fEthSrc, pl.mplsIfMAC}, SetField{fEthDst, peMAC}, Output(pl.mplsInPort))
	}
	return acts
}

// needsPEMAC tells whether the bucket of a remote needs the PE's MAC.
func (pl *pipeline) needsPEMAC(r dataplane.Remote) bool {
	return !pl.useGRE && r.PE != pl.local && !pl.useVXLAN(r)
}

// nextHop identifies a next hop of a prefix: label and PE (the reference
// adds the encapsulations, but one (label, PE) path has one set of them and
// removals do not carry them).
type nextHop struct {
	label uint32
	pe    netip.Addr
}

func nextHopOf(r dataplane.Remote) nextHop { return nextHop{label: r.Label, pe: r.PE} }

// allocBucket returns the bucket id for a next hop: its consistent hash
// order when free, else the lowest free id.
func allocBucket(used map[uint32]bool, hint uint32) uint32 {
	if hint <= maxBucketID && !used[hint] {
		return hint
	}
	for id := uint32(0); ; id++ {
		if !used[id] {
			return id
		}
	}
}
