// Package instrumented wraps a dataplane driver so that every call that
// changes the dataplane (driver reset and initialisation, instance
// creation, plugs, remote entries, flooding entries, gateway ports,
// fallback, cleanup) is timed and reported, with its outcome, to an
// Observer (the metrics). The wrapped driver and its instances behave
// exactly as the originals: same interfaces (E-VPN, IP VPN or both), same
// results; looking glass calls are passed through untimed.
//
// The daemon wraps each driver it builds (see internal/daemon); the VPN
// code is unaware of it.
package instrumented

import (
	"context"
	"net/netip"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// Operation names, as reported to the Observer (the names of the
// reference's driver methods, shortened).
const (
	OpResetState       = "reset_state"
	OpInitialize       = "initialize"
	OpNewInstance      = "new_instance"
	OpVIFPlugged       = "vif_plugged"
	OpVIFUnplugged     = "vif_unplugged"
	OpSetupRemote      = "setup_remote"
	OpRemoveRemote     = "remove_remote"
	OpUpdateFallback   = "update_fallback"
	OpCleanup          = "cleanup"
	OpAddBUM           = "add_bum"
	OpRemoveBUM        = "remove_bum"
	OpSetGatewayPort   = "set_gateway_port"
	OpGatewayPortDown  = "gateway_port_down"
	OpAddClassifier    = "add_classifier"
	OpRemoveClassifier = "remove_classifier"
)

// Operations lists every operation name.
var Operations = []string{
	OpResetState, OpInitialize, OpNewInstance, OpVIFPlugged, OpVIFUnplugged,
	OpSetupRemote, OpRemoveRemote, OpUpdateFallback, OpCleanup, OpAddBUM,
	OpRemoveBUM, OpSetGatewayPort, OpGatewayPortDown, OpAddClassifier,
	OpRemoveClassifier,
}

// Observer is told about each dataplane call once it returns. It is called
// from the goroutine that made the call and must be quick and safe for
// concurrent use.
type Observer interface {
	DataplaneCall(vpnType dataplane.VPNType, driver, op string, took time.Duration, err error)
}

// Wrap returns d instrumented for o. The result implements
// dataplane.EVPNDriver and/or dataplane.IPVPNDriver exactly when d does,
// and its instances dataplane.EVPNInstance when d's do. A nil o returns d.
func Wrap(d dataplane.Driver, o Observer) dataplane.Driver {
	if d == nil || o == nil {
		return d
	}
	b := &Driver{inner: d, obs: o, vpnType: d.Type(), name: d.Name()}
	evpn, isEVPN := d.(dataplane.EVPNDriver)
	ipvpn, isIPVPN := d.(dataplane.IPVPNDriver)
	switch {
	case isEVPN && isIPVPN:
		return &bothDriver{evpnDriver{b, evpn}, ipvpnDriver{b, ipvpn}}
	case isEVPN:
		return &evpnDriver{b, evpn}
	case isIPVPN:
		return &ipvpnDriver{b, ipvpn}
	}
	return b
}

// Unwrap returns the driver d wraps, or d itself when it is not an
// instrumented driver.
func Unwrap(d dataplane.Driver) dataplane.Driver {
	if u, ok := d.(interface{ Unwrap() dataplane.Driver }); ok {
		return u.Unwrap()
	}
	return d
}

// Driver is an instrumented driver (the part common to every VPN type).
type Driver struct {
	inner   dataplane.Driver
	obs     Observer
	vpnType dataplane.VPNType
	name    string
}

// observe reports one call that started at start.
func (d *Driver) observe(op string, start time.Time, err error) error {
	d.obs.DataplaneCall(d.vpnType, d.name, op, time.Since(start), err)
	return err
}

// Unwrap returns the wrapped driver.
func (d *Driver) Unwrap() dataplane.Driver { return d.inner }

func (d *Driver) Name() string             { return d.inner.Name() }
func (d *Driver) Type() dataplane.VPNType  { return d.inner.Type() }
func (d *Driver) Encaps() []route.Encap    { return d.inner.Encaps() }
func (d *Driver) ECMP() bool               { return d.inner.ECMP() }
func (d *Driver) LocalAddress() netip.Addr { return d.inner.LocalAddress() }
func (d *Driver) ValidateDirection(dir dataplane.Direction) error {
	return d.inner.ValidateDirection(dir)
}
func (d *Driver) NeedsCleanupAssist() bool     { return d.inner.NeedsCleanupAssist() }
func (d *Driver) LookingGlass() map[string]any { return d.inner.LookingGlass() }

// ResetState implements dataplane.Driver.
func (d *Driver) ResetState(ctx context.Context) error {
	start := time.Now()
	return d.observe(OpResetState, start, d.inner.ResetState(ctx))
}

// Initialize implements dataplane.Driver.
func (d *Driver) Initialize(ctx context.Context) error {
	start := time.Now()
	return d.observe(OpInitialize, start, d.inner.Initialize(ctx))
}

type evpnDriver struct {
	*Driver
	evpn dataplane.EVPNDriver
}

// NewEVPNInstance implements dataplane.EVPNDriver.
func (d *evpnDriver) NewEVPNInstance(ctx context.Context, cfg dataplane.InstanceConfig) (dataplane.EVPNInstance, error) {
	start := time.Now()
	inst, err := d.evpn.NewEVPNInstance(ctx, cfg)
	if d.observe(OpNewInstance, start, err) != nil {
		return nil, err
	}
	return &evpnInstance{Instance{inner: inst, d: d.Driver}, inst}, nil
}

type ipvpnDriver struct {
	*Driver
	ipvpn dataplane.IPVPNDriver
}

// NewIPVPNInstance implements dataplane.IPVPNDriver.
func (d *ipvpnDriver) NewIPVPNInstance(ctx context.Context, cfg dataplane.InstanceConfig) (dataplane.IPVPNInstance, error) {
	start := time.Now()
	inst, err := d.ipvpn.NewIPVPNInstance(ctx, cfg)
	if d.observe(OpNewInstance, start, err) != nil {
		return nil, err
	}
	return &ipvpnInstance{Instance: Instance{inner: inst, d: d.Driver}, ipvpn: inst}, nil
}

// bothDriver serves both VPN types (its methods come from both halves;
// the common ones from the same *Driver).
type bothDriver struct {
	evpnDriver
	ipvpnDriver
}

func (d *bothDriver) Unwrap() dataplane.Driver { return d.evpnDriver.inner }
func (d *bothDriver) Name() string             { return d.evpnDriver.Name() }
func (d *bothDriver) Type() dataplane.VPNType  { return d.evpnDriver.Type() }
func (d *bothDriver) Encaps() []route.Encap    { return d.evpnDriver.Encaps() }
func (d *bothDriver) ECMP() bool               { return d.evpnDriver.ECMP() }
func (d *bothDriver) LocalAddress() netip.Addr { return d.evpnDriver.LocalAddress() }
func (d *bothDriver) ValidateDirection(x dataplane.Direction) error {
	return d.evpnDriver.ValidateDirection(x)
}
func (d *bothDriver) NeedsCleanupAssist() bool             { return d.evpnDriver.NeedsCleanupAssist() }
func (d *bothDriver) LookingGlass() map[string]any         { return d.evpnDriver.LookingGlass() }
func (d *bothDriver) ResetState(ctx context.Context) error { return d.evpnDriver.ResetState(ctx) }
func (d *bothDriver) Initialize(ctx context.Context) error { return d.evpnDriver.Initialize(ctx) }

// Instance is an instrumented dataplane instance.
type Instance struct {
	inner dataplane.Instance
	d     *Driver
}

// Unwrap returns the wrapped instance.
func (i *Instance) Unwrap() dataplane.Instance { return i.inner }

// VIFPlugged implements dataplane.Instance.
func (i *Instance) VIFPlugged(ctx context.Context, ep dataplane.Endpoint) error {
	start := time.Now()
	return i.d.observe(OpVIFPlugged, start, i.inner.VIFPlugged(ctx, ep))
}

// VIFUnplugged implements dataplane.Instance.
func (i *Instance) VIFUnplugged(ctx context.Context, ep dataplane.Endpoint, last bool) error {
	start := time.Now()
	return i.d.observe(OpVIFUnplugged, start, i.inner.VIFUnplugged(ctx, ep, last))
}

// SetupRemote implements dataplane.Instance.
func (i *Instance) SetupRemote(ctx context.Context, r dataplane.Remote) error {
	start := time.Now()
	return i.d.observe(OpSetupRemote, start, i.inner.SetupRemote(ctx, r))
}

// RemoveRemote implements dataplane.Instance.
func (i *Instance) RemoveRemote(ctx context.Context, r dataplane.Remote) error {
	start := time.Now()
	return i.d.observe(OpRemoveRemote, start, i.inner.RemoveRemote(ctx, r))
}

// UpdateFallback implements dataplane.Instance.
func (i *Instance) UpdateFallback(ctx context.Context, f *dataplane.Fallback) error {
	start := time.Now()
	return i.d.observe(OpUpdateFallback, start, i.inner.UpdateFallback(ctx, f))
}

// Cleanup implements dataplane.Instance.
func (i *Instance) Cleanup(ctx context.Context) error {
	start := time.Now()
	return i.d.observe(OpCleanup, start, i.inner.Cleanup(ctx))
}

// LookingGlass implements dataplane.Instance.
func (i *Instance) LookingGlass() map[string]any { return i.inner.LookingGlass() }

type evpnInstance struct {
	Instance
	evpn dataplane.EVPNInstance
}

// AddBUM implements dataplane.EVPNInstance.
func (i *evpnInstance) AddBUM(ctx context.Context, pe netip.Addr, vni uint32, encaps []route.Encap) error {
	start := time.Now()
	return i.d.observe(OpAddBUM, start, i.evpn.AddBUM(ctx, pe, vni, encaps))
}

// RemoveBUM implements dataplane.EVPNInstance.
func (i *evpnInstance) RemoveBUM(ctx context.Context, pe netip.Addr, vni uint32) error {
	start := time.Now()
	return i.d.observe(OpRemoveBUM, start, i.evpn.RemoveBUM(ctx, pe, vni))
}

// SetGatewayPort implements dataplane.EVPNInstance.
func (i *evpnInstance) SetGatewayPort(ctx context.Context, linuxIf string, gateway netip.Addr) error {
	start := time.Now()
	return i.d.observe(OpSetGatewayPort, start, i.evpn.SetGatewayPort(ctx, linuxIf, gateway))
}

// GatewayPortDown implements dataplane.EVPNInstance.
func (i *evpnInstance) GatewayPortDown(ctx context.Context, linuxIf string) error {
	start := time.Now()
	return i.d.observe(OpGatewayPortDown, start, i.evpn.GatewayPortDown(ctx, linuxIf))
}

type ipvpnInstance struct {
	Instance
	ipvpn dataplane.IPVPNInstance
}

// AddClassifier implements dataplane.IPVPNInstance.
func (i *ipvpnInstance) AddClassifier(ctx context.Context, c route.Classifier, redirectTo uint32) error {
	start := time.Now()
	return i.d.observe(OpAddClassifier, start, i.ipvpn.AddClassifier(ctx, c, redirectTo))
}

// RemoveClassifier implements dataplane.IPVPNInstance.
func (i *ipvpnInstance) RemoveClassifier(ctx context.Context, c route.Classifier) error {
	start := time.Now()
	return i.d.observe(OpRemoveClassifier, start, i.ipvpn.RemoveClassifier(ctx, c))
}

var (
	_ dataplane.EVPNDriver    = (*evpnDriver)(nil)
	_ dataplane.IPVPNDriver   = (*ipvpnDriver)(nil)
	_ dataplane.EVPNDriver    = (*bothDriver)(nil)
	_ dataplane.IPVPNDriver   = (*bothDriver)(nil)
	_ dataplane.IPVPNInstance = (*ipvpnInstance)(nil)
	_ dataplane.EVPNInstance  = (*evpnInstance)(nil)
)
