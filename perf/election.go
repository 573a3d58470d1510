package perf

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kraftdb/kraft/client"
)

// ElectionConfig is a leader-kill run: Kills times, find the leader,
// kill -9 it, time until the next write commits, restart it and wait
// until it has caught up. The same measurement as e2e's
// TestLeaderKillRecoveryTiming (make elections), from the command line.
type ElectionConfig struct {
	Kills     int
	ClusterID uint64
	// Progress, if set, is called after each kill.
	Progress func(kill int, d time.Duration)
}

// MeasureElections returns the kill → next committed write times, sorted.
// The client retries every 2–5 ms so that the figure is the cluster's
// recovery, not the client's default backoff.
func MeasureElections(ctx context.Context, lc *LocalCluster, cfg ElectionConfig) ([]time.Duration, error) {
	cl, err := client.New(client.Config{Endpoints: lc.Clients, ClusterID: cfg.ClusterID, MaxRetries: 1000,
		RetryBackoff: 2 * time.Millisecond, RetryBackoffMax: 5 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond,
		DialTimeout: 100 * time.Millisecond, RequestTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	put := func(i int) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := cl.Put(pctx, []byte("kraftbench-election"), []byte(fmt.Sprint(i)))
		return err
	}
	if err := put(0); err != nil {
		return nil, fmt.Errorf("kraft/perf: first write: %w", err)
	}
	samples := make([]time.Duration, 0, cfg.Kills)
	for i := 1; i <= cfg.Kills; i++ {
		leader, err := lc.WaitLeader(20 * time.Second)
		if err != nil {
			return nil, err
		}
		killed := time.Now()
		lc.Kill(leader)
		for {
			if err := put(i); err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if time.Since(killed) > 30*time.Second {
				return nil, fmt.Errorf("kraft/perf: kill %d: no write committed within 30s", i)
			}
		}
		d := time.Since(killed)
		samples = append(samples, d)
		if cfg.Progress != nil {
			cfg.Progress(i, d)
		}
		if err := lc.Restart(ctx, leader, 30*time.Second); err != nil {
			return nil, err
		}
	}
	slices.Sort(samples)
	return samples, nil
}
