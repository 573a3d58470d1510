package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// Internal connection errors. errConnSwitched: the client dropped the
// connection itself to follow a redirect, so calls on it retry at once.
// errCallExpired: the connection's sweeper found the call past its
// deadline and took it out of pending.
var (
	errConnClosed   = &Error{Kind: ErrClosed}
	errConnSwitched = &Error{Kind: ErrUnavailable, Text: "connection dropped to follow a redirect"}
	errCallExpired  = &Error{Kind: context.DeadlineExceeded}
)

// call is one request's rendezvous with the connection that carries it.
// Exactly one completion is delivered per successful conn.send, so when do
// returns no connection holds the call and it goes back to callPool.
type call struct {
	done chan struct{} // cap 1
	resp response
	err  error
	// Set by the caller before conn.send, read by the connection's sweeper
	// under conn.mu while the call is pending (see conn.sweep).
	attemptEnd time.Time // send + AttemptTimeout
	deadline   time.Time // the call's deadline
	// timedOut: the sweeper found this call unanswered past attemptEnd and
	// dropped the connection for it; written before complete.
	timedOut bool
	timer    *time.Timer // waits for a slot, the window and backoff; stopped when idle
	// async, when set, takes the completion instead of done: the first
	// attempt of a PutAsync or GetAsync (see asyncCall).
	async *asyncCall
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{done: make(chan struct{}, 1), timer: t}
}}

// complete hands the call its answer: a response (copied, since r aliases
// the reader's buffer) or the connection's error.
func (c *call) complete(r *wire.ClientResponse, err error) {
	c.err = err
	if r != nil {
		c.resp.set(r)
	}
	if c.async != nil {
		c.async.completed()
		return
	}
	c.done <- struct{}{}
}

// response is a ClientResponse copied out of the reader's buffer.
type response struct {
	status     wire.Status
	index      uint64
	term       uint64
	leaderID   uint64
	leaderAddr string
	value      []byte // freshly allocated: it is handed to the caller
	text       string
}

func (out *response) set(r *wire.ClientResponse) {
	*out = response{status: r.Status, index: r.Index, term: r.Term, leaderID: r.LeaderID}
	if len(r.Value) > 0 {
		out.value = append([]byte(nil), r.Value...)
	}
	if len(r.LeaderAddr) > 0 {
		out.leaderAddr = string(r.LeaderAddr)
	}
	if len(r.Error) > 0 {
		out.text = string(r.Error)
	}
}

// attempts tracks one call's retries.
type attempts struct {
	op    string
	write bool
	// deadline: the context's, or RequestTimeout from the call's first
	// send, or from its first wait when it waits before sending (for an
	// in-flight slot, the session window, a dial, a backoff): read it
	// through dl, which fixes it then.
	deadline time.Time
	timeout  time.Duration // RequestTimeout
	n        int           // sends and dials made
	// backoffs counts waits so far; the next one is RetryBackoff<<backoffs.
	backoffs  int
	redirects int // redirects to a known leader followed so far
	// maybeApplied: some earlier send of this write may have been applied
	// (connection lost after sending, server timeout, context ended).
	maybeApplied bool
	firstSent    time.Time
	last         *Error // why the latest attempt failed
	now          bool   // retry without waiting (redirect to a known leader, dropped conn)
	renew        bool   // reissue under the new session
}

// cause returns a.last as an error, nil when there is none.
func (a *attempts) cause() error {
	if a.last == nil {
		return nil
	}
	return a.last
}

func (a *attempts) errorf(kind error, text string, cause error) *Error {
	return &Error{Op: a.op, Kind: kind, Text: text, Err: cause, Attempts: a.n, OutcomeUnknown: a.write && a.maybeApplied}
}

// fromConnError wraps a connection-level *Error for this call.
func (a *attempts) fromConnError(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		return a.errorf(ErrUnavailable, "", err)
	}
	return a.errorf(e.Kind, e.Text, e.Err)
}

func (a *attempts) fromStatus(kind error, r *response) *Error {
	text := r.text
	if text == "" && r.status != wire.StatusCompareFailed {
		text = string(r.value) // a node that left the state machine's text in Value
	}
	e := a.errorf(kind, text, nil)
	e.Status, e.HasStatus = r.status, true
	return e
}

// expired is the error for a call whose context ended or whose deadline
// passed.
func (a *attempts) expired(ctx context.Context) *Error {
	kind := context.Cause(ctx)
	if kind == nil {
		kind = context.DeadlineExceeded
	}
	return a.errorf(kind, "", a.cause())
}

// dl returns the call's deadline, fixing it now if no send has yet.
func (a *attempts) dl() time.Time {
	if a.deadline.IsZero() {
		a.deadline = time.Now().Add(a.timeout)
	}
	return a.deadline
}

// arm starts t for d, cut short at the call's deadline.
func (a *attempts) arm(t *time.Timer, d time.Duration) {
	t.Reset(min(d, time.Until(a.dl())))
}

func (a *attempts) pastDeadline() bool { return !time.Now().Before(a.dl()) }

// do runs one request to completion: pick a connection, send, wait, and
// retry, redirect or renew the session as the answer requires.
func (c *Client) do(ctx context.Context, req *wire.ClientRequest) (response, error) {
	a := attempts{op: req.Op.String(), write: req.Op != wire.OpGet, timeout: c.cfg.RequestTimeout}
	if err := c.checkSize(&a, req); err != nil {
		return response{}, err
	}
	a.deadline, _ = ctx.Deadline() // zero without one: see attempts.dl
	cl := callPool.Get().(*call)
	defer callPool.Put(cl)

	if err := c.acquire(ctx, cl, &a); err != nil {
		return response{}, err
	}
	defer func() { <-c.inflight }()

	s, err := c.begin(ctx, cl, &a, req)
	if err != nil {
		return response{}, err
	}
	done, err := c.attempt(ctx, cl, req, s, &a)
	s, err = c.finish(ctx, cl, req, s, &a, done, err)
	c.end(s, req.Seq, a.write)
	if err != nil {
		return response{}, err
	}
	return cl.resp, nil
}

// finish carries a call on from an attempt that reported (done, err) (see
// attempt): it retries, redirects or renews the session until the call is
// done (cl.resp is its result) or fails. It returns the session the call
// is registered with, nil when none (see end).
func (c *Client) finish(ctx context.Context, cl *call, req *wire.ClientRequest, s *session, a *attempts, done bool, err error) (*session, error) {
	for {
		if err != nil || done {
			return s, err
		}
		// The attempt failed in a retryable way; a.last says why.
		if a.n > c.cfg.MaxRetries {
			return s, a.last
		}
		if age := time.Since(a.firstSent); a.write && a.maybeApplied && age > c.cfg.SessionTimeout/2 {
			return s, a.errorf(ErrUnknownOutcome, fmt.Sprintf("write first sent %v ago, more than half the session timeout (%v); not retried",
				age.Round(time.Millisecond), c.cfg.SessionTimeout), a.cause())
		}
		if !a.now {
			if err := c.backoff(ctx, cl, a); err != nil {
				return s, err
			}
		}
		if a.renew {
			// The server refused the session before applying anything of
			// this write: reissue it as a new request of the new session.
			c.end(s, req.Seq, a.write)
			if s, err = c.begin(ctx, cl, a, req); err != nil {
				return nil, err
			}
			a.renew, a.firstSent = false, time.Time{}
		}
		done, err = c.attempt(ctx, cl, req, s, a)
	}
}

// checkSize refuses a request whose frame exceeds MaxFrameBytes.
func (c *Client) checkSize(a *attempts, req *wire.ClientRequest) error {
	if size := requestFrameBytes(req); size > c.cfg.MaxFrameBytes {
		return a.errorf(ErrTooLarge, fmt.Sprintf("frame of %d bytes exceeds MaxFrameBytes %d", size, c.cfg.MaxFrameBytes), nil)
	}
	return nil
}

// acquire takes one of the MaxInflight slots, waiting while all are taken.
func (c *Client) acquire(ctx context.Context, cl *call, a *attempts) error {
	select {
	case c.inflight <- struct{}{}:
		return nil
	default:
	}
	a.arm(cl.timer, math.MaxInt64)
	defer cl.timer.Stop()
	select {
	case c.inflight <- struct{}{}:
		return nil
	case <-ctx.Done():
		return a.errorf(context.Cause(ctx), "waiting for an in-flight slot", nil)
	case <-cl.timer.C:
		return a.errorf(context.DeadlineExceeded, "waiting for an in-flight slot", nil)
	case <-c.closed:
		return a.errorf(ErrClosed, "", nil)
	}
}

// attempt sends req once and waits for its answer. It reports done when
// cl.resp is the call's result, an error when the call must fail, or
// neither when it should be retried (a.last says why, a.now whether
// without a wait).
func (c *Client) attempt(ctx context.Context, cl *call, req *wire.ClientRequest, s *session, a *attempts) (done bool, err error) {
	a.now = false
	cn, err := c.connFor(ctx, a.dl)
	if err != nil {
		a.n++
		switch {
		case ctx.Err() != nil || a.pastDeadline():
			return false, a.expired(ctx)
		case errors.Is(err, ErrClosed):
			return false, a.errorf(ErrClosed, "", nil)
		case errors.Is(err, ErrRefused), errors.Is(err, ErrTLS):
			return false, a.fromConnError(err) // configuration error: retrying cannot help
		}
		a.last = a.fromConnError(err)
		return false, nil
	}
	c.mu.Lock()
	s.stampLocked(req, a.write)
	c.mu.Unlock()
	c.sending(cl, a)
	if err := cn.send(cl, req); err != nil {
		c.connLost(cn)
		a.last = a.fromConnError(err)
		return false, nil
	}
	return c.settle(ctx, cn, cl, s, a, c.wait(ctx, cn, cl, req.Seq))
}

// sending counts an attempt about to be sent and sets the times the
// connection's sweeper holds it to.
func (c *Client) sending(cl *call, a *attempts) {
	a.n++
	now := time.Now() // the call's one clock reading when nothing waited before it
	if a.firstSent.IsZero() {
		a.firstSent = now
	}
	if a.deadline.IsZero() {
		a.deadline = now.Add(a.timeout)
	}
	cl.attemptEnd, cl.deadline, cl.timedOut = now.Add(c.cfg.AttemptTimeout), a.deadline, false
}

// settle judges the completion of an attempt sent on cn: err is cl.err
// (as wait returns it), else cl.resp is the server's answer. It reports
// as attempt does.
func (c *Client) settle(ctx context.Context, cn *conn, cl *call, s *session, a *attempts, err error) (done bool, _ error) {
	if err != nil {
		a.maybeApplied = true
		switch {
		case err == errConnClosed:
			return false, a.errorf(ErrClosed, "", nil)
		case err == errCallExpired || ctx.Err() != nil:
			return false, a.expired(ctx)
		}
		a.last = a.fromConnError(err)
		// The call whose AttemptTimeout ran out retries at once, like a
		// redirect; the others on the dropped connection back off.
		a.now = err == errConnSwitched || cl.timedOut
		if err != errConnSwitched {
			c.connLost(cn)
		}
		return false, nil
	}
	return c.judge(cn, &cl.resp, s, a)
}

// wait waits for the answer to cl, sent on cn under seq, and returns
// cl.err. The connection's sweeper enforces AttemptTimeout and the
// deadline (see conn.sweep), so a context that cannot be cancelled (Done
// nil: context.Background) costs one channel receive; another one is
// watched too. A call the context ended has ctx.Err() != nil and, when it
// was still pending, a non-nil error.
func (c *Client) wait(ctx context.Context, cn *conn, cl *call, seq uint64) error {
	if ctx.Done() == nil {
		<-cl.done
		return cl.err
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		if cn.forget(seq, cl) {
			return ctx.Err()
		}
		<-cl.done // the answer is being delivered: take it
	}
	return cl.err
}

// judge maps a server answer to the call's outcome.
func (c *Client) judge(cn *conn, r *response, s *session, a *attempts) (done bool, err error) {
	switch r.status {
	case wire.StatusOK, wire.StatusNotFound, wire.StatusCompareFailed:
		if a.write {
			c.mu.Lock()
			s.established = true
			c.mu.Unlock()
		}
		return true, nil
	case wire.StatusNotLeader:
		a.last = a.fromStatus(ErrNotLeader, r)
		addr := r.leaderAddr
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = "" // not an address we can dial
		}
		// The first redirect is followed at once; a second one in the same
		// call means leadership is moving, so it waits like any retry.
		if c.redirect(cn, addr) {
			a.now = a.redirects == 0
			a.redirects++
		}
		return false, nil
	case wire.StatusTimeout:
		a.maybeApplied = true
		a.last = a.fromStatus(ErrTimeout, r)
		return false, nil
	case wire.StatusTooManyRequests:
		a.last = a.fromStatus(ErrTooManyRequests, r)
		return false, nil
	case wire.StatusNoQuorum:
		return false, a.fromStatus(ErrNoQuorum, r)
	case wire.StatusSessionExpired:
		if !a.write {
			return false, a.fromStatus(ErrRequestFailed, r)
		}
		c.renewSession(s)
		a.last = a.fromStatus(ErrSessionExpired, r)
		if a.maybeApplied {
			return false, a.last // OutcomeUnknown is set
		}
		// Every earlier send of this write was refused before the state
		// machine ran, and this one was refused by it: nothing was applied.
		a.renew, a.now = true, true
		return false, nil
	}
	return false, a.fromStatus(ErrRequestFailed, r)
}

// backoff waits before the next retry: RetryBackoff doubled per wait, up to
// RetryBackoffMax, with jitter in [d/2, d] so that clients spread out.
func (c *Client) backoff(ctx context.Context, cl *call, a *attempts) error {
	d := c.cfg.RetryBackoffMax
	if a.backoffs < 30 {
		d = min(c.cfg.RetryBackoff<<a.backoffs, d)
	}
	a.backoffs++
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	a.arm(cl.timer, d)
	select {
	case <-cl.timer.C:
		if a.pastDeadline() {
			return a.expired(ctx)
		}
		return nil
	case <-ctx.Done():
		cl.timer.Stop()
		return a.expired(ctx)
	case <-c.closed:
		cl.timer.Stop()
		return a.errorf(ErrClosed, "", nil)
	}
}

// begin numbers req and, for a write, registers it with the session,
// waiting while the session's window is full (see windowOpen).
func (c *Client) begin(ctx context.Context, cl *call, a *attempts, req *wire.ClientRequest) (*session, error) {
	c.mu.Lock()
	for a.write && !c.sess.windowOpen(c.nextSeq, c.cfg.SessionWindow) {
		s := c.sess
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		freed := s.freed
		c.mu.Unlock()
		if err := c.waitWindow(ctx, cl, a, freed); err != nil {
			return nil, err
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	return c.numberLocked(req, a.write), nil
}

// numberLocked gives req the next seq and registers a write with the
// current session, which it returns. c.mu must be held, and for a write
// the session's window must be open.
func (c *Client) numberLocked(req *wire.ClientRequest, write bool) *session {
	req.Seq = c.nextSeq
	c.nextSeq++
	s := c.sess
	if write {
		s.ordinals++
		s.writes.put(req.Seq, s.ordinals)
	}
	return s
}

func (c *Client) waitWindow(ctx context.Context, cl *call, a *attempts, freed chan struct{}) error {
	a.arm(cl.timer, math.MaxInt64)
	defer cl.timer.Stop()
	select {
	case <-freed:
		return nil
	case <-ctx.Done():
		return a.errorf(context.Cause(ctx), "waiting for the oldest write in progress (SessionWindow)", nil)
	case <-cl.timer.C:
		return a.errorf(context.DeadlineExceeded, "waiting for the oldest write in progress (SessionWindow)", nil)
	case <-c.closed:
		return a.errorf(ErrClosed, "", nil)
	}
}

// end unregisters a write: the session may move FirstUnacked past it, and
// writes waiting for the window look again.
func (c *Client) end(s *session, seq uint64, write bool) {
	if !write || s == nil {
		return
	}
	c.mu.Lock()
	s.endLocked(seq)
	c.mu.Unlock()
}

// renewSession replaces s (if still current) with a fresh client ID.
func (c *Client) renewSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == s {
		c.sess = newSession(c.nextSeq)
	}
}

// requestFrameBytes is the size of req's frame.
func requestFrameBytes(req *wire.ClientRequest) int {
	const fixed = wire.FrameHeaderSize + 40 // wire's clientRequestFixed
	return fixed + len(req.Key) + len(req.Value) + len(req.Expect)
}
