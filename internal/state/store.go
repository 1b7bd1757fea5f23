package state

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// File names in the state directory.
const (
	SnapshotFile  = "state.snapshot"
	JournalPrefix = "state.journal."
	LockFile      = "lock"
	tmpSuffix     = ".tmp"
	corruptInfix  = ".corrupt-"
)

// Format identifies our files; Version is the version of their format.
const (
	Format  = "bagpipe-bgp-state"
	Version = 1
)

// DefaultCompactMin is the number of journal batches below which the store
// never compacts.
const DefaultCompactMin = 4096

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configures a Store.
type Options struct {
	// Log receives recovery reports and write errors (slog.Default if nil).
	Log *slog.Logger
	// CompactMin: the journal is compacted into a new snapshot when it
	// holds more than max(CompactMin, 2 × live records) batches
	// (DefaultCompactMin when 0).
	CompactMin int
}

// Record is a live key and its value, with the sequence number of the
// batch that last put it and its position in that batch: records replay
// in that order.
type Record struct {
	Seq   uint64
	Index int
	Key   string
	Value json.RawMessage
}

// Op is one change of a batch: put Value under Key, or delete Key.
type Op struct {
	Key    string
	Value  json.RawMessage // JSON; ignored by a delete
	Delete bool
}

// Problem is something wrong found in the state directory when it was
// opened, and what was done about it.
type Problem struct {
	File   string // file concerned
	Detail string // what was wrong
	Action string // what was done (e.g. "moved to ...", "kept the first N records")
	// Tail is true for a journal cut in the middle of its last batch (a
	// crash while writing): expected after a power loss, not a corruption.
	Tail bool
}

func (p Problem) String() string { return p.File + ": " + p.Detail + "; " + p.Action }

// Store is a durable map of JSON records kept in a directory: a snapshot
// (all records at some sequence number, written atomically) and a journal
// (the batches since, appended and synced). Batches are applied in memory
// at once and made durable by Commit; concurrent commits share one write
// and one sync (group commit). The journal is compacted into a new
// snapshot in the background once it is long enough, so a change costs
// O(its size), never O(number of records).
type Store struct {
	dir  string
	log  *slog.Logger
	lock *os.File
	min  int

	mu          sync.Mutex // guards the fields below
	seq         uint64     // last batch sequence number given
	recs        map[string]*Record
	pending     []byte // encoded batches not written yet
	pendingSeq  uint64 // last batch in pending
	batches     int    // batches in the journal since the snapshot
	compacting  bool
	compactDone chan struct{} // closed when the running compaction ends
	// jbroken is the error that made the current journal unusable: batches
	// are then kept in memory only (not appended after a failed write)
	// until a compaction starts a new journal.
	jbroken error
	// lost counts the failures (of a journal write, or of a snapshot) that
	// left batches in memory only or not loadable; a snapshot taken after
	// the last of them makes them durable.
	lost     int
	lostDone int           // value of lost covered by the last snapshot
	lastTry  time.Time     // last compaction attempt after a failure
	retry    time.Duration // least time between two such attempts
	closed   bool

	syncMu  sync.Mutex // held while writing the journal; guards the fields below
	journal *os.File
	jnum    uint64 // number of the current journal file
	written uint64 // last batch handed to the journal (written, or dropped by a failure)
	// safe: every batch up to this one is durable, i.e. found by the next
	// load (in the snapshot, or in journals that continue it without a
	// gap). Sync(seq) succeeds iff seq <= safe.
	safe uint64
	// jvalid: the current journal continues the durable batches (safe was
	// the last batch written when it was started), so a batch appended and
	// synced to it is durable. A journal started while batches were in
	// memory only (after a failed write, or whose files were set aside at
	// load) follows a gap: the next load sets it aside unless a snapshot
	// covering the gap is written, and its batches count only then.
	jvalid   bool
	jgood    uint64 // last batch appended and synced to the current journal
	writeErr error  // cause of the last failure (journal write or snapshot)
	problems []Problem
}

// retryInterval is the least time between two attempts to write a
// snapshot after a failure (a full disk), while changes come.
const retryInterval = time.Second

// Open opens (creating it if needed) the state directory dir and loads it.
// Damaged files never make it fail: the readable records are kept, the
// damaged files are moved aside as <name>.corrupt-<time>, and each case is
// logged as an error and listed by Problems. Open fails only when the
// directory cannot be created or read, or is locked by another process.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.CompactMin <= 0 {
		opts.CompactMin = DefaultCompactMin
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: log, lock: lock, min: opts.CompactMin, recs: map[string]*Record{}, retry: retryInterval}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	s.written = s.seq
	for _, p := range s.problems {
		if p.Tail {
			log.Warn("state journal ends with an incomplete batch (interrupted write): dropped", "file", p.File, "detail", p.Detail, "action", p.Action)
		} else {
			log.Error("damaged state file: starting with the readable records", "file", p.File, "detail", p.Detail, "action", p.Action)
		}
	}
	// Start from a clean directory: one snapshot with everything, one empty
	// journal. If it cannot be written (disk full, read-only), the daemon
	// still starts: changes are journaled if the files on disk hold every
	// record (load set nothing aside), else kept in memory and reported as
	// not written (Sync fails) until a retry succeeds.
	if err := s.compact(); err != nil {
		log.Error("cannot write the state directory: running without persisting changes until it can be written",
			"dir", dir, "err", err)
	}
	return s, nil
}

// lockDir takes the exclusive lock of the directory (released when the
// process dies, however it dies).
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("state directory %s is in use by another process (pid %s): %w", dir, strings.TrimSpace(string(owner)), err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Problems lists what was found damaged when the store was opened.
func (s *Store) Problems() []Problem { return slices.Clone(s.problems) }

// Len returns the number of records.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// Get returns the value of key.
func (s *Store) Get(key string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[key]
	if r == nil {
		return nil, false
	}
	return r.Value, true
}

// Records returns every record, in the order of the batches that last put
// them.
func (s *Store) Records() []Record {
	s.mu.Lock()
	out := make([]Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, *r)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		if a.Seq != b.Seq {
			return cmp.Compare(a.Seq, b.Seq)
		}
		return a.Index - b.Index
	})
	return out
}

// batch is a journal line.
type batch struct {
	Seq uint64    `json:"seq"`
	Ops []batchOp `json:"ops"`
}

type batchOp struct {
	Key    string          `json:"key"`
	Value  json.RawMessage `json:"value,omitempty"`
	Delete bool            `json:"delete,omitempty"`
}

// header is the first line of every file.
type header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Kind    string `json:"kind"`              // "snapshot" or "journal"
	Seq     uint64 `json:"seq,omitempty"`     // snapshot: last batch included
	Records int    `json:"records,omitempty"` // snapshot: number of records
}

// appendLine appends the framed line "<crc32c, 8 hex digits> <json>\n".
func appendLine(buf, js []byte) []byte {
	buf = fmt.Appendf(buf, "%08x ", crc32.Checksum(js, crcTable))
	buf = append(buf, js...)
	return append(buf, '\n')
}

// Apply applies a batch in memory and queues it for the journal; it
// returns its sequence number, durable once Sync(seq) returned. Batches
// are written in the order Apply gave them their numbers: a caller that
// orders its Apply calls (e.g. under its own lock) gets that order on disk.
func (s *Store) Apply(ops ...Op) (uint64, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	b := batch{Ops: make([]batchOp, len(ops))}
	for i, op := range ops {
		if op.Delete {
			b.Ops[i] = batchOp{Key: op.Key, Delete: true}
			continue
		}
		if !json.Valid(op.Value) {
			return 0, fmt.Errorf("state: the value of %q is not JSON", op.Key)
		}
		b.Ops[i] = batchOp{Key: op.Key, Value: op.Value}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("state: store closed")
	}
	s.seq++
	b.Seq = s.seq
	js, err := json.Marshal(&b)
	if err != nil {
		s.seq--
		return 0, fmt.Errorf("state: %w", err)
	}
	s.applyLocked(&b)
	s.pending = appendLine(s.pending, js)
	s.pendingSeq = b.Seq
	s.batches++
	s.maybeCompactLocked()
	return b.Seq, nil
}

func (s *Store) applyLocked(b *batch) {
	for i, op := range b.Ops {
		if op.Delete {
			delete(s.recs, op.Key)
			continue
		}
		s.recs[op.Key] = &Record{Seq: b.Seq, Index: i, Key: op.Key, Value: op.Value}
	}
}

// Commit applies a batch and waits until it is durable. An error means
// the batch is applied in memory but would not be found after a restart
// (the state directory cannot be written); it is written with the next
// snapshot that succeeds.
func (s *Store) Commit(ops ...Op) error {
	seq, err := s.Apply(ops...)
	if err != nil || seq == 0 {
		return err
	}
	return s.Sync(seq)
}

// LastSeq returns the sequence number of the last batch applied:
// Sync(LastSeq()) reports whether everything applied so far is durable.
func (s *Store) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Sync waits until batch seq, and every batch before it, is durable: found
// by the next load. The caller that finds batches pending writes all of
// them in one write and one fdatasync; the others wait for it. After a
// failure (a journal write, or a snapshot that was to cover batches kept
// in memory only), a batch is durable once a snapshot including it, or
// the batches before it, is written: Sync then waits for the compaction
// that runs (or starts one, at most one attempt per retry interval) and
// returns an error if the batch is still not durable after it.
func (s *Store) Sync(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for waited := 0; ; waited++ {
		if s.written < seq {
			_ = s.flushLocked() // failures: see below
		}
		if seq <= s.safe {
			return nil
		}
		if waited == 2 {
			return s.notDurableLocked()
		}
		s.mu.Lock()
		s.maybeCompactLocked()
		var done chan struct{}
		if s.compacting {
			done = s.compactDone
		}
		s.mu.Unlock()
		if done == nil {
			return s.notDurableLocked()
		}
		s.syncMu.Unlock()
		<-done
		s.syncMu.Lock()
	}
}

// notDurableLocked is the error of a batch that is not durable (syncMu
// held).
func (s *Store) notDurableLocked() error {
	cause := s.writeErr
	if cause == nil {
		cause = errors.New("waiting for a snapshot")
	}
	return fmt.Errorf("state: change not written to %s, kept in memory until a snapshot can be written: %w", s.dir, cause)
}

// flushLocked writes and syncs the pending batches (syncMu held).
func (s *Store) flushLocked() error {
	s.mu.Lock()
	buf, last := s.pending, s.pendingSeq
	s.pending = nil
	broken := s.jbroken
	s.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	s.written = max(s.written, last)
	if broken != nil || s.journal == nil {
		// Appending after a failed write could leave garbage in the middle
		// of the journal: these batches wait in memory for a snapshot.
		return s.failLocked(broken)
	}
	_, err := s.journal.Write(buf)
	if err == nil {
		err = unix.Fdatasync(int(s.journal.Fd()))
	}
	if err != nil {
		return s.failLocked(fmt.Errorf("writing %s: %w", s.journal.Name(), err))
	}
	s.jgood = last
	if s.jvalid {
		s.safe = max(s.safe, last)
	}
	return nil
}

// failLocked records that batches could not be written: the journal is
// not written any more (nor are the journals after it durable), and a
// compaction (retried while changes come) writes the whole state anew
// (syncMu held).
func (s *Store) failLocked(err error) error {
	if err == nil {
		err = errors.New("no journal")
	}
	s.mu.Lock()
	if s.jbroken == nil {
		s.log.Error("cannot write the state journal: changes are kept in memory until a new snapshot can be written", "dir", s.dir, "err", err)
		s.jbroken = err
	}
	s.lost++
	s.maybeCompactLocked()
	s.mu.Unlock()
	s.writeErr = err
	return fmt.Errorf("state: %w", err)
}

// maybeCompactLocked starts a background compaction when the journal is
// long, or to write batches kept in memory after a failure (s.mu held).
func (s *Store) maybeCompactLocked() {
	if s.compacting || s.closed {
		return
	}
	if s.lost != s.lostDone {
		if time.Since(s.lastTry) < s.retry {
			return
		}
		s.lastTry = time.Now()
	} else if s.batches <= max(s.min, 2*len(s.recs)) {
		return
	}
	s.compacting = true
	s.compactDone = make(chan struct{})
	done := s.compactDone
	go func() {
		if err := s.compact(); err != nil {
			s.log.Error("state compaction failed", "dir", s.dir, "err", err)
		}
		s.mu.Lock()
		s.compacting = false
		s.mu.Unlock()
		close(done)
	}()
}

// Compact writes a snapshot of every record and starts a new journal,
// then removes the older journals. It runs concurrently with Apply and
// Commit (they wait only for the switch to the new journal).
func (s *Store) Compact() error {
	s.mu.Lock()
	for s.compacting {
		done := s.compactDone
		s.mu.Unlock()
		<-done
		s.mu.Lock()
	}
	s.compacting = true
	s.compactDone = make(chan struct{})
	done := s.compactDone
	s.mu.Unlock()
	err := s.compact()
	s.mu.Lock()
	s.compacting = false
	s.mu.Unlock()
	close(done)
	return err
}

func (s *Store) compact() error {
	// 1. Switch to a new journal. Every batch up to seq is then in the
	// older journals, or in memory only after a failure, or pending: the
	// pending ones go to the new journal (the batches a snapshot already
	// holds are skipped when loading), the others into the snapshot below.
	s.syncMu.Lock()
	_ = s.flushLocked()
	old, oldNum := s.journal, s.jnum
	next, err := s.createJournal(oldNum + 1)
	if err != nil {
		err = s.compactFailed(fmt.Errorf("creating a journal: %w", err))
		s.syncMu.Unlock()
		return err
	}
	if old != nil {
		old.Close()
	}
	s.journal, s.jnum = next, oldNum+1
	// The new journal continues the durable batches only if every batch
	// written so far is durable; otherwise (batches in memory only) its
	// batches count once the snapshot below is written.
	s.jvalid, s.jgood = s.safe >= s.written, 0
	s.mu.Lock()
	seq, lost := s.seq, s.lost
	s.jbroken = nil
	recs := make([]*Record, 0, len(s.recs))
	for _, r := range s.recs {
		recs = append(recs, r) // records are never modified in place
	}
	s.batches = 0
	s.mu.Unlock()
	s.syncMu.Unlock()

	// 2. The snapshot, atomically: temporary file, sync, rename, sync the
	// directory.
	slices.SortFunc(recs, func(a, b *Record) int {
		if a.Seq != b.Seq {
			return cmp.Compare(a.Seq, b.Seq)
		}
		return a.Index - b.Index
	})
	if err := s.writeSnapshot(seq, recs); err != nil {
		s.syncMu.Lock()
		defer s.syncMu.Unlock()
		return s.compactFailed(fmt.Errorf("writing the snapshot: %w", err))
	}
	// 3. Everything up to seq is durable, and so is the new journal (it
	// continues the snapshot); the older journals can go.
	s.syncMu.Lock()
	s.safe = max(s.safe, seq)
	if s.jnum == oldNum+1 {
		s.jvalid = true
		s.safe = max(s.safe, s.jgood)
	}
	s.writeErr = nil
	s.syncMu.Unlock()
	s.mu.Lock()
	if s.lostDone != lost {
		s.log.Info("state written again after a write error", "dir", s.dir)
		s.lostDone = lost
	}
	s.mu.Unlock()
	s.removeJournalsBefore(oldNum + 1)
	return nil
}

// compactFailed records a failed compaction (syncMu held).
func (s *Store) compactFailed(err error) error {
	s.writeErr = err
	err = fmt.Errorf("state: %w", err)
	s.mu.Lock()
	if s.lost == s.lostDone {
		// Whether the journals hold everything or not, the next compaction
		// must not wait for the journal to double.
		s.lost++
	}
	s.lastTry = time.Now()
	s.mu.Unlock()
	return err
}

// createJournal creates journal file n with its header, synced, and syncs
// the directory so that the file survives a crash.
func (s *Store) createJournal(n uint64) (*os.File, error) {
	path := filepath.Join(s.dir, journalName(n))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	js, _ := json.Marshal(header{Format: Format, Version: Version, Kind: "journal"})
	if _, err = f.Write(appendLine(nil, js)); err == nil {
		if err = f.Sync(); err == nil {
			err = syncDir(s.dir)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

func journalName(n uint64) string { return fmt.Sprintf("%s%08d", JournalPrefix, n) }

func (s *Store) writeSnapshot(seq uint64, recs []*Record) error {
	path := filepath.Join(s.dir, SnapshotFile)
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	js, _ := json.Marshal(header{Format: Format, Version: Version, Kind: "snapshot", Seq: seq, Records: len(recs)})
	buf := appendLine(make([]byte, 0, 1<<16), js)
	for _, r := range recs {
		js, err := json.Marshal(snapRecord{Seq: r.Seq, Index: r.Index, Key: r.Key, Value: r.Value})
		if err != nil {
			return err
		}
		buf = appendLine(buf, js)
		if len(buf) >= 1<<16 {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if _, err := f.Write(buf); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		f = nil
		os.Remove(tmp)
		return err
	}
	f = nil
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(s.dir)
}

type snapRecord struct {
	Seq   uint64          `json:"seq"`
	Index int             `json:"index,omitempty"` // position in its batch
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// journals returns the journal files of the directory, by number.
func (s *Store) journals() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), JournalPrefix)
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

func (s *Store) removeJournalsBefore(n uint64) {
	nums, err := s.journals()
	if err != nil {
		return
	}
	for _, j := range nums {
		if j < n {
			if err := os.Remove(filepath.Join(s.dir, journalName(j))); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("cannot remove an old state journal", "file", journalName(j), "err", err)
			}
		}
	}
}

// Close waits for a running compaction, writes what is pending and
// releases the directory. If batches are not durable (kept in memory
// after a failure), it tries once more to write a snapshot, and returns an
// error if that fails too: those changes are lost.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for s.compacting {
		done := s.compactDone
		s.mu.Unlock()
		<-done
		s.mu.Lock()
	}
	s.mu.Unlock()
	s.syncMu.Lock()
	_ = s.flushLocked()
	safe, written := s.safe, s.written
	s.syncMu.Unlock()
	var err error
	if safe < written {
		if cerr := s.compact(); cerr != nil {
			err = fmt.Errorf("%w: the changes after batch %d are lost", cerr, safe)
			s.log.Error("state directory not written at exit: the latest changes are lost", "dir", s.dir,
				"batches", written-safe, "err", cerr)
		}
	}
	s.closeFiles()
	return err
}

func (s *Store) closeFiles() {
	s.syncMu.Lock()
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	s.syncMu.Unlock()
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
}

// --- loading ---

// readLines splits data into framed lines and checks them. It returns the
// JSON payloads of the good lines before the first bad one, the offset
// just after the last good line, and a description of the first bad line
// ("" if none).
func readLines(data []byte) (payloads [][]byte, good int, bad string) {
	off := 0
	for off < len(data) {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return payloads, off, fmt.Sprintf("incomplete line at byte %d", off)
		}
		line := data[off : off+nl]
		if len(line) < 10 || line[8] != ' ' {
			return payloads, off, fmt.Sprintf("malformed line at byte %d", off)
		}
		want, err := strconv.ParseUint(string(line[:8]), 16, 32)
		js := line[9:]
		if err != nil || uint32(want) != crc32.Checksum(js, crcTable) {
			return payloads, off, fmt.Sprintf("checksum mismatch at byte %d", off)
		}
		payloads = append(payloads, js)
		off += nl + 1
	}
	return payloads, off, ""
}

func readHeader(payloads [][]byte, kind string) (*header, string) {
	if len(payloads) == 0 {
		return nil, "no header"
	}
	var h header
	if err := json.Unmarshal(payloads[0], &h); err != nil || h.Format != Format {
		return nil, "not a " + Format + " file"
	}
	if h.Kind != kind {
		return nil, fmt.Sprintf("a %s file where a %s was expected", h.Kind, kind)
	}
	if h.Version != Version {
		return &h, fmt.Sprintf("format version %d, this bagpipe-bgp reads version %d", h.Version, Version)
	}
	return &h, ""
}

// setAside renames a damaged file to <name>.corrupt-<time> and returns the
// action for the Problem.
func (s *Store) setAside(name string) string {
	to := name + corruptInfix + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(s.dir, to)); err != nil {
		return fmt.Sprintf("could not move it aside (%v)", err)
	}
	return "moved to " + to
}

// load reads the snapshot and the journals. It sets s.safe to the last
// batch that the files left in place give (the next load finds every
// batch up to it): s.seq unless records were kept from a file set aside.
func (s *Store) load() error {
	_ = os.Remove(filepath.Join(s.dir, SnapshotFile+tmpSuffix))
	var base uint64 // snapshot sequence number
	versionMismatch, keptAside := false, false
	data, err := os.ReadFile(filepath.Join(s.dir, SnapshotFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("state: %w", err)
	default:
		base, versionMismatch, keptAside = s.loadSnapshot(data)
	}
	nums, err := s.journals()
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if versionMismatch {
		// Nothing of another format version is read: set everything aside.
		for _, n := range nums {
			name := journalName(n)
			s.problems = append(s.problems, Problem{File: name, Detail: "journal of a snapshot of another format version", Action: s.setAside(name)})
		}
		s.jnum = lastOr(nums, 0)
		return nil
	}
	s.seq = base
	if !keptAside {
		s.safe = base
	}
	stopped := false
	for i, n := range nums {
		name := journalName(n)
		if stopped {
			s.problems = append(s.problems, Problem{File: name, Detail: "follows a damaged journal", Action: s.setAside(name)})
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		last := i == len(nums)-1
		var applied int
		applied, stopped = s.loadJournal(name, data, last)
		switch {
		case stopped && applied > 0:
			// Batches of a file set aside: in memory only from here on.
			keptAside = true
		case !stopped && !keptAside:
			s.safe = s.seq
		}
	}
	s.jnum = lastOr(nums, 0)
	return nil
}

func lastOr(nums []uint64, def uint64) uint64 {
	if len(nums) == 0 {
		return def
	}
	return nums[len(nums)-1]
}

// loadSnapshot loads the records of a snapshot; a damaged snapshot keeps
// the records read before the damage. It returns the snapshot's sequence
// number, whether it is of another format version (then nothing is
// loaded), and whether records were kept from a snapshot set aside (they
// are then in memory only, and so are the batches that follow).
func (s *Store) loadSnapshot(data []byte) (seq uint64, mismatch, keptAside bool) {
	payloads, _, bad := readLines(data)
	h, herr := readHeader(payloads, "snapshot")
	if h != nil && h.Version != Version {
		s.problems = append(s.problems, Problem{File: SnapshotFile, Detail: herr, Action: s.setAside(SnapshotFile) + "; starting with no state"})
		return 0, true, false
	}
	if herr != "" {
		if bad != "" && len(payloads) == 0 {
			herr = bad
		}
		s.problems = append(s.problems, Problem{File: SnapshotFile, Detail: herr, Action: s.setAside(SnapshotFile) + "; starting with the journals only"})
		return 0, false, false
	}
	n := 0
	for _, p := range payloads[1:] {
		var r snapRecord
		if err := json.Unmarshal(p, &r); err != nil || r.Key == "" || !json.Valid(r.Value) || r.Seq > h.Seq {
			bad = fmt.Sprintf("unreadable record %d", n+1)
			break
		}
		s.recs[r.Key] = &Record{Seq: r.Seq, Index: r.Index, Key: r.Key, Value: r.Value}
		n++
	}
	if bad == "" && n != h.Records {
		bad = fmt.Sprintf("%d records, the header announces %d", n, h.Records)
	}
	if bad != "" {
		s.problems = append(s.problems, Problem{File: SnapshotFile, Detail: bad,
			Action: fmt.Sprintf("kept the first %d records; %s", n, s.setAside(SnapshotFile))})
		return h.Seq, false, true
	}
	return h.Seq, false, false
}

// loadJournal applies the batches of a journal that follow the current
// sequence number. It returns the number of batches applied, and whether
// the journal was damaged before its end and set aside (later journals
// must not be applied: batches would be missing).
//
// A journal whose last line is incomplete was being written when the
// daemon died (or when a write failed): the incomplete batch was never
// reported durable and is dropped. The last journal is cut there, so that
// the journal started next continues it cleanly; an earlier journal (cut
// impossible, or a write failure) is accepted as it is: the next one must
// then continue at the next batch number, or it is set aside.
func (s *Store) loadJournal(name string, data []byte, last bool) (applied int, stopped bool) {
	payloads, good, bad := readLines(data)
	_, herr := readHeader(payloads, "journal")
	if herr != "" {
		if last && len(payloads) == 0 && bytes.IndexByte(data, '\n') < 0 {
			// Created, its header not completely written: a crash.
			s.problems = append(s.problems, Problem{File: name, Detail: "journal without a complete header", Action: "removed", Tail: true})
			os.Remove(filepath.Join(s.dir, name))
			return 0, false
		}
		s.problems = append(s.problems, Problem{File: name, Detail: herr, Action: s.setAside(name)})
		return 0, true
	}
	for i, p := range payloads[1:] {
		var b batch
		if err := json.Unmarshal(p, &b); err != nil || !validBatch(&b) {
			bad = fmt.Sprintf("unreadable batch %d", i+1)
			good = -1
			break
		}
		if b.Seq <= s.seq {
			continue // already in the snapshot
		}
		if b.Seq != s.seq+1 {
			bad = fmt.Sprintf("batch %d missing (found %d)", s.seq+1, b.Seq)
			good = -1
			break
		}
		s.applyLocked(&b)
		s.seq = b.Seq
		applied++
	}
	if bad == "" {
		return applied, false
	}
	// A cut in the last line is an interrupted write: drop it. Anything
	// else is damage: keep what was read, set the file aside.
	if good >= 0 && bytes.IndexByte(data[good:], '\n') < 0 {
		action := fmt.Sprintf("dropped the last %d bytes, kept %d batches", len(data)-good, applied)
		switch {
		case !last:
			action += fmt.Sprintf("; the next journal continues at batch %d", s.seq+1)
		default:
			if err := truncateSync(filepath.Join(s.dir, name), int64(good)); err != nil {
				action += fmt.Sprintf(" (could not cut them off: %v)", err)
			} else {
				action = fmt.Sprintf("cut off the last %d bytes, kept %d batches", len(data)-good, applied)
			}
		}
		s.problems = append(s.problems, Problem{File: name, Detail: bad, Tail: true, Action: action})
		return applied, false
	}
	s.problems = append(s.problems, Problem{File: name, Detail: bad,
		Action: fmt.Sprintf("kept the %d batches before it; %s", applied, s.setAside(name))})
	return applied, true
}

// truncateSync cuts a file to size bytes, durably.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

func validBatch(b *batch) bool {
	if b.Seq == 0 || len(b.Ops) == 0 {
		return false
	}
	for _, op := range b.Ops {
		if op.Key == "" || (!op.Delete && !json.Valid(op.Value)) {
			return false
		}
	}
	return true
}
