package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/server"
)

// The guide's knobs on real processes: batching shows in the batch and
// sync counters, the log cache stays under --log-cache-size, replication
// compression works between two nodes that enable it while a third that
// does not still replicates, and SIGHUP changes batching live while a
// restart-only change is named and left alone.
func TestKnobsOnRealProcesses(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "kraft.env")
	writeEnv := func(lines ...string) {
		if err := os.WriteFile(envFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeEnv("KRAFT_BATCH_SIZE=256", "KRAFT_BATCH_TIMEOUT=2ms")
	c := &cluster{t: t, dir: dir, name: "e2e-" + t.Name(), procs: map[uint64]*proc{},
		extra: []string{"--env-file", envFile, "--log-cache-size", "1MiB", "--snapshot-threshold", "0"}}
	for i := uint64(1); i <= 3; i++ {
		p := c.newProc(i)
		if i != 3 {
			p.extra = []string{"--replication-compression"}
		}
		c.procs[i] = p
	}
	t.Cleanup(c.cleanup)
	for i := uint64(1); i <= 3; i++ {
		c.start(i, "--bootstrap")
	}
	if leader := c.waitLeader(15 * time.Second); leader == 3 {
		c.mustCtl("transfer-leadership", "--target", "1")
	}
	leader := c.waitLeader(15 * time.Second)

	// 64 writers, compressible 1 KiB values: ~3 MiB of log.
	cl := c.client()
	value := []byte(strings.Repeat(`{"user":"kraft","plan":"enterprise","region":"eu-west"},`, 18))[:1024]
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				ctx, cancel := ctxTimeout(20 * time.Second)
				if _, err := cl.Put(ctx, []byte(fmt.Sprint("knob-", w, "-", i)), value); err != nil {
					t.Error(err)
				}
				cancel()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	batches, batched, syncs := c.metric(leader, "kraft_proposal_batches_total"), c.metric(leader, "kraft_proposals_batched_total"), c.metric(leader, "kraft_wal_syncs_total")
	t.Logf("leader %d: %.0f proposals in %.0f batches (%.1f per batch), %.0f WAL syncs (%.3f per write)", leader, batched, batches, batched/batches, syncs, syncs/batched)
	if batched < 3200 || batched/batches < 2 || syncs >= batched {
		t.Fatalf("batching: %.0f proposals, %.0f batches, %.0f syncs", batched, batches, syncs)
	}
	// 64 writers on pipelined connections: the leader coalesces frames
	// (responses and Appends) into fewer socket writes.
	framesOut, writes := c.metric(leader, "kraft_net_frames_out_total"), c.metric(leader, "kraft_net_writes_total")
	t.Logf("leader %d: %.0f frames out in %.0f socket writes (%.1f per write), %.0f frames in", leader, framesOut, writes, framesOut/writes, c.metric(leader, "kraft_net_frames_in_total"))
	if framesOut < batched || writes == 0 || writes >= framesOut || c.metric(leader, "kraft_net_bytes_out_total") < framesOut {
		t.Fatalf("network: %.0f frames out in %.0f writes", framesOut, writes)
	}

	// The log cache: about 3 MiB were written, at most 1 MiB in memory.
	var mem []server.MemoryComponent
	out := c.mustCtl("memory-stats", "-w", "json")
	if err := json.Unmarshal([]byte(out), &mem); err != nil {
		t.Fatalf("memory-stats -w json: %v\n%s", err, out)
	}
	for _, m := range mem {
		if m.Name == "Log cache" && (m.Used > 1<<20 || m.Max != 1<<20) {
			t.Fatalf("log cache %d bytes in memory, max %d; want <= 1MiB", m.Used, m.Max)
		}
	}
	if lc := c.metric(leader, "kraft_log_cache_bytes"); lc > 1<<20 || lc == 0 {
		t.Fatalf("kraft_log_cache_bytes %.0f", lc)
	}

	// Compression: the leader (compression on) compressed toward node 2
	// (on); node 3 (off) got plain Appends and holds the same data.
	raw, wireB := c.metric(leader, "kraft_replication_bytes_raw_total"), c.metric(leader, "kraft_replication_bytes_wire_total")
	t.Logf("replication from %d: %.0f raw bytes compressed into %.0f (ratio %.1f)", leader, raw, wireB, raw/max(wireB, 1))
	// Half the Appends go to node 3 uncompressed, so the whole ratio is
	// below the codec's on this data.
	if raw == 0 || wireB >= raw*3/4 || c.metric(leader, "kraft_replication_appends_compressed_total") == 0 {
		t.Fatalf("replication compression: %.0f raw bytes, %.0f on the wire", raw, wireB)
	}
	waitUntil(t, "node 3 to apply everything", 20*time.Second, func() bool {
		s3, err1 := c.status(3)
		sl, err2 := c.status(leader)
		return err1 == nil && err2 == nil && s3.LastApplied >= sl.CommitIndex
	})

	// SIGHUP: a new batch size applies; a restart-only change is named.
	writeEnv("KRAFT_BATCH_SIZE=64", "KRAFT_BATCH_TIMEOUT=0", "KRAFT_SNAPSHOT_RETAIN=5")
	c.signal(leader, syscall.SIGHUP)
	waitUntil(t, "kraft-ctl config to show the reloaded batch size", 10*time.Second, func() bool {
		o, _, code := c.ctl("config", "--endpoints", c.procs[leader].adminAddr())
		return code == 0 && strings.Contains(o, "--batch-size") && strings.Contains(o, " 64\n") && strings.Contains(o, "--snapshot-retain")
	})
	waitUntil(t, "the restart-only setting to be named", 10*time.Second, func() bool {
		b, _ := os.ReadFile(c.procs[leader].logFn)
		return strings.Contains(string(b), "change only with a restart") && strings.Contains(string(b), "--snapshot-retain")
	})
	o, _, _ := c.ctl("config", "--endpoints", c.procs[leader].adminAddr())
	for _, line := range strings.Split(o, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "--snapshot-retain" && f[1] != "3" {
			t.Fatalf("--snapshot-retain changed to %s by a reload; it needs a restart", f[1])
		}
		if len(f) == 2 && f[0] == "--batch-size" && f[1] != "64" {
			t.Fatalf("--batch-size %s after the reload, want 64", f[1])
		}
	}
}
