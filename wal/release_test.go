package wal

import (
	"bytes"
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/procmaps"
)

// resident is how much of the segment files under dir is mapped into this
// process.
func resident(t *testing.T, dir string) int64 {
	t.Helper()
	n, err := procmaps.Resident(dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// realWAL opens a WAL of 64 KiB segments in a temporary directory on the
// real file system, appends n records of 1,000 bytes and syncs.
func realWAL(t *testing.T, n int) (string, *WAL) {
	t.Helper()
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentSizeBytes: 64 << 10})
	t.Cleanup(func() { w.Close() })
	mustAppend(t, w, fixedEntries(1, 1, n, 1000))
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	return dir, w
}

// settledWAL is realWAL closed and opened again: the rolls that appending
// made kicked the releaser, which may run at any time after them, so a
// test that maps pages and then expects them mapped starts from a WAL
// that has not rolled yet.
func settledWAL(t *testing.T, n int) (string, *WAL) {
	t.Helper()
	dir, w := realWAL(t, n)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir, Options{SegmentSizeBytes: 64 << 10})
	t.Cleanup(func() { w.Close() })
	return dir, w
}

// TestReleaseMappedKeepsViews: the pages a reopened WAL's scan and a full
// read mapped are all given back by ReleaseMapped, and a view taken before
// it still reads the same bytes.
func TestReleaseMappedKeepsViews(t *testing.T) {
	dir, w := settledWAL(t, 300) // ~5 segments
	want := readAll(t, w)
	view, err := w.Entries(1, 301, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	saved := bytes.Clone(view)
	if got := resident(t, dir); got < 200<<10 {
		t.Fatalf("only %d bytes mapped after reading ~300 KB through the mapping", got)
	}
	w.ReleaseMapped()
	if got := resident(t, dir); got != 0 {
		t.Fatalf("%d bytes still mapped after ReleaseMapped", got)
	}
	if !bytes.Equal(view, saved) {
		t.Fatal("a view reads other bytes after ReleaseMapped")
	}
	if err := sameEntries(readAll(t, w), want); err != nil {
		t.Fatal(err)
	}
}

// sealedResident is how much of w's sealed segments (all live ones but
// the newest, which invariants builds read through the mapping after every
// append) is mapped into this process.
func sealedResident(t *testing.T, w *WAL) int64 {
	t.Helper()
	w.mu.RLock()
	segs := append([]*segment(nil), w.segs[:len(w.segs)-1]...)
	w.mu.RUnlock()
	var total int64
	for _, s := range segs {
		n, err := procmaps.Resident(s.path)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

func segCount(w *WAL) int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.segs)
}

// TestRollReleasesSealedSegments: after a roll the releaser gives back
// what reads mapped of every sealed segment.
func TestRollReleasesSealedSegments(t *testing.T) {
	_, w := settledWAL(t, 200)
	readAll(t, w) // maps every segment
	if got := sealedResident(t, w); got < 150<<10 {
		t.Fatalf("only %d bytes mapped after reading ~200 KB through the mapping", got)
	}
	segs := segCount(w)
	for i := uint64(201); segCount(w) == segs; i++ {
		mustAppend(t, w, fixedEntries(i, 1, 1, 1000))
	}
	deadline := time.Now().Add(10 * time.Second)
	for sealedResident(t, w) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of sealed segments still mapped 10 s after a roll", sealedResident(t, w))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecycledSegmentStartsUnmapped: pages that reads mapped in a
// segment's last life are given back when the preparer takes it, though
// no roll released them since.
func TestRecycledSegmentStartsUnmapped(t *testing.T) {
	_, w := settledWAL(t, 200)
	readAll(t, w) // no roll after this, so no release before the compaction
	// The second compaction lets the first one's segments into the pool
	// (the view lifetime rule).
	for _, upTo := range []uint64{150, 151} {
		if err := w.CompactPrefix(upTo, 1); err != nil {
			t.Fatal(err)
		}
	}
	releaseRetired(w)
	for i := uint64(201); ; i++ {
		if i > 2000 {
			t.Fatal("the preparer never recycled a segment")
		}
		w.prepMu.Lock()
		p := w.prepared
		if p != nil && p.priorPath != "" {
			n, err := procmaps.Resident(p.path)
			w.prepMu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("recycled segment %s prepared with %d bytes of its last life mapped", p.path, n)
			}
			return
		}
		w.prepMu.Unlock()
		mustAppend(t, w, fixedEntries(i, 1, 1, 1000))
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}
