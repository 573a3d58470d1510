package wal

import (
	"errors"
	"fmt"
	"path"

	"github.com/cespare/xxhash/v2"
)

// Checksums of sealed segments, taken while their pages are cached.
//
// Before a pooled segment is written again, the preparer needs the
// checksum of each of its sectors (prior.go). Taken then, from the
// mapping, that reads the whole segment back, and at kraftd's defaults a
// node's log outgrows the page cache: the reads went to the disk, 64 MiB
// per segment, in bursts at the device's limit (perf/results/speedups.md,
// item 63). A segment's bytes stop changing when it is sealed (the roll
// fdatasyncs it, and appends go to the next one), unless TruncateSuffix
// makes it the newest again. So the summer goroutine checksums each sealed
// segment right after its roll, while its pages are still cached, and
// keeps the result in a cache file, sums-<n>.tmp (1 MiB per 64 MiB
// segment: held in memory, the checksums would be 1/64 of the log). The
// preparer reads that file instead of the segment.
//
// The cache is trusted only by a run that knows every change to its
// segments since it was written. Within a run, what may change a segment's
// bytes (TruncateSuffix keeping it as the newest, the preparer taking it
// for a new life, close) bumps its sumGen under sumMu, and checksums begun
// under an older generation are thrown away.
//
// Across a clean restart the cache is handed on: Close syncs each sealed
// or pooled segment that has one, then its cache file, and renames that
// to <segment>.sums (keepSums); the next Open takes each such file back as
// its own cache of that segment, under a sums-<n>.tmp name, and fsyncs the
// directory before anything else may write (adoptKeptSums). So a .sums
// name exists only between a Close and the next Open, while no process
// writes the log, and nothing can change a segment behind its kept
// checksums. After a crash there is no .sums file for what the crashed run
// had cached, and Open removes its sums-<n>.tmp files: those segments are
// read back as before. Without this, a restart of a node with a few GiB of
// log read every segment of it back from the disk as it was reused
// (perf/results/speedups.md, items 66 and 67).

const (
	sumsPrefix = "sums-"
	// keptSumsSuffix names a segment's checksums that Close kept for the
	// next Open: <segment file>.sums.
	keptSumsSuffix = ".sums"
)

// sumJob is a sealed segment for the summer, with its generation then.
type sumJob struct {
	seg *segment
	gen uint64
}

// queueSumsLocked hands the segment a roll just sealed (and synced) to
// the summer, if it may ever be recycled. Holds mu.
func (w *WAL) queueSumsLocked(s *segment) {
	if w.opts.RecycleSegments <= 0 || int64(len(s.m)) != w.opts.SegmentSizeBytes {
		return
	}
	s.sumMu.Lock()
	j := sumJob{seg: s, gen: s.sumGen}
	s.sumMu.Unlock()
	w.prepMu.Lock()
	w.toSum = append(w.toSum, j)
	w.prepMu.Unlock()
	kick(w.sumKick)
}

// sumLoop is the summer goroutine.
func (w *WAL) sumLoop() {
	w.serveKicks(w.sumKick, func() {
		for _, j := range takeQueued(w, &w.toSum) {
			w.sumSealed(j)
		}
	})
}

// errChanged: a segment changed while the summer read it.
var errChanged = errors.New("segment changed")

// sumSealed checksums j's segment and caches the result, unless the
// segment changes (or the WAL closes) meanwhile: each step of the read
// (readSums) holds sumMu and checks the generation first.
func (w *WAL) sumSealed(j sumJob) {
	s := j.seg
	sums, err := readSums(func(b []byte, off int64) error {
		s.sumMu.Lock()
		defer s.sumMu.Unlock()
		if s.sumGen != j.gen || s.f == nil {
			return errChanged
		}
		_, err := s.f.ReadAt(b, off)
		return err
	}, w.opts.SegmentSizeBytes, w.stop)
	if err != nil {
		return
	}
	name := path.Join(w.dir, fmt.Sprintf("%s%d.tmp", sumsPrefix, w.sumSeq))
	w.sumSeq++
	if err := writePrior(w.fsys, name, sums, false); err != nil {
		// Only a cache: the preparer reads the segment instead.
		_ = w.fsys.Remove(name)
		w.log.Debug("kraft/wal: could not cache a sealed segment's checksums", "err", err)
		return
	}
	s.sumMu.Lock()
	kept := s.sumGen == j.gen && s.f != nil && s.sumsFile == ""
	if kept {
		s.sumsFile = name
	}
	s.sumMu.Unlock()
	if !kept {
		_ = w.fsys.Remove(name)
	}
}

// takeSums makes s's cached checksums stale and returns their file, which
// the caller now owns ("" if none).
func (s *segment) takeSums() string {
	name, _ := s.takeSumsKept()
	return name
}

// takeSumsKept is takeSums that also reports whether the checksums came
// from an earlier run's Close.
func (s *segment) takeSumsKept() (string, bool) {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	s.sumGen++
	name, kept := s.sumsFile, s.sumsKept
	s.sumsFile, s.sumsKept = "", false
	return name, kept
}

// discardSums makes s's cached checksums stale and removes their file.
func (w *WAL) discardSums(s *segment) {
	if name := s.takeSums(); name != "" {
		_ = w.fsys.Remove(name)
	}
}

// cachedSums takes s's cached checksums (false if there are none or their
// file cannot be read back whole) and removes their file. The preparer
// calls it for the pooled segment it took.
func (w *WAL) cachedSums(s *segment) ([]uint64, bool) {
	name, kept := s.takeSumsKept()
	if name == "" {
		return nil, false
	}
	defer func() { _ = w.fsys.Remove(name) }()
	sums, err := readPrior(w.fsys, name, int64(len(s.m)))
	if err != nil {
		// Not the log's damage: the advice a CorruptionError carries
		// (verify-data, data recovery) does not apply to a cache.
		detail := err.Error()
		var ce *CorruptionError
		if errors.As(err, &ce) {
			detail = ce.Detail
		}
		w.log.Warn("kraft/wal: cached checksums unreadable, reading the segment instead (a cache: nothing to repair)",
			"file", name, "segment", s.path, "detail", detail)
		return nil, false
	}
	if kept {
		if k, err := sampleMismatch(s.f, sums, int64(len(s.m)), s.end); err != nil || k >= 0 {
			w.log.Warn("kraft/wal: checksums kept by the last shutdown do not match the segment; reading it instead",
				"segment", s.path, "sector", k, "err", err)
			return nil, false
		}
	}
	return sums, true
}

// sumSamples is how many sectors of a segment sampleMismatch reads: a few
// KiB, against the whole segment that a read-back reads.
const sumSamples = 16

// sampleMismatch checks sumSamples sectors of f (size bytes), spread from
// its first to its last, and the two on either side of end (where its data
// ends, if known: 0 if not), against sums, and returns the first that
// differs (-1 if none). Checksums an earlier run kept are the segment's
// own unless something outside kraftd changed the directory: a file
// copied in from another node's, or an older kraftd that ignores .sums
// files run in between and changed the segment (cut or rewrote its tail:
// the sectors around its end). Trusted wrongly, they would go into the
// segment's prior-content file at its next life, and recovery could then
// take its old bytes past the new data for damage; so they are sampled.
func sampleMismatch(f File, sums []uint64, size, end int64) (int, error) {
	var b [sectorBytes]byte
	n := len(sums)
	ks := make([]int, 0, sumSamples+2)
	for i := range sumSamples {
		ks = append(ks, i*(n-1)/(sumSamples-1))
	}
	if end > 0 {
		ks = append(ks, int((end-1)/sectorBytes), int(end/sectorBytes))
	}
	for _, k := range ks {
		if k >= n {
			continue
		}
		off := int64(k) * sectorBytes
		sb := b[:min(sectorBytes, size-off)]
		if _, err := f.ReadAt(sb, off); err != nil {
			return k, err
		}
		if xxhash.Sum64(sb) != sums[k] {
			return k, nil
		}
	}
	return -1, nil
}

// keepSums hands s's cached checksums on to the next Open (Close): the
// segment is synced, so the disk holds the bytes they are the checksums
// of, then the cache file, which is then named <segment>.sums. It reports
// whether it kept them; the caller fsyncs the directory. Holds no lock the
// summer takes (it has stopped).
func (w *WAL) keepSums(s *segment) bool {
	name := s.takeSums()
	if name == "" {
		return false
	}
	err := s.f.Sync()
	if err == nil {
		err = syncFileNamed(w.fsys, name)
	}
	if err == nil {
		err = w.fsys.Rename(name, s.path+keptSumsSuffix)
	}
	if err != nil {
		// Only a cache: the next run reads the segment back instead.
		_ = w.fsys.Remove(name)
		w.log.Debug("kraft/wal: could not keep a segment's checksums", "segment", s.path, "err", err)
		return false
	}
	return true
}

// syncFileNamed fsyncs the file name.
func syncFileNamed(fsys FS, name string) error {
	f, err := fsys.OpenRW(name)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// adoptKeptSums takes the checksums an earlier Close kept (kept: segment
// path -> its .sums file) back as this run's cache of the sealed live
// segments and the pooled ones, and removes the rest: those of a newest
// segment (appends will change it), of segments Open removed, and any
// without their segment. It reports whether it changed the directory; the
// caller must then fsync it before the log is written, so that no .sums
// name outlives this Open (Open, before the goroutines start).
func (w *WAL) adoptKeptSums(kept map[string]string) (bool, error) {
	if len(kept) == 0 {
		return false, nil
	}
	adopt := func(s *segment) error {
		from, ok := kept[s.path]
		if !ok {
			return nil
		}
		delete(kept, s.path)
		to := path.Join(w.dir, fmt.Sprintf("%s%d.tmp", sumsPrefix, w.sumSeq))
		w.sumSeq++
		if err := w.fsys.Rename(from, to); err != nil {
			return errorf("rename %s: %w", from, err)
		}
		s.sumsFile, s.sumsKept = to, true
		return nil
	}
	for _, s := range w.segs[:max(len(w.segs)-1, 0)] {
		if err := adopt(s); err != nil {
			return true, err
		}
	}
	for _, s := range w.pool {
		if err := adopt(s); err != nil {
			return true, err
		}
	}
	for _, name := range kept {
		if err := w.fsys.Remove(name); err != nil {
			return true, errorf("remove %s: %w", name, err)
		}
		w.recovery.RemovedFiles = append(w.recovery.RemovedFiles, name)
	}
	return true, nil
}
