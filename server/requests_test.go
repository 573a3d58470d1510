package server

import (
	"testing"
	"time"
)

// The deadline FIFO hands back exactly the unanswered writes older than
// the timeout, in order, and forgets answered ones.
func TestRequestDeadlines(t *testing.T) {
	var d requestDeadlines
	t0 := time.Now()
	var ws []*pendingRequest
	for i := 0; i < 3000; i++ {
		w := &pendingRequest{seq: uint64(i), start: t0.Add(time.Duration(i) * time.Millisecond)}
		if i%3 == 0 {
			w.answered.Store(true)
		}
		ws = append(ws, w)
		d.add(w)
	}
	got := d.expired(t0.Add(2500*time.Millisecond), time.Second, nil)
	// Started before 1500 ms and unanswered: i < 1500 with i%3 != 0 (the
	// write at exactly 1500 ms is not yet a full second old).
	want := 0
	for i := 0; i < 1500; i++ {
		if i%3 != 0 {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("%d expired, want %d", len(got), want)
	}
	for k := 1; k < len(got); k++ {
		if got[k].seq <= got[k-1].seq {
			t.Fatal("expired writes out of arrival order")
		}
	}
	if again := d.expired(t0.Add(2500*time.Millisecond), time.Second, nil); len(again) != 0 {
		t.Fatalf("%d writes expired twice", len(again))
	}
	// An answered write at the front does not hold back the ones after it.
	ws[1500].answered.Store(true) // i=1500 is i%3==0, answered anyway; 1501 is next
	later := d.expired(t0.Add(10*time.Second), time.Second, nil)
	if len(later) != 1500-500 {
		t.Fatalf("%d expired at the end, want %d", len(later), 1000)
	}
	if d.head != 0 || len(d.queue) != 0 {
		t.Fatalf("queue not emptied: head %d len %d", d.head, len(d.queue))
	}
}

// The answer clock is read once per answerClockEvery answers and afresh
// after each applied batch (flushWrites), and never runs backwards.
func TestAnswerClock(t *testing.T) {
	s := &Server{}
	first := s.answerClock.read()
	for i := 1; i < answerClockEvery; i++ {
		if got := s.answerClock.read(); !got.Equal(first) {
			t.Fatalf("answer %d read the clock again", i)
		}
	}
	time.Sleep(time.Millisecond)
	next := s.answerClock.read()
	if next.Sub(first) < time.Millisecond {
		t.Fatalf("answer %d was timed %v after the first, want a new reading", answerClockEvery, next.Sub(first))
	}
	s.answerClock.read() // within the same run
	time.Sleep(time.Millisecond)
	s.flushWrites() // the batch is done
	if got := s.answerClock.read(); got.Sub(next) < time.Millisecond {
		t.Fatalf("the first answer of a new batch was timed %v after the last reading", got.Sub(next))
	}
}
