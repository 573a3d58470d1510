package perf

import (
	"testing"
	"time"
)

func TestPacerEvenlySpaced(t *testing.T) {
	start := time.Unix(1000, 0)
	p := newPacer(start, 3000, false, 1) // 333.33… µs apart
	var last time.Time
	for i := range 30001 {
		last = p.next()
		if i == 1 && last.Sub(start) != 333333*time.Nanosecond {
			t.Fatalf("second time at %v", last.Sub(start))
		}
	}
	if got := last.Sub(start); got != 10*time.Second { // no drift from rounding
		t.Fatalf("time 30000 at %v, want 10s", got)
	}
}

func TestPacerPoissonMeanRate(t *testing.T) {
	start := time.Unix(0, 0)
	p := newPacer(start, 1000, true, 42)
	prev := start
	var last time.Time
	for range 100000 {
		last = p.next()
		if last.Before(prev) {
			t.Fatal("times go backwards")
		}
		prev = last
	}
	if s := last.Sub(start).Seconds(); s < 98 || s > 102 {
		t.Fatalf("100,000 arrivals at 1000/s took %.1fs", s)
	}
}
