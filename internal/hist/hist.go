// Package hist is the latency histogram that kraftbench's reports and
// kraftd's admin quantiles share.
package hist

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts latencies in log-linear buckets: exact below 128 ns,
// then 128 buckets per power of two, so a reported percentile is at most
// 1/128 (0.8 %) above the true sample. Its size is fixed (histBuckets
// counters, 58 KiB) however many samples it holds, which is what an open-
// loop run at a high rate needs; Record is lock-free and safe for
// concurrent use, and Percentile may run while others record (it then sees
// some, not all, of the samples in flight).
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	sumNs  atomic.Uint64
	maxNs  atomic.Uint64
}

const (
	histSubBits      = 7
	histSubBuckets   = 1 << histSubBits                        // per power of two
	histBuckets      = (64 - histSubBits + 1) * histSubBuckets // covers every uint64
	histExactBelowNs = histSubBuckets
)

// New returns an empty histogram (the zero Histogram is one too).
func New() *Histogram { return new(Histogram) }

// bucketOf maps a value to its bucket index.
func bucketOf(ns uint64) int {
	if ns < histExactBelowNs {
		return int(ns)
	}
	shift := bits.Len64(ns) - 1 - histSubBits // ≥ 0
	sub := ns >> uint(shift)                  // in [128, 256)
	return (shift+1)*histSubBuckets + int(sub-histSubBuckets)
}

// bucketHighNs is the largest value that maps to bucket i.
func bucketHighNs(i int) uint64 {
	if i < histExactBelowNs {
		return uint64(i)
	}
	shift := i/histSubBuckets - 1
	sub := uint64(i%histSubBuckets + histSubBuckets)
	return (sub+1)<<uint(shift) - 1
}

// Record adds one sample; a negative duration counts as 0.
func (h *Histogram) Record(d time.Duration) {
	ns := uint64(max(d, 0))
	h.counts[bucketOf(ns)].Add(1)
	h.total.Add(1)
	h.sumNs.Add(ns)
	for {
		m := h.maxNs.Load()
		if ns <= m || h.maxNs.CompareAndSwap(m, ns) {
			return
		}
	}
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxNs.Load()) }

// Mean is the average sample (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumNs.Load() / n)
}

// Percentile returns the nearest-rank q-quantile (q in [0, 1]) as the
// upper edge of its bucket, never above Max; 0 when empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	var counts [histBuckets]uint64
	var n uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHighNs(i)), h.Max())
		}
	}
	return h.Max()
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sumNs.Add(o.sumNs.Load())
	for m := o.maxNs.Load(); ; {
		cur := h.maxNs.Load()
		if m <= cur || h.maxNs.CompareAndSwap(cur, m) {
			return
		}
	}
}
