package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/server"
)

// kraftbench reads real nodes' counters over a run's window: CPU, the
// leader's WAL syncs, snapshots and refusals, through the admin token.
func TestBenchReadsTheNodesCounters(t *testing.T) {
	const token = "e2e-bench-token"
	c := newCluster(t, 3, "--admin-token", token, "--snapshot-threshold", "20000", "--snapshot-min-interval", "0")
	var eps, admins []string
	for _, p := range c.procs {
		eps, admins = append(eps, p.clientAddr()), append(admins, p.adminAddr())
	}
	wrong, err := perf.NewScraper(admins, "not-the-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Scrape(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("scrape with a wrong token: %v, want a 401", err)
	}
	sc, err := perf.NewScraper(admins, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	target, err := perf.NewClientTarget(client.Config{Endpoints: eps, ClusterID: server.ClusterNumber(c.name)}, 64, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	ctx := context.Background()
	cfg := perf.LoadConfig{Workload: perf.Workload{PayloadBytes: 128, Keys: perf.Uniform{N: 1000}},
		Clients: 64, Warmup: 500 * time.Millisecond, Duration: 3 * time.Second,
		Servers: func() (perf.ServerSample, error) { return sc.Scrape(ctx) }}
	res, err := perf.Run(ctx, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Servers
	if res.ServersErr != nil || s == nil {
		t.Fatalf("no counters: %v", res.ServersErr)
	}
	t.Logf("%d writes; nodes %+v", res.Writes, *s)
	if s.Nodes != 3 || s.CPUSeconds <= 0 || res.CPUSeconds != s.CPUSeconds {
		t.Fatalf("nodes %d, CPU %.2f s (run's %.2f s)", s.Nodes, s.CPUSeconds, res.CPUSeconds)
	}
	// Every write was synced by the leader, in fewer rounds than writes
	// (64 clients share flushes).
	if s.LeaderChanges != 0 || s.Elections != 0 || s.LeaderWALSyncs == 0 || s.LeaderWALSyncs >= res.Writes {
		t.Fatalf("leader changes %d, leader syncs %d for %d writes", s.LeaderChanges, s.LeaderWALSyncs, res.Writes)
	}
	if res.Writes > 3*20000 && s.Snapshots == 0 {
		t.Fatalf("%d writes with a snapshot every 20,000 entries, no snapshot counted", res.Writes)
	}
	if len(s.Rejected) != 0 {
		t.Fatalf("refusals on a healthy cluster: %v", s.Rejected)
	}

	// Writes sent only to a follower are refused there, and counted.
	leader := c.waitLeader(5 * time.Second)
	follower := c.follower(leader)
	before, err := sc.Scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{Endpoints: []string{c.procs[follower].clientAddr()}, ClusterID: server.ClusterNumber(c.name)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Put(ctx, []byte("k"), []byte("v")) // redirected to the leader, or refused
	after, err := sc.Scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Since(before).Rejected["NotLeader"]; got == 0 {
		t.Fatalf("a put sent to follower %d: NotLeader counted %d times", follower, got)
	}
}
