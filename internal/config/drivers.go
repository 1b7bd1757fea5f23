package config

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// VPNType is a VPN type, each having its own dataplane driver section.
type VPNType string

// The VPN types.
const (
	IPVPN VPNType = "ipvpn"
	EVPN  VPNType = "evpn"
)

// VPNTypes lists the VPN types in the order their sections are processed.
var VPNTypes = []VPNType{IPVPN, EVPN}

// Section returns the name of the dataplane section of the VPN type,
// e.g. "DATAPLANE_DRIVER_IPVPN".
func (t VPNType) Section() string { return "DATAPLANE_DRIVER_" + strings.ToUpper(string(t)) }

// Normalised dataplane driver names.
const (
	DriverDummy = "dummy"
	DriverLinux = "linux"
	DriverOVS   = "ovs"
)

// driverAliases maps every accepted dataplane_driver value (the entry point
// names of networking-bagpipe 17.0.0, spec §2.4) to its normalised name.
var driverAliases = map[VPNType]map[string]string{
	IPVPN: {
		"dummy":                DriverDummy,
		"DummyDataplaneDriver": DriverDummy,
		"bagpipe.bgp.vpn.ipvpn.DummyDataplaneDriver": DriverDummy,
		"linux": DriverLinux,
		"mpls_linux_dataplane.MPLSLinuxDataplaneDriver":                       DriverLinux,
		"bagpipe.bgp.vpn.ipvpn.mpls_linux_dataplane.MPLSLinuxDataplaneDriver": DriverLinux,
		"ovs": DriverOVS,
		"mpls_ovs_dataplane.MPLSOVSDataplaneDriver":                       DriverOVS,
		"bagpipe.bgp.vpn.ipvpn.mpls_ovs_dataplane.MPLSOVSDataplaneDriver": DriverOVS,
	},
	EVPN: {
		"dummy":                DriverDummy,
		"DummyDataplaneDriver": DriverDummy,
		"bagpipe.bgp.vpn.evpn.DummyDataplaneDriver": DriverDummy,
		"linux":                                 DriverLinux,
		"linux_vxlan.LinuxVXLANDataplaneDriver": DriverLinux,
		"bagpipe.bgp.vpn.evpn.linux_vxlan.LinuxVXLANDataplaneDriver": DriverLinux,
		"ovs": DriverOVS,
	},
}

// NormalizeDriver maps a dataplane_driver value of the given VPN type,
// possibly a legacy name, to "dummy", "linux" or "ovs".
func NormalizeDriver(t VPNType, name string) (string, bool) {
	n, ok := driverAliases[t][name]
	return n, ok
}

// DriverOptions declares the options a dataplane driver reads from the
// dataplane section of its VPN type. Load only declares the options of the
// driver selected by dataplane_driver; options of other drivers found in
// the section are reported as ignored.
//
// A driver name that is not a known alias declares a new driver name for
// that VPN type.
type DriverOptions struct {
	VPNType VPNType
	Driver  string // normalised driver name, or any alias of it
	Options []Option
}

// Ready-made option schemas of the built-in drivers (spec §2.5). Driver
// packages pass them (or their own) to Load.
var (
	// EVPNLinuxOptions are the options of the EVPN linux (bridge + VXLAN)
	// driver. vxlan_dst_port may be set empty (or 0) for the kernel default.
	EVPNLinuxOptions = DriverOptions{VPNType: EVPN, Driver: DriverLinux, Options: []Option{
		{Name: "vxlan_dst_port", Kind: Int, Default: 4789, Bounds: &Bounds{0, 65535}, Nullable: true,
			Help: "UDP port toward which send VXLAN traffic"},
	}}

	// EVPNOVSOptions are the options of the EVPN ovs driver.
	EVPNOVSOptions = DriverOptions{VPNType: EVPN, Driver: DriverOVS, Options: []Option{
		{Name: "ovs_bridge", Kind: String, Default: "br-tun",
			Help: "OVS bridge to use, the tunneling bridge of the Neutron OVS agent"},
	}}

	// IPVPNOVSOptions are the options of the IPVPN ovs (MPLS with OVS) driver.
	IPVPNOVSOptions = DriverOptions{VPNType: IPVPN, Driver: DriverOVS, Options: []Option{
		{Name: "mpls_interface", Kind: String,
			Help: "interface used to send/receive MPLS traffic; '*gre*' for MPLS/GRE"},
		{Name: "mpls_over_gre", Kind: Enum, Choices: []string{"auto", "True", "False"}, Default: "auto",
			Help: "force the use of MPLS/GRE even with mpls_interface specified"},
		{Name: "proxy_arp", Kind: Bool, Default: false,
			Help: "activate ARP responder per VRF for any IP address"},
		{Name: "arp_responder", Kind: Bool, Default: false,
			Help: "ARP responder per VRF"},
		{Name: "vxlan_encap", Kind: Bool, Default: false,
			Help: "receive VPN traffic as VXLAN, and send it as VXLAN when the remote end advertises it"},
		{Name: "ovs_bridge", Kind: String, Default: "br-mpls"},
		{Name: "input_table", Kind: Int, Default: 0, Bounds: &Bounds{0, 254}},
		{Name: "ovs_table_id_start", Kind: Int, Default: 1, Bounds: &Bounds{0, 253}},
		{Name: "gre_tunnel", Kind: String, Default: "mpls_gre",
			Help: "OVS interface name for MPLS/GRE encap"},
		{Name: "gre_tunnel_options", Kind: List, Default: []string{},
			Help: "options passed to OVS for GRE tunnel port creation, e.g. packet_type=legacy_l3"},
		{Name: "ovsbr_interfaces_mtu", Kind: Int, Nullable: true, Bounds: &Bounds{0, 65535},
			Help: "obsolete: MTU forced on the OVS ports"},
		{Name: "hash_method", Kind: Enum, Choices: []string{"hash", "dp_hash"}, Default: "dp_hash",
			Help: "OVS group bucket selection_method"},
		{Name: "hash_method_param", Kind: String, Default: "0",
			Help: "OVS group bucket selection_method_param"},
		{Name: "hash_fields", Kind: List, Default: []string{},
			Help: "fields used by the OVS group bucket selection method"},
	}}

	// IPVPNLinuxOptions are the options of the IPVPN linux (kernel MPLS)
	// driver.
	IPVPNLinuxOptions = DriverOptions{VPNType: IPVPN, Driver: DriverLinux, Options: []Option{
		{Name: "mpls_interface", Kind: String,
			Help: "interface used to send/receive MPLS traffic"},
	}}
)

// BuiltinDriverOptions returns the option schemas of all built-in drivers.
func BuiltinDriverOptions() []DriverOptions {
	return []DriverOptions{EVPNLinuxOptions, EVPNOVSOptions, IPVPNOVSOptions, IPVPNLinuxOptions}
}

// driverSet is the driver option schemas known to one Load, per VPN type
// and normalised driver name.
type driverSet map[VPNType]map[string][]Option

func newDriverSet(decls []DriverOptions) (driverSet, error) {
	set := driverSet{}
	for _, d := range decls {
		if _, ok := driverAliases[d.VPNType]; !ok {
			return nil, fmt.Errorf("driver options for %q: unknown VPN type %q", d.Driver, d.VPNType)
		}
		name := d.Driver
		if n, ok := NormalizeDriver(d.VPNType, name); ok {
			name = n
		}
		if name == "" {
			return nil, fmt.Errorf("driver options for VPN type %s: empty driver name", d.VPNType)
		}
		if set[d.VPNType] == nil {
			set[d.VPNType] = map[string][]Option{}
		}
		if _, dup := set[d.VPNType][name]; dup {
			return nil, fmt.Errorf("driver options for %s driver %s given twice", d.VPNType, name)
		}
		set[d.VPNType][name] = d.Options
	}
	return set, nil
}

// normalize maps a configured driver name to its normalised name.
func (s driverSet) normalize(t VPNType, name string) (string, bool) {
	if n, ok := NormalizeDriver(t, name); ok {
		return n, true
	}
	_, ok := s[t][name]
	return name, ok
}

// names lists the accepted normalised driver names of a VPN type.
func (s driverSet) names(t VPNType) []string {
	seen := map[string]bool{}
	for _, n := range driverAliases[t] {
		seen[n] = true
	}
	for n := range s[t] {
		seen[n] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// usedBy returns the (sorted) drivers of a VPN type, other than the
// selected one, that declare option name.
func (s driverSet) usedBy(t VPNType, selected, name string) []string {
	var out []string
	for driver, opts := range s[t] {
		if driver == selected {
			continue
		}
		for _, o := range opts {
			if o.Name == name || slices.Contains(o.Deprecated, name) {
				out = append(out, driver)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
