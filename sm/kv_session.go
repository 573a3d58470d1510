package sm

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/kraftdb/kraft/wire"
)

// A session's response cache: the answers to its writes, by seq, for
// retries. Every write of every session goes through it (forget what the
// client acknowledged, look the seq up, remember the answer), so it is
// built for that path: a ring of entries kept sorted by seq, in the
// session's own allocation while it holds few.
//
// Clients number their requests in order and acknowledge them in order
// (FirstUnacked), so the cache is a queue: a new answer goes at the tail,
// acknowledged ones leave from the head. Both cost O(1) per entry, and a
// lookup of a new seq (above the tail) is one comparison. Anything else
// still works, just slower: a retry or a seq arriving out of order is
// found by binary search and inserted by shifting the entries above it,
// and seqs may be arbitrarily sparse (a client's reads take seqs too).
// The map per session it replaces put a map header and its groups, other
// allocations than the session, on that path (BenchmarkKVApplySessions,
// BenchmarkKVSessionCache).
//
// Invariants, checked by responseCache.check (after every change in
// invariants builds):
//   - len(ring) is a power of two; entries are ring[(head+i)&mask] for
//     i < n, in strictly increasing seq order (so no seq twice);
//   - slots outside the entries are zero (hold no value).
//
// KV keeps the session's forgottenBelow at or below every entry's seq,
// with one exception kept from the map: a full cache that remembers a seq
// older than all it holds evicts its oldest entry (raising forgottenBelow
// past it) and keeps the new one, below forgottenBelow (KV.remember). Such
// an entry is the oldest, and the first to go.
type responseCache struct {
	// buf is the ring once it outgrew inline; nil while inline is the ring.
	buf []cachedResponse
	// head is the ring index of the oldest entry; n the number of entries
	// (u32 like the snapshot format's count).
	head, n uint32
	inline  [inlineResponses]cachedResponse
}

// inlineResponses is the capacity of the ring inside the session: a
// session with at most this many writes unacknowledged needs no other
// allocation. A power of two.
const inlineResponses = 2

// cachedResponse is one remembered answer.
type cachedResponse struct {
	seq    uint64
	value  []byte
	status wire.Status
}

func (c *responseCache) ring() []cachedResponse {
	if c.buf != nil {
		return c.buf
	}
	return c.inline[:]
}

// len returns the number of cached responses.
func (c *responseCache) len() int { return int(c.n) }

// get returns the cached response to seq.
func (c *responseCache) get(seq uint64) (response, bool) {
	if c.n == 0 {
		return response{}, false
	}
	ring := c.ring()
	mask := uint32(len(ring) - 1)
	first, last := ring[c.head].seq, ring[(c.head+c.n-1)&mask].seq
	if seq > last || seq < first { // a new write: above the tail
		return response{}, false
	}
	// Dense seqs (no gap since the head): the entry is where it would be
	// in an array. Otherwise search.
	if d := seq - first; d < uint64(c.n) {
		if e := &ring[(c.head+uint32(d))&mask]; e.seq == seq {
			return response{status: e.status, value: e.value}, true
		}
	}
	i, found := c.search(seq)
	if !found {
		return response{}, false
	}
	e := &ring[(c.head+i)&mask]
	return response{status: e.status, value: e.value}, true
}

// search returns the position (0 = the head) of the first entry whose seq
// is at least seq, and whether that entry's seq is seq.
func (c *responseCache) search(seq uint64) (uint32, bool) {
	ring := c.ring()
	mask := uint32(len(ring) - 1)
	lo, hi := uint32(0), c.n
	for lo < hi {
		m := lo + (hi-lo)/2
		if ring[(c.head+m)&mask].seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < c.n && ring[(c.head+lo)&mask].seq == seq
}

// forgetBelow drops every response to a seq below bound: the client has
// seen them (FirstUnacked). O(1) per response dropped.
func (c *responseCache) forgetBelow(bound uint64) {
	ring := c.ring()
	mask := uint32(len(ring) - 1)
	for c.n > 0 && ring[c.head].seq < bound {
		ring[c.head] = cachedResponse{} // drop the value
		c.head = (c.head + 1) & mask
		c.n--
	}
	if c.n == 0 {
		c.head = 0 // one session, one slot: keep reusing the same cache line
	}
	if invariants {
		c.check()
	}
}

// popOldest drops the response with the lowest seq (there is one) and
// returns its seq.
func (c *responseCache) popOldest() uint64 {
	ring := c.ring()
	seq := ring[c.head].seq
	ring[c.head] = cachedResponse{}
	c.head = (c.head + 1) & uint32(len(ring)-1)
	c.n--
	if c.n == 0 {
		c.head = 0
	}
	if invariants {
		c.check()
	}
	return seq
}

// add caches the response to seq, which is not cached: at the tail when
// seq is the highest (the usual case), else shifting the entries above it
// one slot towards the tail.
func (c *responseCache) add(seq uint64, r response) {
	if int(c.n) == len(c.ring()) {
		c.grow()
	}
	ring := c.ring()
	mask := uint32(len(ring) - 1)
	i := c.n
	for ; i > 0; i-- {
		prev := &ring[(c.head+i-1)&mask]
		if prev.seq < seq {
			break
		}
		if prev.seq == seq {
			panic(fmt.Sprintf("kraft: BUG: response to seq %d cached twice", seq))
		}
		ring[(c.head+i)&mask] = *prev
	}
	ring[(c.head+i)&mask] = cachedResponse{seq: seq, value: r.value, status: r.status}
	c.n++
	if invariants {
		c.check()
	}
}

// grow doubles the ring, the entries moving to its start in order.
func (c *responseCache) grow() {
	bigger := make([]cachedResponse, 2*len(c.ring()))
	c.buf, c.head = c.appendTo(bigger[:0])[:len(bigger)], 0
	clear(c.inline[:]) // unused from now on: hold no values
}

// appendTo appends the entries to dst in seq order.
func (c *responseCache) appendTo(dst []cachedResponse) []cachedResponse {
	ring := c.ring()
	mask := uint32(len(ring) - 1)
	for i := uint32(0); i < c.n; i++ {
		dst = append(dst, ring[(c.head+i)&mask])
	}
	return dst
}

// setSorted replaces the entries with es, in strictly increasing seq
// order; es is not retained.
func (c *responseCache) setSorted(es []cachedResponse) {
	*c = responseCache{}
	if len(es) > inlineResponses {
		size := inlineResponses
		for size < len(es) {
			size *= 2
		}
		c.buf = make([]cachedResponse, size)
	}
	copy(c.ring(), es)
	c.n = uint32(len(es))
	if invariants {
		c.check()
	}
}

// sortResponses orders responses decoded from a snapshot by seq, keeping
// the last of any seq given twice (as the map the cache once was did).
// Snapshots are written sorted, so this is a check.
func sortResponses(es []cachedResponse) []cachedResponse {
	sorted := true
	for i := 1; i < len(es) && sorted; i++ {
		sorted = es[i-1].seq < es[i].seq
	}
	if sorted {
		return es
	}
	slices.SortStableFunc(es, func(a, b cachedResponse) int { return cmp.Compare(a.seq, b.seq) })
	out := es[:0]
	for i := range es {
		if i+1 < len(es) && es[i+1].seq == es[i].seq {
			continue // a later one wins
		}
		out = append(out, es[i])
	}
	clear(es[len(out):])
	return out
}

// check panics unless the invariants above hold (invariants builds).
func (c *responseCache) check() {
	ring := c.ring()
	if len(ring) == 0 || len(ring)&(len(ring)-1) != 0 || int(c.n) > len(ring) || int(c.head) >= len(ring) {
		panic(fmt.Sprintf("kraft: BUG: response cache ring of %d, head %d, %d entries", len(ring), c.head, c.n))
	}
	mask := uint32(len(ring) - 1)
	for i := uint32(0); i < c.n; i++ {
		if i > 0 && ring[(c.head+i)&mask].seq <= ring[(c.head+i-1)&mask].seq {
			panic(fmt.Sprintf("kraft: BUG: response cache seq %d after %d", ring[(c.head+i)&mask].seq, ring[(c.head+i-1)&mask].seq))
		}
	}
	for i := c.n; i < uint32(len(ring)); i++ {
		if e := ring[(c.head+i)&mask]; e.seq != 0 || e.value != nil || e.status != 0 {
			panic(fmt.Sprintf("kraft: BUG: response cache slot %d outside the entries holds seq %d", (c.head+i)&mask, e.seq))
		}
	}
}
