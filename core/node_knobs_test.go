package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// The log cache bounds the leader's memory for entries that are stable and
// applied; a follower that was down catches up from entries the leader
// reads back from its WAL.
func TestNodeLogCacheBoundedAndServedFromWAL(t *testing.T) {
	const limit = 64 << 10
	c := startCachedCluster(t, limit)
	c.write("warm", "up")
	c.stop(3)
	value := strings.Repeat("v", 200)
	for i := 0; i < 3000; i++ {
		c.write(fmt.Sprintf("k%04d", i), value)
	}
	lead := c.leader()
	var lc LogCache
	waitFor(t, "the leader's cache to evict", func() bool {
		lc, _ = lead.LogCache()
		return lc.FirstIndex > 1000
	})
	if lc.Bytes > limit || lc.Capacity > 2*limit+limit/2 {
		t.Fatalf("log cache holds %d bytes (capacity %d), limit %d", lc.Bytes, lc.Capacity, limit)
	}
	t.Logf("leader cache: %d bytes, capacity %d, first cached index %d", lc.Bytes, lc.Capacity, lc.FirstIndex)
	n3 := c.start(3, nil)
	c.waitConverged([]uint64{3}, "k0000", value)
	c.waitConverged([]uint64{3}, "k2999", value)
	if lc3, err := n3.LogCache(); err == nil && lc3.Bytes > limit+(256<<10) {
		t.Fatalf("caught-up follower caches %d bytes, limit %d", lc3.Bytes, limit)
	}
}

// With every follower caught up, nobody reads old entries from memory
// again: the leader and the followers let go of them long before the limit,
// rather than holding (and growing the heap by) the whole limit.
func TestNodeLogCacheReleasesWhatNobodyNeeds(t *testing.T) {
	const limit = 64 << 20
	c := startCachedCluster(t, limit)
	value := strings.Repeat("v", 1000)
	const writes = 2000 // ~2 MB of records: several chunks
	for i := 0; i < writes; i++ {
		c.write(fmt.Sprintf("k%04d", i), value)
	}
	c.waitConverged(c.ids, fmt.Sprintf("k%04d", writes-1), value)
	for _, id := range c.ids {
		n := c.net.nodes[id]
		var lc LogCache
		waitFor(t, fmt.Sprintf("node %d to release applied chunks", id), func() bool {
			lc, _ = n.LogCache()
			return lc.FirstIndex > writes/2
		})
		if lc.Bytes > writes*1000/2 {
			t.Fatalf("node %d caches %d bytes after %d writes of 1 KB", id, lc.Bytes, writes)
		}
		t.Logf("node %d: %d bytes cached, capacity %d, first cached index %d", id, lc.Bytes, lc.Capacity, lc.FirstIndex)
	}
}

// Once the nodes have applied the entries of an evicted chunk, its memory
// holds the next ones: a steady load reuses chunks instead of allocating
// one per chunk's worth of writes, on the leader and on the followers, and
// the replicas still agree (under -tags invariants a reused chunk is
// filled with garbage first, so a record still in use would fail its
// checksum).
func TestNodeLogCacheReusesEvictedChunks(t *testing.T) {
	const limit = 256 << 10 // chunks of 32 KiB
	c := startCachedCluster(t, limit)
	value := strings.Repeat("v", 1000)
	const writes = 1500 // ~1.5 MB of records: ~45 chunks
	for i := 0; i < writes; i++ {
		c.write(fmt.Sprintf("k%04d", i%100), value+fmt.Sprint(i))
	}
	last := fmt.Sprintf("k%04d", (writes-1)%100)
	c.waitConverged(c.ids, last, value+fmt.Sprint(writes-1))
	for _, id := range c.ids {
		lc, err := c.net.nodes[id].LogCache()
		if err != nil {
			t.Fatal(err)
		}
		if lc.ReusedChunks < 10 {
			t.Errorf("node %d reused %d chunks over ~45 chunks' worth of writes", id, lc.ReusedChunks)
		}
		t.Logf("node %d: %d chunks reused, %d bytes cached, capacity %d", id, lc.ReusedChunks, lc.Bytes, lc.Capacity)
	}
}

// startCachedCluster starts nodes 1-3 with a log cache of limit bytes.
func startCachedCluster(t *testing.T, limit int) *nodeCluster {
	c := newNodeCluster(t, 1, 2, 3)
	c.tweak = func(cfg *NodeConfig) { cfg.Raft.LogCacheBytes = limit }
	for _, id := range c.ids {
		c.start(id, c.ids)
	}
	return c
}

// Without a limit the in-memory log keeps every entry since the snapshot
// (the control for the test above).
func TestNodeLogCacheUnlimitedKeepsEverything(t *testing.T) {
	c := newNodeCluster(t, 1)
	c.start(1, c.ids)
	for i := 0; i < 500; i++ {
		c.write(fmt.Sprintf("k%d", i), strings.Repeat("v", 200))
	}
	lc, err := c.leader().LogCache()
	if err != nil {
		t.Fatal(err)
	}
	if lc.FirstIndex != 1 || lc.Bytes < 500*200 {
		t.Fatalf("unlimited cache: first %d, %d bytes", lc.FirstIndex, lc.Bytes)
	}
}

// A lone proposal waits for company at most BatchTimeout; a batch that
// fills up goes at once.
func TestNodeBatchTimeoutBoundsTheWait(t *testing.T) {
	const timeout = 40 * time.Millisecond
	c := newNodeCluster(t, 1)
	c.tweak = func(cfg *NodeConfig) { cfg.BatchSize, cfg.BatchTimeout = 8, timeout }
	n := c.start(1, c.ids)
	c.write("warm", "up")
	for i := 0; i < 3; i++ {
		_, tr, err := n.ProposeTraced(context.Background(), put("lone", "x"))
		if err != nil {
			t.Fatal(err)
		}
		wait := tr.Appended.Sub(tr.Received)
		// It waited (the knob works) and not much longer than the timeout
		// (generous slack: this machine is shared and noisy).
		if wait < timeout*3/4 || wait > timeout+250*time.Millisecond {
			t.Fatalf("a lone proposal waited %v for its batch, timeout %v", wait, timeout)
		}
	}
}

// A batch that fills up goes at once, whatever the timeout.
func TestNodeFullBatchDoesNotWait(t *testing.T) {
	c := newNodeCluster(t, 1)
	c.tweak = func(cfg *NodeConfig) { cfg.BatchSize, cfg.BatchTimeout = 8, 20*time.Second }
	n := c.start(1, c.ids)
	c.leader()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := n.Propose(ctx, put(fmt.Sprint("k", i), "v"))
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a full batch of 8 took %v (timeout 20s): it waited for the timer", d)
	}
	if b := n.Batches(); b.Batches == 0 || b.Proposals < 8 {
		t.Fatalf("batch counters %+v", b)
	}
}

// Larger batches mean fewer WAL syncs per write: 64 writers with
// BatchSize 1 against BatchSize 64 with a short timeout, fsync always.
func TestNodeLargerBatchesFewerSyncsPerWrite(t *testing.T) {
	type counts struct{ Batches, Proposals, WALSyncs uint64 }
	run := func(size int, timeout time.Duration) counts {
		c := newNodeCluster(t, 1)
		c.tweak = func(cfg *NodeConfig) {
			cfg.BatchSize, cfg.BatchTimeout = size, timeout
			cfg.WAL.Fsync = wal.FsyncAlways
		}
		n := c.start(1, c.ids)
		c.leader()
		before, syncs := n.Batches(), n.WALStats().Syncs
		var wg sync.WaitGroup
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if _, err := n.Propose(ctx, put(fmt.Sprint("k", w, "-", i), "v")); err != nil {
						t.Error(err)
					}
					cancel()
				}
			}(w)
		}
		wg.Wait()
		after := n.Batches()
		return counts{Batches: after.Batches - before.Batches, Proposals: after.Proposals - before.Proposals, WALSyncs: n.WALStats().Syncs - syncs}
	}
	small := run(1, 0)
	large := run(64, 2*time.Millisecond)
	perWrite := func(b counts) float64 { return float64(b.WALSyncs) / float64(b.Proposals) }
	t.Logf("batch size 1: %+v (%.3f syncs/write); batch size 64, 2ms: %+v (%.3f syncs/write)", small, perWrite(small), large, perWrite(large))
	if small.Batches != small.Proposals {
		t.Fatalf("batch size 1 made %d batches of %d proposals", small.Batches, small.Proposals)
	}
	if float64(large.Proposals)/float64(large.Batches) < 4 {
		t.Fatalf("batch size 64 averaged %.1f proposals per batch", float64(large.Proposals)/float64(large.Batches))
	}
	if perWrite(large) > perWrite(small) {
		t.Fatalf("larger batches paid more syncs per write: %.3f > %.3f", perWrite(large), perWrite(small))
	}
}

// What a power loss of every node loses in each fsync mode, stated as a
// test: with FsyncAlways nothing acknowledged; with FsyncBatch at most the
// writes acknowledged within the last sync interval (the entries count as
// persisted once written to the OS, and the writer syncs every interval).
func TestNodeFsyncModeLossOnPowerFailure(t *testing.T) {
	for _, mode := range []wal.FsyncMode{wal.FsyncAlways, wal.FsyncBatch} {
		t.Run(mode.String(), func(t *testing.T) {
			const interval = 400 * time.Millisecond
			fss := map[uint64]*wal.MemFS{}
			c := newNodeCluster(t, 1, 2, 3)
			c.tweak = func(cfg *NodeConfig) {
				id := cfg.Raft.ID
				if fss[id] == nil {
					fss[id] = wal.NewMemFS()
				}
				cfg.WAL.FS, cfg.WAL.Fsync, cfg.WAL.SyncInterval = fss[id], mode, interval
			}
			for _, id := range c.ids {
				c.start(id, c.ids)
			}
			for i := 0; i < 10; i++ {
				c.write(fmt.Sprint("old", i), "v")
			}
			time.Sleep(3 * interval) // every node has synced the old writes
			acked := map[string]time.Time{}
			for i := 0; i < 30; i++ {
				k := fmt.Sprint("new", i)
				c.write(k, "v")
				acked[k] = time.Now()
			}
			// Power loss on every node at once: only synced bytes survive.
			crashAt := time.Now()
			for id, fs := range fss {
				fss[id] = fs.Crash(nil)
			}
			for _, id := range c.ids {
				c.stop(id)
			}
			for _, id := range c.ids {
				c.start(id, nil)
			}
			c.write("after", "restart") // a leader again, everything committed is applied
			c.waitConverged([]uint64{c.leaderID()}, "after", "restart")
			kv := c.kvs[c.leaderID()]
			for i := 0; i < 10; i++ {
				if _, ok := kv.Get([]byte(fmt.Sprint("old", i))); !ok {
					t.Fatalf("%v: old%d, acknowledged %v before the power loss, is gone", mode, i, 3*interval)
				}
			}
			lost := 0
			for k, at := range acked {
				if _, ok := kv.Get([]byte(k)); !ok {
					lost++
					if mode == wal.FsyncAlways {
						t.Errorf("always: acknowledged %s lost", k)
					} else if age := crashAt.Sub(at); age > interval+100*time.Millisecond {
						t.Errorf("batch: %s, acknowledged %v before the power loss (interval %v), lost", k, age, interval)
					}
				}
			}
			t.Logf("%v: %d of %d writes acknowledged in the last %v before the power loss were lost", mode, lost, len(acked), crashAt.Sub(acked["new0"]))
		})
	}
}

func (c *nodeCluster) leaderID() uint64 {
	c.t.Helper()
	st, err := c.leader().Status()
	if err != nil {
		c.t.Fatal(err)
	}
	return st.ID
}

// Beyond the pending limits a proposal fails at once with the typed error;
// every proposal that was accepted commits once the followers return; and
// the limit can be changed on the running node.
func TestNodePendingLimits(t *testing.T) {
	c := newNodeCluster(t, 1, 2, 3)
	c.tweak = func(cfg *NodeConfig) {
		cfg.Raft.MaxUncommittedEntries = 50
		cfg.Raft.DisableCheckQuorum = true // the leader keeps leading through the outage below
		if cfg.Raft.ID != 1 {
			// Node 1 leads; the others do not campaign during the outage.
			cfg.Raft.ElectionTimeoutMinTicks, cfg.Raft.ElectionTimeoutMaxTicks = 20000, 30000
		}
	}
	for _, id := range c.ids {
		c.start(id, c.ids)
	}
	c.write("warm", "up")
	lead := c.leader()
	leadID := c.leaderID()
	for _, id := range c.ids {
		if id != leadID {
			c.net.mu.Lock()
			c.net.down[id] = true // no quorum: nothing commits
			c.net.mu.Unlock()
		}
	}
	type outcome struct {
		key string
		err error
		dur time.Duration
	}
	results := make(chan outcome, 80)
	var wg sync.WaitGroup
	for i := 0; i < 80; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := fmt.Sprint("p", i)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := lead.Propose(ctx, put(k, "v"))
			results <- outcome{k, err, time.Since(start)}
		}(i)
	}
	// Refusals come back at once while the accepted ones wait for a
	// quorum: 50 are admitted, 30 refused.
	var refused []outcome
	deadline := time.After(10 * time.Second)
	settled := time.After(time.Hour)
	for done := false; !done; {
		select {
		case r := <-results:
			if !errors.Is(r.err, ErrTooManyPending) {
				t.Fatalf("%s: %v, want ErrTooManyPending while no quorum", r.key, r.err)
			}
			if r.dur > 2*time.Second {
				t.Fatalf("%s refused after %v: not quick", r.key, r.dur)
			}
			refused = append(refused, r)
			if len(refused) == 30 {
				settled = time.After(300 * time.Millisecond) // and no more come
			}
		case <-settled:
			done = true
		case <-deadline:
			t.Fatalf("only %d of 80 proposals refused with 50 allowed pending", len(refused))
		}
	}
	// Raise the limit on the running node: the next proposal is accepted.
	if err := lead.SetPendingLimits(1000, 64<<20); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := lead.Propose(ctx, put("after-raise", "v"))
		results <- outcome{"after-raise", err, 0}
	}()
	time.Sleep(200 * time.Millisecond)
	c.net.mu.Lock()
	clear(c.net.down)
	c.net.mu.Unlock()
	wg.Wait()
	close(results)
	accepted := 0
	for r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v after the followers returned", r.key, r.err)
		}
		accepted++
	}
	if len(refused) != 30 || accepted != 51 {
		t.Fatalf("%d refused and %d committed, want 30 refused, 50 accepted plus one after raising the limit", len(refused), accepted)
	}
	t.Logf("%d refused at once, %d accepted and committed once the followers returned", len(refused), accepted)
	for _, id := range c.ids {
		c.waitConverged([]uint64{id}, "after-raise", "v")
	}
}

// ReadAsync answers with an index the state machine has applied, on the
// leader and on a follower, and fails every outstanding read on Close.
func TestNodeReadAsync(t *testing.T) {
	c := newNodeCluster(t, 1, 2, 3)
	for _, id := range c.ids {
		c.start(id, c.ids)
	}
	c.write("k", "v1")
	leadID := c.leaderID()
	for _, id := range c.ids {
		n := c.net.nodes[id]
		type answer struct {
			index uint64
			err   error
			value string
		}
		got := make(chan answer, 64)
		for i := 0; i < 64; i++ {
			err := n.ReadAsync(wire.ReadLinearizable, func(index uint64, err error) {
				v, _ := c.kvs[id].Get([]byte("k"))
				if err == nil && n.Applied() < index {
					err = fmt.Errorf("called at applied %d < read index %d", n.Applied(), index)
				}
				got <- answer{index, err, string(v)}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 64; i++ {
			select {
			case a := <-got:
				if a.err != nil || a.value != "v1" || a.index == 0 {
					t.Fatalf("node %d (leader %d): read %+v", id, leadID, a)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("node %d: %d of 64 reads answered", id, i)
			}
		}
	}
	// A read that cannot complete (no quorum) fails on Close.
	c.net.mu.Lock()
	for _, id := range c.ids {
		if id != leadID {
			c.net.down[id] = true
		}
	}
	c.net.mu.Unlock()
	errC := make(chan error, 1)
	lead := c.net.nodes[leadID]
	if err := lead.ReadAsync(wire.ReadLinearizable, func(_ uint64, err error) { errC <- err }); err != nil {
		t.Fatal(err)
	}
	lead.Close()
	select {
	case err := <-errC:
		if err == nil {
			t.Fatal("a read without a quorum succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an outstanding ReadAsync was never answered after Close")
	}
}

// A hard state whose commit index names entries the log no longer has (a
// power loss took unsynced entries after the hard state was saved) is not
// an error: the node resumes from its log's end and relearns the commit.
func TestNodeRecoversCommitBeyondTheLog(t *testing.T) {
	c := newNodeCluster(t, 1)
	c.start(1, []uint64{1})
	c.write("before", "crash")
	c.stop(1)
	dir := filepath.Join(c.dir, "1")
	w, err := wal.Open(dir, wal.Options{SegmentSizeBytes: 1 << 20, Fsync: wal.FsyncNone})
	if err != nil {
		t.Fatal(err)
	}
	hs := w.HardState()
	hs.Commit = w.LastIndex() + 100
	if err := w.SaveHardState(hs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	n := c.start(1, nil)
	c.write("after", "recovery")
	if st, err := n.Status(); err != nil || st.Commit == 0 {
		t.Fatalf("status %+v, %v", st, err)
	}
}
