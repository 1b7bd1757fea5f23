package lookingglass

import (
	"encoding/json"
	"testing"
)

// Expected values below were printed by Python 3.11.

func TestPyStr(t *testing.T) {
	for lit, want := range map[string]string{
		"0.1": "0.1", "1e-05": "1e-05", "0.0001": "0.0001", "1e16": "1e+16", "1e15": "1000000000000000.0",
		"123456789012345.6": "123456789012345.6", "-0.0": "-0.0", "1e22": "1e+22", "2.5e-10": "2.5e-10",
		"1E400": "inf", "5e-324": "5e-324", "1.7976931348623157e308": "1.7976931348623157e+308",
		"0.30000000000000004": "0.30000000000000004", "-12.0": "-12.0", "-0": "0", "42": "42",
		"123456789012345678901234567890": "123456789012345678901234567890",
	} {
		if got := pyStr(json.Number(lit)); got != want {
			t.Errorf("pyStr(%s) = %s, want %s", lit, got, want)
		}
	}
	for v, want := range map[any]string{nil: "None", true: "True", false: "False", "s\n": "s\n"} {
		if got := pyStr(v); got != want {
			t.Errorf("pyStr(%#v) = %q, want %q", v, got, want)
		}
	}
}

func TestPyBytesRepr(t *testing.T) {
	for in, want := range map[string]string{
		"a\x00\x7f\xff'": `b"a\x00\x7f\xff'"`,
		"\"'":            `b'"\''`,
		"\\\r":           `b'\\\r'`,
		"":               `b''`,
	} {
		if got := pyBytesRepr([]byte(in)); got != want {
			t.Errorf("pyBytesRepr(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPyQuote(t *testing.T) {
	in := "a b/ü?#%~_.-!*()';:@&=+$,"
	want := "a%20b/%C3%BC%3F%23%25~_.-%21%2A%28%29%27%3B%3A%40%26%3D%2B%24%2C"
	if got := pyQuote(in); got != want {
		t.Errorf("pyQuote(%q) = %s, want %s", in, got, want)
	}
}
