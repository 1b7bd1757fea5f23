package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPort           = 179
	DefaultHoldTime       = 180
	DefaultConnectRetry   = 5 * time.Second
	DefaultReconnectDelay = 1 * time.Second
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
	seen := map[netip.Addr]bool{}
	for _, p := range c.Peers {
		switch {
		case !p.Is4():
			errs = append(errs, fmt.Errorf("peer %v: an IPv4 address is required", p))
		case p == c.LocalAddress:
			errs = append(errs, fmt.Errorf("peer %v is the local address", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("peer %v configured twice", p))
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}
