package wal

import (
	"errors"
	"fmt"
	"path"
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
// The cache is trusted only by the run that wrote it, which knows every
// change to its segments since: Open removes the files, and a segment
// written before the last Open is read back as before. Within a run, what
// may change a segment's bytes (TruncateSuffix keeping it as the newest,
// the preparer taking it for a new life, close) bumps its sumGen under
// sumMu, and checksums begun under an older generation are thrown away.

const sumsPrefix = "sums-"

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
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	s.sumGen++
	name := s.sumsFile
	s.sumsFile = ""
	return name
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
	name := s.takeSums()
	if name == "" {
		return nil, false
	}
	defer func() { _ = w.fsys.Remove(name) }()
	sums, err := readPrior(w.fsys, name, int64(len(s.m)))
	if err != nil {
		w.log.Warn("kraft/wal: cached checksums unreadable; reading the segment instead", "file", name, "err", err)
		return nil, false
	}
	return sums, true
}
