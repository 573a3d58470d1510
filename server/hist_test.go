package server

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Quantiles are within the bucket width (4%) of the exact ones.
func TestQuantileHistAccuracy(t *testing.T) {
	var h quantileHist
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for i := 0; i < 100000; i++ {
		d := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		all = append(all, d)
		h.Observe(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.05 {
			t.Errorf("q%.2f: %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != all[len(all)-1] || h.Count() != 100000 {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
	h.Observe(time.Hour) // beyond the last bucket: clamped, max exact
	if h.Max() != time.Hour || h.Quantile(1) != time.Hour {
		t.Fatalf("overflow: max %v q1 %v", h.Max(), h.Quantile(1))
	}
}
