package webui

import (
	"html/template"
	"strings"
)

// page is what the layout renders.
type page struct {
	Title  string
	Nav    string // active navigation entry
	Prefix string // of the web view, e.g. /ui
	JSON   string // the looking glass URL of the page's data
	Error  string
	Data   any

	template string
}

var funcs = template.FuncMap{
	"stateClass": func(state string) string {
		switch state {
		case "Established":
			return "ok"
		case "Idle":
			return "bad"
		}
		return "warn"
	},
	"join": strings.Join,
}

const layout = `{{define "layout"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · bagpipe-bgp looking glass</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; font-size: 14px; margin: 0; color: #1d2530; background: #f4f6f8; }
header { background: #243447; color: #fff; padding: 10px 24px; display: flex; align-items: baseline; gap: 28px; }
header .brand { font-size: 18px; font-weight: bold; }
header .brand small { font-weight: normal; color: #9fb3c8; margin-left: 6px; }
header nav a { color: #d9e2ec; text-decoration: none; margin-right: 18px; }
header nav a.active { color: #fff; border-bottom: 2px solid #f0a020; }
main { padding: 16px 24px 40px; }
h1 { font-size: 20px; margin: 4px 0 14px; }
h2 { font-size: 16px; margin: 22px 0 8px; color: #243447; }
h2 .count { color: #829ab1; font-weight: normal; font-size: 13px; }
a { color: #1f6fb2; }
table { border-collapse: collapse; background: #fff; }
table.grid { width: 100%; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table.grid th { text-align: left; background: #e4e9ee; font-weight: 600; padding: 6px 8px; font-size: 13px; }
table.grid td { padding: 5px 8px; border-top: 1px solid #e6eaee; vertical-align: top; }
table.kv th { text-align: left; padding: 3px 10px 3px 6px; color: #486581; font-weight: 600; vertical-align: top; white-space: nowrap; }
table.kv td { padding: 3px 6px; vertical-align: top; }
table.kv table.kv { background: transparent; }
.mono, pre { font-family: Menlo, Consolas, monospace; font-size: 12px; }
pre { margin: 0; white-space: pre-wrap; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }
.summary > div { background: #fff; padding: 10px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); min-width: 110px; }
.summary .v { font-size: 20px; font-weight: bold; color: #243447; }
.summary .l { color: #627d98; font-size: 12px; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 12px; color: #fff; }
.badge.ok { background: #2f9e44; } .badge.warn { background: #e8890c; } .badge.bad { background: #c92a2a; }
.rt { display: inline-block; border: 1px solid #f0a020; color: #b86e00; border-radius: 4px; padding: 0 5px; font-size: 12px; margin: 1px 0; white-space: nowrap; }
.item { display: inline-block; background: #eef2f6; border-radius: 4px; padding: 0 5px; margin: 1px 0; font-size: 12px; }
.null { color: #9aa5b1; }
.error { background: #ffe3e3; color: #a61e1e; padding: 10px 14px; }
.paging { margin: 8px 0; color: #486581; }
.paging a { margin: 0 6px; }
.crumbs { color: #627d98; margin-bottom: 6px; }
.json { float: right; font-size: 12px; }
.cols { display: flex; flex-wrap: wrap; gap: 24px; }
.cols > div { flex: 1 1 360px; }
footer { color: #829ab1; font-size: 12px; padding: 0 24px 16px; }
</style>
</head>
<body>
<header>
<span class="brand">bagpipe-bgp<small>looking glass</small></span>
<nav>
<a href="{{.Prefix}}/"{{if eq .Nav "overview"}} class="active"{{end}}>Overview</a>
<a href="{{.Prefix}}/routes"{{if eq .Nav "routes"}} class="active"{{end}}>Routes</a>
<a href="{{.Prefix}}/logs"{{if eq .Nav "logs"}} class="active"{{end}}>Logs</a>
<a href="{{.Prefix}}/lg/config">Configuration</a>
<a href="{{.Prefix}}/lg/">Browse</a>
</nav>
</header>
<main>
{{if .JSON}}<a class="json" href="{{.JSON}}">JSON</a>{{end}}
<h1>{{.Title}}</h1>
{{if .Error}}<div class="error">{{.Error}}</div>{{else}}{{template "content" .Data}}{{end}}
</main>
<footer>Read-only view of the looking glass (/looking-glass). Pages are generated on each request.</footer>
</body>
</html>
{{end}}
{{define "paging"}}{{if .Multi}}<div class="paging">{{if .Prev}}<a href="{{.Prev}}">‹ previous</a>{{end}}
{{if .Total}}{{.First}}–{{.Last}} of {{.Total}}{{end}}{{if .Next}}<a href="{{.Next}}">next ›</a>{{end}}</div>{{end}}{{end}}
{{define "rts"}}{{range .}}<span class="rt">{{.}}</span> {{end}}{{end}}
`

var pages = map[string]string{
	"error": `{{define "content"}}{{end}}`,

	"overview": `{{define "content"}}
<div class="summary">{{range .Summary}}<div><div class="v">{{.Value}}</div><div class="l">{{.Label}}</div></div>{{end}}</div>
<h2>BGP peers <span class="count">{{len .Peers}}</span></h2>
{{if .Peers}}<table class="grid"><tr><th>peer</th><th>state</th><th>previous state</th><th>since</th><th>active families</th><th>routes received</th><th>queue</th></tr>
{{range .Peers}}<tr><td><a href="{{.Link}}">{{.Address}}</a></td><td><span class="badge {{stateClass .State}}">{{.State}}</span></td>
<td>{{.Previous}}</td><td>{{.Since}}</td><td>{{range .Families}}<span class="item">{{.}}</span> {{end}}</td><td>{{.Received}}</td><td>{{.Queue}}</td></tr>
{{end}}</table>{{else}}<p class="null">No BGP peer configured.</p>{{end}}
<h2>VPN instances <span class="count">{{len .Instances}}</span></h2>
{{if .Instances}}<table class="grid"><tr><th>instance</th><th>name</th><th>type</th><th>label / VNI</th><th>import</th><th>export</th><th>readvertise</th><th>ports</th><th>best routes</th><th>received</th><th>advertised</th></tr>
{{range .Instances}}<tr><td><a href="{{.Link}}">{{.ID}}</a>{{if .Description}}<br><span class="null">{{.Description}}</span>{{end}}</td><td>{{.Name}}</td><td>{{.Type}}</td><td>{{.DataplaneID}}</td>
<td>{{template "rts" .Import}}</td><td>{{template "rts" .Export}}</td><td>{{.Readvertise}}</td>
<td>{{range .Ports}}<span class="item">{{.}}</span> {{end}}</td><td>{{.Best}}</td><td>{{.Received}}</td><td>{{.Advertised}}</td></tr>
{{end}}</table>{{else}}<p class="null">No VPN instance: attach a port to create one.</p>{{end}}
{{end}}`,

	"instance": `{{define "content"}}
<div class="cols">
<div><h2>Properties</h2><table class="kv">{{range .Properties}}<tr><th>{{.Label}}</th><td>{{.Value}}</td></tr>{{end}}</table></div>
<div><h2>Route targets</h2><table class="kv"><tr><th>import</th><td>{{template "rts" .Import}}</td></tr><tr><th>export</th><td>{{template "rts" .Export}}</td></tr></table>
<h2>Internals</h2><table class="kv"><tr><th>event queue length</th><td>{{.QueueLength}}</td></tr>
<tr><th>subscriptions</th><td>{{range .Subscriptions}}<span class="item">{{.}}</span><br>{{end}}</td></tr></table></div>
</div>
<h2>Ports <span class="count">{{len .Endpoints}} endpoints</span></h2>
{{if .Endpoints}}<table class="grid"><tr><th>port</th><th>MAC address</th><th>IP address</th><th>label</th><th>RD</th><th>local pref</th><th>direction</th><th>description</th></tr>
{{range .Endpoints}}<tr><td>{{.Port}}</td><td class="mono">{{.MAC}}</td><td class="mono">{{.IP}}</td><td>{{.Label}}</td><td class="mono">{{.RD}}</td><td>{{.LocalPref}}</td><td>{{.Direction}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{else}}<p class="null">No port.</p>{{end}}
{{range .Routes}}<h2>{{.Title}} <span class="count">{{.Count}}</span></h2>
{{if .Table}}{{.Table}}{{else}}<p class="null">None.</p>{{end}}{{if .More}}<div class="paging"><a href="{{.More}}">all {{.Count}} ›</a></div>{{end}}
{{end}}
<h2>Dataplane</h2>{{.Dataplane}}
<h2>Logs</h2>{{.Logs}}
{{end}}`,

	"peer": `{{define "content"}}
<table class="kv">{{range .Properties}}<tr><th>{{.Label}}</th><td>{{.Value}}</td></tr>{{end}}</table>
<h2>Routes received <span class="count">{{.Paging.Total}}</span></h2>
{{template "paging" .Paging}}{{.Routes}}{{template "paging" .Paging}}
<h2>Logs</h2>{{.Logs}}
{{end}}`,

	"routes": `{{define "content"}}
<div class="paging">{{range .Families}}{{if .Active}}<b>{{.Family}} ({{.Count}})</b>{{else}}<a href="{{.Link}}">{{.Family}} ({{.Count}})</a>{{end}} {{end}}</div>
{{if .Family}}{{template "paging" .Paging}}{{.Table}}{{template "paging" .Paging}}{{else}}<p class="null">No route.</p>{{end}}
{{end}}`,

	"generic": `{{define "content"}}
<div class="crumbs">{{range $i, $c := .Path}}{{if $i}} / {{end}}<a href="{{$c.Link}}">{{$c.Name}}</a>{{end}}</div>
{{template "paging" .Paging}}{{.Body}}{{template "paging" .Paging}}
{{end}}`,
}

var templates = func() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(funcs).Parse(layout))
	out := map[string]*template.Template{}
	for name, content := range pages {
		out[name] = template.Must(template.Must(base.Clone()).Parse(content))
	}
	return out
}()
