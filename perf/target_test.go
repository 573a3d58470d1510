package perf_test

import (
	"context"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/perf/inproc"
)

// ClientTarget's closed loop goes through DoAsync and its answers, reads
// and writes, are counted as Do's would be.
func TestClientTargetAsyncClosedLoop(t *testing.T) {
	s, err := inproc.StartNull(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const clients = 64
	target, err := perf.NewClientTarget(client.Config{Endpoints: []string{s.ClientAddr()}, ClusterID: perf.ClusterNumber(inproc.NullClusterID)},
		clients, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	var _ perf.AsyncTarget = target
	cfg := perf.LoadConfig{Workload: perf.Workload{ReadRatio: 0.5, PayloadBytes: 128, Keys: perf.Uniform{N: 1000}},
		Clients: clients, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond}
	res, err := perf.Run(context.Background(), target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Reads == 0 || res.Writes == 0 || res.Latency.Count() != res.Ops {
		t.Fatalf("ops %d (reads %d, writes %d), errors %d (first %q), %d latencies",
			res.Ops, res.Reads, res.Writes, res.Errors, res.FirstError, res.Latency.Count())
	}
}
