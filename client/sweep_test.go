package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// The connection's sweeper, not a timer per call, bounds the wait of a
// call whose context cannot be cancelled (context.Background waits with
// a plain channel receive). These tests fail, by hanging until their own
// limit, when nothing enforces the timeouts of such a call.

// callWithin runs f and fails the test if it has not returned within limit.
func callWithin(t *testing.T, limit time.Duration, f func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("call still blocked after %v", limit)
		return 0, nil
	}
}

// A call without a deadline on a node that never answers: after
// AttemptTimeout its connection is dropped and the call is resent, with its
// seq, to the next endpoint.
func TestSilentNodeFailsOverWithoutContext(t *testing.T) {
	silent, good, cfg := silentThenGood(t)
	c := newTestClient(t, cfg)
	d, err := callWithin(t, 3*time.Second, func() error {
		_, err := c.Put(context.Background(), []byte("k"), []byte("v"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d < cfg.AttemptTimeout || d > 10*cfg.AttemptTimeout {
		t.Fatalf("put took %v, want about AttemptTimeout (%v)", d, cfg.AttemptTimeout)
	}
	sent, resent := silent.requests(), good.requests()
	if len(sent) != 1 || len(resent) != 1 || sent[0].Seq != resent[0].Seq {
		t.Fatalf("silent node got %v, good node %v: want one request each, same seq", sent, resent)
	}
	if v, _ := good.value("k"); v != "v" {
		t.Fatalf("k = %q after the retry", v)
	}
}

// A call without a deadline of its own is still bounded by RequestTimeout
// when that is shorter than what is left of AttemptTimeout.
func TestRequestTimeoutBoundsCallWithoutContext(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	cfg := testConfig(fs.addr)
	cfg.DialTimeout, cfg.RequestTimeout, cfg.AttemptTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	c := newTestClient(t, cfg)
	d, err := callWithin(t, 3*time.Second, func() error {
		_, err := c.Put(context.Background(), []byte("k"), []byte("v"))
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("put: %v", err)
	}
	if d > time.Second {
		t.Fatalf("put returned after %v, RequestTimeout %v", d, cfg.RequestTimeout)
	}
}

// A cancellable context without a deadline: cancelling it ends the wait at
// once, long before AttemptTimeout, and a sent write's outcome is unknown.
func TestCancelEndsCallPromptly(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	cfg := testConfig(fs.addr)
	cfg.AttemptTimeout = 5 * time.Second
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	d, err := callWithin(t, 3*time.Second, func() error {
		_, err := c.Put(ctx, []byte("k"), []byte("v"))
		return err
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("put: %v", err)
	}
	if d > time.Second {
		t.Fatalf("put returned %v after it started, cancelled at 50ms", d)
	}
	// The connection survives a cancelled call: the node was not at fault.
	if n := fs.connections(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// Answered calls leave nothing to sweep: the sweeper disarms itself once
// the connection is idle, so an idle client costs no wake-ups.
func TestSweeperDisarmsWhenIdle(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	cfg := testConfig(fs.addr)
	cfg.AttemptTimeout = 50 * time.Millisecond
	c := newTestClient(t, cfg)
	for range 10 {
		if _, err := c.Put(context.Background(), []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	waitFor(t, "the sweeper to disarm", func() bool {
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.sweepAt.IsZero() && cn.err == nil
	})
}
