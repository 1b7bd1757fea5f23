package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ingestResult is one run of scenarios 1 and 2 for one implementation.
type ingestResult struct {
	Impl      string  `json:"impl"`
	Family    string  `json:"family"`
	Packing   string  `json:"packing"`
	N         int     `json:"n"`
	Updates   int     `json:"updates"`
	Seconds   float64 `json:"seconds"`             // first UPDATE written -> all N routes in the instance
	Rate      float64 `json:"routes_per_s"`        // N / Seconds (or routes reached / bound)
	Complete  bool    `json:"complete"`            // false: bounded, Reached < N
	Reached   int     `json:"reached"`             // routes in the daemon when the bound hit
	CPU       float64 `json:"cpu_seconds"`         // daemon CPU time during the ingestion
	RSSBefore int64   `json:"rss_before"`          // bytes
	RSSAfter  int64   `json:"rss_after"`           // bytes
	PerRoute  float64 `json:"rss_bytes_per_route"` // (after - before) / N
	Verified  int     `json:"verified_entries"`    // best_routes entries counted after the run (-1: not checked)
	Polls     int     `json:"polls"`
	// Repeated runs (ours): this is the run of median rate; all rates.
	Rates   []float64 `json:"rates,omitempty"`
	WdRates []float64 `json:"withdraw_rates,omitempty"`
	// Pacing: times the feeder waited for the daemon's receive window, and
	// how long in all (a daemon reading slower than the feed).
	FeedWaits  int     `json:"feed_waits"`
	FeedWaited float64 `json:"feed_waited_s"` // looking glass requests made while waiting

	WdSeconds  float64 `json:"withdraw_seconds"`
	WdRate     float64 `json:"withdraw_routes_per_s"`
	WdComplete bool    `json:"withdraw_complete"`
	WdSkipped  string  `json:"withdraw_skipped,omitempty"`

	Err string `json:"error,omitempty"`
}

// instanceID returns the external id of the bench's instance of a family.
func instanceID(f family) string { return "bench-" + f.vpnType() }

// localPortMAC and localPortIP are the port the bench attaches so that the
// instance exists and imports the fed route target.
const localPortMAC = "52:54:00:00:00:01"

var localPortIP = netip.AddrFrom4([4]byte{192, 168, 0, 1})

// localKey is the feeder's key of the route the attached port advertises.
func localKey(f family) string {
	if f == famEVPN {
		return localPortMAC
	}
	return netip.PrefixFrom(localPortIP, 32).String()
}

// nextPoll decides when to look at the daemon again while waiting for
// count to reach want (from begin at start): every twentieth of the
// elapsed time, sooner as the count approaches want (half the remaining
// time estimated from the rate so far), and every fiftieth of the elapsed
// time once only the instance's queue is draining; never more often than
// every millisecond. Polls are sequential (one request at a time), so a
// daemon whose looking glass is slow (the reference's summary costs time
// proportional to its table, spec §11) is polled less often. Once the
// daemon is done it is idle and answers at once: the detection error is
// the poll interval, within 5 % (2 % when draining) of the elapsed time.
func nextPoll(elapsed time.Duration, begin, count, want int) time.Duration {
	next := elapsed / 20
	switch {
	case count == want:
		next = elapsed / 50
	case count != begin:
		done := float64(abs(count - begin))
		left := float64(abs(want - count))
		next = min(next, time.Duration(float64(elapsed)*left/done/2))
	}
	return min(max(next, time.Millisecond), 500*time.Millisecond)
}

// pollScale stretches the poll intervals (experiments on the perturbation
// polling causes; BAGPIPE_BENCH_POLL_SCALE).
var pollScale = func() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("BAGPIPE_BENCH_POLL_SCALE"), 64); err == nil && v > 0 {
		return v
	}
	return 1
}()

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// waitInstance waits until the daemon holds want received routes (the
// looking glass summary's received_routes_count) and the instance's worker
// has processed every event handed to it (its "event queue length" is 0
// after the count is read). It returns the time it saw that, the number of
// requests made, and, when ctx ends first, the last count.
//
// The condition means "every route is in the instance": a daemon only
// counts a received route once its route table has handed it to the
// subscribed instances (the reference) or within the same step (ours: the
// batch of one UPDATE is handed over right after), and an empty queue means
// the instance's worker has run best path selection and called the
// dataplane driver for each (ours counts the batch at work as queued).
func waitInstance(ctx context.Context, d *daemon, instance string, begin, want int, start time.Time) (time.Time, int, int, error) {
	polls, last := 0, begin
	for {
		n, err := d.receivedCount(ctx)
		polls++
		if err == nil {
			last = n
			if n == want {
				q, err := d.queueLength(ctx, instance)
				polls++
				if err == nil && q == 0 {
					return time.Now(), polls, last, nil
				}
			}
		}
		if ctx.Err() != nil {
			// The daemon may have answered HTTP 500 (the reference does,
			// under load) or be too busy: get a last count without ctx.
			lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if n, err := d.receivedCount(lctx); err == nil {
				last = n
			}
			cancel()
			return time.Time{}, polls, last, ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(pollScale * float64(nextPoll(time.Since(start), begin, last, want)))):
		}
	}
}

// ingestOpts bounds a run.
type ingestOpts struct {
	timeout   time.Duration // bound of the ingestion and of the withdrawal
	verifyMax int           // count best_routes when N is at most this
	withdraw  bool
	// heapProfile: save ours' heap profile (bench/profiled's pprof
	// endpoint) there once the routes are in.
	heapProfile string
}

// runIngest runs scenarios 1 and 2 for one implementation and one feed: a
// fresh daemon, one attached port (the instance imports target:64512:1),
// the feed, then its withdrawal.
func runIngest(ctx context.Context, fe *feeder, im impl, fd *feed, o ingestOpts, dir string) (res ingestResult) {
	res = ingestResult{Impl: im.name, Family: fd.fam.String(), Packing: fd.pack.String(), N: fd.n, Updates: fd.adv.updates, Verified: -1}
	fail := func(err error) ingestResult {
		res.Err = err.Error()
		return res
	}
	quiesce()
	fe.expect(im.addr)
	d, err := startDaemon(ctx, im, daemonConfig{peer: fe.addr, bgpPort: fe.port, rtc: true}, dir)
	if err != nil {
		return fail(err)
	}
	defer d.stop()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	s, err := fe.session(sctx, im.addr)
	cancel()
	if err != nil {
		return fail(err)
	}
	defer s.close()

	inst := instanceID(fd.fam)
	adv := s.await(localKey(fd.fam))
	if _, err := d.post(ctx, "/attach_localport", attachRequest(fd.fam.vpnType(), inst, localPortMAC, localPortIP, "tap-bench")); err != nil {
		return fail(fmt.Errorf("attach: %w", err))
	}
	select {
	case <-adv:
	case <-time.After(30 * time.Second):
		return fail(errors.New("the attached port's route never reached the feeder"))
	}
	time.Sleep(300 * time.Millisecond) // let the daemon settle
	if res.RSSBefore, err = d.rss(); err != nil {
		return fail(err)
	}
	cpu0 := d.cpuTime()

	// Ingestion.
	ictx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	sendErr := make(chan error, 1)
	go func() { sendErr <- s.send(ictx, &fd.adv) }()
	end, polls, last, err := waitInstance(ictx, d, inst, 0, fd.n, start)
	res.Polls = polls
	if err != nil {
		if serr := s.failed(); serr != nil {
			return fail(fmt.Errorf("BGP session lost during the feed: %w", serr))
		}
		res.Reached = max(last, 0)
		res.Seconds = o.timeout.Seconds()
		res.Rate = float64(res.Reached) / res.Seconds
		res.CPU = (d.cpuTime() - cpu0).Seconds()
		res.RSSAfter, _ = d.rss()
		if res.Reached > 0 {
			res.PerRoute = float64(res.RSSAfter-res.RSSBefore) / float64(res.Reached)
		}
		res.WdSkipped = fmt.Sprintf("ingestion bounded at %s", o.timeout)
		return res
	}
	if err := <-sendErr; err != nil {
		return fail(fmt.Errorf("feed: %w", err))
	}
	res.FeedWaits, res.FeedWaited = s.waits, s.waited.Seconds()
	res.Complete, res.Reached = true, fd.n
	res.Seconds = end.Sub(start).Seconds()
	res.Rate = float64(fd.n) / res.Seconds
	res.CPU = (d.cpuTime() - cpu0).Seconds()
	if res.RSSAfter, err = d.rss(); err != nil {
		return fail(err)
	}
	res.PerRoute = float64(res.RSSAfter-res.RSSBefore) / float64(fd.n)
	if o.heapProfile != "" && im.name == "ours" {
		saveHeapProfile(ctx, o.heapProfile)
	}
	if fd.n <= o.verifyMax {
		vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		n, err := d.trackedEntries(vctx, inst)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("verification: %w", err))
		}
		res.Verified = n
		if n != fd.n {
			return fail(fmt.Errorf("verification: the instance's best_routes holds %d entries, %d expected", n, fd.n))
		}
	}
	if !o.withdraw {
		res.WdSkipped = "not run"
		return res
	}

	// Withdrawal.
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start = time.Now()
	go func() { sendErr <- s.send(wctx, &fd.wdr) }()
	end, _, _, err = waitInstance(wctx, d, inst, fd.n, 0, start)
	if err != nil {
		if serr := s.failed(); serr != nil {
			return fail(fmt.Errorf("BGP session lost during the withdrawal: %w", serr))
		}
		res.WdSeconds = o.timeout.Seconds()
		res.WdSkipped = fmt.Sprintf("withdrawal bounded at %s", o.timeout)
		return res
	}
	if err := <-sendErr; err != nil {
		return fail(fmt.Errorf("withdrawal feed: %w", err))
	}
	res.WdComplete = true
	res.WdSeconds = end.Sub(start).Seconds()
	res.WdRate = float64(fd.n) / res.WdSeconds
	return res
}

func runDir(base string, parts ...any) string {
	name := ""
	for i, p := range parts {
		if i > 0 {
			name += "-"
		}
		name += fmt.Sprint(p)
	}
	return filepath.Join(base, sanitize(name))
}

func sanitize(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			out[i] = '_'
		}
	}
	return string(out)
}
