package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Target performs one operation. Calls for different workers may run
// concurrently; one worker's calls never overlap. ctx ends with the run;
// the target bounds each operation itself (ClientTarget: the client's
// RequestTimeout, 10 s unless set), which costs nothing per operation,
// where a context.WithTimeout per operation took a fifth of kraftbench's
// CPU at 1,024 clients. ClientTarget is the real one; tests use fakes.
type Target interface {
	Do(ctx context.Context, worker int, read bool, key, value []byte) error
}

// AsyncTarget is a Target that can also start an operation and return:
// Run's closed loop then keeps each client's one operation in flight
// through DoAsync, and starts the client's next operation from done,
// instead of parking a goroutine per client (ClientTarget: done runs on
// the client connection's reader goroutine, which saves two goroutine
// switches per operation). The open loop and Preload use Do.
//
// done gets the operation's outcome exactly once, on any goroutine but
// never from within DoAsync (so done may call DoAsync without growing the
// stack); it may run before DoAsync returns. done is quick and does not
// block. One worker's operations never overlap: its next DoAsync comes
// after its done was called, possibly from within done. DoAsync must not
// keep key and value after it returns, and never blocks; an operation
// that cannot be sent at once waits on a goroutine of the target's. There
// is no context: the target bounds each operation (see Target), and Run
// stops starting operations when its context ends.
type AsyncTarget interface {
	Target
	DoAsync(worker int, read bool, key, value []byte, done func(error))
}

// Workload is what each operation does.
type Workload struct {
	ReadRatio    float64 // share of operations that are reads, in [0, 1]
	PayloadBytes int     // value size of writes (random, incompressible bytes)
	Keys         KeyDist // 8-byte big-endian key numbers
}

// LoadConfig is one run. Closed loop (RatePerSec == 0): Clients workers
// each send an operation, wait for it and send the next; latency is from
// send to answer. Open loop (RatePerSec > 0): operations are due at fixed
// intended times, RatePerSec per second, and are handed to Clients
// workers, so at most Clients are in flight; when all are busy the next
// operation waits and goes out late. Latency is from the intended time,
// which charges the queueing to the system under test (no coordinated
// omission).
type LoadConfig struct {
	Workload
	Clients    int
	RatePerSec float64
	Poisson    bool // open loop: exponential gaps instead of even ones
	Warmup     time.Duration
	Duration   time.Duration
	// LateAfter: an open-loop send this far behind its intended time counts
	// as late. Default 1ms (the sleep granularity of a busy 2-core VM is a
	// fraction of that).
	LateAfter time.Duration
	Seed      uint64
	// CPUSeconds, if set, is read at the start and the end of the measured
	// window (the local cluster's CPU time).
	CPUSeconds func() float64
	// Disk, if set, is read at the start and the end of the measured
	// window: the counters of the disk under the cluster's data (DiskOf).
	Disk func() (DiskCounters, error)
	// Servers, if set, is read at the start and the end of the measured
	// window: the nodes' own counters (Scraper.Scrape). When CPUSeconds
	// is not set, the nodes' CPU comes from here.
	Servers func() (ServerSample, error)
	// Progress, if set, is called once a second of the measured window.
	Progress func(Progress)
}

// Progress is the state of a run at one of its seconds.
type Progress struct {
	Elapsed        time.Duration // since the measured window began
	Ops            uint64        // completed so far
	Errors, Late   uint64
	OpsPerSec      float64 // over the last second
	P50, P99, P999 time.Duration
}

// Interval is one second of a run's timeline.
type Interval struct {
	End           time.Duration // since the measured window began
	Ops, Errors   uint64
	P50, P99, Max time.Duration
}

// Result is what a run measured in its window (after warm-up). An
// operation belongs to the window if its intended time (open loop) or its
// send (closed loop) falls in it; operations still in flight at the end
// are waited for.
type Result struct {
	Ops, Reads, Writes uint64
	Errors             uint64
	FirstError         string
	// Late: open-loop sends that left LateAfter or more behind their
	// intended time. Missed: intended in the window but never sent because
	// every worker was still busy when it ended; each is in Latency with
	// the time it had waited by then (a lower bound), not in Ops.
	Late, Missed uint64
	Elapsed      time.Duration
	Latency      *Histogram // from intended time (closed loop: from send)
	Service      *Histogram // from the actual send
	SendLag      *Histogram // open loop: actual send − intended time (the generator's own delay is in Latency too)
	ReadLatency  *Histogram
	WriteLatency *Histogram
	// CPUSeconds over the window; negative when not measured.
	CPUSeconds float64
	// GeneratorCPUSeconds is this process's own user+system CPU time over
	// the window (the load generator and its clients, not the processes
	// it started); negative when not measured.
	GeneratorCPUSeconds float64
	// Disk is what the disk under the cluster's data wrote over the window
	// (the whole device: other writers count too); Device is "" when it
	// was not measured.
	Disk DiskCounters
	// Servers is what the nodes counted over the window; nil when they
	// were not scraped (or a scrape failed: ServersErr says why).
	Servers    *ServerCounters
	ServersErr error
	Timeline   []Interval
}

// Throughput is completed operations per second of the window.
func (r *Result) Throughput() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// Validate checks the configuration.
func (c *LoadConfig) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("kraft/perf: clients must be positive, got %d", c.Clients)
	case c.RatePerSec < 0:
		return fmt.Errorf("kraft/perf: rate must not be negative, got %v", c.RatePerSec)
	case c.Duration <= 0 || c.Warmup < 0:
		return fmt.Errorf("kraft/perf: duration must be positive and warm-up not negative")
	case !(c.ReadRatio >= 0 && c.ReadRatio <= 1):
		return fmt.Errorf("kraft/perf: read ratio must be in [0, 1], got %v", c.ReadRatio)
	case c.PayloadBytes < 0:
		return fmt.Errorf("kraft/perf: payload must not be negative")
	case c.Keys == nil:
		return fmt.Errorf("kraft/perf: no key distribution")
	}
	return nil
}

type runner struct {
	cfg                       LoadConfig
	target                    Target
	windowStart, windowEnd    time.Time
	ops, reads, writes        atomic.Uint64
	errs, late, missed        atomic.Uint64
	firstErr                  sync.Once
	firstErrText              string
	lat, svc, lag, rlat, wlat *Histogram
	interval                  atomic.Pointer[Histogram] // the current second's latencies
	disk                      DiskCounters              // over the window, set by monitor
	servers                   *ServerCounters           // over the window, set by monitor
	serversErr                error
}

// Run runs cfg against t and returns what it measured. It fails only when
// ctx ends or no operation succeeded.
func Run(ctx context.Context, t Target, cfg LoadConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = time.Millisecond
	}
	r := &runner{cfg: cfg, target: t, lat: NewHistogram(), svc: NewHistogram(), lag: NewHistogram(), rlat: NewHistogram(), wlat: NewHistogram()}
	r.interval.Store(NewHistogram())
	begin := time.Now()
	r.windowStart = begin.Add(cfg.Warmup)
	r.windowEnd = r.windowStart.Add(cfg.Duration)
	var wg sync.WaitGroup
	if cfg.RatePerSec > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.openLoop(ctx, begin) }()
	} else if at, ok := t.(AsyncTarget); ok {
		wg.Add(1)
		go func() { defer wg.Done(); r.asyncClosedLoop(ctx, at) }()
	} else {
		for w := range cfg.Clients {
			wg.Add(1)
			go func() { defer wg.Done(); r.closedLoop(ctx, w) }()
		}
	}
	res := &Result{Elapsed: cfg.Duration, CPUSeconds: -1, GeneratorCPUSeconds: -1}
	res.Timeline, res.CPUSeconds, res.GeneratorCPUSeconds = r.monitor(ctx)
	res.Disk, res.Servers, res.ServersErr = r.disk, r.servers, r.serversErr
	if res.Servers != nil && cfg.CPUSeconds == nil && res.CPUSeconds < 0 {
		res.CPUSeconds = res.Servers.CPUSeconds
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Ops, res.Reads, res.Writes = r.ops.Load(), r.reads.Load(), r.writes.Load()
	res.Errors, res.Late, res.Missed = r.errs.Load(), r.late.Load(), r.missed.Load()
	res.FirstError = r.firstErrText
	res.Latency, res.Service, res.SendLag, res.ReadLatency, res.WriteLatency = r.lat, r.svc, r.lag, r.rlat, r.wlat
	if res.Ops == 0 {
		return res, fmt.Errorf("kraft/perf: no operation succeeded (%d errors; first: %s)", res.Errors, res.FirstError)
	}
	return res, nil
}

// worker is one worker's own state: no sharing, no locks.
type worker struct {
	id    int
	rng   *rand.Rand
	key   []byte
	value []byte
}

func (r *runner) newWorker(id int) *worker {
	w := &worker{id: id, rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(id))), key: make([]byte, 8),
		value: make([]byte, r.cfg.PayloadBytes)}
	for i := range w.value {
		w.value[i] = byte(w.rng.Uint32())
	}
	return w
}

func (r *runner) closedLoop(ctx context.Context, id int) {
	w := r.newWorker(id)
	// One clock reading per operation: an answer's time is the next send's
	// (time.Now was ~6% of the generator's CPU at three per operation).
	now := time.Now()
	for ctx.Err() == nil && now.Before(r.windowEnd) {
		now = r.do(ctx, w, now, now)
	}
}

// asyncClosedLoop is closedLoop over an AsyncTarget: each client is a
// state machine (asyncClient) whose done records its operation and
// starts the next one, on whatever goroutine the target answered on, so
// that no goroutine waits per operation. It returns when every client has
// stopped, each at its first answer at or after the window's end, or when
// ctx ends.
func (r *runner) asyncClosedLoop(ctx context.Context, t AsyncTarget) {
	var running sync.WaitGroup
	running.Add(r.cfg.Clients)
	for id := range r.cfg.Clients {
		c := &asyncClient{r: r, ctx: ctx, t: t, w: r.newWorker(id), running: &running}
		c.done = c.answered // bound once: a method value allocates
		c.send(time.Now())
	}
	stopped := make(chan struct{})
	go func() { running.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done(): // the operations in flight are the target's to end
	}
}

// asyncClient is one closed-loop client of asyncClosedLoop. Its fields
// are written by send and read by answered, which the target orders.
type asyncClient struct {
	r       *runner
	ctx     context.Context
	t       AsyncTarget
	w       *worker
	running *sync.WaitGroup // Done when the client stops
	done    func(error)     // answered
	read    bool            // the operation in flight
	sent    time.Time
}

// send starts the client's next operation at now, or stops the client
// when the window is over or ctx has ended.
func (c *asyncClient) send(now time.Time) {
	if c.ctx.Err() != nil || !now.Before(c.r.windowEnd) {
		c.running.Done()
		return
	}
	c.read, c.sent = c.r.next(c.w), now
	c.t.DoAsync(c.w.id, c.read, c.w.key, c.w.value, c.done)
	// The answer may have come already: c is not touched here again.
}

// answered records the operation in flight and sends the next one. One
// clock reading per operation, as in closedLoop.
func (c *asyncClient) answered(err error) {
	now := time.Now()
	c.r.record(c.ctx, c.read, c.sent, c.sent, now, err)
	c.send(now)
}

// openLoop hands each intended time to an idle worker, through an
// unbuffered channel so that a send succeeds only when one is idle.
func (r *runner) openLoop(ctx context.Context, begin time.Time) {
	work := make(chan time.Time)
	var wg sync.WaitGroup
	for id := range r.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := r.newWorker(id)
			for t := range work {
				r.do(ctx, w, t, time.Now())
			}
		}()
	}
	defer wg.Wait()
	defer close(work)
	end := time.NewTimer(time.Until(r.windowEnd))
	defer end.Stop()
	sleep := time.NewTimer(0)
	defer sleep.Stop()
	p := newPacer(begin, r.cfg.RatePerSec, r.cfg.Poisson, r.cfg.Seed)
	for {
		t := p.next()
		if !t.Before(r.windowEnd) {
			return
		}
		if d := time.Until(t); d > 0 {
			sleep.Reset(d)
			select {
			case <-sleep.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case work <- t:
		default: // every worker busy: this one and those behind it go out late
			select {
			case work <- t:
			case <-end.C:
				r.miss(t, p)
				return
			case <-ctx.Done():
				return
			}
		}
		if r.measured(t) && time.Since(t) >= r.cfg.LateAfter {
			r.late.Add(1)
		}
	}
}

// miss accounts for t and every later intended time of the window, none of
// which was sent: each goes into the latencies with the wait so far.
func (r *runner) miss(t time.Time, p *pacer) {
	now := time.Now()
	for ; t.Before(r.windowEnd); t = p.next() {
		if r.measured(t) {
			r.missed.Add(1)
			r.lat.Record(now.Sub(t))
		}
	}
}

func (r *runner) measured(t time.Time) bool {
	return !t.Before(r.windowStart) && t.Before(r.windowEnd)
}

// do performs one operation intended at intended and sent at sent (closed
// loop: the same instant), records it, and returns when it was answered.
func (r *runner) do(ctx context.Context, w *worker, intended, sent time.Time) (done time.Time) {
	read := r.next(w)
	err := r.target.Do(ctx, w.id, read, w.key, w.value)
	done = time.Now()
	r.record(ctx, read, intended, sent, done, err)
	return done
}

// next draws w's next operation: whether it reads, and its key into w.key.
func (r *runner) next(w *worker) (read bool) {
	read = r.cfg.ReadRatio > 0 && w.rng.Float64() < r.cfg.ReadRatio
	binary.BigEndian.PutUint64(w.key, r.cfg.Keys.Next(w.rng))
	return read
}

// record accounts for one operation intended at intended, sent at sent and
// answered at done with err, if it belongs to the window. Safe for
// concurrent use.
func (r *runner) record(ctx context.Context, read bool, intended, sent, done time.Time, err error) {
	if !r.measured(intended) {
		return
	}
	if err != nil {
		if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			r.errs.Add(1)
			r.firstErr.Do(func() { r.firstErrText = err.Error() })
		}
		return
	}
	lat := done.Sub(intended)
	r.lat.Record(lat)
	r.svc.Record(done.Sub(sent))
	if r.cfg.RatePerSec > 0 {
		r.lag.Record(sent.Sub(intended))
	}
	r.interval.Load().Record(lat)
	if read {
		r.reads.Add(1)
		r.rlat.Record(lat)
	} else {
		r.writes.Add(1)
		r.wlat.Record(lat)
	}
	r.ops.Add(1)
}

// monitor waits out the warm-up and the window, taking the timeline and
// calling Progress once a second, and reads the CPU time at both ends:
// cfg.CPUSeconds' and this process's own.
func (r *runner) monitor(ctx context.Context) (timeline []Interval, cpu, selfCPU float64) {
	if !sleepUntil(ctx, r.windowStart) {
		return nil, -1, -1
	}
	cpu0 := -1.0
	if r.cfg.CPUSeconds != nil {
		cpu0 = r.cfg.CPUSeconds()
	}
	self0 := SelfCPUSeconds()
	var disk0 DiskCounters
	diskOK := false
	if r.cfg.Disk != nil {
		var err error
		disk0, err = r.cfg.Disk()
		diskOK = err == nil
	}
	var servers0 ServerSample
	if r.cfg.Servers != nil {
		servers0, r.serversErr = r.cfg.Servers()
	}
	r.interval.Store(NewHistogram())
	var (
		prevOps, prevEr uint64
		tick            = r.windowStart
	)
	for tick.Before(r.windowEnd) {
		tick = tick.Add(time.Second)
		if tick.After(r.windowEnd) {
			tick = r.windowEnd
		}
		if !sleepUntil(ctx, tick) {
			return timeline, -1, -1
		}
		h := r.interval.Swap(NewHistogram())
		ops, errs := r.ops.Load(), r.errs.Load()
		iv := Interval{End: tick.Sub(r.windowStart), Ops: ops - prevOps, Errors: errs - prevEr,
			P50: h.Percentile(.5), P99: h.Percentile(.99), Max: h.Max()}
		timeline = append(timeline, iv)
		if r.cfg.Progress != nil {
			secs := (iv.End - sumEnd(timeline[:len(timeline)-1])).Seconds()
			r.cfg.Progress(Progress{Elapsed: iv.End, Ops: ops, Errors: errs, Late: r.late.Load(),
				OpsPerSec: float64(iv.Ops) / secs, P50: r.lat.Percentile(.5), P99: r.lat.Percentile(.99), P999: r.lat.Percentile(.999)})
		}
		prevOps, prevEr = ops, errs
	}
	selfCPU = -1
	if self0 >= 0 {
		selfCPU = SelfCPUSeconds() - self0
	}
	if diskOK {
		if d1, err := r.cfg.Disk(); err == nil {
			r.disk = d1.since(disk0)
		}
	}
	if r.cfg.Servers != nil && r.serversErr == nil {
		var servers1 ServerSample
		if servers1, r.serversErr = r.cfg.Servers(); r.serversErr == nil {
			c := servers1.Since(servers0)
			r.servers = &c
		}
	}
	if cpu0 < 0 {
		return timeline, -1, selfCPU
	}
	return timeline, r.cfg.CPUSeconds() - cpu0, selfCPU
}

// sumEnd is where the previous interval ended.
func sumEnd(prev []Interval) time.Duration {
	if len(prev) == 0 {
		return 0
	}
	return prev[len(prev)-1].End
}

// sleepUntil reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// Preload writes every key in [0, keys) once, with workers in parallel,
// so that reads find values.
func Preload(ctx context.Context, t Target, keys, payloadBytes, workers int) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for id := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, value := make([]byte, 8), make([]byte, payloadBytes)
			for {
				k := next.Add(1) - 1
				if k >= int64(keys) || ctx.Err() != nil {
					return
				}
				binary.BigEndian.PutUint64(key, uint64(k))
				octx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := t.Do(octx, id, false, key, value)
				cancel()
				if err != nil {
					once.Do(func() { first = fmt.Errorf("kraft/perf: preload of key %d: %w", k, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
