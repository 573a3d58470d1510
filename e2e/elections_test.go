package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/server"
)

// TestLeaderKillRecoveryTiming kills the leader of a 5-node cluster of real
// kraftd processes (election timeouts 150-300 ms) again and again and
// measures the time from the kill until the next write commits. It is a
// measurement, not a check: make elections runs it (KRAFT_ELECTION_KILLS,
// default 100) and the result goes to perf/results/elections.md next to
// the Raft paper's Figure 16 and the simulator's.
func TestLeaderKillRecoveryTiming(t *testing.T) {
	kills, err := strconv.Atoi(os.Getenv("KRAFT_ELECTION_KILLS"))
	if err != nil || kills <= 0 {
		t.Skip("a measurement: set KRAFT_ELECTION_KILLS (make elections)")
	}
	c := newCluster(t, 5, "--election-timeout-min", "150ms", "--election-timeout-max", "300ms", "--heartbeat-interval", "50ms")
	// Retry tightly, so that the figure is the cluster's recovery rather than
	// the client's backoff policy.
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.clientAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps, ClusterID: server.ClusterNumber(c.name), MaxRetries: 1000,
		RetryBackoff: 2 * time.Millisecond, RetryBackoffMax: 5 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond,
		DialTimeout: 100 * time.Millisecond, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	put := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cl.Put(ctx, []byte("timing"), []byte(fmt.Sprint(i)))
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	var samples []time.Duration
	for i := 1; i <= kills; i++ {
		leader := c.waitLeader(10 * time.Second)
		killed := time.Now()
		c.signal(leader, syscall.SIGKILL)
		for {
			if err := put(i); err == nil {
				break
			}
			if time.Since(killed) > 20*time.Second {
				t.Fatalf("kill %d: no write committed within 20s", i)
			}
		}
		samples = append(samples, time.Since(killed))
		c.start(leader)
		c.waitApplied(leader)
	}
	slices.Sort(samples)
	pct := func(q float64) time.Duration { return samples[min(len(samples)-1, int(q*float64(len(samples))))] }
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	t.Logf("%d leader kills, 5 nodes, timeouts 150-300 ms: time to the next committed write p50 %v, p99 %v, max %v, mean %v, min %v",
		len(samples), pct(.5).Round(time.Millisecond), pct(.99).Round(time.Millisecond), samples[len(samples)-1].Round(time.Millisecond),
		(sum / time.Duration(len(samples))).Round(time.Millisecond), samples[0].Round(time.Millisecond))
}
