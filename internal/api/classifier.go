package api

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"

	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

// Traffic classifier of attract_traffic (spec §6.8): camelCase keys
// sourcePrefix, destinationPrefix (IPv4 prefixes), sourcePort,
// destinationPort ("N" or "min:max"), protocol (a name or a number; tcp
// when absent, any when null). A null or empty value leaves that field
// unconstrained. The classifier is also kept as given for the looking
// glass.

const classifierField = "attract_traffic/classifier/"

// classifierKeys are the keys a classifier may have.
var classifierKeys = []string{"sourcePrefix", "destinationPrefix", "sourcePort", "destinationPort", "protocol"}

// protocolNumbers are the protocol names exabgp (so the reference) knows.
var protocolNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "egp": 8, "udp": 17, "rsvp": 46, "gre": 47,
	"esp": 50, "ah": 51, "ospf": 89, "ipip": 94, "pim": 103, "sctp": 132,
}

// parseClassifier validates and converts an attract_traffic classifier.
func parseClassifier(m map[string]any) (route.Classifier, error) {
	c := route.Classifier{Protocol: 6}
	for k := range m {
		known := false
		for _, key := range classifierKeys {
			known = known || k == key
		}
		if !known {
			return c, vpn.BadRequest("%s%s: unknown key (expected one of %s)", classifierField, k, strings.Join(classifierKeys, ", "))
		}
	}
	var err error
	if c.Src, err = classifierPrefix(m, "sourcePrefix"); err != nil {
		return c, err
	}
	if c.Dst, err = classifierPrefix(m, "destinationPrefix"); err != nil {
		return c, err
	}
	if c.SrcPort, err = classifierPorts(m, "sourcePort"); err != nil {
		return c, err
	}
	if c.DstPort, err = classifierPorts(m, "destinationPort"); err != nil {
		return c, err
	}
	if v, ok := m["protocol"]; ok {
		if c.Protocol, err = classifierProtocol(v); err != nil {
			return c, err
		}
	}
	return c.Normalize(), nil
}

// unset reports whether a classifier value leaves its field open (null or
// empty string, as the reference's truth test).
func unset(v any) bool {
	s, isString := v.(string)
	return v == nil || (isString && s == "")
}

func classifierPrefix(m map[string]any, key string) (netip.Prefix, error) {
	v := m[key]
	if unset(v) {
		return netip.Prefix{}, nil
	}
	s, _ := v.(string)
	p, ok := parseIP(s)
	if !ok || !p.Addr().Is4() {
		return netip.Prefix{}, vpn.BadRequest("%s%s: %s is not a valid IPv4 prefix", classifierField, key, display(v))
	}
	return p.Masked(), nil
}

// classifierPorts parses "N", "min:max" or a JSON integer.
func classifierPorts(m map[string]any, key string) (route.PortRange, error) {
	v := m[key]
	if unset(v) {
		return route.PortRange{}, nil
	}
	bad := func(why string) (route.PortRange, error) {
		return route.PortRange{}, vpn.BadRequest("%s%s: %s %s (a port N or a range min:max, 0..65535)", classifierField, key, display(v), why)
	}
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	case json.Number:
		s = string(x)
	default:
		return bad("is not a port")
	}
	port := func(p string) (uint16, bool) {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		return uint16(n), err == nil
	}
	lo, hiStr, isRange := strings.Cut(s, ":")
	min, ok := port(lo)
	if !ok {
		return bad("is not a port")
	}
	max := min
	if isRange {
		if max, ok = port(hiStr); !ok {
			return bad("is not a port range")
		}
		if min > max {
			return bad("is an empty range")
		}
	}
	if min == 0 && max == 0 {
		return bad("cannot be matched (port 0); leave the key out to match any port")
	}
	return route.PortRange{Min: min, Max: max}.Normalize(), nil
}

// classifierProtocol parses a protocol name (exabgp's) or number (1..255).
func classifierProtocol(v any) (uint8, error) {
	if unset(v) {
		return 0, nil // null: any protocol (networking-sfc sends null)
	}
	var s string
	switch x := v.(type) {
	case string:
		s = strings.ToLower(strings.TrimSpace(x))
	case json.Number:
		s = string(x)
	}
	if n, ok := protocolNumbers[s]; ok {
		return n, nil
	}
	base := 10
	if strings.HasPrefix(s, "0x") {
		s, base = s[2:], 16
	}
	if n, err := strconv.ParseUint(s, base, 8); err == nil && n != 0 {
		return uint8(n), nil
	}
	return 0, vpn.BadRequest("%sprotocol: %s is not a protocol (a name such as tcp, udp, icmp, sctp, or a number 1..255)", classifierField, display(v))
}
