package core

import "github.com/kraftdb/kraft/sm"

// waitQueue holds the proposals whose entries are in the log and not yet
// committed, in index order: a leader gives each batch the indexes after
// its last, so the queue only grows at the back and commits take from the
// front. It replaced a map by index, whose insert, lookup and delete were
// ~5% of a loaded leader's CPU profile samples; the in-process benchmark
// is too noisy to show the difference (perf/results/speedups.md, item 41).
//
// Two cases leave a waiter whose fate this node cannot tell, answered
// ErrOutcomeUnknown (the map forgot them, and their callers timed out):
// its index is taken again (this node led, lost its uncommitted tail to
// another leader's entries, and leads again: another node may still hold
// the old entry and commit it under a later leader), or a snapshot from
// the leader covers it (applied or not, it is inside the snapshot).
//
// Loop goroutine only.
type waitQueue struct {
	buf  []*proposal // buf[head:] waiting, ascending index
	head int
}

func (q *waitQueue) len() int { return len(q.buf) - q.head }

// push adds p, whose index follows every waiter's unless the log was
// truncated under them: those waiters are dropped first.
func (q *waitQueue) push(p *proposal) {
	for q.len() > 0 && q.buf[len(q.buf)-1].index >= p.index {
		last := len(q.buf) - 1
		q.buf[last].finish(sm.Result{}, ErrOutcomeUnknown)
		q.buf[last] = nil
		q.buf = q.buf[:last]
	}
	if q.head > 0 && q.head >= len(q.buf)/2 {
		// Move the waiting ones to the front, so the array is reused
		// rather than grown: a steady load keeps it a constant size.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, p)
}

// passOver answers ErrOutcomeUnknown to the waiters through index, whose
// entries this node will not apply one by one (a snapshot covered them).
func (q *waitQueue) passOver(index uint64) {
	for q.head < len(q.buf) && q.buf[q.head].index <= index {
		q.buf[q.head].finish(sm.Result{}, ErrOutcomeUnknown)
		q.pop()
	}
}

// takeCommitted removes the waiters for entries first..last, which have
// committed, and appends them to out in index order. Waiters before first
// were passed over (a snapshot covered their entries).
func (q *waitQueue) takeCommitted(first, last uint64, out []*proposal) []*proposal {
	q.passOver(first - 1)
	for q.head < len(q.buf) && q.buf[q.head].index <= last {
		out = append(out, q.buf[q.head])
		q.pop()
	}
	return out
}

// pop drops the first waiter.
func (q *waitQueue) pop() {
	q.buf[q.head] = nil
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	}
}

// failAll answers every waiter with err and empties the queue.
func (q *waitQueue) failAll(err error) {
	for _, p := range q.buf[q.head:] {
		p.finish(sm.Result{}, err)
	}
	clear(q.buf)
	q.buf, q.head = q.buf[:0], 0
}
