package server

import (
	"testing"
	"time"
)

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
