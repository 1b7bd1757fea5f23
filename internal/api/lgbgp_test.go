package api

import (
	"net/http"
	"reflect"
	"regexp"
	"testing"
)

// TestPeerLookingGlassNewKeys checks that the keys added to the peer object
// (graceful restart, max_prefixes, tcp_md5) come after every key of the
// reference, in its order (spec §4.3), and can be walked into.
func TestPeerLookingGlassNewKeys(t *testing.T) {
	s, _ := lgFixture(t)
	r := do(t, s, http.MethodGet, "/looking-glass/bgp/peers/127.0.0.2", "")
	order := regexp.MustCompile(`^\{"peeringAddresses": \{.*\}, "as_info": \{.*\}, "rtc": \{.*\}, "active_families": \[.*\], ` +
		`"protocol": \{.*\}, "name": "BGP-127.0.0.2", "internals": \{.*\}, "adv_routes": \{.*\}, "logs": \{.*\}, ` +
		`"graceful_restart": \{"enabled": true, "negotiated": true, "peer_restart_time": 120, .*\}, ` +
		`"max_prefixes": \{"limit": 1000, "routes": 1, "exceeded": 1\}, "tcp_md5": \{"configured": true\}\}$`)
	if r.status != http.StatusOK || !order.MatchString(r.body) {
		t.Errorf("peer object: %d %s", r.status, r.body)
	}
	for path, want := range map[string]any{
		"/bgp/peers/127.0.0.2/max_prefixes/routes":                  1.0,
		"/bgp/peers/127.0.0.2/graceful_restart/stale_routes":        3.0,
		"/bgp/peers/127.0.0.2/graceful_restart/end_of_rib_received": []any{"(ipv4, rtc)"},
		"/bgp/peers/127.0.0.2/tcp_md5/configured":                   true,
		"/bgp/workers/BGP-127.0.0.2/max_prefixes/limit":             1000.0,
		"/bgp/peers/127.0.0.3/max_prefixes/limit":                   nil,
	} {
		if got := get(t, s, path); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
}
