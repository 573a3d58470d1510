package inproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

func startCluster(t *testing.T, nodes int) *Cluster {
	t.Helper()
	c, err := Start(Config{Nodes: nodes, Dir: t.TempDir(), Fsync: wal.FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// Writes through the target reach every node's KV, each worker is a
// session of its own, and reads see the writes.
func TestTargetWritesReplicateAndRead(t *testing.T) {
	c := startCluster(t, 3)
	tg := NewTarget(c, 4, wire.ReadLinearizable)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for round := range 3 {
		for w := range 4 {
			key, value := fmt.Appendf(nil, "k%d", w), fmt.Appendf(nil, "v%d-%d", w, round)
			if err := tg.Do(ctx, w, false, key, value); err != nil {
				t.Fatalf("worker %d round %d: %v", w, round, err)
			}
			if err := tg.Do(ctx, w, true, key, nil); err != nil {
				t.Fatalf("read: %v", err)
			}
		}
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		if err := m.node.Load().WaitApplied(ctx, leader.Applied()); err != nil {
			t.Fatal(err)
		}
		for w := range 4 {
			v, ok := m.kv.Get(fmt.Appendf(nil, "k%d", w))
			if want := fmt.Appendf(nil, "v%d-2", w); !ok || !bytes.Equal(v, want) {
				t.Fatalf("node %d: k%d = %q %v, want %q", m.id, w, v, ok, want)
			}
		}
	}
	if tg.workers[3].seq != 3 || !tg.workers[3].established {
		t.Fatalf("worker 3: %+v", tg.workers[3])
	}
}

// After leadership moves, the write that reaches the old leader fails with
// NotLeaderError and the next one goes to the new leader.
func TestTargetFollowsTheLeader(t *testing.T) {
	c := startCluster(t, 3)
	tg := NewTarget(c, 1, wire.ReadLinearizable)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tg.Do(ctx, 0, false, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	old := c.leader.Load()
	next := c.members[0]
	if next == old {
		next = c.members[1]
	}
	if err := old.node.Load().TransferLeadership(ctx, next.id); err != nil {
		t.Fatal(err)
	}
	err := tg.Do(ctx, 0, false, []byte("a"), []byte("2"))
	var nl *core.NotLeaderError
	if !errors.As(err, &nl) {
		t.Fatalf("write to the old leader: %v, want NotLeaderError", err)
	}
	for c.leader.Load() == old { // the transfer may still be finishing
		if ctx.Err() != nil {
			t.Fatal("the target never found the new leader")
		}
		time.Sleep(10 * time.Millisecond)
		tg.failed(nl)
	}
	if err := tg.Do(ctx, 0, false, []byte("a"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.leader.Load().kv.Get([]byte("a")); string(v) != "3" {
		t.Fatalf("a = %q", v)
	}
}

// perf.Run drives the target: every operation succeeds and the CPU of the
// process is measured.
func TestRunOnCluster(t *testing.T) {
	c := startCluster(t, 3)
	keys, err := perf.ParseKeyDist("uniform", 100)
	if err != nil {
		t.Fatal(err)
	}
	res, err := perf.Run(context.Background(), NewTarget(c, 8, wire.ReadLinearizable), perf.LoadConfig{
		Workload: perf.Workload{ReadRatio: 0.5, PayloadBytes: 16, Keys: keys},
		Clients:  8, Duration: 500 * time.Millisecond, CPUSeconds: perf.SelfCPUSeconds})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != 0 || res.Reads == 0 || res.Writes == 0 {
		t.Fatalf("ops %d (reads %d, writes %d), errors %d: %s", res.Ops, res.Reads, res.Writes, res.Errors, res.FirstError)
	}
}

func TestStartRejects(t *testing.T) {
	for _, cfg := range []Config{{Nodes: 0, Dir: t.TempDir()}, {Nodes: 10, Dir: t.TempDir()}, {Nodes: 3}} {
		if c, err := Start(cfg); err == nil {
			c.Close()
			t.Errorf("%+v accepted", cfg)
		}
	}
}
