package perf

import "github.com/kraftdb/kraft/internal/hist"

// Histogram counts latencies in log-linear buckets (internal/hist: at most
// 0.8% above the true sample, fixed size, lock-free).
type Histogram = hist.Histogram

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return hist.New() }
