package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

func kvCommand(op wire.Op, key, value string) []byte {
	return kvCommandFrom(1, clientSeq.Add(1), op, key, value)
}

func kvCommandFrom(client, seq uint64, op wire.Op, key, value string) []byte {
	r := wire.ClientRequest{ClientID: client, Seq: seq, FirstUnacked: seq, NewSession: true, Op: op, Key: []byte(key), Value: []byte(value)}
	f := wire.AppendClientRequest(nil, &r)
	return sm.AppendCommand(nil, time.Now().UnixNano(), f[wire.FrameHeaderSize:])
}

func (c *nodeCluster) propose(cmd []byte) {
	c.t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.leader().Propose(ctx, cmd)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("proposal never succeeded")
}

// snapshotNow takes a snapshot on n covering at least its applied index.
func snapshotNow(t *testing.T, n *Node) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := n.Applied()
	for {
		idx, err := n.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if idx >= want {
			return idx
		}
		if ctx.Err() != nil {
			t.Fatalf("no snapshot at or after %d", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kvState(t *testing.T, kv *sm.KV) []byte {
	t.Helper()
	s, err := kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// churn overwrites and deletes a few of keys k0..k<keys>.
func (c *nodeCluster) churn(round, keys int) {
	for i := 0; i < 20; i++ {
		k := fmt.Sprint("k", (round*37+i*11)%keys)
		if i%4 == 0 {
			c.propose(kvCommand(wire.OpDelete, k, ""))
		} else {
			c.propose(kvCommand(wire.OpPut, k, fmt.Sprint("round", round, "-", i)))
		}
	}
}

func incrementalCluster(t *testing.T, codec wal.SnapshotCodec) *nodeCluster {
	c := newNodeCluster(t)
	c.tweak = func(cfg *NodeConfig) {
		cfg.Snapshots = SnapshotOptions{Incremental: true, Compression: codec, MaxDeltaChain: 4}
		cfg.WAL.SnapshotsRetained = 2
	}
	return c
}

// A chain of a full snapshot and deltas is what a restart restores: the
// state equals the one the node had built by applying the commands.
func TestNodeIncrementalSnapshotChainSurvivesRestart(t *testing.T) {
	c := incrementalCluster(t, wal.SnapshotCodecZstd)
	n := c.start(1, []uint64{1})
	for i := 0; i < 300; i++ {
		c.propose(kvCommand(wire.OpPut, fmt.Sprint("k", i), strings.Repeat("v", i%50)))
	}
	snapshotNow(t, n)
	for round := 0; round < 3; round++ {
		c.churn(round, 300)
		snapshotNow(t, n)
	}
	metas, _, err := n.wal.LoadSnapshotChain()
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 4 || metas[0].Base != 0 || metas[3].Base != metas[2].Index || metas[3].Codec != wal.SnapshotCodecZstd {
		t.Fatalf("chain on disk: %+v, want a full snapshot and 3 deltas", metas)
	}
	if files, _ := n.SnapshotFiles(); len(files) != 4 {
		t.Fatalf("retain 2 must keep the bases of the newest deltas: %d files", len(files))
	}
	want := kvState(t, c.kvs[1])
	c.stop(1)
	n = c.start(1, []uint64{1})
	if got := kvState(t, c.kvs[1]); !bytes.Equal(got, want) {
		t.Fatal("state restored from the chain differs from the state before the restart")
	}
	if n.LastSnapshotIndex() != metas[3].Index || c.kvs[1].Applied() < metas[3].Index {
		t.Fatalf("restarted at snapshot %d, applied %d; newest snapshot %d", n.LastSnapshotIndex(), c.kvs[1].Applied(), metas[3].Index)
	}
	// After MaxDeltaChain deltas (and after a restart) a full one again.
	c.churn(9, 300)
	snapshotNow(t, n)
	metas, _, err = n.wal.LoadSnapshotChain()
	if err != nil || len(metas) != 1 {
		t.Fatalf("first snapshot after a restart: chain %+v %v, want a full one", metas, err)
	}
}

// A damaged delta or a missing base stops the node with an error that
// names the file; it never starts from a wrong state.
func TestNodeBrokenSnapshotChainIsAClearError(t *testing.T) {
	c := incrementalCluster(t, wal.SnapshotCodecNone)
	n := c.start(1, []uint64{1})
	for i := 0; i < 100; i++ {
		c.propose(kvCommand(wire.OpPut, fmt.Sprint("k", i), "v"))
	}
	snapshotNow(t, n)
	c.churn(1, 100)
	snapshotNow(t, n)
	c.churn(2, 100)
	snapshotNow(t, n)
	metas, _, err := n.wal.LoadSnapshotChain()
	if err != nil || len(metas) != 3 {
		t.Fatalf("chain: %+v %v", metas, err)
	}
	c.stop(1)
	cfg := func() NodeConfig {
		kv, _ := sm.NewKV(sm.DefaultKVConfig())
		return NodeConfig{Raft: DefaultConfig(1, nil), WALDir: filepath.Join(c.dir, "1"),
			WAL: wal.Options{SegmentSizeBytes: 1 << 20, Fsync: wal.FsyncNone}, StateMachine: kv, Transport: alone{}}
	}
	// A bit flipped in the newest delta.
	delta := metas[2].File
	orig, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 4
	os.WriteFile(delta, bad, 0o644)
	if _, err := NewNode(cfg()); err == nil || !strings.Contains(err.Error(), filepath.Base(delta)) {
		t.Fatalf("damaged delta: NewNode = %v", err)
	}
	os.WriteFile(delta, orig, 0o644)
	// The middle link removed.
	os.Rename(metas[1].File, metas[1].File+".moved")
	_, err = NewNode(cfg())
	var mb *wal.MissingBaseError
	if !errors.As(err, &mb) || !strings.Contains(err.Error(), filepath.Base(delta)) || mb.Base != metas[1].Index {
		t.Fatalf("missing base: NewNode = %v", err)
	}
	os.Rename(metas[1].File+".moved", metas[1].File)
	n2, err := NewNode(cfg())
	if err != nil {
		t.Fatalf("chain repaired: %v", err)
	}
	n2.Close()
}

// alone is a transport with no peers.
type alone struct{}

func (alone) Send(*wire.Message) error { return nil }

// A node that joins later gets the leader's materialized chain and ends
// with the leader's state, whatever its own snapshot settings.
func TestNodeInstallsTheLeadersSnapshotChain(t *testing.T) {
	c := incrementalCluster(t, wal.SnapshotCodecZstd)
	n := c.start(1, []uint64{1})
	for i := 0; i < 200; i++ {
		c.propose(kvCommand(wire.OpPut, fmt.Sprint("k", i), fmt.Sprint("v", i)))
	}
	snapshotNow(t, n)
	c.churn(1, 200)
	snapshotNow(t, n)
	c.churn(2, 200)
	last := snapshotNow(t, n)
	if metas, _, err := n.wal.LoadSnapshotChain(); err != nil || len(metas) != 3 {
		t.Fatalf("leader's chain: %+v %v", metas, err)
	}
	c.tweak = nil // node 2: no compression, full snapshots only
	c.start(2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.AddLearner(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 2 installs the snapshot", func() bool { return c.kvs[2].Applied() >= last })
	n2 := c.net.nodes[2]
	if n2.LastSnapshotIndex() < last {
		t.Fatalf("node 2 caught up without the snapshot (last snapshot %d)", n2.LastSnapshotIndex())
	}
	c.stop(2) // the state then stays put, and it restarts from its own file
	c.stop(1)
	want := kvState(t, c.kvs[1])
	if got := kvState(t, c.kvs[2]); !bytes.Equal(got, want) {
		t.Fatal("follower's state after installing the chain differs from the leader's")
	}
	c.start(2, nil)
	if got := kvState(t, c.kvs[2]); !bytes.Equal(got, want) {
		t.Fatal("follower restarted from its installed snapshot file differs from the leader")
	}
}

// With Sync the apply goroutine waits for each snapshot; under steady
// load with a snapshot every few entries the node neither deadlocks nor
// loses a write.
func TestNodeSyncSnapshotsUnderLoad(t *testing.T) {
	c := newNodeCluster(t)
	c.snapshotEvery = 20
	c.tweak = func(cfg *NodeConfig) { cfg.Snapshots = SnapshotOptions{Sync: true, Incremental: true} }
	c.start(1, []uint64{1})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				c.propose(kvCommandFrom(uint64(100+w), uint64(i+1), wire.OpPut, fmt.Sprint("w", w, "-", i), "v"))
			}
		}()
	}
	wg.Wait()
	if c.kvs[1].Len() != 480 {
		t.Fatalf("%d keys after 480 writes", c.kvs[1].Len())
	}
	want, applied := kvState(t, c.kvs[1]), c.kvs[1].Applied()
	c.stop(1)
	c.start(1, []uint64{1})
	waitFor(t, "the restarted node applies its log", func() bool { return c.kvs[1].Applied() >= applied })
	if got := kvState(t, c.kvs[1]); !bytes.Equal(got, want) {
		t.Fatal("state after restart differs")
	}
}

// Retention end to end: with a snapshot every 50 entries only the newest
// SnapshotsRetained files stay (plus the bases of deltas), the log is kept
// from the oldest of them on and the segments wholly before it are removed
// from disk; so the older snapshot is a fallback: with the newest file
// gone, a restart rebuilds the same state from it and the log.
func TestNodeSnapshotRetentionRemovesOldFilesAndSegments(t *testing.T) {
	for _, incremental := range []bool{false, true} {
		t.Run(fmt.Sprint("incremental=", incremental), func(t *testing.T) {
			c := newNodeCluster(t)
			c.snapshotEvery = 50
			c.tweak = func(cfg *NodeConfig) {
				cfg.WAL.SegmentSizeBytes = wal.MinSegmentSizeBytes
				cfg.WAL.SnapshotsRetained = 2
				cfg.Snapshots = SnapshotOptions{Incremental: incremental, MaxDeltaChain: 3}
			}
			n := c.start(1, []uint64{1})
			value := strings.Repeat("x", 200)
			for i := 0; i < 600; i++ {
				c.propose(kvCommand(wire.OpPut, fmt.Sprint("k", i%40), value))
			}
			snapshotNow(t, n)
			snapDir := filepath.Join(c.dir, "1", "snapshots")
			waitFor(t, "retention", func() bool {
				snaps, _ := os.ReadDir(snapDir)
				return len(snaps) <= 2+3 // newest 2, plus the bases of a delta chain
			})
			snaps, err := n.wal.SnapshotHeaders()
			if err != nil {
				t.Fatal(err)
			}
			if !incremental && len(snaps) != 2 {
				t.Fatalf("%d snapshot files, want 2: %+v", len(snaps), snaps)
			}
			// Every file kept beyond the newest 2 is a base of a kept one.
			bases := map[uint64]bool{}
			for _, s := range snaps {
				bases[s.Base] = true
			}
			for _, s := range snaps[:max(0, len(snaps)-2)] {
				if !bases[s.Index] {
					t.Fatalf("snapshot %d kept but neither among the newest 2 nor a base: %+v", s.Index, snaps)
				}
			}
			oldest := snaps[0].Index
			if first := n.wal.FirstIndex(); first != oldest+1 {
				t.Fatalf("log starts at %d, oldest snapshot kept is %d", first, oldest)
			}
			// 600 entries of ~250 bytes filled ~40 segments of 4 KiB;
			// those wholly before the oldest snapshot kept are gone.
			var segs []uint64
			entries, _ := os.ReadDir(filepath.Join(c.dir, "1"))
			for _, e := range entries {
				var first uint64
				if _, err := fmt.Sscanf(e.Name(), "%d.seg", &first); err == nil && strings.HasSuffix(e.Name(), ".seg") {
					segs = append(segs, first)
				}
			}
			slices.Sort(segs)
			if len(segs) == 0 || segs[0] > oldest+1 || (len(segs) > 1 && segs[1] <= oldest+1) {
				t.Fatalf("segments %v for a log from %d", segs, oldest+1)
			}
			if len(segs) > 20 {
				t.Fatalf("%d segments left", len(segs))
			}
			if incremental {
				return
			}
			want, applied := kvState(t, c.kvs[1]), c.kvs[1].Applied()
			c.stop(1)
			if err := os.Remove(snaps[1].File); err != nil {
				t.Fatal(err)
			}
			c.start(1, []uint64{1})
			waitFor(t, "replay from the older snapshot", func() bool { return c.kvs[1].Applied() >= applied })
			if got := kvState(t, c.kvs[1]); !bytes.Equal(got, want) {
				t.Fatal("restart from the older snapshot and the log differs")
			}
		})
	}
}

// A full snapshot's data, kept by the core and sent to followers, is the
// state machine's plain stream (what nodes without chains install); the
// first delta turns it into the head of a chain in place, without copying
// the full state.
func TestNodeFullSnapshotDataStaysPlainUntilADeltaFollows(t *testing.T) {
	c := incrementalCluster(t, wal.SnapshotCodecNone)
	n := c.start(1, []uint64{1})
	for i := 0; i < 50; i++ {
		c.propose(kvCommand(wire.OpPut, fmt.Sprint("k", i), "v"))
	}
	snapshotNow(t, n)
	coreData := func() []byte {
		var d []byte
		if err := n.control(func(r *Raft) { d = r.snap.Data }); err != nil {
			t.Fatal(err)
		}
		return d
	}
	full := coreData()
	if bytes.HasPrefix(full, []byte(chainMagic)) {
		t.Fatal("a full snapshot's data is a chain")
	}
	old, _ := sm.NewKV(sm.DefaultKVConfig())
	if err := old.Restore(bytes.NewReader(full)); err != nil || old.Len() != 50 {
		t.Fatalf("a plain Restore of the full snapshot's data: %v, %d keys", err, old.Len())
	}
	c.churn(1, 50)
	snapshotNow(t, n)
	chain := coreData()
	frames, err := parseChain(chain)
	if err != nil || len(frames) != 2 || frames[0].kind != frameFull || frames[1].kind != frameDelta {
		t.Fatalf("data after a delta: %d frames, %v", len(frames), err)
	}
	if &frames[0].data[0] != &full[0] || len(frames[0].data) != len(full) {
		t.Fatal("the full state was copied to head the chain")
	}
	kv, _ := sm.NewKV(sm.DefaultKVConfig())
	if err := restoreChain(kv, chain); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kvState(t, kv), kvState(t, c.kvs[1])) {
		t.Fatal("the chain's state differs from the node's")
	}
}
