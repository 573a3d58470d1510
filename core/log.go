package core

import (
	"fmt"

	"github.com/kraftdb/kraft/wire"
)

// raftLog is the in-memory log: the entries after the latest snapshot, kept
// as wire entry records in one buffer, so that the same bytes go to the WAL,
// to followers and to the state machine without re-encoding.
//
// Ownership: byte ranges of buf that were handed out (in a Ready or a
// message) are never written again. Appends only write past len(buf), and
// truncation and compaction move the kept entries to a fresh buffer.
//
// The log cache: with a reader and a cacheBytes limit, buf holds only the
// entries from cacheFirst on; older entries (stable and applied, so never
// needed by this node again except to send to a lagging follower) are read
// back from the reader (the WAL's mapping). Offsets are positions in the
// log's whole byte stream since the snapshot, so that evicting a prefix of
// buf moves nothing but the bytes: buf[0] is at stream position base.
type raftLog struct {
	snapIndex, snapTerm uint64
	buf                 []byte
	base                int      // stream position of buf[0]
	cacheFirst          uint64   // first index whose record is in buf
	offs                []int    // offs[k]: stream position of entry snapIndex+1+k
	terms               []uint64 // terms[k]: term of entry snapIndex+1+k

	// reader and cacheBytes enable eviction (both set) — see above.
	reader     LogReader
	cacheBytes int

	committed uint64 // highest index known committed
	applied   uint64 // highest index handed out in Ready.CommittedEntries
	stable    uint64 // highest index the driver reported persisted
	unsent    uint64 // first index not yet handed out in Ready.Entries
}

func (l *raftLog) firstIndex() uint64 { return l.snapIndex + 1 }
func (l *raftLog) lastIndex() uint64  { return l.snapIndex + uint64(len(l.offs)) }
func (l *raftLog) lastTerm() uint64   { t, _ := l.term(l.lastIndex()); return t }

// term returns the term of entry i; ok is false when i is compacted away
// (below the snapshot) or beyond the last index.
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snapIndex:
		return l.snapTerm, true
	case i < l.snapIndex || i > l.lastIndex():
		return 0, false
	}
	return l.terms[i-l.snapIndex-1], true
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// isUpToDate: is a log ending at (lastIndex, lastTerm) at least as
// up-to-date as ours (Raft §5.4.1)?
func (l *raftLog) isUpToDate(lastIndex, lastTerm uint64) bool {
	lt := l.lastTerm()
	return lastTerm > lt || (lastTerm == lt && lastIndex >= l.lastIndex())
}

// start and end are entry i's byte range as stream positions (see
// raftLog); i must be in the log (cached or not).
func (l *raftLog) start(i uint64) int { return l.offs[i-l.snapIndex-1] }
func (l *raftLog) end(i uint64) int {
	k := i - l.snapIndex
	if k == uint64(len(l.offs)) {
		return l.base + len(l.buf)
	}
	return l.offs[k]
}

// slice returns the cached records of entries [lo, hi]; empty when lo > hi.
func (l *raftLog) slice(lo, hi uint64) []byte {
	if lo > hi {
		return nil
	}
	if lo <= l.snapIndex || hi > l.lastIndex() {
		bug("log slice [%d, %d] outside (%d, %d]", lo, hi, l.snapIndex, l.lastIndex())
	}
	if lo < l.cacheFirst {
		bug("log slice [%d, %d] reaches below the cache (first cached %d)", lo, hi, l.cacheFirst)
	}
	b := l.buf[l.start(lo)-l.base : l.end(hi)-l.base]
	return b[:len(b):len(b)]
}

// sliceForSend returns the records of entries [lo, last] for a follower,
// with last <= hi: from the cache, or, for evicted entries, from the
// reader, which may return fewer (it stops at a segment's end).
func (l *raftLog) sliceForSend(lo, hi uint64) (b []byte, last uint64, err error) {
	if lo >= l.cacheFirst || lo > hi {
		return l.slice(lo, hi), hi, nil
	}
	end := min(hi, l.cacheFirst-1)
	b, err = l.reader.Entries(lo, end+1, l.end(end)-l.start(lo))
	if err != nil {
		return nil, 0, err
	}
	n := uint64(countRecords(b))
	if n == 0 {
		return nil, 0, fmt.Errorf("log reader returned no entries at %d", lo)
	}
	return b, lo + n - 1, nil
}

// evict drops cached records of entries that are stable and applied while
// the cache holds more than cacheBytes, down to half of it (so the copy of
// the kept records is paid once per cacheBytes/2 of appends).
func (l *raftLog) evict() {
	if l.reader == nil || l.cacheBytes <= 0 || len(l.buf) <= l.cacheBytes {
		return
	}
	limit := min(l.stable, l.applied) // entries this node still needs stay
	from := l.cacheFirst
	endStream := l.base + len(l.buf)
	for from <= limit && endStream-l.start(from) > l.cacheBytes/2 {
		from++
	}
	if from == l.cacheFirst {
		return
	}
	cut := len(l.buf)
	if from <= l.lastIndex() {
		cut = l.start(from) - l.base
	}
	rest := l.buf[cut:]
	// Room to grow past the limit until the next eviction without append
	// doubling (and copying) the buffer first.
	l.buf = append(make([]byte, 0, max(l.cacheBytes+l.cacheBytes/4, 2*len(rest)+64)), rest...)
	l.base += cut
	l.cacheFirst = from
}

// cachedBytes is what the cache holds: bytes of records and the buffer's capacity.
func (l *raftLog) cachedBytes() (used, capacity int) { return len(l.buf), cap(l.buf) }

// bytesBetween is the record size of entries (lo, hi].
func (l *raftLog) bytesBetween(lo, hi uint64) int {
	if lo >= hi {
		return 0
	}
	return l.end(hi) - l.start(lo+1)
}

func (l *raftLog) entryType(i uint64) wire.EntryType {
	if i < l.cacheFirst {
		bug("entry type of evicted entry %d (first cached %d)", i, l.cacheFirst)
	}
	return wire.EntryType(l.buf[l.start(i)-l.base+4])
}

func (l *raftLog) appendEntry(t wire.EntryType, term uint64, payload []byte) uint64 {
	i := l.lastIndex() + 1
	l.offs = append(l.offs, l.base+len(l.buf))
	l.terms = append(l.terms, term)
	l.buf = wire.AppendEntry(l.buf, t, i, term, payload)
	return i
}

// appendRaw appends a verified record for entry lastIndex()+1.
func (l *raftLog) appendRaw(raw []byte, index, term uint64) {
	if index != l.lastIndex()+1 {
		bug("append of entry %d after %d", index, l.lastIndex())
	}
	l.offs = append(l.offs, l.base+len(l.buf))
	l.terms = append(l.terms, term)
	l.buf = append(l.buf, raw...)
}

// truncateFrom removes entries i and later into a fresh buffer.
func (l *raftLog) truncateFrom(i uint64) {
	if i <= l.committed {
		bug("truncating committed entry %d (commit %d)", i, l.committed)
	}
	if i > l.lastIndex() {
		return
	}
	if i < l.cacheFirst {
		bug("truncating evicted entry %d (first cached %d)", i, l.cacheFirst)
	}
	k := i - l.snapIndex - 1
	cut := l.offs[k] - l.base
	l.buf = append(make([]byte, 0, cut+cut/2+64), l.buf[:cut]...)
	l.offs = append([]int(nil), l.offs[:k]...)
	l.terms = append([]uint64(nil), l.terms[:k]...)
	l.stable = min(l.stable, i-1)
	l.unsent = min(l.unsent, i)
}

// compactTo drops entries up to and including i (covered by a snapshot).
func (l *raftLog) compactTo(i uint64) {
	if i <= l.snapIndex {
		return
	}
	if i > l.lastIndex() {
		bug("compacting to %d beyond last index %d", i, l.lastIndex())
	}
	t, _ := l.term(i)
	k := i - l.snapIndex
	if i >= l.cacheFirst {
		cut := l.end(i) - l.base
		rest := l.buf[cut:]
		// Keep the capacity: the log grows back to about the same size before
		// the next compaction, and regrowing it would copy it several times.
		l.buf = append(make([]byte, 0, max(cap(l.buf), 2*len(rest)+64)), rest...)
		l.base += cut
		l.cacheFirst = i + 1
	}
	l.offs = append(make([]int, 0, cap(l.offs)), l.offs[k:]...)
	l.terms = append(make([]uint64, 0, cap(l.terms)), l.terms[k:]...)
	l.snapIndex, l.snapTerm = i, t
}

// reset discards the whole log in favour of a snapshot at (i, t).
func (l *raftLog) reset(i, t uint64) {
	l.buf, l.offs, l.terms, l.base = nil, nil, nil, 0
	l.snapIndex, l.snapTerm, l.cacheFirst = i, t, i+1
	l.committed, l.applied, l.stable, l.unsent = i, i, i, i+1
}

// findConflictByTerm returns the largest index j <= i whose term is <= t
// (fast backtracking: every entry after j may differ from the peer's log).
func (l *raftLog) findConflictByTerm(i, t uint64) uint64 {
	i = min(i, l.lastIndex())
	for i > l.snapIndex {
		if lt, _ := l.term(i); lt <= t {
			return i
		}
		i--
	}
	return i
}

// checkLog is the costly invariant check: records, offsets and terms agree.
func (l *raftLog) checkLog() {
	if !invariantsOn {
		return
	}
	it := wire.NewEntryIter(l.buf)
	if l.cacheFirst <= l.snapIndex || l.cacheFirst > l.lastIndex()+1 || (l.cacheFirst <= l.lastIndex() && l.start(l.cacheFirst) != l.base) {
		bug("log cache starts at %d (base %d) outside (%d, %d]", l.cacheFirst, l.base, l.snapIndex, l.lastIndex()+1)
	}
	for k := int(l.cacheFirst - l.snapIndex - 1); k < len(l.offs); k++ {
		e, raw, ok := it.Next()
		i := l.snapIndex + 1 + uint64(k)
		if !ok || e.Index != i || e.Term != l.terms[k] || &raw[0] != &l.buf[l.offs[k]-l.base] {
			bug("log record %d inconsistent with its index", i)
		}
		if k > 0 && l.terms[k] < l.terms[k-1] {
			bug("log terms decrease at %d", i)
		}
	}
	if _, _, ok := it.Next(); ok {
		bug("log buffer has trailing records")
	}
	if l.committed > l.lastIndex() || l.applied > l.committed || l.stable > l.lastIndex() {
		bug("log marks out of range: applied %d commit %d stable %d last %d", l.applied, l.committed, l.stable, l.lastIndex())
	}
}

// checkInvariants is the costly whole-node check run under -tags invariants
// after every Step and Ready.
func (r *Raft) checkInvariants() {
	if !invariantsOn {
		return
	}
	r.log.checkLog()
	if r.role != RoleLeader {
		return
	}
	last := r.log.lastIndex()
	for _, p := range r.prs {
		if p.id != r.id && (p.match >= p.next || p.next > last+1) {
			bug("progress of %d: match %d next %d last %d", p.id, p.match, p.next, last)
		}
		if p.inflightCount > len(p.inflightLast) || p.inflightTotal < 0 {
			bug("in-flight window of %d inconsistent", p.id)
		}
	}
	if t, _ := r.log.term(last); t != r.term && r.log.lastIndex() > r.log.committed {
		// A leader's uncommitted tail always ends with an entry of its term
		// (the no-op at least).
		bug("leader of term %d has last entry of term %d", r.term, t)
	}
}
