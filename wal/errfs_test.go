package wal

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// errFS wraps an FS and fails chosen operations.
type errFS struct {
	FS
	mu           sync.Mutex
	failSync     bool // File.Sync of segment files
	failPrealloc bool // File.Preallocate (a full disk)
	failDirSync  bool
	failWrite    bool // File.WriteAt of segment files
}

func (e *errFS) get(f *bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *f
}

func (e *errFS) set(f *bool, v bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	*f = v
}

func (e *errFS) Create(name string) (File, error) {
	f, err := e.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &errFile{File: f, fs: e, name: name}, nil
}

func (e *errFS) OpenRW(name string) (File, error) {
	f, err := e.FS.OpenRW(name)
	if err != nil {
		return nil, err
	}
	return &errFile{File: f, fs: e, name: name}, nil
}

func (e *errFS) SyncDir(dir string) error {
	if e.get(&e.failDirSync) {
		return syscall.EIO
	}
	return e.FS.SyncDir(dir)
}

type errFile struct {
	File
	fs   *errFS
	name string
}

func (f *errFile) Sync() error {
	if !strings.HasSuffix(f.name, stateFileName) && f.fs.get(&f.fs.failSync) {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (f *errFile) WriteAt(p []byte, off int64) (int, error) {
	if !strings.HasSuffix(f.name, stateFileName) && f.fs.get(&f.fs.failWrite) {
		return 0, syscall.EIO
	}
	return f.File.WriteAt(p, off)
}

func (f *errFile) Preallocate(n int64, zero bool) error {
	if strings.Contains(f.name, "prep-") && f.fs.get(&f.fs.failPrealloc) {
		return syscall.ENOSPC
	}
	return f.File.Preallocate(n, zero)
}

func TestFsyncErrorIsFatal(t *testing.T) {
	efs := &errFS{FS: NewMemFS()}
	w := mustOpen(t, "/d", memOpts(efs, 4096))
	rng := rand.New(rand.NewPCG(1, 1))
	mustAppend(t, w, makeEntries(rng, 1, 1, 5, 50))
	if err := w.WaitDurable(5); err != nil {
		t.Fatal(err)
	}
	efs.set(&efs.failSync, true)
	mustAppend(t, w, makeEntries(rng, 6, 1, 5, 50))
	err := w.WaitDurable(10)
	if !IsFatal(err) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("WaitDurable after failed fsync: %v", err)
	}
	if w.DurableIndex() != 5 {
		t.Fatalf("durable index moved to %d past a failed sync", w.DurableIndex())
	}
	// Never retried: even with the disk healthy again, writes are refused.
	efs.set(&efs.failSync, false)
	if err := w.Append(encodeEntries(makeEntries(rng, 11, 1, 1, 5))); !IsFatal(err) {
		t.Fatalf("Append after fatal: %v", err)
	}
	if err := w.TruncateSuffix(3); !IsFatal(err) {
		t.Fatalf("TruncateSuffix after fatal: %v", err)
	}
	if err := w.SaveHardState(HardState{Term: 1}); !IsFatal(err) {
		t.Fatalf("SaveHardState after fatal: %v", err)
	}
	if !IsFatal(w.Err()) {
		t.Fatalf("Err: %v", w.Err())
	}
	if err := w.Close(); !IsFatal(err) {
		t.Fatalf("Close after fatal: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "kraft/wal: ") {
		t.Fatalf("error text %q", err)
	}
}

func TestDirSyncErrorIsFatal(t *testing.T) {
	efs := &errFS{FS: NewMemFS()}
	w := mustOpen(t, "/d", memOpts(efs, 4096))
	defer w.Close()
	efs.set(&efs.failDirSync, true)
	rng := rand.New(rand.NewPCG(1, 2))
	mustAppend(t, w, makeEntries(rng, 1, 1, 3, 50)) // first segment: a rename
	if err := w.WaitDurable(3); !IsFatal(err) {
		t.Fatalf("WaitDurable: %v", err)
	}
}

func TestFullDiskIsCleanError(t *testing.T) {
	efs := &errFS{FS: NewMemFS()}
	efs.set(&efs.failPrealloc, true)
	w := mustOpen(t, "/d", memOpts(efs, 4096))
	defer w.Close()
	rng := rand.New(rand.NewPCG(1, 3))
	es := makeEntries(rng, 1, 1, 3, 50)
	err := w.Append(encodeEntries(es))
	if err == nil || !errors.Is(err, syscall.ENOSPC) || IsFatal(err) || !strings.HasPrefix(err.Error(), "kraft/wal: ") {
		t.Fatalf("Append on a full disk: %v", err)
	}
	if w.LastIndex() != 0 {
		t.Fatalf("failed append changed LastIndex to %d", w.LastIndex())
	}
	// Space comes back: the same append now succeeds.
	efs.set(&efs.failPrealloc, false)
	mustAppend(t, w, es)
	if err := w.WaitDurable(3); err != nil {
		t.Fatal(err)
	}
	// Fill the segment, then run out of space at the next roll.
	efs.set(&efs.failPrealloc, true)
	next := uint64(4)
	for i := 0; i < 200; i++ {
		es := makeEntries(rng, next, 1, 4, 100)
		if err := w.Append(encodeEntries(es)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append: %v", err)
			}
			break
		}
		next += 4
	}
	if next > 4+200*4-4 {
		t.Fatal("never ran out of space")
	}
	if w.LastIndex() != next-1 {
		t.Fatalf("LastIndex %d, want %d: a failed append wrote part of its batch", w.LastIndex(), next-1)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("WAL unusable after a full disk: %v", err)
	}
}

func TestWriteErrorIsFatal(t *testing.T) {
	efs := &errFS{FS: NewMemFS()}
	w := mustOpen(t, "/d", memOpts(efs, 4096))
	defer w.Close()
	rng := rand.New(rand.NewPCG(1, 4))
	mustAppend(t, w, makeEntries(rng, 1, 1, 3, 50))
	efs.set(&efs.failWrite, true)
	if err := w.Append(encodeEntries(makeEntries(rng, 4, 1, 3, 50))); !IsFatal(err) {
		t.Fatalf("Append with a failing write: %v", err)
	}
	efs.set(&efs.failWrite, false)
	if err := w.Append(encodeEntries(makeEntries(rng, 4, 1, 3, 50))); !IsFatal(err) {
		t.Fatalf("Append after a failed write: %v", err)
	}
	if err := w.WaitDurable(3); err != nil && !IsFatal(err) {
		t.Fatalf("WaitDurable: %v", err)
	}
}

// TestCloseStopsGoroutines: Open starts two goroutines, Close stops them,
// also while the preparer is busy and after a fatal error.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		efs := &errFS{FS: NewMemFS()}
		w := mustOpen(t, "/d", memOpts(efs, 4096))
		rng := rand.New(rand.NewPCG(2, uint64(i)))
		mustAppend(t, w, makeEntries(rng, 1, 1, 40, 100))
		if i%2 == 1 {
			efs.set(&efs.failSync, true)
			_ = w.WaitDurable(40)
		}
		_ = w.Close()
	}
	w, err := Open(t.TempDir(), Options{}) // a real 64 MiB preparation in flight
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

// SyncNow makes the appended entries durable on the caller's goroutine
// (a crash right after keeps them), never waits for the writer's round,
// reports a failed fsync as fatal, and does nothing outside fsync always.
func TestSyncNow(t *testing.T) {
	efs := &errFS{FS: NewMemFS()}
	w := mustOpen(t, "/d", memOpts(efs, 1<<16))
	rng := rand.New(rand.NewPCG(1, 9))
	next, ran := uint64(1), 0
	for i := 0; i < 50; i++ {
		mustAppend(t, w, makeEntries(rng, next, 1, 3, 50))
		next += 3
		did, err := w.SyncNow()
		if err != nil {
			t.Fatal(err)
		}
		if did {
			ran++
			if w.DurableIndex() != next-1 {
				t.Fatalf("SyncNow ran, durable index %d, want %d", w.DurableIndex(), next-1)
			}
		}
	}
	if ran == 0 {
		t.Fatal("SyncNow never ran a round (the writer goroutine took all 50)")
	}
	// Durable as read before the crash (the writer goroutine may sync
	// more after it).
	durable := w.DurableIndex()
	crashed := efs.FS.(*MemFS).Crash(rng)
	w2 := mustOpen(t, "/d", memOpts(crashed, 1<<16))
	if w2.LastIndex() < durable {
		t.Fatalf("after a crash the log ends at %d, durable was %d", w2.LastIndex(), durable)
	}
	w2.Close()

	efs.set(&efs.failSync, true)
	mustAppend(t, w, makeEntries(rng, next, 1, 3, 50))
	if _, err := w.SyncNow(); err != nil && !IsFatal(err) {
		t.Fatalf("SyncNow with a failing fsync: %v", err)
	}
	if err := w.WaitDurable(next + 2); !IsFatal(err) {
		t.Fatalf("after a failed sync: %v", err)
	}
	w.Close()

	b := mustOpen(t, "/b", Options{FS: NewMemFS(), SegmentSizeBytes: 1 << 16, Fsync: FsyncBatch, SyncInterval: time.Hour})
	defer b.Close()
	mustAppend(t, b, makeEntries(rng, 1, 1, 3, 50))
	if did, err := b.SyncNow(); did || err != nil {
		t.Fatalf("SyncNow in batch mode: %v %v", did, err)
	}
}
