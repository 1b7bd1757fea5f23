package lookingglass

import (
	"net/netip"
	"reflect"
	"testing"

	"bagpipe/internal/route"
)

func TestPage(t *testing.T) {
	rs := make(Routes, 5)
	for i := range rs {
		rs[i] = &route.Route{NLRI: route.NLRI{Family: route.IPv4VPN, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 32)}}
	}
	tests := []struct {
		name          string
		v             any
		offset, limit int
		want          any
	}{
		{"routes", rs, 1, 2, rs[1:3]},
		{"routes no limit", rs, 3, -1, rs[3:]},
		{"routes past the end", rs, 9, 2, rs[5:]},
		{"negative offset", rs, -4, 1, rs[:1]},
		{"any list", []any{"a", "b", "c"}, 2, 10, []any{"c"}},
		{"typed list", []string{"a", "b", "c"}, 0, 2, []string{"a", "b"}},
		{"dump by family", Dict{{"ipv4/mpls-vpn,*", rs}, {"l2vpn/evpn,*", Routes{}}}, 4, 5,
			Dict{{"ipv4/mpls-vpn,*", rs[4:]}, {"l2vpn/evpn,*", Routes{}}}},
		{"map of route lists", map[string]any{"a": rs, "b": rs[:1]}, 0, 1,
			map[string]any{"a": rs[:1], "b": rs[:1]}},
		{"object by member", map[string]any{"'10.0.0.2/32'": []any{2}, "'10.0.0.1/32'": []any{1}, "'10.0.0.3/32'": []any{3}}, 1, 1,
			Dict{{"'10.0.0.2/32'", []any{2}}}},
		{"dict by member", Dict{{"a", 1}, {"b", 2}}, 1, 5, Dict{{"b", 2}}},
		{"scalar", "text", 1, 1, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Page(tt.v, tt.offset, tt.limit)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Page(%v, %d, %d) = %#v, want %#v", tt.v, tt.offset, tt.limit, got, tt.want)
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	rs := make(Routes, 3)
	for _, tt := range []struct {
		v    any
		want int
	}{
		{rs, 3},
		{[]any{1, 2}, 2},
		{Dict{{"a", rs}, {"b", rs[:1]}}, 3},
		{map[string]any{"a": rs[:2], "b": rs[:1]}, 2},
		{map[string]any{"a": 1, "b": 2, "c": 3}, 3},
		{Dict{{"a", 1}}, 1},
		{map[string]int{"a": 1}, 1},
		{"x", 0},
		{nil, 0},
	} {
		if got := PageSize(tt.v); got != tt.want {
			t.Errorf("PageSize(%#v) = %d, want %d", tt.v, got, tt.want)
		}
	}
}
