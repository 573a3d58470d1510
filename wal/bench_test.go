package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"

	"github.com/kraftdb/kraft/wire"
)

// Benchmarks run on the real file system (t.TempDir, so the disk under
// $TMPDIR). perf/results/wal.md has the figures and the exact commands.

const (
	benchPayloadBytes = 128
	benchFileBytes    = 64 << 20
)

// batchEncoder re-encodes a batch of n entries with fresh indexes into a
// reused buffer (no allocation at steady state).
type batchEncoder struct {
	buf     []byte
	payload []byte
	n       int
	next    uint64
}

func newBatchEncoder(n int) *batchEncoder {
	p := make([]byte, benchPayloadBytes)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return &batchEncoder{buf: make([]byte, 0, n*wire.EntrySize(benchPayloadBytes)), payload: p, n: n, next: 1}
}

func (e *batchEncoder) encode() []byte {
	e.buf = e.buf[:0]
	for i := 0; i < e.n; i++ {
		e.buf = wire.AppendEntry(e.buf, wire.EntryNormal, e.next, 1, e.payload)
		e.next++
	}
	return e.buf
}

// rawFile is the physical floor: pwrite + fdatasync at sequential offsets
// of a preallocated file, a fresh one when full (outside the timing).
type rawFile struct {
	b    *testing.B
	dir  string
	f    *os.File
	off  int64
	seq  int
	zero bool
}

func newRawFile(b *testing.B, zero bool) *rawFile {
	r := &rawFile{b: b, dir: b.TempDir(), zero: zero}
	r.roll()
	return r
}

func (r *rawFile) roll() {
	if r.f != nil {
		name := r.f.Name()
		r.f.Close()
		os.Remove(name)
	}
	r.seq++
	f, err := OSFS{}.Create(filepath.Join(r.dir, "raw-"+strconv.Itoa(r.seq)))
	if err != nil {
		r.b.Fatal(err)
	}
	if err := f.Preallocate(benchFileBytes, r.zero); err != nil {
		r.b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		r.b.Fatal(err)
	}
	r.f, r.off = f.(*osFile).f, 0
}

func (r *rawFile) writeSync(p []byte) {
	if r.off+int64(len(p)) > benchFileBytes {
		r.roll()
	}
	if _, err := r.f.WriteAt(p, r.off); err != nil {
		r.b.Fatal(err)
	}
	if err := unix.Fdatasync(int(r.f.Fd())); err != nil {
		r.b.Fatal(err)
	}
	r.off += int64(len(p))
}

func (r *rawFile) close() {
	name := r.f.Name()
	r.f.Close()
	os.Remove(name)
}

// openBenchWAL opens a WAL in a temp dir and waits until the preparer has
// the first segment ready (its 64 MiB zero-fill would otherwise compete
// with the first timed syncs of every b.N round).
func openBenchWAL(b *testing.B, mode FsyncMode) *WAL {
	w, err := Open(b.TempDir(), Options{Fsync: mode})
	if err != nil {
		b.Fatal(err)
	}
	w.prepMu.Lock()
	for w.prepared == nil && w.prepErr == nil {
		w.prepCnd.Wait()
	}
	w.prepMu.Unlock()
	return w
}

// BenchmarkAppendVsRaw interleaves, batch by batch, a durable WAL append
// (Append + WaitDurable, FsyncAlways) with the raw floor (pwrite + one
// fdatasync of the same bytes on a zero-filled preallocated file), so both
// see the same disk and noise. It reports throughput and latency of each
// and their ratio. The WAL pays for preparing its next segment in the
// background; the raw loop's file changes are not timed.
func BenchmarkAppendVsRaw(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			w := openBenchWAL(b, FsyncAlways)
			defer w.Close()
			raw := newRawFile(b, true)
			defer raw.close()
			enc := newBatchEncoder(batch)
			rawEnc := newBatchEncoder(batch)
			var walNs, rawNs time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			rawStep := func() time.Duration {
				t0 := time.Now()
				raw.writeSync(rawEnc.encode())
				return time.Since(t0)
			}
			walStep := func() time.Duration {
				t0 := time.Now()
				if err := w.Append(enc.encode()); err != nil {
					b.Fatal(err)
				}
				if err := w.WaitDurable(enc.next - 1); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			for i := 0; i < b.N; i++ {
				// Alternate who goes first: a sync can pay for journal
				// work the previous one left.
				if i%2 == 0 {
					rawNs += rawStep()
					walNs += walStep()
				} else {
					walNs += walStep()
					rawNs += rawStep()
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(walNs.Nanoseconds())/n, "wal-ns/batch")
			b.ReportMetric(float64(rawNs.Nanoseconds())/n, "raw-ns/batch")
			b.ReportMetric(n*float64(batch)/walNs.Seconds(), "wal-entries/s")
			b.ReportMetric(n*float64(batch)/rawNs.Seconds(), "raw-entries/s")
			// Throughput ratio (>= 0.9 wanted) equals raw/wal latency.
			b.ReportMetric(float64(rawNs)/float64(walNs), "wal/raw-throughput")
			b.ReportMetric(float64(walNs)/float64(rawNs), "wal/raw-latency")
		})
	}
}

// BenchmarkAppend is the WAL alone: a batch of 256 x 128 B entries made
// durable per op. Checks 0 allocs/op.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			w := openBenchWAL(b, FsyncAlways)
			defer w.Close()
			enc := newBatchEncoder(batch)
			b.SetBytes(int64(batch * wire.EntrySize(benchPayloadBytes)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.Append(enc.encode()); err != nil {
					b.Fatal(err)
				}
				if err := w.WaitDurable(enc.next - 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkConcurrentAppenders: G goroutines each append one 128 B entry
// and wait for it to be durable. Group commit shows as entries/sync >> 1.
func BenchmarkConcurrentAppenders(b *testing.B) {
	for _, g := range []int{64, 256} {
		b.Run(fmt.Sprintf("appenders=%d", g), func(b *testing.B) {
			w := openBenchWAL(b, FsyncAlways)
			defer w.Close()
			var mu sync.Mutex // assigns indexes: the driver's loop in real life
			next := uint64(1)
			payload := make([]byte, benchPayloadBytes)
			per := (b.N + g - 1) / g
			syncs0 := w.syncRounds.Load()
			b.ResetTimer()
			var wg sync.WaitGroup
			for j := 0; j < g; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 0, wire.EntrySize(benchPayloadBytes))
					for i := 0; i < per; i++ {
						mu.Lock()
						idx := next
						buf = wire.AppendEntry(buf[:0], wire.EntryNormal, idx, 1, payload)
						err := w.Append(buf)
						if err == nil {
							next++
						}
						mu.Unlock()
						if err == nil {
							err = w.WaitDurable(idx)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			secs := b.Elapsed().Seconds()
			syncs := float64(w.syncRounds.Load() - syncs0)
			entries := float64(per * g)
			b.ReportMetric(entries/secs, "entries/s")
			b.ReportMetric(syncs/secs, "syncs/s")
			b.ReportMetric(entries/max(syncs, 1), "entries/sync")
		})
	}
}

// BenchmarkSyncPath compares the two durable write paths on the same
// zero-filled file in one run: (a) copy into a shared writable mapping and
// msync the dirty pages; (b) pwrite and fdatasync. One op = one batch.
func BenchmarkSyncPath(b *testing.B) {
	for _, batch := range []int{1, 256} {
		for _, path := range []string{"mmap-msync", "pwrite-fdatasync"} {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, path), func(b *testing.B) {
				raw := newRawFile(b, true)
				defer raw.close()
				enc := newBatchEncoder(batch)
				var m mmap.MMap
				remap := func() {
					if m != nil {
						m.Unmap()
					}
					var err error
					if m, err = mmap.MapRegion(raw.f, benchFileBytes, mmap.RDWR, 0, 0); err != nil {
						b.Fatal(err)
					}
				}
				if path == "mmap-msync" {
					remap()
					defer func() { m.Unmap() }()
				}
				page := int64(os.Getpagesize())
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := enc.encode()
					if path == "pwrite-fdatasync" {
						raw.writeSync(p)
						continue
					}
					if raw.off+int64(len(p)) > benchFileBytes {
						b.StopTimer()
						raw.roll()
						remap()
						b.StartTimer()
					}
					copy(m[raw.off:], p)
					from := raw.off &^ (page - 1)
					if err := unix.Msync(m[from:raw.off+int64(len(p))], unix.MS_SYNC); err != nil {
						b.Fatal(err)
					}
					raw.off += int64(len(p))
				}
			})
		}
	}
}

// BenchmarkPreallocation compares how fast pwrite+fdatasync runs on a
// segment preallocated with fallocate only and on one also zero-filled
// (and synced), in one run. One op = one batch of 256 x 128 B entries.
func BenchmarkPreallocation(b *testing.B) {
	for _, batch := range []int{1, 256} {
		for _, mode := range []string{"fallocate-only", "zero-filled"} {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, mode), func(b *testing.B) {
				raw := newRawFile(b, mode == "zero-filled")
				defer raw.close()
				enc := newBatchEncoder(batch)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := enc.encode()
					if raw.off+int64(len(p)) > benchFileBytes {
						b.StopTimer()
						raw.roll()
						b.StartTimer()
					}
					raw.writeSync(p)
				}
			})
		}
	}
}

// replayBytes is the log size of the recovery benchmarks:
// KRAFT_WAL_REPLAY_BYTES, default 64 MiB.
func replayBytes(b *testing.B) int64 {
	s := os.Getenv("KRAFT_WAL_REPLAY_BYTES")
	if s == "" {
		return 64 << 20
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		b.Fatalf("KRAFT_WAL_REPLAY_BYTES=%q: want a positive number of bytes", s)
	}
	return v
}

// BenchmarkReplay opens a WAL (verifying every record) and walks every
// entry through Entries + wire.EntryIter, from a warm page cache. The WAL
// size is KRAFT_WAL_REPLAY_BYTES (default 64 MiB; wal.md uses 1 GiB).
func BenchmarkReplay(b *testing.B) {
	size := replayBytes(b)
	dir := b.TempDir()
	w, err := Open(dir, Options{Fsync: FsyncNone})
	if err != nil {
		b.Fatal(err)
	}
	enc := newBatchEncoder(4096)
	var written int64
	for written < size {
		p := enc.encode()
		if err := w.Append(p); err != nil {
			b.Fatal(err)
		}
		written += int64(len(p))
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(written)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := Open(dir, Options{Fsync: FsyncNone})
		if err != nil {
			b.Fatal(err)
		}
		var n uint64
		last := w.LastIndex()
		for idx := w.FirstIndex(); idx <= last; {
			recs, err := w.Entries(idx, last+1, 64<<20)
			if err != nil {
				b.Fatal(err)
			}
			it := wire.NewEntryIter(recs)
			for {
				_, _, ok := it.Next()
				if !ok {
					break
				}
				n++
				idx++
			}
		}
		if n != last {
			b.Fatalf("replayed %d entries, want %d", n, last)
		}
		w.Close()
	}
}

// BenchmarkOpenRecycled measures recovery (Open: map every segment,
// verify every record, find the end of the log) of a compacted log whose
// live segments were all recycled, each with its .prior file, the newest
// one's unwritten tail holding prior records that Open must tell apart
// from new ones by their sector checksums; against the same log in fresh
// segments. KRAFT_WAL_REPLAY_BYTES sets the live log's size (default
// 64 MiB, in 4 MiB segments).
func BenchmarkOpenRecycled(b *testing.B) {
	live := replayBytes(b)
	for _, mode := range []struct {
		name    string
		recycle int
	}{{"recycled", 0}, {"fresh", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			dir := b.TempDir()
			opts := Options{SegmentSizeBytes: 4 << 20, RecycleSegments: mode.recycle}
			w, err := Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			// Three times the live size, compacted to the newest live bytes
			// as it goes: every live segment is then a recycled one.
			enc := newBatchEncoder(256)
			keep := uint64(live) / uint64(wire.EntrySize(benchPayloadBytes))
			for written, i := int64(0), 0; written < 3*live; i++ {
				p := enc.encode()
				if err := w.Append(p); err != nil {
					b.Fatal(err)
				}
				if err := w.WaitDurable(enc.next - 1); err != nil {
					b.Fatal(err)
				}
				written += int64(len(p))
				if i%32 == 31 && enc.next > keep+1 {
					if err := w.CompactPrefix(enc.next-1-keep, 1); err != nil {
						b.Fatal(err)
					}
					// What the writer goroutine does between its rounds,
					// which FsyncAlways's waiters mostly run themselves.
					releaseRetired(w)
				}
			}
			entries := w.LastIndex() - w.FirstIndex() + 1
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			names, _ := filepath.Glob(filepath.Join(dir, "[0-9]*.seg"))
			priors, _ := filepath.Glob(filepath.Join(dir, "[0-9]*.seg"+priorSuffix))
			if mode.recycle == 0 && len(priors) < len(names)-1 {
				b.Fatalf("%d of %d segment files have prior content: the log did not recycle", len(priors), len(names))
			}
			b.SetBytes(int64(entries) * int64(wire.EntrySize(benchPayloadBytes)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w, err := Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				if got := w.LastIndex() - w.FirstIndex() + 1; got != entries {
					b.Fatalf("reopened with %d entries, want %d", got, entries)
				}
				w.Close()
			}
			b.ReportMetric(float64(len(priors)), "prior-files")
		})
	}
}

// BenchmarkPreallocWAL measures the end-to-end cost of the two
// preallocation modes: two WALs, one with zero-filled segments and one
// with fallocate-only segments, take alternate batches (Append +
// WaitDurable) in one loop, so background segment preparation is paid
// where it falls. Segments are 16 MiB so that a run crosses several.
func BenchmarkPreallocWAL(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			open := func(fallocOnly bool) *WAL {
				w, err := Open(b.TempDir(), Options{SegmentSizeBytes: 16 << 20, FallocateOnly: fallocOnly})
				if err != nil {
					b.Fatal(err)
				}
				return w
			}
			zw, fw := open(false), open(true)
			defer zw.Close()
			defer fw.Close()
			zenc, fenc := newBatchEncoder(batch), newBatchEncoder(batch)
			var zNs, fNs time.Duration
			step := func(w *WAL, enc *batchEncoder) time.Duration {
				t0 := time.Now()
				if err := w.Append(enc.encode()); err != nil {
					b.Fatal(err)
				}
				if err := w.WaitDurable(enc.next - 1); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					zNs += step(zw, zenc)
					fNs += step(fw, fenc)
				} else {
					fNs += step(fw, fenc)
					zNs += step(zw, zenc)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(zNs.Nanoseconds())/n, "zero-ns/batch")
			b.ReportMetric(float64(fNs.Nanoseconds())/n, "falloc-ns/batch")
			b.ReportMetric(float64(fNs)/float64(zNs), "falloc/zero-time")
		})
	}
}

// BenchmarkRecycledWAL measures what recycling segments saves a log that
// keeps being compacted: batches of 256 x 128 B (Append + WaitDurable),
// and every 128 batches a compaction of all but the last ~2 MiB, as
// snapshots do, on 4 MiB segments so that a run crosses many. recycle
// writes retired segments again (the default); zerofill deletes them and
// zero-fills fresh ones in the background, paid where it falls. Run the
// two alone, alternately (-count), and compare with benchstat.
func BenchmarkRecycledWAL(b *testing.B) {
	for _, mode := range []struct {
		name    string
		recycle int
	}{{"recycle", 0}, {"zerofill", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			w, err := Open(b.TempDir(), Options{SegmentSizeBytes: 4 << 20, RecycleSegments: mode.recycle})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			enc := newBatchEncoder(256)
			keep := uint64(2<<20) / uint64(wire.EntrySize(benchPayloadBytes))
			b.SetBytes(int64(256 * wire.EntrySize(benchPayloadBytes)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.Append(enc.encode()); err != nil {
					b.Fatal(err)
				}
				if err := w.WaitDurable(enc.next - 1); err != nil {
					b.Fatal(err)
				}
				if i%128 == 127 && enc.next > keep+1 {
					if err := w.CompactPrefix(enc.next-1-keep, 1); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(w.SegmentsRecycled()), "recycled")
		})
	}
}
