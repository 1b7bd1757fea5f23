package bgp

import (
	"net/netip"
	"time"

	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// State is the BGP FSM state of a peer (RFC 4271 §8).
type State uint8

// FSM states.
const (
	Idle State = iota
	Connect
	Active
	OpenSent
	OpenConfirm
	Established
)

var stateNames = [...]string{"Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// PeerStatus is a snapshot of a peer, as the looking glass shows it.
type PeerStatus struct {
	Name         string // "BGP-<peer ip>", the name of the peer's route source
	PeerAddress  netip.Addr
	LocalAddress netip.Addr
	LocalAS      uint32
	PeerAS       uint32 // the AS the peer announced (0 before its first OPEN)
	RTC          RTCStatus
	// Families lists the active address families, e.g. "(ipv4, mpls-vpn)",
	// "(l2vpn, evpn)", "(ipv4, flow-vpn)", "(ipv4, rtc)".
	Families []string
	Protocol ProtocolStatus
	// QueueLength is the number of route events waiting to be sent.
	QueueLength int
	// Worker is the peer's engine worker: engine.View.RoutesOf(Worker)
	// returns the routes received from the peer and
	// engine.View.Subscriptions(Worker) what it is subscribed to.
	Worker engine.Worker
	Stats  PeerStats
	// GracefulRestart tells what graceful restart does with the peer.
	GracefulRestart GRStatus
	// MaxPrefixes is the largest number of routes the peer may send
	// (Config.MaxPrefixes; 0: no limit).
	MaxPrefixes int
	// MD5 is set when a TCP MD5 password is configured for the peer (the
	// password itself is never shown).
	MD5 bool
}

// GRStatus is the graceful restart part of a PeerStatus.
type GRStatus struct {
	Enabled bool // we announce the capability
	// PeerRestartTime is the Restart Time the peer announced in its last
	// OPEN (0 when it did not announce graceful restart).
	PeerRestartTime uint16
	// PeerFamilies are the families the peer asked to be kept while it
	// restarts, in looking glass form.
	PeerFamilies []string
	// StaleRoutes is the number of routes kept from a lost session, not
	// yet confirmed by the peer.
	StaleRoutes int
	// Synced is set once the peer sent End-of-RIB for every family.
	Synced bool
	// Negotiated is set when both sides announced the capability in the
	// current (or last) session.
	Negotiated bool
	// EndOfRIB lists the families whose End-of-RIB the peer sent in the
	// current (or last) session, in looking glass form.
	EndOfRIB []string
}

// RTCStatus tells whether RT Constraint is enabled locally and negotiated.
type RTCStatus struct {
	Enabled bool
	Active  bool
}

// ProtocolStatus is the FSM part of a PeerStatus.
type ProtocolStatus struct {
	State              State
	PreviousState      State
	HoldTime           uint16 // negotiated, or configured when not established
	LastTransitionTime time.Time
}

// PeerStats are counters over the lifetime of the peer.
type PeerStats struct {
	UpdatesReceived  uint64
	UpdatesSent      uint64
	RoutesReceived   uint64 // advertisements and withdrawals published
	OwnRoutesDropped uint64 // advertisements carrying our ORIGINATOR_ID
	TreatAsWithdraw  uint64 // UPDATEs handled as withdrawals (RFC 7606)
	EventsDropped    uint64 // route events delivered while not established
	SessionsUp       uint64
	// StaleRoutesWithdrawn counts the stale routes withdrawn (not
	// confirmed by the peer after a graceful restart).
	StaleRoutesWithdrawn uint64
	// MaxPrefixesExceeded counts the sessions closed because the peer
	// sent more routes than max_prefixes.
	MaxPrefixesExceeded uint64
}

// FamilyName returns the looking glass name of a family, e.g.
// "(ipv4, mpls-vpn)".
func FamilyName(f route.Family) string {
	switch f {
	case route.IPv4VPN:
		return "(ipv4, mpls-vpn)"
	case route.EVPN:
		return "(l2vpn, evpn)"
	case route.RTC:
		return "(ipv4, rtc)"
	case route.FlowVPN:
		return "(ipv4, flow-vpn)"
	}
	return "(unknown)"
}
