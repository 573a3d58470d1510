package sim

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kraftdb/kraft/core"
)

var (
	seedFlag  = flag.Uint64("sim.seed", 0, "replay this simulator seed (TestSimReplay)")
	bugFlag   = flag.Int("sim.bug", 0, "inject this core.Bug into the replay")
	traceFlag = flag.Bool("sim.trace", false, "print every simulator event")
)

// seedsPerRun is what make test runs: >= 2,000 seeds in the plain and
// invariants builds, fewer under the race detector.
func seedsPerRun() int {
	if raceBuild {
		return 200
	}
	return 2000
}

// runSeeds runs seeds [from, from+n) on all CPUs and returns the failures.
func runSeeds(t *testing.T, from uint64, n int, opts func(uint64) Options) []error {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		next = from
	)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				seed := next
				next++
				stop := seed >= from+uint64(n) || len(errs) > 0
				mu.Unlock()
				if stop {
					return
				}
				if _, err := Run(opts(seed)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func TestSimSeeds(t *testing.T) {
	start := time.Now()
	n := seedsPerRun()
	if testing.Short() {
		n /= 10
	}
	errs := runSeeds(t, 1, n, Profile)
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("%d seeds in %v", n, time.Since(start))
}

// TestSimLogCache runs seeds with a tiny log cache, so that entries for
// lagging and restarted followers come back from the disk under every fault,
// and checks that the path was taken.
func TestSimLogCache(t *testing.T) {
	n := seedsPerRun() / 10
	reads := 0
	errs := runSeeds(t, 500000, n, func(seed uint64) Options {
		o := Profile(seed)
		o.LogCacheBytes = 200
		return o
	})
	for _, err := range errs {
		t.Error(err)
	}
	for seed := uint64(500000); seed < 500000+uint64(min(n, 20)); seed++ {
		o := Profile(seed)
		o.LogCacheBytes = 200
		st, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		reads += st.CacheReads
	}
	if reads == 0 {
		t.Fatal("no entry was read back from disk: the cache never evicted")
	}
	t.Logf("%d seeds; %d reads from disk in the first %d", n, reads, min(n, 20))
}

func TestSimReplay(t *testing.T) {
	if *seedFlag == 0 {
		t.Skip("set -sim.seed=N to replay a seed")
	}
	o := Profile(*seedFlag)
	o.Bug = core.Bug(*bugFlag)
	o.Trace = *traceFlag
	st, err := Run(o)
	t.Logf("options %+v\nstats %+v", o, st)
	if err != nil {
		t.Fatal(err)
	}
}

// TestSimSoak runs KRAFT_SOAK_SEEDS seeds (make soak SEEDS=N), from seed
// 1,000,000 or KRAFT_SOAK_FROM.
func TestSimSoak(t *testing.T) {
	v := os.Getenv("KRAFT_SOAK_SEEDS")
	if v == "" {
		t.Skip("KRAFT_SOAK_SEEDS is not set")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("KRAFT_SOAK_SEEDS=%q: %v", v, err)
	}
	from := uint64(1_000_000)
	if f := os.Getenv("KRAFT_SOAK_FROM"); f != "" {
		if from, err = strconv.ParseUint(f, 10, 64); err != nil {
			t.Fatalf("KRAFT_SOAK_FROM=%q: %v", f, err)
		}
	}
	for _, err := range runSeeds(t, from, n, Profile) {
		t.Error(err)
	}
}
