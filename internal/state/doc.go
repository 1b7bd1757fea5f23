// Package state keeps the attachments of bagpipe-bgp across restarts
// ([COMMON] state_dir; not in the reference, which starts empty and relies
// on its clients replaying their attachments).
//
// # What is recorded
//
// The Recorder is the API's VPN service: it applies each attach and detach
// through the VPN manager and, when it succeeds, records the result:
//
//   - per VPN instance, the attach request that created it and the
//     identifiers the instance was given (internal id, label/VNI, RD
//     number);
//   - per plugged endpoint (instance, MAC, IP), its latest attach request
//     and the identifiers it was given (port label, own RD if any).
//
// A detach deletes the records of the endpoints it unplugged, and the
// instance record with the last one. At start, Restore replays the
// records in the order they were written through the manager, asking for
// the recorded identifiers (vpn.Hints): the instance ids (hence kernel
// names), labels, VNIs and RDs are those of the previous run, so the
// routes and dataplane entries of remote nodes stay valid. A client
// replaying its attachments afterwards changes nothing (attachments are
// idempotent; the same attachment again writes nothing, except to keep
// the order of an instance's records when another endpoint was recorded
// since, because the latest attachment sets the instance's route
// targets).
//
// # Files
//
// The Store keeps records (key → JSON value) in the state directory:
//
//	lock                     flock(2) of the running daemon (holds its pid)
//	state.snapshot           every record at some batch number
//	state.journal.<n>        the batches since, appended
//	*.corrupt-<UTC time>     damaged files set aside (never read again)
//
// Every line of these files is framed as "<crc> <json>\n", where <crc> is
// the CRC-32C (Castagnoli) of <json> in 8 hexadecimal digits. The first
// line of each file is a header:
//
//	{"format":"bagpipe-bgp-state","version":1,"kind":"snapshot","seq":S,"records":N}
//	{"format":"bagpipe-bgp-state","version":1,"kind":"journal"}
//
// then a snapshot has N lines {"seq":s,"index":i,"key":K,"value":V} (the
// record and the batch, and position in it, that last put it), and a
// journal has one line per batch: {"seq":s,"ops":[{"key":K,"value":V} or
// {"key":K,"delete":true}, ...]}, with consecutive batch numbers. Values
// are Attachment objects: {"kind":"instance"|"endpoint","request":{...},
// "local_port_raw":{...},"ids":{...}}, where request is the validated
// attach request (vpn.AttachRequest) and ids the identifiers (vpn.Hints).
//
// # Writes
//
// A batch (the records one attach or detach changes) is applied in memory
// and appended to the journal with one write and one fdatasync; requests
// arriving while a sync runs are written together by the next one (group
// commit), so a change costs O(its size) plus a share of a sync. Once the
// journal holds more than max(4096, 2 × records) batches, a snapshot is
// written in the background: a new journal is started (so changes go on
// meanwhile), the snapshot is written to a temporary file, synced, renamed
// over state.snapshot, the directory synced, and the older journals
// removed. At start the directory is compacted the same way.
//
// A change is acknowledged (Commit or Sync returns nil; the API answers
// 200) only once the next load is sure to find it: written and synced to
// a journal that continues the snapshot and the journals before it
// without a gap, or included in a snapshot. When a journal write fails
// (disk full, I/O error), the journal is no longer appended to and the
// batches stay in memory; a snapshot is tried at once, then at most once
// a second while changes come or clients retry. A journal started while
// batches were in memory only (or after load set aside records it kept)
// follows a gap, which the next load would treat as damage: its batches
// are written but count only once a snapshot covering the gap is
// written. Until then Commit returns an error (the attach or detach is in
// effect but the API answers 500, and the client's retry succeeds once
// the state is written), and Close tries the snapshot once more and
// returns an error if those changes are lost.
//
// # Damage
//
// Loading never fails because of the files' content; it keeps what can
// be read and logs an error naming the file, the damage and the action:
//
//   - a journal whose last line is incomplete (a crash while writing): the
//     incomplete batch (never acknowledged) is dropped and, in the last
//     journal, cut off the file, so that the journal started next
//     continues it (a warning, not an error); an earlier journal ending
//     so is kept if the next one continues at the next batch number;
//   - a bad checksum, unreadable JSON or a missing batch number in a
//     journal: the batches before are kept, the journal and the later ones
//     are set aside;
//   - a damaged snapshot: the records before the damage are kept, the file
//     is set aside, the journals are applied on top;
//   - a file of another format version, or not a state file: set aside,
//     with everything that depends on it; the daemon starts empty.
//
// Records that cannot be replayed (unreadable, or refused by the manager:
// e.g. a port that disappeared while the daemon was down) are logged and
// dropped. Clients still replay their attachments when /ping changes (it
// changes at each start, as in the reference): whatever the state
// directory lacked comes back then.
package state
