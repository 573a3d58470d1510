package wal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"testing"
)

// buildSyncedWAL writes n records in small segments on a MemFS, syncs and
// closes. It returns the FS, the entries and, per segment file, the start
// offsets of its records.
func buildSyncedWAL(t *testing.T, n int, segBytes int64) (*MemFS, []testEntry, map[string][]uint32) {
	t.Helper()
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, segBytes))
	rng := rand.New(rand.NewPCG(11, 12))
	var all []testEntry
	for len(all) < n {
		es := makeEntries(rng, uint64(len(all)+1), uint64(1+len(all)/50), min(1+rng.IntN(6), n-len(all)), 60)
		mustAppend(t, w, es)
		all = append(all, es...)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	offs := map[string][]uint32{}
	for _, s := range w.segs {
		offs[s.path] = append([]uint32(nil), s.offsets...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return fsys, all, offs
}

// recordAt returns the start of the record containing off, or -1 when off
// lies after the last record.
func recordAt(offs []uint32, end int64, off int64) int64 {
	if off >= end {
		return -1
	}
	start := int64(-1)
	for _, o := range offs {
		if int64(o) <= off {
			start = int64(o)
		}
	}
	return start
}

func segEnd(fsys *MemFS, name string, offs []uint32) int64 {
	data, _ := fsys.ReadFile(name)
	if len(offs) == 0 {
		return 0
	}
	last := int64(offs[len(offs)-1])
	return last + int64(uint32(data[last])|uint32(data[last+1])<<8|uint32(data[last+2])<<16|uint32(data[last+3])<<24)
}

// TestCorruptionSweep flips one bit at every byte offset of every segment
// (several bit positions) and of the hard state file. A flip inside a
// record must make Open fail with a CorruptionError naming that file and
// the record's offset, leaving the files untouched. A flip in the zeroed
// space after the records must never lose an entry: Open either refuses, or
// (newest segment only) cuts it off as a torn write and reports it.
func TestCorruptionSweep(t *testing.T) {
	fsys, all, offs := buildSyncedWAL(t, 240, 4096)
	sweepCorruption(t, fsys, all, offs)
}

// sweepCorruption is TestCorruptionSweep on a synced, closed WAL in /d
// with 4096-byte segments that holds all, its records at offs.
func sweepCorruption(t *testing.T, fsys *MemFS, all []testEntry, offs map[string][]uint32) {
	names := make([]string, 0, len(offs))
	for name := range offs {
		names = append(names, name)
	}
	if len(names) < 3 {
		t.Fatalf("want several segments, got %d", len(names))
	}
	newest := ""
	for _, n := range names {
		if n > newest {
			newest = n
		}
	}
	bitsToFlip := []uint{0, 3, 7}
	if testing.Short() {
		bitsToFlip = []uint{5}
	}
	pristine := snapshotFiles(fsys)
	opts := memOpts(fsys, 4096)
	for _, name := range names {
		end := segEnd(fsys, name, offs[name])
		// Every record byte with several bits; every byte of the zeroed
		// tail with one.
		size := int64(len(pristine[name]))
		for off := int64(0); off < size; off++ {
			bits := bitsToFlip
			if off >= end+64 {
				bits = []uint{uint(off % 8)}
			}
			for _, bit := range bits {
				fsys.FlipBit(name, off, bit)
				w, err := Open("/d", opts)
				rec := recordAt(offs[name], end, off)
				switch {
				case rec >= 0:
					ce := asCorruption(err)
					if ce == nil || ce.File != name || ce.Offset != rec {
						t.Fatalf("%s offset %d bit %d (record at %d): Open = %v", name, off, bit, rec, err)
					}
					if !sameFiles(fsys, pristine, name, off, bit) {
						t.Fatalf("%s offset %d bit %d: failed Open modified files", name, off, bit)
					}
				case err != nil:
					if asCorruption(err) == nil {
						t.Fatalf("%s offset %d bit %d: Open = %v", name, off, bit, err)
					}
				default:
					if name != newest || w.Recovery().TornBytes == 0 {
						t.Fatalf("%s offset %d bit %d: flip after the data accepted silently", name, off, bit)
					}
					if err := sameEntries(readAll(t, w), all); err != nil {
						t.Fatalf("%s offset %d bit %d: %v", name, off, bit, err)
					}
					w.Close()
					restoreFiles(fsys, pristine)
					continue
				}
				fsys.FlipBit(name, off, bit)
			}
		}
	}
	// The hard state file: every flip is corruption.
	state := path.Join("/d", stateFileName)
	for off := int64(0); off < stateFileBytes; off++ {
		fsys.FlipBit(state, off, uint(off%8))
		_, err := Open("/d", opts)
		if ce := asCorruption(err); ce == nil || ce.File != state {
			t.Fatalf("state offset %d: Open = %v", off, err)
		}
		fsys.FlipBit(state, off, uint(off%8))
	}
	w := mustOpen(t, "/d", opts)
	defer w.Close()
	if err := sameEntries(readAll(t, w), all); err != nil {
		t.Fatal(err)
	}
}

func snapshotFiles(fsys *MemFS) map[string][]byte {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	out := map[string][]byte{}
	for name, ino := range fsys.live {
		out[name] = append([]byte(nil), ino.data...)
	}
	return out
}

// sameFiles reports whether fsys holds exactly pristine, except for the one
// flipped bit.
func sameFiles(fsys *MemFS, pristine map[string][]byte, flipped string, off int64, bit uint) bool {
	now := snapshotFiles(fsys)
	if len(now) != len(pristine) {
		return false
	}
	for name, want := range pristine {
		got, ok := now[name]
		if !ok {
			return false
		}
		if name == flipped {
			got = append([]byte(nil), got...)
			got[off] ^= 1 << bit
		}
		if !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}

func restoreFiles(fsys *MemFS, pristine map[string][]byte) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for name := range fsys.live {
		if _, ok := pristine[name]; !ok {
			delete(fsys.live, name)
			delete(fsys.durable, name)
		}
	}
	for name, data := range pristine {
		ino, ok := fsys.live[name]
		if !ok {
			ino = &memInode{}
			fsys.live[name] = ino
			fsys.durable[name] = ino
		}
		ino.data = append(ino.data[:0], data...)
		ino.synced = append(ino.synced[:0], data...)
	}
}

// TestTruncationSweep cuts the newest segment at every offset: recovery
// yields exactly the records that end before the cut (all were synced).
func TestTruncationSweep(t *testing.T) {
	fsys, all, offs := buildSyncedWAL(t, 255, 4096)
	newest := ""
	for n := range offs {
		if n > newest {
			newest = n
		}
	}
	end := segEnd(fsys, newest, offs[newest])
	base := all[0].index
	if len(offs[newest]) < 20 {
		t.Fatalf("newest segment holds only %d records", len(offs[newest]))
	}
	firstInNewest, _ := parseSegmentName(path.Base(newest))
	opts := memOpts(nil, 4096)
	step := int64(1)
	if testing.Short() {
		step = 7
	}
	for cut := int64(0); cut <= end+40; cut += step {
		img := fsys.Crash(nil)
		if !img.Truncate(newest, cut) {
			t.Fatalf("truncate %d", cut)
		}
		opts.FS = img
		w, err := Open("/d", opts)
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		// Records wholly before the cut survive.
		kept := 0
		for k := range offs[newest] {
			recEnd := end
			if k+1 < len(offs[newest]) {
				recEnd = int64(offs[newest][k+1])
			}
			if recEnd <= cut {
				kept = k + 1
			}
		}
		want := all[:int(firstInNewest-base)+kept]
		if err := sameEntries(readAll(t, w), want); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		// The log stays appendable after the cut.
		next := makeEntries(rand.New(rand.NewPCG(1, uint64(cut))), uint64(len(want)+1), 9, 2, 30)
		mustAppend(t, w, next)
		if err := w.WaitDurable(next[1].index); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = mustOpen(t, "/d", opts)
		if err := sameEntries(readAll(t, w), append(append([]testEntry(nil), want...), next...)); err != nil {
			t.Fatalf("cut at %d, after append and reopen: %v", cut, err)
		}
		w.Close()
	}
}

func TestCorruptionErrorText(t *testing.T) {
	fsys, _, offs := buildSyncedWAL(t, 50, 4096)
	var name string
	for n := range offs {
		name = n
	}
	fsys.FlipBit(name, 30, 1)
	_, err := Open("/d", memOpts(fsys, 4096))
	ce := asCorruption(err)
	if ce == nil || !errors.As(err, &ce) {
		t.Fatalf("Open: %v", err)
	}
	r, verr := VerifyFS(fsys, "/d")
	if verr != nil || r.OK() || len(r.Problems) == 0 || r.Problems[0].File != name {
		t.Fatalf("Verify: %+v %v", r, verr)
	}
	t.Log(err)
}

// TestVerifyOnDisk runs Verify and a refused Open on real files.
func TestVerifyOnDisk(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentSizeBytes: 8192})
	rng := rand.New(rand.NewPCG(2, 2))
	mustAppend(t, w, makeEntries(rng, 1, 1, 100, 100))
	if err := w.SaveHardState(HardState{Term: 1, Vote: 2, Commit: 50}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := Verify(dir)
	if err != nil || !r.OK() || r.Entries != 100 || r.HardState.Vote != 2 || len(r.Segments) < 2 {
		t.Fatalf("Verify: %+v %v", r, err)
	}
	seg := r.Segments[0].File
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	f.ReadAt(b[:], 100)
	b[0] ^= 0x10
	f.WriteAt(b[:], 100)
	f.Close()
	before, _ := os.ReadFile(seg)
	r, err = Verify(dir)
	if err != nil || r.OK() || r.Problems[0].File != seg {
		t.Fatalf("Verify after flip: %+v %v", r, err)
	}
	if txt := r.String(); !strings.Contains(txt, "CORRUPT: "+seg) || !strings.Contains(txt, "result:     CORRUPT") {
		t.Fatalf("report text:\n%s", txt)
	}
	if _, err := Open(dir, Options{SegmentSizeBytes: 8192}); asCorruption(err) == nil || asCorruption(err).File != seg {
		t.Fatalf("Open after flip: %v", err)
	}
	after, _ := os.ReadFile(seg)
	if !bytes.Equal(before, after) {
		t.Fatal("refused Open modified the segment")
	}
	if _, err := Verify(dir + "/missing"); err == nil {
		t.Fatal("Verify of a missing directory succeeded")
	}
}
