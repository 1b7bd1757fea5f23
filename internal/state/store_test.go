package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, dir string, min int) *Store {
	t.Helper()
	s, err := Open(dir, Options{Log: quiet(), CompactMin: min})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash releases the store as a killed process would: nothing more is
// written.
func crash(s *Store) {
	s.mu.Lock()
	s.closed = true
	for s.compacting {
		done := s.compactDone
		s.mu.Unlock()
		<-done
		s.mu.Lock()
	}
	s.mu.Unlock()
	s.closeFiles()
}

func val(i int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"n":%d,"s":"v%d"}`, i, i)) }

func put(k string, v json.RawMessage) Op { return Op{Key: k, Value: v} }
func del(k string) Op                    { return Op{Key: k, Delete: true} }

// contents returns key=value lines in replay order.
func contents(s *Store) []string {
	var out []string
	for _, r := range s.Records() {
		out = append(out, r.Key+"="+string(r.Value))
	}
	return out
}

func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, JournalPrefix+"*"))
	var out []string
	for _, f := range m {
		if !strings.Contains(filepath.Base(f), corruptInfix) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func corruptFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+corruptInfix+"*"))
	return m
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	must(t, s.Commit(put("a", val(1)), put("b", val(2))))
	must(t, s.Commit(put("c", val(3))))
	must(t, s.Commit(put("a", val(4)))) // moves a after c
	must(t, s.Commit(del("b"), put("d", val(5)), put("e", val(6))))
	must(t, s.Commit(del("nothing")))
	want := []string{`c={"n":3,"s":"v3"}`, `a={"n":4,"s":"v4"}`, `d={"n":5,"s":"v5"}`, `e={"n":6,"s":"v6"}`}
	if got := contents(s); !slices.Equal(got, want) {
		t.Fatalf("in memory: %q, want %q", got, want)
	}
	if v, ok := s.Get("a"); !ok || string(v) != `{"n":4,"s":"v4"}` {
		t.Fatalf("Get(a) = %s %v", v, ok)
	}
	if _, err := s.Apply(put("x", json.RawMessage("{not json"))); err == nil {
		t.Fatal("a value that is not JSON was accepted")
	}
	must(t, s.Close())
	// Reopened after a clean close, then after a crash (journal only).
	s = open(t, dir, 0)
	if got := contents(s); !slices.Equal(got, want) {
		t.Fatalf("after reopening: %q, want %q", got, want)
	}
	must(t, s.Commit(put("f", val(7))))
	crash(s)
	s = open(t, dir, 0)
	defer s.Close()
	want = append(want, `f={"n":7,"s":"v7"}`)
	if got := contents(s); !slices.Equal(got, want) {
		t.Fatalf("after a crash: %q, want %q", got, want)
	}
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("problems on a clean directory: %v", p)
	}
}

func TestLockedByAnother(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	defer s.Close()
	if _, err := Open(dir, Options{Log: quiet()}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
}

// The journal is compacted into a snapshot as it grows: its size stays
// bounded by the number of records, not by the number of changes.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 20)
	for i := range 1000 {
		must(t, s.Commit(put(fmt.Sprintf("k%d", i%10), val(i))))
	}
	must(t, s.Compact()) // waits for a background one, then compacts
	if n := len(journalFiles(t, dir)); n != 1 {
		t.Errorf("%d journal files after compaction, want 1", n)
	}
	st, err := os.Stat(journalFiles(t, dir)[0])
	if err != nil || st.Size() > 200 {
		t.Errorf("journal after compaction: %v, %v", st.Size(), err)
	}
	want := contents(s)
	if len(want) != 10 || want[9] != `k9={"n":999,"s":"v999"}` {
		t.Fatalf("records: %q", want)
	}
	crash(s)
	s = open(t, dir, 20)
	defer s.Close()
	if got := contents(s); !slices.Equal(got, want) {
		t.Fatalf("after reopening: %q, want %q", got, want)
	}
}

// A crash between the switch to a new journal and the snapshot rename
// leaves the old snapshot and two journals: nothing is lost.
func TestCrashDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	must(t, s.Commit(put("a", val(1))))
	// Step 1 of a compaction only: a new journal, no snapshot.
	s.syncMu.Lock()
	next, err := s.createJournal(s.jnum + 1)
	if err != nil {
		t.Fatal(err)
	}
	s.journal.Close()
	s.journal, s.jnum = next, s.jnum+1
	s.syncMu.Unlock()
	must(t, s.Commit(put("b", val(2)), del("a")))
	crash(s)
	s = open(t, dir, 0)
	defer s.Close()
	if got, want := contents(s), []string{`b={"n":2,"s":"v2"}`}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// writeState leaves a directory with a snapshot of 3 records and a
// journal of 5 batches (k3..k7), as a killed daemon would.
func writeState(t *testing.T) (dir, journal string) {
	dir = t.TempDir()
	s := open(t, dir, 0)
	must(t, s.Commit(put("k0", val(0)), put("k1", val(1)), put("k2", val(2))))
	must(t, s.Compact())
	for i := 3; i < 8; i++ {
		must(t, s.Commit(put(fmt.Sprintf("k%d", i), val(i))))
	}
	crash(s)
	js := journalFiles(t, dir)
	if len(js) != 1 {
		t.Fatalf("journals %v", js)
	}
	return dir, js[0]
}

func keys(s *Store) []string {
	var out []string
	for _, r := range s.Records() {
		out = append(out, r.Key)
	}
	return out
}

func rangeKeys(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("k%d", i))
	}
	return out
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))
}

func writeLines(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Every kind of damage: Open succeeds with the readable records, reports
// the problem, and leaves a clean directory (a second Open finds nothing
// wrong and the same records).
func TestDamagedFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dir, journal string)
		want    []string
		tail    bool // an interrupted write, not damage
		aside   int  // files set aside
		problem string
	}{
		{
			name: "journal cut in its last batch",
			damage: func(t *testing.T, dir, journal string) {
				data, _ := os.ReadFile(journal)
				must(t, os.WriteFile(journal, data[:len(data)-7], 0o600))
			},
			want: rangeKeys(0, 7), tail: true, problem: "incomplete line",
		},
		{
			name: "journal with zeros after its end",
			damage: func(t *testing.T, dir, journal string) {
				f, _ := os.OpenFile(journal, os.O_APPEND|os.O_WRONLY, 0)
				f.Write(make([]byte, 300))
				f.Close()
			},
			want: rangeKeys(0, 8), tail: true, problem: "incomplete line",
		},
		{
			name: "bad checksum in the middle of the journal",
			damage: func(t *testing.T, dir, journal string) {
				ls := lines(t, journal)
				ls[3] = bytes.Replace(ls[3], []byte("v5"), []byte("v9"), 1) // batch k5
				writeLines(t, journal, ls)
			},
			want: rangeKeys(0, 5), aside: 1, problem: "checksum mismatch",
		},
		{
			name: "garbage line in the middle of the journal",
			damage: func(t *testing.T, dir, journal string) {
				ls := lines(t, journal)
				ls = slices.Insert(ls, 2, []byte("\x00\x01garbage garbage\n"))
				writeLines(t, journal, ls)
			},
			want: rangeKeys(0, 4), aside: 1, problem: "malformed line",
		},
		{
			name: "missing batch",
			damage: func(t *testing.T, dir, journal string) {
				ls := lines(t, journal)
				writeLines(t, journal, slices.Delete(ls, 2, 3)) // k4
			},
			want: rangeKeys(0, 4), aside: 1, problem: "missing (found",
		},
		{
			name: "valid checksum, unreadable batch",
			damage: func(t *testing.T, dir, journal string) {
				ls := lines(t, journal)
				ls[2] = appendLine(nil, []byte(`{"seq":5,"ops":"nope"}`))
				writeLines(t, journal, ls)
			},
			want: rangeKeys(0, 4), aside: 1, problem: "unreadable batch",
		},
		{
			name: "journal of another format version",
			damage: func(t *testing.T, dir, journal string) {
				ls := lines(t, journal)
				ls[0] = appendLine(nil, []byte(`{"format":"bagpipe-bgp-state","version":2,"kind":"journal"}`))
				writeLines(t, journal, ls)
			},
			want: rangeKeys(0, 3), aside: 1, problem: "format version 2",
		},
		{
			name: "empty journal (crash while creating it)",
			damage: func(t *testing.T, dir, journal string) {
				must(t, os.WriteFile(journal, nil, 0o600))
			},
			want: rangeKeys(0, 3), tail: true, problem: "without a complete header",
		},
		{
			name: "truncated snapshot",
			damage: func(t *testing.T, dir, journal string) {
				path := filepath.Join(dir, SnapshotFile)
				ls := lines(t, path)
				writeLines(t, path, ls[:3]) // header + k0, k1
			},
			want: []string{"k0", "k1", "k3", "k4", "k5", "k6", "k7"}, aside: 1, problem: "2 records, the header announces 3",
		},
		{
			name: "garbage snapshot",
			damage: func(t *testing.T, dir, journal string) {
				must(t, os.WriteFile(filepath.Join(dir, SnapshotFile), []byte("\x7fELF garbage\x00\x00\n\n"), 0o600))
			},
			// Without the snapshot the journal does not start at batch 1:
			// it is not applied either.
			want: nil, aside: 2, problem: "malformed line",
		},
		{
			name: "snapshot of another format version",
			damage: func(t *testing.T, dir, journal string) {
				path := filepath.Join(dir, SnapshotFile)
				ls := lines(t, path)
				ls[0] = appendLine(nil, []byte(`{"format":"bagpipe-bgp-state","version":7,"kind":"snapshot","seq":1,"records":3}`))
				writeLines(t, path, ls)
			},
			want: nil, aside: 2, problem: "format version 7",
		},
		{
			name: "not a state file",
			damage: func(t *testing.T, dir, journal string) {
				ls := lines(t, journal)
				ls[0] = appendLine(nil, []byte(`{"something":"else"}`))
				writeLines(t, journal, ls)
			},
			want: rangeKeys(0, 3), aside: 1, problem: "not a bagpipe-bgp-state file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, journal := writeState(t)
			tc.damage(t, dir, journal)
			s, err := Open(dir, Options{Log: quiet()})
			if err != nil {
				t.Fatalf("Open failed: %v", err)
			}
			if got := keys(s); !slices.Equal(got, tc.want) {
				t.Errorf("records %q, want %q", got, tc.want)
			}
			ps := s.Problems()
			if len(ps) == 0 || !strings.Contains(ps[0].String(), tc.problem) || ps[0].Tail != tc.tail {
				t.Errorf("problems %v, want one with %q (tail %v)", ps, tc.problem, tc.tail)
			}
			if n := len(corruptFiles(dir)); n != tc.aside {
				t.Errorf("%d files set aside, want %d: %v", n, tc.aside, corruptFiles(dir))
			}
			// New changes go on, and the directory is clean again.
			must(t, s.Commit(put("new", val(100))))
			crash(s)
			s = open(t, dir, 0)
			defer s.Close()
			if got, want := keys(s), append(slices.Clone(tc.want), "new"); !slices.Equal(got, want) {
				t.Errorf("after reopening: %q, want %q", got, want)
			}
			if ps := s.Problems(); len(ps) != 0 {
				t.Errorf("problems on the second open: %v", ps)
			}
		})
	}
}

// Concurrent writers (run with -race): every committed change is there
// after a crash, compactions running in the background meanwhile.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 50)
	const writers, each = 16, 150
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := fmt.Sprintf("w%d-%d", w, i%40)
				var err error
				if i%7 == 6 {
					err = s.Commit(del(k))
				} else {
					err = s.Commit(put(k, val(w*1000+i)))
				}
				if err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					_ = s.Records()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// What each writer's last change of each key was.
	want := map[string]string{}
	for w := range writers {
		for i := range each {
			k := fmt.Sprintf("w%d-%d", w, i%40)
			if i%7 == 6 {
				delete(want, k)
			} else {
				want[k] = string(val(w*1000 + i))
			}
		}
	}
	check := func(s *Store, when string) {
		t.Helper()
		got := map[string]string{}
		for _, r := range s.Records() {
			got[r.Key] = string(r.Value)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", when, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: %s = %s, want %s", when, k, got[k], v)
			}
		}
	}
	check(s, "in memory")
	crash(s)
	s = open(t, dir, 50)
	defer s.Close()
	check(s, "after a crash")
}

// A failed journal write keeps the changes in memory and starts a
// snapshot at once: the change is acknowledged once the snapshot holds it.
func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	must(t, s.Commit(put("a", val(1))))
	breakJournal(s)
	must(t, s.Commit(put("b", val(2))))
	must(t, s.Commit(put("c", val(3))))
	if js := journalFiles(t, dir); len(js) != 1 || !strings.HasSuffix(js[0], journalName(2)) {
		t.Errorf("journals %q: want the second only (the first is the one that failed)", js)
	}
	crash(s)
	s = open(t, dir, 0)
	defer s.Close()
	if got, want := keys(s), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// breakJournal makes the next journal write fail, as EIO or ENOSPC would.
func breakJournal(s *Store) {
	s.syncMu.Lock()
	s.journal.Close()
	s.syncMu.Unlock()
}

// blockSnapshot makes writing a snapshot fail, as a full disk would: the
// temporary path is a directory (even root cannot create the file), not
// empty (Open does not remove it). It returns the function that unblocks.
func blockSnapshot(t *testing.T, dir string) func() {
	t.Helper()
	blocker := filepath.Join(dir, SnapshotFile+tmpSuffix)
	must(t, os.MkdirAll(filepath.Join(blocker, "x"), 0o700))
	return func() { must(t, os.RemoveAll(blocker)) }
}

// waitCompaction waits until no compaction runs.
func waitCompaction(s *Store) {
	s.mu.Lock()
	for s.compacting {
		done := s.compactDone
		s.mu.Unlock()
		<-done
		s.mu.Lock()
	}
	s.mu.Unlock()
}

// retryNow lets the next Sync that finds a change not durable try a
// snapshot at once (instead of waiting for the retry interval).
func retryNow(s *Store) {
	s.mu.Lock()
	s.retry = 0
	s.mu.Unlock()
}

// A journal write fails, then the snapshot that would hold the batches
// kept in memory fails too (disk full). The journal started by that
// compaction follows a gap: the next load would set it aside. Its batches
// must not be acknowledged until a snapshot is written, which Close tries
// once more. Whatever happens next, no acknowledged change is lost.
func TestWriteFailureThenSnapshotFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		// freed is when the disk gets space again: "running" (before a
		// later change), "close" (before Close), "" (after Close).
		freed string
	}{{"freed while running", "running"}, {"freed before Close", "close"}, {"not freed before Close", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, 0)
			acked := map[string]bool{}
			commit := func(k string, i int) error {
				err := s.Commit(put(k, val(i)))
				if err == nil {
					acked[k] = true
				}
				return err
			}
			for i := 1; i <= 3; i++ {
				must(t, commit(fmt.Sprintf("k%d", i), i))
			}
			unblock := blockSnapshot(t, dir)
			breakJournal(s)
			// k4: the write fails, the snapshot started at once fails.
			if err := commit("k4", 4); err == nil {
				t.Fatal("k4 acknowledged with the journal and the snapshot failing")
			}
			waitCompaction(s) // the one k4's failure started
			// k5 goes to the journal started by that compaction: written,
			// but after k4, which is in memory only.
			if err := commit("k5", 5); err == nil {
				t.Fatal("k5 acknowledged in a journal that follows a change kept in memory only")
			}
			if err := s.Sync(s.LastSeq()); err == nil {
				t.Fatal("Sync reports durable what the next load would set aside")
			}
			want := []string{"k1", "k2", "k3", "k4", "k5"}
			var closeErr error
			switch tc.freed {
			case "running":
				unblock()
				retryNow(s)
				// The next change writes the snapshot: everything is durable.
				must(t, commit("k6", 6))
				must(t, s.Sync(s.LastSeq()))
				want = append(want, "k6")
				crash(s)
			case "close":
				unblock()
				closeErr = s.Close()
				must(t, closeErr)
			default:
				closeErr = s.Close()
				if closeErr == nil {
					t.Error("Close reported success without writing the changes kept in memory")
				}
				unblock()
				want = []string{"k1", "k2", "k3"} // k4, k5 were refused
			}
			s = open(t, dir, 0)
			defer s.Close()
			got := keys(s)
			for k := range acked {
				if !slices.Contains(got, k) {
					t.Errorf("acknowledged %s lost: records %q, problems %v", k, got, s.Problems())
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("records %q, want %q", got, want)
			}
			if ps := s.Problems(); tc.freed != "" && len(ps) != 0 {
				t.Errorf("problems: %v", ps)
			}
		})
	}
}

// A crash in the middle of a journal write leaves an incomplete last
// line; the next start cannot write its snapshot. The journal it starts
// continues the old one, whose incomplete line was cut off at load: what
// it acknowledges is there after the following restart.
func TestTornTailThenSnapshotFailure(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	for i := 1; i <= 3; i++ {
		must(t, s.Commit(put(fmt.Sprintf("k%d", i), val(i))))
	}
	crash(s)
	js := journalFiles(t, dir)
	old := js[len(js)-1]
	st, err := os.Stat(old)
	must(t, err)
	f, err := os.OpenFile(old, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.Write([]byte(`deadbeef {"seq":4,"ops":[{"ke`)) // the write the crash cut
	f.Close()
	unblock := blockSnapshot(t, dir)
	s = open(t, dir, 0)
	if ps := s.Problems(); len(ps) != 1 || !ps[0].Tail || !strings.Contains(ps[0].String(), "incomplete line") {
		t.Fatalf("problems %v", ps)
	}
	if st2, err := os.Stat(old); err != nil || st2.Size() != st.Size() {
		t.Errorf("incomplete line not cut off: %v bytes, want %d (%v)", st2.Size(), st.Size(), err)
	}
	must(t, s.Commit(put("k9", val(9))))
	crash(s)
	unblock()
	s = open(t, dir, 0)
	defer s.Close()
	if got, want := keys(s), []string{"k1", "k2", "k3", "k9"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q; problems %v", got, want, s.Problems())
	}
	if ps := s.Problems(); len(ps) != 0 {
		t.Errorf("problems %v", ps)
	}
	if c := corruptFiles(dir); len(c) != 0 {
		t.Errorf("set aside: %q", c)
	}
}

// A journal that is not the last one and ends with an incomplete line (an
// interrupted write whose cut failed, or a failed write) is kept when the
// next journal continues at the next batch; when the next one does not,
// that one is set aside.
func TestIncompleteLineInEarlierJournal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		next  func(ls [][]byte) [][]byte // lines of the next journal from the first one's
		want  []string
		aside int
	}{
		{"next journal continues", func(ls [][]byte) [][]byte { return [][]byte{ls[0], ls[4], ls[5]} }, rangeKeys(0, 8), 0},
		{"next journal after a gap", func(ls [][]byte) [][]byte { return [][]byte{ls[0], ls[5]} }, rangeKeys(0, 6), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, journal := writeState(t)
			n, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(journal), JournalPrefix), 10, 64)
			must(t, err)
			// header, k3..k7 (batches 2..6), "": the first journal ends in
			// the middle of k6.
			ls := lines(t, journal)
			writeLines(t, filepath.Join(dir, journalName(n+1)), tc.next(ls))
			writeLines(t, journal, [][]byte{ls[0], ls[1], ls[2], ls[3], ls[4][:len(ls[4])/2]})
			s := open(t, dir, 0)
			defer s.Close()
			if got := keys(s); !slices.Equal(got, tc.want) {
				t.Errorf("records %q, want %q", got, tc.want)
			}
			if ps := s.Problems(); len(ps) == 0 || !ps[0].Tail {
				t.Errorf("problems %v", ps)
			}
			if c := corruptFiles(dir); len(c) != tc.aside {
				t.Errorf("set aside: %q, want %d", c, tc.aside)
			}
		})
	}
}

// Damage set aside records that Open kept in memory; the snapshot that
// would hold them cannot be written. The journal started then follows
// them: what is committed to it is not acknowledged until a snapshot is
// written (a later change retries it).
func TestDamageThenSnapshotFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir, journal string)
		want   []string
	}{
		{"truncated snapshot", func(t *testing.T, dir, journal string) {
			path := filepath.Join(dir, SnapshotFile)
			writeLines(t, path, lines(t, path)[:3]) // header + k0, k1
		}, []string{"k0", "k1", "k3", "k4", "k5", "k6", "k7"}},
		{"bad checksum in the middle of the journal", func(t *testing.T, dir, journal string) {
			ls := lines(t, journal)
			ls[3] = bytes.Replace(ls[3], []byte("v5"), []byte("v9"), 1)
			writeLines(t, journal, ls)
		}, rangeKeys(0, 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, journal := writeState(t)
			tc.damage(t, dir, journal)
			unblock := blockSnapshot(t, dir)
			s := open(t, dir, 0)
			if got := keys(s); !slices.Equal(got, tc.want) {
				t.Fatalf("records %q, want %q", got, tc.want)
			}
			if err := s.Commit(put("new", val(100))); err == nil {
				t.Fatal("a change acknowledged in a journal that the next load would set aside")
			}
			unblock()
			retryNow(s)
			must(t, s.Commit(put("new2", val(101))))
			crash(s)
			s = open(t, dir, 0)
			defer s.Close()
			if got, want := keys(s), append(slices.Clone(tc.want), "new", "new2"); !slices.Equal(got, want) {
				t.Errorf("after reopening: %q, want %q", got, want)
			}
			if ps := s.Problems(); len(ps) != 0 {
				t.Errorf("problems on the second open: %v", ps)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A snapshot that cannot be written does not stop the store at Open:
// changes go on (journal), and a snapshot is written once possible.
func TestSnapshotNotWritable(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	must(t, s.Commit(put("a", val(1))))
	crash(s)
	// The temporary snapshot path is taken by a directory (even root
	// cannot create the file).
	blocker := filepath.Join(dir, SnapshotFile+tmpSuffix)
	must(t, os.MkdirAll(filepath.Join(blocker, "x"), 0o700))
	s, err := Open(dir, Options{Log: quiet()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := keys(s); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("records %q", got)
	}
	if err := s.Compact(); err == nil {
		t.Fatal("a snapshot was written over a directory")
	}
	must(t, s.Commit(put("b", val(2))))
	must(t, os.RemoveAll(blocker))
	must(t, s.Compact())
	must(t, s.Commit(put("c", val(3))))
	crash(s)
	s = open(t, dir, 0)
	defer s.Close()
	if got := keys(s); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after reopening: %q", got)
	}
}
