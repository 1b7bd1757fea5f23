package route

import (
	"fmt"
	"net/netip"
	"strings"
)

// PortRange is an inclusive range of TCP/UDP/SCTP ports. The zero value
// matches any port; so does {0, 65535} (Normalize turns it into the zero
// value, so that equal classifiers compare equal).
type PortRange struct{ Min, Max uint16 }

// IsAny reports whether the range matches every port.
func (p PortRange) IsAny() bool { return p == PortRange{} || (p.Min == 0 && p.Max == 0xffff) }

// Normalize returns the canonical form of p.
func (p PortRange) Normalize() PortRange {
	if p.IsAny() {
		return PortRange{}
	}
	return p
}

func (p PortRange) String() string {
	switch {
	case p.IsAny():
		return "any"
	case p.Min == p.Max:
		return fmt.Sprint(p.Min)
	}
	return fmt.Sprintf("%d:%d", p.Min, p.Max)
}

// Classifier selects the traffic a Flowspec redirect-to-VRF sends into
// another VRF (spec §6.8 "classifier", §7.4 traffic classifiers). It is
// comparable: equal classifiers are the same dataplane rule.
type Classifier struct {
	Src, Dst         netip.Prefix // the zero Prefix matches any address
	Protocol         uint8        // IP protocol number; 0 matches any
	SrcPort, DstPort PortRange
}

// Normalize returns the canonical form of c (masked prefixes, canonical
// port ranges).
func (c Classifier) Normalize() Classifier {
	if c.Src.IsValid() {
		c.Src = c.Src.Masked()
	}
	if c.Dst.IsValid() {
		c.Dst = c.Dst.Masked()
	}
	c.SrcPort = c.SrcPort.Normalize()
	c.DstPort = c.DstPort.Normalize()
	return c
}

func (c Classifier) String() string {
	var b strings.Builder
	if c.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", c.Src)
	}
	if c.Dst.IsValid() {
		fmt.Fprintf(&b, " dst %s", c.Dst)
	}
	if c.Protocol != 0 {
		fmt.Fprintf(&b, " proto %d", c.Protocol)
	}
	if !c.SrcPort.IsAny() {
		fmt.Fprintf(&b, " sport %s", c.SrcPort)
	}
	if !c.DstPort.IsAny() {
		fmt.Fprintf(&b, " dport %s", c.DstPort)
	}
	if b.Len() == 0 {
		return "any"
	}
	return b.String()[1:]
}
