package client

import (
	"context"
	"sync"

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
	wg       sync.WaitGroup     // the connections' reader and writer goroutines
	// asyncCalls counts the PutAsync and GetAsync calls whose done has not
	// returned yet; Close waits for them.
	asyncCalls sync.WaitGroup
	stats      stats

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
// waits for the client's goroutines to exit and for the done callback of
// every asynchronous call (PutAsync, GetAsync) to return; a callback must
// not call Close. Later calls return ErrClosed.
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
	c.asyncCalls.Wait()
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
