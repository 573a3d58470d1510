package core

import (
	"fmt"
	"sort"

	"github.com/kraftdb/kraft/wire"
)

// raftLog is the in-memory log: the entries after the latest snapshot, kept
// as wire entry records, so that the same bytes go to the WAL, to followers
// and to the state machine without re-encoding.
//
// The records live in chunks: buffers of up to maxChunk bytes, filled in
// order, a record never split across two. The log's byte stream (the
// records since the snapshot, back to back) is the chunks concatenated, and
// offsets are positions in that stream, so a chunk boundary is invisible to
// everything but slicing: a slice of entries never crosses one (see slice).
// Chunks never move and never grow by copying: a full chunk is followed by a
// new one. One growing buffer had to copy the whole log each time append
// outgrew it, on the loop goroutine, without preemption: at 200 MiB that
// was a 650 ms stall on the development VM, long enough to lose leadership.
//
// Ownership: byte ranges that were handed out (in a Ready or a message) are
// not written again while the driver may hold them. Appends only write past
// a chunk's length, and truncation caps the chunk it cuts, so the next
// append starts a new chunk. A chunk that eviction drops is reused for a
// later chunk only once the driver said it holds none of its entries
// (Raft.ReleaseThrough: core.Node, after applying them); without that call
// dropped chunks are left to the garbage collector.
//
// The log cache: with a reader and a cacheBytes limit, the chunks hold only
// the entries from cacheFirst on; older entries (stable and applied, so
// never needed by this node again except to send to a lagging follower) are
// read back from the reader (the WAL's mapping). Evicting drops whole chunks
// and reslices the first kept one: nothing is copied.
type raftLog struct {
	snapIndex, snapTerm uint64
	chunks              []logChunk // chunks[0] starts at start(cacheFirst)
	spare               []spareChunk
	released            uint64     // the driver holds no record of an entry up to here (ReleaseThrough)
	reusedChunks        uint64     // chunks that took a spare's memory (LogCache)
	streamEnd           int        // stream position after the last record
	nextChunk           int        // capacity of the next chunk (doubles up to maxChunk)
	cacheFirst          uint64     // first index whose record is in chunks
	idx                 entryIndex // entry snapIndex+1+k: idx.at(k), its stream position and term

	// reader and cacheBytes enable eviction (both set) — see above.
	reader     LogReader
	cacheBytes int

	committed uint64 // highest index known committed
	applied   uint64 // highest index handed out in Ready.CommittedEntries
	stable    uint64 // highest index the driver reported persisted
	unsent    uint64 // first index not yet handed out in Ready.Entries
}

// logChunk holds the records of stream positions [start, start+len(b)).
type logChunk struct {
	start int
	b     []byte
	mem   []byte // the allocation b lies in (eviction moves b's front past mem's)
}

// spareChunk is the memory of a dropped chunk, reused by tail once the
// driver released its entries (all at or below last). Reusing it instead of
// allocating a fresh chunk saves the runtime's zeroing of the new chunk and
// the first-touch faults of memory the garbage collector returned to the
// OS; the copies into it land in memory touched moments ago.
type spareChunk struct {
	mem  []byte
	last uint64
}

// maxSpareChunks: a steady load cycles through two (the one being filled,
// the one evicted last).
const maxSpareChunks = 2

// Chunk capacities: the first is small (a node with a short log, as in the
// simulator's thousands of nodes, stays small), each next one doubles, up to
// maxChunk (or an eighth of the log cache's limit); a record larger than
// that gets a chunk of its own size.
const (
	minChunk = 4 << 10
	maxChunk = 4 << 20
)

func (l *raftLog) firstIndex() uint64 { return l.snapIndex + 1 }
func (l *raftLog) lastIndex() uint64  { return l.snapIndex + uint64(l.idx.len()) }
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
	return l.idx.at(int(i - l.snapIndex - 1)).term, true
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
func (l *raftLog) start(i uint64) int { return l.idx.off(int(i - l.snapIndex - 1)) }
func (l *raftLog) end(i uint64) int {
	k := int(i - l.snapIndex)
	if k == l.idx.len() {
		return l.streamEnd
	}
	return l.idx.off(k)
}

// chunkAt returns the index in chunks of the chunk holding stream position
// pos, which must be cached. Most lookups are near the tail.
func (l *raftLog) chunkAt(pos int) int {
	n := len(l.chunks)
	if n > 0 && pos >= l.chunks[n-1].start {
		return n - 1
	}
	return sort.Search(n, func(c int) bool { return l.chunks[c].start > pos }) - 1
}

// lastInChunk returns the last index j in [lo, hi] whose record is in c,
// the chunk that holds lo's.
func (l *raftLog) lastInChunk(c *logChunk, lo, hi uint64) uint64 {
	if l.end(hi) <= c.start+len(c.b) {
		return hi
	}
	limit := c.start + len(c.b)
	k0 := int(lo - l.snapIndex - 1)
	k1 := int(hi - l.snapIndex - 1)
	// The first entry at or past the chunk's end starts the next chunk.
	k := k0 + sort.Search(k1-k0+1, func(d int) bool { return l.idx.off(k0+d) >= limit })
	return l.snapIndex + uint64(k)
}

// slice returns the cached records of entries [lo, last], with last <= hi
// the last of them in lo's chunk: a slice is contiguous memory, so it stops
// at a chunk boundary and the caller takes the rest in its next turn.
// Empty (and last = hi) when lo > hi.
func (l *raftLog) slice(lo, hi uint64) (b []byte, last uint64) {
	if lo > hi {
		return nil, hi
	}
	if lo <= l.snapIndex || hi > l.lastIndex() {
		bug("log slice [%d, %d] outside (%d, %d]", lo, hi, l.snapIndex, l.lastIndex())
	}
	if lo < l.cacheFirst {
		bug("log slice [%d, %d] reaches below the cache (first cached %d)", lo, hi, l.cacheFirst)
	}
	c := &l.chunks[l.chunkAt(l.start(lo))]
	last = l.lastInChunk(c, lo, hi)
	b = c.b[l.start(lo)-c.start : l.end(last)-c.start]
	return b[:len(b):len(b)], last
}

// sliceForSend returns the records of entries [lo, last] for a follower,
// with last <= hi: from the cache (up to a chunk boundary), or, for evicted
// entries, from the reader, which may also return fewer (it stops at a
// segment's end).
func (l *raftLog) sliceForSend(lo, hi uint64) (b []byte, last uint64, err error) {
	if lo >= l.cacheFirst || lo > hi {
		b, last = l.slice(lo, hi)
		return b, last, nil
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

// evict drops cached records that nobody will read from memory again.
//
// Whole chunks go as soon as every entry in them is stable, applied, and
// below need (the first entry a follower may still be sent; MaxUint64 when
// none): they are garbage then and the runtime reuses their memory for the
// next chunks. Keeping them until the byte limit instead grew the heap by
// the whole limit (256 MiB by default) of fresh memory, touched once per
// write and zeroed by the kernel: on the development VM a fifth of the
// cluster's CPU under load (perf/results/speedups.md, item 31). The bytes
// are still in the WAL, where the reader finds them.
//
// Past that, while the cache holds more than cacheBytes (a follower that is
// behind keeps need low), records go down to half of it, as far as they are
// stable and applied.
func (l *raftLog) evict(need uint64) {
	if l.reader == nil || l.cacheBytes <= 0 {
		return
	}
	done := min(l.stable, l.applied) // entries this node still needs stay
	if len(l.chunks) > 1 && done >= l.cacheFirst {
		if limit := min(done, need-1); limit >= l.cacheFirst {
			l.dropChunksThrough(limit)
		}
	}
	if l.streamEnd-l.cachedStart() <= l.cacheBytes {
		return
	}
	from := l.cacheFirst
	for from <= done && l.streamEnd-l.start(from) > l.cacheBytes/2 {
		from++
	}
	if from == l.cacheFirst {
		return
	}
	l.dropCachedBefore(from)
}

// dropChunksThrough drops the leading chunks whose records all belong to
// entries at or below limit. The last chunk, which appends fill, stays.
func (l *raftLog) dropChunksThrough(limit uint64) {
	pos := l.end(limit) // stream position after limit's record
	k := 0
	for k+1 < len(l.chunks) && l.chunks[k+1].start <= pos {
		k++
	}
	if k == 0 {
		return
	}
	// The entry whose record starts chunk k: records are never split, so
	// one does.
	lo, hi := int(l.cacheFirst-l.snapIndex-1), int(limit-l.snapIndex)
	at := l.chunks[k].start
	i := lo + sort.Search(hi-lo, func(d int) bool { return l.idx.off(lo+d) >= at })
	l.dropCachedBefore(l.snapIndex + 1 + uint64(i))
}

// dropCachedBefore forgets the cached records of entries before from: whole
// chunks, and the front of the chunk where from's record starts.
func (l *raftLog) dropCachedBefore(from uint64) {
	l.cacheFirst = from
	if from > l.lastIndex() {
		for _, ch := range l.chunks {
			l.retire(ch.mem, from-1)
		}
		clear(l.chunks) // let the arrays go
		l.chunks = l.chunks[:0]
		return
	}
	pos := l.start(from)
	c := l.chunkAt(pos)
	for _, ch := range l.chunks[:c] {
		l.retire(ch.mem, from-1)
	}
	n := copy(l.chunks, l.chunks[c:])
	clear(l.chunks[n:])
	l.chunks = l.chunks[:n]
	first := &l.chunks[0]
	first.b = first.b[pos-first.start:]
	first.start = pos
}

// cachedStart is the stream position of the first cached record.
func (l *raftLog) cachedStart() int {
	if len(l.chunks) == 0 {
		return l.streamEnd
	}
	return l.chunks[0].start
}

// cachedBytes is what the cache holds: bytes of records and the chunks'
// capacity.
func (l *raftLog) cachedBytes() (used, capacity int) {
	for _, c := range l.chunks {
		capacity += cap(c.b)
	}
	return l.streamEnd - l.cachedStart(), capacity
}

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
	pos := l.start(i)
	c := &l.chunks[l.chunkAt(pos)]
	return wire.EntryType(c.b[pos-c.start+4])
}

// tail returns the chunk that the next record of n bytes goes into,
// starting a new one when the last has no room for it.
func (l *raftLog) tail(n int) *logChunk {
	if k := len(l.chunks); k > 0 {
		if c := &l.chunks[k-1]; cap(c.b)-len(c.b) >= n {
			return c
		}
	}
	top := maxChunk
	if l.cacheBytes > 0 {
		top = min(maxChunk, max(minChunk, l.cacheBytes/8)) // capacity stays near the limit
	}
	size := min(max(l.nextChunk, minChunk), top)
	l.nextChunk = 2 * size
	mem := l.reuse(max(size, n))
	if mem == nil {
		mem = make([]byte, 0, max(size, n))
	}
	l.chunks = append(l.chunks, logChunk{start: l.streamEnd, b: mem, mem: mem})
	return &l.chunks[len(l.chunks)-1]
}

// retire keeps the memory of a dropped chunk whose entries are all at or
// below last for reuse, the oldest spare going to the garbage collector
// when there are enough.
func (l *raftLog) retire(mem []byte, last uint64) {
	if cap(mem) < minChunk {
		return
	}
	if len(l.spare) == maxSpareChunks {
		l.spare[0] = spareChunk{}
		l.spare = l.spare[:copy(l.spare, l.spare[1:])]
	}
	l.spare = append(l.spare, spareChunk{mem: mem[:0], last: last})
}

// reuse returns a spare chunk's memory, empty, with room for n bytes, whose
// entries the driver released; nil when there is none.
func (l *raftLog) reuse(n int) []byte {
	for k, s := range l.spare {
		if s.last <= l.released && cap(s.mem) >= n {
			copy(l.spare[k:], l.spare[k+1:])
			l.spare[len(l.spare)-1] = spareChunk{}
			l.spare = l.spare[:len(l.spare)-1]
			poisonChunk(s.mem[:cap(s.mem)])
			l.reusedChunks++
			return s.mem
		}
	}
	return nil
}

// poisonChunk fills reused chunk memory with garbage under the invariants
// build tag, so that a reader still holding records from it fails their
// checksums at once instead of reading the next entries' bytes.
func poisonChunk(b []byte) {
	if invariantsOn {
		for i := range b {
			b[i] = 0xa5
		}
	}
}

func (l *raftLog) appendEntry(t wire.EntryType, term uint64, payload []byte) uint64 {
	i := l.lastIndex() + 1
	c := l.tail(wire.EntrySize(len(payload)))
	l.idx.push(l.streamEnd, term)
	c.b = wire.AppendEntry(c.b, t, i, term, payload)
	l.streamEnd = c.start + len(c.b)
	return i
}

// appendRaw appends a verified record for entry lastIndex()+1.
func (l *raftLog) appendRaw(raw []byte, index, term uint64) {
	if index != l.lastIndex()+1 {
		bug("append of entry %d after %d", index, l.lastIndex())
	}
	c := l.tail(len(raw))
	l.idx.push(l.streamEnd, term)
	c.b = append(c.b, raw...)
	l.streamEnd = c.start + len(c.b)
}

// truncateFrom removes entries i and later. The chunk where i's record
// starts is capped there: its bytes from there on may have been handed out,
// so the next append starts a new chunk rather than writing over them.
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
	pos := l.idx.off(int(k))
	c := l.chunkAt(pos)
	if cut := pos - l.chunks[c].start; cut > 0 {
		// Past the cut are records of entries whose indexes the next
		// appends take again: released by index, they would be written
		// over while the old ones may still be held. The chunk is not
		// reused (truncation is rare).
		l.chunks[c].b, l.chunks[c].mem = l.chunks[c].b[:cut:cut], nil
		c++
	}
	clear(l.chunks[c:])
	l.chunks = l.chunks[:c]
	l.streamEnd = pos
	l.idx.truncate(int(k))
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
		l.dropCachedBefore(i + 1)
	}
	l.idx.dropFront(int(k))
	l.snapIndex, l.snapTerm = i, t
}

// reset discards the whole log in favour of a snapshot at (i, t).
func (l *raftLog) reset(i, t uint64) {
	l.chunks, l.streamEnd, l.nextChunk = nil, 0, 0
	l.idx.clear()
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

// checkLog is the costly invariant check: chunks, records, offsets and
// terms agree.
func (l *raftLog) checkLog() {
	if !invariantsOn {
		return
	}
	if l.cacheFirst <= l.snapIndex || l.cacheFirst > l.lastIndex()+1 || (l.cacheFirst <= l.lastIndex() && l.start(l.cacheFirst) != l.cachedStart()) {
		bug("log cache starts at %d (stream %d) outside (%d, %d]", l.cacheFirst, l.cachedStart(), l.snapIndex, l.lastIndex()+1)
	}
	pos := l.cachedStart()
	for _, c := range l.chunks {
		if c.start != pos {
			bug("log chunk starts at %d, the previous ended at %d", c.start, pos)
		}
		pos += len(c.b)
	}
	if pos != l.streamEnd {
		bug("log chunks end at %d, stream at %d", pos, l.streamEnd)
	}
	c, it := -1, wire.EntryIter{}
	for k := int(l.cacheFirst - l.snapIndex - 1); k < l.idx.len(); k++ {
		e, raw, ok := it.Next()
		for !ok && c+1 < len(l.chunks) {
			c++
			it = wire.NewEntryIter(l.chunks[c].b)
			e, raw, ok = it.Next()
		}
		i := l.snapIndex + 1 + uint64(k)
		if !ok || e.Index != i || e.Term != l.idx.at(k).term || &raw[0] != &l.chunks[c].b[l.idx.off(k)-l.chunks[c].start] {
			bug("log record %d inconsistent with its index", i)
		}
		if k > 0 && l.idx.at(k).term < l.idx.at(k-1).term {
			bug("log terms decrease at %d", i)
		}
	}
	if _, _, ok := it.Next(); ok || c+1 < len(l.chunks) {
		bug("log chunks have trailing records")
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
	if r.readsAssigned < 0 || r.readsAssigned > len(r.reads) {
		bug("%d reads assigned of %d", r.readsAssigned, len(r.reads))
	}
	for i, rq := range r.reads[r.readsAssigned:] {
		if rq.round != 0 {
			bug("read %d of %d has a round but no index (%d assigned)", r.readsAssigned+i, len(r.reads), r.readsAssigned)
		}
	}
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
