package ovs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"bagpipe/internal/route"
)

// Traffic classifiers (spec §7.4 "Traffic classifier → redirect"): the
// traffic of a VRF matching a Flowspec classifier is sent into another
// VRF (a redirection VRF) by flows of the vrf table:
//
//	table=vrf, cookie=VRF, priority=0x9000, <ip|tcp|udp|sctp>, reg0=VRF,
//	  [nw_src=..,][nw_dst=..,][tp_src=v/m,][tp_dst=v/m]
//	  → set_field:<redirect VRF>->reg0, resubmit(,vrf)
//
// above every route flow of the VRF. Port ranges become the minimal set
// of value/mask matches covering them (one flow per combination of a
// source and a destination match). Unlike the reference, any classifier
// works: no ports, one side's ports only, ranges; ports without a
// protocol match TCP and UDP (Flowspec port components apply to both).

// classifierEntry is what AddClassifier installed for one classifier.
type classifierEntry struct {
	redirect uint32
	keys     []string // clsFlow keys, in match order
}

// clsFlow is one classifier flow. Two classifiers may produce the same
// flow (tcp,dport 80 and any protocol,dport 80): the flow stays while one
// of them does, redirecting as the latest added one says.
type clsFlow struct {
	flow   Flow
	owners []route.Classifier // the last one decides the redirection
}

// portMasks returns the minimal set of value/mask matches whose union is
// the port range, pairwise disjoint (greedy largest aligned blocks, which
// is the minimal prefix cover of an interval). The range matching any
// port gives one match-anything entry.
func portMasks(r route.PortRange) []PortMatch {
	r = r.Normalize()
	if r.IsAny() {
		return []PortMatch{{}}
	}
	var out []PortMatch
	lo, hi := uint32(r.Min), uint32(r.Max)
	for lo <= hi {
		size := uint32(1)
		// Grow the block while lo stays aligned on it and it fits.
		for size < 1<<16 && lo&(size*2-1) == 0 && lo+size*2-1 <= hi {
			size *= 2
		}
		out = append(out, PortMatch{Value: uint16(lo), Mask: uint16(0xffff &^ (size - 1))})
		lo += size
	}
	return out
}

// classifierMatches returns the matches of a classifier in the VRF's
// table. An error says what cannot be matched.
func classifierMatches(vrf uint32, c route.Classifier) ([]Match, error) {
	c = c.Normalize()
	for _, p := range []netip.Prefix{c.Src, c.Dst} {
		if p.IsValid() && !p.Addr().Is4() {
			return nil, fmt.Errorf("classifier %s: only IPv4 prefixes are supported", c)
		}
	}
	hasPorts := !c.SrcPort.IsAny() || !c.DstPort.IsAny()
	protos := []uint8{c.Protocol}
	if hasPorts {
		switch _, _, ok := portFields(c.Protocol); {
		case c.Protocol == 0:
			protos = []uint8{ipProtoTCP, ipProtoUDP}
		case !ok:
			return nil, fmt.Errorf("classifier %s: protocol %d has no ports to match", c, c.Protocol)
		}
	}
	srcs, dsts := portMasks(c.SrcPort), portMasks(c.DstPort)
	var out []Match
	for _, proto := range protos {
		for _, sp := range srcs {
			for _, dp := range dsts {
				out = append(out, Match{
					EthType: ethTypeIPv4, Reg0: vrf, IPProto: proto,
					IPSrc: c.Src, IPDst: c.Dst, TPSrc: sp, TPDst: dp,
				})
			}
		}
	}
	return out, nil
}

// classifierFlow is the flow of one classifier match.
func (pl *pipeline) classifierFlow(vrf uint32, m Match, redirect uint32) Flow {
	return Flow{
		Table: pl.vrf, Priority: defaultPriority, Cookie: pl.cookie(vrf), Match: m,
		Actions: []Action{SetField{fReg0, u32(redirect)}, Resubmit{Table: pl.vrf}},
	}
}

// AddClassifier implements dataplane.IPVPNInstance: the VRF's traffic
// matching c goes to the VRF whose id is redirectTo. Adding a classifier
// again with another target replaces its redirection.
func (i *Instance) AddClassifier(ctx context.Context, c route.Classifier, redirectTo uint32) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i.closed {
		return errors.New("VRF dataplane already cleaned up")
	}
	if redirectTo == 0 || redirectTo == i.id() {
		return fmt.Errorf("classifier %s: invalid redirection to VRF %d", c, redirectTo)
	}
	c = c.Normalize()
	if e := i.classifiers[c]; e != nil && e.redirect == redirectTo {
		return nil
	}
	matches, err := classifierMatches(i.id(), c)
	if err != nil {
		return err
	}
	type undo struct {
		key   string
		prev  *clsFlow // nil: the flow is new
		owner []route.Classifier
	}
	var undos []undo
	var msgs [][]byte
	keys := make([]string, 0, len(matches))
	for _, m := range matches {
		f := d.pl.classifierFlow(i.id(), m, redirectTo)
		key := m.String()
		keys = append(keys, key)
		cf := i.clsFlows[key]
		if cf == nil {
			cf = &clsFlow{}
			i.clsFlows[key] = cf
			undos = append(undos, undo{key: key})
		} else {
			undos = append(undos, undo{key: key, prev: &clsFlow{flow: cf.flow}, owner: slices.Clone(cf.owners)})
		}
		cf.flow = f
		cf.owners = append(slices.DeleteFunc(cf.owners, func(o route.Classifier) bool { return o == c }), c)
		msgs = append(msgs, flowMod(0, ofpfcAdd, &cf.flow, 0))
	}
	if err := d.of.Send(ctx, msgs...); err != nil {
		// Put back what was there: delete new flows, restore replaced ones.
		var back [][]byte
		for _, u := range undos {
			cf := i.clsFlows[u.key]
			if u.prev == nil {
				back = append(back, flowMod(0, ofpfcDeleteStrict, &cf.flow, cookieAllOne))
				delete(i.clsFlows, u.key)
				continue
			}
			cf.flow, cf.owners = u.prev.flow, u.owner
			back = append(back, flowMod(0, ofpfcAdd, &cf.flow, 0))
		}
		_ = d.of.Send(ctx, back...)
		return fmt.Errorf("installing classifier %s: %w", c, err)
	}
	i.classifiers[c] = &classifierEntry{redirect: redirectTo, keys: keys}
	return nil
}

// RemoveClassifier implements dataplane.IPVPNInstance: exactly the flows
// of c go (a flow another classifier also produced stays, redirecting as
// that one says).
func (i *Instance) RemoveClassifier(ctx context.Context, c route.Classifier) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	c = c.Normalize()
	e := i.classifiers[c]
	if e == nil {
		i.log.Debug("removing a classifier we don't have", "classifier", c.String())
		return nil
	}
	var msgs [][]byte
	for _, key := range e.keys {
		cf := i.clsFlows[key]
		if cf == nil {
			continue
		}
		wasActive := cf.owners[len(cf.owners)-1] == c
		cf.owners = slices.DeleteFunc(cf.owners, func(o route.Classifier) bool { return o == c })
		switch {
		case len(cf.owners) == 0:
			msgs = append(msgs, flowMod(0, ofpfcDeleteStrict, &cf.flow, cookieAllOne))
			delete(i.clsFlows, key)
		case wasActive:
			next := i.classifiers[cf.owners[len(cf.owners)-1]]
			cf.flow = d.pl.classifierFlow(i.id(), cf.flow.Match, next.redirect)
			msgs = append(msgs, flowMod(0, ofpfcAdd, &cf.flow, 0))
		}
	}
	delete(i.classifiers, c)
	if err := d.of.Send(ctx, msgs...); err != nil {
		return fmt.Errorf("removing classifier %s: %w", c, err)
	}
	return nil
}

// classifierLG is the looking glass view of the classifiers.
func (i *Instance) classifierLG() []any {
	cs := make([]route.Classifier, 0, len(i.classifiers))
	for c := range i.classifiers {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b route.Classifier) int {
		switch sa, sb := a.String(), b.String(); {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	out := make([]any, 0, len(cs))
	for _, c := range cs {
		e := i.classifiers[c]
		out = append(out, map[string]any{
			"classifier":  c.String(),
			"redirect_to": fmt.Sprintf("VRF-%d", e.redirect),
			"matches":     len(e.keys),
		})
	}
	return out
}
