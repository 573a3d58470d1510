package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// requestDeadlines holds the requests in flight in arrival order, for
// --request-timeout: every request has the same timeout, so arrival order
// is deadline order and the sweeper only ever looks at the oldest.
//
// It also decides who answers a request: its answerer (the node's callback)
// and the sweeper race for it, and the one whose claim takes the request
// out of its slot answers. The slot, not the request, is what both look
// at: the sweeper walks slots in order and never touches a request that
// was answered in time, so a request can go back to be reused the moment
// it is answered (a pending write does, writePool) without the sweeper
// reading it, cold, ~--request-timeout later (perf/results/speedups.md,
// items 36 and 52).
//
// Slots live in fixed blocks that never move, so a claim is one
// compare-and-swap on the slot the request remembers, without the lock.
// A block is reused once the sweeper is past all of it: by then every one
// of its slots was claimed, and a late claim on a reused slot fails,
// because the slot holds another request or none (a request that lost its
// claim is never reused, so no other registration can carry its address).
type requestDeadlines struct {
	mu     sync.Mutex
	epoch  time.Time        // slot times count from here (monotonic)
	blocks []*deadlineBlock // live, oldest first
	head   int              // blocks[0][head] is the oldest slot not yet swept
	tail   int              // blocks[len(blocks)-1][tail] is the next free one
	spare  []*deadlineBlock // swept blocks, to reuse
}

const (
	deadlineBlockSlots = 256
	deadlineSpareMax   = 64 // blocks kept for reuse after a burst: 256 KiB
)

type deadlineSlot struct {
	req atomic.Pointer[pendingRequest] // nil once claimed
	at  time.Duration                  // the request's start, since epoch
}

type deadlineBlock [deadlineBlockSlots]deadlineSlot

// add registers w, which must not be registered already, with its start
// time as its arrival.
func (d *requestDeadlines) add(w *pendingRequest) {
	d.mu.Lock()
	if len(d.blocks) == 0 || d.tail == deadlineBlockSlots {
		d.blocks = append(d.blocks, d.newBlock())
		d.tail = 0
	}
	if d.epoch.IsZero() {
		d.epoch = w.start
	}
	s := &d.blocks[len(d.blocks)-1][d.tail]
	d.tail++
	s.at = w.start.Sub(d.epoch)
	s.req.Store(w)
	w.slot = s
	d.mu.Unlock()
}

func (d *requestDeadlines) newBlock() *deadlineBlock {
	if n := len(d.spare); n > 0 {
		b := d.spare[n-1]
		d.spare[n-1] = nil
		d.spare = d.spare[:n-1]
		return b
	}
	return new(deadlineBlock)
}

// claim reports whether the caller is the one to answer w: true once per
// registration (and always for a request that was never registered, which
// nothing else can answer).
func (d *requestDeadlines) claim(w *pendingRequest) bool {
	if w.slot == nil {
		return true
	}
	return w.slot.req.CompareAndSwap(w, nil)
}

// expired claims and returns the requests older than timeout that nobody
// claimed yet, in arrival order, passing over claimed slots on the way.
// The caller answers them.
func (d *requestDeadlines) expired(now time.Time, timeout time.Duration, out []*pendingRequest) []*pendingRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.epoch.IsZero() {
		return out
	}
	cutoff := now.Sub(d.epoch) - timeout // a request that started after this is not yet due
	for len(d.blocks) > 0 {
		b := d.blocks[0]
		end := deadlineBlockSlots
		if len(d.blocks) == 1 {
			end = d.tail
		}
		for ; d.head < end; d.head++ {
			s := &b[d.head]
			w := s.req.Load()
			if w == nil {
				continue
			}
			if s.at > cutoff {
				return out
			}
			if s.req.CompareAndSwap(w, nil) {
				out = append(out, w)
			}
		}
		if len(d.blocks) == 1 {
			if d.head == d.tail {
				d.head, d.tail = 0, 0 // empty: the same block again from its start
			}
			return out
		}
		d.blocks[0] = nil
		d.blocks = d.blocks[1:]
		d.head = 0
		if len(d.spare) < deadlineSpareMax {
			d.spare = append(d.spare, b)
		}
	}
	return out
}
