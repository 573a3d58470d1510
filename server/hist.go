package server

import (
	"math"
	"sync/atomic"
	"time"
)

// quantileHist counts durations in logarithmic buckets (about 4% wide,
// from 1µs to ~100s) so that admin commands can print P50/P95/P99 with
// small error; the Prometheus histograms of /metrics have coarse fixed
// buckets for histogram_quantile. Lock-free: Observe is called on hot paths.
type quantileHist struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	maxNs  atomic.Int64
}

const (
	histMinNs   = 1000 // 1µs
	histGrowth  = 1.04
	histBuckets = 470 // 1µs × 1.04^470 ≈ 100s
)

var histLogGrowth = math.Log(histGrowth)

func (h *quantileHist) Observe(d time.Duration) {
	ns := d.Nanoseconds()
	i := 0
	if ns > histMinNs {
		i = min(int(math.Log(float64(ns)/histMinNs)/histLogGrowth)+1, histBuckets-1)
	}
	h.counts[i].Add(1)
	h.total.Add(1)
	for {
		m := h.maxNs.Load()
		if ns <= m || h.maxNs.CompareAndSwap(m, ns) {
			break
		}
	}
}

// Quantile returns the upper bound of the bucket holding quantile q (0 when
// nothing was observed).
func (h *quantileHist) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			if i == 0 {
				return histMinNs
			}
			if i == histBuckets-1 { // the overflow bucket: only the max is known
				return time.Duration(h.maxNs.Load())
			}
			return min(time.Duration(histMinNs*math.Pow(histGrowth, float64(i))), time.Duration(h.maxNs.Load()))
		}
	}
	return time.Duration(h.maxNs.Load())
}

func (h *quantileHist) Count() uint64      { return h.total.Load() }
func (h *quantileHist) Max() time.Duration { return time.Duration(h.maxNs.Load()) }

// Summary is a histogram's quantiles for JSON.
type Summary struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func (h *quantileHist) Summary() Summary {
	return Summary{Count: h.Count(), P50ms: ms(h.Quantile(.5)), P95ms: ms(h.Quantile(.95)), P99ms: ms(h.Quantile(.99)), Maxms: ms(h.Max())}
}
