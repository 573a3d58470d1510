package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
)

// snapshotHeader reads a v2 snapshot file's header: base index (0: full)
// and codec (1: zstd).
func snapshotHeader(t *testing.T, fn string) (base uint64, codec byte, size int64) {
	t.Helper()
	f, err := os.Open(fn)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := make([]byte, 33)
	if _, err := f.ReadAt(h, 0); err != nil || string(h[:8]) != "KRSNAP02" {
		t.Fatalf("%s: not a v2 snapshot file (%v)", fn, err)
	}
	st, _ := f.Stat()
	return binary.LittleEndian.Uint64(h[24:32]), h[32], st.Size()
}

// Snapshot knobs on real processes: a snapshot every --snapshot-threshold
// entries, zstd-compressed files, incremental snapshots chained to a kept
// full one, only --snapshot-retain files (plus needed bases) kept, old WAL
// segments released (to the recycling pool, from which some are written
// again), and a whole-cluster kill -9 and restart that restores every
// acknowledged write from the chains and the logs.
func TestSnapshotKnobsOnRealProcesses(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-threshold", "400", "--snapshot-min-interval", "0", "--snapshot-retain", "2", "--snapshot-compression",
		"--snapshot-incremental", "--segment-size", "1MiB", "--max-entry-size", "64KiB")
	cl := c.client()
	value := []byte(strings.Repeat(`{"user":"kraft","plan":"enterprise","region":"eu-west"},`, 18))[:1024]
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				// 500 distinct keys rewritten: later snapshots change few of them.
				k := fmt.Sprint("snap-", (w*250+i)%500)
				ctx, cancel := ctxTimeout(20 * time.Second)
				_, err := cl.Put(ctx, []byte(k), value)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[k] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// 4,000 writes of 1 KiB: ~4 MiB of log, a snapshot every 400 entries.
	var recycled, readBack float64
	for id, p := range c.procs {
		var files []string
		// Wait until snapshotting has settled (a snapshot may still be
		// written, and retention run, after the last write's answer).
		waitUntil(t, fmt.Sprintf("node %d's snapshots to settle", id), 30*time.Second, func() bool {
			files, _ = filepath.Glob(filepath.Join(p.snapDir, "snapshot-*.dat"))
			time.Sleep(500 * time.Millisecond)
			again, _ := filepath.Glob(filepath.Join(p.snapDir, "snapshot-*.dat"))
			return len(files) >= 2 && slices.Equal(files, again)
		})
		deltas, fulls := 0, 0
		bases := map[uint64]uint64{} // snapshot index -> base index (0: full)
		var indexes []uint64
		for _, fn := range files {
			var idx, term uint64
			fmt.Sscanf(filepath.Base(fn), "snapshot-%d-%d.dat", &idx, &term)
			base, codec, size := snapshotHeader(t, fn)
			indexes = append(indexes, idx)
			bases[idx] = base
			if codec != 1 {
				t.Fatalf("%s: codec %d, want zstd (1) with --snapshot-compression", fn, codec)
			}
			if base == 0 {
				fulls++
				// 500 keys × 1 KiB of JSON-like text: compressed well below 500 KiB.
				if size > 250<<10 {
					t.Fatalf("%s: %d bytes for ~500 KiB of compressible state", fn, size)
				}
			} else {
				deltas++
			}
		}
		// Retention: exactly the newest two and the chains they need.
		slices.Sort(indexes)
		need := map[uint64]bool{}
		for _, idx := range indexes[max(0, len(indexes)-2):] {
			for i := idx; i != 0 && !need[i]; i = bases[i] {
				if _, ok := bases[i]; !ok {
					t.Fatalf("node %d: snapshot %d needs base %d, which is gone", id, idx, i)
				}
				need[i] = true
			}
		}
		if len(need) != len(indexes) {
			t.Fatalf("node %d keeps %v (bases %v): only the newest 2 and their chains are needed", id, indexes, bases)
		}
		// A follower that fell behind installs the leader's snapshot, which
		// starts a new chain: its kept files may then all be full ones, so
		// its log says whether it took deltas.
		if logged, _ := os.ReadFile(p.logFn); deltas == 0 && !strings.Contains(string(logged), "kind=delta") {
			t.Fatalf("node %d: no incremental snapshot with --snapshot-incremental (bases %v)", id, bases)
		}
		segs, _ := filepath.Glob(filepath.Join(p.dataDir, "[0-9]*.seg"))
		if len(segs) > 4 {
			t.Fatalf("node %d keeps %d WAL segments of 1 MiB for ~4 MiB written with snapshots every 400 entries", id, len(segs))
		}
		// Released segments wait to be written again, up to
		// --wal-recycle-segments (32 by default).
		pool, _ := filepath.Glob(filepath.Join(p.dataDir, "recycle-*.seg"))
		if len(pool) > 32 {
			t.Fatalf("node %d pools %d retired segments, more than --wal-recycle-segments", id, len(pool))
		}
		rec := c.metric(id, "kraft_wal_segments_recycled_total")
		back := c.metric(id, "kraft_wal_segments_read_back_total")
		recycled += rec
		readBack += back
		t.Logf("node %d: %d full + %d delta snapshots kept, %d WAL segments, %d pooled, %.0f recycled (%.0f read back)", id, fulls, deltas, len(segs), len(pool), rec, back)
	}
	if recycled == 0 {
		t.Fatal("no node recycled a WAL segment (kraft_wal_segments_recycled_total)")
	}
	// Every segment was sealed by the running processes, which checksum
	// it then: recycling it reads none back, unless one was recycled
	// before its checksums were taken.
	if readBack >= recycled {
		t.Fatalf("%.0f of %.0f recycled segments read back (kraft_wal_segments_read_back_total)", readBack, recycled)
	}
	// Every node killed, every node up: the state comes back from the
	// chains and the logs, recycled segments included.
	for id := range c.procs {
		c.signal(id, syscall.SIGKILL)
	}
	for id := range c.procs {
		c.start(id)
	}
	c.waitLeader(20 * time.Second)
	cl2 := c.client()
	for k := range acked {
		ctx, cancel := ctxTimeout(20 * time.Second)
		r, err := cl2.Get(ctx, []byte(k))
		cancel()
		if err != nil || string(r.Value) != string(value) {
			t.Fatalf("after a full restart %s = %d bytes (%v)", k, len(r.Value), err)
		}
	}
}

// Without fsync (--fsync-mode none) no sync round runs, and the WAL's
// writer goroutine, which released retired segments between its rounds,
// never woke: every segment compaction retired stayed open (and its disk
// space in use) until the process exited, and none was recycled.
func TestRetiredSegmentsRecycledWithFsyncNone(t *testing.T) {
	c := newCluster(t, 3, "--fsync-mode", "none", "--snapshot-threshold", "400", "--snapshot-min-interval", "0",
		"--segment-size", "1MiB", "--max-entry-size", "64KiB")
	putLog(t, c.client(), "none-") // ~10 snapshots and compactions
	var recycled float64
	for id := range c.procs {
		recycled += c.metric(id, "kraft_wal_segments_recycled_total")
	}
	if recycled == 0 {
		t.Fatal("no node recycled a WAL segment with --fsync-mode none (kraft_wal_segments_recycled_total)")
	}
}

// putLog writes ~4 MiB of log through cl: 16 writers put 250 values of
// 1 KiB each, over 500 keys named with prefix. It stops the test on an
// error.
func putLog(t *testing.T, cl *client.Client, prefix string) {
	t.Helper()
	value := []byte(strings.Repeat("v", 1024))
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				ctx, cancel := ctxTimeout(20 * time.Second)
				_, err := cl.Put(ctx, []byte(fmt.Sprint(prefix, (w*250+i)%500)), value)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// TestCleanRestartRecyclesWithoutReadingBack: the checksums a node took of
// its sealed and pooled WAL segments survive a clean restart (SIGTERM), so
// after it the segments written before it are recycled without being read
// back from the disk (kraft_wal_segments_read_back_total).
func TestCleanRestartRecyclesWithoutReadingBack(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-threshold", "800", "--snapshot-min-interval", "0",
		"--segment-size", "1MiB", "--max-entry-size", "64KiB")
	putLog(t, c.client(), "before-") // ~5 snapshots and compactions
	for id, p := range c.procs {
		c.signal(id, syscall.SIGTERM)
		ents, _ := os.ReadDir(p.dataDir)
		kept := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".sums") {
				kept++
			}
		}
		if kept == 0 {
			t.Fatalf("node %d stopped without keeping the checksums of its sealed segments (<segment>.sums)", id)
		}
	}
	for id := range c.procs {
		c.start(id)
	}
	c.waitLeader(15 * time.Second)
	putLog(t, c.client(), "after-")
	var recycled, readBack float64
	for id := range c.procs {
		recycled += c.metric(id, "kraft_wal_segments_recycled_total")
		readBack += c.metric(id, "kraft_wal_segments_read_back_total")
	}
	if recycled == 0 {
		t.Fatal("no segment recycled after the restart")
	}
	if readBack != 0 {
		t.Fatalf("%v of %v segments recycled after a clean restart were read back (kraft_wal_segments_read_back_total)", readBack, recycled)
	}
}
