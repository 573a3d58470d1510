package core

import (
	"testing"
	"time"
)

// The driver's Raft clock follows the wall clock however late the ticker
// delivers, up to maxCatchUp ticks at once: a late delivery is paid back
// with the ticks it stood for, a long stall only in part.
func TestTickClockCatchesUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := tickClock{interval: time.Millisecond, at: t0, maxCatchUp: 50}
	for _, step := range []struct {
		after time.Duration
		want  int
	}{
		{500 * time.Microsecond, 0},
		{time.Millisecond, 1},
		{1900 * time.Microsecond, 0}, // the fraction carries over
		{12 * time.Millisecond, 11},  // a tick 10 ms late
		{12 * time.Millisecond, 0},
		{40 * time.Millisecond, 28}, // late by less than maxCatchUp: paid back in full
		{time.Hour, 50},             // a stall: bounded, and the rest forgiven
		{time.Hour + time.Millisecond, 1},
	} {
		if got := c.due(t0.Add(step.after)); got != step.want {
			t.Fatalf("at +%v: %d ticks due, want %d", step.after, got, step.want)
		}
	}
}
