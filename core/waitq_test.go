package core

import (
	"errors"
	"testing"

	"github.com/kraftdb/kraft/sm"
)

// outcome records how a proposal was answered.
type outcome struct {
	done bool
	err  error
}

func (o *outcome) Complete(_ sm.Result, err error) { o.done, o.err = true, err }

func waiter(index uint64) (*proposal, *outcome) {
	o := &outcome{}
	return &proposal{index: index, term: 1, to: o}, o
}

func TestWaitQueueTakesCommittedInOrder(t *testing.T) {
	var q waitQueue
	var outs []*outcome
	for i := uint64(10); i < 20; i++ {
		p, o := waiter(i)
		q.push(p)
		outs = append(outs, o)
	}
	got := q.takeCommitted(10, 14, nil)
	if len(got) != 5 || q.len() != 5 {
		t.Fatalf("took %d, %d left; want 5 and 5", len(got), q.len())
	}
	for k, p := range got {
		if p.index != uint64(10+k) {
			t.Fatalf("took index %d at position %d", p.index, k)
		}
	}
	// Entries 15-16 came inside a snapshot (applied from it), 17-18 as
	// entries: 15 and 16 cannot be told apart from dropped.
	got = q.takeCommitted(17, 18, got[:0])
	if len(got) != 2 || got[0].index != 17 || got[1].index != 18 {
		t.Fatalf("took %v, want 17 and 18", got)
	}
	for k, o := range outs[5:7] {
		if !errors.Is(o.err, ErrOutcomeUnknown) {
			t.Errorf("waiter %d passed over by a snapshot: answered %v, want ErrOutcomeUnknown", 15+k, o.err)
		}
	}
	if q.len() != 1 {
		t.Fatalf("%d left, want 1 (index 19)", q.len())
	}
	for _, o := range outs[:5] {
		if o.done {
			t.Fatal("a committed waiter was answered by the queue; apply answers those")
		}
	}
	q.failAll(ErrStopped)
	if q.len() != 0 || !errors.Is(outs[9].err, ErrStopped) {
		t.Fatalf("failAll: %d left, last answered %v", q.len(), outs[9].err)
	}
}

// A leader that lost its uncommitted tail and leads again proposes at the
// same indexes: the old waiters there are answered, not forgotten.
func TestWaitQueueReusedIndexes(t *testing.T) {
	var q waitQueue
	var old []*outcome
	for i := uint64(1); i <= 6; i++ {
		p, o := waiter(i)
		q.push(p)
		old = append(old, o)
	}
	p, o := waiter(4)
	q.push(p)
	for k, oo := range old {
		want := k+1 >= 4
		if oo.done != want || (want && !errors.Is(oo.err, ErrOutcomeUnknown)) {
			t.Errorf("old waiter %d: done %v err %v; want done %v with ErrOutcomeUnknown", k+1, oo.done, oo.err, want)
		}
	}
	got := q.takeCommitted(1, 4, nil)
	if len(got) != 4 || got[3] != p || o.done {
		t.Fatalf("took %d waiters, the last %p (want the new one, %p)", len(got), got[len(got)-1], p)
	}
}

// A steady load (push at the back, take from the front) reuses the array
// instead of growing it.
func TestWaitQueueStaysSmall(t *testing.T) {
	var q waitQueue
	next := uint64(1)
	var out []*proposal
	for round := 0; round < 10000; round++ {
		for range 100 {
			p, _ := waiter(next)
			q.push(p)
			next++
		}
		first := uint64(1)
		if next > 150 {
			first = next - 150
		}
		out = q.takeCommitted(first, next-51, out[:0])
	}
	if q.len() != 50 {
		t.Fatalf("%d waiting, want 50", q.len())
	}
	if cap(q.buf) > 1024 {
		t.Fatalf("array grew to %d for at most 150 waiting", cap(q.buf))
	}
	for k, p := range q.buf[q.head:] {
		if p.index != next-50+uint64(k) {
			t.Fatalf("position %d holds index %d, want %d", k, p.index, next-50+uint64(k))
		}
	}
}
