package api

import (
	"net/netip"
	"strings"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

// endpoint is what attach and detach requests share.
type endpoint struct {
	instanceID string
	macString  string
	mac        route.MAC
	ipString   string
	ip         netip.Prefix
	localPort  map[string]any // normalised, converted by finish
}

// parseAttach validates an attach_localport body and converts it (spec
// §3.6). The checks the reference makes come first and in its order, so
// that the first error reported is the reference's; the checks it did not
// make (its internal errors) follow.
func parseAttach(p params) (*vpn.AttachRequest, error) {
	t, err := parseVPNType(p)
	if err != nil {
		return nil, err
	}
	mandatory := []string{"vpn_instance_id", "mac_address", "local_port", "import_rt", "export_rt"}
	if t == dataplane.IPVPN {
		mandatory = append(mandatory, "ip_address")
	}
	if err := requireKeys(p, mandatory); err != nil {
		return nil, err
	}
	importRTs, err := rtStrings("import_rt", p["import_rt"])
	if err != nil {
		return nil, err
	}
	exportRTs, err := rtStrings("export_rt", p["export_rt"])
	if err != nil {
		return nil, err
	}
	ep, err := parseEndpoint(p, t)
	if err != nil {
		return nil, err
	}
	req := &vpn.AttachRequest{}
	if v, ok := p["advertise_subnet"]; ok {
		if req.AdvertiseSubnet, ok = v.(bool); !ok {
			return nil, vpn.BadRequest("'advertise_subnet' must be a boolean")
		}
	}
	if req.Direction, err = parseDirection(p); err != nil {
		return nil, err
	}
	if t == dataplane.IPVPN && !p.has("gateway_ip") {
		return nil, missing("gateway_ip")
	}
	if req.GatewayIP, err = parseGateway(p, t); err != nil {
		return nil, err
	}
	if ep.instanceID, err = instanceID(p); err != nil {
		return nil, err
	}
	if req.ImportRTs, err = parseRTs("import_rt", importRTs); err != nil {
		return nil, err
	}
	if req.ExportRTs, err = parseRTs("export_rt", exportRTs); err != nil {
		return nil, err
	}
	lp, err := localPort(ep.localPort, t)
	if err != nil {
		return nil, err
	}
	if req.Readvertise, err = parseReadvertise(p); err != nil {
		return nil, err
	}
	if req.AttractTraffic, err = parseAttractTraffic(p, req.Readvertise); err != nil {
		return nil, err
	}
	if err := parseOptions(p, req); err != nil {
		return nil, err
	}
	req.VPNType, req.InstanceID, req.LocalPort = t, ep.instanceID, lp
	req.MACString, req.MAC, req.IPString, req.IP = ep.macString, ep.mac, ep.ipString, ep.ip
	return req, nil
}

// parseDetach validates a detach_localport body: the same checks as an
// attach for the keys a detach uses; other keys are ignored.
func parseDetach(p params) (*vpn.DetachRequest, error) {
	t, err := parseVPNType(p)
	if err != nil {
		return nil, err
	}
	mandatory := []string{"vpn_instance_id", "mac_address", "local_port"}
	if t == dataplane.IPVPN {
		mandatory = append(mandatory, "ip_address")
	}
	if err := requireKeys(p, mandatory); err != nil {
		return nil, err
	}
	ep, err := parseEndpoint(p, t)
	if err != nil {
		return nil, err
	}
	if v, ok := p["advertise_subnet"]; ok { // checked by the reference on detach too
		if _, ok := v.(bool); !ok {
			return nil, vpn.BadRequest("'advertise_subnet' must be a boolean")
		}
	}
	if ep.instanceID, err = instanceID(p); err != nil {
		return nil, err
	}
	lp, err := localPort(ep.localPort, t)
	if err != nil {
		return nil, err
	}
	return &vpn.DetachRequest{
		VPNType: t, InstanceID: ep.instanceID, LocalPort: lp,
		MACString: ep.macString, MAC: ep.mac, IPString: ep.ipString, IP: ep.ip,
	}, nil
}

func parseVPNType(p params) (dataplane.VPNType, error) {
	v, ok := p["vpn_type"]
	if !ok {
		return "", vpn.BadRequest("missing instance_type")
	}
	if s, ok := v.(string); ok && (s == string(dataplane.IPVPN) || s == string(dataplane.EVPN)) {
		return dataplane.VPNType(s), nil
	}
	return "", vpn.BadRequest("unknown vpn_type: %s", display(v))
}

func missing(key string) error { return vpn.BadRequest("Missing parameter: '%s'", key) }

// requireKeys checks that keys are present, in order (a null value counts
// as present, as in the reference: it is rejected by the later checks).
func requireKeys(p params, keys []string) error {
	for _, k := range keys {
		if !p.has(k) {
			return missing(k)
		}
	}
	return nil
}

// parseEndpoint checks local_port, mac_address and ip_address, in this
// order.
func parseEndpoint(p params, t dataplane.VPNType) (endpoint, error) {
	var ep endpoint
	var err error
	if ep.localPort, err = localPortObject(p["local_port"]); err != nil {
		return ep, err
	}
	macV := p["mac_address"]
	s, ok := macV.(string)
	if !ok {
		return ep, vpn.BadRequest("MAC address %s is not valid", display(macV))
	}
	if ep.mac, err = route.ParseMAC(s); err != nil {
		return ep, vpn.BadRequest("MAC address %s is not valid", s)
	}
	ep.macString = s
	ipV, ok := p.present("ip_address")
	if !ok {
		if t == dataplane.IPVPN {
			return ep, missing("ip_address")
		}
		return ep, nil // E-VPN endpoint without IP (wildcard on detach)
	}
	if s, ok = ipV.(string); !ok {
		return ep, vpn.BadRequest("IP address %s is not valid", display(ipV))
	}
	pfx, ok := parseIP(s)
	if !ok {
		return ep, vpn.BadRequest("IP address %s is not valid", s)
	}
	if t == dataplane.IPVPN && !pfx.Addr().Is4() {
		return ep, vpn.BadRequest("IP address %s is not valid: ipvpn only supports IPv4", s)
	}
	ep.ipString, ep.ip = s, pfx
	return ep, nil
}

func instanceID(p params) (string, error) {
	id, ok := p["vpn_instance_id"].(string)
	if !ok || id == "" {
		return "", vpn.BadRequest("'vpn_instance_id' must be a non-empty string, not %s", display(p["vpn_instance_id"]))
	}
	return id, nil
}

func parseDirection(p params) (dataplane.Direction, error) {
	v, _ := p.present("direction")
	if v == nil || v == "" {
		return dataplane.Both, nil
	}
	if s, ok := v.(string); ok {
		switch d := dataplane.Direction(s); d {
		case dataplane.Both, dataplane.ToPort, dataplane.FromPort:
			return d, nil
		}
	}
	return "", vpn.BadRequest("direction should be one of: both, to-port, from-port")
}

// parseGateway parses gateway_ip: null or "" is no gateway.
func parseGateway(p params, t dataplane.VPNType) (netip.Addr, error) {
	v, ok := p.present("gateway_ip")
	if !ok || v == "" {
		return netip.Addr{}, nil
	}
	s, _ := v.(string)
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" || (t == dataplane.IPVPN && !a.Is4()) {
		return netip.Addr{}, vpn.BadRequest("gateway_ip: IP address %s is not valid", display(v))
	}
	return a, nil
}
