package wal

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestAppendReadReopen(t *testing.T) {
	for _, fsName := range []string{"mem", "os"} {
		t.Run(fsName, func(t *testing.T) {
			var fsys FS = NewMemFS()
			dir := "/data"
			if fsName == "os" {
				fsys, dir = OSFS{}, t.TempDir()
			}
			rng := rand.New(rand.NewPCG(1, 2))
			w := mustOpen(t, dir, memOpts(fsys, 8192))
			var all []testEntry
			for b := 0; b < 40; b++ {
				es := makeEntries(rng, uint64(len(all)+1), uint64(1+b/10), 1+rng.IntN(8), 300)
				mustAppend(t, w, es)
				all = append(all, es...)
			}
			if err := w.WaitDurable(uint64(len(all))); err != nil {
				t.Fatal(err)
			}
			if err := sameEntries(readAll(t, w), all); err != nil {
				t.Fatal(err)
			}
			if tm, err := w.Term(uint64(len(all))); err != nil || tm != 4 {
				t.Fatalf("Term(last) = %d, %v", tm, err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w = mustOpen(t, dir, memOpts(fsys, 8192))
			defer w.Close()
			if err := sameEntries(readAll(t, w), all); err != nil {
				t.Fatal(err)
			}
			if len(w.segs) < 3 {
				t.Fatalf("expected several segments, got %d", len(w.segs))
			}
			r, err := VerifyFS(fsys, dir)
			if err != nil || !r.OK() || r.LastIndex != uint64(len(all)) || r.FirstIndex != 1 {
				t.Fatalf("Verify: %+v %v", r, err)
			}
		})
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, 8192))
	defer w.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	es := makeEntries(rng, 1, 2, 3, 10)
	mustAppend(t, w, es)
	cases := map[string][]byte{
		"gap":        encodeEntries(makeEntries(rng, 5, 2, 1, 10)),
		"repeat":     encodeEntries(makeEntries(rng, 3, 2, 1, 10)),
		"older term": encodeEntries(makeEntries(rng, 4, 1, 1, 10)),
		"garbage":    []byte{1, 2, 3},
		"empty":      nil,
		"too large":  encodeEntries(makeEntries(rng, 4, 2, 1, 9000)),
	}
	for name, b := range cases {
		if name == "too large" {
			b = encodeEntries([]testEntry{{index: 4, term: 2, payload: make([]byte, 9000)}})
		}
		if err := w.Append(b); err == nil {
			t.Errorf("%s: Append accepted", name)
		}
	}
	if w.LastIndex() != 3 {
		t.Fatalf("LastIndex %d after rejected appends", w.LastIndex())
	}
	if _, err := w.Entries(4, 5, 100); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Entries past end: %v", err)
	}
}

func TestTruncateSuffixAndCompact(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	w := mustOpen(t, "/d", opts)
	rng := rand.New(rand.NewPCG(5, 6))
	all := makeEntries(rng, 1, 1, 100, 200)
	mustAppend(t, w, all)
	// Truncate in the middle of an older segment, then overwrite.
	if err := w.TruncateSuffix(41); err != nil {
		t.Fatal(err)
	}
	if w.LastIndex() != 40 || w.DurableIndex() > 40 {
		t.Fatalf("after truncate: last %d durable %d", w.LastIndex(), w.DurableIndex())
	}
	repl := makeEntries(rng, 41, 2, 30, 200)
	mustAppend(t, w, repl)
	all = append(all[:40], repl...)
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := sameEntries(readAll(t, w), all); err != nil {
		t.Fatal(err)
	}
	// Compact through 50 (matching term).
	if err := w.CompactPrefix(50, 2); err != nil {
		t.Fatal(err)
	}
	if w.FirstIndex() != 51 {
		t.Fatalf("FirstIndex %d", w.FirstIndex())
	}
	if tm, err := w.Term(50); err != nil || tm != 2 {
		t.Fatalf("Term(50) = %d, %v", tm, err)
	}
	if _, err := w.Term(49); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Term(49): %v", err)
	}
	if err := w.TruncateSuffix(50); !errors.Is(err, ErrCompacted) {
		t.Fatalf("TruncateSuffix into snapshot: %v", err)
	}
	hs := HardState{Term: 2, Vote: 3, Commit: 60}
	if err := w.SaveHardState(hs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = mustOpen(t, "/d", opts)
	if err := sameEntries(readAll(t, w), all[50:]); err != nil {
		t.Fatal(err)
	}
	if w.HardState() != hs {
		t.Fatalf("hard state %+v", w.HardState())
	}
	// A snapshot beyond the log with another term discards everything.
	if err := w.CompactPrefix(200, 7); err != nil {
		t.Fatal(err)
	}
	if w.FirstIndex() != 201 || w.LastIndex() != 200 {
		t.Fatalf("after install: first %d last %d", w.FirstIndex(), w.LastIndex())
	}
	next := makeEntries(rng, 201, 7, 5, 50)
	mustAppend(t, w, next)
	w.Close()
	w = mustOpen(t, "/d", opts)
	defer w.Close()
	if err := sameEntries(readAll(t, w), next); err != nil {
		t.Fatal(err)
	}
	if tm, _ := w.Term(200); tm != 7 {
		t.Fatalf("Term(200) = %d", tm)
	}
}

func TestRestoreFromSnapshotOnly(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	opts.SnapshotDir = "/snap"
	w := mustOpen(t, "/old", opts)
	data := []byte("state machine image")
	if _, err := w.SaveSnapshot(500, 9, bytesReader(data)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Restore: empty data dir, the snapshot file in the snapshot dir.
	w = mustOpen(t, "/new", opts)
	defer w.Close()
	if w.FirstIndex() != 501 || w.LastIndex() != 500 {
		t.Fatalf("restored: first %d last %d", w.FirstIndex(), w.LastIndex())
	}
	if tm, err := w.Term(500); err != nil || tm != 9 {
		t.Fatalf("Term(500) = %d, %v", tm, err)
	}
	meta, got, err := w.LoadSnapshot()
	if err != nil || string(got) != string(data) || meta.Index != 500 || meta.Term != 9 {
		t.Fatalf("LoadSnapshot: %+v %q %v", meta, got, err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	mustAppend(t, w, makeEntries(rng, 501, 9, 3, 10))
	if err := w.WaitDurable(503); err != nil {
		t.Fatal(err)
	}
}
