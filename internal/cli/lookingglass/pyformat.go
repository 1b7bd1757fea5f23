package lookingglass

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The reference tool is written in Python; these helpers reproduce how Python
// renders values so that the output is the same byte for byte.

// pyStr renders a decoded JSON scalar as Python's str() renders the value
// json.loads would give: None, True, False, integers in decimal, floats in
// their shortest repr, strings as they are.
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return v
	case json.Number:
		return pyNumber(string(v))
	}
	return fmt.Sprint(v)
}

// pyNumber renders a JSON number literal the way Python prints the int or
// float json.loads makes of it.
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if strings.Trim(lit, "-0") == "" {
			return "0" // "-0" is the integer 0
		}
		return lit
	}
	f, _ := strconv.ParseFloat(lit, 64) // ±Inf on overflow, as in Python
	return pyFloat(f)
}

// pyFloat renders f as Python's repr(float): the shortest digits that round
// trip, in positional notation with at least one decimal when the decimal
// exponent is in [-5, 16), in scientific notation otherwise ("1e-05",
// "1.5e+16").
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	sign := ""
	if math.Signbit(f) {
		sign, f = "-", -f
	}
	// Shortest round-trip digits d.ddd and exponent, e.g. "1.5e+16".
	mantissa, expText, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mantissa, ".", "", 1)
	point := exp + 1 // position of the decimal point in digits
	if point <= -4 || point > 16 {
		expSign := '+'
		if exp < 0 {
			expSign, exp = '-', -exp
		}
		return fmt.Sprintf("%s%se%c%02d", sign, mantissa, expSign, exp)
	}
	switch {
	case point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		return sign + digits + strings.Repeat("0", point-len(digits)) + ".0"
	default:
		return sign + digits[:point] + "." + digits[point:]
	}
}

// pyBytesRepr renders b as Python's repr(bytes), e.g. b'a\n\'b\xc3'.
func pyBytesRepr(b []byte) string {
	quote := byte('\'')
	if bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') < 0 {
		quote = '"'
	}
	var sb strings.Builder
	sb.WriteByte('b')
	sb.WriteByte(quote)
	for _, c := range b {
		switch {
		case c == quote || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c < ' ' || c >= 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte(quote)
	return sb.String()
}

// pyQuote percent-encodes s as Python's urllib.parse.quote(s) does: letters,
// digits, "_.-~" and "/" are kept, every other byte becomes %XX.
func pyQuote(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}
