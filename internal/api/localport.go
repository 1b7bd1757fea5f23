package api

import (
	"bagpipe/internal/dataplane"
	"bagpipe/internal/vpn"
)

// errLocalPortKeys is the reference's message for a local_port without
// linuxif nor evpn.
var errLocalPortKeys = vpn.BadRequest("Mandatory key is missing in local_port parameter (linuxif, or evpn)")

// localPortObject normalises local_port: a string designates a Linux
// interface ({"linuxif": s}); an object must have a "linuxif" or an "evpn"
// key.
func localPortObject(v any) (map[string]any, error) {
	switch v := v.(type) {
	case string:
		return map[string]any{"linuxif": v}, nil
	case map[string]any:
		_, linuxif := v["linuxif"]
		_, evpn := v["evpn"]
		if !linuxif && !evpn {
			return nil, errLocalPortKeys
		}
		return v, nil
	case []any:
		return nil, errLocalPortKeys
	}
	return nil, vpn.BadRequest("'local_port' must be a string or an object, not %s", jsonKind(v))
}

// localPort converts the normalised local_port object of a vpnType request
// (spec §3.6). Raw keeps the object as given.
func localPort(raw map[string]any, vpnType dataplane.VPNType) (*dataplane.LocalPort, error) {
	lp := &dataplane.LocalPort{Raw: raw}
	p := params(raw)
	var err error
	if lp.LinuxIf, err = p.optString("linuxif"); err != nil {
		return nil, vpn.BadRequest("local_port: %v", err)
	}
	if lp.VLAN, err = optInt(p, "vlan"); err != nil {
		return nil, vpn.BadRequest("local_port: %v", err)
	}
	if v, ok := p.present("ovs"); ok {
		if lp.OVS, err = ovsPort(v); err != nil {
			return nil, err
		}
	}
	if v, ok := p.present("evpn"); ok {
		if vpnType != dataplane.IPVPN {
			return nil, vpn.BadRequest("local_port: 'evpn' can only be given to attach an E-VPN to an ipvpn")
		}
		if _, ok := p.present("linuxif"); ok {
			return nil, vpn.BadRequest("local_port: 'linuxif' and 'evpn' cannot both be given")
		}
		if lp.EVPN, err = evpnPort(v); err != nil {
			return nil, err
		}
	}
	return lp, nil
}

func ovsPort(v any) (*dataplane.OVSPort, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, vpn.BadRequest("local_port: 'ovs' must be an object, not %s", jsonKind(v))
	}
	p := params(m)
	o := &dataplane.OVSPort{}
	if x, ok := p.present("plugged"); ok {
		if o.Plugged, ok = x.(bool); !ok {
			return nil, vpn.BadRequest("local_port: ovs: 'plugged' must be a boolean")
		}
	}
	var err error
	if o.PortName, err = p.optString("port_name"); err != nil {
		return nil, vpn.BadRequest("local_port: ovs: %v", err)
	}
	if o.PortNumber, err = optInt(p, "port_number"); err != nil {
		return nil, vpn.BadRequest("local_port: ovs: %v", err)
	}
	if o.VLAN, err = optInt(p, "vlan"); err != nil {
		return nil, vpn.BadRequest("local_port: ovs: %v", err)
	}
	return o, nil
}

func evpnPort(v any) (*dataplane.EVPNPort, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, vpn.BadRequest("local_port: 'evpn' must be an object, not %s", jsonKind(v))
	}
	p := params(m)
	id, err := p.optString("id")
	if err != nil {
		return nil, vpn.BadRequest("local_port: evpn: %v", err)
	}
	if id == "" {
		return nil, vpn.BadRequest("local_port: evpn: missing 'id' (the vpn_instance_id of the E-VPN)")
	}
	name, err := p.optString("ovs_port_name")
	if err != nil {
		return nil, vpn.BadRequest("local_port: evpn: %v", err)
	}
	return &dataplane.EVPNPort{ID: id, OVSPortName: name}, nil
}

// optInt returns the integer value of key (nil when absent or null).
func optInt(p params, key string) (*int, error) {
	v, ok := p.present(key)
	if !ok {
		return nil, nil
	}
	n, ok := intValue(v)
	if !ok {
		return nil, vpn.BadRequest("'%s' must be an integer, not %s", key, display(v))
	}
	return &n, nil
}
