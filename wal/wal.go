package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"

	"github.com/kraftdb/kraft/wire"
)

// WAL is an open write-ahead log directory. See doc.go for the goroutines
// it runs and the rules for the views it hands out.
type WAL struct {
	dir  string
	fsys FS
	opts Options
	log  *slog.Logger

	// closeMu orders Close after the calls that do I/O outside mu
	// (SaveHardState, SaveSnapshot): they hold it shared, Close exclusive.
	closeMu sync.RWMutex

	// mu guards everything below. Append, TruncateSuffix and
	// CompactPrefix hold it exclusively; reads share it.
	mu         sync.RWMutex
	durableCnd *sync.Cond // on &mu; broadcast when durable, synced or closed change
	closed     bool
	fatal      error
	segs       []*segment // live segments; the last receives appends
	start      logStart
	lastIndex  uint64
	lastTerm   uint64
	unsynced   []*segment // written since the writer last captured them
	dirDirty   bool       // a segment was named since the last capture
	forceSync  bool       // Sync asked for a sync whatever the mode
	syncing    bool       // a sync round is in progress (rounds never overlap)
	roundBuf   []*segment // the round in progress's capture (owned by it)
	truncFloor uint64     // lowest "last index" a truncation left since the capture
	synced     uint64     // covered by a completed fdatasync
	durable    uint64     // reported persisted (== synced in FsyncAlways)
	epoch      uint64     // count of TruncateSuffix/CompactPrefix calls
	retired    []retiredSegment

	durableIdx atomic.Uint64 // mirror of durable for lock-free reads
	syncRounds atomic.Uint64 // completed sync rounds (benchmarks, metrics)
	durableCh  chan struct{} // capacity 1: "durable moved"

	state *stateFile

	// The preparer's slot: at most one prepared segment waits here.
	prepMu   sync.Mutex
	prepCnd  *sync.Cond
	prepared *preparedSegment
	prepErr  error
	prepSeq  uint64
	// pool: retired segments waiting to be recycled (recycle.go), at most
	// Options.RecycleSegments.
	pool []*segment
	// drops: released segments the dropper goroutine closes (and
	// removes, if kept for recycling) off mu's path (queueDrop).
	drops    []*segment
	recycled atomic.Uint64 // segments handed out again
	// toSum: sealed segments for the summer goroutine (sums.go).
	toSum      []sumJob
	sumSeq     uint64        // the summer's next cache file number (its own)
	sumsCached atomic.Uint64 // recycled with the summer's checksums
	sumsRead   atomic.Uint64 // recycled by reading the segment back
	// prepWaiters counts appends waiting for a prepared segment; the
	// first of them wakes a pausing preparer through prepHurry (capacity 1).
	prepWaiters atomic.Int32
	prepHurry   chan struct{}
	// reserved: prepared segments Append took for the rolls of the batch
	// it is writing (guarded by mu; bounded by one batch's rolls).
	reserved []*preparedSegment
	// prepAsked: the preparer was asked for the next segment since the
	// last roll (guarded by mu).
	prepAsked bool
	// spareOffsets: an index slice kept for the next segment (guarded by
	// mu), sized like the current one so that a roll does not regrow it.
	spareOffsets []uint32

	writerKick  chan struct{} // capacity 1
	prepKick    chan struct{} // capacity 1
	dropKick    chan struct{} // capacity 1: drops queued (dropLoop)
	sumKick     chan struct{} // capacity 1: segments sealed (sumLoop)
	releaseKick chan struct{} // capacity 1: a roll sealed a segment (releaseLoop)
	stop        chan struct{}
	wg          sync.WaitGroup

	recovery Recovery
}

// retiredSegment is a segment removed from the log whose mapping is kept
// until a later TruncateSuffix/CompactPrefix (the view lifetime rule).
type retiredSegment struct {
	seg   *segment
	epoch uint64
}

// Recovery says what Open repaired.
type Recovery struct {
	TornFile     string // segment whose torn tail was cut off ("" if none)
	TornOffset   int64  // where the cut was made
	TornBytes    int64  // bytes zeroed
	RemovedFiles []string
}

// Open opens (creating if needed) the WAL in dir and recovers it: every
// record is verified and the index rebuilt. A torn write at the end of the
// newest segment is cut off and logged; any other damage (bad checksum, a
// gap, an index or term going backwards) returns a *CorruptionError naming
// the file and offset, and nothing is modified. An empty dir whose snapshot
// directory holds a snapshot opens as a log starting after that snapshot
// (the restore procedure: empty data dir + snapshot file + restart).
func Open(dir string, opts Options) (*WAL, error) {
	opts.setDefaults(dir)
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	fsys := opts.FS
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, errorf("create %s: %w", dir, err)
	}
	d, err := scanDir(fsys, dir, true)
	if err != nil {
		return nil, err
	}
	discard := d.checkStart(dir)
	if len(d.problems) > 0 {
		d.closeAll()
		p := d.problems[0]
		return nil, &CorruptionError{File: p.File, Offset: p.Offset, Detail: p.Detail}
	}
	w := &WAL{
		dir:         dir,
		fsys:        fsys,
		opts:        opts,
		log:         opts.Logger,
		durableCh:   make(chan struct{}, 1),
		writerKick:  make(chan struct{}, 1),
		prepKick:    make(chan struct{}, 1),
		dropKick:    make(chan struct{}, 1),
		sumKick:     make(chan struct{}, 1),
		releaseKick: make(chan struct{}, 1),
		prepHurry:   make(chan struct{}, 1),
		stop:        make(chan struct{}),
		truncFloor:  ^uint64(0),
	}
	w.durableCnd = sync.NewCond(&w.mu)
	w.prepCnd = sync.NewCond(&w.prepMu)
	if err := w.recover(d, discard); err != nil {
		d.closeAll()
		w.closePool()
		if w.state != nil {
			_ = w.state.f.Close()
		}
		return nil, err
	}
	w.wg.Add(5)
	go w.syncLoop()
	go w.prepareLoop()
	go w.dropLoop()
	go w.sumLoop()
	go w.releaseLoop()
	w.mu.Lock()
	w.askPrepareLocked()
	w.mu.Unlock()
	return w, nil
}

// recover applies what scanDir found: the only place Open modifies files.
func (w *WAL) recover(d *dirScan, discard bool) error {
	statePath := path.Join(w.dir, stateFileName)
	if !d.stateExists {
		if err := createStateFile(w.fsys, w.dir, statePath); err != nil {
			return err
		}
	}
	f, err := w.fsys.OpenRW(statePath)
	if err != nil {
		return errorf("open hard state: %w", err)
	}
	w.state = &stateFile{f: f, path: statePath, seq: d.stateSeq, hs: d.hs, start: d.start}
	w.start = d.start
	if first, _ := d.logRange(); first == 0 && !d.stateExists {
		// A fresh or restored directory: start after the newest snapshot.
		snaps, err := listSnapshots(w.fsys, w.opts.SnapshotDir)
		if err != nil {
			return err
		}
		if len(snaps) > 0 {
			s := snaps[len(snaps)-1]
			// Read it whole once: starting a log after a snapshot that
			// cannot be loaded would leave the node with neither.
			if _, _, err := readSnapshot(w.fsys, s); err != nil {
				return err
			}
			w.start = logStart{index: s.Index, term: s.Term}
			if err := w.state.saveStart(w.start); err != nil {
				return err
			}
			w.log.Info("kraft/wal: empty log starts after snapshot", "file", s.File, "index", s.Index, "term", s.Term)
		}
	}
	if d.torn != nil {
		if err := w.cutTornTail(d); err != nil {
			return err
		}
	}
	keep := d.segs[:0]
	for i, s := range d.segs {
		newest := i == len(d.segs)-1
		obsolete := discard || s.m == nil || (s.count() > 0 && s.last() <= w.start.index && !newest)
		if newest && !discard && s.count() == 0 && len(keep) > 0 && s.first != keep[len(keep)-1].last()+1 {
			obsolete = true
		}
		if newest && !discard && s.count() == 0 && len(keep) == 0 && s.first != w.start.index+1 {
			obsolete = true
		}
		if !obsolete {
			keep = append(keep, s)
			continue
		}
		_ = s.close()
		if err := w.fsys.Remove(s.path); err != nil {
			return errorf("remove obsolete segment: %w", err)
		}
		w.recovery.RemovedFiles = append(w.recovery.RemovedFiles, s.path)
		if s.hasPrior {
			if err := w.fsys.Remove(priorName(s.path)); err != nil {
				return errorf("remove prior-content file: %w", err)
			}
			w.recovery.RemovedFiles = append(w.recovery.RemovedFiles, priorName(s.path))
		}
		w.log.Info("kraft/wal: removed obsolete segment", "file", s.path)
	}
	w.segs = keep
	for _, t := range d.tmpFiles {
		if w.adoptPooled(t) {
			continue
		}
		if err := w.fsys.Remove(t); err != nil {
			return errorf("remove %s: %w", t, err)
		}
		w.recovery.RemovedFiles = append(w.recovery.RemovedFiles, t)
	}
	adopted, err := w.adoptKeptSums(d.keptSums)
	if err != nil {
		return err
	}
	if adopted || len(w.recovery.RemovedFiles) > 0 {
		if err := w.fsys.SyncDir(w.dir); err != nil {
			return &FatalError{Op: "directory fsync", Err: err}
		}
	}
	w.lastIndex, w.lastTerm = w.start.index, w.start.term
	if n := len(w.segs); n > 0 {
		if s := w.segs[n-1]; s.count() > 0 && s.last() > w.start.index {
			w.lastIndex, w.lastTerm = s.last(), s.termAt(len(s.offsets)-1)
		}
		if s := w.segs[n-1]; s.count() == 0 && n > 1 {
			prev := w.segs[n-2]
			w.lastIndex, w.lastTerm = prev.last(), prev.termAt(len(prev.offsets)-1)
		}
	}
	w.synced, w.durable = w.lastIndex, w.lastIndex
	w.durableIdx.Store(w.lastIndex)
	return nil
}

func (w *WAL) cutTornTail(d *dirScan) error {
	s := d.segs[len(d.segs)-1]
	if err := zeroRange(s.f, s.end, d.tornEnd); err != nil {
		return &FatalError{Op: "torn tail write", Err: err}
	}
	if err := s.f.Sync(); err != nil {
		return &FatalError{Op: "torn tail fsync", Err: err}
	}
	w.recovery.TornFile, w.recovery.TornOffset, w.recovery.TornBytes = s.path, s.end, d.tornEnd-s.end
	w.log.Warn("kraft/wal: cut off a torn write at the end of the newest segment",
		"file", s.path, "offset", s.end, "bytes", d.tornEnd-s.end)
	return nil
}

// zeroRange writes zeros over [from, to) of f, in pieces that end on
// zeroChunkBytes boundaries except the last: a segment pads a write with
// zeros to the end of its page (pagePadder), which must only cover bytes
// that are zeros already, past to.
func zeroRange(f File, from, to int64) error {
	for off := from; off < to; {
		n := min(zeroChunkBytes-off%zeroChunkBytes, to-off)
		if _, err := f.WriteAt(zeroChunk[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// Recovery reports what Open repaired.
func (w *WAL) Recovery() Recovery { return w.recovery }

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// writable returns the error that forbids writing, if any. Holds mu.
func (w *WAL) writable() error {
	if w.closed {
		return ErrClosed
	}
	return w.fatal
}

// setFatal records the first fatal error and wakes every waiter. Holds mu.
func (w *WAL) setFatal(err error) error {
	if w.fatal == nil {
		w.fatal = err
		w.log.Error("kraft/wal: fatal error, refusing further writes", "err", err)
	}
	w.durableCnd.Broadcast()
	kick(w.durableCh)
	return w.fatal
}

// Append writes records to the log and returns without waiting for them to
// be durable: the writer goroutine syncs them (group commit) and reports
// through DurableIndex, Durable and WaitDurable.
//
// records are concatenated wire entry records (wire.AppendEntry), the first
// with index LastIndex()+1, indexes consecutive, terms not decreasing;
// every record at most a segment minus nothing. To replace conflicting
// entries call TruncateSuffix first. Append copies records into the page
// cache before returning: the caller may reuse the buffer at once, and
// Entries can read them immediately. On error nothing was appended.
//
// Safe for concurrent use, but callers must agree on indexes; the Raft
// driver calls it from its one loop. It does no sync except at a segment
// roll (once per SegmentSizeBytes: the finished segment is fdatasync'd
// before the next is named), and waits for the preparer only when segments
// fill faster than they can be created.
func (w *WAL) Append(records []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	lastIndex, lastTerm, err := w.validate(records)
	if err != nil {
		return err
	}
	if err := w.reserve(records); err != nil {
		return err
	}
	for rest := records; len(rest) > 0; {
		n := 0
		if len(w.segs) > 0 {
			n = w.fitInto(w.segs[len(w.segs)-1], rest)
		}
		if n == 0 {
			if err := w.rollLocked(int(uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16 | uint32(rest[3])<<24)); err != nil {
				return err
			}
			continue
		}
		s := w.segs[len(w.segs)-1]
		if _, err := s.f.WriteAt(rest[:n], s.end); err != nil {
			// The outcome of a failed write is unknown: like a failed
			// sync, only a restart can tell what is on disk.
			return w.setFatal(&FatalError{Op: "write", Err: err})
		}
		s.end += int64(n)
		if err := s.padSector(); err != nil {
			return w.setFatal(&FatalError{Op: "write", Err: err})
		}
		if !s.dirty {
			s.dirty = true
			w.unsynced = append(w.unsynced, s)
		}
		rest = rest[n:]
	}
	w.lastIndex, w.lastTerm = lastIndex, lastTerm
	if invariants {
		w.checkLocked()
	}
	w.askPrepareLocked()
	if w.prepAsked {
		w.fillSpareOffsetsLocked()
	}
	if w.opts.Fsync != FsyncAlways {
		w.publishDurable(lastIndex)
	}
	if w.opts.Fsync == FsyncAlways {
		kick(w.writerKick)
	}
	return nil
}

// askPrepareLocked asks the preparer for the next segment once the current
// one is half full (or missing): early enough that a roll need not wait,
// late enough that opening a WAL to read it does not create a file. Holds
// mu.
func (w *WAL) askPrepareLocked() {
	if w.prepAsked {
		return
	}
	if n := len(w.segs); n > 0 && 2*w.segs[n-1].end < int64(len(w.segs[n-1].m)) {
		return
	}
	w.prepAsked = true
	kick(w.prepKick)
}

// fillSpareOffsetsLocked sizes the index slice for the next segment like
// the current one's, once per segment, so that the index never regrows
// record by record. Holds mu.
func (w *WAL) fillSpareOffsetsLocked() {
	if w.spareOffsets != nil || len(w.segs) == 0 {
		return
	}
	if c := cap(w.segs[len(w.segs)-1].offsets); c > 0 {
		w.spareOffsets = make([]uint32, 0, c)
	}
}

// validate checks records against the log's end and returns the new last
// index and term. Holds mu.
func (w *WAL) validate(records []byte) (uint64, uint64, error) {
	if len(records) == 0 {
		return 0, 0, errorf("append: no records")
	}
	if invariants {
		if _, err := wire.VerifyEntries(records, w.lastIndex+1); err != nil {
			return 0, 0, errorf("append: %w", err)
		}
	}
	next, term := w.lastIndex+1, w.lastTerm
	maxRecordBytes := w.opts.SegmentSizeBytes
	for off := 0; off < len(records); {
		h, err := wire.ParseEntryHeader(records[off:])
		if err != nil {
			return 0, 0, errorf("append: record at byte %d: %w", off, err)
		}
		if h.Index != next {
			return 0, 0, errorf("append: record has index %d, expected %d (TruncateSuffix before overwriting)", h.Index, next)
		}
		if h.Term < term {
			return 0, 0, errorf("append: record %d has term %d after term %d", h.Index, h.Term, term)
		}
		if int64(h.Size) > maxRecordBytes {
			return 0, 0, fmt.Errorf("%w: record %d is %d bytes, segments %d", ErrRecordTooLarge, h.Index, h.Size, maxRecordBytes)
		}
		next, term = h.Index+1, h.Term
		off += h.Size
	}
	return next - 1, term, nil
}

// fitInto appends to s's offsets the records of rest that fit after s.end
// and returns their byte length. Holds mu.
func (w *WAL) fitInto(s *segment, rest []byte) int {
	space := int64(len(s.m)) - s.end
	n := 0
	for n < len(rest) {
		size := int(uint32(rest[n]) | uint32(rest[n+1])<<8 | uint32(rest[n+2])<<16 | uint32(rest[n+3])<<24)
		if int64(n+size) > space {
			break
		}
		s.offsets = append(s.offsets, uint32(s.end)+uint32(n))
		n += size
	}
	return n
}

// reserve makes sure prepared segments exist for every roll that writing
// records needs, so that Append fails before writing anything when one
// cannot be prepared (a full disk). Holds mu.
func (w *WAL) reserve(records []byte) error {
	need := 0
	space := int64(-1) // no current segment: the first record rolls
	if n := len(w.segs); n > 0 {
		space = int64(len(w.segs[n-1].m)) - w.segs[n-1].end
	}
	for off := 0; off < len(records); {
		size := int64(uint32(records[off]) | uint32(records[off+1])<<8 | uint32(records[off+2])<<16 | uint32(records[off+3])<<24)
		if size > space {
			need++
			space = w.opts.SegmentSizeBytes
		}
		space -= size
		off += int(size)
	}
	return w.reservePrepared(need)
}

// rollLocked names the next reserved segment after the index that will go
// first into it and makes it the current segment; its index slice is the
// spare one, or sized from nextRecordBytes. An empty current segment (left
// by a crash) is removed first so that no empty segment ends up before the
// newest. Holds mu.
func (w *WAL) rollLocked(nextRecordBytes int) error {
	if n := len(w.segs); n > 0 && w.segs[n-1].count() == 0 {
		empty := w.segs[n-1]
		w.segs = w.segs[:n-1]
		if err := w.retireLocked(empty, false); err != nil {
			return err
		}
	}
	// The finished segment must be durable before the next one's name
	// can be: otherwise a crash could keep the new name (the kernel may
	// commit a rename at any time) with the old segment's tail torn,
	// which Open could not tell from corruption before the newest
	// segment. One fdatasync per SegmentSizeBytes, on the caller's path.
	if n := len(w.segs); n > 0 && w.segs[n-1].count() > 0 {
		if err := w.segs[n-1].f.Sync(); err != nil {
			return w.setFatal(&FatalError{Op: "fdatasync", Err: err})
		}
		w.queueSumsLocked(w.segs[n-1])
		kick(w.releaseKick)
	}
	p := w.takeReserved()
	first := w.lastIndexWritten() + 1
	s := &segment{first: first, path: path.Join(w.dir, segmentName(first)), f: p.f, m: p.m, offsets: w.spareOffsets}
	w.spareOffsets = nil
	if s.offsets == nil {
		s.offsets = make([]uint32, 0, offsetsCapacity(len(s.m), nextRecordBytes))
	}
	if p.priorPath != "" {
		// Named before the segment is, and durably (recycle.go, step 3).
		if err := w.fsys.Rename(p.priorPath, priorName(s.path)); err != nil {
			_ = p.f.Close()
			_ = w.fsys.Remove(p.path)
			return w.setFatal(&FatalError{Op: "prior-content file rename", Err: err})
		}
		if err := w.fsys.SyncDir(w.dir); err != nil {
			_ = p.f.Close()
			return w.setFatal(&FatalError{Op: "directory fsync", Err: err})
		}
		s.hasPrior = true
	}
	if err := w.fsys.Rename(p.path, s.path); err != nil {
		_ = p.f.Close()
		_ = w.fsys.Remove(p.path)
		return w.setFatal(&FatalError{Op: "segment rename", Err: err})
	}
	w.segs = append(w.segs, s)
	w.dirDirty = true
	return nil
}

// lastIndexWritten is the index of the last record in the segments (which
// runs ahead of lastIndex while Append is writing). Holds mu.
func (w *WAL) lastIndexWritten() uint64 {
	for i := len(w.segs) - 1; i >= 0; i-- {
		if s := w.segs[i]; s.count() > 0 {
			return s.last()
		}
	}
	return w.start.index
}

// publishDurable moves the durable index up to i. Holds mu.
func (w *WAL) publishDurable(i uint64) {
	if i <= w.durable {
		return
	}
	w.durable = i
	w.durableIdx.Store(i)
	w.durableCnd.Broadcast()
	kick(w.durableCh)
}

// checkLocked verifies the in-memory index against itself and the
// mapped bytes (invariants builds only: it reads every header). Holds mu.
func (w *WAL) checkLocked() {
	bug := func(format string, args ...any) {
		panic(fmt.Sprintf("kraft: BUG: wal index: "+format, args...))
	}
	next := uint64(0)
	for i, s := range w.segs {
		if s.count() == 0 && i != len(w.segs)-1 {
			bug("empty segment %s before the newest", s.path)
		}
		if next != 0 && s.count() > 0 && s.first != next {
			bug("segment %s starts at %d, want %d", s.path, s.first, next)
		}
		for k, o := range s.offsets {
			h, err := wire.ParseEntryHeader(s.m[o:])
			if err != nil || h.Index != s.first+uint64(k) || int64(o)+int64(h.Size) != s.recordEnd(k) {
				bug("segment %s record %d at %d: %+v %v", s.path, k, o, h, err)
			}
		}
		if s.count() > 0 {
			next = s.last() + 1
		}
	}
	want := w.start.index
	if next > 0 && next-1 > want {
		want = next - 1
	}
	if w.lastIndex != want {
		bug("lastIndex %d, segments end at %d (start %d)", w.lastIndex, next-1, w.start.index)
	}
	if t, err := w.termLocked(w.lastIndex); err != nil || t != w.lastTerm {
		bug("lastTerm %d, stored %d (%v)", w.lastTerm, t, err)
	}
	if w.durable > w.lastIndex && w.durable > w.start.index {
		bug("durable %d beyond last %d", w.durable, w.lastIndex)
	}
}

// FirstIndex is the index of the first entry in the log (the compaction
// point + 1). When FirstIndex > LastIndex the log is empty.
func (w *WAL) FirstIndex() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.start.index + 1
}

// LastIndex is the index of the last appended entry (durable or not), or
// the compaction point when the log is empty.
func (w *WAL) LastIndex() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.lastIndex
}

// DurableIndex is the highest index reported persisted under the fsync
// mode (see FsyncMode). It can go down only through TruncateSuffix.
func (w *WAL) DurableIndex() uint64 { return w.durableIdx.Load() }

// Durable returns a channel that receives a value whenever DurableIndex
// moves (or a fatal error occurs). Notifications coalesce: after a receive,
// read DurableIndex (and Err).
func (w *WAL) Durable() <-chan struct{} { return w.durableCh }

// Err returns the fatal error that stopped the WAL, or nil.
func (w *WAL) Err() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.fatal
}

// WaitDurable blocks until DurableIndex >= index. It returns the fatal
// error if one occurs, ErrClosed on Close, and ErrUnavailable when index is
// beyond LastIndex (it could never become durable).
func (w *WAL) WaitDurable(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.durable < index {
		switch {
		case w.fatal != nil:
			return w.fatal
		case w.closed:
			return ErrClosed
		case index > w.lastIndex:
			return ErrUnavailable
		}
		if w.opts.Fsync == FsyncAlways && !w.syncing {
			// Run the round here rather than sleep while the writer
			// goroutine does: one context switch less per sync.
			w.syncRoundLocked()
			continue
		}
		w.durableCnd.Wait()
	}
	return nil
}

// Sync makes everything appended so far durable, whatever the fsync mode,
// and waits for it. The driver does not need it in FsyncAlways.
func (w *WAL) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.lastIndex
	w.forceSync = true
	for w.synced < target || w.forceSync {
		if err := w.writable(); err != nil {
			return err
		}
		if target > w.lastIndex { // truncated meanwhile
			target = w.lastIndex
		}
		if w.syncing {
			w.durableCnd.Wait()
			continue
		}
		w.forceSync = true
		w.syncRoundLocked()
	}
	return nil
}

// SyncNow runs a sync round on the calling goroutine if none is in
// progress, making everything appended so far durable, and reports whether
// it did; it never waits for a round. A caller that would otherwise only
// wait for the writer goroutine's round (a follower's loop, which then
// acknowledges) saves the hand-over to that goroutine and back.
func (w *WAL) SyncNow() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return false, err
	}
	if w.syncing || w.opts.Fsync != FsyncAlways {
		return false, nil
	}
	w.syncRoundLocked()
	return true, w.writable()
}

// Term returns the term of entry i, for FirstIndex()-1 <= i <= LastIndex()
// (the entry before the first is the snapshot's). ErrCompacted or
// ErrUnavailable otherwise.
func (w *WAL) Term(i uint64) (uint64, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return 0, ErrClosed
	}
	return w.termLocked(i)
}

func (w *WAL) termLocked(i uint64) (uint64, error) {
	switch {
	case i == w.start.index:
		return w.start.term, nil
	case i < w.start.index:
		return 0, ErrCompacted
	case i > w.lastIndex:
		return 0, ErrUnavailable
	}
	s := w.segmentFor(i)
	return s.termAt(int(i - s.first)), nil
}

// segmentFor returns the live segment holding index i, which must be in
// the log. Holds mu.
func (w *WAL) segmentFor(i uint64) *segment {
	lo, hi := 0, len(w.segs)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if w.segs[mid].first <= i {
			lo = mid
		} else {
			hi = mid
		}
	}
	s := w.segs[lo]
	if i < s.first || i > s.last() {
		panic(fmt.Sprintf("kraft: BUG: index %d not in segment %s [%d, %d]", i, s.path, s.first, s.last()))
	}
	return s
}

// Entries returns the records of entries lo, lo+1, ... as one byte slice
// that is a view into the segment mapping (no copy): the exact bytes that
// were appended. It stops before hi, at the end of a segment, or when
// adding a record would exceed maxBytes (at least one record is returned).
// Iterate with wire.NewEntryIter; call again from the next index for more.
//
// Lifetime: the view stays mapped until the next TruncateSuffix or
// CompactPrefix call after the one that removed its entries, or Close;
// entries that TruncateSuffix cut from a segment it keeps change content
// at once. Never write to it. FirstIndex() <= lo < hi <= LastIndex()+1.
func (w *WAL) Entries(lo, hi uint64, maxBytes int) ([]byte, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	switch {
	case lo <= w.start.index:
		return nil, ErrCompacted
	case lo > w.lastIndex || hi <= lo:
		return nil, ErrUnavailable
	}
	hi = min(hi, w.lastIndex+1)
	s := w.segmentFor(lo)
	k := int(lo - s.first)
	n := min(int(hi-lo), len(s.offsets)-k)
	from := int64(s.offsets[k])
	to := s.recordEnd(k)
	for j := k + 1; j < k+n; j++ {
		e := s.recordEnd(j)
		if e-from > int64(maxBytes) {
			break
		}
		to = e
	}
	b := s.m[from:to:to]
	if invariants {
		if _, err := wire.VerifyEntries(b, lo); err != nil {
			panic("kraft: BUG: stored records fail verification: " + err.Error())
		}
	}
	return b, nil
}

// TruncateSuffix removes entries from index from onwards (a log conflict).
// It is ordered with Append by call order: later appends write after the
// cut. It returns when the removal is durable, so entries appended next
// never sit behind stale ones after a crash. DurableIndex drops to from-1
// if it was higher. Precondition: FirstIndex() <= from; from > LastIndex()
// is a no-op. Entries views of removed entries change content at once.
func (w *WAL) TruncateSuffix(from uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if from <= w.start.index {
		return fmt.Errorf("%w: truncate from %d at or before the compaction point %d", ErrCompacted, from, w.start.index)
	}
	if from > w.lastIndex {
		return nil
	}
	w.bumpEpochLocked()
	removed := false
	for len(w.segs) > 0 && w.segs[len(w.segs)-1].first >= from {
		s := w.segs[len(w.segs)-1]
		w.segs = w.segs[:len(w.segs)-1]
		if err := w.retireLocked(s, false); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		if err := w.fsys.SyncDir(w.dir); err != nil {
			return w.setFatal(&FatalError{Op: "directory fsync", Err: err})
		}
	}
	if n := len(w.segs); n > 0 {
		s := w.segs[n-1]
		// The newest segment again: appends change it from here on.
		w.discardSums(s)
		if k := int(from - s.first); k < len(s.offsets) {
			cut := int64(s.offsets[k])
			if err := zeroRange(s.f, cut, s.end); err != nil {
				return w.setFatal(&FatalError{Op: "truncate write", Err: err})
			}
			if err := s.f.Sync(); err != nil {
				return w.setFatal(&FatalError{Op: "truncate fsync", Err: err})
			}
			s.offsets = s.offsets[:k]
			s.end = cut
		}
	}
	w.lastIndex = from - 1
	w.lastTerm, _ = w.termLocked(from - 1)
	w.truncFloor = min(w.truncFloor, from-1)
	w.synced = min(w.synced, from-1)
	if w.durable > from-1 {
		w.durable = from - 1
		w.durableIdx.Store(from - 1)
		kick(w.durableCh)
	}
	w.durableCnd.Broadcast()
	if invariants {
		w.checkLocked()
	}
	return nil
}

// CompactPrefix discards entries up to and including upTo, which a
// snapshot with last index upTo and term upToTerm now covers. If the log
// does not hold upTo with that term (a snapshot installed from the
// leader), the whole log is discarded and the next append must have index
// upTo+1 (Raft §7). The new compaction point is durable before any file is
// removed. Entries views of removed entries follow the lifetime rule of
// Entries. upTo <= FirstIndex()-1 is a no-op.
func (w *WAL) CompactPrefix(upTo, upToTerm uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if upTo <= w.start.index {
		return nil
	}
	t, err := w.termLocked(upTo)
	conflict := err != nil || t != upToTerm
	st := logStart{index: upTo, term: upToTerm}
	if err := w.state.saveStart(st); err != nil {
		return w.setFatal(err)
	}
	w.bumpEpochLocked()
	w.start = st
	if conflict {
		for len(w.segs) > 0 {
			s := w.segs[len(w.segs)-1]
			w.segs = w.segs[:len(w.segs)-1]
			if err := w.retireLocked(s, false); err != nil {
				return err
			}
		}
		// The removals must be durable before a new segment named
		// upTo+1 can be: old segments reappearing beside it would leave
		// a gap that Open cannot tell from lost data.
		if err := w.fsys.SyncDir(w.dir); err != nil {
			return w.setFatal(&FatalError{Op: "directory fsync", Err: err})
		}
		w.lastIndex, w.lastTerm = upTo, upToTerm
		w.truncFloor = min(w.truncFloor, upTo)
		w.synced, w.durable = upTo, upTo
		w.durableIdx.Store(upTo)
		w.durableCnd.Broadcast()
		kick(w.durableCh)
		return nil
	}
	for len(w.segs) > 1 && w.segs[1].first <= upTo+1 {
		s := w.segs[0]
		w.segs = w.segs[1:]
		if err := w.retireLocked(s, true); err != nil {
			return err
		}
	}
	if invariants {
		w.checkLocked()
	}
	return nil
}

// HardState returns the last saved hard state.
func (w *WAL) HardState() HardState { return w.state.snapshotHS() }

// SaveHardState durably replaces the hard state (one write and one
// fdatasync of a small file; atomic: after a crash Open returns either the
// old or the new value). It costs a sync of its own, so save when Term or
// Vote change (before sending the messages that depend on them); Commit
// can ride along, it need not be saved on every advance. Safe for
// concurrent use with every method.
func (w *WAL) SaveHardState(hs HardState) error {
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	w.mu.RLock()
	err := w.writable()
	w.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := w.state.saveHS(hs); err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.setFatal(err)
	}
	return nil
}

func (s *stateFile) snapshotHS() HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hs
}

// SaveSnapshot is SaveSnapshotFile with default options: a self-contained,
// uncompressed file.
func (w *WAL) SaveSnapshot(index, term uint64, r io.Reader) (SnapshotMeta, error) {
	return w.SaveSnapshotFile(index, term, r, SnapshotFileOptions{})
}

// Snapshots lists the snapshot files, oldest first (names only; LoadSnapshot
// verifies contents).
func (w *WAL) Snapshots() ([]SnapshotMeta, error) {
	return listSnapshots(w.fsys, w.opts.SnapshotDir)
}

// LoadSnapshot reads and verifies the newest snapshot file (which may be a
// delta: see LoadSnapshotChain). ErrNoSnapshot
// if there is none; a *CorruptionError if it is damaged.
func (w *WAL) LoadSnapshot() (SnapshotMeta, []byte, error) {
	snaps, err := listSnapshots(w.fsys, w.opts.SnapshotDir)
	if err != nil {
		return SnapshotMeta{}, nil, err
	}
	if len(snaps) == 0 {
		return SnapshotMeta{}, nil, ErrNoSnapshot
	}
	data, meta, err := readSnapshot(w.fsys, snaps[len(snaps)-1])
	return meta, data, err
}

// SyncRounds counts completed sync rounds (each one fdatasync per dirty
// segment, covering every append before it: the group commits).
func (w *WAL) SyncRounds() uint64 { return w.syncRounds.Load() }

// Close syncs what was appended, stops the writer and preparer goroutines
// and releases every file and mapping. Views from Entries become invalid.
// Further calls return ErrClosed.
func (w *WAL) Close() error {
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.durableCnd.Broadcast()
	w.mu.Unlock()
	close(w.stop)
	w.wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.fatal
	kept := false
	for i, s := range w.segs {
		// A sealed segment's checksums go to the next Open (sums.go); the
		// newest one has none.
		if i < len(w.segs)-1 && err == nil && w.keepSums(s) {
			kept = true
		}
		w.discardSums(s)
		if cerr := s.close(); err == nil && cerr != nil {
			err = errorf("close: %w", cerr)
		}
	}
	for _, r := range w.retired {
		// A recycle-* file stays for the next Open, with its checksums.
		if r.seg.recycle && err == nil && w.keepSums(r.seg) {
			kept = true
		}
		w.discardSums(r.seg)
		_ = r.seg.close()
	}
	w.segs, w.retired = nil, nil
	if w.keepPoolSums(err == nil) {
		kept = true
	}
	w.closePool()
	if kept {
		if serr := w.fsys.SyncDir(w.dir); serr != nil {
			w.log.Debug("kraft/wal: directory fsync after keeping checksums", "err", serr)
		}
	}
	w.dropQueued()
	w.prepMu.Lock()
	if p := w.prepared; p != nil {
		w.reserved = append(w.reserved, p)
		w.prepared = nil
	}
	w.prepMu.Unlock()
	for _, p := range w.reserved {
		_ = p.f.Close()
		_ = w.fsys.Remove(p.path)
		if p.priorPath != "" {
			_ = w.fsys.Remove(p.priorPath)
		}
	}
	w.reserved = nil
	if cerr := w.state.f.Close(); err == nil && cerr != nil {
		err = errorf("close: %w", cerr)
	}
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return err
}
