package client

// seqTable maps the seqs of requests in progress to V. It replaces a Go map
// on the request path (register, look up and remove once per request, on
// every connection and in the session), where the map's hashing and probing
// cost ~15% of a pipelined put's client CPU.
//
// Seqs come from one increasing counter (Client.nextSeq, never 0) and most
// are removed soon after they are added, so the live ones fit a ring
// indexed by seq: one array access per operation. A seq whose ring slot is
// held by an older live seq (the live seqs span more than the ring) grows
// the ring, up to seqRingMax slots; past that it goes to an overflow map.
// A call stuck for seconds thus costs at most one overflow entry per
// seqRingMax later seqs, not a ring as wide as the seqs it spans.
//
// Not safe for concurrent use; the owners hold their locks.
type seqTable[V any] struct {
	ring []seqSlot[V] // len is a power of two, or 0 before the first put
	over map[uint64]V // seqs whose ring slot was taken; nil when empty
	n    int          // live entries, ring and overflow together
}

type seqSlot[V any] struct {
	seq uint64 // 0: free
	v   V
}

const (
	seqRingMin = 64
	seqRingMax = 1 << 14
)

func (t *seqTable[V]) len() int { return t.n }

// put maps seq (not 0) to v, replacing what seq mapped to.
func (t *seqTable[V]) put(seq uint64, v V) {
	if len(t.ring) == 0 {
		t.ring = make([]seqSlot[V], seqRingMin)
	}
	if t.over != nil {
		// A seq that overflowed stays in the overflow, even once its
		// ring slot is free: a second copy in the ring would outlive a
		// remove as a stale entry.
		if _, ok := t.over[seq]; ok {
			t.over[seq] = v
			return
		}
	}
	for {
		s := &t.ring[seq&uint64(len(t.ring)-1)]
		switch s.seq {
		case 0:
			s.seq, s.v = seq, v
			t.n++
			return
		case seq:
			s.v = v
			return
		}
		if len(t.ring) >= seqRingMax {
			break
		}
		t.grow()
	}
	if t.over == nil {
		t.over = make(map[uint64]V)
	}
	if _, ok := t.over[seq]; !ok {
		t.n++
	}
	t.over[seq] = v
}

// grow doubles the ring. The overflow is empty until the ring is at its
// cap, so only the ring's seqs move.
func (t *seqTable[V]) grow() {
	old := t.ring
	t.ring = make([]seqSlot[V], 2*len(old))
	mask := uint64(len(t.ring) - 1)
	for _, s := range old {
		if s.seq != 0 {
			// Two seqs apart in the old ring are apart in the new one.
			t.ring[s.seq&mask] = s
		}
	}
}

// get returns what seq maps to.
func (t *seqTable[V]) get(seq uint64) (V, bool) {
	if len(t.ring) > 0 {
		if s := &t.ring[seq&uint64(len(t.ring)-1)]; s.seq == seq && seq != 0 {
			return s.v, true
		}
	}
	if t.over != nil {
		v, ok := t.over[seq]
		return v, ok
	}
	var zero V
	return zero, false
}

// remove unmaps seq and returns what it mapped to.
func (t *seqTable[V]) remove(seq uint64) (V, bool) {
	var zero V
	if len(t.ring) > 0 {
		if s := &t.ring[seq&uint64(len(t.ring)-1)]; s.seq == seq && seq != 0 {
			v := s.v
			s.seq, s.v = 0, zero
			t.n--
			return v, true
		}
	}
	if t.over != nil {
		if v, ok := t.over[seq]; ok {
			delete(t.over, seq)
			if len(t.over) == 0 {
				t.over = nil
			}
			t.n--
			return v, true
		}
	}
	return zero, false
}

// each calls f for every entry, in no particular order, until f returns
// false. f may remove the entry it is given, and no other.
func (t *seqTable[V]) each(f func(seq uint64, v V) bool) {
	for i := range t.ring {
		if s := &t.ring[i]; s.seq != 0 && !f(s.seq, s.v) {
			return
		}
	}
	for seq, v := range t.over {
		if !f(seq, v) {
			return
		}
	}
}
