package core

import (
	"github.com/kraftdb/kraft/wire"
)

// raftLog is the in-memory log: the entries after the latest snapshot, kept
// as wire entry records in one buffer, so that the same bytes go to the WAL,
// to followers and to the state machine without re-encoding.
//
// Ownership: byte ranges of buf that were handed out (in a Ready or a
// message) are never written again. Appends only write past len(buf), and
// truncation and compaction move the kept entries to a fresh buffer.
type raftLog struct {
	snapIndex, snapTerm uint64
	buf                 []byte
	offs                []int    // offs[k]: start in buf of entry snapIndex+1+k
	terms               []uint64 // terms[k]: term of entry snapIndex+1+k

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

// start and end are entry i's byte range in buf; i must be in the log.
func (l *raftLog) start(i uint64) int { return l.offs[i-l.snapIndex-1] }
func (l *raftLog) end(i uint64) int {
	k := i - l.snapIndex
	if k == uint64(len(l.offs)) {
		return len(l.buf)
	}
	return l.offs[k]
}

// slice returns the records of entries [lo, hi]; empty when lo > hi.
func (l *raftLog) slice(lo, hi uint64) []byte {
	if lo > hi {
		return nil
	}
	if lo <= l.snapIndex || hi > l.lastIndex() {
		bug("log slice [%d, %d] outside (%d, %d]", lo, hi, l.snapIndex, l.lastIndex())
	}
	b := l.buf[l.start(lo):l.end(hi)]
	return b[:len(b):len(b)]
}

// bytesBetween is the record size of entries (lo, hi].
func (l *raftLog) bytesBetween(lo, hi uint64) int {
	if lo >= hi {
		return 0
	}
	return l.end(hi) - l.start(lo+1)
}

func (l *raftLog) entryType(i uint64) wire.EntryType { return wire.EntryType(l.buf[l.start(i)+4]) }

func (l *raftLog) appendEntry(t wire.EntryType, term uint64, payload []byte) uint64 {
	i := l.lastIndex() + 1
	l.offs = append(l.offs, len(l.buf))
	l.terms = append(l.terms, term)
	l.buf = wire.AppendEntry(l.buf, t, i, term, payload)
	return i
}

// appendRaw appends a verified record for entry lastIndex()+1.
func (l *raftLog) appendRaw(raw []byte, index, term uint64) {
	if index != l.lastIndex()+1 {
		bug("append of entry %d after %d", index, l.lastIndex())
	}
	l.offs = append(l.offs, len(l.buf))
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
	k := i - l.snapIndex - 1
	cut := l.offs[k]
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
	base := l.end(i)
	rest := l.buf[base:]
	// Keep the capacity: the log grows back to about the same size before
	// the next compaction, and regrowing it would copy it several times.
	l.buf = append(make([]byte, 0, max(cap(l.buf), 2*len(rest)+64)), rest...)
	offs := make([]int, len(l.offs)-int(k), cap(l.offs))
	for j := range offs {
		offs[j] = l.offs[int(k)+j] - base
	}
	l.offs = offs
	l.terms = append(make([]uint64, 0, cap(l.terms)), l.terms[k:]...)
	l.snapIndex, l.snapTerm = i, t
}

// reset discards the whole log in favour of a snapshot at (i, t).
func (l *raftLog) reset(i, t uint64) {
	l.buf, l.offs, l.terms = nil, nil, nil
	l.snapIndex, l.snapTerm = i, t
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
	for k := range l.offs {
		e, raw, ok := it.Next()
		i := l.snapIndex + 1 + uint64(k)
		if !ok || e.Index != i || e.Term != l.terms[k] || &raw[0] != &l.buf[l.offs[k]] {
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
