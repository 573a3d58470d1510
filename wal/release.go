package wal

// Giving back the memory of mapped pages.
//
// Reads go through each segment's mapping: the scan at Open, Entries views,
// the recovery copy a node makes of its log. Every page read that way stays
// mapped into the process until the segment is closed, and recycled
// segments keep their mapping from one life to the next. After a restart
// that was the whole log (4-5 GiB of RssFile per node on the development
// VM), and at kraftd's defaults a node's log outgrows memory: mapped page
// cache is what the kernel reclaims last and at a cost. Released pages
// stay in the page cache, unmapped, where the kernel reclaims them as it
// does any cached file page; views stay valid (an access maps the page
// again). This costs nothing only because nothing reads the old log again
// after a clean restart: the preparer recycles its segments from the
// checksums the last Close kept (sums.go). Before that, the preparer's
// read-backs of released pages went to the disk again, and the tail after
// a restart was worse (perf/results/speedups.md, items 64, 66 and 67).
//
// Pages are released by ReleaseMapped, the caller's word that it copied
// what it read (a node calls it after copying its log at recovery, which
// also covers the scan at Open: released before that copy, the pages were
// mapped again by it, +0.1 s of start-up for 1.3 M entries); for every
// sealed segment after each roll (the releaser goroutine: what views
// mapped since); and when the preparer takes a pooled segment.

// releaseMapped gives back the memory of s's mapped pages. Advisory: a
// failure is ignored. It holds sumMu, which close takes, so the mapping
// cannot go from under it.
func (s *segment) releaseMapped() {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	if r, ok := s.f.(mappingReleaser); ok {
		_ = r.releaseMapping()
	}
}

// ReleaseMapped gives back the memory of the log's pages that reads mapped
// into this process. Views stay valid. Call it after copying out a large
// part of the log (a node's recovery does); the WAL also does it for sealed
// segments after each roll.
func (w *WAL) ReleaseMapped() {
	w.releaseSegs(false)
}

// releaseSegs releases the mapped pages of the live segments, all of them
// or only the sealed ones. It copies the list under mu and releases off it.
func (w *WAL) releaseSegs(sealedOnly bool) {
	w.mu.RLock()
	segs := w.segs
	if sealedOnly && len(segs) > 0 {
		segs = segs[:len(segs)-1]
	}
	segs = append([]*segment(nil), segs...)
	w.mu.RUnlock()
	for _, s := range segs {
		s.releaseMapped()
	}
}

// releaseLoop is the releaser goroutine: after each roll (releaseKick) it
// releases the sealed segments' mapped pages, one madvise per segment, off
// the append path.
func (w *WAL) releaseLoop() {
	w.serveKicks(w.releaseKick, func() { w.releaseSegs(true) })
}
