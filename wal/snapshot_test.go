package wal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestSnapshotFiles(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	opts.SnapshotDir = "/snap"
	w := mustOpen(t, "/d", opts)
	defer w.Close()
	if _, _, err := w.LoadSnapshot(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("LoadSnapshot on empty dir: %v", err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	big := make([]byte, 3<<20+17) // several copy chunks
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for i, idx := range []uint64{10, 20, 30} {
		data := big[:len(big)-i]
		if _, err := w.SaveSnapshot(idx, idx/10, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := w.Snapshots()
	if err != nil || len(snaps) != 2 || snaps[0].Index != 20 || snaps[1].Index != 30 || snaps[1].Term != 3 {
		t.Fatalf("Snapshots (retain 2): %+v %v", snaps, err)
	}
	meta, data, err := w.LoadSnapshot()
	if err != nil || meta.Index != 30 || !bytes.Equal(data, big[:len(big)-2]) {
		t.Fatalf("LoadSnapshot: %+v %d bytes %v", meta, len(data), err)
	}
	// Names that are not snapshots are ignored; a temp file too.
	for _, n := range []string{"/snap/snapshot-40-4.dat.tmp", "/snap/snapshot-x-1.dat", "/snap/notes.txt"} {
		f, _ := fsys.Create(n)
		f.Close()
	}
	if snaps, _ := w.Snapshots(); len(snaps) != 2 {
		t.Fatalf("stray files listed: %+v", snaps)
	}
	// Every damaged byte of a snapshot is detected.
	name := snaps[1].File
	for _, off := range []int64{0, 9, 17, 24, 1 << 20, int64(len(big)) - 2 + 24, int64(len(big)) - 2 + 24 + 9} {
		fsys.FlipBit(name, off, 2)
		if _, _, err := w.LoadSnapshot(); asCorruption(err) == nil {
			t.Fatalf("flip at %d: LoadSnapshot = %v", off, err)
		}
		fsys.FlipBit(name, off, 2)
	}
	fsys.Truncate(name, 30)
	if _, _, err := w.LoadSnapshot(); asCorruption(err) == nil {
		t.Fatalf("short snapshot: %v", err)
	}
	// A restore from a damaged snapshot refuses to start.
	opts2 := opts
	if _, err := Open("/restored", opts2); asCorruption(err) == nil {
		t.Fatalf("Open restoring from a damaged snapshot: %v", err)
	}
}

func TestSnapshotCrashLeavesOldOrNew(t *testing.T) {
	fsys := NewMemFS()
	if _, err := writeSnapshot(fsys, "/s", 5, 1, bytes.NewReader([]byte("five"))); err != nil {
		t.Fatal(err)
	}
	// Interrupted save: a temp file never renamed.
	f, _ := fsys.Create("/s/snapshot-9-2.dat.tmp")
	f.WriteAt([]byte("partial"), 0)
	img := fsys.Crash(nil)
	metas, err := listSnapshots(img, "/s")
	if err != nil || len(metas) != 1 || metas[0].Index != 5 {
		t.Fatalf("after crash: %+v %v", metas, err)
	}
	if data, err := readSnapshot(img, metas[0]); err != nil || string(data) != "five" {
		t.Fatalf("after crash: %q %v", data, err)
	}
}
