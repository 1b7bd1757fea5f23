package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"bagpipe/internal/lookingglass"
)

// Attribute keys the catcher understands.
const (
	// WorkerKey names the worker a record belongs to ("VRF-1",
	// "BGP-10.0.0.2"): such records are also kept in that worker's log.
	WorkerKey = "worker"
	// ComponentKey names the emitting component; it becomes the "name" of
	// the record in the looking glass.
	ComponentKey = "component"
)

// DefaultKeep is the number of records the catcher keeps globally and per
// worker, as the reference does.
const DefaultKeep = 100

// maxWorkers bounds the number of per-worker logs kept: past it the worker
// whose last record is the oldest is forgotten.
const maxWorkers = 4096

// Record is a caught log record.
type Record struct {
	Time    time.Time
	Level   slog.Level
	Name    string // component (and worker) that emitted it
	Worker  string // "" when the record carries no worker attribute
	Message string // message followed by its attributes (key=value)
}

// Catcher keeps the last records at WARNING and above, globally and per
// worker, for the looking glass "logs" entries. It is safe for concurrent
// use. The zero value is not usable; create one with NewCatcher.
type Catcher struct {
	keep int

	mu      sync.Mutex
	global  ring
	workers map[string]*ring
}

// NewCatcher returns a catcher keeping the last keep records (DefaultKeep
// when keep <= 0).
func NewCatcher(keep int) *Catcher {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Catcher{keep: keep, global: ring{max: keep}, workers: map[string]*ring{}}
}

// Add records rec (whatever its level: the handler filters).
func (c *Catcher) Add(rec Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.global.add(rec)
	if rec.Worker == "" {
		return
	}
	r := c.workers[rec.Worker]
	if r == nil {
		if len(c.workers) >= maxWorkers {
			c.evictOldest()
		}
		r = &ring{max: c.keep}
		c.workers[rec.Worker] = r
	}
	r.add(rec)
}

func (c *Catcher) evictOldest() {
	var oldest string
	var t time.Time
	for name, r := range c.workers {
		if last := r.last(); oldest == "" || last.Before(t) {
			oldest, t = name, last
		}
	}
	delete(c.workers, oldest)
}

// Forget drops the records of a worker that went away.
func (c *Catcher) Forget(worker string) {
	c.mu.Lock()
	delete(c.workers, worker)
	c.mu.Unlock()
}

// Count returns the number of records kept globally (the looking glass
// summary.warnings_and_errors).
func (c *Catcher) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.global.len()
}

// Records returns the global records, newest first.
func (c *Catcher) Records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.global.newestFirst()
}

// WorkerRecords returns the records of a worker, newest first.
func (c *Catcher) WorkerRecords(worker string) []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.workers[worker]; r != nil {
		return r.newestFirst()
	}
	return nil
}

// Logs returns the global records in the looking glass format:
// [{"level", "time", "name", "message"}] (in this key order), newest first.
func (c *Catcher) Logs() []lookingglass.Dict {
	recs := c.Records()
	out := make([]lookingglass.Dict, len(recs))
	for i, r := range recs {
		out[i] = lookingglass.Dict{
			{Key: "level", Value: LevelName(r.Level)},
			{Key: "time", Value: FormatTime(r.Time)},
			{Key: "name", Value: r.Name},
			{Key: "message", Value: lgMessage(r.Message)},
		}
	}
	return out
}

// WorkerLogs returns the records of a worker in the looking glass format:
// [{"level", "time", "message"}], newest first.
func (c *Catcher) WorkerLogs(worker string) []lookingglass.Dict {
	recs := c.WorkerRecords(worker)
	out := make([]lookingglass.Dict, len(recs))
	for i, r := range recs {
		out[i] = lookingglass.Dict{
			{Key: "level", Value: LevelName(r.Level)},
			{Key: "time", Value: FormatTime(r.Time)},
			{Key: "message", Value: lgMessage(r.Message)},
		}
	}
	return out
}

// LevelName returns the Python logging name of a level: DEBUG, INFO,
// WARNING, ERROR or CRITICAL (above ERROR).
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l == slog.LevelError:
		return "ERROR"
	}
	return "CRITICAL"
}

// FormatTime formats t as Python logging's asctime: "2006-01-02 15:04:05,000"
// in local time.
func FormatTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05") + fmt.Sprintf(",%03d", t.Nanosecond()/1e6)
}

// lgMessage applies the reference's escaping: double quotes become single
// quotes.
func lgMessage(m string) string { return strings.ReplaceAll(m, `"`, `'`) }

// ring is a bounded FIFO of records.
type ring struct {
	max   int
	buf   []Record
	start int // index of the oldest record once buf is full
}

func (r *ring) add(rec Record) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, rec)
		return
	}
	r.buf[r.start] = rec
	r.start = (r.start + 1) % r.max
}

func (r *ring) len() int { return len(r.buf) }

func (r *ring) last() time.Time {
	if len(r.buf) == 0 {
		return time.Time{}
	}
	return r.buf[(r.start+len(r.buf)-1)%len(r.buf)].Time
}

func (r *ring) newestFirst() []Record {
	n := len(r.buf)
	out := make([]Record, n)
	for i := range n {
		out[i] = r.buf[(r.start+n-1-i)%n]
	}
	return out
}

// catchHandler is a slog.Handler that hands records at WARNING and above to
// a Catcher and passes records enabled by the wrapped handler on to it.
type catchHandler struct {
	next      slog.Handler
	c         *Catcher
	worker    string // from WithAttrs, outside any group
	component string
	attrs     string // preformatted attributes added with WithAttrs
	groups    string // group prefix ("a.b.") for attribute keys
}

// NewCatchHandler wraps next so that records at WARNING and above are also
// kept by c. The level of next does not filter what c keeps.
func NewCatchHandler(next slog.Handler, c *Catcher) slog.Handler {
	return &catchHandler{next: next, c: c}
}

func (h *catchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *catchHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.catch(r)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *catchHandler) catch(r slog.Record) {
	worker, component := h.worker, h.component
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		if h.groups == "" {
			switch a.Key {
			case WorkerKey:
				worker = a.Value.String()
				return true
			case ComponentKey:
				component = a.Value.String()
				return true
			}
		}
		appendAttr(&b, h.groups, a)
		return true
	})
	name := component
	if name == "" {
		name = "bagpipe-bgp"
	}
	if worker != "" {
		name += "." + worker
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	h.c.Add(Record{Time: t, Level: r.Level, Name: name, Worker: worker, Message: b.String()})
}

func (h *catchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.next = h.next.WithAttrs(attrs)
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		if h.groups == "" && a.Key == WorkerKey {
			n.worker = a.Value.String()
			continue
		}
		if h.groups == "" && a.Key == ComponentKey {
			n.component = a.Value.String()
			continue
		}
		appendAttr(&b, h.groups, a)
	}
	n.attrs = b.String()
	return &n
}

func (h *catchHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.next = h.next.WithGroup(name)
	n.groups = h.groups + name + "."
	return &n
}

// appendAttr writes " key=value" (groups flattened with dots).
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " =\"") {
		fmt.Fprintf(b, "%q", v)
	} else {
		b.WriteString(v)
	}
}
