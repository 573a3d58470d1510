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

// churnedWAL opens a WAL of 4 KiB segments on a MemFS and churns it for
// rounds (appends, compactions, recycling), waiting after each round until
// the sealed segments' checksums are cached: a segment recycled before the
// summer got to it is read back, which some tests rule out.
func churnedWAL(t *testing.T, seed uint64, rounds int) (*MemFS, Options, *WAL, *rand.Rand, []testEntry) {
	t.Helper()
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	w := mustOpen(t, "/d", opts)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	var all []testEntry
	for round := range rounds {
		all = churn(t, w, rng, all, round, 60, 20, 40)
		waitSealedSums(t, w)
	}
	return fsys, opts, w, rng, all
}

// TestRecycledFromCachedSums: segments sealed in this run are recycled
// from the checksums the summer cached, without reading them back; Close
// keeps them as <segment>.sums, and after a reopen segments sealed before
// it are recycled from those, still without reading them back.
func TestRecycledFromCachedSums(t *testing.T) {
	fsys, opts, w, rng, all := churnedWAL(t, 7, 300)
	if got := w.SegmentsRecycled(); got < 10 {
		t.Fatalf("only %d segments recycled", got)
	}
	if got := w.SegmentsReadBack(); got != 0 {
		t.Fatalf("%d of %d recycled segments read back in the run that sealed them", got, w.SegmentsRecycled())
	}
	if w.sumsCached.Load() != w.SegmentsRecycled() {
		t.Fatalf("%d recycled from cached checksums, %d recycled", w.sumsCached.Load(), w.SegmentsRecycled())
	}
	if countNames(t, fsys, sumsPrefix, ".tmp") == 0 {
		t.Fatal("no cache files while running")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countNames(t, fsys, sumsPrefix, ".tmp"); n != 0 {
		t.Fatalf("Close left %d cache files", n)
	}
	kept := countNames(t, fsys, "", keptSumsSuffix)
	if pooled := countNames(t, fsys, recyclePrefix, segmentSuffix); kept <= pooled || pooled == 0 {
		t.Fatalf("Close kept %d checksum files for %d pooled segments and the sealed ones", kept, pooled)
	}

	w = mustOpen(t, "/d", opts)
	defer w.Close()
	if n := countNames(t, fsys, "", keptSumsSuffix); n != 0 {
		t.Fatalf("Open left %d kept checksum files", n)
	}
	for round := 0; w.SegmentsRecycled() < uint64(kept); round++ {
		if round > 1000 {
			t.Fatalf("%d segments recycled after the reopen", w.SegmentsRecycled())
		}
		all = churn(t, w, rng, all, round, 60, 20, 40)
		waitSealedSums(t, w)
	}
	if got := w.SegmentsReadBack(); got != 0 {
		t.Fatalf("after a reopen, %d of %d recycled segments were read back", got, w.SegmentsRecycled())
	}
}

// TestCachedSumsAfterACrash: a run that ends without Close keeps no
// checksums: its cache files are removed at the next Open, and segments
// sealed before it are read back to be recycled.
func TestCachedSumsAfterACrash(t *testing.T) {
	fsys, opts, w, rng, all := churnedWAL(t, 9, 200)
	crashed := fsys.Crash(rng)
	w.Close()
	opts.FS = crashed
	w = mustOpen(t, "/d", opts)
	defer w.Close()
	if n := countNames(t, crashed, sumsPrefix, ".tmp") + countNames(t, crashed, "", keptSumsSuffix); n != 0 {
		t.Fatalf("%d checksum files after a crash and Open", n)
	}
	all = all[:w.LastIndex()]
	for round := 0; w.SegmentsRecycled() < 3; round++ {
		if round > 1000 {
			t.Fatal("nothing recycled after the crash")
		}
		all = churn(t, w, rng, all, round, 60, 20, 40)
	}
	if w.SegmentsReadBack() == 0 {
		t.Fatal("after a crash, segments sealed before it were recycled without reading them back")
	}
}

// TestKeptSumsMatchAcrossRestarts: whatever sequence of clean closes and
// crashes a log goes through, every checksum cache a WAL holds after Open
// is that of its segment's bytes, and the log reads back whole.
func TestKeptSumsMatchAcrossRestarts(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		fsys := NewMemFS()
		opts := memOpts(fsys, 4096)
		rng := rand.New(rand.NewPCG(seed, 99))
		var all []testEntry
		adopted := 0
		for life := 0; life < 8; life++ {
			w := mustOpen(t, "/d", opts)
			adopted += checkCachedSumsMatch(t, w)
			if err := sameEntries(readAll(t, w), all[w.FirstIndex()-1:]); err != nil {
				t.Fatalf("seed %d life %d: %v", seed, life, err)
			}
			for round := 0; round < 40+rng.IntN(80); round++ {
				all = churn(t, w, rng, all, round, 60, 10, 30)
				if rng.IntN(4) == 0 {
					time.Sleep(time.Millisecond) // let the summer catch up, sometimes
				}
				if rng.IntN(25) == 0 && w.LastIndex() > w.FirstIndex()+5 {
					from := w.LastIndex() - uint64(rng.IntN(5))
					if err := w.TruncateSuffix(from); err != nil {
						t.Fatal(err)
					}
					all = all[:from-1]
				}
			}
			if rng.IntN(2) == 0 {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if rng.IntN(2) == 0 {
					// Power lost after a clean close: what Close kept
					// must be durable, with the bytes it describes.
					fsys = fsys.Crash(rng)
					opts.FS = fsys
				}
				continue
			}
			crashed := fsys.Crash(rng)
			w.Close()
			fsys = crashed
			opts.FS = fsys
			// What the crash kept: the durable prefix at least.
			w2 := mustOpen(t, "/d", opts)
			all = all[:w2.LastIndex()]
			w2.Close()
		}
		if adopted == 0 {
			t.Fatalf("seed %d: no Open took back kept checksums", seed)
		}
	}
}

// TestKeptSumsOfANewestSegmentAreDropped: when Open finds the newest
// segment cut to nothing and removes it, the segment before it becomes the
// newest, which appends will change: the checksums Close kept for it while
// it was sealed are not taken back.
func TestKeptSumsOfANewestSegmentAreDropped(t *testing.T) {
	fsys, w := sealedWAL(t, 100) // segments from 1, 41, 81
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	second := "/d/" + segmentName(41)
	if _, ok := fsys.ReadFile(second + keptSumsSuffix); !ok {
		t.Fatal("Close kept no checksums for the second segment")
	}
	if !fsys.Truncate("/d/"+segmentName(81), 0) {
		t.Fatal("no third segment")
	}
	opts := memOpts(fsys, 4096)
	w = mustOpen(t, "/d", opts)
	defer w.Close()
	if got := w.LastIndex(); got != 80 {
		t.Fatalf("last index %d after the third segment was cut to nothing, want 80", got)
	}
	if got := cachedFor(t, w, liveSegment(w, 1)); got != nil {
		t.Fatal("the newest segment took back checksums kept while it was sealed")
	}
	if got := cachedFor(t, w, liveSegment(w, 0)); got == nil {
		t.Fatal("the first segment did not take back its kept checksums")
	}
	if _, ok := fsys.ReadFile(second + keptSumsSuffix); ok {
		t.Fatal("Open left the newest segment's kept checksums")
	}
}

// TestKeptSumsFromElsewhereAreNotTrusted: checksum files that an earlier
// Close did not write for these segments (another node's, copied in) are
// caught by the sample check and the segments read back instead; the log
// then survives a crash and reopens whole. A .sums file without its
// segment is removed.
func TestKeptSumsFromElsewhereAreNotTrusted(t *testing.T) {
	fsys, opts, w, rng, all := churnedWAL(t, 21, 300)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wrong := 0
	for _, name := range listDir(t, fsys, "/d") {
		if !strings.HasSuffix(name, keptSumsSuffix) {
			continue
		}
		sums := make([]uint64, 4096/sectorBytes)
		for k := range sums {
			sums[k] = rng.Uint64()
		}
		if err := fsys.Remove("/d/" + name); err != nil {
			t.Fatal(err)
		}
		if err := writePrior(fsys, "/d/"+name, sums, true); err != nil {
			t.Fatal(err)
		}
		wrong++
	}
	if wrong == 0 {
		t.Fatal("Close kept no checksums")
	}
	orphan := "/d/" + segmentName(999999) + keptSumsSuffix
	if err := writePrior(fsys, orphan, make([]uint64, 8), true); err != nil {
		t.Fatal(err)
	}

	w = mustOpen(t, "/d", opts)
	if _, ok := fsys.ReadFile(orphan); ok {
		t.Fatal("Open left a .sums file whose segment does not exist")
	}
	for round := 0; w.SegmentsReadBack() < uint64(wrong)/2; round++ {
		if round > 2000 {
			t.Fatalf("%d segments read back, %d recycled: the wrong checksums were used", w.SegmentsReadBack(), w.SegmentsRecycled())
		}
		all = churn(t, w, rng, all, round, 60, 20, 40)
	}
	first := w.FirstIndex()
	crashed := fsys.Crash(nil)
	w.Close()
	opts.FS = crashed
	w = mustOpen(t, "/d", opts)
	defer w.Close()
	if err := sameEntries(readAll(t, w), all[first-1:w.LastIndex()]); err != nil {
		t.Fatal(err)
	}
}

// checkCachedSumsMatch fails unless every cached checksum file of w's
// segments, live and pooled, holds the checksums of its segment's bytes;
// it returns how many there are.
func checkCachedSumsMatch(t *testing.T, w *WAL) int {
	t.Helper()
	w.mu.RLock()
	segs := slices.Clone(w.segs)
	w.mu.RUnlock()
	w.prepMu.Lock()
	segs = append(segs, w.pool...)
	w.prepMu.Unlock()
	n := 0
	for _, s := range segs {
		got := cachedFor(t, w, s)
		if got == nil {
			continue
		}
		n++
		if !slices.Equal(got, sectorSums(s.m)) {
			t.Fatalf("cached checksums of %s are not those of its bytes", s.path)
		}
	}
	return n
}

// countNames counts the files in /d whose names have prefix and suffix.
func countNames(t *testing.T, fsys FS, prefix, suffix string) int {
	t.Helper()
	n := 0
	for _, name := range listDir(t, fsys, "/d") {
		if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) {
			n++
		}
	}
	return n
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

// TestSampleMismatchSeesTheEnd: a change near a segment's data end (an
// older kraftd that ignores .sums files cut or rewrote its tail) falls
// between the spread samples, and the samples on either side of the end
// catch it.
func TestSampleMismatchSeesTheEnd(t *testing.T) {
	fsys := NewMemFS()
	f, err := fsys.Create("/seg")
	if err != nil {
		t.Fatal(err)
	}
	m := make([]byte, 1<<20)
	end := int64(700_000) // data up to here, zeros after
	for i := range m[:end] {
		m[i] = byte(i*13 + 1)
	}
	if _, err := f.WriteAt(m, 0); err != nil {
		t.Fatal(err)
	}
	sums := sectorSums(m)
	if k, err := sampleMismatch(f, sums, int64(len(m)), end); k != -1 || err != nil {
		t.Fatalf("unchanged segment: mismatch at sector %d, %v", k, err)
	}
	// Cut back by 300 bytes: the last data sector is zeroed from there.
	cut := end - 300
	if _, err := f.WriteAt(make([]byte, 300), cut); err != nil {
		t.Fatal(err)
	}
	if k, _ := sampleMismatch(f, sums, int64(len(m)), 0); k != -1 {
		t.Fatalf("the spread samples alone hit sector %d; the test needs a change between them", k)
	}
	if k, err := sampleMismatch(f, sums, int64(len(m)), cut); k < 0 || err != nil {
		t.Fatalf("a cut tail was not seen (sector %d, %v)", k, err)
	}
	// Rewritten past the old end: new bytes where the zeros were.
	if _, err := f.WriteAt(m[cut:end], cut); err != nil { // the old tail back
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("new record bytes"), end); err != nil {
		t.Fatal(err)
	}
	if k, err := sampleMismatch(f, sums, int64(len(m)), end+16); k < 0 || err != nil {
		t.Fatalf("bytes written past the old end were not seen (sector %d, %v)", k, err)
	}
}
