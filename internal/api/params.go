package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

// params is the JSON object of an attach or detach request. Numbers are
// json.Number so that integers are exact.
type params map[string]any

// errNoDetails is the reference's answer to an empty or non-JSON body.
var errNoDetails = vpn.BadRequest("No local port details received")

// decodeParams parses a request body: any Content-Type, one JSON object.
func decodeParams(body []byte) (params, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errNoDetails
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errNoDetails // trailing data
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, vpn.BadRequest("the request body must be a JSON object, not %s", jsonKind(v))
	}
	return params(m), nil
}

// has reports whether key is present (even with a null value).
func (p params) has(key string) bool {
	_, ok := p[key]
	return ok
}

// present returns the value of key and whether it is present and not null.
func (p params) present(key string) (any, bool) {
	v, ok := p[key]
	return v, ok && v != nil
}

// optString returns the string value of key ("" when absent or null).
func (p params) optString(key string) (string, error) {
	v, ok := p.present(key)
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", vpn.BadRequest("'%s' must be a string, not %s", key, jsonKind(v))
	}
	return s, nil
}

// optUint returns the integer value of key in [0, max] (0 when absent or
// null) and whether it was given.
func (p params) optUint(key string, max uint64) (uint64, bool, error) {
	v, ok := p.present(key)
	if !ok {
		return 0, false, nil
	}
	n, ok := uintValue(v, max)
	if !ok {
		return 0, false, vpn.BadRequest("'%s' must be an integer between 0 and %d, not %s", key, max, display(v))
	}
	return n, true, nil
}

// uintValue converts a JSON integer in [0, max].
func uintValue(v any, max uint64) (uint64, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}

// intValue converts a JSON integer that fits an int.
func intValue(v any) (int, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// display formats a value for an error message: strings as they are, other
// values as JSON.
func display(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// parseIP parses an ip_address as netaddr does for the addresses clients
// send: "a.b.c.d", "a.b.c.d/len" or "a.b.c.d/m.m.m.m" (surrounding spaces
// ignored); an address without length is a host prefix. IPv6 is parsed
// too; the caller decides whether it is acceptable.
func parseIP(s string) (netip.Prefix, bool) {
	addrPart, lenPart, hasLen := strings.Cut(strings.TrimSpace(s), "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	if !hasLen {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	if n, ok := decimal(lenPart); ok && n <= a.BitLen() {
		return netip.PrefixFrom(a, n), true
	}
	if m, err := netip.ParseAddr(lenPart); err == nil && a.Is4() && m.Is4() {
		if bits, ok := maskLength(m); ok {
			return netip.PrefixFrom(a, bits), true
		}
	}
	return netip.Prefix{}, false
}

// decimal parses a short string of decimal digits.
func decimal(s string) (int, bool) {
	if s == "" || len(s) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// maskLength returns the length of a contiguous IPv4 netmask.
func maskLength(m netip.Addr) (int, bool) {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for v&0x80000000 != 0 {
		v <<= 1
		ones++
	}
	return ones, v == 0
}

// splitRTString splits "64512:1, 64512:2 64512:3" on commas and spaces.
func splitRTString(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// rtStrings checks the shape of a route target list: a JSON list of
// strings or a string of items separated by commas or spaces. Empty items
// are skipped.
func rtStrings(field string, v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return splitRTString(v), nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, vpn.BadRequest("%s: route targets must be strings like \"64512:1\", not %s", field, display(x))
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, vpn.BadRequest("%s: must be a list of route targets or a comma-separated string, not %s", field, jsonKind(v))
}

// parseRTs converts route target strings, dropping duplicates (the first
// occurrence is kept).
func parseRTs(field string, items []string) ([]route.RT, error) {
	out := make([]route.RT, 0, len(items))
	seen := make(map[route.RT]bool, len(items))
	for _, s := range items {
		rt, err := route.ParseRT(s)
		if err != nil {
			return nil, vpn.BadRequest("%s: %v", field, err)
		}
		if !seen[rt] {
			seen[rt] = true
			out = append(out, rt)
		}
	}
	return out, nil
}

// rtList is rtStrings followed by parseRTs.
func rtList(field string, v any) ([]route.RT, error) {
	items, err := rtStrings(field, v)
	if err != nil {
		return nil, err
	}
	return parseRTs(field, items)
}
