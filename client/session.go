package client

import (
	"math/rand/v2"

	"github.com/kraftdb/kraft/wire"
)

// session is one client ID's exactly-once state (sm's sessions, Raft
// thesis §6.3). All fields are guarded by Client.mu.
type session struct {
	id uint64
	// established: a write of this session got a state-machine answer, so
	// the server holds the session and NewSession is no longer sent.
	established bool
	// writes maps the seq of each write in progress to its ordinal (1 for
	// the session's first write, and so on).
	writes seqTable[uint64]
	// low: no write in progress has a seq below it. It only moves up,
	// so scanning for FirstUnacked is amortized O(1) per seq.
	low uint64
	// ordinals counts the writes numbered in this session.
	ordinals uint64
	// freed, when not nil, is closed when a write ends: writes waiting for
	// the window wait on it.
	freed chan struct{}
}

func newSession(firstSeq uint64) *session {
	id := rand.Uint64()
	for id == 0 { // 0 reads as "no client" in logs
		id = rand.Uint64()
	}
	return &session{id: id, low: firstSeq}
}

// firstUnacked returns the lowest seq this session still waits for, as
// seen by a request numbered seq (never above seq, as the wire requires).
func (s *session) firstUnacked(seq uint64) uint64 {
	for s.low < seq {
		if _, waiting := s.writes.get(s.low); waiting {
			break
		}
		s.low++
	}
	return min(s.low, seq)
}

// windowOpen reports whether a new write may be numbered: counting from
// the oldest write in progress, at most window writes may be numbered
// (answered or not). The server caches the answers of writes at or above
// the FirstUnacked it last saw, up to its per-session limit, and forgets
// the oldest beyond it; were the client to run further ahead, a write
// still in progress could find its seq forgotten and be refused. nextSeq
// is the next seq the client will assign.
func (s *session) windowOpen(nextSeq uint64, window int) bool {
	if s.writes.len() == 0 {
		return true
	}
	oldest := s.firstUnacked(nextSeq) // the oldest write in progress
	ordinal, _ := s.writes.get(oldest)
	return s.ordinals+1-ordinal < uint64(window)
}

// endLocked unregisters the write numbered seq and wakes the writes
// waiting for the window. Client.mu must be held.
func (s *session) endLocked(seq uint64) {
	s.writes.remove(seq)
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
}

// stampLocked sets req's session fields for a send now. Client.mu must be
// held.
func (s *session) stampLocked(req *wire.ClientRequest, write bool) {
	req.ClientID = s.id
	req.FirstUnacked = s.firstUnacked(req.Seq)
	req.NewSession = write && !s.established
}
