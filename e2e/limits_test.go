package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Key, value and entry limits answer with an error naming the flag and are
// counted; the WAL, the hard state and the snapshots go to the three
// directories they are configured to, and a restart reads them back there.
func TestLimitsAndSeparateDirectories(t *testing.T) {
	walDir := filepath.Join(t.TempDir(), "fast-disk", "wal")
	c := newCluster(t, 1, "--max-key-size", "100", "--max-value-size", "1000", "--wal-dir", walDir)
	cl := c.client()
	put := func(k string, v int) error {
		ctx, cancel := ctxTimeout(10 * time.Second)
		defer cancel()
		_, err := cl.Put(ctx, []byte(k), make([]byte, v))
		return err
	}
	if err := put(strings.Repeat("k", 101), 10); err == nil || !strings.Contains(err.Error(), "--max-key-size") {
		t.Fatalf("101-byte key: %v", err)
	}
	if err := put("big", 1001); err == nil || !strings.Contains(err.Error(), "--max-value-size") {
		t.Fatalf("1001-byte value: %v", err)
	}
	if err := put(strings.Repeat("k", 100), 1000); err != nil {
		t.Fatalf("a write at both limits: %v", err)
	}
	if n := c.metric(1, "kraft_requests_oversized_total"); n != 2 {
		t.Fatalf("kraft_requests_oversized_total = %v, want 2", n)
	}
	c.mustCtl("snapshot")
	p := c.procs[1]
	segs, _ := filepath.Glob(filepath.Join(walDir, "*.seg"))
	inData, _ := filepath.Glob(filepath.Join(p.dataDir, "*.seg"))
	snaps, _ := filepath.Glob(filepath.Join(p.snapDir, "snapshot-*.dat"))
	if len(segs) == 0 || len(inData) != 0 || len(snaps) == 0 {
		t.Fatalf("segments in --wal-dir %d, in --data-dir %d, snapshots in --snapshot-dir %d", len(segs), len(inData), len(snaps))
	}
	if _, err := os.Stat(walDir); err != nil {
		t.Fatal(err)
	}
	c.signal(1, syscall.SIGTERM)
	c.start(1)
	c.waitLeader(15 * time.Second)
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	if r, err := c.client().Get(ctx, []byte(strings.Repeat("k", 100))); err != nil || len(r.Value) != 1000 {
		t.Fatalf("after a restart from the separate directories: %d bytes, %v", len(r.Value), err)
	}
}
