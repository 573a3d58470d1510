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

// Each of a ClientTarget's connections starts at its own endpoint, so that
// operations any node answers (here: the null servers answer everything)
// are spread over the cluster, not all sent to the first endpoint.
func TestClientTargetSpreadsConnections(t *testing.T) {
	var servers []*inproc.NullServer
	var eps []string
	for range 3 {
		s, err := inproc.StartNull(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers, eps = append(servers, s), append(eps, s.ClientAddr())
	}
	const clients, perConn = 12, 2 // 6 connections, 2 per endpoint
	target, err := perf.NewClientTarget(client.Config{Endpoints: eps, ClusterID: perf.ClusterNumber(inproc.NullClusterID)},
		clients, perConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	cfg := perf.LoadConfig{Workload: perf.Workload{ReadRatio: 1, PayloadBytes: 16, Keys: perf.Uniform{N: 100}},
		Clients: clients, Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond}
	res, err := perf.Run(context.Background(), target, cfg)
	if err != nil || res.Errors != 0 || res.Ops == 0 {
		t.Fatalf("run: %v, %d ops, %d errors (first %q)", err, res.Ops, res.Errors, res.FirstError)
	}
	for i, s := range servers {
		if s.Answered() == 0 {
			t.Errorf("endpoint %d (%s) answered nothing: connections were not spread", i, eps[i])
		}
	}
}
