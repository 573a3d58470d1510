package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/netio"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// A client request is served without a goroutine of its own: HandleClient
// (on a network event loop) queues a write with core.Node.ProposeAsync and
// a read with core.Node.ReadAsync, and the node's callback answers it (a
// write when it applies, a read when the apply reaches its read index).
// The --request-timeout is enforced by one sweeper for all requests
// (requestDeadlines), which also decides who answers when the callback and
// the timeout race.
type pendingRequest struct {
	c           *netio.ClientConn
	seq         uint64
	op          wire.Op
	consistency wire.Consistency
	key         []byte // reads
	index       uint64 // reads: the index a successful read is served at
	start       time.Time
	slot        *deadlineSlot // its registration in Server.deadlines; nil: none
}

// writeRequest is a pending write: the request's state, the node's
// Completer for it and its record of the proposal, and room for a usual
// command, so that a write costs the leader one allocation instead of four
// (state, callback closure, command, the node's proposal). Writes answered
// by their callback go back to writePool at once and are reused while
// still in the cache: the allocation, mostly the allocator readying fresh
// spans, was ~9% of a loaded leader's CPU (perf/results/speedups.md, item
// 52). One that timed out is left to the garbage collector: the node may
// still hold it.
type writeRequest struct {
	pendingRequest
	s    *Server
	prop core.Proposal // the node's record of it (ProposeIn): no allocation of its own
	buf  [writeInline]byte
}

// writeInline fits the command of a write with a 128-byte value and a key
// of up to ~80 bytes; larger ones get their own buffer.
const writeInline = 256

var writePool = sync.Pool{New: func() any { return new(writeRequest) }}

// Complete implements core.Completer. The node lets go of w when it
// returns.
func (w *writeRequest) Complete(res sm.Result, err error) {
	w.s.finishWrite(w, res, err)
}

// newWrite returns a pending write and an empty buffer of the given
// capacity for its command.
func (s *Server) newWrite(c *netio.ClientConn, req *wire.ClientRequest, start time.Time, cmdBytes int) (*writeRequest, []byte) {
	w := writePool.Get().(*writeRequest)
	w.pendingRequest = pendingRequest{c: c, seq: req.Seq, op: req.Op, start: start}
	w.s = s
	if cmdBytes <= len(w.buf) {
		return w, w.buf[:0]
	}
	return w, make([]byte, 0, cmdBytes)
}

// serveWrite proposes w's command asynchronously.
func (s *Server) serveWrite(w *writeRequest, cmd []byte) {
	s.deadlines.add(&w.pendingRequest)
	if err := s.n().ProposeIn(&w.prop, cmd, w); err != nil {
		if errors.Is(err, core.ErrQueueFull) {
			err = fmt.Errorf("%w (%w)", core.ErrTooManyPending, err)
		}
		s.finishWrite(w, sm.Result{}, err)
	}
}

// finishWrite answers a write once, unless the sweeper did (timeout). It
// runs on the node's goroutines: an error, whose classification may ask
// the node for its status, is answered from a goroutine of its own so that
// the node is never waited on from inside itself.
func (s *Server) finishWrite(w *writeRequest, res sm.Result, err error) {
	if err != nil {
		go s.answerWrite(w, res, err)
		return
	}
	s.answerWrite(w, res, nil)
}

func (s *Server) answerWrite(w *writeRequest, res sm.Result, err error) {
	if !s.deadlines.claim(&w.pendingRequest) {
		return // the sweeper answered first (timeout); the node may be done with w yet
	}
	s.respondWrite(&w.pendingRequest, res, err)
	// Nothing holds w now: the node let go (Complete, or ProposeIn failed),
	// the sweeper passes over its slot, and the answer is encoded.
	w.recycle()
}

// recycle returns a write that its caller claimed and answered.
func (w *writeRequest) recycle() {
	w.pendingRequest, w.s, w.prop = pendingRequest{}, nil, core.Proposal{} // the proposal may hold a large command
	writePool.Put(w)
}

// respondWrite answers a write its caller claimed.
func (s *Server) respondWrite(w *pendingRequest, res sm.Result, err error) {
	resp := wire.ClientResponse{Seq: w.seq}
	if err != nil {
		s.fillError(&resp, err)
	} else {
		took := s.answerClock.read().Sub(w.start)
		s.metrics.commitLatency.Update(took.Seconds())
		s.totalCommit.Record(took)
		resp.Status, resp.Value = wire.Status(res.Value), res.Data
		if resp.Status == wire.StatusError || resp.Status == wire.StatusSessionExpired {
			resp.Error, resp.Value = res.Data, nil
		}
	}
	s.metrics.request(w.op, resp.Status)
	if err == nil {
		// On the apply goroutine (every successful outcome is reported
		// there): held until the batch is applied (flushWrites).
		w.c.RespondIn(&s.writeAnswers, &resp)
		return
	}
	w.c.Respond(&resp)
}

// flushWrites writes the answers the apply goroutine held for the batch it
// just applied (NodeConfig.AfterApply): one write per client connection.
func (s *Server) flushWrites() {
	s.writeAnswers.Flush()
	s.answerClock.left = 0
	if f := s.afterApplyForTest.Load(); f != nil {
		(*f)()
	}
}

// answerClock times the writes the apply goroutine answers (it is that
// goroutine's alone): the clock is read for the first answer of each
// applied batch and again every answerClockEvery answers, so a batch of
// hundreds costs a few readings, each answer's time late by at most what
// answering that many takes (a few µs; reading per answer was 1-2% of a
// leader's CPU at 1,024 clients).
type answerClock struct {
	now  time.Time
	left int
}

const answerClockEvery = 16

func (c *answerClock) read() time.Time {
	if c.left == 0 {
		c.now, c.left = time.Now(), answerClockEvery
	}
	c.left--
	return c.now
}

// serveRead asks the node for a read index asynchronously and answers
// from the state machine once it is applied. A stale read is answered at
// once from what is applied.
func (s *Server) serveRead(c *netio.ClientConn, req *wire.ClientRequest, consistency wire.Consistency) {
	r := readPool.Get().(*readRequest)
	r.pendingRequest = pendingRequest{c: c, seq: req.Seq, op: req.Op, consistency: req.Consistency, start: c.ReceivedAt()}
	r.s = s
	w := &r.pendingRequest
	if len(req.Key) <= len(r.keyBuf) {
		w.key = append(r.keyBuf[:0], req.Key...)
	} else {
		w.key = append([]byte(nil), req.Key...)
	}
	if consistency == wire.ReadStale {
		s.answerRead(r, s.n().Applied(), nil)
		return
	}
	s.deadlines.add(w)
	if err := s.n().ReadTo(consistency, r); err != nil {
		if errors.Is(err, core.ErrQueueFull) {
			err = fmt.Errorf("%w (%w)", core.ErrTooManyPending, err)
		}
		s.finishRead(r, 0, err)
	}
}

// readRequest is a pending read, the node's ReadCompleter for it, and room
// for a usual key: one allocation per read instead of three (state, key
// copy, callback closure), and none once readPool has some: a read
// answered by its callback goes back at once, as a write does (item 52 of
// perf/results/speedups.md); one that timed out is left to the garbage
// collector, since the node may still hold it.
type readRequest struct {
	pendingRequest
	s      *Server
	keyBuf [48]byte
}

var readPool = sync.Pool{New: func() any { return new(readRequest) }}

// ReadDone implements core.ReadCompleter. The node lets go of r when it
// returns.
func (r *readRequest) ReadDone(index uint64, err error) {
	r.s.finishRead(r, index, err)
}

// recycle returns a read that its caller claimed and answered.
func (r *readRequest) recycle() {
	r.pendingRequest, r.s = pendingRequest{}, nil
	readPool.Put(r)
}

// finishRead runs on the node's goroutines (ReadAsync's callback). A
// successful read joins readsReady, which answerReads serves when the node
// has run the batch's callbacks (NodeConfig.AfterReads); an error is
// answered from a goroutine of its own (its classification may ask the
// node for its status).
func (s *Server) finishRead(r *readRequest, index uint64, err error) {
	if err != nil {
		go s.answerRead(r, 0, err)
		return
	}
	r.index = index
	s.readsMu.Lock()
	s.readsReady = append(s.readsReady, r)
	s.readsMu.Unlock()
}

// readScratch is what answering a batch of reads needs besides the reads.
// Two goroutines may answer batches at once (NodeConfig.AfterReads runs on
// the loop and on the read-callback goroutine), so each takes its own from
// readScratchPool; its batch slice becomes readsReady's next array.
type readScratch struct {
	batch  []*readRequest
	keys   [][]byte
	values [][]byte
	found  []bool
}

var readScratchPool = sync.Pool{New: func() any { return new(readScratch) }}

// answerReads serves the reads gathered in readsReady together: one
// KV.GetMany (one read lock, the keys' cache misses overlapped) instead of
// a Get per read.
func (s *Server) answerReads() {
	sc := readScratchPool.Get().(*readScratch)
	s.readsMu.Lock()
	sc.batch, s.readsReady = s.readsReady, sc.batch[:0]
	s.readsMu.Unlock()
	if n := len(sc.batch); n > 0 {
		sc.keys = slices.Grow(sc.keys[:0], n)[:n]
		sc.values = slices.Grow(sc.values[:0], n)[:n]
		sc.found = slices.Grow(sc.found[:0], n)[:n]
		for i, r := range sc.batch {
			sc.keys[i] = r.key
		}
		s.kv().GetMany(sc.keys, sc.values, sc.found)
		for i, r := range sc.batch {
			s.respondRead(r, sc.values[i], sc.found[i], &s.readAnswers)
		}
		s.readAnswers.Flush()
		clear(sc.batch)
		clear(sc.keys)
		clear(sc.values) // they alias the KV's entries
	}
	readScratchPool.Put(sc)
}

// answerRead answers one read: with err, or from the state machine.
func (s *Server) answerRead(r *readRequest, index uint64, err error) {
	if err != nil {
		if s.deadlines.claim(&r.pendingRequest) {
			s.respondReadError(&r.pendingRequest, err)
			r.recycle()
		}
		return
	}
	r.index = index
	v, ok := s.kv().Get(r.key)
	s.respondRead(r, v, ok, nil)
}

// respondRead answers a read served at r.index with value (found or not),
// held in batch (nil: written at once), unless the sweeper answered it
// first, and recycles it.
func (s *Server) respondRead(r *readRequest, value []byte, found bool, batch *netio.ResponseBatch) {
	w := &r.pendingRequest
	if !s.deadlines.claim(w) {
		return // the sweeper answered first (timeout)
	}
	resp := wire.ClientResponse{Seq: w.seq, Index: w.index, Value: value}
	if !found {
		resp.Status, resp.Value = wire.StatusNotFound, nil
	}
	if w.consistency != wire.ReadStale {
		s.metrics.readIndexes.Inc()
		s.metrics.since(s.metrics.readLatency, w.start)
		s.readIndex.Record(time.Since(w.start))
	}
	s.metrics.request(w.op, resp.Status)
	if batch != nil {
		w.c.RespondIn(batch, &resp)
	} else {
		w.c.Respond(&resp)
	}
	r.recycle() // the answer is encoded; nothing holds r now
}

// respondReadError answers a read its caller claimed with err.
func (s *Server) respondReadError(w *pendingRequest, err error) {
	resp := wire.ClientResponse{Seq: w.seq}
	s.fillError(&resp, err)
	s.metrics.request(w.op, resp.Status)
	w.c.Respond(&resp)
}

// sweepRequests answers requests that outlived --request-timeout with
// the classification a timed-out synchronous call got.
func (s *Server) sweepRequests() {
	defer s.wg.Done()
	period := min(max(s.cfg.RequestTimeout/20, time.Millisecond), 50*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	var batch []*pendingRequest
	for {
		select {
		case <-s.stopC:
			return
		case now := <-t.C:
			batch = s.deadlines.expired(now, s.cfg.RequestTimeout, batch[:0])
			for _, w := range batch { // claimed by expired
				if w.op == wire.OpGet {
					s.respondReadError(w, context.DeadlineExceeded)
				} else {
					s.respondWrite(w, sm.Result{}, context.DeadlineExceeded)
				}
			}
			clear(batch)
		}
	}
}
