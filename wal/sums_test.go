package wal

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitSealedSums waits until every sealed live segment (all but the
// newest) has cached checksums.
func waitSealedSums(t *testing.T, w *WAL) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.RLock()
		missing := ""
		for _, s := range w.segs[:max(len(w.segs)-1, 0)] {
			s.sumMu.Lock()
			if s.sumsFile == "" {
				missing = s.path
			}
			s.sumMu.Unlock()
		}
		w.mu.RUnlock()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cached checksums for sealed segment %s", missing)
		}
		time.Sleep(time.Millisecond)
	}
}

// cachedFor returns the checksums cached for s (nil if none), leaving them
// in place.
func cachedFor(t *testing.T, w *WAL, s *segment) []uint64 {
	t.Helper()
	s.sumMu.Lock()
	name := s.sumsFile
	s.sumMu.Unlock()
	if name == "" {
		return nil
	}
	sums, err := readPrior(w.fsys, name, int64(len(s.m)))
	if err != nil {
		t.Fatalf("cached checksums %s: %v", name, err)
	}
	return sums
}

// sealedWAL opens a WAL of 4 KiB segments on a MemFS, appends n records
// of 100 bytes from index 1 (40 fill a segment, leaving 96 bytes), syncs
// and waits until the sealed segments' checksums are cached.
func sealedWAL(t *testing.T, n int) (*MemFS, *WAL) {
	t.Helper()
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, 4096))
	t.Cleanup(func() { w.Close() })
	mustAppend(t, w, fixedEntries(1, 1, n, 100))
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	waitSealedSums(t, w)
	return fsys, w
}

// liveSegment returns the WAL's i-th live segment.
func liveSegment(w *WAL, i int) *segment {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.segs[i]
}

// TestRecycledFromCachedSums: segments sealed in this run are recycled
// from the checksums the summer cached, without reading them back; Close
// removes the cache; after a reopen, segments written before it are read
// back (the cache is not trusted across runs).
func TestRecycledFromCachedSums(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	w := mustOpen(t, "/d", opts)
	rng := rand.New(rand.NewPCG(7, 8))
	var all []testEntry
	for round := 0; round < 300; round++ {
		all = churn(t, w, rng, all, round, 60, 20, 40)
		// Let the summer keep up: a segment recycled before it was
		// summed is read back, which is what this test rules out.
		waitSealedSums(t, w)
	}
	if got := w.SegmentsRecycled(); got < 10 {
		t.Fatalf("only %d segments recycled", got)
	}
	if got := w.SegmentsReadBack(); got != 0 {
		t.Fatalf("%d of %d recycled segments read back in the run that sealed them", got, w.SegmentsRecycled())
	}
	if w.sumsCached.Load() != w.SegmentsRecycled() {
		t.Fatalf("%d recycled from cached checksums, %d recycled", w.sumsCached.Load(), w.SegmentsRecycled())
	}
	sums := 0
	for _, n := range listDir(t, fsys, "/d") {
		if strings.HasPrefix(n, sumsPrefix) {
			sums++
		}
	}
	if sums == 0 {
		t.Fatal("no cache files while running")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range listDir(t, fsys, "/d") {
		if strings.HasPrefix(n, sumsPrefix) {
			t.Fatalf("Close left %s", n)
		}
	}

	w = mustOpen(t, "/d", opts)
	defer w.Close()
	for round := 0; w.SegmentsRecycled() < 3; round++ {
		if round > 1000 {
			t.Fatal("nothing recycled after the reopen")
		}
		all = churn(t, w, rng, all, round, 60, 20, 40)
	}
	if w.SegmentsReadBack() == 0 {
		t.Fatal("after a reopen, segments sealed before it were recycled without reading them back")
	}
}

// fixedEntries builds n entries of records of exactly size bytes.
func fixedEntries(first, term uint64, n, size int) []testEntry {
	es := make([]testEntry, n)
	for i := range es {
		p := make([]byte, size-32)
		for j := range p {
			p[j] = byte(first) + byte(i) + byte(j) + byte(term)
		}
		es[i] = testEntry{index: first + uint64(i), term: term, payload: p}
	}
	return es
}

// TestTruncateMakesCachedSumsStale: TruncateSuffix makes a sealed segment
// the newest again, cut in its middle or whole; appends then change its
// bytes, and when it is sealed again its cached checksums must be those of
// its new bytes, not of the old ones.
func TestTruncateMakesCachedSumsStale(t *testing.T) {
	for _, cut := range []string{"middle", "boundary"} {
		t.Run(cut, func(t *testing.T) {
			_, w := sealedWAL(t, 100)
			second := liveSegment(w, 1) // indexes 41..80, sealed
			old := cachedFor(t, w, second)
			if old == nil {
				t.Fatal("no cached checksums for the second segment")
			}

			from := uint64(61) // cut in the middle of the second segment
			if cut == "boundary" {
				from = 81 // removes the third segment only
			}
			if err := w.TruncateSuffix(from); err != nil {
				t.Fatal(err)
			}
			if cachedFor(t, w, second) != nil {
				t.Fatal("the newest segment kept cached checksums")
			}
			// New bytes in the second segment (term 2), then seal it
			// again. At the boundary a 64-byte record fits its tail.
			es := fixedEntries(from, 2, 1, 64)
			es = append(es, fixedEntries(from+1, 2, 60, 100)...)
			mustAppend(t, w, es)
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			waitSealedSums(t, w)
			got := cachedFor(t, w, second)
			want := sectorSums(second.m)
			if slices.Equal(want, old) {
				t.Fatal("the test did not change the segment's bytes")
			}
			if !slices.Equal(got, want) {
				t.Fatal("cached checksums of a segment sealed again are not those of its bytes")
			}
		})
	}
}

// TestSummerStopsForAChangedSegment: checksums begun before the segment
// changed (a later generation) are not cached.
func TestSummerStopsForAChangedSegment(t *testing.T) {
	fsys, w := sealedWAL(t, 50)
	s := liveSegment(w, 0)
	s.sumMu.Lock()
	stale := sumJob{seg: s, gen: s.sumGen}
	s.sumMu.Unlock()
	w.discardSums(s) // the change: a new generation
	before := len(listDir(t, fsys, "/d"))
	w.sumSealed(stale)
	if cachedFor(t, w, s) != nil {
		t.Fatal("checksums of an older generation were cached")
	}
	if after := len(listDir(t, fsys, "/d")); after != before {
		t.Fatalf("%d files after a discarded summing, %d before", after, before)
	}
}

// TestDamagedCachedSumsAreNotUsed: cached checksums whose file does not
// decode are not used: the preparer reads the segment instead, and the
// recycled segment's prior-content file holds the sums of its bytes.
func TestDamagedCachedSumsAreNotUsed(t *testing.T) {
	fsys, w := sealedWAL(t, 100) // segments from 1, 41, 81
	first := liveSegment(w, 0)
	first.sumMu.Lock()
	name := first.sumsFile
	first.sumMu.Unlock()
	f, err := fsys.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("not checksums"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := sectorSums(first.m)

	// Retire the first segment, then release it into the pool (a later
	// compaction ends the views' lifetime).
	if err := w.CompactPrefix(40, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.CompactPrefix(41, 1); err != nil {
		t.Fatal(err)
	}
	releaseRetired(w)
	next := uint64(101)
	for w.SegmentsRecycled() == 0 {
		if next > 2000 {
			t.Fatal("the pooled segment was never recycled")
		}
		mustAppend(t, w, fixedEntries(next, 1, 40, 100))
		next += 40
	}
	if got := w.SegmentsReadBack(); got != 1 {
		t.Fatalf("%d segments read back, want the one whose cache was damaged", got)
	}
	if _, ok := fsys.ReadFile(name); ok {
		t.Fatalf("the damaged cache file %s is still there", name)
	}
	var prior string
	for _, n := range listDir(t, fsys, "/d") {
		if strings.HasSuffix(n, priorSuffix) {
			prior = "/d/" + n
		}
	}
	if prior == "" {
		t.Fatal("no prior-content file for the recycled segment")
	}
	got, err := readPrior(fsys, prior, 4096)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("prior-content file %s: %v; not the sums of the segment's old bytes", prior, err)
	}
}
