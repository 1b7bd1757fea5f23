package webui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"bagpipe/internal/lookingglass"
	"bagpipe/internal/pyjson"
)

// The pages are built from the looking glass documents themselves: a
// rendered document is encoded to JSON as /looking-glass would send it and
// decoded into ordered generic values, so that the HTML shows exactly what
// the JSON API shows.

// object is a decoded JSON object, members in order.
type object = pyjson.Object

// toGeneric encodes a rendered document and decodes it into nil, bool,
// string, json.Number, []any and object values.
func toGeneric(doc lookingglass.JSON) (any, error) {
	var b bytes.Buffer
	if err := doc.Encode(&b); err != nil {
		return nil, err
	}
	return pyjson.Decode(b.Bytes())
}

// text formats a scalar as the page shows it ("" for null).
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// strings returns the string items of a list.
func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, text(x))
	}
	return out
}

// path follows object keys.
func path(v any, keys ...string) any {
	for _, k := range keys {
		o, ok := v.(object)
		if !ok {
			return nil
		}
		v = o.Value(k)
	}
	return v
}
