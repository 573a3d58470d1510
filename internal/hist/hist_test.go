package hist

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistogramEmpty(t *testing.T) {
	h := New()
	if h.Percentile(.5) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram reports a sample")
	}
}

func TestHistogramExactBelow128ns(t *testing.T) {
	h := New()
	for ns := range 128 {
		h.Record(time.Duration(ns))
	}
	if got := h.Percentile(.5); got != 63 { // rank 64 of 0..127
		t.Fatalf("p50 = %v, want 63ns", got)
	}
	h.Record(-5) // clamped to 0
	if h.Count() != 129 {
		t.Fatalf("count %d", h.Count())
	}
}

// Every value maps to a bucket whose upper edge is at most 1/128 above it,
// and buckets are contiguous and increasing.
func TestHistogramBucketBounds(t *testing.T) {
	for i := 1; i < histBuckets; i++ {
		if bucketHighNs(i) <= bucketHighNs(i-1) {
			t.Fatalf("bucket %d high %d not above bucket %d's %d", i, bucketHighNs(i), i-1, bucketHighNs(i-1))
		}
		if lo := bucketHighNs(i-1) + 1; bucketOf(lo) != i {
			t.Fatalf("value %d maps to %d, want %d", lo, bucketOf(lo), i)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64() >> r.IntN(64)
		hi := bucketHighNs(bucketOf(v))
		if hi < v || float64(hi-v) > float64(v)/128+1 {
			t.Fatalf("value %d in bucket with high edge %d", v, hi)
		}
	}
	if bucketOf(^uint64(0)) != histBuckets-1 {
		t.Fatal("largest value not in the last bucket")
	}
}

// Percentiles agree with exact nearest-rank ones within the bucket error.
func TestHistogramPercentilesMatchSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := New()
	var all []time.Duration
	for range 50000 {
		d := time.Duration(r.ExpFloat64() * float64(300*time.Microsecond))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0, .5, .9, .99, .999, 1} {
		want, got := exactPercentile(all, q), h.Percentile(q)
		if got < want || float64(got-want) > float64(want)/128+1 {
			t.Errorf("q=%v: got %v, exact %v", q, got, want)
		}
	}
	if h.Max() != all[len(all)-1] {
		t.Errorf("max %v, want %v", h.Max(), all[len(all)-1])
	}
}

func TestHistogramMergeAndConcurrentRecord(t *testing.T) {
	a, b := New(), New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				a.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	b.Record(time.Hour)
	b.Merge(a)
	if b.Count() != 8001 || b.Max() != time.Hour {
		t.Fatalf("merged count %d max %v", b.Count(), b.Max())
	}
	if p := b.Percentile(.5); p < 3990*time.Microsecond || p > 4040*time.Microsecond {
		t.Fatalf("merged p50 %v, want ≈ 4ms", p)
	}
}

// exactPercentile is the nearest-rank q-quantile of sorted samples, as
// Percentile ranks them.
func exactPercentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
