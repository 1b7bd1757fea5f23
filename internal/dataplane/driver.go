// Package dataplane defines what the VPN instances ask of a dataplane
// driver (spec §7.1), and the types they exchange. Drivers live in
// sub-packages (dummy, linux, ovs).
package dataplane

import (
	"context"
	"errors"
	"net/netip"

	"bagpipe/internal/route"
)

// VPNType is "ipvpn" or "evpn".
type VPNType string

// VPN types.
const (
	IPVPN VPNType = "ipvpn"
	EVPN  VPNType = "evpn"
)

// Direction of the traffic an endpoint takes part in.
type Direction string

// Directions (spec §6.10).
const (
	Both     Direction = "both"
	ToPort   Direction = "to-port"
	FromPort Direction = "from-port"
)

// ToPortAllowed reports whether traffic towards the port is handled.
func (d Direction) ToPortAllowed() bool { return d != FromPort }

// FromPortAllowed reports whether traffic from the port is handled.
func (d Direction) FromPortAllowed() bool { return d != ToPort }

// LocalPort describes where an endpoint is plugged (API "local_port").
type LocalPort struct {
	LinuxIf string    `json:"linuxif,omitempty"`
	VLAN    *int      `json:"vlan,omitempty"` // EVPN ovs driver
	OVS     *OVSPort  `json:"ovs,omitempty"`
	EVPN    *EVPNPort `json:"evpn,omitempty"`
	// Raw is the object as the client sent it, compared whole when a MAC is
	// plugged again and shown by the looking glass.
	Raw map[string]any `json:"-"`
}

// OVSPort is the "ovs" part of a local port (IP VPN ovs driver).
type OVSPort struct {
	Plugged    bool   `json:"plugged,omitempty"`
	PortName   string `json:"port_name,omitempty"`
	PortNumber *int   `json:"port_number,omitempty"`
	VLAN       *int   `json:"vlan,omitempty"`
}

// EVPNPort is the "evpn" part of a local port: an E-VPN plugged into a VRF.
type EVPNPort struct {
	ID          string `json:"id"`
	OVSPortName string `json:"ovs_port_name,omitempty"`
}

// Endpoint is a local endpoint as the dataplane sees it.
type Endpoint struct {
	MAC       route.MAC
	IP        netip.Prefix // invalid for an IP-less E-VPN endpoint
	Port      *LocalPort
	Label     uint32 // port label (IP VPN) or instance label
	Direction Direction
}

// Remote is a remote endpoint learned from a best route.
type Remote struct {
	Prefix  netip.Prefix // IP VPN: destination prefix; E-VPN: the MAC route's IP, if any
	MAC     route.MAC    // E-VPN
	PE      netip.Addr   // remote tunnel endpoint (next hop)
	Label   uint32       // MPLS label, or VNI with VXLAN
	Encaps  []route.Encap
	LBOrder uint32 // consistent hash sort order
}

// Fallback sends traffic with no route to a given OVS port (IP VPN ovs).
type Fallback struct {
	SrcMAC        string `json:"src_mac"`
	DstMAC        string `json:"dst_mac"`
	OVSPortNumber int    `json:"ovs_port_number"`
}

// InstanceConfig is what a driver needs to create the dataplane of a VPN
// instance.
type InstanceConfig struct {
	ID          uint32 // internal instance id (VRF-<id>, EVI-<id>)
	ExternalID  string
	GatewayIP   netip.Addr // may be invalid (E-VPN)
	PrefixLen   int        // subnet length, -1 when unknown
	Label       uint32     // instance label, the VNI for E-VPN
	LinuxBridge string     // E-VPN: existing bridge to use
}

// Driver is a dataplane driver, one per VPN type.
type Driver interface {
	// Name is the driver's looking glass name (e.g. "DummyDataplaneDriver").
	Name() string
	// Type is the VPN type the driver serves.
	Type() VPNType
	// Encaps lists the encapsulations the dataplane supports; every
	// non-default one is advertised as an encapsulation extended community.
	Encaps() []route.Encap
	// ECMP reports whether several equal best paths are all installed.
	ECMP() bool
	// LocalAddress is the tunnel endpoint put as next hop in our routes.
	LocalAddress() netip.Addr
	// ValidateDirection rejects directions the dataplane cannot do.
	ValidateDirection(Direction) error
	// NeedsCleanupAssist asks the instance to remove every remote entry
	// one by one before Cleanup.
	NeedsCleanupAssist() bool
	// ResetState removes what an earlier run left (start-up, cleanup tool).
	ResetState(ctx context.Context) error
	// Initialize runs once, before the first instance is created.
	Initialize(ctx context.Context) error
	// LookingGlass returns driver specific looking glass fields.
	LookingGlass() map[string]any
}

// Instance is the dataplane of one VPN instance. Methods are called from
// the instance's goroutine, one at a time.
type Instance interface {
	VIFPlugged(ctx context.Context, ep Endpoint) error
	VIFUnplugged(ctx context.Context, ep Endpoint, lastEndpoint bool) error
	SetupRemote(ctx context.Context, r Remote) error
	RemoveRemote(ctx context.Context, r Remote) error
	UpdateFallback(ctx context.Context, f *Fallback) error
	Cleanup(ctx context.Context) error
	LookingGlass() map[string]any
}

// EVPNDriver creates E-VPN instance dataplanes.
type EVPNDriver interface {
	Driver
	NewEVPNInstance(ctx context.Context, cfg InstanceConfig) (EVPNInstance, error)
}

// EVPNInstance adds flooding (BUM) entries and the gateway port of an
// E-VPN plugged into a VRF.
type EVPNInstance interface {
	Instance
	AddBUM(ctx context.Context, pe netip.Addr, vni uint32, encaps []route.Encap) error
	RemoveBUM(ctx context.Context, pe netip.Addr, vni uint32) error
	SetGatewayPort(ctx context.Context, linuxIf string, gateway netip.Addr) error
	GatewayPortDown(ctx context.Context, linuxIf string) error
}

// IPVPNDriver creates IP VPN instance dataplanes.
type IPVPNDriver interface {
	Driver
	NewIPVPNInstance(ctx context.Context, cfg InstanceConfig) (IPVPNInstance, error)
}

// IPVPNInstance is the dataplane of a VRF.
type IPVPNInstance interface {
	Instance
	// AddClassifier sends the VRF's traffic matching c into the VRF whose
	// instance id is redirectTo (Flowspec redirect-to-VRF, spec §6.8, §7.4).
	// Adding the same classifier again replaces its redirection.
	AddClassifier(ctx context.Context, c route.Classifier, redirectTo uint32) error
	// RemoveClassifier removes what AddClassifier installed for c.
	RemoveClassifier(ctx context.Context, c route.Classifier) error
}

// ErrNotSupported is returned by drivers for an operation they cannot do.
var ErrNotSupported = errors.New("not supported by this dataplane driver")
