package main

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// family is a route family the feeder sends.
type family int

const (
	famEVPN  family = iota // E-VPN MAC/IP advertisement routes (RFC 7432 type 2)
	famVPNv4               // VPNv4 /32 routes (RFC 4364)
)

func (f family) String() string {
	if f == famEVPN {
		return "E-VPN"
	}
	return "VPNv4"
}

// vpnType is the vpn_type of the instance that imports the family.
func (f family) vpnType() string {
	if f == famEVPN {
		return "evpn"
	}
	return "ipvpn"
}

// packing says how many routes one UPDATE carries.
type packing int

const (
	onePerUpdate packing = iota // one NLRI per UPDATE (what the reference itself sends)
	packed                      // as many NLRIs as fit in 4,096 bytes, as route reflectors do
)

func (p packing) String() string {
	if p == packed {
		return "packed"
	}
	return "1/UPDATE"
}

// Feed parameters shared by every scenario.
const (
	feedAS      = 64512
	feedRT      = 1    // every fed route carries target:64512:1
	routesPerPE = 500  // consecutive routes come from one remote PE (one next hop, one RD)
	evpnVNI     = 5000 // raw 24-bit label field of the E-VPN routes (VXLAN, RFC 8365)
)

// stream is a pre-encoded sequence of BGP messages: the bytes and the offset
// of the end of each message (so that a writer can cut between messages).
type stream struct {
	buf     []byte
	ends    []int
	updates int
}

func (s *stream) add(msg []byte) {
	s.buf = append(s.buf, msg...)
	s.ends = append(s.ends, len(s.buf))
	s.updates++
}

// cut returns the largest message boundary in (from, from+max], or from if
// the next message is longer than max.
func (s *stream) cut(from, max int) int {
	limit := from + max
	i := sort.SearchInts(s.ends, limit+1) // first end > limit
	if i == 0 {
		return from
	}
	if e := s.ends[i-1]; e > from {
		return e
	}
	return from
}

// feed is the advertisement and the withdrawal of n routes of a family.
type feed struct {
	fam  family
	pack packing
	n    int
	adv  stream
	wdr  stream
}

// pe returns the next hop (and RD administrator) of route i.
func pe(i int) netip.Addr {
	p := i/routesPerPE + 1
	return netip.AddrFrom4([4]byte{172, 16, byte(p >> 8), byte(p)})
}

// hostAddr returns the i-th host address of the feed (10.0.0.1 onwards).
func hostAddr(i int) netip.Addr {
	v := uint32(10<<24) + uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// feedMAC returns the MAC address of E-VPN route i.
func feedMAC(i int) string {
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

// feedNLRI returns the GoBGP NLRI of route i (wd: for a withdrawal).
func feedNLRI(f family, i int, wd bool, rds map[netip.Addr]bgp.RouteDistinguisherInterface) (bgp.NLRI, error) {
	nh := pe(i)
	rd := rds[nh]
	if rd == nil {
		x, err := bgp.NewRouteDistinguisherIPAddressAS(nh, 1)
		if err != nil {
			return nil, err
		}
		rd = x
		rds[nh] = rd
	}
	if f == famEVPN {
		return bgp.NewEVPNMacIPAdvertisementRoute(rd, bgp.EthernetSegmentIdentifier{}, 0, feedMAC(i), hostAddr(i), []uint32{evpnVNI})
	}
	label := uint32(16 + i%100000)
	if wd {
		label = bgp.WITHDRAW_LABEL
	}
	return bgp.NewLabeledVPNIPAddrPrefix(netip.PrefixFrom(hostAddr(i), 32), *bgp.NewMPLSLabelStack(label), rd)
}

func (f family) bgpFamily() bgp.Family {
	if f == famEVPN {
		return bgp.RF_EVPN
	}
	return bgp.RF_IPv4_VPN
}

// routeTarget returns target:64512:n.
func routeTarget(n uint32) bgp.ExtendedCommunityInterface {
	return bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, feedAS, n, true)
}

// feedAttrs returns the path attributes (other than MP_REACH) of the routes
// of a family carrying target:64512:rt: ORIGIN IGP, empty AS_PATH,
// LOCAL_PREF 100, the route target and the encapsulation the dummy
// dataplanes accept (VXLAN for E-VPN, MPLS for VPNv4).
func feedAttrs(f family, rt uint32) []bgp.PathAttributeInterface {
	encap := bgp.TUNNEL_TYPE_MPLS
	if f == famEVPN {
		encap = bgp.TUNNEL_TYPE_VXLAN
	}
	return []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeLocalPref(100),
		bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{routeTarget(rt), bgp.NewEncapExtended(encap)}),
	}
}

// encoder builds UPDATEs of one family with GoBGP's packet library.
type encoder struct {
	fam   family
	attrs []bgp.PathAttributeInterface
	alen  int
}

func newEncoder(f family, rt uint32) *encoder {
	e := &encoder{fam: f, attrs: feedAttrs(f, rt)}
	for _, a := range e.attrs {
		e.alen += a.Len()
	}
	return e
}

// update serialises one UPDATE advertising (or withdrawing) nlris, all with
// next hop nh.
func (e *encoder) update(nlris []bgp.PathNLRI, nh netip.Addr, wd bool) ([]byte, error) {
	var attrs []bgp.PathAttributeInterface
	if wd {
		mp, err := bgp.NewPathAttributeMpUnreachNLRI(e.fam.bgpFamily(), nlris)
		if err != nil {
			return nil, err
		}
		attrs = []bgp.PathAttributeInterface{mp}
	} else {
		mp, err := bgp.NewPathAttributeMpReachNLRI(e.fam.bgpFamily(), nlris, nh)
		if err != nil {
			return nil, err
		}
		attrs = append([]bgp.PathAttributeInterface{mp}, e.attrs...)
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, nil).Serialize()
}

// fixedLen is the size of an UPDATE of this encoder without NLRIs.
func (e *encoder) fixedLen(wd bool) int {
	n := bgp.BGP_HEADER_LENGTH + 4 + 4 + 3 // header, two length fields, MP attribute header (extended length) + AFI/SAFI
	if wd {
		return n
	}
	n += e.alen + 2 // next hop length + reserved
	if e.fam == famVPNv4 {
		return n + 12
	}
	return n + 4
}

// encodeRange encodes routes [from, to) of a family into s, one per UPDATE
// or packed (routes of one PE share an UPDATE up to 4,096 bytes).
func encodeRange(s *stream, e *encoder, pack packing, from, to int, wd bool) error {
	rds := map[netip.Addr]bgp.RouteDistinguisherInterface{}
	var nlris []bgp.PathNLRI
	size := e.fixedLen(wd)
	var nh netip.Addr
	flush := func() error {
		if len(nlris) == 0 {
			return nil
		}
		b, err := e.update(nlris, nh, wd)
		if err != nil {
			return err
		}
		if len(b) > bgp.BGP_MAX_MESSAGE_LENGTH {
			return fmt.Errorf("UPDATE of %d bytes", len(b))
		}
		s.add(b)
		nlris, size = nlris[:0], e.fixedLen(wd)
		return nil
	}
	for i := from; i < to; i++ {
		n, err := feedNLRI(e.fam, i, wd, rds)
		if err != nil {
			return err
		}
		if h := pe(i); h != nh || pack == onePerUpdate || size+n.Len() > bgp.BGP_MAX_MESSAGE_LENGTH {
			if err := flush(); err != nil {
				return err
			}
			nh = h
		}
		nlris = append(nlris, bgp.PathNLRI{NLRI: n})
		size += n.Len()
	}
	return flush()
}

// buildFeed encodes the advertisement and withdrawal of n routes.
func buildFeed(f family, pack packing, n int) (*feed, error) {
	fd := &feed{fam: f, pack: pack, n: n}
	e := newEncoder(f, feedRT)
	if err := encodeRange(&fd.adv, e, pack, 0, n, false); err != nil {
		return nil, err
	}
	if err := encodeRange(&fd.wdr, e, pack, 0, n, true); err != nil {
		return nil, err
	}
	return fd, nil
}
