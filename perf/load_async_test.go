package perf

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// asyncFake answers each DoAsync after delay on a timer's goroutine, and
// checks the AsyncTarget contract as it goes: one operation per worker at
// a time, done never called from within DoAsync.
type asyncFake struct {
	t                *testing.T
	delay            time.Duration
	failEvery        int64
	calls, syncCalls atomic.Int64
	oks, errs, reads atomic.Int64
	inflight         atomic.Int64
	maxInflight      atomic.Int64
	busy             sync.Map // worker -> *atomic.Bool
}

func (f *asyncFake) Do(context.Context, int, bool, []byte, []byte) error {
	f.syncCalls.Add(1)
	return nil
}

func (f *asyncFake) DoAsync(worker int, read bool, key, value []byte, done func(error)) {
	b, _ := f.busy.LoadOrStore(worker, new(atomic.Bool))
	if !b.(*atomic.Bool).CompareAndSwap(false, true) {
		f.t.Errorf("worker %d: a second operation while one is in flight", worker)
	}
	n := f.calls.Add(1)
	if read {
		f.reads.Add(1)
	}
	in := f.inflight.Add(1)
	for m := f.maxInflight.Load(); in > m && !f.maxInflight.CompareAndSwap(m, in); m = f.maxInflight.Load() {
	}
	var err error
	if len(key) != 8 {
		err = errors.New("key is not 8 bytes")
	} else if f.failEvery > 0 && n%f.failEvery == 0 {
		err = errors.New("injected")
	}
	time.AfterFunc(f.delay, func() {
		if err != nil {
			f.errs.Add(1)
		} else {
			f.oks.Add(1)
		}
		f.inflight.Add(-1)
		b.(*atomic.Bool).Store(false)
		done(err)
	})
}

// The closed loop over an AsyncTarget keeps one operation per client in
// flight (never more), counts every answer, and stops at the window's
// end: nothing is sent after Run returns.
func TestRunAsyncClosedLoop(t *testing.T) {
	const clients = 16
	f := &asyncFake{t: t, delay: 200 * time.Microsecond, failEvery: 7}
	cfg := quickConfig()
	cfg.Clients, cfg.ReadRatio = clients, 0.5
	cfg.Warmup = 0 // every operation is in the window, so counts match the fake's
	began := time.Now()
	res, err := Run(context.Background(), f, cfg)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.syncCalls.Load(); n != 0 {
		t.Fatalf("%d synchronous calls in a closed loop over an AsyncTarget", n)
	}
	if m := f.maxInflight.Load(); m != clients {
		t.Fatalf("at most %d operations in flight, want %d", m, clients)
	}
	if in := f.inflight.Load(); in != 0 {
		t.Fatalf("%d operations still in flight after Run", in)
	}
	if res.Ops != uint64(f.oks.Load()) || res.Errors != uint64(f.errs.Load()) || res.Errors == 0 || res.FirstError != "injected" {
		t.Fatalf("ops %d errors %d (first %q); the target answered %d ok, %d failed",
			res.Ops, res.Errors, res.FirstError, f.oks.Load(), f.errs.Load())
	}
	if res.Reads+res.Writes != res.Ops || res.Reads == 0 || res.Writes == 0 || res.Latency.Count() != res.Ops ||
		res.Service.Count() != res.Ops || res.ReadLatency.Count() != res.Reads {
		t.Fatalf("reads %d writes %d ops %d; %d latencies, %d service times, %d read latencies",
			res.Reads, res.Writes, res.Ops, res.Latency.Count(), res.Service.Count(), res.ReadLatency.Count())
	}
	if res.Latency.Percentile(.5) < f.delay {
		t.Fatalf("p50 %v below the target's delay %v", res.Latency.Percentile(.5), f.delay)
	}
	if limit := cfg.Duration + time.Second; took > limit {
		t.Fatalf("Run took %v for a %v window", took, cfg.Duration)
	}
	calls := f.calls.Load()
	time.Sleep(20 * time.Millisecond)
	if n := f.calls.Load(); n != calls {
		t.Fatalf("%d operations sent after Run returned", n-calls)
	}
}

// When the context ends, Run returns at once and the clients stop sending
// once their operations in flight are answered.
func TestRunAsyncClosedLoopStopsOnCancel(t *testing.T) {
	f := &asyncFake{t: t, delay: time.Millisecond}
	cfg := quickConfig()
	cfg.Duration = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Run(ctx, f, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	time.Sleep(10 * f.delay)
	calls := f.calls.Load()
	time.Sleep(10 * f.delay)
	if n := f.calls.Load(); n != calls || f.inflight.Load() != 0 {
		t.Fatalf("still sending after the context ended: %d more, %d in flight", n-calls, f.inflight.Load())
	}
}
