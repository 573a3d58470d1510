package server

import (
	"time"

	"github.com/kraftdb/kraft/internal/hist"
)

// Summary is a histogram's quantiles for JSON (kraft-ctl latency, disk).
// The histograms behind it (internal/hist) report each quantile at most
// 0.8% above the true sample; the Prometheus histograms of /metrics have
// coarse fixed buckets for histogram_quantile.
type Summary struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func summarize(h *hist.Histogram) Summary {
	return Summary{Count: h.Count(), P50ms: ms(h.Percentile(.5)), P95ms: ms(h.Percentile(.95)), P99ms: ms(h.Percentile(.99)), Maxms: ms(h.Max())}
}
