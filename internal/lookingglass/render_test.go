package lookingglass

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const base = "http://127.0.0.1:8082/looking-glass"

// testTree is a small synthetic tree using every entry kind.
func testTree() Object {
	vrf := Entries{
		{Name: "name", Kind: Value, Value: func() any { return "VRF-1" }},
		{Name: "route_targets", Kind: SubItem, Value: func() any {
			return map[string][]string{"import": {"target:64512:1"}, "export": {}}
		}},
		{Name: "ports", Kind: SubTree, Value: func() any {
			return map[string]any{"tap 1": map[string]any{"endpoints": []any{map[string]any{"label": 16}}}}
		}},
		{Name: "source", Kind: Value, Value: func() any { return Ref{ID: "EVI 2", Path: "bgp/workers/EVI 2"} }},
	}
	instances := Entry{Name: "instances", Kind: Collection,
		List: func() []Item {
			return []Item{{ID: "v1", Fields: map[string]any{"name": "VRF-1"}}, {ID: "e 1", Fields: map[string]any{"name": "EVI-2", "description": "an evi"}}}
		},
		Lookup: func(id string) (Object, bool) {
			if id == "v1" {
				return vrf, true
			}
			return nil, false
		},
	}
	return Entries{
		{Name: "summary", Kind: SubItem, Value: func() any {
			return Dict{{"b", 1}, {"a", map[string]any{"x": 2}}}
		}},
		{Name: "config", Kind: SubTree, Value: func() any {
			return map[string]map[string]any{"BGP": {"my_as": 64512, "peers": []string{}}}
		}},
		{Name: "vpns", Kind: Delegate, Object: func() Object { return Entries{instances} }},
		{Name: "broken", Kind: SubTree, Value: func() any { return errors.New("engine unavailable") }},
		{Name: "absent", Kind: Delegate, Object: func() Object { return nil }},
	}
}

func renderJSON(t *testing.T, path string) (string, error) {
	t.Helper()
	var segs []string
	if path != "" {
		segs = strings.Split(path, "/")
	}
	doc, err := Render(testTree(), segs, base+"/")
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal %q: %v", path, err)
	}
	return string(b), nil
}

func TestRender(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", `{"summary":{"b":1,"a":{"x":2}},"config":{"href":"` + base + `/config"},` +
			`"vpns":{"href":"` + base + `/vpns"},"broken":{"href":"` + base + `/broken"},"absent":{"href":"` + base + `/absent"}}`},
		{"summary", `{"b":1,"a":{"x":2}}`},
		{"summary/a", `{"x":2}`},
		{"summary/a/x", `2`},
		{"config", `{"BGP":{"my_as":64512,"peers":[]}}`},
		{"config/BGP/peers", `[]`},
		{"vpns", `{"instances":{"href":"` + base + `/vpns/instances"}}`},
		{"vpns/instances", `[{"id":"v1","name":"VRF-1","href":"` + base + `/vpns/instances/v1"},` +
			`{"id":"e 1","description":"an evi","name":"EVI-2","href":"` + base + `/vpns/instances/e%201"}]`},
		{"vpns/instances/v1", `{"name":"VRF-1","route_targets":{"export":[],"import":["target:64512:1"]},` +
			`"ports":{"href":"` + base + `/vpns/instances/v1/ports"},"source":{"id":"EVI 2","href":"` + base + `/bgp/workers/EVI%202"}}`},
		{"vpns/instances/v1/route_targets/import", `["target:64512:1"]`},
		{"vpns/instances/v1/ports/tap 1/endpoints", `[{"label":16}]`},
		{"vpns/instances/v1/name", `"VRF-1"`},
	} {
		got, err := renderJSON(t, tc.path)
		if err != nil {
			t.Errorf("%q: %v", tc.path, err)
			continue
		}
		assertSameJSON(t, tc.path, got, tc.want)
	}
}

// TestRenderKeyOrder checks that listings keep the entry order and Dicts
// their member order.
func TestRenderKeyOrder(t *testing.T) {
	got, err := renderJSON(t, "")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"summary":{"b":1,"a":{"x":2}},"config":`
	if !strings.HasPrefix(got, want) {
		t.Errorf("got %s, want prefix %s", got, want)
	}
}

func TestRenderNotFound(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"nope", "No such looking glass object: 'nope' at " + base + "/nope"},
		{"summary/x", "No such looking glass object: 'x' at " + base + "/summary"},
		{"summary/a/y", "No such looking glass object: 'y' at " + base + "/summary"},
		{"summary/b/y", "No such looking glass object: 'y' at " + base + "/summary"},
		{"config/BGP/nope", "No such looking glass object: 'nope' at " + base + "/config"},
		{"config/BGP/peers/0", "No such looking glass object: '0' at " + base + "/config"},
		{"vpns/nope", "No such looking glass object: 'nope' at " + base + "/vpns/nope"},
		{"vpns/instances/VRF-9", "No such looking glass object: VRF-9 at " + base + "/vpns/instances"},
		{"vpns/instances/v1/nope", "No such looking glass object: 'nope' at " + base + "/vpns/instances/v1/nope"},
		{"vpns/instances/v1/route_targets/x", "No such looking glass object: 'x' at " + base + "/vpns/instances/v1/route_targets"},
		{"vpns/instances/v1/source/id", "No such looking glass object: 'id' at " + base + "/vpns/instances/v1/source"},
		{"absent", "No such looking glass object: 'absent' at " + base + "/absent"},
	} {
		_, err := renderJSON(t, tc.path)
		var nf *NotFoundError
		if !errors.As(err, &nf) || !IsNotFound(err) {
			t.Errorf("%q: err = %v, want not found", tc.path, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.path, err, tc.want)
		}
	}
}

func TestRenderValueError(t *testing.T) {
	_, err := renderJSON(t, "broken")
	if err == nil || IsNotFound(err) || err.Error() != "engine unavailable" {
		t.Errorf("err = %v, want the value's error", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"VRF-1": "VRF-1", "10.0.0.1": "10.0.0.1", "a b": "a%20b", "a:b/c": "a%3Ab%2Fc", "é": "%C3%A9", "x_y~z": "x_y~z",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
}

func assertSameJSON(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s: invalid JSON %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}
