package lookingglass

import "reflect"

// Page cuts the lists of a rendered value to the items [offset,
// offset+limit) (limit < 0: no limit), so that a client can read a large
// route table piece by piece:
//
//   - a list (Routes, any slice) is cut;
//   - an object whose members are Routes lists (the bgp/routes dump, by
//     family) has each of its lists cut;
//   - any other object (e.g. received_routes, keyed by destination) is cut
//     by member, in the order the members are encoded (Dict order, sorted
//     map keys).
//
// Anything else is returned unchanged. Page never modifies v.
func Page(v any, offset, limit int) any {
	switch x := v.(type) {
	case Routes:
		return pageSlice(x, offset, limit)
	case []any:
		return pageSlice(x, offset, limit)
	case Dict:
		if routeLists(x) {
			out := make(Dict, len(x))
			for i, kv := range x {
				out[i] = KV{kv.Key, Page(kv.Value, offset, limit)}
			}
			return out
		}
		return pageSlice(x, offset, limit)
	case map[string]any:
		if routeLists(x) {
			out := make(map[string]any, len(x))
			for k, v := range x {
				out[k] = Page(v, offset, limit)
			}
			return out
		}
		keys := pageSlice(sortedKeys(x), offset, limit)
		out := make(Dict, len(keys))
		for i, k := range keys {
			out[i] = KV{k, x[k]}
		}
		return out
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		lo, hi := bounds(rv.Len(), offset, limit)
		return rv.Slice(lo, hi).Interface()
	}
	return v
}

// routeLists reports whether the members of an object are all Routes
// lists (and there is at least one).
func routeLists(o any) bool {
	var values []any
	switch o := o.(type) {
	case Dict:
		for _, kv := range o {
			values = append(values, kv.Value)
		}
	case map[string]any:
		for _, v := range o {
			values = append(values, v)
		}
	}
	for _, v := range values {
		if _, ok := v.(Routes); !ok {
			return false
		}
	}
	return len(values) > 0
}

func pageSlice[S ~[]E, E any](s S, offset, limit int) S {
	lo, hi := bounds(len(s), offset, limit)
	return s[lo:hi:hi]
}

// bounds returns the slice bounds of a page of a list of n items.
func bounds(n, offset, limit int) (lo, hi int) {
	lo = min(max(offset, 0), n)
	hi = n
	if limit >= 0 && limit < n-lo {
		hi = lo + limit
	}
	return lo, hi
}

// PageSize returns the number of items Page pages over in v: the length
// of a list, of the longest list of a route dump, or the number of
// members of another object; 0 for anything else.
func PageSize(v any) int {
	switch x := v.(type) {
	case Routes:
		return len(x)
	case Dict:
		if routeLists(x) {
			n := 0
			for _, kv := range x {
				n = max(n, len(kv.Value.(Routes)))
			}
			return n
		}
		return len(x)
	case map[string]any:
		if routeLists(x) {
			n := 0
			for _, r := range x {
				n = max(n, len(r.(Routes)))
			}
			return n
		}
		return len(x)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map {
		return rv.Len()
	}
	return 0
}
