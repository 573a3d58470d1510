package perf

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTarget answers after delay(call number); fail makes a call fail.
type fakeTarget struct {
	calls atomic.Int64
	reads atomic.Int64
	delay func(n int64) time.Duration
	fail  func(n int64) bool
}

func (f *fakeTarget) Do(ctx context.Context, _ int, read bool, key, value []byte) error {
	n := f.calls.Add(1)
	if read {
		f.reads.Add(1)
	}
	if len(key) != 8 {
		return errors.New("key is not 8 bytes")
	}
	if f.delay != nil {
		select {
		case <-time.After(f.delay(n)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail != nil && f.fail(n) {
		return errors.New("injected")
	}
	return nil
}

func quickConfig() LoadConfig {
	return LoadConfig{Workload: Workload{PayloadBytes: 16, Keys: Uniform{N: 100}}, Clients: 4,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}
}

func TestRunClosedLoopCountsAndMix(t *testing.T) {
	f := &fakeTarget{delay: func(int64) time.Duration { return time.Millisecond }, fail: func(n int64) bool { return n%10 == 0 }}
	cfg := quickConfig()
	cfg.ReadRatio = 0.5
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors == 0 || res.Reads+res.Writes != res.Ops || res.Latency.Count() != res.Ops {
		t.Fatalf("ops %d (reads %d writes %d) errors %d, %d latencies", res.Ops, res.Reads, res.Writes, res.Errors, res.Latency.Count())
	}
	if res.FirstError != "injected" {
		t.Fatalf("first error %q", res.FirstError)
	}
	if r := float64(res.Reads) / float64(res.Ops); r < 0.35 || r > 0.65 {
		t.Fatalf("read share %.2f, want ≈ 0.5", r)
	}
	if res.Latency.Percentile(.5) < time.Millisecond {
		t.Fatalf("p50 %v below the fake's 1ms", res.Latency.Percentile(.5))
	}
	if res.Late != 0 || res.Missed != 0 || res.SendLag.Count() != 0 {
		t.Fatal("a closed loop has no intended times to be late for")
	}
}

// In open loop, a stall delays every operation intended during it, and
// they are charged from their intended times: the stall shows in the
// latencies although each operation's own service time stays short.
func TestRunOpenLoopChargesQueueingFromIntendedTime(t *testing.T) {
	// One worker, 200 ops/s (5 ms apart), instant answers except the 20th
	// call (after the 50 ms warm-up), which takes 100 ms: the ~20
	// operations due meanwhile wait behind it. The spacing leaves room for
	// a loaded machine's timer slack.
	var calls atomic.Int64
	slow := &slowOnce{inner: &fakeTarget{}, at: 20, d: 100 * time.Millisecond, calls: &calls}
	cfg := quickConfig()
	cfg.Clients, cfg.RatePerSec, cfg.Duration = 1, 200, 400*time.Millisecond
	res, err := Run(context.Background(), slow, cfg)
	if err != nil {
		t.Fatal(err)
	}
	intended := uint64(cfg.RatePerSec * cfg.Duration.Seconds())
	if got := res.Ops + res.Errors + res.Missed; got < intended-1 || got > intended+1 {
		t.Fatalf("ops %d + errors %d + missed %d = %d, want the %d intended in the window", res.Ops, res.Errors, res.Missed, got, intended)
	}
	if res.Latency.Max() < 90*time.Millisecond {
		t.Fatalf("max latency %v: the 100ms stall is missing", res.Latency.Max())
	}
	// A quarter of the operations queued behind the stall: p90 from the
	// intended time shows it, while service times stay short.
	if p := res.Latency.Percentile(.9); p < 10*time.Millisecond {
		t.Fatalf("p90 from intended time %v; the queue behind the stall is not charged", p)
	}
	if p := res.Service.Percentile(.9); p > 10*time.Millisecond {
		t.Fatalf("service p90 %v, want short", p)
	}
	if res.Late < 10 {
		t.Fatalf("late %d, want the ~20 sends behind the stall", res.Late)
	}
	if res.SendLag.Count() != res.Ops || res.SendLag.Max() < 50*time.Millisecond {
		t.Fatalf("send lag count %d max %v", res.SendLag.Count(), res.SendLag.Max())
	}
}

// slowOnce delays call number at by d.
type slowOnce struct {
	inner Target
	at    int64
	d     time.Duration
	calls *atomic.Int64
}

func (s *slowOnce) Do(ctx context.Context, w int, read bool, key, value []byte) error {
	if s.calls.Add(1) == s.at {
		time.Sleep(s.d)
	}
	return s.inner.Do(ctx, w, read, key, value)
}

// Operations that never leave because every worker is stuck until after
// the window are counted as missed and put into the latencies with their
// wait, never dropped.
func TestRunOpenLoopCountsMissedSends(t *testing.T) {
	release := make(chan struct{})
	blocker := targetFunc(func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	cfg := quickConfig()
	cfg.Warmup, cfg.Clients, cfg.RatePerSec = 0, 2, 100
	time.AfterFunc(cfg.Duration+100*time.Millisecond, func() { close(release) })
	res, err := Run(context.Background(), blocker, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 2 || res.Missed != 28 {
		t.Fatalf("ops %d missed %d, want 2 sent (one per worker) and 28 missed", res.Ops, res.Missed)
	}
	if res.Latency.Count() != 30 {
		t.Fatalf("%d latencies, want 30 (missed ones included)", res.Latency.Count())
	}
}

type targetFunc func(ctx context.Context) error

func (f targetFunc) Do(ctx context.Context, _ int, _ bool, _, _ []byte) error { return f(ctx) }

func TestRunTimelineAndProgress(t *testing.T) {
	f := &fakeTarget{delay: func(int64) time.Duration { return 200 * time.Microsecond }}
	cfg := quickConfig()
	cfg.Duration = 2500 * time.Millisecond
	var progress []Progress
	cfg.Progress = func(p Progress) { progress = append(progress, p) }
	cpu := 0.0
	cfg.CPUSeconds = func() float64 { cpu += 1.5; return cpu }
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Timeline) != 3 || res.Timeline[2].End != cfg.Duration || len(progress) != 3 {
		t.Fatalf("timeline %+v, %d progress calls", res.Timeline, len(progress))
	}
	var sum uint64
	for _, iv := range res.Timeline {
		sum += iv.Ops
	}
	if sum > res.Ops || sum < res.Ops-uint64(cfg.Clients) {
		t.Fatalf("timeline holds %d ops of %d", sum, res.Ops)
	}
	if progress[2].Ops != sum || progress[0].OpsPerSec <= 0 || progress[2].P50 == 0 {
		t.Fatalf("progress %+v", progress[2])
	}
	if res.CPUSeconds != 1.5 {
		t.Fatalf("cpu %v, want the difference of the two reads", res.CPUSeconds)
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil && res.GeneratorCPUSeconds < 0 {
		t.Fatalf("generator cpu %v: /proc/self/stat is readable", res.GeneratorCPUSeconds)
	}
}

func TestRunFailsWhenNothingSucceeds(t *testing.T) {
	f := &fakeTarget{fail: func(int64) bool { return true }}
	res, err := Run(context.Background(), f, quickConfig())
	if err == nil || res == nil || res.Errors == 0 {
		t.Fatalf("err %v", err)
	}
}

func TestRunValidates(t *testing.T) {
	for _, mod := range []func(*LoadConfig){
		func(c *LoadConfig) { c.Clients = 0 },
		func(c *LoadConfig) { c.RatePerSec = -1 },
		func(c *LoadConfig) { c.Duration = 0 },
		func(c *LoadConfig) { c.ReadRatio = 1.5 },
		func(c *LoadConfig) { c.Keys = nil },
	} {
		cfg := quickConfig()
		mod(&cfg)
		if _, err := Run(context.Background(), &fakeTarget{}, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestPreloadWritesEveryKeyOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	f := targetFuncKey(func(read bool, key []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if read {
			return errors.New("preload read")
		}
		seen[string(key)]++
		return nil
	})
	if err := Preload(context.Background(), f, 1000, 8, 7); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1000 {
		t.Fatalf("%d keys written", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("key %x written %d times", k, n)
		}
	}
}

type targetFuncKey func(read bool, key []byte) error

func (f targetFuncKey) Do(_ context.Context, _ int, read bool, key, _ []byte) error {
	return f(read, key)
}
