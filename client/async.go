package client

import (
	"context"
	"sync"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// PutAsync starts a Put of key to value and returns without waiting for
// it; done receives the outcome Put would have returned, exactly once.
//
// PutAsync copies key and value: the caller may reuse them as soon as it
// returns. It never blocks and never calls done itself, so done may start
// the next call. Its guarantees are Put's: the same session, seq and
// retries (the package doc), bounded by ctx and by RequestTimeout, and
// Close completes it with ErrClosed before Close returns.
//
// When ctx cannot be cancelled (Done nil: context.Background), a
// connection is up, an in-flight slot is free and the session window is
// open, the request is sent at once and a final answer reaches done on the
// connection's reader goroutine: no goroutine is woken for it. Anything
// else (a redirect, a retryable answer, a broken or silent connection, a
// dial, a full MaxInflight or SessionWindow, a context that can end) moves
// the call to a goroutine of its own, which waits and retries as Put does
// and then calls done. So each call waiting for a slot or the window holds
// a goroutine: the caller bounds how many calls it has started and not yet
// seen finish (a closed loop of N clients: N).
//
// done runs on a goroutine the client needs for other calls: it must be
// quick and must never block (no channel send that may wait, no Close, no
// synchronous call of this Client). It may run before PutAsync returns.
func (c *Client) PutAsync(ctx context.Context, key, value []byte, done func(WriteResult, error)) {
	ac := asyncPool.Get().(*asyncCall)
	ac.put = done
	ac.req = wire.ClientRequest{Op: wire.OpPut}
	c.start(ctx, ac, key, value)
}

// GetAsync starts a Get of key and returns without waiting for it; done
// receives the outcome Get would have returned, exactly once. Everything
// PutAsync's doc says holds for it: key is copied, done is quick, never
// blocks and runs on the connection's reader goroutine in the common case.
func (c *Client) GetAsync(ctx context.Context, key []byte, done func(GetResult, error), opts ...ReadOption) {
	ac := asyncPool.Get().(*asyncCall)
	ac.get = done
	ac.req = wire.ClientRequest{Op: wire.OpGet}
	for _, o := range opts {
		o(&ac.req)
	}
	c.start(ctx, ac, key, nil)
}

// asyncCall is a PutAsync or GetAsync in progress: its call (async set
// while its first attempt is in flight), its request over copies of the
// caller's bytes, and the caller's callback. Pooled, with its buffer.
type asyncCall struct {
	call
	c   *Client
	ctx context.Context
	req wire.ClientRequest
	a   attempts
	s   *session // the session the first attempt numbered the request in
	cn  *conn    // the connection the first attempt went out on
	buf []byte   // key then value, as req references them
	put func(WriteResult, error)
	get func(GetResult, error)
}

var asyncPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &asyncCall{call: call{done: make(chan struct{}, 1), timer: t}}
}}

// start sends ac's first attempt if it can go at once, and otherwise hands
// the call to a goroutine running do. ac.req has its Op (and read
// options).
func (c *Client) start(ctx context.Context, ac *asyncCall, key, value []byte) {
	ac.c, ac.ctx = c, ctx
	req, a := &ac.req, &ac.a
	*a = attempts{op: req.Op.String(), write: req.Op != wire.OpGet, timeout: c.cfg.RequestTimeout}
	req.Key, req.Value = key, value
	// Too large: do refuses it from the lengths alone, without the copy.
	fits := c.checkSize(a, req) == nil
	if fits {
		ac.buf = append(append(ac.buf[:0], key...), value...)
		req.Key, req.Value = ac.buf[:len(key):len(key)], ac.buf[len(key):]
	}

	slot := false
	if fits && ctx.Done() == nil {
		select {
		case c.inflight <- struct{}{}:
			slot = true
		default:
		}
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		if slot {
			<-c.inflight
		}
		go ac.deliver(response{}, a.errorf(ErrClosed, "", nil)) // never on the caller's stack: done may start a call
		return
	}
	c.asyncCalls.Add(1) // before Close can wait: Close sets isClosed under c.mu
	cn, s := c.cur, c.sess
	if !slot || cn == nil || !cn.alive() || a.write && !s.windowOpen(c.nextSeq, c.cfg.SessionWindow) {
		c.mu.Unlock()
		if slot {
			<-c.inflight
		}
		go ac.slow()
		return
	}
	s = c.numberLocked(req, a.write)
	s.stampLocked(req, a.write)
	c.mu.Unlock()

	ac.s, ac.cn, ac.call.async = s, cn, ac
	c.sending(&ac.call, a)
	if err := cn.send(&ac.call, req); err != nil {
		// Not registered, so still ours; retried as attempt would.
		c.connLost(cn)
		a.last = a.fromConnError(err)
		go ac.resume(false)
	}
	// Sent: ac may already be completed and reused; not touched again.
}

// completed takes the first attempt's completion (call.complete) on the
// goroutine that removed the call from its connection: the reader for an
// answer. A success ends the call here, as do would; anything else goes
// on in resume.
func (ac *asyncCall) completed() {
	if ac.call.err != nil || !finalStatus(ac.call.resp.status) {
		go ac.resume(true)
		return
	}
	c := ac.c
	if ac.a.write {
		c.mu.Lock()
		ac.s.established = true // as judge does
		ac.s.endLocked(ac.req.Seq)
		c.mu.Unlock()
	}
	<-c.inflight
	ac.deliver(ac.call.resp, nil)
	c.asyncCalls.Done()
}

// finalStatus reports the statuses judge accepts as the call's result.
func finalStatus(s wire.Status) bool {
	return s == wire.StatusOK || s == wire.StatusNotFound || s == wire.StatusCompareFailed
}

// resume carries the call on from its first attempt with do's logic:
// answered when that attempt was completed (cl.err or cl.resp holds how),
// else it was never sent and a.last says why.
func (ac *asyncCall) resume(answered bool) {
	c, cl, a := ac.c, &ac.call, &ac.a
	cl.async = nil // no connection holds cl: later attempts wait on cl.done
	var done bool
	var err error
	if answered {
		done, err = c.settle(ac.ctx, ac.cn, cl, ac.s, a, cl.err)
	}
	s, err := c.finish(ac.ctx, cl, &ac.req, ac.s, a, done, err)
	c.end(s, ac.req.Seq, a.write)
	<-c.inflight
	if err != nil {
		ac.deliver(response{}, err)
	} else {
		ac.deliver(cl.resp, nil)
	}
	c.asyncCalls.Done()
}

// slow runs the whole call as the synchronous one would.
func (ac *asyncCall) slow() {
	c := ac.c
	r, err := c.do(ac.ctx, &ac.req)
	ac.deliver(r, err)
	c.asyncCalls.Done()
}

// deliver returns ac to the pool and hands r or err to the caller's
// callback. No connection holds ac any more.
func (ac *asyncCall) deliver(r response, err error) {
	put, get := ac.put, ac.get
	*ac = asyncCall{call: call{done: ac.call.done, timer: ac.call.timer}, buf: ac.buf[:0]}
	asyncPool.Put(ac)
	switch {
	case put != nil && err != nil:
		put(WriteResult{}, err)
	case put != nil:
		put(WriteResult{Index: r.index, Term: r.term}, nil)
	case err != nil:
		get(GetResult{}, err)
	default:
		get(GetResult{Value: r.value, Found: r.status == wire.StatusOK, Index: r.index, Term: r.term}, nil)
	}
}
