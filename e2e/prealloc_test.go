package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// --wal-fallocate-only reaches the WAL: a node preparing its segments the
// default way writes each one's zeros (wchar, the bytes its write calls
// passed, covers at least a whole segment); with the flag it writes only
// its records and hard state.
func TestWALPreallocationModes(t *testing.T) {
	const segment = 16 << 20
	zeroed := newCluster(t, 1, "--segment-size", "16MiB")
	fallocated := newCluster(t, 1, "--segment-size", "16MiB", "--wal-fallocate-only")
	for _, c := range []*cluster{zeroed, fallocated} {
		cl := c.client()
		writeMany(t, cl, "k", 100, 8)
	}
	if w := writtenBytes(t, zeroed.procs[1]); w < segment {
		t.Errorf("zero-filled node wrote %d bytes, less than one %d-byte segment", w, segment)
	}
	if w := writtenBytes(t, fallocated.procs[1]); w >= segment/4 {
		t.Errorf("--wal-fallocate-only node wrote %d bytes: zeros were written", w)
	}
}

// writtenBytes reads wchar from /proc/<pid>/io.
func writtenBytes(t *testing.T, p *proc) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/io")
	if err != nil {
		t.Skipf("no /proc/<pid>/io here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("wchar %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no wchar in /proc/%d/io", p.cmd.Process.Pid)
	return 0
}
