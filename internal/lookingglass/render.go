package lookingglass

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// NotFoundError reports a looking glass path that leads nowhere. Its
// message is the reference's: "No such looking glass object: <item> at
// <url>".
type NotFoundError struct {
	Item string // the path element, quoted ('x') when it was a map key
	At   string // absolute URL of the object where the lookup failed
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("No such looking glass object: %s at %s", e.Item, e.At)
}

// Render resolves path (the segments after /looking-glass) from root and
// returns the data to send, with hrefs made absolute from baseURL (the URL
// of the looking glass root, e.g. "http://127.0.0.1:8082/looking-glass"):
//
//   - an object is listed: Value and SubItem entries inlined, SubTree,
//     Delegate and Collection entries as {"href": ...};
//   - a Collection is listed as [{"id", <fields>, "href"}], and
//     <collection>/<id> is the object its Lookup returns;
//   - a Value, SubItem or SubTree entry is its value, and the path below it
//     walks into map keys (map[string]..., Dict).
//
// A path that leads nowhere gives a *NotFoundError. A Value function (or the
// Object of a Delegate) may fail the request by returning an error value:
// Render returns that error. Values are computed here; the encoding, done by
// JSON.Encode, formats Routes lazily.
func Render(root Object, path []string, baseURL string) (doc JSON, err error) {
	r := renderer{base: strings.TrimSuffix(baseURL, "/")}
	v, err := r.object(root, nil, path)
	if err != nil {
		return JSON{}, err
	}
	return JSON{Value: v, BaseURL: r.base}, nil
}

type renderer struct{ base string }

// url returns the absolute URL of a path relative to the root.
func (r *renderer) url(path []string) string { return href(r.base, path) }

func (r *renderer) notFound(item string, at []string) error {
	return &NotFoundError{Item: item, At: r.url(at)}
}

// object resolves rest from the object o found at path at.
func (r *renderer) object(o Object, at, rest []string) (any, error) {
	if len(rest) == 0 {
		return r.listing(o, at)
	}
	name := rest[0]
	here := append(at[:len(at):len(at)], name)
	e, ok := findEntry(o, name)
	if !ok {
		return nil, r.notFound(quoteKey(name), here)
	}
	switch e.Kind {
	case Delegate:
		obj, err := delegate(e)
		if err != nil {
			return nil, err
		}
		if obj == nil {
			return nil, r.notFound(quoteKey(name), here)
		}
		return r.object(obj, here, rest[1:])
	case Collection:
		if len(rest) == 1 {
			return r.collection(e, here), nil
		}
		id := rest[1]
		var obj Object
		if e.Lookup != nil {
			obj, ok = e.Lookup(id)
		}
		if !ok || obj == nil {
			return nil, r.notFound(id, here)
		}
		return r.object(obj, append(here, id), rest[2:])
	default: // Value, SubItem, SubTree
		v, err := value(e)
		if err != nil {
			return nil, err
		}
		return r.walk(v, rest[1:], here)
	}
}

// walk follows keys into v; at is the path of the entry v came from.
func (r *renderer) walk(v any, keys, at []string) (any, error) {
	for _, k := range keys {
		next, ok := child(v, k)
		if !ok {
			return nil, r.notFound(quoteKey(k), at)
		}
		v = next
	}
	return v, nil
}

// listing renders an object: entries in order.
func (r *renderer) listing(o Object, at []string) (any, error) {
	entries := o.LookingGlass()
	out := make(Dict, 0, len(entries))
	for _, e := range entries {
		var v any
		switch e.Kind {
		case Value, SubItem:
			var err error
			if v, err = value(e); err != nil {
				return nil, err
			}
		default:
			v = Dict{{"href", r.url(append(at[:len(at):len(at)], e.Name))}}
		}
		out = append(out, KV{e.Name, v})
	}
	return out, nil
}

// collection renders the items of a Collection entry found at path at.
func (r *renderer) collection(e Entry, at []string) any {
	var items []Item
	if e.List != nil {
		items = e.List()
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		d := make(Dict, 0, len(it.Fields)+2)
		d = append(d, KV{"id", it.ID})
		for _, k := range sortedKeys(it.Fields) {
			if k != "id" && k != "href" {
				d = append(d, KV{k, it.Fields[k]})
			}
		}
		d = append(d, KV{"href", r.url(append(at[:len(at):len(at)], it.ID))})
		out = append(out, d)
	}
	return out
}

func findEntry(o Object, name string) (Entry, bool) {
	for _, e := range o.LookingGlass() {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// value computes the data of a Value, SubItem or SubTree entry; an error
// value fails the request.
func value(e Entry) (any, error) {
	if e.Value == nil {
		return nil, nil
	}
	v := e.Value()
	if err, ok := v.(error); ok {
		return nil, err
	}
	return v, nil
}

func delegate(e Entry) (Object, error) {
	if e.Object == nil {
		return nil, nil
	}
	o := e.Object()
	if err, ok := o.(error); ok {
		return nil, err
	}
	return o, nil
}

// child returns v[key] when v is a map with string keys or a Dict.
func child(v any, key string) (any, bool) {
	switch m := v.(type) {
	case map[string]any:
		x, ok := m[key]
		return x, ok
	case Dict:
		return m.Get(key)
	case nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	x := rv.MapIndex(reflect.ValueOf(key).Convert(rv.Type().Key()))
	if !x.IsValid() {
		return nil, false
	}
	return x.Interface(), true
}

// IsNotFound reports whether err is (or wraps) a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// quoteKey quotes a dict key the way the reference's messages do.
func quoteKey(k string) string { return "'" + k + "'" }

// href returns base followed by the quoted path segments.
func href(base string, path []string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, s := range path {
		b.WriteByte('/')
		b.WriteString(Quote(s))
	}
	return b.String()
}

// splitRefPath splits a Ref path ("bgp/workers/VRF-1") into segments.
func splitRefPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Quote percent-encodes a path segment like Python's urllib.parse.quote:
// letters, digits and "_.-~" are kept, every other byte is encoded.
func Quote(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == '~'
}
