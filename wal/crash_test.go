package wal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// crashModel is what the test knows about the log it drives.
type crashModel struct {
	first uint64      // FirstIndex
	log   []testEntry // entries first.. (current, durable or not)
	hs    HardState
}

func (m *crashModel) last() uint64 { return m.first + uint64(len(m.log)) - 1 }

func (m *crashModel) termAt(i uint64) uint64 { return m.log[i-m.first].term }

// TestCrashSimulation drives a WAL on a MemFS with random appends, syncs,
// truncations, compactions and hard-state saves, "pulls the plug" at random
// points (keeping only synced bytes, or a random subset of unsynced sectors:
// torn writes), reopens and checks the log against the model: everything
// reported durable survived, nothing else but a prefix of what was written
// appears, compaction and hard state hold.
func TestCrashSimulation(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 8
	}
	var recycled uint64
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { recycled += runCrashSeed(t, seed) })
	}
	if recycled == 0 {
		t.Fatal("no seed recycled a segment, so no crash met a recycled one")
	}
}

// TestCrashSimulationSoak runs KRAFT_SOAK_SEEDS more seeds (make soak);
// skipped when unset.
func TestCrashSimulationSoak(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("KRAFT_SOAK_SEEDS"))
	if err != nil || n <= 0 {
		t.Skip("KRAFT_SOAK_SEEDS not set")
	}
	for seed := uint64(1000); seed < 1000+uint64(n); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runCrashSeed(t, seed) })
		if t.Failed() {
			t.Fatalf("replay: go test -run 'TestCrashSimulationSoak/^%d$' -count 1 ./wal with KRAFT_SOAK_SEEDS=%d", seed, n)
		}
	}
}

// runCrashSeed runs one seed and returns how many segments its WALs
// recycled (two seeds in three recycle; the third runs with recycling off).
func runCrashSeed(t *testing.T, seed uint64) (recycled uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	fsys := NewMemFS()
	opts := memOpts(fsys, 4096)
	opts.SnapshotDir = "/snap"
	if seed%3 == 0 {
		opts.RecycleSegments = -1
	}
	w := mustOpen(t, "/d", opts)
	m := &crashModel{first: 1}
	term := uint64(1)
	for crash := 0; crash < 6; crash++ {
		steps := 5 + rng.IntN(40)
		for s := 0; s < steps; s++ {
			switch op := rng.IntN(100); {
			case op < 55: // append a batch
				if rng.IntN(10) == 0 {
					term++
				}
				es := makeEntries(rng, m.last()+1, term, 1+rng.IntN(12), 1+rng.IntN(300))
				mustAppend(t, w, es)
				m.log = append(m.log, es...)
			case op < 65:
				if err := w.WaitDurable(m.last()); err != nil {
					t.Fatalf("WaitDurable: %v", err)
				}
			case op < 72:
				if err := w.Sync(); err != nil {
					t.Fatalf("Sync: %v", err)
				}
			case op < 82 && len(m.log) > 0: // log conflict
				from := m.first + uint64(rng.IntN(len(m.log)))
				if err := w.TruncateSuffix(from); err != nil {
					t.Fatalf("TruncateSuffix(%d): %v", from, err)
				}
				m.log = m.log[:from-m.first]
				term++
			case op < 88 && len(m.log) > 0: // snapshot + compaction
				upTo := m.first + uint64(rng.IntN(len(m.log)))
				if err := w.CompactPrefix(upTo, m.termAt(upTo)); err != nil {
					t.Fatalf("CompactPrefix(%d): %v", upTo, err)
				}
				m.log = m.log[upTo+1-m.first:]
				m.first = upTo + 1
			case op < 90: // install a snapshot from a leader (beyond the log)
				upTo := m.last() + uint64(1+rng.IntN(5))
				term++
				if err := w.CompactPrefix(upTo, term); err != nil {
					t.Fatalf("CompactPrefix(install %d): %v", upTo, err)
				}
				m.log, m.first = nil, upTo+1
			default:
				m.hs = HardState{Term: term, Vote: uint64(rng.IntN(5)), Commit: uint64(rng.IntN(int(m.last() + 1)))}
				if err := w.SaveHardState(m.hs); err != nil {
					t.Fatalf("SaveHardState: %v", err)
				}
			}
		}
		durable := w.DurableIndex()
		recycled += w.SegmentsRecycled()
		var img *MemFS
		if rng.IntN(2) == 0 {
			img = fsys.Crash(rng) // torn unsynced sectors
		} else {
			img = fsys.Crash(nil)
		}
		w.Close()
		fsys = img
		opts.FS = fsys
		var err error
		w, err = Open("/d", opts)
		if err != nil {
			names, _ := fsys.List("/d")
			for _, n := range names {
				b, _ := fsys.ReadFile("/d/" + n)
				t.Logf("after the crash: %s, %d bytes", n, len(b))
			}
			t.Fatalf("crash %d: Open after crash: %v", crash, err)
		}
		if r := w.Recovery(); r.TornBytes > 0 {
			t.Logf("crash %d: cut %d torn bytes, durable %d, last %d of %d", crash, r.TornBytes, durable, w.LastIndex(), m.last())
		}
		checkAgainstModel(t, w, m, durable)
		// Continue from what survived.
		got := readAll(t, w)
		m.log = got
		if len(got) > 0 {
			term = max(term, got[len(got)-1].term)
		}
	}
	w.Close()
	return recycled
}

func checkAgainstModel(t *testing.T, w *WAL, m *crashModel, durable uint64) {
	t.Helper()
	if w.FirstIndex() != m.first {
		t.Fatalf("FirstIndex %d, model %d", w.FirstIndex(), m.first)
	}
	if w.HardState() != m.hs {
		t.Fatalf("hard state %+v, model %+v", w.HardState(), m.hs)
	}
	last := w.LastIndex()
	if last < durable && durable >= m.first {
		t.Fatalf("lost durable entries: last %d < durable %d", last, durable)
	}
	if last > m.last() {
		t.Fatalf("last %d beyond anything written (%d)", last, m.last())
	}
	got := readAll(t, w)
	if err := sameEntries(got, m.log[:len(got)]); err != nil {
		t.Fatalf("recovered log is not a prefix of what was written: %v", err)
	}
}
