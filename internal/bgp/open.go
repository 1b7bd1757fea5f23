package bgp

import (
	"net/netip"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/route"
)

// asTrans is the 2-octet AS sent in OPEN when the local AS does not fit
// (RFC 6793).
const asTrans = 23456

// familySet is a set of route families.
type familySet uint8

func setOf(fams ...route.Family) familySet {
	var s familySet
	for _, f := range fams {
		s |= 1 << f
	}
	return s
}

func (s familySet) has(f route.Family) bool { return s&(1<<f) != 0 }

// list returns the families of s in the order bagpipe announces them.
func (s familySet) list() []route.Family {
	var out []route.Family
	for _, f := range route.Families {
		if s.has(f) {
			out = append(out, f)
		}
	}
	return out
}

// vpnFamilies are the families filtered by RT Constraint.
var vpnFamilies = setOf(route.IPv4VPN, route.EVPN, route.FlowVPN)

func bgpFamily(f route.Family) bgp.Family {
	afi, safi := f.AFISAFI()
	return bgp.NewFamily(afi, safi)
}

func routeFamily(f bgp.Family) route.Family { return route.FamilyOf(f.Afi(), f.Safi()) }

// localFamilies returns the families we announce.
func localFamilies(cfg *Config) familySet {
	s := setOf(route.IPv4VPN, route.EVPN, route.FlowVPN)
	if cfg.EnableRTC {
		s |= setOf(route.RTC)
	}
	return s
}

// openMessage builds our OPEN: version 4, our AS (AS_TRANS when it needs 4
// octets), hold time, BGP identifier, and the Multiprotocol and 4-octet AS
// capabilities, plus Graceful Restart when enabled (with the Restart State
// bit when restarting is set). Nothing else is announced: we implement
// nothing else.
func openMessage(cfg *Config, restarting bool) *bgp.BGPMessage {
	var caps []bgp.ParameterCapabilityInterface
	for _, f := range localFamilies(cfg).list() {
		caps = append(caps, bgp.NewCapMultiProtocol(bgpFamily(f)))
	}
	if cfg.GracefulRestart {
		preserved := setOf(cfg.ForwardingPreserved...)
		var tuples []*bgp.CapGracefulRestartTuple
		for _, f := range localFamilies(cfg).list() {
			tuples = append(tuples, bgp.NewCapGracefulRestartTuple(bgpFamily(f), preserved.has(f)))
		}
		// N bit: we implement RFC 8538 (NOTIFICATIONs other than Hard
		// Reset keep the routes too).
		caps = append(caps, bgp.NewCapGracefulRestart(restarting, true, cfg.RestartTime, tuples))
	}
	caps = append(caps, bgp.NewCapFourOctetASNumber(cfg.AS))
	myAS := uint16(asTrans)
	if cfg.AS <= 0xffff {
		myAS = uint16(cfg.AS)
	}
	msg, _ := bgp.NewBGPOpenMessage(myAS, cfg.HoldTime, cfg.LocalAddress,
		[]bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	return msg
}

// negotiated is what an OPEN exchange settled.
type negotiated struct {
	peerAS   uint32
	peerID   netip.Addr
	holdTime uint16    // 0: no keepalives, no hold timer
	families familySet // ours ∩ the peer's
	missing  []route.Family
	as4      bool // the peer supports 4-octet AS numbers
	// gr is the peer's Graceful Restart capability, nil when the peer did
	// not announce it or when we do not do graceful restart.
	gr *peerGR
}

// peerGR is what a peer announced in its Graceful Restart capability.
type peerGR struct {
	restartTime  uint16    // seconds
	restarting   bool      // R bit: the peer restarted
	notification bool      // N bit (RFC 8538), announced by both sides
	families     familySet // families whose routes the peer wants kept
	forwarding   familySet // of which the peer preserved its forwarding state (F bit)
}

// rtcActive reports whether RT Constraint is negotiated.
func (n *negotiated) rtcActive() bool { return n.families.has(route.RTC) }

// negotiate validates the peer's OPEN (version, AS, identifier, hold time)
// and computes the session parameters. The error is the NOTIFICATION to
// send.
func negotiate(open *bgp.BGPOpen, cfg *Config) (negotiated, *bgp.MessageError) {
	var n negotiated
	if open.Version != 4 {
		return n, newMessageError(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_UNSUPPORTED_VERSION_NUMBER,
			putUint16(4), "unsupported BGP version")
	}
	as, err := bgp.ValidateOpenMsg(open, cfg.AS, cfg.AS, cfg.LocalAddress)
	if err != nil {
		return n, asMessageError(err, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, 0)
	}
	n.peerAS, n.peerID = as, open.ID
	n.holdTime = min(cfg.HoldTime, open.HoldTime)

	var peer familySet
	for _, p := range open.OptParams {
		pc, ok := p.(*bgp.OptionParameterCapability)
		if !ok {
			continue
		}
		for _, c := range pc.Capability {
			switch c := c.(type) {
			case *bgp.CapMultiProtocol:
				if f := routeFamily(c.CapValue); f != route.FamilyAny {
					peer |= setOf(f)
				}
			case *bgp.CapFourOctetASNumber:
				n.as4 = true
			case *bgp.CapGracefulRestart:
				if !cfg.GracefulRestart {
					continue
				}
				gr := &peerGR{
					restartTime:  c.Time,
					restarting:   c.Flags&0x08 != 0,
					notification: c.Flags&0x04 != 0,
				}
				for _, t := range c.Tuples {
					if f := route.FamilyOf(t.AFI, t.SAFI); f != route.FamilyAny {
						gr.families |= setOf(f)
						if t.Flags&0x80 != 0 {
							gr.forwarding |= setOf(f)
						}
					}
				}
				n.gr = gr
			}
		}
	}
	local := localFamilies(cfg)
	n.families = local & peer
	if n.gr != nil {
		n.gr.families &= n.families
		n.gr.forwarding &= n.families
	}
	for _, f := range local.list() {
		if !peer.has(f) {
			n.missing = append(n.missing, f)
		}
	}
	return n, nil
}
