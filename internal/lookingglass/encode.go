package lookingglass

import (
	"bytes"
	"encoding"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"bagpipe/internal/route"
)

// Dict is a JSON object whose members keep their order. Looking glass data
// may use it where map[string]any would do, to control the key order of the
// output; paths walk into it like into a map.
type Dict []KV

// KV is one member of a Dict.
type KV struct {
	Key   string
	Value any
}

// Get returns the value of key.
func (d Dict) Get(key string) (any, bool) {
	for _, kv := range d {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Routes is a list of routes rendered as route dicts (see RouteJSON). It is
// encoded route by route without building the dicts, so that dumps of many
// routes stay cheap.
type Routes []*route.Route

// JSON is a rendered looking glass document: data in which Ref values
// become {"id", "href"} with hrefs made absolute from BaseURL when encoded.
type JSON struct {
	Value   any
	BaseURL string // e.g. "http://127.0.0.1:8082/looking-glass"
}

// MarshalJSON implements json.Marshaler.
func (j JSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := j.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Encode writes the document to w as JSON, streaming: the output is
// flushed to w in chunks as it is produced.
func (j JSON) Encode(w io.Writer) error {
	e := encoder{w: w, base: j.BaseURL, buf: make([]byte, 0, flushSize+4096)}
	e.value(j.Value)
	e.flush()
	return e.err
}

const flushSize = 32 << 10

// encoder writes JSON to w through buf. Map keys are sorted; strings are
// not HTML-escaped.
type encoder struct {
	w       io.Writer
	base    string
	buf     []byte
	err     error
	scratch []byte
	frags   fragments
}

func (e *encoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

func (e *encoder) maybeFlush() {
	if len(e.buf) >= flushSize {
		e.flush()
	}
}

func (e *encoder) raw(s string) { e.buf = append(e.buf, s...) }

func (e *encoder) str(s string) { e.buf = appendString(e.buf, s) }

func (e *encoder) key(k string) {
	e.str(k)
	e.buf = append(e.buf, ':', ' ')
}

func (e *encoder) ref(r Ref) {
	e.raw(`{"id": `)
	e.str(r.ID)
	e.raw(`, "href": `)
	e.str(href(e.base, splitRefPath(r.Path)))
	e.buf = append(e.buf, '}')
}

// value encodes v. Known types are handled directly; maps with string keys,
// slices and pointers are walked with reflection so that nested Ref values
// are resolved; anything else goes through encoding/json.
func (e *encoder) value(v any) {
	if e.err != nil {
		return
	}
	switch v := v.(type) {
	case nil:
		e.raw("null")
	case string:
		e.str(v)
	case bool:
		e.buf = strconv.AppendBool(e.buf, v)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, v, 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, v, 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case float64:
		e.float(v)
	case json.Number:
		if v == "" {
			e.raw("0")
		} else {
			e.raw(string(v))
		}
	case Ref:
		e.ref(v)
	case *Ref:
		if v == nil {
			e.raw("null")
		} else {
			e.ref(*v)
		}
	case Dict:
		e.buf = append(e.buf, '{')
		for i, kv := range v {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.key(kv.Key)
			e.value(kv.Value)
		}
		e.buf = append(e.buf, '}')
	case map[string]any:
		e.buf = append(e.buf, '{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.key(k)
			e.value(v[k])
		}
		e.buf = append(e.buf, '}')
	case []any:
		e.buf = append(e.buf, '[')
		for i, x := range v {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.value(x)
			e.maybeFlush()
		}
		e.buf = append(e.buf, ']')
	case []string:
		e.buf = append(e.buf, '[')
		for i, x := range v {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.str(x)
		}
		e.buf = append(e.buf, ']')
	case Routes:
		e.buf = append(e.buf, '[')
		for i, r := range v {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.route(r)
			e.maybeFlush()
		}
		e.buf = append(e.buf, ']')
	case *route.Route:
		e.route(v)
	case json.Marshaler:
		e.marshal(v)
	case encoding.TextMarshaler:
		t, err := v.MarshalText()
		if err != nil {
			e.err = err
			return
		}
		e.str(string(t))
	default:
		e.reflect(reflect.ValueOf(v))
	}
	e.maybeFlush()
}

func (e *encoder) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.raw("null")
		return
	}
	e.marshal(f)
}

func (e *encoder) marshal(v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		e.err = err
		return
	}
	e.buf = append(e.buf, bytes.TrimRight(b.Bytes(), "\n")...)
}

func (e *encoder) reflect(rv reflect.Value) {
	switch rv.Kind() {
	case reflect.Invalid:
		e.raw("null")
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.raw("null")
			return
		}
		e.value(rv.Elem().Interface())
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			e.marshal(rv.Interface())
			return
		}
		if rv.IsNil() {
			e.raw("null")
			return
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			switch {
			case a.String() < b.String():
				return -1
			case a.String() > b.String():
				return 1
			}
			return 0
		})
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.key(k.String())
			e.value(rv.MapIndex(k).Interface())
		}
		e.buf = append(e.buf, '}')
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			e.marshal(rv.Interface()) // []byte: base64, as encoding/json
			return
		}
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			e.raw("null")
			return
		}
		e.buf = append(e.buf, '[')
		for i := range rv.Len() {
			if i > 0 {
				e.buf = append(e.buf, ',', ' ')
			}
			e.value(rv.Index(i).Interface())
			e.maybeFlush()
		}
		e.buf = append(e.buf, ']')
	case reflect.String:
		e.str(rv.String())
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, rv.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		e.float(rv.Float())
	default:
		e.marshal(rv.Interface())
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like encoding/json it replaces
// invalid UTF-8 and escapes U+2028 and U+2029, but it does not escape HTML
// characters.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
