package perf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// KeyDist draws key numbers in [0, n). Implementations are immutable after
// construction, so workers share one and pass their own rand.Rand.
type KeyDist interface {
	Next(r *rand.Rand) uint64
	String() string
}

// ParseKeyDist reads "uniform", "zipf" (θ = 0.99, YCSB's default) or
// "zipf:θ" with 0 < θ < 1, over n keys.
func ParseKeyDist(s string, n int) (KeyDist, error) {
	if n < 1 {
		return nil, fmt.Errorf("kraft/perf: key space must be positive, got %d", n)
	}
	name, arg, hasArg := strings.Cut(s, ":")
	switch name {
	case "uniform":
		if hasArg {
			return nil, fmt.Errorf("kraft/perf: uniform takes no parameter: %q", s)
		}
		return Uniform{N: uint64(n)}, nil
	case "zipf":
		theta := 0.99
		if hasArg {
			t, err := strconv.ParseFloat(arg, 64)
			if err != nil {
				return nil, fmt.Errorf("kraft/perf: zipf parameter %q: %v", arg, err)
			}
			theta = t
		}
		return NewZipf(uint64(n), theta)
	}
	return nil, fmt.Errorf("kraft/perf: key distribution %q: want uniform, zipf or zipf:θ", s)
}

// Uniform draws every key with the same probability.
type Uniform struct{ N uint64 }

func (u Uniform) Next(r *rand.Rand) uint64 { return r.Uint64N(u.N) }
func (u Uniform) String() string           { return "uniform" }

// Zipf draws key k (0-based rank) with probability proportional to
// 1/(k+1)^θ, by the method of Gray et al., "Quickly generating billion-
// record synthetic databases" (SIGMOD 1994), as YCSB does. Unlike
// math/rand's Zipf it accepts θ < 1, the skew YCSB workloads use (0.99:
// the hottest of 100,000 keys takes ≈ 8 % of operations). Key 0 is the
// hottest; the key-value store hashes keys, so the ranks need no scrambling.
type Zipf struct {
	n                        uint64
	theta, alpha, zetan, eta float64
	halfPowTheta             float64 // 0.5^θ
}

// NewZipf precomputes ζ(n, θ), O(n) once.
func NewZipf(n uint64, theta float64) (*Zipf, error) {
	if !(theta > 0 && theta < 1) || n < 1 {
		return nil, fmt.Errorf("kraft/perf: zipf needs 0 < θ < 1 and n ≥ 1, got θ=%v n=%d", theta, n)
	}
	z := &Zipf{n: n, theta: theta, alpha: 1 / (1 - theta), halfPowTheta: math.Pow(0.5, theta)}
	z.zetan = zeta(n, theta)
	zeta2 := zeta(min(2, n), theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/z.zetan)
	return z, nil
}

func zeta(n uint64, theta float64) float64 {
	s := 0.0
	for i := uint64(1); i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

func (z *Zipf) Next(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetan
	switch {
	case uz < 1:
		return 0
	case uz < 1+z.halfPowTheta && z.n > 1:
		return 1
	}
	k := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(k, z.n-1)
}

func (z *Zipf) String() string { return fmt.Sprintf("zipf:%g", z.theta) }
