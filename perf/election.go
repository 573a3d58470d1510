package perf

import (
	"context"
	"crypto/tls"
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
	// TLS, if set, is the client's TLS configuration (kraftbench --tls).
	TLS *tls.Config
}

// ElectionSamples are a leader-kill run's times, each sorted.
type ElectionSamples struct {
	// Commit: kill → the next write committed (what a client sees).
	Commit []time.Duration
	// Elected: kill → a surviving node's /status names a new leader
	// (polled every 5 ms), the election's share of Commit.
	Elected []time.Duration
	// Terms: the terms begun from just before each kill until the next
	// write committed, the most any survivor counted
	// (kraft_elections_total): 1 is a clean election; more are split
	// votes or candidates that timed out and tried again.
	Terms []uint64
}

// MeasureElections kills the leader cfg.Kills times. The client retries
// every 2–5 ms so that the figure is the cluster's recovery, not the
// client's default backoff.
func MeasureElections(ctx context.Context, lc *LocalCluster, cfg ElectionConfig) (ElectionSamples, error) {
	var out ElectionSamples
	cl, err := client.New(client.Config{Endpoints: lc.Clients, ClusterID: cfg.ClusterID, MaxRetries: 1000,
		RetryBackoff: 2 * time.Millisecond, RetryBackoffMax: 5 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond,
		DialTimeout: 100 * time.Millisecond, RequestTimeout: 10 * time.Second, TLS: cfg.TLS})
	if err != nil {
		return out, err
	}
	defer cl.Close()
	put := func(i int) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := cl.Put(pctx, []byte("kraftbench-election"), []byte(fmt.Sprint(i)))
		return err
	}
	if err := put(0); err != nil {
		return out, fmt.Errorf("kraft/perf: first write: %w", err)
	}
	// survivors[j] reads the counters of every node but j.
	survivors := make([]*Scraper, len(lc.Admins))
	for j := range lc.Admins {
		others := append(slices.Clone(lc.Admins[:j]), lc.Admins[j+1:]...)
		sc, err := NewScraper(others, "", nil)
		if err != nil {
			return out, err
		}
		defer sc.Close()
		survivors[j] = sc
	}
	for i := 1; i <= cfg.Kills; i++ {
		leader, err := lc.WaitLeader(20 * time.Second)
		if err != nil {
			return out, err
		}
		sc := survivors[leader]
		before, err := sc.Scrape(ctx)
		if err != nil {
			return out, fmt.Errorf("kraft/perf: kill %d: %w", i, err)
		}
		killed := time.Now()
		lc.Kill(leader)
		elected := make(chan time.Duration, 1)
		go func() { elected <- watchElection(ctx, lc, leader, killed) }()
		for {
			if err := put(i); err == nil {
				break
			}
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if time.Since(killed) > 30*time.Second {
				return out, fmt.Errorf("kraft/perf: kill %d: no write committed within 30s", i)
			}
		}
		d := time.Since(killed)
		out.Commit = append(out.Commit, d)
		out.Elected = append(out.Elected, <-elected)
		after, err := sc.Scrape(ctx)
		if err != nil {
			return out, fmt.Errorf("kraft/perf: kill %d: %w", i, err)
		}
		out.Terms = append(out.Terms, after.Since(before).Elections)
		if cfg.Progress != nil {
			cfg.Progress(i, d)
		}
		if err := lc.Restart(ctx, leader, 30*time.Second); err != nil {
			return out, err
		}
	}
	slices.Sort(out.Commit)
	slices.Sort(out.Elected)
	slices.Sort(out.Terms)
	return out, nil
}

// watchElection polls until a survivor names a new leader; it gives up
// after 30 s (returning the time so far).
func watchElection(ctx context.Context, lc *LocalCluster, old int, killed time.Time) time.Duration {
	for ctx.Err() == nil && time.Since(killed) < 30*time.Second {
		if lc.NewLeaderSeen(old) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(killed)
}
