package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"bagpipe/internal/route"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPort           = 179
	DefaultHoldTime       = 180
	DefaultConnectRetry   = 5 * time.Second
	DefaultReconnectDelay = 1 * time.Second
	// DefaultRestartTime is the Restart Time we advertise in the Graceful
	// Restart capability (RFC 4724), in seconds.
	DefaultRestartTime = 120
	// DefaultStaleTime bounds how long the stale routes of a restarted peer
	// are kept once its session is back, waiting for its End-of-RIB.
	DefaultStaleTime = 360 * time.Second
	// DefaultSyncTimeout bounds the wait of Router.Synced for the
	// End-of-RIB of every peer.
	DefaultSyncTimeout = 120 * time.Second
	// DefaultMaxPrefixesRetry is the delay before reconnecting to a peer
	// whose session was closed because it sent too many routes.
	DefaultMaxPrefixesRetry = 60 * time.Second
	// maxRestartTime is the largest Restart Time the capability can carry
	// (12 bits).
	maxRestartTime = 4095
)

// Config configures a Speaker.
type Config struct {
	// LocalAddress is the BGP identifier, the source address of outgoing
	// sessions, the listening address and the next hop of RTC routes.
	LocalAddress netip.Addr
	// AS is the local AS; every peer is an iBGP peer in this AS.
	AS uint32
	// Peers are the addresses of the BGP peers (route reflectors).
	Peers []netip.Addr
	// Port is the destination port of outgoing sessions and the listening
	// port (default 179).
	Port uint16
	// Listen makes the speaker accept sessions from the configured peers
	// on LocalAddress:Port (connection collisions are resolved as in
	// RFC 4271 §6.8).
	Listen bool
	// EnableRTC negotiates RT Constraint (RFC 4684) with the peers.
	EnableRTC bool
	// HoldTime is the hold time proposed in OPEN (default 180 s).
	HoldTime uint16
	// ConnectRetry is the delay between connection attempts (default 5 s,
	// multiplied by a random factor in [1, 1.5)).
	ConnectRetry time.Duration
	// ReconnectDelay is the delay before reconnecting after an established
	// session was lost (default 1 s, same jitter).
	ReconnectDelay time.Duration

	// GracefulRestart announces the Graceful Restart capability (RFC 4724,
	// with the RFC 8538 N bit) and enables the helper role: when the
	// session with a peer that announced it too is lost (TCP failure, hold
	// timer, or a NOTIFICATION other than Hard Reset when both announced
	// the N bit), the peer's routes are kept, marked stale, until the peer
	// comes back and sends End-of-RIB (or StaleTime passes), or until its
	// Restart Time passes without it coming back; those still stale when
	// the session is lost again are withdrawn then.
	GracefulRestart bool
	// RestartTime is the Restart Time we announce, in seconds: how long
	// peers should keep our routes while we restart (default 120, at most
	// 4095).
	RestartTime uint16
	// StaleTime bounds how long stale routes are kept once the peer's
	// session is back, waiting for its End-of-RIB (default 360 s).
	StaleTime time.Duration
	// Restarted sets the Restart State (R) bit in the first OPEN sent to
	// each peer: the daemon sets it when it restarted and restored state
	// persisted by its previous run (the peers then do not wait for our
	// End-of-RIB before sending theirs).
	Restarted bool
	// ForwardingPreserved lists the families whose forwarding state
	// (dataplane) survives a restart of the daemon: their Forwarding State
	// (F) bit is set in the capability, so that peers keep our routes of
	// these families while we restart. It also decides how Stop closes the
	// sessions: with forwarding preserved the peers are asked to keep our
	// routes (Cease when both sides announced the N bit, a plain TCP close
	// otherwise), without it they are asked to drop them (Hard Reset with
	// the N bit, Cease otherwise).
	ForwardingPreserved []route.Family

	// SyncTimeout bounds the wait of Synced: it closes at the latest
	// SyncTimeout after Start even if some peer never sent its End-of-RIB
	// (default 120 s).
	SyncTimeout time.Duration

	// MaxPrefixes, when positive, is the largest number of routes a peer
	// may advertise (all families; stale routes kept from its previous
	// session count once advertised again): a peer exceeding it gets a Cease
	// NOTIFICATION (Maximum Number of Prefixes Reached, RFC 4486), its
	// routes are withdrawn and it is reconnected MaxPrefixesRetry later.
	MaxPrefixes int
	// MaxPrefixesRetry is the delay before reconnecting after MaxPrefixes
	// was exceeded (default 60 s).
	MaxPrefixesRetry time.Duration

	// MD5Password, when not empty, protects the sessions with every peer
	// with the TCP MD5 signature option (RFC 2385); PeerMD5Passwords
	// overrides it per peer (an empty password there disables the option
	// for that peer). Passwords are never logged.
	MD5Password      string
	PeerMD5Passwords map[netip.Addr]string
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.HoldTime == 0 {
		c.HoldTime = DefaultHoldTime
	}
	if c.ConnectRetry <= 0 {
		c.ConnectRetry = DefaultConnectRetry
	}
	if c.ReconnectDelay <= 0 {
		c.ReconnectDelay = DefaultReconnectDelay
	}
	if c.RestartTime == 0 {
		c.RestartTime = DefaultRestartTime
	}
	if c.StaleTime <= 0 {
		c.StaleTime = DefaultStaleTime
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.MaxPrefixesRetry <= 0 {
		c.MaxPrefixesRetry = DefaultMaxPrefixesRetry
	}
	return c
}

// validate reports configuration errors.
func (c Config) validate() error {
	var errs []error
	if !c.LocalAddress.Is4() {
		errs = append(errs, fmt.Errorf("local address %v: an IPv4 address is required", c.LocalAddress))
	}
	if c.AS == 0 {
		errs = append(errs, errors.New("AS must not be 0"))
	}
	if c.HoldTime > 0 && c.HoldTime < 3 {
		errs = append(errs, fmt.Errorf("hold time %d: must be 0 or at least 3", c.HoldTime))
	}
	if c.RestartTime > maxRestartTime {
		errs = append(errs, fmt.Errorf("graceful restart time %d: must be at most %d", c.RestartTime, maxRestartTime))
	}
	if c.MaxPrefixes < 0 {
		errs = append(errs, fmt.Errorf("max prefixes %d: must not be negative", c.MaxPrefixes))
	}
	for _, pw := range c.passwords() {
		if len(pw) > unix.TCP_MD5SIG_MAXKEYLEN {
			errs = append(errs, fmt.Errorf("TCP MD5 password: at most %d bytes", unix.TCP_MD5SIG_MAXKEYLEN))
			break
		}
	}
	errs = append(errs, validatePeers(c.Peers, c.LocalAddress)...)
	return errors.Join(errs...)
}

// passwords returns every TCP MD5 password configured.
func (c *Config) passwords() []string {
	out := []string{c.MD5Password}
	for _, pw := range c.PeerMD5Passwords {
		out = append(out, pw)
	}
	return out
}

// md5Password returns the TCP MD5 password of peer ("" for none).
func (c *Config) md5Password(peer netip.Addr) string {
	if pw, ok := c.PeerMD5Passwords[peer]; ok {
		return pw
	}
	return c.MD5Password
}

// validatePeers checks a peer list.
func validatePeers(peers []netip.Addr, local netip.Addr) []error {
	var errs []error
	seen := map[netip.Addr]bool{}
	for _, p := range peers {
		switch {
		case !p.Is4():
			errs = append(errs, fmt.Errorf("peer %v: an IPv4 address is required", p))
		case p == local:
			errs = append(errs, fmt.Errorf("peer %v is the local address", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("peer %v configured twice", p))
		}
		seen[p] = true
	}
	return errs
}
