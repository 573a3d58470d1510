package core

import "sort"

// entryIndex holds each log entry's stream position and term, in order.
// Positions live in pages of a fixed size: appending never copies what is
// there, and dropping the front (compaction) or the back (truncation)
// releases whole pages. Two plain slices grown by append copied themselves
// on every doubling, on the loop goroutine: 10% of a follower's CPU at
// 150,000 writes/s, and at the 8 M entries a minute of such writes leaves
// between snapshots, a 128 MiB copy in one turn (perf/results/speedups.md,
// item 32). Terms change once an election, so they are kept as runs, not
// per entry: 8 bytes an entry instead of 16, half the fresh memory the
// index of any node touches (and faults in) between snapshots (item 58).
type entryIndex struct {
	pages [][]int // stream positions; every page but the last is full
	skip  int     // entries dropped from the front of pages[0]
	n     int     // entries held
	spare [][]int // released pages, reused before allocating
	// base counts the entries ever dropped from the front: entry k held
	// now is entry base+k of the index's life, the numbering runs use.
	base int
	// runs: where each term starts, in order; the first may start before
	// base (its start was dropped), none starts at or after base+n.
	runs []termRun
}

// termRun: the entries from entry `from` (numbered over the index's life,
// see entryIndex.base) until the next run's start have term `term`.
type termRun struct {
	from int
	term uint64
}

// entryPos: where an entry's record starts in the log's byte stream, and
// its term.
type entryPos struct {
	off  int
	term uint64
}

const (
	indexPageShift = 12
	indexPageLen   = 1 << indexPageShift // 4,096 entries, 32 KiB a page
	indexSpares    = 16
)

func (x *entryIndex) len() int { return x.n }

// at returns entry k (0: the first held).
func (x *entryIndex) at(k int) entryPos { return entryPos{x.off(k), x.term(k)} }

func (x *entryIndex) off(k int) int {
	k += x.skip
	return x.pages[k>>indexPageShift][k&(indexPageLen-1)]
}

// term is entry k's term: the last run starting at or before it (nearly
// always the last run, tried first).
func (x *entryIndex) term(k int) uint64 {
	abs := x.base + k
	r := x.runs
	if last := len(r) - 1; r[last].from <= abs {
		return r[last].term
	}
	i := sort.Search(len(r), func(i int) bool { return r[i].from > abs })
	return r[i-1].term
}

func (x *entryIndex) push(off int, term uint64) {
	last := len(x.pages) - 1
	if last < 0 || len(x.pages[last]) == indexPageLen {
		x.pages = append(x.pages, x.newPage())
		last++
	}
	x.pages[last] = append(x.pages[last], off)
	if r := len(x.runs); r == 0 || x.runs[r-1].term != term {
		x.runs = append(x.runs, termRun{from: x.base + x.n, term: term})
	}
	x.n++
}

// truncate keeps the first k entries.
func (x *entryIndex) truncate(k int) {
	if k >= x.n {
		return
	}
	if k == 0 {
		x.clear()
		return
	}
	end := x.skip + k // position after the last kept entry
	p := (end - 1) >> indexPageShift
	for _, pg := range x.pages[p+1:] {
		x.release(pg)
	}
	clear(x.pages[p+1:])
	x.pages = x.pages[:p+1]
	x.pages[p] = x.pages[p][:end-p<<indexPageShift]
	x.n = k
	r := len(x.runs)
	for r > 0 && x.runs[r-1].from >= x.base+k {
		r--
	}
	x.runs = x.runs[:r]
}

// dropFront forgets the first k entries.
func (x *entryIndex) dropFront(k int) {
	if k >= x.n {
		x.clear()
		return
	}
	x.skip += k
	x.n -= k
	x.base += k
	p := x.skip >> indexPageShift
	for _, pg := range x.pages[:p] {
		x.release(pg)
	}
	n := copy(x.pages, x.pages[p:])
	clear(x.pages[n:])
	x.pages = x.pages[:n]
	x.skip -= p << indexPageShift
	// Keep the run that covers the new first entry and those after it.
	i := sort.Search(len(x.runs), func(i int) bool { return x.runs[i].from > x.base }) - 1
	if i > 0 {
		x.runs = x.runs[:copy(x.runs, x.runs[i:])]
	}
}

func (x *entryIndex) clear() {
	for _, pg := range x.pages {
		x.release(pg)
	}
	clear(x.pages)
	x.base += x.n
	x.pages, x.skip, x.n, x.runs = x.pages[:0], 0, 0, x.runs[:0]
}

func (x *entryIndex) newPage() []int {
	if k := len(x.spare); k > 0 {
		pg := x.spare[k-1]
		x.spare[k-1] = nil
		x.spare = x.spare[:k-1]
		return pg
	}
	return make([]int, 0, indexPageLen)
}

func (x *entryIndex) release(pg []int) {
	if len(x.spare) < indexSpares && cap(pg) == indexPageLen {
		x.spare = append(x.spare, pg[:0])
	}
}
