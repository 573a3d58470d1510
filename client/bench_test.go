package client

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/kraftdb/kraft/sm"
)

// BenchmarkPut is one caller: a round trip per put (loopback latency plus
// the fake server's apply).
func BenchmarkPut(b *testing.B) {
	fs := newFakeServer(&testing.T{}, sm.DefaultKVConfig())
	b.Cleanup(fs.Close)
	c, err := New(testConfig(fs.addr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	key, value := []byte("key"), make([]byte, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := c.Put(ctx, key, value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelinedPut runs many callers over the one connection; it
// reports how many frames each write syscall carried.
func BenchmarkPipelinedPut(b *testing.B) {
	fs := newFakeServer(&testing.T{}, sm.DefaultKVConfig())
	b.Cleanup(fs.Close)
	c, err := New(testConfig(fs.addr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	value := make([]byte, 100)
	var next atomic.Uint64
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	b.SetParallelism(64) // 64 callers per GOMAXPROCS
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := []byte("key-" + strconv.FormatUint(next.Add(1), 10))
		for pb.Next() {
			if _, err := c.Put(ctx, key, value); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if w := c.stats.writeCalls.Load(); w > 0 {
		b.ReportMetric(float64(c.stats.framesQueued.Load())/float64(w), "frames/write")
	}
}
