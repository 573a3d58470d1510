package wal

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Segment recycling (Options.RecycleSegments). A segment that compaction
// retires is renamed recycle-<name> instead of removed; once no view can
// alias it any more (the lifetime rule, closeRetiredLocked) it joins a
// bounded pool, and the preparer hands it out as the next segment instead
// of creating and zero-filling a fresh file: the zeros' writes were the
// largest cost a measurement isolated at high load (perf/results/
// speedups.md, items 59 and 61). Only compaction's segments qualify: every
// record in them precedes the compaction point, so none can ever follow on
// from a record this life writes (indexes must run on exactly), and past
// the new data recovery sees either zeros or that prior content, which the
// prior-content file (prior.go) lets it tell from a torn or damaged
// record. Segments that TruncateSuffix or a snapshot install removed may
// hold records above the new log's end and are always deleted.
//
// The order of the steps, each for a crash between it and the next:
//
//  1. retire: rename <name> -> recycle-<name> (the old name, if it comes
//     back, is below the compaction point and removed as obsolete; Open
//     takes recycle-* files back into the pool, since no view of a past
//     run can alias them, and Close leaves the pool's files for it);
//  2. prepare: fdatasync the file (so the disk holds what is checksummed),
//     checksum its sectors, rename it to prep-<n>.tmp, write and sync
//     prep-<n>.prior, fsync the directory (the old name is gone for good
//     before the file is written again);
//  3. roll: rename prep-<n>.prior -> <new name>.prior, fsync the
//     directory, rename prep-<n>.tmp -> <new name> (a segment is never
//     named before its prior-content file is: a recycled segment without
//     one would look like damage).
const recyclePrefix = "recycle-"

// DefaultRecycleSegments is how many retired segments the pool keeps by
// default: 32 × 64 MiB, about a minute of log at 200,000 small writes/s.
const DefaultRecycleSegments = 32

// retireLocked takes a segment out of the log: a compacted one (recycle)
// is renamed for the pool when recycling is on, any other is unlinked. Its
// prior-content file goes, and its mapping stays alive for the view
// lifetime rule. Holds mu.
func (w *WAL) retireLocked(s *segment, recycle bool) error {
	recycle = recycle && w.opts.RecycleSegments > 0 && int64(len(s.m)) == w.opts.SegmentSizeBytes
	old := s.path
	if recycle {
		to := path.Join(w.dir, recyclePrefix+path.Base(s.path))
		if err := w.fsys.Rename(s.path, to); err != nil {
			return w.setFatal(&FatalError{Op: "segment rename", Err: err})
		}
		s.path = to
	} else if err := w.fsys.Remove(s.path); err != nil {
		return w.setFatal(&FatalError{Op: "segment remove", Err: err})
	}
	if s.hasPrior {
		if err := w.fsys.Remove(priorName(old)); err != nil {
			return w.setFatal(&FatalError{Op: "prior-content file remove", Err: err})
		}
		s.hasPrior = false
	}
	s.recycle = recycle
	for i, u := range w.unsynced {
		if u == s {
			w.unsynced = append(w.unsynced[:i], w.unsynced[i+1:]...)
			break
		}
	}
	w.retired = append(w.retired, retiredSegment{seg: s, epoch: w.epoch})
	return nil
}

// releaseRetired disposes of a retired segment that no view can alias any
// more: into the pool if it may be recycled and there is room, else
// queued to be closed and, if it was kept for recycling, removed. While
// closing, a recyclable one joins the pool all the same (Close leaves the
// pool's files, and their checksums, for the next Open), or is closed and
// left for the next Open, which pools or removes it. Holds mu.
func (w *WAL) releaseRetired(s *segment) {
	if s.recycle {
		w.prepMu.Lock()
		room := len(w.pool) < w.opts.RecycleSegments
		if room {
			w.pool = append(w.pool, s)
		}
		w.prepMu.Unlock()
		if room {
			return
		}
		if w.closed {
			w.discardSums(s)
			_ = s.close()
			return
		}
	}
	w.queueDrop(s)
}

// queueDrop hands a released segment to the dropper goroutine to close
// (and remove). Unmapping and closing the last reference to a segment's
// file frees its blocks: ~30 ms for a 64 MiB file on the development VM,
// 0.6 s for the 21 segments one compaction released, during which mu was
// held and neither appends nor sync rounds could run. The file's name is
// already gone or is a recycle-* name that Open cleans up, so closing it
// later changes nothing on disk but when its space comes back.
func (w *WAL) queueDrop(s *segment) {
	w.prepMu.Lock()
	w.drops = append(w.drops, s)
	w.prepMu.Unlock()
	kick(w.dropKick)
}

// dropLoop is the dropper goroutine. It is not the preparer's: an append
// that needs the next segment waits for the preparer with mu held, so the
// preparer must not spend a good part of a second dropping first.
func (w *WAL) dropLoop() { w.serveKicks(w.dropKick, w.dropQueued) }

// dropQueued drops the segments queueDrop queued: on the dropper
// goroutine, and in Close after it stopped.
func (w *WAL) dropQueued() {
	for _, s := range takeQueued(w, &w.drops) {
		w.dropRecyclable(s)
	}
}

// serveKicks runs do each time kick fires, until the WAL stops: the body
// of the dropper and summer goroutines.
func (w *WAL) serveKicks(kick <-chan struct{}, do func()) {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-kick:
		}
		do()
	}
}

// takeQueued empties the queue q (guarded by prepMu) and returns what it
// held.
func takeQueued[T any](w *WAL, q *[]T) []T {
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	items := *q
	*q = nil
	return items
}

// dropRecyclable closes s and removes it if it was kept for recycling,
// and its cached checksums.
func (w *WAL) dropRecyclable(s *segment) {
	w.discardSums(s)
	_ = s.close()
	if s.recycle {
		_ = w.fsys.Remove(s.path)
	}
}

// takeRecycled pops a pooled segment (nil if none).
func (w *WAL) takeRecycled() *segment {
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	n := len(w.pool)
	if n == 0 {
		return nil
	}
	s := w.pool[n-1]
	w.pool[n-1] = nil
	w.pool = w.pool[:n-1]
	return s
}

// prepareRecycled turns a pooled segment into the prepared segment
// prep-<seq>.tmp with its prior-content file (step 2 above). On failure
// the file is dropped; the caller prepares a fresh one instead.
func (w *WAL) prepareRecycled(seq uint64, s *segment) (*preparedSegment, error) {
	name := path.Join(w.dir, fmt.Sprintf("prep-%d.tmp", seq))
	pname := path.Join(w.dir, fmt.Sprintf("prep-%d%s", seq, priorSuffix))
	fail := func(err error) (*preparedSegment, error) {
		w.dropRecyclable(s)
		_ = w.fsys.Remove(pname)
		return nil, errorf("recycling segment %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fail(err)
	}
	sums, cached := w.cachedSums(s)
	if cached {
		w.sumsCached.Add(1)
		if invariants {
			w.checkCachedSums(s, sums)
		}
	} else {
		var err error
		if sums, err = readSums(fileReader(s.f), int64(len(s.m)), w.stop); err != nil {
			return fail(err)
		}
		w.sumsRead.Add(1)
	}
	s.releaseMapped() // what its last life's reads mapped
	if err := w.fsys.Rename(s.path, name); err != nil {
		return fail(err)
	}
	s.path = name
	if err := writePrior(w.fsys, pname, sums, true); err != nil {
		return fail(err)
	}
	if err := w.fsys.SyncDir(w.dir); err != nil {
		return fail(err)
	}
	if p, ok := s.f.(priorPadder); ok {
		p.padOverPrior()
	}
	w.recycled.Add(1)
	return &preparedSegment{path: name, f: s.f, m: s.m, priorPath: pname}, nil
}

// SegmentsRecycled counts segments the preparer handed out again instead
// of creating fresh ones (metrics, benchmarks).
func (w *WAL) SegmentsRecycled() uint64 { return w.recycled.Load() }

// SegmentsReadBack counts the recycled segments whose sectors the preparer
// checksummed by reading the segment, for want of checksums the summer
// cached when it was sealed (sums.go): those sealed before a crash (a
// clean Close keeps the cache for the next Open), or recycled before the
// summer got to them.
func (w *WAL) SegmentsReadBack() uint64 { return w.sumsRead.Load() }

// checkCachedSums panics unless sums are the checksums of s as it is now
// (invariants builds: it reads the whole segment).
func (w *WAL) checkCachedSums(s *segment, sums []uint64) {
	want := sectorSums(s.m)
	for k := range want {
		if sums[k] != want[k] {
			panic(fmt.Sprintf("kraft: BUG: %s: cached checksum of sector %d is stale", s.path, k))
		}
	}
}

// closePool closes every pooled segment and leaves its file for the next
// Open (Close, and a failed Open).
func (w *WAL) closePool() {
	w.prepMu.Lock()
	pool := w.pool
	w.pool = nil
	w.prepMu.Unlock()
	for _, s := range pool {
		w.discardSums(s)
		_ = s.close()
	}
}

// keepPoolSums hands the pooled segments' cached checksums on to the next
// Open (Close; sums.go), if ok, and reports whether it kept any.
func (w *WAL) keepPoolSums(ok bool) bool {
	if !ok {
		return false
	}
	w.prepMu.Lock()
	pool := slices.Clone(w.pool)
	w.prepMu.Unlock()
	kept := false
	for _, s := range pool {
		if w.keepSums(s) {
			kept = true
		}
	}
	return kept
}

// adoptPooled takes a retired segment that an earlier run left
// (recycle-<name>) back into the pool if there is room and it has the
// segment size, and reports whether it did; the caller removes the file
// otherwise. Such a file came from compaction after the compaction point
// covering all its records was durable, and compaction points only grow,
// so its records still precede every index the log will hold.
func (w *WAL) adoptPooled(name string) bool {
	base := path.Base(name)
	if !strings.HasPrefix(base, recyclePrefix) || !strings.HasSuffix(base, segmentSuffix) {
		return false
	}
	w.prepMu.Lock()
	defer w.prepMu.Unlock()
	if len(w.pool) >= w.opts.RecycleSegments {
		return false
	}
	f, err := w.fsys.OpenRW(name)
	if err != nil {
		return false
	}
	if p, ok := f.(pagePadder); ok {
		p.padWritesToPage()
	}
	size, err := f.Size()
	if err != nil || size != w.opts.SegmentSizeBytes {
		_ = f.Close()
		return false
	}
	m, err := f.Map()
	if err != nil {
		_ = f.Close()
		return false
	}
	w.pool = append(w.pool, &segment{path: name, f: f, m: m, recycle: true})
	return true
}
