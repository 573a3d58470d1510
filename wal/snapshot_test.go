package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
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
	if _, err := writeSnapshot(fsys, "/s", 5, 1, bytes.NewReader([]byte("five")), SnapshotFileOptions{}); err != nil {
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
	if data, _, err := readSnapshot(img, metas[0]); err != nil || string(data) != "five" {
		t.Fatalf("after crash: %q %v", data, err)
	}
}

func TestSnapshotCompressedRoundTripAndRatio(t *testing.T) {
	fsys := NewMemFS()
	compressible := bytes.Repeat([]byte("key-000123=value-of-a-kv-pair;"), 100_000)
	rng := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, len(compressible))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	// Random data is stored as it is (zstd would cost CPU for nothing);
	// the file says so.
	for _, tc := range []struct {
		name     string
		data     []byte
		maxRatio float64 // stored/original
		codec    SnapshotCodec
	}{{"compressible", compressible, 0.05, SnapshotCodecZstd}, {"random", random, 1.01, SnapshotCodecNone}, {"empty", nil, 100, SnapshotCodecZstd}} {
		meta, err := writeSnapshot(fsys, "/s", 10, 1, bytes.NewReader(tc.data), SnapshotFileOptions{Codec: SnapshotCodecZstd})
		if err != nil {
			t.Fatal(err)
		}
		size := fileSize(t, fsys, meta.File)
		if ratio := float64(size) / float64(max(len(tc.data), 1)); ratio > tc.maxRatio {
			t.Errorf("%s: stored %d bytes for %d (ratio %.3f > %.3f)", tc.name, size, len(tc.data), ratio, tc.maxRatio)
		}
		got, m, err := readSnapshot(fsys, SnapshotMeta{Index: 10, Term: 1, File: meta.File})
		if err != nil || !bytes.Equal(got, tc.data) || m.Codec != tc.codec || meta.Codec != tc.codec {
			t.Fatalf("%s: read back %d bytes, codec %v, %v", tc.name, len(got), m.Codec, err)
		}
		// The checksum covers the compressed bytes: any flip is caught
		// before decompression.
		for _, off := range []int64{32, 41, size / 2, size - 20} {
			fsys.FlipBit(meta.File, off, 1)
			if _, _, err := readSnapshot(fsys, meta); asCorruption(err) == nil {
				t.Fatalf("%s: flip at %d: %v", tc.name, off, err)
			}
			fsys.FlipBit(meta.File, off, 1)
		}
	}
}

func fileSize(t *testing.T, fsys FS, name string) int64 {
	t.Helper()
	f, err := fsys.OpenRO(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A version-1 file (written before codecs and deltas) still loads.
func TestSnapshotReadsVersion1Files(t *testing.T) {
	fsys := NewMemFS()
	data := []byte("state of an older node")
	b := append([]byte(snapMagicV1), make([]byte, 16)...)
	binary.LittleEndian.PutUint64(b[8:], 7)
	binary.LittleEndian.PutUint64(b[16:], 2)
	b = append(b, data...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint64(b, xxhash.Sum64(b))
	_ = fsys.MkdirAll("/s")
	f, _ := fsys.Create("/s/" + snapshotName(7, 2))
	f.WriteAt(b, 0)
	f.Close()
	got, meta, err := readSnapshot(fsys, SnapshotMeta{Index: 7, Term: 2, File: "/s/" + snapshotName(7, 2)})
	if err != nil || !bytes.Equal(got, data) || meta.Base != 0 || meta.Codec != SnapshotCodecNone {
		t.Fatalf("v1 file: %q %+v %v", got, meta, err)
	}
}

func saveSnap(t *testing.T, w *WAL, index uint64, base uint64, data string) {
	t.Helper()
	if _, err := w.SaveSnapshotFile(index, 1, bytes.NewReader([]byte(data)), SnapshotFileOptions{Base: base, Codec: SnapshotCodec(index / 10 % 2)}); err != nil {
		t.Fatal(err)
	}
}

func snapIndexes(t *testing.T, w *WAL) []uint64 {
	t.Helper()
	snaps, err := w.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, s := range snaps {
		idx = append(idx, s.Index)
	}
	return idx
}

// Retention keeps the newest K files plus every base they need, and the
// chain loads oldest first.
func TestSnapshotRetentionKeepsBasesOfRetainedDeltas(t *testing.T) {
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	opts.SnapshotDir = "/snap"
	opts.SnapshotsRetained = 2
	w := mustOpen(t, "/d", opts)
	defer w.Close()
	saveSnap(t, w, 10, 0, "full10")
	saveSnap(t, w, 20, 10, "d20")
	saveSnap(t, w, 30, 20, "d30")
	if got := snapIndexes(t, w); !slices.Equal(got, []uint64{10, 20, 30}) {
		t.Fatalf("after chain 10<-20<-30 with retain 2: %v", got)
	}
	metas, datas, err := w.LoadSnapshotChain()
	if err != nil || len(metas) != 3 || string(datas[0]) != "full10" || string(datas[2]) != "d30" || metas[2].Base != 20 {
		t.Fatalf("LoadSnapshotChain: %+v %q %v", metas, datas, err)
	}
	if hs, err := w.SnapshotHeaders(); err != nil || len(hs) != 3 || hs[0].Base != 0 || hs[1].Base != 10 || hs[2].Base != 20 || hs[0].Codec != SnapshotCodecZstd || hs[1].Codec != SnapshotCodecNone || hs[2].Codec != SnapshotCodecZstd {
		t.Fatalf("SnapshotHeaders: %+v %v", hs, err)
	}
	saveSnap(t, w, 40, 0, "full40")
	// 30 is retained and needs 20, which needs 10.
	if got := snapIndexes(t, w); !slices.Equal(got, []uint64{10, 20, 30, 40}) {
		t.Fatalf("after a full snapshot at 40: %v", got)
	}
	saveSnap(t, w, 50, 40, "d50")
	saveSnap(t, w, 60, 50, "d60")
	if got := snapIndexes(t, w); !slices.Equal(got, []uint64{40, 50, 60}) {
		t.Fatalf("after 40<-50<-60: %v", got)
	}
	_, datas, err = w.LoadSnapshotChain()
	if err != nil || len(datas) != 3 || string(datas[0]) != "full40" {
		t.Fatalf("LoadSnapshotChain: %q %v", datas, err)
	}
	// A missing base is an error that names the delta and the base.
	if err := fsys.Remove("/snap/" + snapshotName(50, 1)); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.LoadSnapshotChain()
	var mb *MissingBaseError
	if !errors.As(err, &mb) || mb.Base != 50 || !strings.Contains(err.Error(), snapshotName(60, 1)) {
		t.Fatalf("missing base: %v", err)
	}
	// A damaged delta is corruption naming that file.
	saveSnap(t, w, 70, 0, "full70")
	saveSnap(t, w, 80, 70, "d80")
	fsys.FlipBit("/snap/"+snapshotName(80, 1), 45, 0)
	_, _, err = w.LoadSnapshotChain()
	if c := asCorruption(err); c == nil || !strings.Contains(c.File, snapshotName(80, 1)) {
		t.Fatalf("damaged delta: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// syncCountFS counts File.Sync calls on the files it creates.
type syncCountFS struct {
	FS
	syncs atomic.Int64
}

func (s *syncCountFS) Create(name string) (File, error) {
	f, err := s.FS.Create(name)
	return &syncCountFile{File: f, fs: s}, err
}

type syncCountFile struct {
	File
	fs *syncCountFS
}

func (f *syncCountFile) Sync() error { f.fs.syncs.Add(1); return f.File.Sync() }

// A large snapshot is synced as it is written, so it never leaves more
// than snapSyncEveryBytes of dirty pages behind it.
func TestSnapshotSyncsAsItWrites(t *testing.T) {
	fsys := &syncCountFS{FS: NewMemFS()}
	size := int64(2*snapSyncEveryBytes + snapChunkBytes)
	if _, err := writeSnapshot(fsys, "/s", 3, 1, io.LimitReader(zeroReader{}, size), SnapshotFileOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fsys.syncs.Load(); got < 3 {
		t.Fatalf("%d syncs for a %d MiB snapshot, want one per %d MiB and a final one", got, size>>20, snapSyncEveryBytes>>20)
	}
}
