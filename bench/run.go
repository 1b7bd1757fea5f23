package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// results is everything a run measured (results.json).
type results struct {
	Machine     machine            `json:"machine"`
	Command     string             `json:"command"`
	Started     time.Time          `json:"started"`
	Duration    float64            `json:"duration_seconds"`
	Ingest      []ingestResult     `json:"ingest,omitempty"`
	Attach      []attachResult     `json:"attach,omitempty"`
	Adv         []advResult        `json:"advertisement,omitempty"`
	RTC         []rtcResult        `json:"rtc,omitempty"`
	Convergence *convergenceResult `json:"convergence,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
}

// run measures what cfg asks and reports to out.
func run(ctx context.Context, cfg *config, out io.Writer) error {
	if cfg.from != "" {
		return render(cfg, out)
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root (the daemons bind loopback addresses other than 127.0.0.1, the convergence scenario creates namespaces)")
	}
	began := time.Now()
	res := &results{Machine: describeMachine(), Command: commandLine(), Started: began}
	// Relative paths are relative to the repository root.
	if root, err := moduleRoot(); err == nil {
		for _, p := range []*string{&cfg.outDir, &cfg.plot, &cfg.markdown} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(root, *p)
			}
		}
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.outDir, "run-")
	if err != nil {
		return err
	}
	if !cfg.keep {
		defer os.RemoveAll(work)
	}

	ours := impl{name: "ours", bin: cfg.oursBin, addr: oursAddr}
	if ours.bin == "" {
		bin, err := buildOurs(work)
		if err != nil {
			return err
		}
		ours.bin = bin
	}
	impls := []impl{ours}
	ref := impl{name: "reference", bin: cfg.refBin, addr: refAddr}
	if !cfg.noRef {
		if _, err := os.Stat(ref.bin); err != nil {
			return fmt.Errorf("the reference %s is missing (scripts/setup.sh installs python3-networking-bagpipe; -no-ref measures ours only): %w", ref.bin, err)
		}
		impls = append(impls, ref)
	}
	fmt.Fprintf(out, "bagpipe bench: %s\n", res.Machine)

	fe, err := newFeeder(feederAddr, 0)
	if err != nil {
		return err
	}
	defer fe.close()

	if cfg.has("ingest") {
		if err := runIngestAll(ctx, cfg, fe, impls, work, res, out); err != nil {
			return err
		}
	}
	// Ours first, then the reference, for the same reason as above.
	for _, im := range impls {
		if cfg.has("attach") {
			fmt.Fprintf(out, "  attach/detach %s ...\n", im.name)
			r := runAttach(ctx, fe, im, cfg, filepath.Join(work, "attach-"+im.name))
			res.Attach = append(res.Attach, r...)
		}
		if cfg.has("adv") {
			fmt.Fprintf(out, "  advertisement latency %s ...\n", im.name)
			res.Adv = append(res.Adv, runAdv(ctx, fe, im, cfg, filepath.Join(work, "adv-"+im.name)))
		}
	}
	if _, err := exec.LookPath("gobgpd"); err != nil && cfg.has("rtc") {
		res.Notes = append(res.Notes, "RT Constraint scenario skipped: gobgpd is not installed (scripts/setup.sh installs it)")
	} else if cfg.has("rtc") {
		fmt.Fprintf(out, "  RT Constraint scale ...\n")
		r, err := runRTC(ctx, cfg, impls, filepath.Join(work, "rtc"))
		if err != nil {
			res.Notes = append(res.Notes, "RT Constraint scenario: "+err.Error())
		}
		res.RTC = r
	}
	if cfg.has("convergence") {
		fmt.Fprintf(out, "  convergence (Linux E-VPN) ...\n")
		res.Convergence = runConvergence(ctx, cfg, filepath.Join(work, "convergence"))
	}
	res.Duration = time.Since(began).Seconds()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.outDir, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := output(cfg, res, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "results: %s (%.0f s)\n", filepath.Join(cfg.outDir, "results.json"), res.Duration)
	return nil
}

// render prints and renders a saved run.
func render(cfg *config, out io.Writer) error {
	b, err := os.ReadFile(cfg.from)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", cfg.from, err)
	}
	if root, err := moduleRoot(); err == nil {
		for _, p := range []*string{&cfg.plot, &cfg.markdown} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(root, *p)
			}
		}
	}
	return output(cfg, &res, out)
}

// output prints the tables and writes the Markdown and the plot.
func output(cfg *config, res *results, out io.Writer) error {
	report(out, res)
	if cfg.markdown != "" {
		f, err := os.Create(cfg.markdown)
		if err != nil {
			return err
		}
		markdown(f, res)
		if err := f.Close(); err != nil {
			return err
		}
	}
	if cfg.plot != "" && len(res.Ingest) > 0 {
		if err := plotIngest(res, cfg.plot); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(out, "plot: %s\n", cfg.plot)
	}
	return nil
}

// runIngestAll runs scenarios 1 and 2 for every size, family and packing:
// ours first, then the reference (its runs leave hundreds of MB of logs
// and a warm machine behind). A feed is encoded once and its bytes sent to
// both implementations (feeds sent to both are kept in between).
func runIngestAll(ctx context.Context, cfg *config, fe *feeder, impls []impl, work string, res *results, out io.Writer) error {
	sizes := append(append(intList{}, cfg.sizes...), cfg.oursSizes...)
	oursOnly := map[int]bool{}
	for _, n := range cfg.oursSizes {
		oursOnly[n] = true
	}
	type feedKey struct {
		f family
		p packing
		n int
	}
	kept := map[feedKey]*feed{}
	for _, im := range impls {
		for _, n := range sizes {
			for _, f := range []family{famEVPN, famVPNv4} {
				for _, p := range []packing{onePerUpdate, packed} {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if !inList(cfg.runs, runName(f, p)) {
						continue
					}
					refToo := !oursOnly[n] && cfg.refRuns(f, p, n)
					if im.name != "ours" && !refToo {
						continue
					}
					k := feedKey{f, p, n}
					fd := kept[k]
					if fd == nil {
						var err error
						if fd, err = buildFeed(f, p, n); err != nil {
							return err
						}
						if refToo && len(impls) > 1 {
							kept[k] = fd
						}
					}
					res.Ingest = append(res.Ingest, ingestOne(ctx, cfg, fe, im, fd, work, out))
					if im.name != "ours" {
						delete(kept, k)
					}
					runtime.GC() // feeds of 1M routes are 100 MB
				}
			}
		}
	}
	return nil
}

// ingestOne runs one implementation on one feed (repeated for ours).
func ingestOne(ctx context.Context, cfg *config, fe *feeder, im impl, fd *feed, work string, out io.Writer) ingestResult {
	f, p, n := fd.fam, fd.pack, fd.n
	o := ingestOpts{timeout: cfg.timeout, verifyMax: cfg.verifyMax, withdraw: !cfg.noWithdraw}
	if os.Getenv(pprofEnv) != "" {
		o.heapProfile = filepath.Join(cfg.outDir, fmt.Sprintf("heap-%s-%d.prof", runName(f, p), n))
	}
	if im.name != "ours" {
		o.verifyMax = min(cfg.verifyMax, 10000) // its best_routes at 100k takes minutes
	} else {
		o.timeout = max(o.timeout, 5*time.Minute)
	}
	fmt.Fprintf(out, "  ingest %-9s %-5s %-8s N=%-7d ... ", im.name, f, p, n)
	repeat := 1
	if im.name == "ours" && n <= cfg.repeatMax {
		repeat = max(cfg.repeat, 1)
	}
	r := runIngestMedian(repeat, func(i int) ingestResult {
		return runIngest(ctx, fe, im, fd, o, runDir(work, "ingest", im.name, f, p, n, i))
	})
	switch {
	case r.Err != "":
		fmt.Fprintf(out, "error: %s\n", r.Err)
	case !r.Complete:
		fmt.Fprintf(out, "bounded: %d routes in %.0f s\n", r.Reached, r.Seconds)
	default:
		fmt.Fprintf(out, "%.3f s, %.0f routes/s, %.0f B/route, withdrawal %.3f s\n", r.Seconds, r.Rate, r.PerRoute, r.WdSeconds)
	}
	return r
}

// runIngestMedian runs an ingestion repeat times (fresh daemons) and keeps
// the run of median rate; the rates of all runs go to Rates. Runs on this
// kind of machine vary by ±20 % (garbage collection timing, neighbours).
func runIngestMedian(repeat int, run func(i int) ingestResult) ingestResult {
	var runs []ingestResult
	for i := range repeat {
		r := run(i)
		if r.Err != "" {
			return r
		}
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Rate < runs[j].Rate })
	m := runs[len(runs)/2]
	if len(runs) > 1 {
		for _, r := range runs {
			m.Rates = append(m.Rates, r.Rate)
			m.WdRates = append(m.WdRates, r.WdRate)
		}
	}
	return m
}

// buildOurs builds cmd/bagpipe-bgp (race detector off) into dir.
func buildOurs(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bagpipe-bgp")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/bagpipe-bgp")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/bagpipe-bgp: %v\n%s", err, b)
	}
	return bin, nil
}

// moduleRoot finds the directory of go.mod from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run the bench from the repository")
		}
		dir = parent
	}
}

// machine describes the host.
type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
	Go     string `json:"go"`
	Python string `json:"python"`
	Ref    string `json:"reference"`
}

func (m machine) String() string {
	return fmt.Sprintf("%s, %d cores, %s RAM, Linux %s, %s, %s", m.CPU, m.Cores, m.Memory, m.Kernel, m.OS, m.Go)
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.Memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	// The reference's interpreter (its shebang), not the first python3 in PATH.
	if b, err := exec.Command("/usr/bin/python3", "--version").Output(); err == nil {
		m.Python = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "python3-networking-bagpipe").Output(); err == nil {
		m.Ref = "python3-networking-bagpipe " + strings.TrimSpace(string(b))
	}
	return m
}

// readResults reads the results.json of a run.
func readResults(dir string) (*results, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var r results
	return &r, json.Unmarshal(b, &r)
}

// commandLine is how the bench was started, as a user would type it.
func commandLine() string {
	if strings.HasSuffix(os.Args[0], ".test") {
		return "go test ./bench (quick mode)"
	}
	return strings.TrimSpace("go run ./bench " + strings.Join(os.Args[1:], " "))
}
