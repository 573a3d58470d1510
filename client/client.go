package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// Client talks to a Kraft cluster's client port. It is safe for concurrent
// use; concurrent calls share one pipelined connection to the leader.
type Client struct {
	cfg      Config
	inflight chan struct{} // semaphore of MaxInflight slots
	closed   chan struct{} // closed by Close
	life     context.Context
	kill     context.CancelFunc // cancels life: interrupts a dial on Close
	wg       sync.WaitGroup
	stats    stats

	mu       sync.Mutex
	isClosed bool
	cur      *conn    // connection new requests use; nil when none
	dialing  *dialing // dial in progress, nil when none
	leader   string   // last known leader address; "" when unknown
	next     int      // endpoint to try when no leader is known
	sess     *session
	nextSeq  uint64 // never reused, across sessions, so Seq pairs responses on any conn
}

// dialing lets concurrent callers wait for one dial instead of each
// dialing the same node.
type dialing struct {
	done         chan struct{}
	err          error
	dialerCancel bool // the dialer's own context ended: waiters dial again
}

// New validates cfg and returns a Client. It does not connect: the first
// call does.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:      cfg,
		inflight: make(chan struct{}, cfg.MaxInflight),
		closed:   make(chan struct{}),
		nextSeq:  1,
	}
	c.life, c.kill = context.WithCancel(context.Background())
	c.sess = newSession(c.nextSeq)
	return c, nil
}

// Close fails calls in progress with ErrClosed, closes the connection and
// waits for the client's goroutines to exit. Later calls return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return nil
	}
	c.isClosed = true
	close(c.closed)
	c.kill()
	cn := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cn != nil {
		cn.fail(errConnClosed)
	}
	c.wg.Wait()
	return nil
}

// Leader returns the address of the node the client believes leads, or ""
// when it does not know.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// ClientID returns the current session's client ID (it changes when the
// server expires the session).
func (c *Client) ClientID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.id
}

// WriteResult is what a successful Put returns: where the write sits in
// the log.
type WriteResult struct {
	Index uint64
	Term  uint64
}

// GetResult is a read's answer. Value is nil when !Found.
type GetResult struct {
	Value []byte
	Found bool
	Index uint64 // the log index the read was served at
	Term  uint64
}

// DeleteResult says whether the key existed.
type DeleteResult struct {
	Deleted bool
	Index   uint64
	Term    uint64
}

// CASResult is a compare-and-swap's answer. When !Swapped, Found tells
// whether the key existed and Current holds its value; when Swapped,
// Current is the value written.
type CASResult struct {
	Swapped bool
	Found   bool
	Current []byte
	Index   uint64
	Term    uint64
}

// Consistency levels for Get (wire.Consistency).
const (
	Linearizable = wire.ReadLinearizable // confirmed by a heartbeat round (ReadIndex); the default
	Lease        = wire.ReadLease        // leader lease; linearizable unless clocks misbehave
	Stale        = wire.ReadStale        // whatever the answering node has applied
)

// ReadOption modifies a Get.
type ReadOption func(*wire.ClientRequest)

// WithConsistency sets the read's consistency level (default Linearizable).
func WithConsistency(level wire.Consistency) ReadOption {
	return func(r *wire.ClientRequest) { r.Consistency = level }
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key, value []byte) (WriteResult, error) {
	r, err := c.do(ctx, &wire.ClientRequest{Op: wire.OpPut, Key: key, Value: value})
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{Index: r.index, Term: r.term}, nil
}

// Get reads key.
func (c *Client) Get(ctx context.Context, key []byte, opts ...ReadOption) (GetResult, error) {
	req := wire.ClientRequest{Op: wire.OpGet, Key: key}
	for _, o := range opts {
		o(&req)
	}
	r, err := c.do(ctx, &req)
	if err != nil {
		return GetResult{}, err
	}
	return GetResult{Value: r.value, Found: r.status == wire.StatusOK, Index: r.index, Term: r.term}, nil
}

// Delete removes key.
func (c *Client) Delete(ctx context.Context, key []byte) (DeleteResult, error) {
	r, err := c.do(ctx, &wire.ClientRequest{Op: wire.OpDelete, Key: key})
	if err != nil {
		return DeleteResult{}, err
	}
	return DeleteResult{Deleted: r.status == wire.StatusOK, Index: r.index, Term: r.term}, nil
}

// CAS sets key to value if its current value equals expect. A missing key
// never matches.
func (c *Client) CAS(ctx context.Context, key, expect, value []byte) (CASResult, error) {
	r, err := c.do(ctx, &wire.ClientRequest{Op: wire.OpCAS, Key: key, Value: value, Expect: expect})
	if err != nil {
		return CASResult{}, err
	}
	res := CASResult{Index: r.index, Term: r.term}
	switch r.status {
	case wire.StatusOK:
		res.Swapped, res.Found, res.Current = true, true, value
	case wire.StatusCompareFailed:
		res.Found, res.Current = true, r.value
	}
	return res, nil
}

// Internal connection errors. errConnSwitched: the client dropped the
// connection itself to follow a redirect, so calls on it retry at once.
var (
	errConnClosed   = &Error{Kind: ErrClosed}
	errConnSwitched = &Error{Kind: ErrUnavailable, Text: "connection dropped to follow a redirect"}
)

// call is one request's rendezvous with the connection that carries it.
// Exactly one completion is delivered per successful conn.send.
type call struct {
	done chan struct{} // cap 1
	resp *response
	err  error
}

func (c *call) complete(r *response, err error) {
	c.resp, c.err = r, err
	c.done <- struct{}{}
}

// attempts tracks one call's retries.
type attempts struct {
	op    string
	write bool
	n     int // sends and dials made
	// backoffs counts waits so far; the next one is RetryBackoff<<backoffs.
	backoffs int
	// maybeApplied: some earlier send of this write may have been applied
	// (connection lost after sending, server timeout, context ended).
	maybeApplied bool
	firstSent    time.Time
	last         *Error // why the latest attempt failed
	redirects    int    // redirects to a known leader followed so far
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

// do runs one request to completion: pick a connection, send, wait, and
// retry, redirect or renew the session as the answer requires.
func (c *Client) do(ctx context.Context, req *wire.ClientRequest) (*response, error) {
	a := attempts{op: req.Op.String(), write: req.Op != wire.OpGet}
	if size := requestFrameBytes(req); size > c.cfg.MaxFrameBytes {
		return nil, a.errorf(ErrTooLarge, fmt.Sprintf("frame of %d bytes exceeds MaxFrameBytes %d", size, c.cfg.MaxFrameBytes), nil)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, a.errorf(context.Cause(ctx), "waiting for an in-flight slot", nil)
	case <-c.closed:
		return nil, a.errorf(ErrClosed, "", nil)
	}
	defer func() { <-c.inflight }()

	s := c.begin(req, a.write)
	defer func() { c.end(s, req.Seq, a.write) }()
	cl := &call{done: make(chan struct{}, 1)}
	for {
		r, err := c.attempt(ctx, cl, req, s, &a)
		if err != nil {
			return nil, err
		}
		if r != nil {
			return r, nil
		}
		// The attempt failed in a retryable way; a.last says why.
		if a.n > c.cfg.MaxRetries {
			return nil, a.last
		}
		if age := time.Since(a.firstSent); a.write && a.maybeApplied && age > c.cfg.SessionTimeout/2 {
			return nil, a.errorf(ErrUnknownOutcome, fmt.Sprintf("write first sent %v ago, more than half the session timeout (%v); not retried",
				age.Round(time.Millisecond), c.cfg.SessionTimeout), a.cause())
		}
		if !a.now {
			if err := c.backoff(ctx, &a); err != nil {
				return nil, err
			}
		}
		if a.renew {
			// The server refused the session before applying anything of
			// this write: reissue it as a new request of the new session.
			c.end(s, req.Seq, a.write)
			s = c.begin(req, a.write)
			a.renew = false
		}
	}
}

// attempt sends req once and waits for its answer. It returns the response
// when the call is done, an error when the call must fail, or neither when
// it should be retried (a.last says why, a.now whether without a wait).
func (c *Client) attempt(ctx context.Context, cl *call, req *wire.ClientRequest, s *session, a *attempts) (*response, error) {
	a.now = false
	cn, err := c.connFor(ctx)
	if err != nil {
		a.n++
		switch {
		case ctx.Err() != nil:
			return nil, a.errorf(context.Cause(ctx), "", a.cause())
		case errors.Is(err, ErrClosed):
			return nil, a.errorf(ErrClosed, "", nil)
		case errors.Is(err, ErrRefused):
			return nil, a.fromConnError(err) // configuration error: retrying cannot help
		}
		a.last = a.fromConnError(err)
		return nil, nil
	}
	c.mu.Lock()
	req.ClientID = s.id
	req.FirstUnacked = s.firstUnacked(req.Seq)
	req.NewSession = a.write && !s.established
	c.mu.Unlock()
	a.n++
	if err := cn.send(cl, req); err != nil {
		c.connLost(cn)
		a.last = a.fromConnError(err)
		return nil, nil
	}
	if a.firstSent.IsZero() {
		a.firstSent = time.Now()
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		if cn.forget(req.Seq, cl) {
			a.maybeApplied = true
			return nil, a.errorf(context.Cause(ctx), "", a.cause())
		}
		<-cl.done // the answer is being delivered: take it
	}
	if err := cl.err; err != nil {
		if err == errConnClosed {
			a.maybeApplied = true
			return nil, a.errorf(ErrClosed, "", nil)
		}
		a.maybeApplied = true
		a.last = a.fromConnError(err)
		if err == errConnSwitched {
			a.now = true
		} else {
			c.connLost(cn)
		}
		return nil, nil
	}
	return c.judge(cn, cl.resp, s, a)
}

// judge maps a server answer to the call's outcome.
func (c *Client) judge(cn *conn, r *response, s *session, a *attempts) (*response, error) {
	switch r.status {
	case wire.StatusOK, wire.StatusNotFound, wire.StatusCompareFailed:
		if a.write {
			c.mu.Lock()
			s.established = true
			c.mu.Unlock()
		}
		return r, nil
	case wire.StatusNotLeader:
		a.last = a.fromStatus(ErrNotLeader, r)
		// The first redirect is followed at once; a second one in the same
		// call means leadership is moving, so it waits like any retry.
		if c.redirect(cn, r.leaderAddr) {
			a.now = a.redirects == 0
			a.redirects++
		}
		return nil, nil
	case wire.StatusTimeout:
		a.maybeApplied = true
		a.last = a.fromStatus(ErrTimeout, r)
		return nil, nil
	case wire.StatusTooManyRequests:
		a.last = a.fromStatus(ErrTooManyRequests, r)
		return nil, nil
	case wire.StatusNoQuorum:
		return nil, a.fromStatus(ErrNoQuorum, r)
	case wire.StatusSessionExpired:
		if !a.write {
			return nil, a.fromStatus(ErrRequestFailed, r)
		}
		c.renewSession(s)
		a.last = a.fromStatus(ErrSessionExpired, r)
		if a.maybeApplied {
			return nil, a.last // OutcomeUnknown is set
		}
		// Every earlier send was refused before the state machine ran, and
		// this one was refused by it: nothing was applied.
		a.renew, a.now = true, true
		return nil, nil
	}
	return nil, a.fromStatus(ErrRequestFailed, r)
}

// begin numbers req and, for a write, registers it with the session.
func (c *Client) begin(req *wire.ClientRequest, write bool) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	req.Seq = c.nextSeq
	c.nextSeq++
	s := c.sess
	if write {
		s.writes[req.Seq] = struct{}{}
	}
	return s
}

// end unregisters a write: the session may move FirstUnacked past it.
func (c *Client) end(s *session, seq uint64, write bool) {
	if !write {
		return
	}
	c.mu.Lock()
	delete(s.writes, seq)
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

// backoff waits before the next retry: RetryBackoff doubled per wait, up to
// RetryBackoffMax, with jitter in [d/2, d] so that clients spread out.
func (c *Client) backoff(ctx context.Context, a *attempts) error {
	d := c.cfg.RetryBackoffMax
	if a.backoffs < 30 {
		d = min(c.cfg.RetryBackoff<<a.backoffs, d)
	}
	a.backoffs++
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return a.errorf(context.Cause(ctx), "", a.cause())
	case <-c.closed:
		return a.errorf(ErrClosed, "", nil)
	}
}

// connFor returns the connection to use, dialing one if needed. Only one
// dial runs at a time; concurrent callers wait for it and share its result.
func (c *Client) connFor(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.isClosed {
			c.mu.Unlock()
			return nil, errConnClosed
		}
		if cn := c.cur; cn != nil {
			if cn.alive() {
				c.mu.Unlock()
				return cn, nil
			}
			c.lostLocked(cn)
		}
		if d := c.dialing; d != nil {
			c.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil && !d.dialerCancel {
					return nil, d.err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-c.closed:
				return nil, errConnClosed
			}
		}
		d := &dialing{done: make(chan struct{})}
		c.dialing = d
		addr := c.target()
		c.mu.Unlock()

		cn, err := c.dial(ctx, addr)

		c.mu.Lock()
		c.dialing = nil
		switch {
		case c.isClosed:
			if err == nil {
				_ = cn.nc.Close()
			}
			cn, err = nil, errConnClosed
		case err == nil:
			c.cur = cn
			c.wg.Add(2)
			go func() { defer c.wg.Done(); cn.readLoop() }()
			go func() { defer c.wg.Done(); cn.writeLoop() }()
		case ctx.Err() != nil:
			d.dialerCancel = true
		default:
			c.unreachableLocked(addr)
		}
		d.err = err
		close(d.done)
		c.mu.Unlock()
		return cn, err
	}
}

// dial connects to addr; Close interrupts it.
func (c *Client) dial(ctx context.Context, addr string) (*conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	cn, err := dialConn(ctx, &c.cfg, addr)
	if cn != nil {
		cn.stats = &c.stats
	}
	return cn, err
}

// target is the address to dial: the known leader, else the next endpoint.
func (c *Client) target() string {
	if c.leader != "" {
		return c.leader
	}
	return c.cfg.Endpoints[c.next]
}

// redirect handles a "not leader" answer that came on cn. With a leader
// address that is not cn's, the client follows it at once (it returns
// true); otherwise it forgets the leader and moves to the next endpoint.
// Either way cn is dropped, once.
func (c *Client) redirect(cn *conn, leaderAddr string) (now bool) {
	c.mu.Lock()
	if leaderAddr != "" && leaderAddr != cn.addr {
		c.leader, now = leaderAddr, true
	} else {
		if c.leader == cn.addr {
			c.leader = ""
		}
		c.advancePast(cn.addr)
	}
	drop := c.cur == cn
	if drop {
		c.cur = nil
	}
	c.mu.Unlock()
	if drop {
		cn.fail(errConnSwitched)
	}
	return now
}

// connLost handles a connection that died under a call.
func (c *Client) connLost(cn *conn) {
	c.mu.Lock()
	c.lostLocked(cn)
	c.mu.Unlock()
}

// lostLocked forgets cn if it is current (once per connection, however
// many calls notice) and moves on from its node. c.mu must be held.
func (c *Client) lostLocked(cn *conn) {
	if c.cur != cn {
		return
	}
	c.cur = nil
	c.unreachableLocked(cn.addr)
}

// unreachableLocked moves on from addr. c.mu must be held.
func (c *Client) unreachableLocked(addr string) {
	if c.leader == addr {
		c.leader = ""
	}
	c.advancePast(addr)
}

// advancePast moves the endpoint cursor off addr when it points there.
func (c *Client) advancePast(addr string) {
	if c.cfg.Endpoints[c.next] == addr {
		c.next = (c.next + 1) % len(c.cfg.Endpoints)
	}
}

// requestFrameBytes is the size of req's frame.
func requestFrameBytes(req *wire.ClientRequest) int {
	const fixed = wire.FrameHeaderSize + 40 // wire's clientRequestFixed
	return fixed + len(req.Key) + len(req.Value) + len(req.Expect)
}
