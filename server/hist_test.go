package server

import (
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/hist"
)

// summarize reports the quantiles in milliseconds, each within the
// histogram's 0.8% above the true sample, and the max exactly.
func TestSummarize(t *testing.T) {
	var h hist.Histogram
	if s := summarize(&h); s != (Summary{}) {
		t.Fatalf("empty histogram summarized as %+v", s)
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * 100 * time.Microsecond) // 0.1 .. 100 ms
	}
	s := summarize(&h)
	near := func(got, want float64) bool { return got >= want && got <= want*1.008 }
	if s.Count != 1000 || !near(s.P50ms, 50) || !near(s.P95ms, 95) || !near(s.P99ms, 99) || s.Maxms != 100 {
		t.Fatalf("summary %+v, want count 1000, p50 50, p95 95, p99 99, max 100 ms", s)
	}
}
