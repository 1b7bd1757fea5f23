package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// config is what a run measures.
type config struct {
	quick bool

	scenarios string // comma-separated: ingest,attach,adv,rtc,convergence (or all)

	sizes     intList // N for both implementations
	oursSizes intList // extra N for ours only
	runs      string  // ingestion runs: all, or a list of evpn-1, evpn-packed, vpnv4-1, vpnv4-packed
	refBig    int     // from this N on, the reference runs only refBigRuns
	refBigRun string  // family/packing runs of the reference at N >= refBig ("evpn-1,vpnv4-packed", "all", "none")
	timeout   time.Duration

	repeat     int // runs of each of ours' ingestions up to repeatMax routes (median kept)
	repeatMax  int
	verifyMax  int  // count the instance's best_routes after ingestions of at most this many routes
	noWithdraw bool // skip scenario 2

	attachPorts   int
	attachClients int
	advAttaches   int

	rtcVPNs   int
	rtcRoutes int
	rtcSettle time.Duration // watch for routes before the import and after convergence

	convergenceTimeout time.Duration

	noRef    bool
	oursBin  string
	refBin   string
	outDir   string
	markdown string // write the results as Markdown to this file
	plot     string // PNG path ("" with -quick: none)
	keep     bool   // keep daemon logs and configs
	from     string // render a saved results.json instead of measuring
}

func defaultConfig() *config {
	return &config{
		scenarios:          "all",
		runs:               "all",
		sizes:              intList{1000, 10000, 100000},
		oursSizes:          intList{1000000},
		refBig:             100000,
		refBigRun:          "evpn-1",
		timeout:            100 * time.Second,
		verifyMax:          100000,
		repeat:             3,
		repeatMax:          100000,
		attachPorts:        1000,
		attachClients:      8,
		advAttaches:        200,
		rtcVPNs:            1000,
		rtcRoutes:          100,
		rtcSettle:          2 * time.Second,
		convergenceTimeout: 2 * time.Minute,
		refBin:             "/usr/bin/bagpipe-bgp",
		outDir:             "bench/out",
		plot:               "docs/benchmarks-ingestion.png",
		markdown:           "bench/out/results.md",
	}
}

// quickConfig is the CI mode: small N, ours only, a few seconds.
func quickConfig() *config {
	c := defaultConfig()
	c.quick = true
	c.scenarios = "ingest,attach,adv,rtc"
	c.sizes = intList{1000}
	c.oursSizes = nil
	c.attachPorts = 50
	c.attachClients = 4
	c.advAttaches = 20
	c.rtcVPNs = 20
	c.rtcRoutes = 10
	c.rtcSettle = 300 * time.Millisecond
	c.noRef = true
	c.timeout = 60 * time.Second
	c.verifyMax = 1000
	c.repeat = 1
	c.plot = ""
	c.markdown = ""
	c.outDir = "bench/out/quick"
	return c
}

func (c *config) flags(fs *flag.FlagSet) {
	fs.BoolFunc("quick", "quick mode (CI): N=1,000, few ports, ours only, no plot; results under bench/out/quick", func(string) error {
		out, ours := c.outDir, c.oursBin
		*c = *quickConfig()
		if out != defaultConfig().outDir {
			c.outDir = out // given before -quick
		}
		c.oursBin = ours
		return nil
	})
	fs.StringVar(&c.scenarios, "scenarios", c.scenarios, "scenarios to run: all, or a list of ingest,attach,adv,rtc,convergence")
	fs.Var(&c.sizes, "sizes", "route counts N measured on both implementations")
	fs.Var(&c.oursSizes, "ours-sizes", "extra route counts N measured on ours only")
	fs.StringVar(&c.runs, "runs", c.runs, "ingestion runs: all, or a list of evpn-1, evpn-packed, vpnv4-1, vpnv4-packed")
	fs.IntVar(&c.refBig, "ref-big", c.refBig, "from this N on, the reference only runs -ref-big-runs (it ingests ~1,000 routes/s)")
	fs.StringVar(&c.refBigRun, "ref-big-runs", c.refBigRun, "reference runs at N >= -ref-big: all, none, or a list of evpn-1, evpn-packed, vpnv4-1, vpnv4-packed")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "bound of each ingestion and each withdrawal (the reference's are cut there and reported as partial)")
	fs.IntVar(&c.repeat, "repeat", c.repeat, "runs of each of ours' ingestions (fresh daemons), the median is reported")
	fs.IntVar(&c.repeatMax, "repeat-max", c.repeatMax, "largest N whose ingestions are repeated")
	fs.IntVar(&c.verifyMax, "verify-max", c.verifyMax, "after ingestions of at most this many routes, count the instance's best_routes (untimed; the reference's is capped at 10,000)")
	fs.BoolVar(&c.noWithdraw, "no-withdraw", c.noWithdraw, "skip the withdrawals")
	fs.IntVar(&c.attachPorts, "attach-ports", c.attachPorts, "ports attached then detached in the attach/detach scenario")
	fs.IntVar(&c.attachClients, "attach-clients", c.attachClients, "concurrent clients in the attach/detach scenario")
	fs.IntVar(&c.advAttaches, "adv-attaches", c.advAttaches, "attaches timed in the advertisement latency scenario")
	fs.IntVar(&c.rtcVPNs, "rtc-vpns", c.rtcVPNs, "VPNs held by the route reflector in the RT Constraint scenario")
	fs.IntVar(&c.rtcRoutes, "rtc-routes", c.rtcRoutes, "routes per VPN in the RT Constraint scenario")
	fs.DurationVar(&c.convergenceTimeout, "convergence-timeout", c.convergenceTimeout, "bound of the convergence scenario (bench/convergence)")
	fs.BoolVar(&c.noRef, "no-ref", c.noRef, "measure ours only")
	fs.StringVar(&c.oursBin, "ours", c.oursBin, "our bagpipe-bgp binary (default: built from ./cmd/bagpipe-bgp)")
	fs.StringVar(&c.refBin, "ref", c.refBin, "the reference's bagpipe-bgp")
	fs.StringVar(&c.outDir, "out", c.outDir, "directory for results.json, the daemons' logs and configs")
	fs.StringVar(&c.markdown, "markdown", c.markdown, "also write the results as Markdown tables to this file")
	fs.StringVar(&c.plot, "plot", c.plot, "PNG plot of ingestion rate against table size (empty: none)")
	fs.StringVar(&c.from, "from", c.from, "print, and render to -markdown and -plot, a saved results.json instead of measuring")
	fs.BoolVar(&c.keep, "keep", c.keep, "keep the daemons' logs and configs under -out")
}

func (c *config) has(s string) bool {
	if c.scenarios == "all" {
		return true
	}
	for _, x := range strings.Split(c.scenarios, ",") {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// refRuns reports whether the reference runs a family/packing at n.
func (c *config) refRuns(f family, p packing, n int) bool {
	if c.noRef {
		return false
	}
	if n < c.refBig {
		return true
	}
	switch c.refBigRun {
	case "all":
		return true
	case "none", "":
		return false
	}
	return inList(c.refBigRun, runName(f, p))
}

// runName names a family/packing run as the -runs flags do.
func runName(f family, p packing) string {
	return map[family]string{famEVPN: "evpn", famVPNv4: "vpnv4"}[f] + "-" + map[packing]string{onePerUpdate: "1", packed: "packed"}[p]
}

func inList(list, name string) bool {
	if list == "all" {
		return true
	}
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == name {
			return true
		}
	}
	return false
}

// intList is a comma-separated list of integers (1000, 10k, 1M accepted).
type intList []int

func (l *intList) String() string {
	var s []string
	for _, v := range *l {
		s = append(s, strconv.Itoa(v))
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for _, x := range strings.Split(v, ",") {
		x = strings.TrimSpace(x)
		if x == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(x, "k"):
			mult, x = 1000, strings.TrimSuffix(x, "k")
		case strings.HasSuffix(x, "M"):
			mult, x = 1000000, strings.TrimSuffix(x, "M")
		}
		n, err := strconv.Atoi(x)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad count %q", x)
		}
		*l = append(*l, n*mult)
	}
	return nil
}

// Loopback addresses: the feeder, the gobgpd route reflector, and one BGP
// local address per implementation.
var (
	feederAddr = netip.MustParseAddr("127.0.0.1")
	refAddr    = netip.MustParseAddr("127.0.0.2")
	oursAddr   = netip.MustParseAddr("127.0.0.3")
	rrAddr     = netip.MustParseAddr("127.0.0.10")
)
