package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// envInt reads a benchmark size from the environment.
func envInt(b *testing.B, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

const stallValueBytes = 1024

func stallKey(i int) string { return fmt.Sprintf("key-%011d", i) }

// writeRestoredDir leaves dir as a restored data directory (the guide's
// procedure: nothing but a snapshot file): a one-voter cluster whose KV
// holds keys of stallValueBytes values, compressible or random.
func writeRestoredDir(b *testing.B, dir string, keys int, random bool) {
	b.Helper()
	kv, _ := sm.NewKV(sm.DefaultKVConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, stallValueBytes)
	cmds := make([]sm.Command, 0, 1024)
	res := make([]sm.Result, 1024)
	index := uint64(0)
	for i := range keys {
		fillValue(value, rng, random)
		index++
		cmds = append(cmds, sm.Command{Index: index, Term: 1, Data: kvCommandFrom(1, index, wire.OpPut, stallKey(i), string(value))})
		if len(cmds) == cap(cmds) || i == keys-1 {
			kv.Apply(cmds, res[:len(cmds)])
			cmds = cmds[:0]
		}
	}
	s, err := kv.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	w, err := wal.Open(filepath.Join(dir, "scratch"), wal.Options{SnapshotDir: filepath.Join(dir, "data", "snapshots"), Fsync: wal.FsyncNone, SegmentSizeBytes: wal.MinSegmentSizeBytes})
	if err != nil {
		b.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		enc := AppendMembership(nil, Membership{Voters: []uint64{1}})
		hdr := binary.LittleEndian.AppendUint32(nil, uint32(len(enc)))
		hdr = append(append(hdr, enc...), chainMagic...)
		hdr = appendFrameHeader(hdr, frameFull)
		// The frame length is unknown until written: count it first.
		cw := &countingWriter{}
		s.WriteTo(cw)
		binary.LittleEndian.PutUint64(hdr[len(hdr)-8:], uint64(cw.n))
		pw.Write(hdr)
		_, err := s.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	if _, err := w.SaveSnapshot(index, 1, pr); err != nil {
		b.Fatal(err)
	}
	s.Release()
	w.Close()
}

// fillValue makes a random value, or a JSON-like document (repeated field
// names, random numbers): the compressible kind.
func fillValue(value []byte, rng *rand.Rand, random bool) {
	if random {
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		return
	}
	doc := value[:0]
	for len(doc) < len(value) {
		doc = fmt.Appendf(doc, `{"id":%d,"user":"user-%d","score":%d,"active":true,"tags":["alpha","beta"]},`,
			rng.Uint32(), rng.IntN(100000), rng.IntN(1000))
	}
	copy(value, doc)
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkSnapshotApplyStall measures what a snapshot of a large KV costs
// the commits that happen meanwhile, through a one-node core.Node (WAL
// FsyncNone, no transport): 8 writers overwrite random keys; the latency
// of each Propose (proposal to applied) is recorded before and during one
// snapshot. The state is KRAFT_SNAPSTALL_MIB MiB of 1 KiB values (default
// 64; 1024 for the figures in perf/results/snapshots.md):
//
//	KRAFT_SNAPSTALL_MIB=1024 go test -run '^$' -bench SnapshotApplyStall -benchtime 1x -timeout 30m ./core
func BenchmarkSnapshotApplyStall(b *testing.B) {
	mib := envInt(b, "KRAFT_SNAPSTALL_MIB", 64)
	keys := mib << 10
	for _, mode := range []struct {
		name string
		o    SnapshotOptions
	}{
		{"async", SnapshotOptions{}},
		{"sync", SnapshotOptions{Sync: true}},
		{"async-zstd", SnapshotOptions{Compression: wal.SnapshotCodecZstd}},
	} {
		b.Run(fmt.Sprintf("%s/MiB=%d", mode.name, mib), func(b *testing.B) {
			for range b.N {
				runApplyStall(b, keys, mode.o)
			}
		})
	}
}

func runApplyStall(b *testing.B, keys int, o SnapshotOptions) {
	dir := b.TempDir()
	writeRestoredDir(b, dir, keys, false)
	kv, _ := sm.NewKV(sm.DefaultKVConfig())
	t0 := time.Now()
	n, err := NewNode(NodeConfig{
		Raft: DefaultConfig(1, rand.NewPCG(1, 1)), WALDir: filepath.Join(dir, "data"),
		WAL:          wal.Options{Fsync: wal.FsyncNone},
		StateMachine: kv, Transport: alone{}, Snapshots: o,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	b.Logf("restored %d keys (%d MiB) in %v", kv.Len(), kv.SizeBytes()>>20, time.Since(t0).Round(time.Millisecond))
	type sample struct {
		start time.Time
		lat   time.Duration
	}
	var mu sync.Mutex
	var samples []sample
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			values := make([]string, 64)
			for i := range values {
				v := make([]byte, stallValueBytes)
				fillValue(v, rng, false)
				values[i] = string(v)
			}
			for seq := uint64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				cmd := kvCommandFrom(uint64(100+w), seq, wire.OpPut, stallKey(rng.IntN(keys)), values[seq%64])
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				start := time.Now()
				_, err := n.Propose(ctx, cmd)
				lat := time.Since(start)
				cancel()
				if err != nil {
					time.Sleep(time.Millisecond) // not leader yet
					continue
				}
				mu.Lock()
				samples = append(samples, sample{start, lat})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	snapStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	if _, err := n.Snapshot(ctx); err != nil {
		b.Fatal(err)
	}
	cancel()
	snapEnd := time.Now()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	var before, during []time.Duration
	var worst sample
	for _, s := range samples {
		if s.lat > worst.lat && !s.start.Before(snapStart) && s.start.Before(snapEnd) {
			worst = s
		}
		switch {
		case s.start.Before(snapStart):
			before = append(before, s.lat)
		case s.start.Before(snapEnd):
			during = append(during, s.lat)
		}
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	b.Logf("slowest commit during the snapshot: %v, proposed %v after the snapshot began (it took %v)",
		worst.lat.Round(time.Millisecond), worst.start.Sub(snapStart).Round(time.Millisecond), snapEnd.Sub(snapStart).Round(time.Millisecond))
	b.ReportMetric(snapEnd.Sub(snapStart).Seconds(), "snapshot-s")
	b.ReportMetric(float64(pct(before, 0.99).Microseconds()), "p99-before-µs")
	b.ReportMetric(float64(pct(during, 0.50).Microseconds()), "p50-during-µs")
	b.ReportMetric(float64(pct(during, 0.99).Microseconds()), "p99-during-µs")
	b.ReportMetric(float64(pct(during, 1).Microseconds()), "max-during-µs")
	b.ReportMetric(float64(len(during))/snapEnd.Sub(snapStart).Seconds(), "commits/s-during")
	files, _ := n.SnapshotFiles()
	if len(files) > 0 {
		if st, err := os.Stat(files[len(files)-1].File); err == nil {
			b.ReportMetric(float64(st.Size())/float64(kv.SizeBytes()), "file/state")
		}
	}
}

// BenchmarkSnapshotFileCompression writes a KV's snapshot file with and
// without zstd and reports the on-disk size over the uncompressed data,
// for JSON-like values and for random ones (KRAFT_SNAPFILE_MIB of 1 KiB
// values, default 64):
//
//	go test -run '^$' -bench SnapshotFileCompression -benchtime 3x ./core
func BenchmarkSnapshotFileCompression(b *testing.B) {
	mib := envInt(b, "KRAFT_SNAPFILE_MIB", 64)
	for _, random := range []bool{false, true} {
		kind := "json"
		if random {
			kind = "random"
		}
		kv, _ := sm.NewKV(sm.DefaultKVConfig())
		rng := rand.New(rand.NewPCG(3, 4))
		value := make([]byte, stallValueBytes)
		var index uint64
		res := make([]sm.Result, 1)
		for i := range mib << 10 {
			fillValue(value, rng, random)
			index++
			kv.Apply([]sm.Command{{Index: index, Term: 1, Data: kvCommandFrom(1, index, wire.OpPut, stallKey(i), string(value))}}, res)
		}
		s, _ := kv.Snapshot()
		var data bytes.Buffer
		s.WriteTo(&data)
		s.Release()
		for _, codec := range []wal.SnapshotCodec{wal.SnapshotCodecNone, wal.SnapshotCodecZstd} {
			b.Run(fmt.Sprintf("%s/%v/MiB=%d", kind, codec, mib), func(b *testing.B) {
				dir := b.TempDir()
				w, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{SnapshotDir: filepath.Join(dir, "snap"), Fsync: wal.FsyncNone, SegmentSizeBytes: wal.MinSegmentSizeBytes})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				b.SetBytes(int64(data.Len()))
				var meta wal.SnapshotMeta
				for i := range b.N {
					if meta, err = w.SaveSnapshotFile(uint64(i+1), 1, bytes.NewReader(data.Bytes()), wal.SnapshotFileOptions{Codec: codec}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				st, err := os.Stat(meta.File)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.Size())/float64(data.Len()), "disk/data")
				t0 := time.Now()
				if _, _, err := w.LoadSnapshotChain(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(t0).Seconds()*1e3, "load-ms")
			})
		}
	}
}
