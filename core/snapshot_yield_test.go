package core

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wal"
)

// A snapshot steps aside for the node's other goroutines while the state
// machine serializes it and while its file is written: with one Go
// scheduler per node, a busy goroutine otherwise runs 10 ms at a time.
func TestNodeSnapshotYieldsAsItWrites(t *testing.T) {
	for _, codec := range []wal.SnapshotCodec{wal.SnapshotCodecNone, wal.SnapshotCodecZstd} {
		t.Run(fmt.Sprint("codec ", codec), func(t *testing.T) {
			c := newNodeCluster(t)
			c.tweak = func(cfg *NodeConfig) { cfg.Snapshots.Compression = codec }
			n := c.start(1, []uint64{1})
			const keys, valueBytes = 8, 256 << 10 // 2 MiB of state
			for i := range keys {
				c.write(fmt.Sprint("k", i), strings.Repeat(string(rune('a'+i)), valueBytes))
			}
			before := snapshotYields.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := n.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			// The state passes the writer once and the file's reader once:
			// either alone would yield only half as often.
			got, want := snapshotYields.Load()-before, uint64(2*keys*valueBytes/yieldEveryBytes)-4
			if got < want {
				t.Fatalf("a snapshot of %d B yielded %d times, want at least %d", keys*valueBytes, got, want)
			}
			t.Logf("a snapshot of %d B yielded %d times", keys*valueBytes, got)
		})
	}
}

// The reader never hands io.Copy more than yieldEveryBytes at once, so
// that a compressor reading from it cannot take the whole snapshot in one
// call without a yield.
func TestYieldingReaderBoundsEachRead(t *testing.T) {
	data := strings.NewReader(strings.Repeat("x", 5*yieldEveryBytes+7))
	r := &yieldingReader{r: data}
	buf := make([]byte, 4*yieldEveryBytes)
	total := 0
	for {
		n, err := r.Read(buf)
		if n > yieldEveryBytes {
			t.Fatalf("Read returned %d bytes, more than %d", n, yieldEveryBytes)
		}
		total += n
		if err != nil {
			break
		}
	}
	if total != 5*yieldEveryBytes+7 {
		t.Fatalf("read %d bytes, want %d", total, 5*yieldEveryBytes+7)
	}
}
