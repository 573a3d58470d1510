package core

import (
	"math/rand/v2"
	"testing"
)

// The paged index against a plain slice: pushes, truncations, front drops
// and clears, with every position compared after each step and every term
// after every 8th.
func TestEntryIndexAgainstASlice(t *testing.T) {
	seeds := uint64(20)
	if raceBuild {
		seeds = 3 // one goroutine: the race detector only slows it down
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var x entryIndex
		var model []entryPos
		next := 0
		for step := 0; step < 2000; step++ {
			switch op := rng.IntN(100); {
			case op < 80:
				for n := rng.IntN(3 * indexPageLen / 2); n > 0; n-- {
					next++
					x.push(next, uint64(next/100))
					model = append(model, entryPos{next, uint64(next / 100)})
				}
			case op < 89:
				k := rng.IntN(len(model) + 1)
				x.truncate(k)
				model = model[:k]
			case op < 99:
				k := rng.IntN(len(model) + 1)
				x.dropFront(k)
				model = append([]entryPos(nil), model[k:]...)
			default:
				x.clear()
				model = nil
			}
			if x.len() != len(model) {
				t.Fatalf("seed %d step %d: %d entries, want %d", seed, step, x.len(), len(model))
			}
			// Every position each step; every term every 8th step, and
			// the ends' terms each step (a term is a search over runs).
			for k := range model {
				if x.off(k) != model[k].off || (step%8 == 0 || k < 3 || k >= len(model)-3) && x.term(k) != model[k].term {
					t.Fatalf("seed %d step %d: entry %d = %v, want %v", seed, step, k, x.at(k), model[k])
				}
			}
			if len(x.pages) > 0 && (x.skip >= indexPageLen || len(x.pages) > (x.skip+x.n+indexPageLen-1)/indexPageLen+1) {
				t.Fatalf("seed %d step %d: %d pages, skip %d, for %d entries", seed, step, len(x.pages), x.skip, x.n)
			}
			if step%8 != 0 {
				continue
			}
			// Runs stay bounded by what is held: one per term change
			// among the entries, plus at most one starting before them.
			changes := 0
			for k := 1; k < len(model); k++ {
				if model[k].term != model[k-1].term {
					changes++
				}
			}
			if len(model) == 0 && len(x.runs) != 0 || len(model) > 0 && len(x.runs) != changes+1 {
				t.Fatalf("seed %d step %d: %d term runs for %d entries with %d term changes", seed, step, len(x.runs), len(model), changes)
			}
		}
	}
}

// Growing the index never moves what it holds: a page, once filled, stays
// where it is, so an append costs the same at a million entries as at one.
func TestEntryIndexNeverCopies(t *testing.T) {
	var x entryIndex
	var firsts []*int
	for i := 0; i < 1<<20; i++ {
		x.push(i, 1)
		if i%indexPageLen == 0 {
			firsts = append(firsts, &x.pages[len(x.pages)-1][0])
		}
	}
	for p, first := range firsts {
		if &x.pages[p][0] != first {
			t.Fatalf("page %d moved: the index was copied", p)
		}
	}
	// Compaction releases whole pages for reuse instead of copying the rest.
	x.dropFront(3*indexPageLen + 5)
	if x.skip != 5 || &x.pages[0][0] != firsts[3] {
		t.Fatalf("after dropping 3 pages and 5 entries: skip %d, first page moved %v", x.skip, &x.pages[0][0] != firsts[3])
	}
	if len(x.spare) != 3 {
		t.Fatalf("%d spare pages after dropping 3", len(x.spare))
	}
}
