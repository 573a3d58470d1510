package wal

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

func TestFsyncModes(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncBatch, FsyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			got, err := ParseFsyncMode(mode.String())
			if err != nil || got != mode {
				t.Fatalf("ParseFsyncMode(%q) = %v, %v", mode.String(), got, err)
			}
			fsys := NewMemFS()
			opts := memOpts(fsys, 8192)
			opts.Fsync, opts.SyncInterval = mode, time.Millisecond
			w := mustOpen(t, "/d", opts)
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			es := makeEntries(rng, 1, 1, 10, 100)
			mustAppend(t, w, es)
			if mode != FsyncAlways && w.DurableIndex() != 10 {
				t.Fatalf("%v: durable %d right after append, want 10 (reported on write)", mode, w.DurableIndex())
			}
			select {
			case <-w.Durable():
			case <-time.After(5 * time.Second):
				t.Fatal("no durable notification")
			}
			if err := w.WaitDurable(10); err != nil {
				t.Fatal(err)
			}
			switch mode {
			case FsyncNone:
				// Nothing synced yet: a power loss keeps no entry.
				w2 := mustOpen(t, "/d", Options{FS: fsys.Crash(nil), SegmentSizeBytes: 8192})
				if w2.LastIndex() != 0 {
					t.Fatalf("none: %d entries survived without a sync", w2.LastIndex())
				}
				w2.Close()
			case FsyncBatch:
				deadline := time.Now().Add(5 * time.Second)
				for {
					w2 := mustOpen(t, "/d", Options{FS: fsys.Crash(nil), SegmentSizeBytes: 8192})
					n := w2.LastIndex()
					w2.Close()
					if n == 10 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("batch: interval sync never made the entries durable (%d)", n)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			w2 := mustOpen(t, "/d", Options{FS: fsys.Crash(nil), SegmentSizeBytes: 8192})
			if w2.LastIndex() != 10 {
				t.Fatalf("after Sync: %d entries survive", w2.LastIndex())
			}
			w2.Close()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Append(encodeEntries(makeEntries(rng, 11, 1, 1, 1))); !errors.Is(err, ErrClosed) {
				t.Fatalf("Append after Close: %v", err)
			}
			if err := w.Close(); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
	if _, err := ParseFsyncMode("sometimes"); err == nil {
		t.Fatal("ParseFsyncMode accepted garbage")
	}
}

// TestConcurrentUse runs appenders, readers, hard-state saves and a
// truncation together (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, 16384))
	defer w.Close()
	var mu sync.Mutex // the driver's loop: assigns indexes
	next := uint64(1)
	var appenders, others sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 8; g++ {
		appenders.Add(1)
		go func(g int) {
			defer appenders.Done()
			payload := make([]byte, 40+g)
			for i := 0; i < 100; i++ {
				mu.Lock()
				idx := next
				err := w.Append(wire.AppendEntry(nil, wire.EntryNormal, idx, 1, payload))
				if err == nil {
					next++
				}
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				// ErrUnavailable: a truncation removed idx meanwhile.
				if err := w.WaitDurable(idx); err != nil && !errors.Is(err, ErrUnavailable) {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	others.Add(2)
	go func() { // reader
		defer others.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			last := w.LastIndex()
			if last < w.FirstIndex() {
				continue
			}
			if _, err := w.Entries(w.FirstIndex(), last+1, 4096); err != nil && !errors.Is(err, ErrUnavailable) {
				t.Error(err)
				return
			}
			_, _ = w.Term(last)
		}
	}()
	go func() { // hard state
		defer others.Done()
		for i := uint64(1); i < 50; i++ {
			if err := w.SaveHardState(HardState{Term: i}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for truncated := false; !truncated; {
		mu.Lock()
		if next > 100 {
			if err := w.TruncateSuffix(next - 5); err != nil {
				t.Error(err)
			}
			next -= 5
			truncated = true
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
	}
	appenders.Wait()
	close(stop)
	others.Wait()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := uint64(len(readAll(t, w))); got != w.LastIndex() {
		t.Fatalf("read %d entries, LastIndex %d", got, w.LastIndex())
	}
}

func TestEntriesLimits(t *testing.T) {
	fsys := NewMemFS()
	w := mustOpen(t, "/d", memOpts(fsys, 4096))
	defer w.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	es := makeEntries(rng, 1, 1, 60, 100)
	mustAppend(t, w, es)
	// maxBytes smaller than one record still returns one record.
	b, err := w.Entries(1, 61, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := wire.VerifyEntries(b, 1); err != nil || n != 1 {
		t.Fatalf("one record: %d %v", n, err)
	}
	// A range never crosses a segment; it stops before hi.
	b, err = w.Entries(2, 5, 1<<20)
	if n, err2 := wire.VerifyEntries(b, 2); err != nil || err2 != nil || n != 3 {
		t.Fatalf("[2,5): %d %v %v", n, err, err2)
	}
	b, _ = w.Entries(1, 61, 1<<20)
	if n, _ := wire.VerifyEntries(b, 1); n >= 60 || len(b) > 4096 {
		t.Fatalf("range crossed a segment: %d records, %d bytes", n, len(b))
	}
	if _, err := w.Entries(0, 3, 100); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Entries(0): %v", err)
	}
	if _, err := w.Term(61); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Term(61): %v", err)
	}
	if tm, err := w.Term(0); err != nil || tm != 0 {
		t.Fatalf("Term(0) = %d, %v", tm, err)
	}
}

func TestAppendZeroAllocs(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts differ under -race")
	}
	w, err := Open(t.TempDir(), Options{SegmentSizeBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	enc := newBatchEncoder(64)
	// The first append takes the segment prepared at Open and asks for the
	// next one, which the preparer readies in the background in paced
	// steps that allocate (a file, a timer per pause); AllocsPerRun counts
	// every goroutine's allocations, so wait for it: only the append path
	// is measured.
	if err := w.Append(enc.encode()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		w.prepMu.Lock()
		done := w.prepared != nil || w.prepErr != nil
		w.prepMu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the next segment was not prepared within 10 s")
		}
	}
	allocs := testing.AllocsPerRun(50, func() {
		if err := w.Append(enc.encode()); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitDurable(enc.next - 1); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("append path: %v allocs/op, want 0", allocs)
	}
}
