package perf

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestParseKeyDist(t *testing.T) {
	for _, bad := range []string{"", "zipfian", "uniform:1", "zipf:0", "zipf:1", "zipf:1.5", "zipf:x"} {
		if _, err := ParseKeyDist(bad, 100); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseKeyDist("uniform", 0); err == nil {
		t.Error("empty key space accepted")
	}
	for in, want := range map[string]string{"uniform": "uniform", "zipf": "zipf:0.99", "zipf:0.5": "zipf:0.5"} {
		d, err := ParseKeyDist(in, 1000)
		if err != nil || d.String() != want {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
}

func TestZipfOneKey(t *testing.T) {
	z, err := NewZipf(1, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		if k := z.Next(r); k != 0 {
			t.Fatalf("drew %d from one key", k)
		}
	}
}

// The two hottest keys are drawn as often as 1/(k+1)^θ / ζ(n, θ) says (the
// method is exact for them and approximates the rest), and nothing falls
// outside [0, n).
func TestZipfFrequencies(t *testing.T) {
	const n, draws = 1000, 400000
	z, err := NewZipf(n, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	counts := make([]int, n)
	for range draws {
		k := z.Next(r)
		if k >= n {
			t.Fatalf("key %d out of range", k)
		}
		counts[k]++
	}
	for k := range 2 {
		want := 1 / math.Pow(float64(k+1), 0.99) / z.zetan
		got := float64(counts[k]) / draws
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("key %d: frequency %.4f, want ≈ %.4f", k, got, want)
		}
	}
	if counts[0] < 10*counts[n/2] {
		t.Errorf("not skewed: key 0 drawn %d times, key %d %d times", counts[0], n/2, counts[n/2])
	}
}

func TestUniformRange(t *testing.T) {
	u := Uniform{N: 10}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[uint64]bool{}
	for range 10000 {
		k := u.Next(r)
		if k >= 10 {
			t.Fatalf("key %d", k)
		}
		seen[k] = true
	}
	if len(seen) != 10 {
		t.Fatalf("drew %d of 10 keys", len(seen))
	}
}
