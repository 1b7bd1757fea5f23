// Package impex2dot implements bagpipe-impex2dot (spec §8.3): it reads the
// looking glass of one or more bagpipe-bgp daemons and prints the
// import/export graph of their VPN instances and route targets as a
// Graphviz digraph, or renders it to SVG with Graphviz's dot.
//
// The graph is the reference tool's, statement for statement: route targets
// are orange circles ("rt_<asn>_<nn>"), VRFs records with a "readv" slot,
// EVIs records; edges go from the imported route targets to the instances
// and from the instances to the exported route targets; readvertisement
// (from[0] -> readv -> to[0]) and traffic attraction (flowspec) edges;
// ports are invisible stubs, E-VPN -> IP VPN gateway links, and
// destination boxes for ports named "to_<dest>...". Differences, all
// deliberate: statements come in a stable order (sorted), identifiers and
// labels are quoted or escaped when their characters need it (the
// reference printed invalid DOT for them), path elements are URL-quoted,
// and the traffic attraction of an instance is read from its
// attract_traffic entry (the reference looked for it where the looking
// glass never puts it).
package impex2dot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"bagpipe/internal/cli/cmdline"
	"bagpipe/internal/lookingglass"
)

// configFile gives the default --port.
var configFile = cmdline.DefaultConfigFile

// requestTimeout bounds each HTTP request.
const requestTimeout = time.Minute

type options struct {
	servers cmdline.StringList
	port    int
	prefix  string
	svg     string
}

// Run is the bagpipe-impex2dot command; args excludes the program name. It
// returns the exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args, stdout, stderr)
	if err != nil {
		return cmdline.ExitStatus(err)
	}
	g, err := fetch(opts, newClient())
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			fmt.Fprintf(stdout, "Error requesting %s\n", re.url)
		}
		fmt.Fprintf(stderr, "bagpipe-impex2dot: %v\n", err)
		return 1
	}
	var dot bytes.Buffer
	g.write(&dot)
	if opts.svg == "" {
		_, _ = dot.WriteTo(stdout)
		return 0
	}
	if err := renderSVG(dot.Bytes(), opts.svg, stdout); err != nil {
		fmt.Fprintf(stderr, "bagpipe-impex2dot: %v\n", err)
		return 1
	}
	return 0
}

func parseArgs(args []string, stdout, stderr io.Writer) (*options, error) {
	cmd := cmdline.New("bagpipe-impex2dot",
		"bagpipe-impex2dot [options]\n\nExample: bagpipe-impex2dot --server s1 --server s2 | dot -Tpdf > impex.pdf\n"+
			"         bagpipe-impex2dot --server s1 --server s2 --svg impex.svg", stdout, stderr)
	opts := &options{}
	cmd.Var(&opts.servers, "server", "IP address of a BaGPipe BGP instances (default: localhost)")
	cmd.IntVar(&opts.port, "port", cmdline.DefaultAPIPort, "Port of BaGPipe BGP (optional, default: [API] port of "+
		configFile+", else 8082)")
	cmd.StringVar(&opts.prefix, "prefix", "looking-glass", "Looking-glass URL Prefix (optional, default: looking-glass)")
	cmd.StringVar(&opts.svg, "svg", "", "render the graph to the SVG file `FILE` (- for standard output) "+
		"with Graphviz's dot (package graphviz) instead of printing it")
	if _, err := cmd.Parse(args); err != nil {
		return nil, err
	}
	if !cmd.IsSet("port") {
		port, err := cmdline.APIPort(configFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, cmd.Fail(fmt.Sprintf("cannot get the default --port: %v", err))
		default:
			opts.port = port
		}
	}
	if len(opts.servers) == 0 {
		opts.servers = cmdline.StringList{"localhost"}
	}
	return opts, nil
}

// client reads looking glass documents.
type client struct{ http *http.Client }

func newClient() *client {
	return &client{http: &http.Client{Timeout: requestTimeout, Transport: cmdline.Transport("")}}
}

// requestError is a request that failed other than with a 404.
type requestError struct {
	url string
	err error
}

func (e *requestError) Error() string { return fmt.Sprintf("%s: %v", e.url, e.err) }
func (e *requestError) Unwrap() error { return e.err }

// get fetches a looking glass document; a 404 is nil, as in the reference
// (an absent entry is an empty one).
func (c *client) get(o *options, server string, path ...string) (any, error) {
	quoted := make([]string, len(path))
	for i, p := range path {
		quoted[i] = lookingglass.Quote(p)
	}
	url := fmt.Sprintf("http://%s:%d/%s/%s", hostPort(server), o.port, o.prefix, strings.Join(quoted, "/"))
	resp, err := c.http.Get(url)
	if err != nil {
		return nil, &requestError{url, err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return nil, &requestError{url, err}
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, &requestError{url, fmt.Errorf("HTTP status %d: %s", resp.StatusCode, bytes.TrimSpace(body))}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, &requestError{url, fmt.Errorf("invalid JSON: %w", err)}
	}
	return v, nil
}

// hostPort brackets an IPv6 address.
func hostPort(server string) string {
	if strings.Contains(server, ":") && !strings.HasPrefix(server, "[") {
		return "[" + server + "]"
	}
	return server
}

// instance is what the graph shows of a VPN instance.
type instance struct {
	server, id, typ    string // typ: "VRF" or "EVI" (first 3 letters of the name)
	imports, exports   []string
	readvFrom, readvTo string // first RTs of readvertise, "" if none
	redirectRTs        []string
	ports              []string
	gatewayIPVPN       string // external id of the VRF an EVI is plugged into
}

// graph is the import/export graph of every server.
type graph struct {
	servers   []string
	instances []*instance
	rts       map[string]bool // normalised route targets
}

func fetch(o *options, c *client) (*graph, error) {
	g := &graph{servers: o.servers, rts: map[string]bool{}}
	for _, server := range o.servers {
		list, err := c.get(o, server, "vpns", "instances")
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			id, _ := m["id"].(string)
			name, _ := m["name"].(string)
			inst := &instance{server: server, id: id, typ: name[:min(3, len(name))]}
			if err := inst.read(o, c, g); err != nil {
				return nil, err
			}
			g.instances = append(g.instances, inst)
		}
	}
	// Stable order: servers as given, instances by id.
	slices.SortStableFunc(g.instances, func(a, b *instance) int {
		if a.server != b.server {
			return slices.Index(g.servers, a.server) - slices.Index(g.servers, b.server)
		}
		return strings.Compare(a.id, b.id)
	})
	return g, nil
}

func (inst *instance) read(o *options, c *client, g *graph) error {
	get := func(path ...string) (any, error) {
		return c.get(o, inst.server, append([]string{"vpns", "instances", inst.id}, path...)...)
	}
	for _, rt := range []struct {
		entry string
		dst   *[]string
	}{{"import", &inst.imports}, {"export", &inst.exports}} {
		v, err := get("route_targets", rt.entry)
		if err != nil {
			return err
		}
		*rt.dst = strs(v)
		for _, x := range *rt.dst {
			g.rts[normalize(x)] = true
		}
	}
	readv, err := get("readvertise")
	if err != nil {
		return err
	}
	if m, ok := readv.(map[string]any); ok && len(m) > 0 {
		from, to := strs(m["from"]), strs(m["to"])
		if len(from) > 0 && len(to) > 0 {
			inst.readvFrom, inst.readvTo = from[0], to[0]
			g.rts[normalize(inst.readvTo)], g.rts[normalize(inst.readvFrom)] = true, true
			attract, _ := m["attract_traffic"].(map[string]any)
			if len(attract) == 0 {
				v, err := get("attract_traffic")
				if err != nil {
					return err
				}
				attract, _ = v.(map[string]any)
			}
			inst.redirectRTs = strs(attract["redirect_rts"])
			for _, rt := range inst.redirectRTs {
				g.rts[normalize(rt)] = true
			}
		}
	}
	ports, err := get("ports")
	if err != nil {
		return err
	}
	if m, ok := ports.(map[string]any); ok {
		for p := range m {
			inst.ports = append(inst.ports, p)
		}
		slices.Sort(inst.ports)
	}
	gw, err := get("gateway_port", "ipvpn")
	if err != nil {
		return err
	}
	if m, ok := gw.(map[string]any); ok {
		inst.gatewayIPVPN, _ = m["external_instance_id"].(string)
	}
	return nil
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// normalize turns a route target, server or instance id into the
// identifier part the reference uses ("target:64512:1" -> "rt_64512_1").
func normalize(s string) string {
	s = strings.ReplaceAll(s, "target:", "rt:")
	return strings.NewReplacer(":", "_", "-", "_", ".", "_").Replace(s)
}

func vpnUID(server, vpn string) string { return "vpn_" + normalize(server) + "__" + normalize(vpn) }

// vpnShort abbreviates a long instance id as the reference does.
func vpnShort(vpn string) string {
	r := []rune(vpn)
	if len(r) > 11 {
		return string(r[:4]) + ".." + string(r[len(r)-5:])
	}
	return vpn
}

// Styles of the reference.
const (
	rtTextStyle           = `color="orange",fontcolor="orange"`
	rtStyle               = `color="orange",fontcolor="orange",arrowhead=onormal`
	rtStyleRedirFromRT    = `color="orange",fontcolor="orange",style=dashed,arrowhead=diamond,arrowtail=oinv,headclip=false,dir=both`
	rtStyleRedirToRT      = `color="orange",fontcolor="orange",style=dashed,arrowhead=onormal,tailclip=false,dir=both,arrowtail=oinv`
	rtStyleFlowspec       = `color="red",fontcolor="red",style=dotted`
	rtStyleFlowspecInter  = `color="red",fontcolor="red",style=dotted,arrowhead=none,dir=both,arrowtail=oinv`
	rtStyleFlowspecAction = `color="red",fontcolor="red",style=dashed`
	portLinkStyle         = `style=dashed,dir=none,color="gray",weight=3`
)

var plainID = regexp.MustCompile(`^[A-Za-z_\x{80}-\x{10FFFF}][A-Za-z0-9_\x{80}-\x{10FFFF}]*$`)

// id returns s as a DOT identifier: as is when it is one, else quoted.
func id(s string) string {
	if plainID.MatchString(s) {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// recordText escapes text for a record label (inside a quoted string).
func recordText(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "{", `\{`, "}", `\}`, "|", `\|`, "<", `\<`, ">", `\>`, " ", `\ `).Replace(s)
}

// labelText escapes the quotes of a plain quoted label (its "\n" are
// line breaks).
func labelText(s string) string { return strings.ReplaceAll(s, `"`, `\"`) }

// write prints the digraph.
func (g *graph) write(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("digraph import_export {")
	p(`   node [fontname="Helvetica"];`)
	p(`   edge [fontname="Helvetica"];`)
	p("   nodesep=0.55;")

	p("   subgraph rts {")
	p("       rank=same;")
	rts := make([]string, 0, len(g.rts))
	for rt := range g.rts {
		rts = append(rts, rt)
	}
	slices.Sort(rts)
	for _, rt := range rts {
		label := strings.ReplaceAll(strings.ToUpper(rt), "_", `\n`)
		p(`        %s [shape="circle",label="%s",%s];`, id(rt), labelText(label), rtTextStyle)
	}
	p("    }")

	serverSpec := func(server string) string {
		if server == "localhost" {
			return ""
		}
		return `\n[` + recordText(server) + "]"
	}
	p("    subgraph ipvpns {")
	p("        rank=same;")
	for _, inst := range g.instances {
		if inst.typ == "VRF" {
			p(`        %s [label="{<0>VRF\n%s%s|<readv>}",shape="record"];`, id(vpnUID(inst.server, inst.id)),
				recordText(vpnShort(inst.id)), serverSpec(inst.server))
		}
	}
	p("    }")
	p("    subgraph evpns {")
	for _, inst := range g.instances {
		if inst.typ == "EVI" {
			p(`        %s [label="{<0>EVI\n%s%s}",shape="record"];`, id(vpnUID(inst.server, inst.id)),
				recordText(vpnShort(inst.id)), serverSpec(inst.server))
		}
	}
	p("    }")

	type port struct{ server, port string }
	ports := map[port]bool{}
	for _, inst := range g.instances {
		p("    /* %s:%s */", inst.server, strings.ReplaceAll(inst.id, "*/", "* /"))
		uid := id(vpnUID(inst.server, inst.id))
		for _, rt := range inst.imports {
			p("    %s -> %s:0 [%s];", id(normalize(rt)), uid, rtStyle)
		}
		for _, rt := range inst.exports {
			p("    %s:0 -> %s [%s];", uid, id(normalize(rt)), rtStyle)
		}
		if inst.readvFrom != "" {
			readv := uid + ":readv"
			p(`    %s -> %s [label="",%s];`, id(normalize(inst.readvFrom)), readv, rtStyleRedirFromRT)
			p(`    %s -> %s [label="",%s];`, readv, id(normalize(inst.readvTo)), rtStyleRedirToRT)
			if len(inst.redirectRTs) > 0 {
				inter := id(normalize(inst.server) + "_" + normalize(inst.id) + "_attract")
				p(`    %s [label="",style=invis,height=0,width=0,fixedsize=true,rank=1]`, inter)
				p(`    %s -> %s [label="flow",%s];`, readv, inter, rtStyleFlowspecInter)
				p(`    %s -> %s [label="",weight=50,%s];`, inter, id(normalize(inst.redirectRTs[0])), rtStyleFlowspec)
				p(`    %s -> %s [label="action",%s,arrowhead=none,weight=20];`, inter, id(normalize(inst.readvTo)), rtStyleFlowspecAction)
			}
		}
		for _, pt := range inst.ports {
			p("    %s -> %s [%s,weight=5];", uid, id("port_"+normalize(inst.server)+"_"+normalize(pt)), portLinkStyle)
			ports[port{inst.server, normalize(pt)}] = true
		}
		if inst.gatewayIPVPN != "" {
			p("    %s -> %s [weight=500];", uid, id(vpnUID(inst.server, inst.gatewayIPVPN)))
		}
	}

	sorted := make([]port, 0, len(ports))
	for pt := range ports {
		sorted = append(sorted, pt)
	}
	slices.SortFunc(sorted, func(a, b port) int {
		if a.server != b.server {
			return slices.Index(g.servers, a.server) - slices.Index(g.servers, b.server)
		}
		return strings.Compare(a.port, b.port)
	})
	type dest struct{ server, dest string }
	dests := map[dest]bool{}
	var destOrder []dest
	for _, pt := range sorted {
		pid := id("port_" + normalize(pt.server) + "_" + pt.port)
		p(`    %s [label="",style=invis,height=0,width=0,fixedsize=true];`, pid)
		if strings.HasPrefix(pt.port, "to_") {
			d := strings.Split(pt.port, "_")[1]
			p(`    %s -> %s [style=dashed,dir=none,color="gray",weight=5];`, pid, id("dest_"+normalize(pt.server)+"_"+d))
			if !dests[dest{pt.server, d}] {
				dests[dest{pt.server, d}] = true
				destOrder = append(destOrder, dest{pt.server, d})
			}
		}
	}
	for _, d := range destOrder {
		p(`    %s [label="%s\n[%s]",shape="square",color="gray"];`, id("dest_"+normalize(d.server)+"_"+normalize(d.dest)),
			labelText(d.dest), labelText(d.server))
	}
	p("}")
}

// renderSVG runs dot to render the graph to an SVG file ("-": stdout).
func renderSVG(dot []byte, file string, stdout io.Writer) error {
	bin, err := exec.LookPath("dot")
	if err != nil {
		return fmt.Errorf("--svg needs Graphviz's dot (Debian package graphviz): %w", err)
	}
	cmd := exec.Command(bin, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dot: %v: %s", err, bytes.TrimSpace(errOut.Bytes()))
	}
	if file == "-" {
		_, err := out.WriteTo(stdout)
		return err
	}
	return os.WriteFile(file, out.Bytes(), 0o644)
}
