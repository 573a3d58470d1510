package client

import "math/rand/v2"

// session is one client ID's exactly-once state (sm's sessions, Raft
// thesis §6.3). All fields are guarded by Client.mu.
type session struct {
	id uint64
	// established: a write of this session got a state-machine answer, so
	// the server holds the session and NewSession is no longer sent.
	established bool
	// writes holds the seqs of this session's writes still in progress.
	writes map[uint64]struct{}
	// low: no write in progress has a seq below it. It only moves up,
	// so scanning for FirstUnacked is amortized O(1) per seq.
	low uint64
}

func newSession(firstSeq uint64) *session {
	id := rand.Uint64()
	for id == 0 { // 0 reads as "no client" in logs
		id = rand.Uint64()
	}
	return &session{id: id, writes: make(map[uint64]struct{}), low: firstSeq}
}

// firstUnacked returns the lowest seq this session still waits for, as
// seen by a request numbered seq (never above seq, as the wire requires).
func (s *session) firstUnacked(seq uint64) uint64 {
	for s.low < seq {
		if _, waiting := s.writes[s.low]; waiting {
			break
		}
		s.low++
	}
	return min(s.low, seq)
}
