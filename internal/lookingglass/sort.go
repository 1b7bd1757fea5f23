package lookingglass

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"bagpipe/internal/route"
)

// SortRoutes orders routes for display: by family, source name, then NLRI.
func SortRoutes(rs []*route.Route) {
	slices.SortFunc(rs, compareRoutes)
}

func compareRoutes(a, b *route.Route) int {
	x, y := &a.NLRI, &b.NLRI
	if c := cmp.Compare(x.Family, y.Family); c != 0 {
		return c
	}
	if a.Source != b.Source {
		if c := strings.Compare(sourceName(a), sourceName(b)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(x.RD, y.RD); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Type, y.Type); c != 0 {
		return c
	}
	xa, ya := x.Prefix.Addr(), y.Prefix.Addr()
	if xa.Is4() && ya.Is4() {
		if c := cmp.Compare(addr4(xa), addr4(ya)); c != 0 {
			return c
		}
	} else if c := xa.Compare(ya); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits()); c != 0 {
		return c
	}
	if x.MAC != y.MAC {
		return slices.Compare(x.MAC[:], y.MAC[:])
	}
	if c := cmp.Compare(x.ETag, y.ETag); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Origin, y.Origin); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Target, y.Target); c != 0 {
		return c
	}
	return strings.Compare(x.Flow, y.Flow)
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func sourceName(r *route.Route) string {
	if r.Source == nil {
		return ""
	}
	return r.Source.Name
}
