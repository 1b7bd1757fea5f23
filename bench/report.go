package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// table is a titled grid printed as aligned text or as Markdown.
type table struct {
	title string
	head  []string
	rows  [][]string
	notes []string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) text(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", t.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(t.head, "\t")+"\t")
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
	for _, n := range t.notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

func (t *table) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n#### %s\n\n", t.title)
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.head, " | "))
	seps := make([]string, len(t.head))
	for i := range seps {
		seps[i] = "---:"
		if i == 0 {
			seps[i] = "---"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	for _, n := range t.notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
}

// Number formatting.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return groupThousands(fmt.Sprintf("%.0f", v))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func secs(v float64) string { return num(v) + " s" }
func ms(v float64) string   { return num(v) + " ms" }

// ratio formats a/b as "N×" ("–" when a side is missing).
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return num(a/b) + "×"
}

func countN(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// tables builds every result table.
func tables(r *results) []*table {
	var out []*table
	if len(r.Ingest) > 0 {
		out = append(out, ingestTables(r)...)
	}
	if len(r.Attach) > 0 {
		out = append(out, attachTable(r))
	}
	if len(r.Adv) > 0 {
		out = append(out, advTable(r))
	}
	if len(r.RTC) > 0 {
		out = append(out, rtcTable(r))
	}
	if r.Convergence != nil {
		out = append(out, convergenceTable(r.Convergence))
	}
	out = append(out, targetTable(r))
	return out
}

type ingestKey struct {
	fam, pack string
	n         int
}

func ingestIndex(r *results) (keys []ingestKey, by map[ingestKey]map[string]ingestResult) {
	by = map[ingestKey]map[string]ingestResult{}
	for _, x := range r.Ingest {
		k := ingestKey{x.Family, x.Packing, x.N}
		if by[k] == nil {
			by[k] = map[string]ingestResult{}
			keys = append(keys, k)
		}
		by[k][x.Impl] = x
	}
	return keys, by
}

func ingestTables(r *results) []*table {
	keys, by := ingestIndex(r)
	rate := &table{
		title: "Scenario 1 — route ingestion (first UPDATE sent -> all N routes in the instance)",
		head:  []string{"routes", "N", "UPDATEs", "ours", "ours routes/s", "reference", "ref routes/s", "ratio"},
	}
	mem := &table{
		title: "Scenario 1 — RSS growth per received route (VmRSS after - before) / N",
		head:  []string{"routes", "N", "ours B/route", "ref B/route", "ratio", "ours RSS after", "ref RSS after"},
	}
	wd := &table{
		title: "Scenario 2 — withdrawal of the N routes (first UPDATE sent -> instance empty)",
		head:  []string{"routes", "N", "ours", "ours routes/s", "reference", "ref routes/s", "ratio"},
	}
	var bounded []string
	for _, k := range keys {
		o, ref := by[k]["ours"], by[k]["reference"]
		name := k.fam + " " + k.pack
		cells := func(x ingestResult, have bool) (string, string) {
			switch {
			case !have:
				return "–", "–"
			case x.Err != "":
				return "error", "–"
			case !x.Complete:
				return fmt.Sprintf("> %s", secs(x.Seconds)), fmt.Sprintf("%s*", num(x.Rate))
			}
			return secs(x.Seconds), num(x.Rate)
		}
		_, haveRef := by[k]["reference"]
		ot, orate := cells(o, true)
		rt, rrate := cells(ref, haveRef)
		rateRatio := "–"
		if haveRef && ref.Err == "" && o.Err == "" {
			rateRatio = ratio(o.Rate, ref.Rate)
			if !ref.Complete {
				rateRatio = "≥ " + rateRatio
				bounded = append(bounded, fmt.Sprintf("%s N=%s: the reference had %s of %s routes after %s", name, countN(k.n), groupThousands(fmt.Sprint(ref.Reached)), countN(k.n), secs(ref.Seconds)))
			}
		}
		rate.add(name, countN(k.n), groupThousands(fmt.Sprint(o.Updates)), ot, orate, rt, rrate, rateRatio)

		refMem, refRSS := "–", "–"
		if haveRef && ref.Err == "" && ref.Reached > 0 {
			refMem, refRSS = num(ref.PerRoute), mib(ref.RSSAfter)
		}
		oursMem := "–"
		if o.Err == "" {
			oursMem = num(o.PerRoute)
		}
		memRatio := "–"
		if haveRef && ref.Err == "" && o.Err == "" {
			memRatio = ratio(ref.PerRoute, o.PerRoute)
		}
		mem.add(name, countN(k.n), oursMem, refMem, memRatio, mib(o.RSSAfter), refRSS)

		wcell := func(x ingestResult, have bool) (string, string) {
			switch {
			case !have:
				return "–", "–"
			case x.Err != "":
				return "error", "–"
			case x.WdSkipped != "":
				return "not run", "–"
			case !x.WdComplete:
				return "> " + secs(x.WdSeconds), "–"
			}
			return secs(x.WdSeconds), num(x.WdRate)
		}
		owt, owr := wcell(o, true)
		rwt, rwr := wcell(ref, haveRef)
		wratio := "–"
		if haveRef && o.WdComplete && ref.WdComplete {
			wratio = ratio(o.WdRate, ref.WdRate)
		}
		wd.add(name, countN(k.n), owt, owr, rwt, rwr, wratio)
	}
	rate.notes = append(rate.notes, "ratio = ours routes/s ÷ reference routes/s. *: bounded run, routes reached ÷ bound.")
	rate.notes = append(rate.notes, bounded...)
	var errs []string
	for _, x := range r.Ingest {
		if x.Err != "" {
			errs = append(errs, fmt.Sprintf("%s %s %s N=%s: %s", x.Impl, x.Family, x.Packing, countN(x.N), x.Err))
		}
	}
	rate.notes = append(rate.notes, errs...)
	mem.notes = append(mem.notes, "ratio = reference bytes ÷ ours.")
	return []*table{rate, mem, wd}
}

func mib(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%s MiB", num(float64(b)/(1<<20)))
}

func attachTable(r *results) *table {
	t := &table{
		title: "Scenario 3 — attach/detach through the REST API (dummy dataplane, one connection per request)",
		head:  []string{"clients", "op", "ours /s", "ours p50", "ours p99", "ref /s", "ref p50", "ref p99", "ratio"},
	}
	by := map[int]map[string]attachResult{}
	var order []int
	for _, x := range r.Attach {
		if by[x.Clients] == nil {
			by[x.Clients] = map[string]attachResult{}
			order = append(order, x.Clients)
		}
		by[x.Clients][x.Impl] = x
	}
	for _, c := range order {
		o, ref := by[c]["ours"], by[c]["reference"]
		_, haveRef := by[c]["reference"]
		for _, op := range []string{"attach", "detach"} {
			orate, op50, op99 := o.AttachRate, o.AttachP50, o.AttachP99
			rrate, rp50, rp99 := ref.AttachRate, ref.AttachP50, ref.AttachP99
			if op == "detach" {
				orate, op50, op99 = o.DetachRate, o.DetachP50, o.DetachP99
				rrate, rp50, rp99 = ref.DetachRate, ref.DetachP50, ref.DetachP99
			}
			row := []string{fmt.Sprint(c), op, num(orate), ms(op50), ms(op99)}
			if haveRef {
				row = append(row, num(rrate), ms(rp50), ms(rp99), ratio(orate, rrate))
			} else {
				row = append(row, "–", "–", "–", "–")
			}
			t.add(row...)
		}
	}
	t.notes = append(t.notes, fmt.Sprintf("%d ports (E-VPN, 100 per instance, one route target per instance), attached then detached; ratio = ours rate ÷ reference rate.", r.Attach[0].Ports))
	for _, x := range r.Attach {
		if x.Err != "" {
			t.notes = append(t.notes, fmt.Sprintf("%s, %d clients: %d failed requests, first: %s", x.Impl, x.Clients, x.Failed, x.Err))
		}
	}
	return t
}

func advTable(r *results) *table {
	t := &table{
		title: "Scenario 4 — advertisement latency (attach POST sent -> UPDATE received by the peer)",
		head:  []string{"", "attaches", "p50", "p99", "HTTP response p50", "UPDATE before the response"},
	}
	var o, ref advResult
	for _, x := range r.Adv {
		row := []string{x.Impl, fmt.Sprint(x.Attaches), ms(x.P50), ms(x.P99), ms(x.RespP50), fmt.Sprintf("%d/%d", x.BeforeReply, x.Attaches)}
		if x.Err != "" {
			row = []string{x.Impl, fmt.Sprint(x.Attaches), "error", "", "", ""}
			t.notes = append(t.notes, x.Impl+": "+x.Err)
		}
		t.add(row...)
		if x.Impl == "ours" {
			o = x
		} else {
			ref = x
		}
	}
	if o.P50 > 0 && ref.P50 > 0 {
		t.add("ratio", "", ratio(ref.P50, o.P50), ratio(ref.P99, o.P99), ratio(ref.RespP50, o.RespP50), "")
		t.notes = append(t.notes, "ratio = reference latency ÷ ours.")
	}
	return t
}

func rtcTable(r *results) *table {
	t := &table{
		title: "Scenario 6 — RT Constraint scale (gobgpd route reflector; the node imports one VPN)",
		head:  []string{"", "RR routes", "routes received", "expected", "convergence", "RSS before", "RSS after"},
	}
	var o, ref rtcResult
	for _, x := range r.RTC {
		row := []string{x.Impl, groupThousands(fmt.Sprint(x.RRRoutes)), fmt.Sprint(x.Received), fmt.Sprint(x.Expected), secs(x.Seconds), mib(x.RSSBefore), mib(x.RSSAfter)}
		t.add(row...)
		if x.Err != "" {
			t.notes = append(t.notes, x.Impl+": "+x.Err)
		}
		if x.Impl == "ours" {
			o = x
		} else {
			ref = x
		}
	}
	if o.Seconds > 0 && ref.Seconds > 0 {
		t.add("ratio", "", "", "", ratio(ref.Seconds, o.Seconds), ratio(float64(ref.RSSBefore), float64(o.RSSBefore)), ratio(float64(ref.RSSAfter), float64(o.RSSAfter)))
	}
	if len(r.RTC) > 0 {
		x := r.RTC[0]
		t.notes = append(t.notes, fmt.Sprintf("%d VPNs × %d VPNv4 routes loaded by the feeder into gobgpd (%s); convergence = attach POST sent -> the VPN's %d routes in the instance; the count is watched %s more.",
			x.VPNs, x.PerVPN, secs(x.RRLoad), x.Expected, secs(x.Settle)))
	}
	return t
}

func convergenceTable(c *convergenceResult) *table {
	t := &table{
		title: "Scenario 5 — convergence with the Linux E-VPN dataplane (attach on node A -> FDB entry on node B), ours",
		head:  []string{"metric", "value"},
	}
	if c.Unavailable != "" {
		t.add("not measured", c.Unavailable)
		return t
	}
	for _, k := range []string{"attach-median-ms", "attach-p99-ms", "detach-median-ms", "detach-p99-ms"} {
		if v, ok := c.Metrics[k]; ok {
			t.add(k, ms(v))
		}
	}
	t.notes = append(t.notes, c.Log...)
	t.notes = append(t.notes, "measured by bench/convergence (go test -bench Convergence ./bench/convergence).")
	return t
}

// targetTable checks the targets.
func targetTable(r *results) *table {
	t := &table{title: "Targets (issue 6)", head: []string{"target", "measured", "met"}}
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	keys, by := ingestIndex(r)
	for _, k := range keys {
		o, ref := by[k]["ours"], by[k]["reference"]
		_, haveRef := by[k]["reference"]
		name := k.fam + " " + k.pack
		if k.n == 10000 && haveRef && o.Err == "" && ref.Err == "" {
			rt := o.Rate / ref.Rate
			t.add(fmt.Sprintf("ingestion ≥ 100× the reference at N=10k, %s", name), num(rt)+"×", yes(rt >= 100))
		}
		if k.n == 100000 && o.Err == "" {
			t.add(fmt.Sprintf("ingestion ≥ 200,000 routes/s at N=100k, %s", name), num(o.Rate)+" routes/s", yes(o.Rate >= 200000))
		}
		if k.n == 1000000 && o.Err == "" {
			t.add(fmt.Sprintf("≤ 500 B RSS per route at N=1M, %s", name), num(o.PerRoute)+" B", yes(o.PerRoute <= 500))
		}
	}
	var oSeq, rSeq attachResult
	for _, x := range r.Attach {
		if x.Clients == 1 {
			if x.Impl == "ours" {
				oSeq = x
			} else {
				rSeq = x
			}
		}
	}
	if oSeq.AttachRate > 0 && rSeq.AttachRate > 0 {
		rt := oSeq.AttachRate / rSeq.AttachRate
		t.add("attach ≥ 20× the reference's sequential rate", num(rt)+"×", yes(rt >= 20))
	}
	if oSeq.AttachRate > 0 {
		t.add("attach p99 < 2 ms (sequential, dummy dataplane)", ms(oSeq.AttachP99), yes(oSeq.AttachP99 < 2))
	}
	for _, x := range r.Adv {
		if x.Impl == "ours" && x.Err == "" {
			t.add("advertisement latency p50 < 0.5 ms", ms(x.P50), yes(x.P50 < 0.5))
		}
	}
	if c := r.Convergence; c != nil && c.Unavailable == "" {
		if v, ok := c.Metrics["attach-median-ms"]; ok {
			t.add("convergence p50 < 20 ms (Linux E-VPN)", ms(v), yes(v < 20))
		}
	}
	for _, x := range r.RTC {
		if x.Impl == "ours" {
			t.add("RTC: the node receives exactly the routes it needs", fmt.Sprintf("%d of %d", x.Received, x.Expected), yes(x.Err == "" && x.Received == x.Expected))
		}
	}
	return t
}

// report prints every table.
func report(w io.Writer, r *results) {
	for _, t := range tables(r) {
		t.text(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// markdown writes the tables (the body of docs/benchmarks.md's results).
func markdown(w io.Writer, r *results) {
	fmt.Fprintf(w, "Machine: %s; %s; %s.\n\n", r.Machine, r.Machine.Python, r.Machine.Ref)
	fmt.Fprintf(w, "Command: `%s` (%s, %s).\n", r.Command, r.Started.UTC().Format("2006-01-02 15:04 UTC"), secs(r.Duration))
	for _, t := range tables(r) {
		t.markdown(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}
