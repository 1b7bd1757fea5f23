package testfabric

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Family is a BGP address family (AFI/SAFI).
type Family struct {
	AFI  uint16
	SAFI uint8
}

// The families bagpipe speaks.
var (
	FamilyIPv4VPN         = Family{AFI: 1, SAFI: 128} // IPv4 MPLS-VPN (RFC 4364)
	FamilyEVPN            = Family{AFI: 25, SAFI: 70} // L2VPN EVPN (RFC 7432)
	FamilyRTC             = Family{AFI: 1, SAFI: 132} // RT-Constraint (RFC 4684)
	FamilyIPv4FlowspecVPN = Family{AFI: 1, SAFI: 134} // IPv4 Flowspec-VPN (RFC 8955)
)

// DefaultFamilies are the families a route reflector is configured with when
// RRConfig.Families is empty (FamilyRTC is added when RRConfig.RTC is set).
var DefaultFamilies = []Family{FamilyIPv4VPN, FamilyEVPN, FamilyIPv4FlowspecVPN}

// ErrUnsupportedFamily is returned for a family a daemon cannot handle.
var ErrUnsupportedFamily = errors.New("address family not supported by this daemon")

// String returns a readable name such as "ipv4-vpn" or "1/129".
func (f Family) String() string {
	switch f {
	case FamilyIPv4VPN:
		return "ipv4-vpn"
	case FamilyEVPN:
		return "l2vpn-evpn"
	case FamilyRTC:
		return "rtc"
	case FamilyIPv4FlowspecVPN:
		return "ipv4-flowspec-vpn"
	}
	return fmt.Sprintf("%d/%d", f.AFI, f.SAFI)
}

// Route is one path of a RIB, normalised across daemons for assertions.
type Route struct {
	Family Family
	// RD is the route distinguisher as "admin:assigned" ("" for RTC).
	RD string
	// Prefix is the IPv4 prefix of an IPv4 VPN route.
	Prefix netip.Prefix
	// EVPN holds the EVPN NLRI fields of an EVPN route.
	EVPN *EVPNRoute
	// NLRI is the daemon's own text for the NLRI (gobgp's destination
	// key, FRR's prefix); the only NLRI field set for RTC and flowspec.
	NLRI string
	// NextHop is the BGP next hop.
	NextHop netip.Addr
	// Labels are the MPLS labels (or VNIs) of the NLRI.
	Labels []uint32
	// RouteTargets holds the route-target extended communities as
	// "admin:assigned" (no "RT:" prefix).
	RouteTargets []string
	// Best reports whether the path is the best path.
	Best bool
	// From is the neighbor the path came from; invalid for local paths.
	From netip.Addr
	// Raw is the daemon's JSON for this path, for anything not normalised.
	Raw json.RawMessage
}

// EVPNRoute holds the fields of an EVPN NLRI that matter for bagpipe.
type EVPNRoute struct {
	// Type is the EVPN route type (2 MAC/IP advertisement, 3 inclusive
	// multicast, ...).
	Type uint8
	// ETag is the Ethernet tag.
	ETag uint32
	// MAC is the MAC address of a type-2 route, lower-case.
	MAC string
	// IP is the IP of a type-2 route or the originator IP of a type-3
	// route; invalid when absent.
	IP netip.Addr
}

// String formats a route for test messages.
func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s rd=%s", r.Family, r.RD)
	switch {
	case r.Prefix.IsValid():
		fmt.Fprintf(&b, " %s", r.Prefix)
	case r.EVPN != nil:
		fmt.Fprintf(&b, " evpn-type%d etag=%d", r.EVPN.Type, r.EVPN.ETag)
		if r.EVPN.MAC != "" {
			fmt.Fprintf(&b, " mac=%s", r.EVPN.MAC)
		}
		if r.EVPN.IP.IsValid() {
			fmt.Fprintf(&b, " ip=%s", r.EVPN.IP)
		}
	default:
		fmt.Fprintf(&b, " %s", r.NLRI)
	}
	fmt.Fprintf(&b, " nh=%s labels=%v rts=%v best=%v from=%s", r.NextHop, r.Labels, r.RouteTargets, r.Best, r.From)
	return b.String()
}

// HasRT reports whether the route carries route target rt ("asn:nn").
func (r Route) HasRT(rt string) bool {
	rt = strings.TrimPrefix(rt, "RT:")
	for _, x := range r.RouteTargets {
		if x == rt {
			return true
		}
	}
	return false
}

// PrefixCounts are per-family prefix counters of a neighbor.
type PrefixCounts struct {
	// Received counts prefixes received from the neighbor (for FRR,
	// which has no pre-policy counter without soft-reconfiguration, the
	// accepted count).
	Received int
	// Accepted counts received prefixes accepted by import policy.
	Accepted int
	// Advertised counts prefixes advertised to the neighbor.
	Advertised int
}

// NeighborState is the state of one BGP neighbor as seen by a daemon.
type NeighborState struct {
	Addr netip.Addr
	// State is the lower-case FSM state: "idle", "connect", "active",
	// "opensent", "openconfirm" or "established".
	State string
	// Families holds the counters of every family configured (and for
	// gobgpd, negotiated) with the neighbor.
	Families map[Family]PrefixCounts
	// Raw is the daemon's JSON for the neighbor.
	Raw json.RawMessage
}

// Established reports whether the session is established.
func (s *NeighborState) Established() bool { return s.State == "established" }

// RouteReflector is what tests need from a route reflector, whichever
// implementation runs it.
type RouteReflector interface {
	// Node returns the node the route reflector runs on.
	Node() *Node
	// Addr returns the address the route reflector listens on for BGP.
	Addr() netip.Addr
	// Families returns the families configured with the clients.
	Families() []Family
	// Stop stops the daemon (SIGTERM, then SIGKILL after a grace period).
	Stop() error
	// Kill kills the daemon with SIGKILL (no NOTIFICATION to the peers).
	Kill() error
	// Restart stops the daemon if it runs and starts it again with the
	// same configuration, waiting until it answers queries.
	Restart() error
	// Running reports whether the daemon process is alive.
	Running() bool
	// WaitEstablished waits until the session with peer is established.
	WaitEstablished(ctx context.Context, peer netip.Addr) error
	// Neighbor returns the state and counters of one neighbor.
	Neighbor(ctx context.Context, peer netip.Addr) (*NeighborState, error)
	// RIB returns every path of the Loc-RIB of one family.
	RIB(ctx context.Context, f Family) ([]Route, error)
	// AdjRIBOut returns the paths advertised to peer for one family.
	AdjRIBOut(ctx context.Context, peer netip.Addr, f Family) ([]Route, error)
}

// RRConfig configures a route reflector.
type RRConfig struct {
	// AS is the (iBGP) autonomous system number; required.
	AS uint32
	// RouterID defaults to the node's IP.
	RouterID netip.Addr
	// ClusterID defaults to RouterID.
	ClusterID netip.Addr
	// Clients are the route-reflector clients; the RR is passive and
	// waits for them to connect.
	Clients []netip.Addr
	// RTC adds the RT-Constraint family.
	RTC bool
	// Families overrides DefaultFamilies. Families a daemon cannot do
	// (FRR: RTC and flowspec-VPN) are dropped with a log line; the
	// RouteReflector's Families method reports what was configured.
	Families []Family
	// HoldTime is the hold time offered to clients (keepalive is a third of
	// it); 0 means 9 s.
	HoldTime time.Duration
	// Port is the BGP listen port; 0 means 179.
	Port uint16
	// Debug turns on the daemon's debug logging.
	Debug bool
	// Extra is appended verbatim to the generated configuration (TOML for
	// gobgpd; for FRR it is inserted at the end of "router bgp").
	Extra string
	// GracefulRestart enables BGP graceful restart (RFC 4724) with the
	// clients when not nil.
	GracefulRestart *GracefulRestartConfig
	// Password is the TCP MD5 (RFC 2385) password of the sessions with
	// the clients ("" for none).
	Password string
}

// GracefulRestartConfig configures graceful restart on a route reflector:
// it keeps the routes of a client whose session is lost (helper), and when
// restarted (RouteReflector.Restart) it announces that it restarted with
// its forwarding state preserved (gobgpd -r; FRR bgp graceful-restart
// preserve-fw-state) and defers its updates until the clients' End-of-RIB.
type GracefulRestartConfig struct {
	// RestartTime is the restart time announced to the clients, and the
	// bound of the deferral after a restart; 0 means 30 s.
	RestartTime time.Duration
	// StaleTime bounds how long stale routes wait for a client's
	// End-of-RIB (FRR stalepath-time; gobgpd has none); 0 means 60 s.
	StaleTime time.Duration
	// Notification announces the RFC 8538 N bit (gobgpd
	// notification-enabled; FRR 8.4 always announces it).
	Notification bool
}

func (g *GracefulRestartConfig) restartSeconds() int {
	if g.RestartTime <= 0 {
		return 30
	}
	return max(1, int(g.RestartTime.Round(time.Second)/time.Second))
}

func (g *GracefulRestartConfig) staleSeconds() int {
	if g.StaleTime <= 0 {
		return 60
	}
	return max(1, int(g.StaleTime.Round(time.Second)/time.Second))
}

func (c *RRConfig) setDefaults(n *Node) {
	if !c.RouterID.IsValid() {
		c.RouterID = n.IP()
	}
	if !c.ClusterID.IsValid() {
		c.ClusterID = c.RouterID
	}
	if len(c.Families) == 0 {
		c.Families = append([]Family(nil), DefaultFamilies...)
	}
	if c.RTC && !hasFamily(c.Families, FamilyRTC) {
		c.Families = append(c.Families, FamilyRTC)
	}
	if c.HoldTime <= 0 {
		c.HoldTime = 9 * time.Second
	}
	if c.Port == 0 {
		c.Port = 179
	}
}

func hasFamily(fs []Family, f Family) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// WaitRIB polls rr's RIB for family f until cond returns true and returns
// the routes that satisfied it; on timeout the error includes the last RIB.
func WaitRIB(ctx context.Context, rr RouteReflector, f Family, cond func([]Route) bool) ([]Route, error) {
	var last []Route
	var lastErr error
	err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		last, lastErr = rr.RIB(ctx, f)
		if lastErr != nil {
			return false, nil
		}
		return cond(last), nil
	})
	if err != nil {
		if lastErr != nil {
			return last, fmt.Errorf("%s RIB on %s: %w (last error: %v)", f, rr.Node(), err, lastErr)
		}
		return last, fmt.Errorf("%s RIB on %s: %w; last RIB:\n%s", f, rr.Node(), err, formatRoutes(last))
	}
	return last, nil
}

func formatRoutes(rs []Route) string {
	if len(rs) == 0 {
		return "  (empty)"
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("  ")
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// poll calls fn every interval until it returns true, an error, or ctx ends.
func poll(ctx context.Context, interval time.Duration, fn func() (bool, error)) error {
	for {
		ok, err := fn()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// waitEstablished is the shared implementation of WaitEstablished.
func waitEstablished(ctx context.Context, rr RouteReflector, peer netip.Addr) error {
	var last *NeighborState
	var lastErr error
	err := poll(ctx, 250*time.Millisecond, func() (bool, error) {
		if !rr.Running() {
			return false, fmt.Errorf("daemon on %s is not running", rr.Node())
		}
		last, lastErr = rr.Neighbor(ctx, peer)
		return lastErr == nil && last.Established(), nil
	})
	if err == nil {
		return nil
	}
	switch {
	case last != nil:
		return fmt.Errorf("session %s -> %s not established (state %q): %w", rr.Node(), peer, last.State, err)
	case lastErr != nil:
		return fmt.Errorf("session %s -> %s not established: %w (last error: %v)", rr.Node(), peer, err, lastErr)
	}
	return fmt.Errorf("session %s -> %s not established: %w", rr.Node(), peer, err)
}

// parseAddr parses an address, returning the zero Addr on failure (daemons
// print placeholders such as "(unspec)" for local paths).
func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}
	}
	return a
}
