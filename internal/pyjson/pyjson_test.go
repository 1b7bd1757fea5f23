package pyjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodeKeepsOrderAndLiterals(t *testing.T) {
	got, err := Decode([]byte(` {"b": 1.50, "a": [true, null, "x"], "c": {}, "b": -0, "d": []} `))
	if err != nil {
		t.Fatal(err)
	}
	want := Object{
		{"b", json.Number("-0")}, // a repeated key keeps its first place and its last value
		{"a", []any{true, nil, "x"}},
		{"c", Object{}},
		{"d", []any{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a": }`, `[1,]`, `{} {}`, `1 2`, `NaN`} {
		if v, err := Decode([]byte(doc)); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", doc, v)
		}
	}
}

func TestMarshalLikePython(t *testing.T) {
	// Expected outputs are those of Python's json.dumps.
	for _, tc := range []struct {
		v    any
		want string
	}{
		{nil, `null`},
		{Object{}, `{}`},
		{[]string(nil), `[]`},
		{[]any{}, `[]`},
		{Object{{"a", 1}, {"b", []string{"x", "y"}}, {"c", Object{{"d", false}}}, {"e", nil}},
			`{"a": 1, "b": ["x", "y"], "c": {"d": false}, "e": null}`},
		{json.Number("1.50"), `1.50`},
		{"quote\" backslash\\ slash/ <&>", `"quote\" backslash\\ slash/ <&>"`},
		{"\b\f\n\r\t\x00\x1f\x7f", `"\b\f\n\r\t\u0000\u001f\u007f"`},
		{"é☃😀", `"\u00e9\u2603\ud83d\ude00"`},
		{"bad\xffutf8", `"bad\udcffutf8"`},
	} {
		if got := string(Marshal(tc.v)); got != tc.want {
			t.Errorf("Marshal(%#v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestObjectMethods(t *testing.T) {
	o := Object{}.Set("id", "x").Set("href", "h").Set("id", "y")
	if v, ok := o.Get("id"); !ok || v != "y" || len(o) != 2 {
		t.Errorf("Set/Get: %v", o)
	}
	if w := o.Without("id"); len(w) != 1 || w[0].Key != "href" || len(o) != 2 {
		t.Errorf("Without: %v (original %v)", w, o)
	}
	if _, ok := o.Get("nope"); ok {
		t.Error("Get of a missing key succeeded")
	}
}
