package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// outcome is what one asynchronous call's done received, and how often.
type outcome struct {
	calls  atomic.Int32
	put    WriteResult
	get    GetResult
	err    error
	reader bool // done ran on a connection's reader goroutine
	done   chan struct{}
}

func newOutcome() *outcome { return &outcome{done: make(chan struct{})} }

func (o *outcome) record(err error) {
	if o.calls.Add(1) != 1 {
		return // a second call: wait() fails the test
	}
	o.err = err
	var buf [8 << 10]byte
	o.reader = strings.Contains(string(buf[:runtime.Stack(buf[:], false)]), "(*conn).readLoop")
	close(o.done)
}

func (o *outcome) putDone(r WriteResult, err error) { o.put = r; o.record(err) }
func (o *outcome) getDone(r GetResult, err error)   { o.get = r; o.record(err) }

// wait waits for done and checks that it ran once.
func (o *outcome) wait(t *testing.T) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatal("done was not called")
	}
	time.Sleep(time.Millisecond) // let a second call show
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("done called %d times", n)
	}
}

// connect makes the client's connection current, so that the next
// asynchronous call can take the fast path.
func connect(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Get(testCtx(t), []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
}

// The answer reaches done on the reader goroutine: no goroutine of its
// own, no wake-up.
func TestAsyncAnswersOnTheReader(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	connect(t, c)
	key, value := []byte("k"), []byte("v")
	put := newOutcome()
	c.PutAsync(context.Background(), key, value, put.putDone)
	copy(key, "x") // PutAsync copied them
	copy(value, "x")
	put.wait(t)
	if put.err != nil || put.put.Index == 0 || !put.reader {
		t.Fatalf("put: %+v, %v, on the reader: %v", put.put, put.err, put.reader)
	}
	get := newOutcome()
	c.GetAsync(context.Background(), []byte("k"), get.getDone, WithConsistency(Stale))
	get.wait(t)
	if get.err != nil || !get.get.Found || string(get.get.Value) != "v" || !get.reader {
		t.Fatalf("get: %+v, %v, on the reader: %v", get.get, get.err, get.reader)
	}
	if reqs := fs.requests(); reqs[len(reqs)-1].Consistency != wire.ReadStale {
		t.Fatalf("read option lost: %+v", reqs[len(reqs)-1])
	}
	missing := newOutcome()
	c.GetAsync(context.Background(), []byte("missing"), missing.getDone)
	missing.wait(t)
	if missing.err != nil || missing.get.Found {
		t.Fatalf("get of a missing key: %+v, %v", missing.get, missing.err)
	}
}

// A redirect on the fast path is followed with the same seq and client
// ID, as Put follows it.
func TestAsyncRedirectKeepsSeq(t *testing.T) {
	leader := newFakeServer(t, sm.DefaultKVConfig())
	follower := newFakeServer(t, sm.DefaultKVConfig())
	follower.policy = func(n int, _ *wire.ClientRequest) action {
		if n == 0 {
			return action{kind: actApply} // connect's read
		}
		return action{kind: actNotLeader, leaderAddr: leader.addr, text: "not leader, leader is node 2"}
	}
	cfg := testConfig(follower.addr)
	cfg.RetryBackoff, cfg.RetryBackoffMax = time.Hour, time.Hour // a redirect must not wait
	c := newTestClient(t, cfg)
	connect(t, c)
	o := newOutcome()
	c.PutAsync(context.Background(), []byte("k"), []byte("v"), o.putDone)
	o.wait(t)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if v, _ := leader.value("k"); v != "v" {
		t.Fatalf("leader has %q", v)
	}
	f, l := follower.requests()[1], leader.requests()[0]
	if f.Seq != l.Seq || f.ClientID != l.ClientID || !l.NewSession {
		t.Fatalf("redirected request differs: follower got %+v, leader %+v", f, l)
	}
}

// An answer lost with its connection after the write was applied: the
// write is resent with its seq (so the server answers from its session
// cache instead of applying it again), and done gets that answer once.
func TestAsyncRetryAfterDropKeepsSeq(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	mustPut(t, c, "k", "0")
	fs.policy = faultFirst(actApplyThenDrop)
	o := newOutcome()
	c.PutAsync(context.Background(), []byte("k"), []byte("1"), o.putDone)
	o.wait(t)
	if o.err != nil {
		t.Fatal(o.err)
	}
	reqs := fs.requests()
	sent := reqs[len(reqs)-2:]
	if sent[0].Seq != sent[1].Seq || sent[0].ClientID != sent[1].ClientID || fs.connections() != 2 {
		t.Fatalf("retry was not the same request: %+v over %d connections", sent, fs.connections())
	}
	if v, _ := fs.value("k"); v != "1" {
		t.Fatalf("k = %q", v)
	}
}

// A silent node: the sweeper drops the connection after AttemptTimeout
// and the call is resent, with its seq, and answered.
func TestAsyncAttemptTimeoutRetries(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	cfg := testConfig(fs.addr)
	cfg.AttemptTimeout = 50 * time.Millisecond
	c := newTestClient(t, cfg)
	mustPut(t, c, "k", "0")
	fs.policy = faultFirst(actSilence)
	o := newOutcome()
	c.PutAsync(context.Background(), []byte("k"), []byte("1"), o.putDone)
	o.wait(t)
	reqs := fs.requests()
	sent := reqs[len(reqs)-2:]
	if o.err != nil || sent[0].Seq != sent[1].Seq || sent[0].ClientID != sent[1].ClientID {
		t.Fatalf("%v; requests %+v", o.err, sent)
	}
}

// A server that answers "no quorum" fails the call at once, as Put.
func TestAsyncNoQuorum(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	connect(t, c)
	fs.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNoQuorum, text: "quorum not reached: got 1/3, need 2"}
	}
	o := newOutcome()
	c.PutAsync(context.Background(), []byte("k"), []byte("v"), o.putDone)
	o.wait(t)
	if !errors.Is(o.err, ErrNoQuorum) || !strings.Contains(o.err.Error(), "got 1/3") {
		t.Fatalf("got %v", o.err)
	}
}

// Chains of writes, each started from the previous one's done, over a
// connection that keeps breaking: every done runs once, every write ends
// with its chain's last value, and every resend carries its first send's
// session.
func TestAsyncChainsUnderFaults(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	rng := rand.New(rand.NewPCG(7, 8))
	var mu sync.Mutex
	fs.policy = randomFaults(rng, &mu, false, faultOdds{applyThenDrop: 5, drop: 3, applyThenTimeout: 4, tooMany: 3})
	cfg := testConfig(fs.addr)
	cfg.MaxRetries = 100
	cfg.MaxInflight = 4 // fewer slots than chains: some calls wait for one
	c := newTestClient(t, cfg)
	const chains, length = 8, 25
	var wg sync.WaitGroup
	var calls [chains][length]atomic.Int32
	var next [chains]func(int)
	for i := range chains {
		key := []byte(fmt.Sprint("chain-", i))
		next[i] = func(j int) {
			c.PutAsync(context.Background(), key, []byte(fmt.Sprint(j)), func(_ WriteResult, err error) {
				if calls[i][j].Add(1) != 1 {
					t.Errorf("chain %d write %d: done called again", i, j)
					return
				}
				switch {
				case err != nil:
					t.Errorf("chain %d write %d: %v", i, j, err)
					wg.Done()
				case j+1 < length:
					next[i](j + 1)
				default:
					wg.Done()
				}
			})
		}
		wg.Add(1)
		next[i](0)
	}
	wg.Wait()
	for i := range chains {
		if v, _ := fs.value(fmt.Sprint("chain-", i)); v != fmt.Sprint(length-1) {
			t.Errorf("chain %d ends at %q", i, v)
		}
	}
	clientOf := map[uint64]uint64{}
	for _, r := range fs.requests() {
		if id, ok := clientOf[r.Seq]; ok && id != r.ClientID {
			t.Fatalf("seq %d sent under client IDs %x and %x", r.Seq, id, r.ClientID)
		}
		clientOf[r.Seq] = r.ClientID
	}
	t.Logf("%d requests over %d connections", len(fs.requests()), fs.connections())
}

// Close completes every asynchronous call in progress with ErrClosed
// before it returns, and a call after Close gets ErrClosed.
func TestCloseCompletesAsyncCalls(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	cfg := testConfig(fs.addr)
	cfg.MaxInflight = 8 // the calls beyond it wait for a slot on a goroutine
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, c)
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	var outs []*outcome
	for i := range 16 {
		o := newOutcome()
		outs = append(outs, o)
		if i%2 == 0 {
			c.PutAsync(context.Background(), []byte("k"), []byte("v"), o.putDone)
		} else {
			c.GetAsync(context.Background(), []byte("k"), o.getDone)
		}
	}
	waitFor(t, "the requests to arrive", func() bool { return len(fs.requests()) >= 1+8 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if n := o.calls.Load(); n != 1 || !errors.Is(o.err, ErrClosed) {
			t.Fatalf("call %d: done called %d times before Close returned, error %v", i, n, o.err)
		}
	}
	o := newOutcome()
	c.PutAsync(context.Background(), []byte("k"), []byte("v"), o.putDone)
	o.wait(t)
	if !errors.Is(o.err, ErrClosed) {
		t.Fatalf("call after Close: %v", o.err)
	}
}

// A context that can end takes the goroutine path, and its end ends the
// call.
func TestAsyncContextEndsCall(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	connect(t, c)
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	ctx, cancel := context.WithCancel(context.Background())
	o := newOutcome()
	c.GetAsync(ctx, []byte("k"), o.getDone)
	waitFor(t, "the request to arrive", func() bool { return len(fs.requests()) >= 2 })
	cancel()
	o.wait(t)
	if !errors.Is(o.err, context.Canceled) {
		t.Fatalf("got %v", o.err)
	}
}

func TestAsyncRequestTooLarge(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.MaxFrameBytes = 1024
	c := newTestClient(t, cfg)
	o := newOutcome()
	c.PutAsync(context.Background(), []byte("k"), make([]byte, 2048), o.putDone)
	o.wait(t)
	if !errors.Is(o.err, ErrTooLarge) {
		t.Fatalf("got %v", o.err)
	}
}

// TestPutAsyncDoesNotAllocate holds the fast path to zero allocations: a
// goroutine per call (the slow path) would allocate.
func TestPutAsyncDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items on purpose under the race detector")
	}
	c := newTestClient(t, testConfig(okServer(t)))
	key, value := []byte("key"), make([]byte, 100)
	answered := make(chan error, 1)
	done := func(_ WriteResult, err error) { answered <- err }
	put := func() {
		c.PutAsync(context.Background(), key, value, done)
		if err := <-answered; err != nil {
			t.Fatal(err)
		}
	}
	put()
	if n := testing.AllocsPerRun(200, put); n > 0 {
		t.Fatalf("%v allocs per put, want 0", n)
	}
}
