package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/client"
)

// LoadConfig is a closed-loop write workload: Clients goroutines each send
// one put, wait for it, and send the next.
type LoadConfig struct {
	Clients      int
	PayloadBytes int
	Keys         int // key space; keys are drawn uniformly
	Warmup       time.Duration
	Duration     time.Duration
	// ClientsPerConn: workers sharing one client.Client (one pipelined
	// connection).
	ClientsPerConn int
	// Progress, if set, is called about once a second with ops so far.
	Progress func(ops uint64, elapsed time.Duration)
}

// Result is what a load run measured (after warm-up).
type Result struct {
	Ops       uint64
	Errors    uint64
	Elapsed   time.Duration
	Latencies []time.Duration // sorted
}

// Throughput is committed operations per second.
func (r Result) Throughput() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// RunWrites runs the workload against the endpoints (client ports).
func RunWrites(ctx context.Context, endpoints []string, clusterID uint64, cfg LoadConfig) (Result, error) {
	if cfg.ClientsPerConn <= 0 {
		cfg.ClientsPerConn = 32
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 100000
	}
	nconn := (cfg.Clients + cfg.ClientsPerConn - 1) / cfg.ClientsPerConn
	conns := make([]*client.Client, nconn)
	for i := range conns {
		c, err := client.New(client.Config{Endpoints: endpoints, ClusterID: clusterID, MaxInflight: cfg.ClientsPerConn * 2})
		if err != nil {
			return Result{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		ops, errs atomic.Uint64
		mu        sync.Mutex
		lat       []time.Duration
		wg        sync.WaitGroup
	)
	payload := make([]byte, cfg.PayloadBytes)
	for w := 0; w < cfg.Clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := conns[w/cfg.ClientsPerConn]
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			key := make([]byte, 8)
			local := make([]time.Duration, 0, 4096)
			for !stop.Load() && ctx.Err() == nil {
				binary.BigEndian.PutUint64(key, uint64(rng.IntN(cfg.Keys)))
				start := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := c.Put(rctx, key, payload)
				cancel()
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(start))
				ops.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	sleepCtx(ctx, cfg.Warmup)
	measuring.Store(true)
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < cfg.Duration && ctx.Err() == nil; elapsed = time.Since(start) {
		sleepCtx(ctx, min(time.Second, cfg.Duration-elapsed))
		if cfg.Progress != nil {
			cfg.Progress(ops.Load(), time.Since(start))
		}
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return Result{}, fmt.Errorf("kraft/perf: no write succeeded (%d errors)", errs.Load())
	}
	return Result{Ops: ops.Load(), Errors: errs.Load(), Elapsed: elapsed, Latencies: lat}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
