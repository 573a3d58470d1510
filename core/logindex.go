package core

// entryIndex holds each log entry's stream position and term, in order, as
// pages of a fixed size: appending never copies what is there, and
// dropping the front (compaction) or the back (truncation) releases whole
// pages. Two plain slices grown by append copied themselves on every
// doubling, on the loop goroutine: 10% of a follower's CPU at 150,000
// writes/s, and at the 8 M entries a minute of such writes leaves between
// snapshots, a 128 MiB copy in one turn (perf/results/speedups.md, item 32).
type entryIndex struct {
	pages [][]entryPos // every page but the last is full
	skip  int          // entries dropped from the front of pages[0]
	n     int          // entries held
	spare [][]entryPos // released pages, reused before allocating
}

// entryPos: where an entry's record starts in the log's byte stream, and
// its term.
type entryPos struct {
	off  int
	term uint64
}

const (
	indexPageShift = 12
	indexPageLen   = 1 << indexPageShift // 4,096 entries, 64 KiB a page
	indexSpares    = 16
)

func (x *entryIndex) len() int { return x.n }

// at returns entry k (0: the first held).
func (x *entryIndex) at(k int) entryPos {
	k += x.skip
	return x.pages[k>>indexPageShift][k&(indexPageLen-1)]
}

func (x *entryIndex) off(k int) int { return x.at(k).off }

func (x *entryIndex) push(off int, term uint64) {
	last := len(x.pages) - 1
	if last < 0 || len(x.pages[last]) == indexPageLen {
		x.pages = append(x.pages, x.newPage())
		last++
	}
	x.pages[last] = append(x.pages[last], entryPos{off, term})
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
}

// dropFront forgets the first k entries.
func (x *entryIndex) dropFront(k int) {
	if k >= x.n {
		x.clear()
		return
	}
	x.skip += k
	x.n -= k
	p := x.skip >> indexPageShift
	for _, pg := range x.pages[:p] {
		x.release(pg)
	}
	n := copy(x.pages, x.pages[p:])
	clear(x.pages[n:])
	x.pages = x.pages[:n]
	x.skip -= p << indexPageShift
}

func (x *entryIndex) clear() {
	for _, pg := range x.pages {
		x.release(pg)
	}
	clear(x.pages)
	x.pages, x.skip, x.n = x.pages[:0], 0, 0
}

func (x *entryIndex) newPage() []entryPos {
	if k := len(x.spare); k > 0 {
		pg := x.spare[k-1]
		x.spare[k-1] = nil
		x.spare = x.spare[:k-1]
		return pg
	}
	return make([]entryPos, 0, indexPageLen)
}

func (x *entryIndex) release(pg []entryPos) {
	if len(x.spare) < indexSpares && cap(pg) == indexPageLen {
		x.spare = append(x.spare, pg[:0])
	}
}
