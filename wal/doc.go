// Package wal is Kraft's write-ahead log: segment files of entry records,
// group commit, the hard state, snapshot files, recovery and verification.
//
// # Directory
//
//	<data dir>/
//	  00000000000000000001.seg   segment: records from index 1
//	  00000000000000004097.seg   segment: records from index 4097 (the newest)
//	  00000000000000004097.seg.prior  its prior content's sector checksums (recycled segments)
//	  prep-<n>.tmp, prep-<n>.prior    next segment, prepared (removed by Open)
//	  recycle-<segment name>     retired segment waiting to be reused (Open pools or removes it)
//	  sums-<n>.tmp               a sealed segment's sector checksums, cached for its recycling (Close keeps them, Open removes the rest)
//	  <segment name>.sums        those checksums, kept by Close for the next Open, which takes them back (sums.go)
//	  state                      hard state + compaction point (two slots)
//	<snapshot dir>/              Options.SnapshotDir (default <data dir>/snapshots)
//	  snapshot-<index>-<term>.dat
//
// A segment is named by the index of its first record (20 decimal digits,
// so names sort like indexes). Every segment is preallocated to
// SegmentSizeBytes (default 64 MiB) before it is used: fallocate reserves
// the blocks (a full disk fails there, cleanly, never as SIGBUS later) and
// then zeros are written and synced (zero-filled files sync faster than
// fallocate-only ones: perf/results/wal.md). The zeros go through an
// O_DIRECT descriptor where the file system takes one (not through the page
// cache: a buffered segment of zeros cost a follower ~17% of its CPU under
// load), so a segment's pages are not cached; every write to a segment is
// therefore padded with zeros to the end of its last page (pagePadder),
// else the kernel would read that page from the disk before the write. A
// preparer goroutine keeps the next segment ready, so a roll is one
// fdatasync of the finished segment and a rename.
//
// Recycling (Options.RecycleSegments, recycle.go): a segment that
// compaction retires is kept in a bounded pool and, once no view can alias
// it, prepared again instead of a fresh file: no fallocate, no zeros, so
// under sustained writes the disk writes each log byte once. The checksums
// its prior-content file needs are taken when it is sealed, while it is
// cached (sums.go), so recycling reads nothing back from the disk either,
// except for segments sealed before a crash (a clean Close keeps the
// checksums for the next Open). Past its new
// data such a segment holds its previous life's bytes, not zeros; its
// prior-content file (<segment>.prior: magic "KRPRIOR1", sector size,
// count, the xxh64 of each 512-byte sector of what the file held before
// this use, xxh64 of the whole) is synced and named before the segment is,
// and lets recovery tell that content from a torn or damaged record (see
// Recovery). Only compaction's segments are recycled: their records all
// precede the compaction point, so none can ever chain on after a record
// of the new life. Segments that TruncateSuffix or a snapshot install
// removed are deleted.
//
// # Segment format
//
// A segment is wire entry records back to back (the bytes the leader sends
// in AppendEntries and the follower verified), then zeros to the end of the
// file. No segment header, no padding: a range of entries is one slice.
//
//	offset 0                                                       file size
//	+--------+--------+-----+--------+---------------------------------+
//	| record | record | ... | record | 0x00 0x00 ...  (preallocated)   |
//	+--------+--------+-----+--------+---------------------------------+
//	                                 ^ end of data: a length of 0
//
//	record (wire/entry.go, little endian):
//	+----------+---------+----------+----------+-----------+-----------+---------+----------+
//	| len u32  | type u8 | flags u8 | rsvd u16 | index u64 | term u64  | payload | xxh64    |
//	| whole    | 1..4    | 0        | 0        |           |           | len-32  | of all   |
//	| record   |         |          |          |           |           | bytes   | before   |
//	+----------+---------+----------+----------+-----------+-----------+---------+----------+
//	 0          4         5          6          8           16          24        len-8
//
// Type 0 and length 0 are never valid, so zeros read as "end of data".
// Within the log, indexes are consecutive (across segments too: a segment's
// name is its first record's index) and terms never decrease.
//
// # Hard state file
//
// Two 512-byte slots at offsets 0 and 512. A save writes the slot not
// holding the newest value and fdatasyncs; Open takes the valid slot with
// the higher sequence. A slot is one sector, written whole or not at all,
// so a crash leaves it old or new; a damaged non-zero slot is corruption.
//
//	slot: magic "KRHS" u32 | version u8 | 0 u8 x3 | seq u64 | term u64 |
//	      vote u64 | commit u64 | start index u64 | start term u64 |
//	      xxh64 of the 56 bytes before | zeros to 512
//
// (start index, start term) is the compaction point: the log holds entries
// from start index + 1; the entry at start index is inside a snapshot.
//
// # Snapshot files
//
//	magic "KRSNAP02" | index u64 | term u64 | base u64 | codec u8 | zero [7]u8 |
//	stored data | stored length u64 | xxh64
//
// written to <name>.tmp, fdatasync'd, renamed, directory fsync'd. codec 0
// stores the data as is, 1 zstd-compressed; the checksum covers the stored
// bytes. base 0: self-contained; otherwise the file is a delta on the
// snapshot at index base (retention keeps every base a retained file needs;
// LoadSnapshotChain returns the chain). "KRSNAP01" files (no base, no codec,
// 24-byte header) are still read. Details in snapshot.go.
//
// # Recovery
//
// Open maps and verifies every record of every segment. Damage is told
// apart from a crash like this. A crash can only leave the unsynced tail of
// the newest segment partly written: a segment is zeroed and synced before
// use (or, recycled, synced and its sectors checksummed), TruncateSuffix
// zeroes and syncs what it removes, and a segment is fdatasync'd before the
// next one is named (so a newer name never survives with an older
// segment's tail torn). A sector the device never wrote reads as zeros or,
// in a recycled segment, as its prior content (its checksum matches): an
// "unwritten" piece. A torn record therefore shows an unwritten piece (its
// part of a 512-byte sector that was never written), or runs off the end
// of a file that was cut short. Past the data, every sector must be
// unwritten (in a recycled segment, writes are padded with zeros to the
// end of their sector so that this holds for the sector the data ends in). Such a tail is cut off (zeroed)
// and logged (Options.Logger, WAL.Recovery). Everything else is a
// *CorruptionError naming file and offset, and Open modifies nothing: a bad
// record before the newest segment, a bad record in it without that mark,
// one that a single flipped header or checksum bit would make valid, a gap,
// an index or term going backwards, written bytes after the data of an
// older segment, a damaged hard-state slot or prior-content file.
//
// Known ambiguity: a flipped bit that clears the only set bit of a record's
// piece of a sector (at most 7 checksum bytes, or a mostly-zero header
// piece) in the last records of the newest segment looks exactly like that
// sector never having been written. Open treats it as torn: after a power
// loss, refusing to start would be far likelier to be wrong. Payloads with
// whole 512-byte sectors of zeros in the newest segment's last records make
// the same confusion possible, and so, in a recycled segment, does a sector
// whose new bytes equal the ones it held before (a device that silently
// dropped a write there looks the same).
//
// # Goroutines and ownership
//
//   - The caller (the Raft driver's loop) calls Append, which validates the
//     records and pwrites them into the current segment before returning:
//     the caller's buffer is free again at once, and Entries can read the
//     records. Append, TruncateSuffix and CompactPrefix hold WAL.mu
//     exclusively; Term, Entries, FirstIndex, LastIndex share it.
//   - The writer goroutine (syncLoop) owns syncing. Each round it captures,
//     under mu, the segments written since the last round and the last
//     index, then fdatasyncs them (and the directory after a roll) without
//     the lock: appends that arrive meanwhile go into the next round. This
//     is the group commit: one sync per round however many batches.
//     After the sync it publishes the durable index (DurableIndex, the
//     Durable channel, WaitDurable). A failed sync is fatal: never retried.
//     A goroutine blocked in WaitDurable or Sync runs the round itself when
//     none is in progress (one context switch less); rounds never overlap.
//   - The preparer goroutine (prepareLoop) creates, preallocates (in 256
//     KiB steps, so Close interrupts it), syncs and maps the next segment,
//     or takes one from the recycling pool and checksums it, one ahead (a
//     bounded slot of one): right after each roll, and after Open once the
//     current segment is half full. Append waits for it only when it rolls
//     faster than files can be prepared. The pool holds at most
//     Options.RecycleSegments segments; more retired ones are deleted.
//   - The dropper goroutine (dropLoop) closes the released segments the
//     pool does not take, and removes the recycle-* files among them. The
//     last close of a large file frees its blocks (~30 ms for 64 MiB), so
//     it happens neither under mu nor on the preparer, which an append may
//     be waiting for with mu held.
//   - Segment mappings are read-only (MAP_SHARED, PROT_READ); writes go
//     through pwrite to the same page cache, so the mapping sees them.
//     Views from Entries alias the mapping: never write to them. A view of
//     removed entries stays mapped until the next TruncateSuffix or
//     CompactPrefix after the call that removed them (that call, or the
//     writer goroutine between its rounds, releases retired segments) or
//     Close. Bytes that TruncateSuffix cut from a segment it keeps are
//     zeroed at once.
//   - Pages that reads mapped (the scan at Open, views) stay mapped until
//     released (release.go): ReleaseMapped releases every segment's (a node
//     calls it after copying its log at recovery), the releaser goroutine
//     the sealed segments' after each roll, and the preparer a pooled
//     segment's before its next life. The pages stay cached; views stay
//     valid.
//   - Bounded queues: the writer's, preparer's, dropper's, summer's and
//     releaser's wake-ups are capacity-1 channels; the drop queue holds
//     released segments only, each of them once; the Durable channel has
//     capacity 1 and coalesces; there is never more than one prepared
//     segment waiting.
//
// # Fsync modes
//
//   - always (default): an entry is reported durable only after the
//     fdatasync that covers it. A power loss loses nothing reported durable.
//   - batch: entries are reported durable when written to the OS; the
//     writer syncs every SyncInterval. A power loss or kernel crash loses
//     up to the last SyncInterval of reported entries (plus a sync in
//     progress). A process crash alone loses nothing (the page cache keeps
//     the bytes).
//   - none: like batch without the periodic sync (Sync and Close still
//     sync). A power loss loses anything the kernel had not written back.
//
// Errors are prefixed "kraft/wal: ". Classify with errors.Is (ErrClosed,
// ErrCompacted, ErrUnavailable, ErrRecordTooLarge, ErrNoSnapshot) and
// errors.As (*CorruptionError, *FatalError; IsFatal). Costly self-checks
// (checksums verified before every write and after every range read, the
// whole in-memory index re-checked against the mapped headers after every
// change) run under the "invariants" build tag.
//
// # Use by the Raft driver
//
//	w, err := wal.Open(dataDir, wal.Options{SnapshotDir: snapDir})
//	// startup: HardState(), FirstIndex(), LastIndex(), Term(i), Entries(lo, hi, max)
//	// each loop turn, with the entries Ready says to persist:
//	w.Append(records)          // returns at once; the bytes it sends followers
//	// ... send messages that need not wait, keep stepping ...
//	case <-w.Durable():        // then w.DurableIndex(): ack "persisted up to i"
//	// on a log conflict: w.TruncateSuffix(from) before appending the new entries
//	// after a snapshot: w.SaveSnapshot(i, t, r); w.CompactPrefix(i, t)
//	// on term/vote change: w.SaveHardState(hs) before sending what depends on it
//	// on Err() != nil / IsFatal(err): stop the node; restart recovers from disk
//
// Tests and simulators can run the WAL on MemFS (Options.FS), whose Crash
// keeps only what was synced.
package wal
