package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
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

// okServer answers every request with StatusOK without a state machine,
// coalescing the answers to all requests it has buffered into one write,
// so that the benchmarks below measure the client, not the server.
func okServer(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		b.Cleanup(func() { _ = nc.Close() })
		var hello [wire.HelloSize]byte
		if _, err := io.ReadFull(nc, hello[:]); err != nil {
			return
		}
		if _, err := nc.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7, NodeID: 1})); err != nil {
			return
		}
		br := bufio.NewReaderSize(nc, 64<<10)
		var frame, out []byte
		var req wire.ClientRequest
		for {
			hdr, err := br.Peek(4)
			if err != nil {
				return
			}
			size, err := wire.FrameSize(hdr, 0)
			if err != nil {
				return
			}
			frame = append(frame[:0], make([]byte, size)...)
			if _, err := io.ReadFull(br, frame); err != nil {
				return
			}
			if err := wire.DecodeClientRequest(frame[wire.FrameHeaderSize:], &req); err != nil {
				return
			}
			out = wire.AppendClientResponse(out, &wire.ClientResponse{Seq: req.Seq, Index: req.Seq, Term: 1})
			if br.Buffered() == 0 {
				if _, err := nc.Write(out); err != nil {
					return
				}
				out = out[:0]
			}
		}
	})
	return ln.Addr().String()
}

// connectedBenchClient is a client of okServer that has connected (outside
// the timing).
func connectedBenchClient(b *testing.B) *Client {
	c, err := New(testConfig(okServer(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if _, err := c.Put(context.Background(), []byte("key"), nil); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPipelinedPutClientOnly: many callers, one connection, a server
// that costs next to nothing. allocs/op is the client's own.
func BenchmarkPipelinedPutClientOnly(b *testing.B) {
	c := connectedBenchClient(b)
	ctx := context.Background()
	key, value := []byte("key"), make([]byte, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
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

// BenchmarkPipelinedPutAsyncClientOnly is BenchmarkPipelinedPutClientOnly
// with as many PutAsync calls in flight as it has callers, each started
// from the previous one's callback: no goroutine is parked per call.
func BenchmarkPipelinedPutAsyncClientOnly(b *testing.B) {
	c := connectedBenchClient(b)
	ctx := context.Background()
	key, value := []byte("key"), make([]byte, 100)
	inflight := min(64*runtime.GOMAXPROCS(0), b.N)
	var started atomic.Int64
	var wg sync.WaitGroup
	var done func(WriteResult, error)
	done = func(_ WriteResult, err error) {
		if err != nil {
			b.Error(err)
		}
		if started.Add(1) <= int64(b.N) {
			c.PutAsync(ctx, key, value, done)
			return
		}
		wg.Done()
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	started.Store(int64(inflight))
	wg.Add(inflight)
	for range inflight {
		c.PutAsync(ctx, key, value, done)
	}
	wg.Wait()
	b.StopTimer()
	if w := c.stats.writeCalls.Load(); w > 0 {
		b.ReportMetric(float64(c.stats.framesQueued.Load())/float64(w), "frames/write")
	}
}

// TestPutDoesNotAllocate holds the client's hot path to zero allocations:
// a Put that succeeds on an established connection (the response's value
// is the only thing a call must allocate, and a put has none).
func TestPutDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items on purpose under the race detector")
	}
	c := newTestClient(t, testConfig(okServer(t)))
	ctx := context.Background()
	key, value := []byte("key"), make([]byte, 100)
	put := func() {
		if _, err := c.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	put()
	if n := testing.AllocsPerRun(200, put); n > 0 {
		t.Fatalf("%v allocs per put, want 0", n)
	}
}
