package perf

import (
	"math/rand/v2"
	"time"
)

// pacer yields the intended send times of an open-loop run: RatePerSec
// operations per second from start, evenly spaced or as a Poisson process.
// The times are fixed in advance and never move because a send is late:
// latency is measured from them, so a stalled server shows up as the
// queueing delay a real user would see (no coordinated omission).
type pacer struct {
	start   time.Time
	rate    float64 // operations per second, > 0
	poisson *rand.Rand
	i       uint64  // evenly spaced: index of the next time
	tNs     float64 // Poisson: offset of the next time from start
}

func newPacer(start time.Time, ratePerSec float64, poisson bool, seed uint64) *pacer {
	p := &pacer{start: start, rate: ratePerSec}
	if poisson {
		p.poisson = rand.New(rand.NewPCG(seed, 0x9ace))
	}
	return p
}

// next returns the next intended send time.
func (p *pacer) next() time.Time {
	if p.poisson != nil {
		p.tNs += p.poisson.ExpFloat64() * 1e9 / p.rate
		return p.start.Add(time.Duration(p.tNs))
	}
	// Computed from the index, not accumulated, so rounding never drifts.
	t := p.start.Add(time.Duration(float64(p.i) * 1e9 / p.rate))
	p.i++
	return t
}
