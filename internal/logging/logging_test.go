package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/lookingglass"
)

func TestLevelSwitch(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	l.Logger.Debug("hidden")
	l.SetDebug(true)
	l.Logger.Debug("shown")
	l.SetDebug(false)
	l.Logger.Debug("hidden again")
	l.Logger.Info("info")
	got := out.String()
	if strings.Contains(got, "hidden") || !strings.Contains(got, "msg=shown") || !strings.Contains(got, "msg=info") {
		t.Errorf("unexpected output:\n%s", got)
	}
}

func TestDebugOption(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Output: &out, Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	if l.Level.Level() != slog.LevelDebug {
		t.Fatalf("level = %v", l.Level.Level())
	}
	l.Logger.Debug("dbg")
	if !strings.Contains(out.String(), "msg=dbg") {
		t.Errorf("debug record missing: %q", out.String())
	}
}

func TestJSONAndFile(t *testing.T) {
	dir := t.TempDir()
	l, err := New(Options{LogDir: dir, UseJSON: true, Program: "prog"})
	if err != nil {
		t.Fatal(err)
	}
	l.Logger.Info("hello", "k", 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "prog.log"); l.Path != want {
		t.Errorf("path = %q, want %q", l.Path, want)
	}
	data, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(data), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", data, err)
	}
	if rec["msg"] != "hello" || rec["k"] != float64(1) {
		t.Errorf("record = %v", rec)
	}
}

func TestLogPath(t *testing.T) {
	for _, tc := range []struct{ file, dir, want string }{
		{"", "", ""},
		{"a.log", "", "a.log"},
		{"a.log", "/d", "/d/a.log"},
		{"/x/a.log", "/d", "/x/a.log"},
		{"", "/d", "/d/bagpipe-bgp.log"},
	} {
		if got := logPath(tc.file, tc.dir, ""); got != tc.want {
			t.Errorf("logPath(%q, %q) = %q, want %q", tc.file, tc.dir, got, tc.want)
		}
	}
}

func TestConfLogFileIgnored(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Output: &out, LogFile: "/etc/bagpipe-bgp/log.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Path != "" {
		t.Errorf("path = %q, want none", l.Path)
	}
	if !strings.Contains(out.String(), "--log-config-append") || l.Catcher.Count() != 1 {
		t.Errorf("expected a caught warning, got %q (count %d)", out.String(), l.Catcher.Count())
	}
}

func TestCatcherKeepsWarningsPerWorker(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	l.Level.Set(slog.LevelError) // the catcher ignores the output level
	log := l.Logger
	log.Info("not kept")
	vrf := log.With(ComponentKey, "vpn", WorkerKey, "VRF-1")
	vrf.Warn(`bad "thing"`, "port", "tap1")
	log.Error("global error", WorkerKey, "BGP-10.0.0.2")
	log.Log(context.Background(), slog.LevelError+4, "critical")

	if n := l.Catcher.Count(); n != 3 {
		t.Fatalf("count = %d, want 3", n)
	}
	logs := l.Catcher.Logs()
	timeRE := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}$`)
	want := []struct{ level, name, msg string }{
		{"CRITICAL", "bagpipe-bgp", "critical"},
		{"ERROR", "bagpipe-bgp.BGP-10.0.0.2", "global error"},
		{"WARNING", "vpn.VRF-1", "bad 'thing' port=tap1"},
	}
	for i, w := range want {
		got := logs[i]
		if len(got) != 4 || got[0].Key != "level" || got[1].Key != "time" || got[2].Key != "name" || got[3].Key != "message" {
			t.Fatalf("logs[%d] keys = %v", i, got)
		}
		if got[0].Value != w.level || got[2].Value != w.name || got[3].Value != w.msg {
			t.Errorf("logs[%d] = %v, want %+v", i, got, w)
		}
		if !timeRE.MatchString(got[1].Value.(string)) {
			t.Errorf("logs[%d] time = %q", i, got[1].Value)
		}
	}
	wl := l.Catcher.WorkerLogs("VRF-1")
	if len(wl) != 1 || len(wl[0]) != 3 || wl[0][0] != (lookingglass.KV{Key: "level", Value: "WARNING"}) ||
		wl[0][1].Key != "time" || wl[0][2] != (lookingglass.KV{Key: "message", Value: "bad 'thing' port=tap1"}) {
		t.Errorf("VRF-1 logs = %v", wl)
	}
	if wl := l.Catcher.WorkerLogs("BGP-10.0.0.2"); len(wl) != 1 {
		t.Errorf("peer logs = %v", wl)
	}
	if strings.Contains(out.String(), "bad") || !strings.Contains(out.String(), "global error") {
		t.Errorf("output level not applied: %q", out.String())
	}
	l.Catcher.Forget("VRF-1")
	if wl := l.Catcher.WorkerLogs("VRF-1"); len(wl) != 0 {
		t.Errorf("forgotten worker still has logs: %v", wl)
	}
}

func TestCatcherGroupsAndAttrs(t *testing.T) {
	c := NewCatcher(0)
	log := slog.New(NewCatchHandler(slog.NewTextHandler(&bytes.Buffer{}, nil), c))
	log.With("a", 1).WithGroup("g").With(WorkerKey, "not-a-worker").Warn("m", "b", "two words")
	recs := c.Records()
	if len(recs) != 1 {
		t.Fatalf("records = %v", recs)
	}
	if recs[0].Worker != "" || recs[0].Message != `m a=1 g.worker=not-a-worker g.b="two words"` {
		t.Errorf("record = %+v", recs[0])
	}
}

func TestCatcherBounded(t *testing.T) {
	c := NewCatcher(0)
	log := slog.New(NewCatchHandler(slog.NewTextHandler(&bytes.Buffer{}, nil), c)).With(WorkerKey, "EVI-1")
	for i := range 250 {
		log.Warn(fmt.Sprint(i))
	}
	if c.Count() != DefaultKeep {
		t.Fatalf("count = %d", c.Count())
	}
	for _, logs := range [][]lookingglass.Dict{c.Logs(), c.WorkerLogs("EVI-1")} {
		newest, _ := logs[0].Get("message")
		oldest, _ := logs[len(logs)-1].Get("message")
		if len(logs) != DefaultKeep || newest != "249" || oldest != "150" {
			t.Errorf("kept %d, newest %v, oldest %v", len(logs), newest, oldest)
		}
	}
}

func TestCatcherEvictsOldestWorker(t *testing.T) {
	c := NewCatcher(1)
	base := time.Now()
	for i := range maxWorkers + 1 {
		c.Add(Record{Time: base.Add(time.Duration(i) * time.Second), Level: slog.LevelWarn, Worker: fmt.Sprint("W-", i)})
	}
	if len(c.workers) != maxWorkers {
		t.Fatalf("workers = %d", len(c.workers))
	}
	if len(c.WorkerRecords("W-0")) != 0 || len(c.WorkerRecords(fmt.Sprint("W-", maxWorkers))) != 1 {
		t.Error("the oldest worker should have been evicted")
	}
}

func TestCatcherConcurrent(t *testing.T) {
	c := NewCatcher(10)
	log := slog.New(NewCatchHandler(slog.NewTextHandler(&bytes.Buffer{}, nil), c))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			w := log.With(WorkerKey, fmt.Sprint("VRF-", i%2))
			for range 100 {
				w.Warn("x")
				_ = c.Logs()
				_ = c.WorkerLogs("VRF-0")
			}
		})
	}
	wg.Wait()
	if c.Count() != 10 || len(c.WorkerLogs("VRF-1")) != 10 {
		t.Errorf("count = %d, VRF-1 = %d", c.Count(), len(c.WorkerLogs("VRF-1")))
	}
}

func TestLevelName(t *testing.T) {
	for l, want := range map[slog.Level]string{
		slog.LevelDebug: "DEBUG", slog.LevelInfo: "INFO", slog.LevelWarn: "WARNING",
		slog.LevelError: "ERROR", slog.LevelError + 1: "CRITICAL",
	} {
		if got := LevelName(l); got != want {
			t.Errorf("LevelName(%v) = %q, want %q", l, got, want)
		}
	}
}

func TestFormatTime(t *testing.T) {
	tm := time.Date(2026, 11, 24, 16, 50, 31, 42_900_000, time.Local)
	if got := FormatTime(tm); got != "2026-11-24 16:50:31,042" {
		t.Errorf("FormatTime = %q", got)
	}
}
