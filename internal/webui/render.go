package webui

import (
	"encoding/json"
	"html/template"
	"net/url"
	"strings"
)

// linker turns looking glass hrefs into links of the web view.
type linker struct {
	base   string // absolute URL of the looking glass root, e.g. http://h:8082/looking-glass
	prefix string // path of the web view, e.g. /ui
}

// link returns the web view page of a looking glass href: instances and
// peers have their own pages, anything else the generic view; hrefs
// outside the looking glass are kept.
func (l linker) link(href string) string {
	rest, ok := strings.CutPrefix(href, l.base+"/")
	if !ok {
		return href
	}
	segs := strings.Split(rest, "/")
	switch {
	case len(segs) == 3 && segs[0] == "vpns" && segs[1] == "instances":
		return l.prefix + "/instances/" + segs[2]
	case len(segs) == 3 && segs[0] == "bgp" && segs[1] == "peers":
		return l.prefix + "/peers/" + segs[2]
	}
	return l.prefix + "/lg/" + rest
}

// lgPath returns the web view of a looking glass path given as segments.
func (l linker) lgPath(segs ...string) string {
	return l.prefix + "/lg/" + quotePath(segs)
}

func quotePath(segs []string) string {
	q := make([]string, len(segs))
	for i, s := range segs {
		q[i] = url.PathEscape(s)
	}
	return strings.Join(q, "/")
}

// routeRow is one route of a route table.
type routeRow struct {
	Key        string // destination (received/best routes) or family (dump)
	NLRI       string
	Family     string
	NextHop    string
	RTs        []string
	Attributes []attr
	Source     string
	SourceLink string
}

type attr struct{ Name, Value string }

// asRoute decodes a route dict {"<nlri>": {"afi-safi", ...}}.
func asRoute(v any, l linker) (routeRow, bool) {
	o, ok := v.(object)
	if !ok || len(o) != 1 {
		return routeRow{}, false
	}
	body, ok := o[0].Value.(object)
	if !ok || body.Value("afi-safi") == nil {
		return routeRow{}, false
	}
	r := routeRow{
		NLRI:    o[0].Key,
		Family:  text(body.Value("afi-safi")),
		NextHop: text(body.Value("next_hop")),
		RTs:     stringList(body.Value("route_targets")),
	}
	if attrs, ok := body.Value("attributes").(object); ok {
		for _, m := range attrs {
			r.Attributes = append(r.Attributes, attr{m.Key, text(m.Value)})
		}
	}
	if src, ok := body.Value("source").(object); ok {
		r.Source = text(src.Value("id"))
		if href := text(src.Value("href")); href != "" {
			r.SourceLink = l.link(href)
		}
	}
	return r, true
}

// routeList decodes a list of route dicts (false if v is not one).
func routeList(v any, key string, l linker) ([]routeRow, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	rows := make([]routeRow, 0, len(list))
	for _, x := range list {
		r, ok := asRoute(x, l)
		if !ok {
			return nil, false
		}
		r.Key = key
		rows = append(rows, r)
	}
	return rows, true
}

// routeTable decodes a list of routes, or an object whose members are
// lists of routes (by destination, or by family): false otherwise.
func routeTable(v any, l linker) (rows []routeRow, keyed bool, ok bool) {
	if rows, ok := routeList(v, "", l); ok {
		return rows, false, len(rows) > 0
	}
	o, isObj := v.(object)
	if !isObj || len(o) == 0 {
		return nil, false, false
	}
	for _, m := range o {
		r, ok := routeList(m.Value, m.Key, l)
		if !ok {
			return nil, false, false
		}
		if len(r) == 0 {
			r = []routeRow{{Key: m.Key}}
		}
		rows = append(rows, r...)
	}
	return rows, true, true
}

// generic renders any looking glass value as HTML.
type generic struct {
	b strings.Builder
	l linker
}

func (g *generic) esc(s string) { g.b.WriteString(template.HTMLEscapeString(s)) }

func (g *generic) html() template.HTML { return template.HTML(g.b.String()) } //nolint:gosec // every text is escaped

func (g *generic) value(v any) {
	switch v := v.(type) {
	case nil:
		g.b.WriteString(`<span class="null">null</span>`)
	case string:
		g.str(v)
	case json.Number, bool:
		g.esc(text(v))
	case []any:
		g.list(v)
	case object:
		g.object(v)
	default:
		g.esc(text(v))
	}
}

func (g *generic) str(s string) {
	switch {
	case strings.HasPrefix(s, "target:"):
		g.b.WriteString(`<span class="rt">`)
		g.esc(s)
		g.b.WriteString(`</span>`)
	case strings.Contains(s, "\n"):
		g.b.WriteString(`<pre>`)
		g.esc(s)
		g.b.WriteString(`</pre>`)
	default:
		g.esc(s)
	}
}

func (g *generic) a(href, label string) {
	g.b.WriteString(`<a href="`)
	g.esc(href)
	g.b.WriteString(`">`)
	g.esc(label)
	g.b.WriteString(`</a>`)
}

// object renders a link for {"href"} or {"id", "href"}, a route table for
// routes, else a key/value table.
func (g *generic) object(o object) {
	if href, ok := o.Value("href").(string); ok && len(o) <= 2 {
		label := "…"
		if id := o.Value("id"); id != nil {
			label = text(id)
		}
		g.a(g.l.link(href), label)
		return
	}
	if len(o) == 0 {
		g.b.WriteString(`<span class="null">{}</span>`)
		return
	}
	if rows, keyed, ok := routeTable(o, g.l); ok {
		g.routes(rows, keyed)
		return
	}
	g.b.WriteString(`<table class="kv">`)
	for _, m := range o {
		g.b.WriteString(`<tr><th>`)
		g.esc(m.Key)
		g.b.WriteString(`</th><td>`)
		g.value(m.Value)
		g.b.WriteString(`</td></tr>`)
	}
	g.b.WriteString(`</table>`)
}

// list renders routes as a route table, objects sharing their keys as a
// table, scalars inline, anything else as a list.
func (g *generic) list(l []any) {
	if len(l) == 0 {
		g.b.WriteString(`<span class="null">[]</span>`)
		return
	}
	if rows, _, ok := routeTable(l, g.l); ok {
		g.routes(rows, false)
		return
	}
	if cols, ok := sameKeys(l); ok {
		g.b.WriteString(`<table class="grid"><tr>`)
		for _, c := range cols {
			if c == "href" {
				continue
			}
			g.b.WriteString(`<th>`)
			g.esc(c)
			g.b.WriteString(`</th>`)
		}
		g.b.WriteString(`</tr>`)
		for _, x := range l {
			o := x.(object)
			href, _ := o.Value("href").(string)
			g.b.WriteString(`<tr>`)
			for _, c := range cols {
				if c == "href" {
					continue
				}
				g.b.WriteString(`<td>`)
				if c == "id" && href != "" {
					g.a(g.l.link(href), text(o.Value(c)))
				} else {
					g.value(o.Value(c))
				}
				g.b.WriteString(`</td>`)
			}
			g.b.WriteString(`</tr>`)
		}
		g.b.WriteString(`</table>`)
		return
	}
	scalars := true
	for _, x := range l {
		switch x.(type) {
		case []any, object:
			scalars = false
		}
	}
	if scalars {
		for i, x := range l {
			if i > 0 {
				g.b.WriteString(` `)
			}
			g.b.WriteString(`<span class="item">`)
			g.value(x)
			g.b.WriteString(`</span>`)
		}
		return
	}
	g.b.WriteString(`<ol>`)
	for _, x := range l {
		g.b.WriteString(`<li>`)
		g.value(x)
		g.b.WriteString(`</li>`)
	}
	g.b.WriteString(`</ol>`)
}

// sameKeys returns the keys of a list of objects that all have the same
// keys, in order.
func sameKeys(l []any) ([]string, bool) {
	var cols []string
	for i, x := range l {
		o, ok := x.(object)
		if !ok || len(o) == 0 {
			return nil, false
		}
		if i == 0 {
			for _, m := range o {
				cols = append(cols, m.Key)
			}
			continue
		}
		if len(o) != len(cols) {
			return nil, false
		}
		for j, m := range o {
			if m.Key != cols[j] {
				return nil, false
			}
		}
	}
	return cols, len(cols) > 0
}

// routes renders a route table.
func (g *generic) routes(rows []routeRow, keyed bool) {
	g.b.WriteString(`<table class="grid routes"><tr>`)
	if keyed {
		g.b.WriteString(`<th>destination</th>`)
	}
	g.b.WriteString(`<th>route</th><th>family</th><th>next hop</th><th>route targets</th><th>attributes</th><th>source</th></tr>`)
	for _, r := range rows {
		g.b.WriteString(`<tr>`)
		if keyed {
			g.b.WriteString(`<td class="mono">`)
			g.esc(r.Key)
			g.b.WriteString(`</td>`)
		}
		if r.NLRI == "" {
			g.b.WriteString(`<td colspan="6" class="null">no route</td></tr>`)
			continue
		}
		g.b.WriteString(`<td class="mono">`)
		g.esc(r.NLRI)
		g.b.WriteString(`</td><td>`)
		g.esc(r.Family)
		g.b.WriteString(`</td><td>`)
		g.esc(r.NextHop)
		g.b.WriteString(`</td><td>`)
		for _, rt := range r.RTs {
			g.str(rt)
			g.b.WriteString(` `)
		}
		g.b.WriteString(`</td><td class="mono">`)
		for i, a := range r.Attributes {
			if i > 0 {
				g.b.WriteString(`<br>`)
			}
			g.esc(a.Name + ": " + a.Value)
		}
		g.b.WriteString(`</td><td>`)
		if r.SourceLink != "" {
			g.a(r.SourceLink, r.Source)
		} else {
			g.esc(r.Source)
		}
		g.b.WriteString(`</td></tr>`)
	}
	g.b.WriteString(`</table>`)
}

// renderHTML renders v with links made by l.
func renderHTML(v any, l linker) template.HTML {
	g := &generic{l: l}
	g.value(v)
	return g.html()
}
