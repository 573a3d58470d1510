package inproc

import (
	"context"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/perf"
)

// The Go client talks to a NullServer as to a node: writes get increasing
// indexes, reads succeed, and the load runs without errors.
func TestNullServerAnswersTheClient(t *testing.T) {
	s, err := StartNull(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := client.Config{Endpoints: []string{s.ClientAddr()}, ClusterID: perf.ClusterNumber(NullClusterID)}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := c.Put(ctx, []byte("k"), []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Put(ctx, []byte("k"), []byte("w"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Index <= first.Index {
		t.Fatalf("indexes %d then %d", first.Index, second.Index)
	}
	if _, err := c.Get(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}

	target, err := perf.NewClientTarget(cfg, 16, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	keys, _ := perf.ParseKeyDist("uniform", 100)
	res, err := perf.Run(ctx, target, perf.LoadConfig{Workload: perf.Workload{ReadRatio: 0.5, PayloadBytes: 16, Keys: keys},
		Clients: 16, Duration: 300 * time.Millisecond, CPUSeconds: perf.SelfCPUSeconds})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != 0 || res.Reads == 0 || res.Writes == 0 {
		t.Fatalf("ops %d (reads %d, writes %d), errors %d: %s", res.Ops, res.Reads, res.Writes, res.Errors, res.FirstError)
	}
}

// A client of another cluster is refused, as a node would refuse it.
func TestNullServerRefusesAnotherCluster(t *testing.T) {
	s, err := StartNull(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := client.New(client.Config{Endpoints: []string{s.ClientAddr()}, ClusterID: perf.ClusterNumber("kraft")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); err == nil {
		t.Fatal("a client of cluster \"kraft\" was answered")
	}
}
