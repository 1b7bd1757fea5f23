// Package ovs is the "ovs" IP VPN dataplane driver (spec §7.4): MPLS VPN
// forwarding with Open vSwitch, MPLS-over-GRE (Ethernet-in-GRE as the
// reference, or the RFC 4023 form with gre_tunnel_options =
// packet_type=legacy_l3), bare MPLS over Ethernet, and VXLAN with
// vxlan_encap. OVSDB is driven through libovsdb, OpenFlow 1.5 through the
// bridge's management socket (see ofp.go); nothing runs ovs-vsctl or
// ovs-ofctl.
package ovs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"bagpipe/internal/config"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// vxlanTunnel is the name of the VXLAN port (vxlan_encap).
const vxlanTunnel = "vxlan"

// Config is the driver configuration ([DATAPLANE_DRIVER_IPVPN]).
type Config struct {
	Bridge        string
	Local         netip.Addr
	MPLSInterface string // bare MPLS port; "" with GRE
	UseGRE        bool
	GRETunnel     string
	GREOptions    map[string]string
	VXLAN         bool
	ARPResponder  bool
	ProxyARP      bool
	InputTable    uint8
	TableStart    uint8 // encap_in; vrf = TableStart+1
	HashMethod    string
	HashParam     uint64
	HashFields    []string
	MTU           int // ovsbr_interfaces_mtu, 0: unset
	// RunDir is the Open vSwitch run directory holding db.sock and
	// <bridge>.mgmt: $OVS_RUNDIR, else /var/run/openvswitch.
	RunDir string
}

// ConfigFrom reads the driver options of a dataplane section.
func ConfigFrom(dc *config.DataplaneConfig) (Config, error) {
	o := dc.Options
	c := Config{
		Bridge:        o.String("ovs_bridge"),
		Local:         dc.LocalAddress,
		MPLSInterface: o.String("mpls_interface"),
		GRETunnel:     o.String("gre_tunnel"),
		VXLAN:         o.Bool("vxlan_encap"),
		ARPResponder:  o.Bool("arp_responder"),
		ProxyARP:      o.Bool("proxy_arp"),
		HashMethod:    o.String("hash_method"),
		HashFields:    o.List("hash_fields"),
		RunDir:        os.Getenv("OVS_RUNDIR"),
	}
	sec := "[" + dc.VPNType.Section() + "]"
	// Mode (spec §7.4): GRE unless an interface is given; any
	// mpls_over_gre value but "auto" forces GRE as in the reference.
	c.UseGRE = o.String("mpls_over_gre") != "auto" || c.MPLSInterface == "" || c.MPLSInterface == "*gre*"
	if c.UseGRE {
		c.MPLSInterface = ""
	}
	c.GREOptions = map[string]string{}
	for _, kv := range o.List("gre_tunnel_options") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return c, fmt.Errorf("%s gre_tunnel_options: %q is not key=value", sec, kv)
		}
		c.GREOptions[k] = v
	}
	in, start := o.Int("input_table"), o.Int("ovs_table_id_start")
	if in == start || in == start+1 {
		return c, fmt.Errorf("%s invalid ovs_table_id_start (%d): can't use tables same as input table (%d)", sec, start, in)
	}
	c.InputTable, c.TableStart = uint8(in), uint8(start)
	if p := strings.TrimSpace(o.String("hash_method_param")); p != "" {
		n, err := strconv.ParseUint(p, 0, 64)
		if err != nil {
			return c, fmt.Errorf("%s hash_method_param: %q is not a number", sec, p)
		}
		c.HashParam = n
	}
	for _, f := range c.HashFields {
		if _, ok := hashFields[f]; !ok {
			return c, fmt.Errorf("%s hash_fields: unknown field %q", sec, f)
		}
	}
	if o.Value("ovsbr_interfaces_mtu") != nil {
		c.MTU = o.Int("ovsbr_interfaces_mtu")
	}
	if c.RunDir == "" {
		c.RunDir = "/var/run/openvswitch"
	}
	if !c.Local.IsValid() || !c.Local.Is4() {
		return c, fmt.Errorf("%s the ovs driver needs an IPv4 dataplane_local_address", sec)
	}
	return c, nil
}

// Driver is the IP VPN ovs dataplane driver.
type Driver struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	db        *vsdb
	of        *ofConn
	pl        pipeline
	ready     bool   // Initialize done
	active    int    // instances alive: the driver's own state exists while > 0
	nextGroup uint32 // group id counter (low 24 bits)
	freeGroup []uint32
	instances map[uint32]*Instance
	// Adoption (adopt.go): keep is set by KeepForAdoption, adopt by
	// ResetState when it kept what an earlier run left, until the sweep;
	// gen is the generation of this run's flow cookies.
	keep  map[string]bool
	adopt *adoption
	gen   uint16
}

// New returns the driver; it connects to nothing until Initialize.
func New(cfg Config, log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	return &Driver{cfg: cfg, log: log.With("driver", "ovs", "vpn_type", "ipvpn"), instances: map[uint32]*Instance{}}
}

func (d *Driver) Name() string                                { return "MPLSOVSDataplaneDriver" }
func (d *Driver) Type() dataplane.VPNType                     { return dataplane.IPVPN }
func (d *Driver) ECMP() bool                                  { return true }
func (d *Driver) LocalAddress() netip.Addr                    { return d.cfg.Local }
func (d *Driver) NeedsCleanupAssist() bool                    { return false }
func (d *Driver) ValidateDirection(dataplane.Direction) error { return nil }

// Encaps implements dataplane.Driver: GRE mode → GRE and Default; bare
// MPLS → MPLS and Default; plus VXLAN with vxlan_encap.
func (d *Driver) Encaps() []route.Encap {
	var e []route.Encap
	if d.cfg.UseGRE {
		e = []route.Encap{route.EncapGRE, route.EncapDefault}
	} else {
		e = []route.Encap{route.EncapMPLS, route.EncapDefault}
	}
	if d.cfg.VXLAN {
		e = append(e, route.EncapVXLAN)
	}
	return e
}

func (d *Driver) tables() map[string]int {
	return map[string]int{"incoming": int(d.cfg.InputTable), "encap_in": int(d.cfg.TableStart), "vrf": int(d.cfg.TableStart) + 1}
}

// connect opens the OVSDB and OpenFlow connections and checks the bridge.
func (d *Driver) connect(ctx context.Context) error {
	if d.db == nil {
		db, err := dialVSDB(ctx, "unix:"+filepath.Join(d.cfg.RunDir, "db.sock"), d.log)
		if err != nil {
			return err
		}
		d.db = db
	}
	br, err := d.db.bridge(ctx, d.cfg.Bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("OVS bridge '%s' doesn't exist", d.cfg.Bridge)
	}
	if err := d.db.ensureOpenFlow15(ctx, br); err != nil {
		return fmt.Errorf("enabling OpenFlow 1.5 on %s: %w", d.cfg.Bridge, err)
	}
	if d.of == nil {
		d.of = newOFConn(filepath.Join(d.cfg.RunDir, d.cfg.Bridge+".mgmt"))
	}
	return nil
}

// ResetState removes what an earlier run left on the bridge: every flow
// carrying our cookie tag, every group in our id range and every port we
// created. Nothing of other controllers is touched. Clients replay their
// attachments after a restart (as with the reference), which rebuilds the
// state. When VRFs are about to be restored (KeepForAdoption), nothing is
// removed: the restored VRFs take over what they find, and SweepAdopted
// removes the rest (adopt.go).
func (d *Driver) ResetState(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.connect(ctx); err != nil {
		return err
	}
	return d.reset(ctx)
}

// reset is ResetState once connected (d.mu held).
func (d *Driver) reset(ctx context.Context) error {
	if d.keep != nil {
		if d.adopt != nil { // read back already (a retried initialization)
			return nil
		}
		err := d.readBack(ctx)
		if err == nil {
			return nil
		}
		d.log.Warn("cannot adopt what the earlier run left on the bridge: removing it (IP VPN traffic stops until the restored VRFs are set up again)", "err", err)
		d.keep = nil
	}
	return d.removeOurs(ctx)
}

func (d *Driver) removeOurs(ctx context.Context) error {
	msgs := [][]byte{flowMod(0, ofpfcDelete, &Flow{Table: ofpttAll, Cookie: cookieTag}, cookieTagMask)}
	ids, err := d.of.GroupIDs(ctx)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	for _, id := range ids {
		if id&groupTagMask == groupTag {
			msgs = append(msgs, groupMod(0, ofpgcDelete, &Group{ID: id}))
		}
	}
	if err := d.of.Send(ctx, msgs...); err != nil {
		return fmt.Errorf("removing flows and groups: %w", err)
	}
	var ports []string
	if d.db != nil { // nil in unit tests
		if ports, err = d.db.ownedPorts(ctx, d.cfg.Bridge); err != nil {
			return err
		}
	}
	for _, p := range ports {
		d.log.Info("removing port left by an earlier run", "port", p)
		if err := d.db.delPort(ctx, d.cfg.Bridge, p); err != nil {
			return fmt.Errorf("removing port %s: %w", p, err)
		}
	}
	if len(ids) > 0 || len(ports) > 0 {
		d.log.Info("start-up reconciliation done", "groups_seen", len(ids), "ports_removed", len(ports))
	}
	return nil
}

// Initialize checks the bridge and the configured interfaces; the driver's
// own ports and flows are created with the first VRF and removed with the
// last one.
func (d *Driver) Initialize(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.connect(ctx); err != nil {
		return err
	}
	d.pl = pipeline{
		input: d.cfg.InputTable, encapIn: d.cfg.TableStart, vrf: d.cfg.TableStart + 1, gen: d.gen,
		useGRE: d.cfg.UseGRE, vxlan: d.cfg.VXLAN, local: d.cfg.Local,
		arpResponder: d.cfg.ARPResponder, proxyARP: d.cfg.ProxyARP,
	}
	if !d.cfg.UseGRE {
		n, err := d.db.ofport(ctx, d.cfg.MPLSInterface)
		if err != nil {
			return fmt.Errorf("Specified mpls_interface %s is not plugged to OVS bridge %s: %w", d.cfg.MPLSInterface, d.cfg.Bridge, err)
		}
		d.pl.mplsInPort = uint32(n)
		mac, err := linkMAC(d.cfg.MPLSInterface)
		if err != nil {
			// A port without a MAC (patch port): the bridge's.
			if mac, err = linkMAC(d.cfg.Bridge); err != nil {
				return fmt.Errorf("MAC address of %s: %w", d.cfg.MPLSInterface, err)
			}
		}
		d.pl.mplsIfMAC = mac
	}
	d.ready = true
	return nil
}

func linkMAC(name string) (net.HardwareAddr, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if len(l.Attrs().HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s has no Ethernet address", name)
	}
	return l.Attrs().HardwareAddr, nil
}

// acquire sets up the driver's ports and flows for the first VRF.
func (d *Driver) acquire(ctx context.Context) error {
	if d.active > 0 {
		d.active++
		return nil
	}
	if d.cfg.UseGRE {
		opts := map[string]string{"local_ip": d.cfg.Local.String(), "remote_ip": "flow"}
		for k, v := range d.cfg.GREOptions {
			opts[k] = v
		}
		n, err := d.tunnelPort(ctx, d.cfg.GRETunnel, "gre", opts)
		if err != nil {
			return fmt.Errorf("creating GRE tunnel port %s: %w", d.cfg.GRETunnel, err)
		}
		d.pl.mplsInPort = n
	}
	if d.cfg.VXLAN {
		opts := map[string]string{"local_ip": d.cfg.Local.String(), "remote_ip": "flow", "key": "flow"}
		n, err := d.tunnelPort(ctx, vxlanTunnel, "vxlan", opts)
		if err != nil {
			d.releaseState(ctx)
			return fmt.Errorf("creating VXLAN tunnel port: %w", err)
		}
		d.pl.vxlanPort = n
	}
	var msgs [][]byte
	for _, f := range d.pl.driverFlows() {
		msgs = append(msgs, flowMod(0, ofpfcAdd, &f, 0))
	}
	if err := d.of.Send(ctx, msgs...); err != nil {
		d.releaseState(ctx)
		return fmt.Errorf("installing driver flows: %w", err)
	}
	d.active = 1
	return nil
}

// tunnelPort returns the OpenFlow port number of a tunnel port of ours,
// created (again, when a port of that name exists) unless a port we
// created is there with the same type and options: then it is kept as it
// is (an earlier run's, adopted: its traffic is not interrupted).
func (d *Driver) tunnelPort(ctx context.Context, name, typ string, opts map[string]string) (uint32, error) {
	if p, err := d.db.port(ctx, name); err == nil && p != nil && p.ExternalIDs[ownerKey] == ownerValue {
		if i, err := d.db.iface(ctx, name); err == nil && i != nil && i.Type == typ && maps.Equal(i.Options, opts) &&
			i.Ofport != nil && *i.Ofport > 0 {
			d.log.Info("tunnel port of the earlier run kept", "port", name, "ofport", *i.Ofport)
			return uint32(*i.Ofport), nil
		}
	}
	_ = d.db.delPort(ctx, d.cfg.Bridge, name)
	_ = d.db.waitGone(ctx, name)
	if err := d.db.addPort(ctx, d.cfg.Bridge, name, typ, opts); err != nil {
		return 0, err
	}
	n, err := d.db.ofport(ctx, name)
	if err != nil {
		_ = d.db.delPort(ctx, d.cfg.Bridge, name)
		return 0, err
	}
	return uint32(n), nil
}

// release removes the driver's ports and flows with the last VRF.
func (d *Driver) release(ctx context.Context) {
	d.active--
	if d.active > 0 {
		return
	}
	d.releaseState(ctx)
}

func (d *Driver) releaseState(ctx context.Context) {
	if err := d.of.Send(ctx, flowMod(0, ofpfcDelete, &Flow{Table: ofpttAll, Cookie: cookieOf(0, 0)}, cookieAnyGen)); err != nil {
		d.log.Error("removing driver flows", "err", err)
	}
	if d.cfg.UseGRE {
		if err := d.db.delPort(ctx, d.cfg.Bridge, d.cfg.GRETunnel); err != nil {
			d.log.Error("removing GRE port", "err", err)
		}
	}
	if d.cfg.VXLAN {
		if err := d.db.delPort(ctx, d.cfg.Bridge, vxlanTunnel); err != nil {
			d.log.Error("removing VXLAN port", "err", err)
		}
	}
}

func (d *Driver) allocGroup() (uint32, error) {
	if n := len(d.freeGroup); n > 0 {
		id := d.freeGroup[n-1]
		d.freeGroup = d.freeGroup[:n-1]
		return id, nil
	}
	if d.nextGroup >= 1<<24-1 {
		return 0, errors.New("no group id left")
	}
	d.nextGroup++
	return groupTag | d.nextGroup, nil
}

func (d *Driver) freeGroupID(id uint32) { d.freeGroup = append(d.freeGroup, id) }

func (d *Driver) groupTemplate() Group {
	g := Group{Method: d.cfg.HashMethod, Param: d.cfg.HashParam}
	if d.cfg.HashMethod == "hash" {
		for _, f := range d.cfg.HashFields {
			g.Fields = append(g.Fields, hashFields[f])
		}
	}
	return g
}

// peMAC resolves the MAC address of a remote PE (bare MPLS): the kernel
// neighbour entry on the interface routing to it, after a datagram to its
// discard port triggered the ARP resolution if needed.
func (d *Driver) peMAC(ctx context.Context, pe netip.Addr) (net.HardwareAddr, error) {
	routes, err := netlink.RouteGet(pe.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, fmt.Errorf("no route to remote PE %s: %v", pe, err)
	}
	link := routes[0].LinkIndex
	next := pe
	if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok && gw.IsValid() {
		next = gw.Unmap()
	}
	lookup := func() net.HardwareAddr {
		neighs, _ := netlink.NeighList(link, netlink.FAMILY_V4)
		for _, n := range neighs {
			a, _ := netip.AddrFromSlice(n.IP)
			if a.Unmap() == next && len(n.HardwareAddr) == 6 && n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
				return n.HardwareAddr
			}
		}
		return nil
	}
	if mac := lookup(); mac != nil {
		return mac, nil
	}
	if c, err := net.Dial("udp4", netip.AddrPortFrom(next, 9).String()); err == nil {
		_, _ = c.Write([]byte{0})
		c.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if mac := lookup(); mac != nil {
			return mac, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("MAC address of remote PE %s not found (ARP resolution failed)", pe)
}

// LookingGlass implements dataplane.Driver.
func (d *Driver) LookingGlass() map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var mplsIf any
	if d.cfg.MPLSInterface != "" {
		mplsIf = d.cfg.MPLSInterface
	}
	gre := map[string]any{"enabled": d.cfg.UseGRE}
	if d.cfg.UseGRE {
		gre["gre_tunnel_port"] = d.cfg.GRETunnel
	}
	if d.cfg.VXLAN {
		gre["vxlan_tunnel_port"] = vxlanTunnel
	}
	lg := map[string]any{
		"ovs_bridge":     d.cfg.Bridge,
		"mpls_interface": mplsIf,
		"gre":            gre,
		"vxlan":          map[string]any{"enabled": d.cfg.VXLAN},
		"tables":         d.tables(),
	}
	if d.adopt != nil {
		lg["adoption"] = d.adoptionLG()
	}
	if d.active > 0 {
		var flows []string
		for _, f := range d.pl.driverFlows() {
			flows = append(flows, f.String())
		}
		lg["flows"] = flows
	}
	ids := make([]int, 0, len(d.instances))
	for id := range d.instances {
		ids = append(ids, int(id))
	}
	slices.Sort(ids)
	lg["vrfs"] = ids
	return lg
}

// NewIPVPNInstance implements dataplane.IPVPNDriver.
func (d *Driver) NewIPVPNInstance(ctx context.Context, cfg dataplane.InstanceConfig) (dataplane.IPVPNInstance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ready {
		return nil, errors.New("ovs driver not initialized")
	}
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	inst := newInstance(d, cfg)
	d.adoptRoutes(inst)
	d.instances[cfg.ID] = inst
	return inst, nil
}
