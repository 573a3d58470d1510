package server

import (
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// BenchmarkRequestCounter is the per-request metrics update of the client
// path, from parallel goroutines as the event loops and the apply
// callback call it.
func BenchmarkRequestCounter(b *testing.B) {
	m := newNodeMetrics(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.request(wire.OpPut, wire.StatusOK)
		}
	})
}
