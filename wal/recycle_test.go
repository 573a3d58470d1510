package wal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// buildRecycledWAL writes and compacts a log on a MemFS until every live
// segment (at least three, the newest included) is a recycled one and one
// before the newest holds prior records after its data, then
// syncs and closes it. It returns what buildSyncedWAL returns: the live
// entries and each segment's record offsets.
func buildRecycledWAL(t *testing.T, segBytes int64) (*MemFS, []testEntry, map[string][]uint32) {
	t.Helper()
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, segBytes))
	rng := rand.New(rand.NewPCG(21, 22))
	var all []testEntry // from index 1; live ones from FirstIndex
	allRecycled := func() bool {
		w.mu.RLock()
		defer w.mu.RUnlock()
		if len(w.segs) < 3 {
			return false
		}
		withPrior := 0 // older segments with prior bytes after their data
		for i, s := range w.segs {
			if !s.hasPrior {
				return false
			}
			if i < len(w.segs)-1 && firstNonZero(s.m[(s.end+sectorBytes-1)/sectorBytes*sectorBytes:]) >= 0 {
				withPrior++
			}
		}
		return withPrior > 0
	}
	for round := 0; ; round++ {
		if round > 2000 {
			t.Fatal("segments never all recycled")
		}
		// Small records first, large ones later: the segments' second
		// lives end before their first ones did, so prior records follow
		// the data.
		n, size := 1, 30
		if round >= 300 {
			n, size = 1+rng.IntN(3), 1500
		}
		es := makeEntries(rng, uint64(len(all)+1), uint64(1+len(all)/50), n, size)
		mustAppend(t, w, es)
		all = append(all, es...)
		if err := w.WaitDurable(uint64(len(all))); err != nil {
			t.Fatal(err)
		}
		keep := 150
		if round > 340 {
			keep = 12 // about four segments of large records
		}
		if round%10 == 9 && len(all) > keep && (round < 300 || round > 340) {
			upTo := uint64(len(all) - keep)
			if err := w.CompactPrefix(upTo, all[upTo-1].term); err != nil {
				t.Fatal(err)
			}
			releaseRetired(w)
			if round > 340 && allRecycled() {
				break
			}
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if w.SegmentsRecycled() == 0 {
		t.Fatal("SegmentsRecycled is 0")
	}
	offs := map[string][]uint32{}
	for _, s := range w.segs {
		offs[s.path] = append([]uint32(nil), s.offsets...)
	}
	live := all[w.FirstIndex()-1:]
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The pool Close leaves is not what these tests are about, and every
	// Open would take it back (TestPoolSurvivesARestart covers that).
	for _, n := range listDir(t, fsys, "/d") {
		if strings.HasPrefix(n, recyclePrefix) {
			if err := fsys.Remove("/d/" + n); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fsys, live, offs
}

// withPriorBytes lists the segments that hold non-zero bytes after the
// sector their data ends in: a previous life's content.
func withPriorBytes(fsys *MemFS, offs map[string][]uint32) []string {
	var out []string
	for name := range offs {
		seg, _ := fsys.ReadFile(name)
		end := segEnd(fsys, name, offs[name])
		if firstNonZero(seg[(end+sectorBytes-1)/sectorBytes*sectorBytes:]) >= 0 {
			out = append(out, name)
		}
	}
	return out
}

// churn is one round of a compacted log: a durable batch of 1..6 entries
// of up to payload bytes in term 1, and every compactEvery rounds a
// compaction of all but the last keep entries, whose retired segments are
// then released (releaseRetired). It returns all with the batch appended.
func churn(t *testing.T, w *WAL, rng *rand.Rand, all []testEntry, round, payload, compactEvery, keep int) []testEntry {
	t.Helper()
	es := makeEntries(rng, uint64(len(all)+1), 1, 1+rng.IntN(6), payload)
	mustAppend(t, w, es)
	all = append(all, es...)
	if err := w.WaitDurable(uint64(len(all))); err != nil {
		t.Fatal(err)
	}
	if round%compactEvery == compactEvery-1 && len(all) > keep {
		if err := w.CompactPrefix(uint64(len(all)-keep), 1); err != nil {
			t.Fatal(err)
		}
		releaseRetired(w)
	}
	return all
}

// releaseRetired does what the writer goroutine does between rounds: it
// releases the retired segments that no view can alias any more (into the
// pool). Tests whose loop holds the lock most of the time call it after a
// compaction instead of waiting for that goroutine's turn.
func releaseRetired(w *WAL) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.syncing {
		w.durableCnd.Wait()
	}
	w.closeRetiredLocked()
}

func listDir(t *testing.T, fsys FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSegmentsAreRecycled: segments that compaction retired come back as
// new segments (with prior-content files) instead of fresh ones; with
// recycling off, none do. Either way the log reads back whole after a
// reopen, and Close leaves no pooled file behind.
func TestSegmentsAreRecycled(t *testing.T) {
	for _, recycle := range []int{0, -1} {
		fsys := NewMemFS()
		opts := memOpts(fsys, 4096)
		opts.RecycleSegments = recycle
		w := mustOpen(t, "/d", opts)
		rng := rand.New(rand.NewPCG(5, 6))
		var all []testEntry
		priors := 0 // prior-content files seen, summed over the rounds
		for round := 0; round < 400; round++ {
			all = churn(t, w, rng, all, round, 60, 20, 40)
			for _, n := range listDir(t, fsys, "/d") {
				if strings.HasSuffix(n, priorSuffix) {
					priors++
				}
			}
		}
		got := w.SegmentsRecycled()
		switch {
		case recycle == 0 && (got < 3 || priors == 0):
			t.Fatalf("recycling on: %d segments recycled, %d prior-content files seen", got, priors)
		case recycle < 0 && (got != 0 || priors != 0):
			t.Fatalf("recycling off: %d segments recycled, %d prior-content files seen", got, priors)
		}
		live := all[w.FirstIndex()-1:]
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Close leaves the pool's files (and only those) for the next Open.
		pooled := 0
		for _, n := range listDir(t, fsys, "/d") {
			switch {
			case strings.HasPrefix(n, recyclePrefix):
				pooled++
			case isTempName(n):
				t.Fatalf("Close left %s", n)
			}
		}
		if recycle < 0 && pooled > 0 {
			t.Fatalf("recycling off: Close left %d pooled segments", pooled)
		}
		w = mustOpen(t, "/d", opts)
		if err := sameEntries(readAll(t, w), live); err != nil {
			t.Fatalf("recycle %d: after reopen: %v", recycle, err)
		}
		// Nothing removed: the pooled segments Close left were taken back
		// (the preparer may already be using them, so the pool's length
		// says nothing here).
		if len(w.Recovery().RemovedFiles) != 0 || w.Recovery().TornBytes != 0 {
			t.Fatalf("recycle %d: reopen after a clean close repaired %+v", recycle, w.Recovery())
		}
		w.Close()
	}
}

// TestRecycledCorruptionSweep is TestCorruptionSweep on a log whose every
// segment is recycled: past the data they hold their previous life's
// records, not zeros. A flipped bit in a record is still corruption at
// that record, one in the prior content is refused or cut off as torn
// (newest segment) without losing an entry, and one in a prior-content
// file is corruption naming that file.
func TestRecycledCorruptionSweep(t *testing.T) {
	fsys, all, offs := buildRecycledWAL(t, 4096)
	if n := len(withPriorBytes(fsys, offs)); n < 1 {
		t.Fatalf("%d segments hold a previous life's bytes after their data", n)
	}
	sweepCorruption(t, fsys, all, offs)
	opts := memOpts(fsys, 4096)
	for name := range offs {
		prior := priorName(name)
		b, ok := fsys.ReadFile(prior)
		if !ok {
			t.Fatalf("%s has no prior-content file", name)
		}
		for off := int64(0); off < int64(len(b)); off++ {
			fsys.FlipBit(prior, off, uint(off%8))
			_, err := Open("/d", opts)
			if ce := asCorruption(err); ce == nil || ce.File != prior {
				t.Fatalf("%s offset %d: Open = %v", prior, off, err)
			}
			fsys.FlipBit(prior, off, uint(off%8))
		}
	}
	w := mustOpen(t, "/d", opts)
	defer w.Close()
	if err := sameEntries(readAll(t, w), all); err != nil {
		t.Fatal(err)
	}
}

// TestRecycledSegmentNeedsItsPriorFile: without its prior-content file, a
// recycled segment before the newest reads as damaged (its previous
// life's bytes after the data), which is what the file is for.
func TestRecycledSegmentNeedsItsPriorFile(t *testing.T) {
	fsys, _, offs := buildRecycledWAL(t, 4096)
	newest, oldest := "", ""
	for name := range offs {
		newest = max(newest, name)
	}
	for _, name := range withPriorBytes(fsys, offs) {
		if name != newest && (oldest == "" || name < oldest) {
			oldest = name
		}
	}
	if oldest == "" {
		t.Fatal("no segment before the newest holds prior bytes after its data")
	}
	if err := fsys.Remove(priorName(oldest)); err != nil {
		t.Fatal(err)
	}
	_, err := Open("/d", memOpts(fsys, 4096))
	if ce := asCorruption(err); ce == nil || ce.File != oldest || !strings.Contains(ce.Detail, "non-zero bytes after the end of data") {
		t.Fatalf("Open = %v", err)
	}
}

// TestOnlyCompactedSegmentsAreRecycled: segments that TruncateSuffix or a
// snapshot install removed may hold records above the new log's end, so
// they are deleted, never pooled.
func TestOnlyCompactedSegmentsAreRecycled(t *testing.T) {
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, 4096))
	defer w.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	next := uint64(1)
	appendN := func(n int, term uint64) {
		for i := 0; i < n; i++ {
			es := makeEntries(rng, next, term, 4, 60)
			mustAppend(t, w, es)
			next += uint64(len(es))
		}
		if err := w.WaitDurable(next - 1); err != nil {
			t.Fatal(err)
		}
	}
	appendN(60, 1)
	if err := w.TruncateSuffix(20); err != nil {
		t.Fatal(err)
	}
	next = 20
	appendN(5, 2)
	if err := w.CompactPrefix(next+100, 3); err != nil { // a snapshot from a leader, beyond the log
		t.Fatal(err)
	}
	next += 101
	appendN(60, 3)
	if err := w.TruncateSuffix(next - 10); err != nil {
		t.Fatal(err)
	}
	releaseRetired(w)
	w.mu.RLock()
	retired := len(w.retired)
	w.mu.RUnlock()
	w.prepMu.Lock()
	pooled := len(w.pool)
	w.prepMu.Unlock()
	if got := w.SegmentsRecycled(); got != 0 || pooled != 0 {
		t.Fatalf("%d segments recycled, %d pooled after truncations and a snapshot install", got, pooled)
	}
	for _, n := range listDir(t, fsys, "/d") {
		if strings.HasPrefix(n, recyclePrefix) {
			t.Fatalf("%s kept for recycling (%d retired)", n, retired)
		}
	}
}

// TestOpenRemovesRecyclingLeftovers: pooled segments, a prepared segment's
// prior-content file, the prior-content file of a segment that is gone
// and a sealed segment's cached checksums (each a crash's leftover; the
// cache is not trusted across runs) are removed by Open and reported.
func TestOpenRemovesRecyclingLeftovers(t *testing.T) {
	fsys, all, offs := buildRecycledWAL(t, 4096)
	leftovers := []string{"/d/recycle-00000000000000000001.seg", "/d/prep-7.prior", "/d/00000000000000000002.seg.prior", "/d/sums-3.tmp"}
	for _, n := range leftovers {
		f, err := fsys.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("leftover"), 0)
		f.Close()
	}
	w := mustOpen(t, "/d", memOpts(fsys, 4096))
	defer w.Close()
	removed := strings.Join(w.Recovery().RemovedFiles, " ")
	for _, n := range leftovers {
		if _, ok := fsys.ReadFile(n); ok || !strings.Contains(removed, n) {
			t.Fatalf("%s: still there %v, reported removed in %q", n, ok, removed)
		}
	}
	for name := range offs {
		if _, ok := fsys.ReadFile(priorName(name)); !ok {
			t.Fatalf("Open removed %s, the prior-content file of a live segment", priorName(name))
		}
	}
	if err := sameEntries(readAll(t, w), all); err != nil {
		t.Fatal(err)
	}
}

// TestRecycledSegmentsOnDisk recycles segments on a real file system
// (padded writes, O_DIRECT zeros for the fresh ones) and checks that the
// log survives a reopen, and that a torn tail in a recycled newest
// segment, whose unwritten sectors hold the previous life's bytes, is cut
// off without losing a record.
func TestRecycledSegmentsOnDisk(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSizeBytes: 64 << 10}
	w := mustOpen(t, dir, opts)
	rng := rand.New(rand.NewPCG(9, 10))
	var all []testEntry
	newestRecycled := func() bool {
		w.mu.RLock()
		defer w.mu.RUnlock()
		return w.segs[len(w.segs)-1].hasPrior && w.segs[len(w.segs)-1].count() > 0
	}
	for round := 0; round < 600 || !newestRecycled(); round++ {
		if round > 5000 {
			t.Fatal("the newest segment never was a recycled one")
		}
		all = churn(t, w, rng, all, round, 200, 25, 50)
	}
	if w.SegmentsRecycled() == 0 {
		t.Fatal("no segment recycled")
	}
	newest := w.segs[len(w.segs)-1]
	if !newest.hasPrior {
		t.Fatalf("newest segment %s is not recycled", newest.path)
	}
	segPath := newest.path
	live := all[w.FirstIndex()-1:]
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, the recycled newest segment takes more records (padded
	// over its prior content: the invariants build checks the padding).
	w = mustOpen(t, dir, opts)
	if err := sameEntries(readAll(t, w), live); err != nil {
		t.Fatal(err)
	}
	more := makeEntries(rng, live[len(live)-1].index+1, 1, 40, 200) // past a page of prior content
	mustAppend(t, w, more)
	if err := w.WaitDurable(more[len(more)-1].index); err != nil {
		t.Fatal(err)
	}
	live = append(live, more...)
	if s := w.segs[len(w.segs)-1]; s.path != segPath {
		t.Skipf("40 records rolled %s over into %s", segPath, s.path)
	}
	end := w.segs[len(w.segs)-1].end
	w.Close()
	w = mustOpen(t, dir, opts)
	if err := sameEntries(readAll(t, w), live); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// Tear: a record written after end whose second sector the device
	// never wrote (it still holds the prior content).
	seg, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatal(err)
	}
	if int(end)+3*sectorBytes > len(seg) {
		t.Skipf("newest segment too full (%d of %d bytes) to tear a record after it", end, len(seg))
	}
	rec := encodeEntries([]testEntry{{index: live[len(live)-1].index + 1, term: 1, payload: bytes.Repeat([]byte{0xab}, 2*sectorBytes)}})
	torn := append([]byte(nil), seg...)
	copy(torn[end:], rec)
	k := int(end)/sectorBytes + 1 // a sector wholly inside the record
	copy(torn[k*sectorBytes:(k+1)*sectorBytes], seg[k*sectorBytes:(k+1)*sectorBytes])
	if err := os.WriteFile(segPath, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir, opts)
	if r := w.Recovery(); r.TornBytes == 0 || r.TornFile != segPath || r.TornOffset != end {
		t.Fatalf("torn record in a recycled segment: recovery %+v, want a cut at %d of %s", r, end, segPath)
	}
	if err := sameEntries(readAll(t, w), live); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// The same bytes with that sector written too, but one bit off: a
	// whole record that does not verify is corruption, not a tear.
	bad := append([]byte(nil), torn...)
	copy(bad[end:], rec)
	bad[int(end)+len(rec)/2] ^= 0x04
	if err := os.WriteFile(segPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, opts); asCorruption(err) == nil || asCorruption(err).File != segPath {
		t.Fatalf("Open with a damaged whole record in a recycled segment: %v", err)
	}
	r, err := Verify(dir)
	if err != nil || r.OK() {
		t.Fatalf("Verify: %+v %v", r, err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*"+priorSuffix)); len(names) == 0 {
		t.Fatal("no prior-content files on disk")
	}
}

// TestReadSums: checksumming a segment for recycling reads it a step at a
// time and steps aside every 256 KiB, so that under one Go scheduler it
// never holds the node's other goroutines up for a whole preemption
// slice; its sums are those of the bytes (a short last sector included),
// and a failed read or a stop ends it.
func TestReadSums(t *testing.T) {
	m := make([]byte, 4<<20+100)
	for i := range m {
		m[i] = byte(i * 7)
	}
	read := func(b []byte, off int64) error { copy(b, m[off:]); return nil }
	before := sumYields.Load()
	sums, err := readSums(read, int64(len(m)), nil)
	if err != nil || !slices.Equal(sums, sectorSums(m)) {
		t.Fatalf("readSums: %d sums, %v; want %d matching sectorSums", len(sums), err, len(m)/sectorBytes+1)
	}
	if got := sumYields.Load() - before; got < 16 {
		t.Fatalf("%d yields over 4 MiB + 100 B, want one per 256 KiB (16)", got)
	}
	stop := make(chan struct{})
	close(stop)
	if _, err := readSums(read, int64(len(m)), stop); err != errStopped {
		t.Fatalf("readSums after stop: %v", err)
	}
	bad := errors.New("read failed")
	if _, err := readSums(func([]byte, int64) error { return bad }, int64(len(m)), nil); err != bad {
		t.Fatalf("readSums with a failing read: %v", err)
	}
}

// TestPoolSurvivesARestart: the retired segments a WAL had pooled are
// written again after a restart, before any new compaction; more than
// RecycleSegments, or files of another size, are removed.
func TestPoolSurvivesARestart(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	w := mustOpen(t, "/d", opts)
	rng := rand.New(rand.NewPCG(13, 14))
	var all []testEntry
	pooled := func() int {
		n := 0
		for _, name := range listDir(t, fsys, "/d") {
			if strings.HasPrefix(name, recyclePrefix) && strings.HasSuffix(name, segmentSuffix) {
				n++
			}
		}
		return n
	}
	for round := 0; round < 200 || pooled() < 3; round++ {
		if round > 5000 {
			t.Fatal("never three pooled segments")
		}
		all = churn(t, w, rng, all, round, 60, 20, 10)
	}
	first := w.FirstIndex()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	left := pooled()
	// A leftover of another size is not taken.
	f, _ := fsys.Create("/d/" + recyclePrefix + "00000000000000000003.seg")
	f.WriteAt(make([]byte, 8192), 0)
	f.Close()

	if left == 0 {
		t.Fatal("Close left no pooled segment")
	}
	limit := max(1, left-1) // one too many when it can be: removed
	opts.RecycleSegments = limit
	w = mustOpen(t, "/d", opts)
	defer w.Close()
	removed := 0
	for _, name := range w.Recovery().RemovedFiles {
		if strings.HasSuffix(name, segmentSuffix) {
			removed++
		}
	}
	if removed != left-limit+1 {
		t.Fatalf("removed %v, want the pooled segments beyond the limit and the one of another size", w.Recovery().RemovedFiles)
	}
	for _, name := range listDir(t, fsys, "/d") {
		if strings.HasSuffix(name, keptSumsSuffix) {
			t.Fatalf("Open left %s", name)
		}
	}
	for w.SegmentsRecycled() < uint64(limit) {
		es := makeEntries(rng, uint64(len(all)+1), 1, 1+rng.IntN(6), 60)
		mustAppend(t, w, es)
		all = append(all, es...)
		if len(all) > 100000 {
			t.Fatalf("%d of %d pooled segments written again after the restart", w.SegmentsRecycled(), limit)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := sameEntries(readAll(t, w), all[first-1:]); err != nil {
		t.Fatal(err)
	}
}

// gateCloseFS holds File.Close of files opened as segments (<n>.seg, as
// Open opens them; not prepared or prior-content files) while its gate is
// shut: a close that takes long, as the last close of a large file does
// while the kernel frees its blocks.
type gateCloseFS struct {
	FS
	shut   atomic.Bool
	gate   chan struct{}
	inside atomic.Int32 // closes waiting at the gate
}

func (g *gateCloseFS) OpenRW(name string) (File, error) {
	f, err := g.FS.OpenRW(name)
	if err != nil || !strings.HasSuffix(name, segmentSuffix) {
		return f, err
	}
	return &gateCloseFile{File: f, fs: g}, nil
}

type gateCloseFile struct {
	File
	fs *gateCloseFS
}

func (f *gateCloseFile) Close() error {
	if f.fs.shut.Load() {
		f.fs.inside.Add(1)
		<-f.fs.gate
	}
	return f.File.Close()
}

// Segments released after a compaction are closed off the WAL's lock: while
// one close is stuck, appends and their syncs go on. (Under the lock, the
// 21 segments of 64 MiB that one compaction released on the development
// VM held every append and sync for 0.6 s.)
func TestReleasedSegmentsCloseOffTheLock(t *testing.T) {
	for _, recycle := range []int{-1, 1} { // dropped: recycling off, or the pool full
		fsys := &gateCloseFS{FS: NewMemFS(), gate: make(chan struct{})}
		opts := memOpts(fsys, 4096)
		opts.RecycleSegments = recycle
		w := mustOpen(t, "/wal", opts)
		rng := rand.New(rand.NewPCG(uint64(recycle+2), 1))
		var all []testEntry
		// room: segments, and bytes left in the newest.
		room := func() (int, int64) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.segs) == 0 {
				return 0, 0
			}
			last := w.segs[len(w.segs)-1]
			return len(w.segs), int64(len(last.m)) - last.end
		}
		for n, _ := room(); n < 6; n, _ = room() {
			all = append(all, makeEntries(rng, uint64(len(all)+1), 1, 4, 200)...)
			mustAppend(t, w, all[len(all)-4:])
		}
		// Reopened, the segments are files Open opened: those the gate holds.
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = mustOpen(t, "/wal", opts)
		// Two compactions: the segments the first retires are released
		// after the second (the view lifetime rule).
		for i := range 2 {
			if err := w.WaitDurable(uint64(len(all))); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				// From here the writer goroutine may release them too.
				fsys.shut.Store(true)
			}
			if err := w.CompactPrefix(uint64(len(all)-2), 1); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				all = append(all, makeEntries(rng, uint64(len(all)+1), 1, 4, 200)...)
				mustAppend(t, w, all[len(all)-4:])
			}
		}
		released := make(chan struct{})
		go func() { releaseRetired(w); close(released) }()
		select {
		case <-released:
		case <-time.After(10 * time.Second):
			t.Fatalf("recycle %d: releasing retired segments waited for their closes under the lock", recycle)
		}
		deadline := time.Now().Add(10 * time.Second)
		for fsys.inside.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if fsys.inside.Load() == 0 {
			t.Fatalf("recycle %d: no released segment was closed", recycle)
		}
		// A close is stuck; the log goes on, new segments included (an
		// append that rolls waits for the preparer with the lock held, so
		// the preparer must not be the one stuck).
		wrote := make(chan error, 1)
		go func() {
			n0, _ := room()
			for n, _ := room(); n < n0+2; n, _ = room() {
				es := makeEntries(rng, uint64(len(all)+1), 1, 4, 200)
				if err := w.Append(encodeEntries(es)); err != nil {
					wrote <- err
					return
				}
				all = append(all, es...)
			}
			wrote <- w.WaitDurable(uint64(len(all)))
		}()
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("recycle %d: appends across two new segments stalled while a released segment's close was stuck", recycle)
		}
		fsys.shut.Store(false)
		close(fsys.gate)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = mustOpen(t, "/wal", opts)
		if w.LastIndex() != uint64(len(all)) {
			t.Fatalf("recycle %d: reopened at %d, want %d", recycle, w.LastIndex(), len(all))
		}
		for _, n := range listDir(t, fsys, "/wal") {
			if strings.HasPrefix(n, recyclePrefix) && recycle < 0 {
				t.Fatalf("recycle %d: %s left behind", recycle, n)
			}
		}
		w.Close()
	}
}

// TestRetiredReleasedWithoutSyncRounds: in FsyncNone no sync round runs
// unless Sync is called, and the writer goroutine never wakes; segments
// that compaction retired must still be released (into the pool) once a
// later compaction has passed, not held open until Close.
func TestRetiredReleasedWithoutSyncRounds(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	opts.Fsync = FsyncNone
	w := mustOpen(t, "/d", opts)
	defer w.Close()
	mustAppend(t, w, fixedEntries(1, 1, 200, 100)) // 5 segments
	if err := w.CompactPrefix(150, 1); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, w, fixedEntries(201, 1, 10, 100))
	if err := w.CompactPrefix(205, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.RLock()
		stale := 0
		for _, r := range w.retired {
			if r.epoch < w.epoch {
				stale++
			}
		}
		w.mu.RUnlock()
		if stale == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d segments retired by the first compaction still held after the second", stale)
		}
		time.Sleep(time.Millisecond)
	}
}
