package testfabric

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// CounterRule is one nftables counter of the forward path of a namespace:
// the packets forwarded matching every field set (zero fields match
// anything).
type CounterRule struct {
	Name    string // reported by ForwardCounters.Read; shown as the rule comment
	InIf    string // input interface
	Proto   uint8  // IP protocol (6 TCP, 17 UDP, ...)
	DstPort uint16 // TCP/UDP destination port (needs Proto)
	// Accept ends the chain for the packets counted: the following rules
	// only count the others.
	Accept bool
}

// ForwardCounters are nftables counters in the forward hook of a node's
// (or VM's) namespace, programmed through netlink (github.com/google/nftables).
// They count what the namespace routes, e.g. a service VM between two
// ports. The table goes with the namespace.
type ForwardCounters struct {
	conn  *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
}

// AddForwardCounters creates the table "bpcounters" (family ip) with a
// forward chain (policy accept) holding one counting rule per CounterRule.
func (n *Node) AddForwardCounters(rules ...CounterRule) (*ForwardCounters, error) {
	conn, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		return nil, err
	}
	c := &ForwardCounters{conn: conn}
	c.table = conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "bpcounters"})
	policy := nftables.ChainPolicyAccept
	c.chain = conn.AddChain(&nftables.Chain{
		Name: "forward", Table: c.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	for _, r := range rules {
		var exprs []expr.Any
		if r.InIf != "" {
			name := make([]byte, unix.IFNAMSIZ)
			copy(name, r.InIf)
			exprs = append(exprs,
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
		}
		if r.Proto != 0 {
			exprs = append(exprs,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.Proto}})
		}
		if r.DstPort != 0 {
			if r.Proto == 0 {
				return nil, fmt.Errorf("counter %s: a destination port needs a protocol", r.Name)
			}
			exprs = append(exprs,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.DstPort)})
		}
		exprs = append(exprs, &expr.Counter{})
		if r.Accept {
			exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictAccept})
		}
		conn.AddRule(&nftables.Rule{
			Table: c.table, Chain: c.chain, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.Name),
		})
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("%s: programming nftables counters: %w", n, err)
	}
	return c, nil
}

// Read returns the packets counted by each rule, by name.
func (c *ForwardCounters) Read() (map[string]uint64, error) {
	rules, err := c.conn.GetRules(c.table, c.chain)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, r := range rules {
		name, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				out[name] += ctr.Packets
			}
		}
	}
	return out, nil
}
