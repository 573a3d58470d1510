package wal

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directIOSupported reports whether dir's file system takes O_DIRECT
// (tmpfs does not).
func directIOSupported(t *testing.T, dir string) bool {
	t.Helper()
	name := filepath.Join(dir, "probe")
	fd, err := unix.Open(name, unix.O_CREAT|unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// A zero-filled segment reads as zeros; where the file system takes
// O_DIRECT the zeros went around the page cache (none of the file's pages
// is resident afterwards), which is what makes them cheap.
func TestPreallocateZeroFillDirect(t *testing.T) {
	dir := t.TempDir()
	const size = 6 << 20 // more than one zeroChunk, not a multiple of it
	f, err := OSFS{}.Create(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Preallocate(size, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Size(); got != size {
		t.Fatalf("size %d, want %d", got, size)
	}
	m, err := f.Map()
	if err != nil {
		t.Fatal(err)
	}
	if directIOSupported(t, dir) {
		resident := make([]byte, size/pageBytes)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
			t.Fatal(errno)
		}
		n := 0
		for _, r := range resident {
			n += int(r & 1)
		}
		if n != 0 {
			t.Fatalf("%d of %d pages of the zero-filled file are in the page cache: the zeros were not written directly", n, len(resident))
		}
	}
	if !bytes.Equal(m, make([]byte, size)) {
		t.Fatal("zero-filled file is not all zeros")
	}
	// A file whose current end is not page-aligned is grown the buffered
	// way, also as zeros.
	g, err := OSFS{}.Create(filepath.Join(dir, "odd"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if err := g.Preallocate(1<<20+100, true); err != nil {
		t.Fatal(err)
	}
	want := append([]byte("head"), make([]byte, 1<<20+96)...)
	got := make([]byte, len(want))
	if _, err := g.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("unaligned growth: %v, content differs: %v", err, !bytes.Equal(got, want))
	}
}

// A segment pads its writes with zeros to the end of their last page
// (never past the file's end). Used as the WAL uses a segment (appends at
// the end of the data; truncation zeroing from a point to the end of the
// data, then appends from there; everything past the data is zeros), the
// file's bytes are exactly those written, zeros elsewhere.
func TestPaddedWritesChangeNoOtherByte(t *testing.T) {
	const size = 2*zeroChunkBytes + 5*pageBytes + 700 // truncations span zeroRange pieces; the last page is partial
	f, err := OSFS{}.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Preallocate(size, true); err != nil {
		t.Fatal(err)
	}
	f.(pagePadder).padWritesToPage()
	model := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(b []byte, at int) {
		t.Helper()
		if w, err := f.WriteAt(b, int64(at)); err != nil || w != len(b) {
			t.Fatalf("write of %d at %d: %d, %v", len(b), at, w, err)
		}
		copy(model[at:], b)
	}
	end := 0 // of the data
	for round := 0; round < 40; round++ {
		for end < size && rng.IntN(8) != 0 { // appends, the last ones up to the file's end
			b := make([]byte, 1+rng.IntN(min(100<<10, size-end)))
			for i := range b {
				b[i] = byte(1 + rng.IntN(255))
			}
			write(b, end)
			end += len(b)
		}
		cut := rng.IntN(end + 1) // truncation: zeros over [cut, end)
		if err := zeroRange(f, int64(cut), int64(end)); err != nil {
			t.Fatal(err)
		}
		clear(model[cut:end])
		end = cut
	}
	got := make([]byte, size)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, model) {
		t.Fatal("padded writes changed bytes they did not write")
	}
	if s, _ := f.Size(); s != size {
		t.Fatalf("padding grew the file to %d", s)
	}
}

// The preparer spaces a segment's zeros on a real file system while nobody
// waits for the segment, and stops pausing as soon as an append does.
func TestZeroFillPausesOnlyWhileNobodyWaits(t *testing.T) {
	const pause = 2 * time.Second // 64 steps of 256 KiB: 126 s of pauses if paced
	t0 := time.Now()
	w := mustOpen(t, t.TempDir(), Options{SegmentSizeBytes: 16 << 20, ZeroFillPause: pause})
	defer w.Close()
	if took := time.Since(t0); took > pause {
		t.Fatalf("Open waited %v for its first segment: its zeros were paced", took)
	}
	entries := func(first uint64, n int) []testEntry { // 512 KiB each
		es := make([]testEntry, n)
		for i := range es {
			es[i] = testEntry{index: first + uint64(i), term: 1, payload: bytes.Repeat([]byte{byte(i + 1)}, 512<<10)}
		}
		return es
	}
	mustAppend(t, w, entries(1, 18)) // 9 MiB, past half: the next segment is asked for
	w.mu.Lock()
	asked := w.prepAsked
	w.mu.Unlock()
	if !asked {
		t.Fatal("the next segment was not asked for past half of this one")
	}
	time.Sleep(pause / 2)
	w.prepMu.Lock()
	early := w.prepared != nil
	w.prepMu.Unlock()
	if early {
		t.Fatalf("the next segment was ready %v after it was asked for: its zeros were not paced", pause/2)
	}
	t1 := time.Now()
	mustAppend(t, w, entries(19, 16)) // past the end: this append waits for the segment
	if took := time.Since(t1); took > pause+pause/2 {
		t.Fatalf("an append that needed the segment waited %v: the preparer kept pausing", took)
	}
	w.mu.Lock()
	segs := len(w.segs)
	w.mu.Unlock()
	if segs < 2 {
		t.Fatalf("%d segments after 17 MiB of records in 16 MiB ones", segs)
	}
}
