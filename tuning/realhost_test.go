//go:build linux

package tuning

import (
	"testing"
)

// TestRealHostReadOnly runs every check against this machine's /sys and
// /proc. It only reads: no Apply, no Set. It asserts the shape, not the
// verdicts, which depend on the host.
func TestRealHostReadOnly(t *testing.T) {
	dir := t.TempDir()
	rep, err := DefaultHost().Check(Options{DataDir: dir, SnapshotDir: dir + "/snapshots"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		switch r.Status {
		case StatusOK, StatusWarn, StatusCannotRead:
		default:
			t.Errorf("bad status: %+v", r)
		}
		if r.Check == "" || r.Reason == "" {
			t.Errorf("empty field: %+v", r)
		}
	}
	for _, c := range []string{"net.core.rmem_max", "nofile.soft", "nofile.hard", "fs.type", "fs.free", "layout.wal-snapshots"} {
		find(t, rep, c, "")
	}
	// The temp dir's filesystem has a statfs answer on any host.
	if r := find(t, rep, "fs.free", "data"); r.Status == StatusCannotRead {
		t.Errorf("fs.free unreadable on the real host: %+v", r)
	}
	t.Logf("real host:\n%s", dump(rep))
}

// TestRealNofileWithinHard lowers this process's soft RLIMIT_NOFILE by one
// and restores it, never touching the hard limit.
func TestRealNofileWithinHard(t *testing.T) {
	lim := prlimitNofile{}
	soft, hard, err := lim.Get()
	if err != nil {
		t.Fatal(err)
	}
	if soft < 2 {
		t.Skipf("soft limit %d too low to lower", soft)
	}
	if err := lim.Set(soft-1, hard); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lim.Set(soft, hard); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	}()
	gotSoft, gotHard, err := lim.Get()
	if err != nil || gotSoft != soft-1 || gotHard != hard {
		t.Errorf("after lowering: %d %d %v, want %d %d", gotSoft, gotHard, err, soft-1, hard)
	}
}
