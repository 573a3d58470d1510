package sm

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// benchKeys is the store size of the snapshot benchmarks:
// KRAFT_BENCH_KEYS (default 1,000,000).
func benchKeys(b *testing.B) int {
	if s := os.Getenv("KRAFT_BENCH_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

// loadKV fills a store with keys of 16 B and values of valueBytes through
// Apply, in batches.
func loadKV(b testing.TB, keys, valueBytes int) (*KV, uint64) {
	b.Helper()
	kv, _ := NewKV(DefaultKVConfig())
	value := make([]byte, valueBytes)
	c := &client{id: 1}
	const batch = 1024
	cmds := make([]Command, 0, batch)
	res := make([]Result, batch)
	index := uint64(0)
	flush := func() {
		kv.Apply(cmds, res[:len(cmds)])
		cmds = cmds[:0]
	}
	for i := range keys {
		for j := range value {
			value[j] = byte('a' + (i+j)%26)
		}
		index++
		cmds = append(cmds, Command{Index: index, Term: 1, Data: command(1, c.req(wire.OpPut, fmt.Sprintf("key-%011d", i), string(value), ""))})
		if len(cmds) == batch {
			flush()
		}
	}
	flush()
	return kv, index
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// Taking a snapshot of a large, mostly unchanged store: full against delta.
// Each iteration first changes 1% of the keys (not timed), then captures
// and writes the snapshot (timed). Run:
//
//	go test -run '^$' -bench KVSnapshotFullVsDelta -benchtime 5x ./sm
func BenchmarkKVSnapshotFullVsDelta(b *testing.B) {
	keys := benchKeys(b)
	kv, index := loadKV(b, keys, 100)
	snapshotAll(b, kv) // the delta's base
	c := &client{id: 2}
	changes := make([]Command, keys/100)
	res := make([]Result, len(changes))
	for _, delta := range []bool{false, true} {
		name := "full"
		if delta {
			name = "delta"
		}
		b.Run(fmt.Sprintf("%s/keys=%d/changed=1%%", name, keys), func(b *testing.B) {
			var bytes int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := range changes {
					index++
					changes[j] = Command{Index: index, Term: 1, Data: command(1, c.req(wire.OpPut, fmt.Sprintf("key-%011d", (j*100+i)%keys), "changed", ""))}
				}
				kv.Apply(changes, res)
				b.StartTimer()
				var s Snapshot
				if delta {
					var ok bool
					var err error
					if s, _, ok, err = kv.SnapshotDelta(); !ok || err != nil {
						b.Fatalf("SnapshotDelta: ok %v %v", ok, err)
					}
				} else {
					s, _ = kv.Snapshot()
				}
				w := &countWriter{}
				if _, err := s.WriteTo(w); err != nil {
					b.Fatal(err)
				}
				s.Release()
				bytes = w.n
			}
			b.ReportMetric(float64(bytes), "snapshot-bytes")
		})
	}
}

func snapshotAll(b *testing.B, kv *KV) {
	s, _ := kv.Snapshot()
	s.WriteTo(io.Discard)
	s.Release()
}

// What a capture costs on the Apply goroutine: freezing the table (now)
// against copying it (what Snapshot did before: a clone of the keys).
//
//	go test -run '^$' -bench KVSnapshotCapture -benchtime 20x ./sm
func BenchmarkKVSnapshotCapture(b *testing.B) {
	keys := benchKeys(b)
	kv, _ := loadKV(b, keys, 100)
	b.Run(fmt.Sprintf("freeze/keys=%d", keys), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s, _ := kv.Snapshot()
			b.StopTimer()
			s.Release()
			kv.Apply(nil, nil) // drains the (empty) overlay
			b.StartTimer()
		}
	})
	b.Run(fmt.Sprintf("clone-table(before)/keys=%d", keys), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			t := kv.data.clone()
			_ = t
		}
	})
}
