// Package webui is a read-only web view of the looking glass: HTML pages
// generated on the server from the same looking glass tree as the JSON
// API (/looking-glass), with no JavaScript. Mounted under /ui on the REST
// API:
//
//	/ui/                  summary, BGP peers, VPN instances (route targets, ports, route counts)
//	/ui/instances/<id>    a VPN instance: properties, route targets, ports, best,
//	                      received and advertised routes, dataplane, subscriptions, logs
//	/ui/peers/<address>   a BGP peer: session, families, routes received from it
//	/ui/routes            every route of the route table, by family, paged
//	/ui/logs              recent warnings and errors
//	/ui/lg/<path>         any looking glass object, generically
//
// Long lists are paged (?offset=&limit=, 100 routes a page by default).
package webui

import (
	"bytes"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"bagpipe/internal/lookingglass"
)

// DefaultLimit is the number of routes (or items) a page shows.
const DefaultLimit = 100

// Handler serves the web view.
type Handler struct {
	root   lookingglass.Object
	prefix string
	log    *slog.Logger
}

// New returns the web view of the looking glass tree root, served under
// prefix (e.g. "/ui").
func New(root lookingglass.Object, prefix string, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{root: root, prefix: strings.TrimSuffix(prefix, "/"), log: log}
}

// request is one page being built.
type request struct {
	h    *Handler
	r    *http.Request
	base string // looking glass root URL, as the client addresses the server
	l    linker
}

// errNotFound is a page that does not exist.
var errNotFound = errors.New("not found")

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: this view is read-only", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), h.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rest == "" {
		http.Redirect(w, r, h.prefix+"/", http.StatusMovedPermanently)
		return
	}
	var segs []string
	for s := range strings.SplitSeq(strings.Trim(rest, "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		if u != "" {
			segs = append(segs, u)
		}
	}
	base := baseURL(r)
	req := &request{h: h, r: r, base: base, l: linker{base: base, prefix: h.prefix}}
	var p *page
	var err error
	switch {
	case len(segs) == 0:
		p, err = req.overview()
	case segs[0] == "instances" && len(segs) == 2:
		p, err = req.instance(segs[1])
	case segs[0] == "peers" && len(segs) == 2:
		p, err = req.peer(segs[1])
	case segs[0] == "routes" && len(segs) == 1:
		p, err = req.routes()
	case segs[0] == "logs" && len(segs) == 1:
		p, err = req.generic([]string{"logs"}, "Warnings and errors", "logs")
	case segs[0] == "lg":
		p, err = req.generic(segs[1:], "", "")
	default:
		err = errNotFound
	}
	if lookingglass.IsNotFound(err) || errors.Is(err, errNotFound) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		p = &page{Title: "Not found", Error: "No such page: " + r.URL.Path}
		if err != errNotFound {
			p.Error = err.Error()
		}
		_ = h.write(w, r, p)
		return
	}
	if err != nil {
		h.log.Error("web view failure", "path", r.URL.Path, "error", err)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_ = h.write(w, r, &page{Title: "Error", Error: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.write(w, r, p); err != nil {
		h.log.Debug("web view response interrupted", "path", r.URL.Path, "error", err)
	}
}

// write renders p (into a buffer: a template error must not leave half a
// page).
func (h *Handler) write(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Prefix = h.prefix
	var b bytes.Buffer
	t := templates[p.template]
	if t == nil {
		t = templates["error"]
	}
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		h.log.Error("web view template", "template", p.template, "error", err)
		return err
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := b.WriteTo(w)
	return err
}

// baseURL returns the looking glass root URL as the client addresses the
// server (the hrefs of the rendered documents start with it).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/looking-glass"
}

// render renders a looking glass path.
func (q *request) render(segs ...string) (lookingglass.JSON, error) {
	return lookingglass.Render(q.h.root, segs, q.base)
}

// get renders a looking glass path as generic values.
func (q *request) get(segs ...string) (any, error) {
	doc, err := q.render(segs...)
	if err != nil {
		return nil, err
	}
	return toGeneric(doc)
}

// paged renders a path, cut to the page the request asks for (offset,
// limit; DefaultLimit items by default), and tells the paging.
func (q *request) paged(segs ...string) (any, paging, error) {
	doc, err := q.render(segs...)
	if err != nil {
		return nil, paging{}, err
	}
	pg := q.paging(lookingglass.PageSize(doc.Value))
	doc.Value = lookingglass.Page(doc.Value, pg.Offset, pg.Limit)
	v, err := toGeneric(doc)
	return v, pg, err
}

// count renders a path and counts the routes (or items) it holds, without
// formatting them.
func (q *request) count(segs ...string) int {
	doc, err := q.render(segs...)
	if err != nil {
		return 0
	}
	return countRoutes(doc.Value)
}

// countRoutes counts the routes of a list, or of an object of lists.
func countRoutes(v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := 0
		for _, l := range x {
			n += lookingglass.PageSize(l)
		}
		return n
	case lookingglass.Dict:
		n := 0
		for _, kv := range x {
			n += lookingglass.PageSize(kv.Value)
		}
		return n
	}
	return lookingglass.PageSize(v)
}

// paging is the position of a page in a list.
type paging struct {
	Offset, Limit, Total int
	Prev, Next           string // links, "" when none
	First, Last          int    // 1-based positions shown
}

// paging reads ?offset= and ?limit= for a list of total items.
func (q *request) paging(total int) paging {
	query := q.r.URL.Query()
	offset, _ := strconv.Atoi(query.Get("offset"))
	limit, err := strconv.Atoi(query.Get("limit"))
	if err != nil || limit <= 0 {
		limit = DefaultLimit
	}
	offset = max(0, min(offset, total))
	p := paging{Offset: offset, Limit: limit, Total: total, First: offset + 1, Last: min(offset+limit, total)}
	link := func(off int) string {
		v := url.Values{}
		for k, vs := range query {
			v[k] = vs
		}
		v.Set("offset", strconv.Itoa(off))
		v.Set("limit", strconv.Itoa(limit))
		return q.r.URL.EscapedPath() + "?" + v.Encode()
	}
	if offset > 0 {
		p.Prev = link(max(0, offset-limit))
	}
	if offset+limit < total {
		p.Next = link(offset + limit)
	}
	return p
}

// Multi reports whether the list needs more than one page.
func (p paging) Multi() bool { return p.Total > p.Limit || p.Offset > 0 }

// kv is a labelled value.
type kv struct {
	Label string
	Value template.HTML
}

func (q *request) kvs(o object, keys ...string) []kv {
	var out []kv
	for _, k := range keys {
		for _, m := range o {
			if m.Key == k {
				out = append(out, kv{k, renderHTML(m.Value, q.l)})
			}
		}
	}
	return out
}

// summary is the header box of the overview.
func (q *request) summary() ([]kv, object, error) {
	v, err := q.get("summary")
	if err != nil {
		return nil, nil, err
	}
	s, _ := v.(object)
	return []kv{
		{"BGP established peers", esc(text(s.Value("BGP_established_peers")))},
		{"local routes", esc(text(path(s, "route_counts", "local_routes_count")))},
		{"received routes", esc(text(path(s, "route_counts", "received_routes_count")))},
		{"VPN instances", esc(text(s.Value("vpn_instances_count")))},
		{"warnings and errors", esc(text(s.Value("warnings_and_errors")))},
		{"started", esc(text(s.Value("start_time")))},
		{"version", esc(text(s.Value("version")))},
	}, s, nil
}

func esc(s string) template.HTML { return template.HTML(template.HTMLEscapeString(s)) } //nolint:gosec // escaped

// peerRow is a BGP peer of the overview.
type peerRow struct {
	Address, Link, State, Previous, Since string
	Families                              []string
	Received                              int
	Queue                                 string
}

// instanceRow is a VPN instance of the overview.
type instanceRow struct {
	ID, Link, Name, Type, Description, DataplaneID string
	Import, Export                                 []string
	Readvertise                                    string
	Ports                                          []string
	Best, Received, Advertised                     int
}

type overviewData struct {
	Summary   []kv
	Peers     []peerRow
	Instances []instanceRow
}

func (q *request) overview() (*page, error) {
	sum, _, err := q.summary()
	if err != nil {
		return nil, err
	}
	d := &overviewData{Summary: sum}
	peers, err := q.get("bgp", "peers")
	if err != nil {
		return nil, err
	}
	for _, p := range asList(peers) {
		id := text(path(p, "id"))
		row := peerRow{Address: id, Link: q.h.prefix + "/peers/" + url.PathEscape(id), State: text(path(p, "state"))}
		if obj, err := q.get("bgp", "peers", id); err == nil {
			row.Previous = strings.Trim(text(path(obj, "protocol", "previous_state")), "()")
			row.Since = text(path(obj, "protocol", "last_transition_time"))
			row.Families = stringList(path(obj, "active_families"))
			row.Queue = text(path(obj, "internals", "event queue length"))
		}
		row.Received = q.count("bgp", "peers", id, "adv_routes")
		d.Peers = append(d.Peers, row)
	}
	insts, err := q.get("vpns", "instances")
	if err != nil {
		return nil, err
	}
	for _, it := range asList(insts) {
		id := text(path(it, "id"))
		row := instanceRow{ID: id, Link: q.h.prefix + "/instances/" + url.PathEscape(id),
			Name: text(path(it, "name")), Description: text(path(it, "description"))}
		seg := func(s ...string) []string { return append([]string{"vpns", "instances", id}, s...) }
		if v, err := q.get(seg("route_targets")...); err == nil {
			row.Import, row.Export = stringList(path(v, "import")), stringList(path(v, "export"))
		}
		if v, err := q.get(seg("instance_type")...); err == nil {
			row.Type = text(v)
		}
		if v, err := q.get(seg("instance_dataplane_id")...); err == nil {
			row.DataplaneID = text(v)
		}
		if v, err := q.get(seg("readvertise")...); err == nil {
			if o, ok := v.(object); ok && len(o) > 0 {
				row.Readvertise = strings.Join(stringList(o.Value("from")), " ") + " → " + strings.Join(stringList(o.Value("to")), " ")
			}
		}
		if v, err := q.get(seg("ports")...); err == nil {
			if o, ok := v.(object); ok {
				for _, m := range o {
					row.Ports = append(row.Ports, m.Key)
				}
				slices.Sort(row.Ports)
			}
		}
		row.Best = q.count(seg("best_routes")...)
		row.Received = q.count(seg("received_routes")...)
		row.Advertised = q.count(seg("adv_routes")...)
		d.Instances = append(d.Instances, row)
	}
	return &page{Title: "Overview", Nav: "overview", JSON: q.base + "/", Data: d, template: "overview"}, nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

// endpointRow is an endpoint of a port of an instance.
type endpointRow struct {
	Port, MAC, IP, Label, RD, LocalPref, Direction, Description string
}

// routeSection is a paged route table of a page.
type routeSection struct {
	Title string
	Table template.HTML
	Count int
	More  string // link to the whole list
}

type instanceData struct {
	ID            string
	Properties    []kv
	Import        []string
	Export        []string
	Endpoints     []endpointRow
	Routes        []routeSection
	Dataplane     template.HTML
	Subscriptions []string
	QueueLength   string
	Logs          template.HTML
}

func (q *request) instance(id string) (*page, error) {
	seg := func(s ...string) []string { return append([]string{"vpns", "instances", id}, s...) }
	v, err := q.get(seg()...)
	if err != nil {
		return nil, err
	}
	obj, _ := v.(object)
	d := &instanceData{ID: id}
	d.Properties = q.kvs(obj, "name", "instance_type", "external_instance_id", "description",
		"instance_dataplane_id", "gateway_ip", "subnet_prefix_length", "readvertise", "attract_traffic",
		"fallback", "gateway_port")
	d.Import = stringList(path(obj, "route_targets", "import"))
	d.Export = stringList(path(obj, "route_targets", "export"))
	d.Subscriptions = stringList(path(obj, "internals", "subscriptions"))
	d.QueueLength = text(path(obj, "internals", "event queue length"))
	if ports, err := q.get(seg("ports")...); err == nil {
		if o, ok := ports.(object); ok {
			for _, p := range o {
				for _, ep := range asList(path(p.Value, "endpoints")) {
					d.Endpoints = append(d.Endpoints, endpointRow{
						Port: p.Key, MAC: text(path(ep, "mac_address")), IP: text(path(ep, "ip_address")),
						Label: text(path(ep, "label")), RD: strings.TrimSpace(text(path(ep, "rd"))),
						LocalPref: text(path(ep, "local_pref")), Direction: text(path(ep, "direction")),
						Description: text(path(ep, "description")),
					})
				}
			}
			slices.SortFunc(d.Endpoints, func(a, b endpointRow) int {
				return strings.Compare(a.Port+" "+a.MAC+" "+a.IP, b.Port+" "+b.MAC+" "+b.IP)
			})
		}
	}
	for _, s := range []struct{ title, entry string }{
		{"Best routes", "best_routes"}, {"Received routes", "received_routes"}, {"Advertised routes", "adv_routes"},
	} {
		sec, err := q.routeSection(s.title, seg(s.entry)...)
		if err != nil {
			return nil, err
		}
		d.Routes = append(d.Routes, sec)
	}
	if dp, err := q.get(seg("dataplane")...); err == nil {
		d.Dataplane = renderHTML(dp, q.l)
	}
	if logs, err := q.get(seg("logs")...); err == nil {
		d.Logs = renderHTML(logs, q.l)
	}
	title := text(obj.Value("name")) + " " + id
	return &page{Title: title, Nav: "overview", JSON: q.base + "/" + quotePath(seg()), Data: d, template: "instance"}, nil
}

// routeSection renders the first page of the routes at a path, with a
// link to the generic view of all of them.
func (q *request) routeSection(title string, segs ...string) (routeSection, error) {
	doc, err := q.render(segs...)
	if err != nil {
		return routeSection{}, err
	}
	sec := routeSection{Title: title, Count: countRoutes(doc.Value)}
	if lookingglass.PageSize(doc.Value) > DefaultLimit {
		sec.More = q.l.lgPath(segs...)
		doc.Value = lookingglass.Page(doc.Value, 0, DefaultLimit)
	}
	v, err := toGeneric(doc)
	if err != nil {
		return routeSection{}, err
	}
	if rows, keyed, ok := routeTable(v, q.l); ok {
		g := &generic{l: q.l}
		g.routes(rows, keyed)
		sec.Table = g.html()
	}
	return sec, nil
}

type peerData struct {
	Address    string
	Properties []kv
	Routes     template.HTML
	Paging     paging
	Logs       template.HTML
}

func (q *request) peer(addr string) (*page, error) {
	seg := func(s ...string) []string { return append([]string{"bgp", "peers", addr}, s...) }
	v, err := q.get(seg()...)
	if err != nil {
		return nil, err
	}
	obj, _ := v.(object)
	d := &peerData{Address: addr}
	d.Properties = q.kvs(obj, "name", "peeringAddresses", "as_info", "protocol", "rtc", "active_families", "internals")
	routes, pg, err := q.paged(seg("adv_routes")...)
	if err != nil {
		return nil, err
	}
	d.Routes, d.Paging = renderHTML(routes, q.l), pg
	if logs, err := q.get(seg("logs")...); err == nil {
		d.Logs = renderHTML(logs, q.l)
	}
	return &page{Title: "BGP peer " + addr, Nav: "overview", JSON: q.base + "/" + quotePath(seg()), Data: d, template: "peer"}, nil
}

type familyTab struct {
	Family, Link string
	Count        int
	Active       bool
}

type routesData struct {
	Families []familyTab
	Family   string
	Table    template.HTML
	Paging   paging
}

func (q *request) routes() (*page, error) {
	doc, err := q.render("bgp", "routes")
	if err != nil {
		return nil, err
	}
	dump, _ := doc.Value.(lookingglass.Dict)
	want := q.r.URL.Query().Get("family")
	d := &routesData{}
	var chosen any
	for _, kv := range dump {
		fam := strings.TrimSuffix(kv.Key, ",*")
		if want == "" && lookingglass.PageSize(kv.Value) > 0 {
			want = fam
		}
		tab := familyTab{Family: fam, Count: lookingglass.PageSize(kv.Value),
			Link: q.h.prefix + "/routes?family=" + url.QueryEscape(fam)}
		if fam == want {
			tab.Active, chosen, d.Family = true, kv.Value, fam
		}
		d.Families = append(d.Families, tab)
	}
	if chosen != nil {
		d.Paging = q.paging(lookingglass.PageSize(chosen))
		doc.Value = lookingglass.Page(chosen, d.Paging.Offset, d.Paging.Limit)
		v, err := toGeneric(doc)
		if err != nil {
			return nil, err
		}
		d.Table = renderHTML(v, q.l)
	}
	return &page{Title: "Routes", Nav: "routes", JSON: q.base + "/bgp/routes", Data: d, template: "routes"}, nil
}

type genericData struct {
	Path   []crumb
	Body   template.HTML
	Paging paging
}

type crumb struct{ Name, Link string }

// generic renders any looking glass path.
func (q *request) generic(segs []string, title, nav string) (*page, error) {
	v, pg, err := q.paged(segs...)
	if err != nil {
		return nil, err
	}
	d := &genericData{Body: renderHTML(v, q.l), Paging: pg}
	d.Path = append(d.Path, crumb{"looking-glass", q.l.lgPath()})
	for i := range segs {
		d.Path = append(d.Path, crumb{segs[i], q.l.lgPath(segs[:i+1]...)})
	}
	if title == "" {
		title = "/" + strings.Join(segs, "/")
	}
	return &page{Title: title, Nav: nav, JSON: q.base + "/" + quotePath(segs), Data: d, template: "generic"}, nil
}
