package sim

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestFigure16LeaderReplacement regenerates perf/results/elections.md's
// table (1,000 leader crashes per row). It is slow-ish, so it runs only with
// KRAFT_FIG16=1:
//
//	KRAFT_FIG16=1 go test ./core/sim -run TestFigure16 -count=1 -v
func TestFigure16LeaderReplacement(t *testing.T) {
	if os.Getenv("KRAFT_FIG16") == "" {
		t.Skip("set KRAFT_FIG16=1 to regenerate the Figure 16 table")
	}
	trials := 1000
	for _, row := range []struct {
		min, max        int
		preVote, checkQ bool
	}{
		{150, 300, true, true}, {150, 300, false, false}, {150, 200, true, true},
		{12, 24, true, true}, {12, 24, false, false},
	} {
		start := time.Now()
		var ms []float64
		for seed := uint64(1); seed <= uint64(trials); seed++ {
			d, err := LeaderReplacementTime(seed, row.min, row.max, row.preVote, row.checkQ)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, float64(d)/float64(Millisecond))
		}
		slices.Sort(ms)
		sum := 0.0
		for _, v := range ms {
			sum += v
		}
		pct := func(p float64) float64 { return ms[int(p*float64(len(ms)-1))] }
		fmt.Printf("| %d–%d ms | %v | %v | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", row.min, row.max,
			onOff(row.preVote), onOff(row.checkQ), trials, sum/float64(len(ms)), pct(0.5), pct(0.99), ms[len(ms)-1], time.Since(start).Seconds())
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func TestLeaderReplacementIsQuick(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		d, err := LeaderReplacementTime(seed, 150, 300, true, true)
		if err != nil {
			t.Fatal(err)
		}
		if d > 2*Second {
			t.Fatalf("seed %d: %v ms to replace the leader", seed, d/Millisecond)
		}
	}
}
