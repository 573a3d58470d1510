//go:build linux

package tuning

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNofile is RLIMIT_NOFILE behind the NofileLimiter seam. setErr, when
// set, refuses any Set that raises the hard limit (as for a non-root user).
type fakeNofile struct {
	soft, hard uint64
	getErr     error
	setErr     error
	sets       int
}

func (f *fakeNofile) Get() (uint64, uint64, error) { return f.soft, f.hard, f.getErr }

func (f *fakeNofile) Set(soft, hard uint64) error {
	f.sets++
	if f.setErr != nil && hard > f.hard {
		return f.setErr
	}
	if soft > hard {
		return fs.ErrInvalid
	}
	f.soft, f.hard = soft, hard
	return nil
}

// fakeHost points at testdata/<tree> with a fixed filesystem size, a fake
// RLIMIT_NOFILE and root's euid. It writes into the tree: use copyTree
// before calling Apply.
func fakeHost(root string, nofile NofileLimiter) Host {
	return Host{
		SysRoot:  filepath.Join(root, "sys"),
		ProcRoot: filepath.Join(root, "proc"),
		Statfs: func(string) (FSStat, error) {
			return FSStat{TotalBytes: 200 << 30, FreeBytes: 100 << 30}, nil
		},
		Nofile: nofile,
		Euid:   func() int { return 0 },
	}
}

func testTree(name string) string { return filepath.Join("testdata", name) }

// kraftOpts is the seed's layout under /var/lib/kraft, which the fake
// mountinfo files mount.
func kraftOpts() Options {
	return Options{DataDir: "/var/lib/kraft/data", SnapshotDir: "/var/lib/kraft/snapshots"}
}

// copyTree copies a testdata tree into a temporary directory, keeping its
// symlinks (which are relative, so they stay inside the copy).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("copyTree %s: %v", src, err)
	}
	return dst
}

func mustCheck(t *testing.T, h Host, opts Options) Report {
	t.Helper()
	rep, err := h.Check(opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return rep
}

// find returns the result for check whose target starts with target.
func find(t *testing.T, rep Report, check, target string) Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Check == check && strings.HasPrefix(r.Target, target) {
			return r
		}
	}
	t.Fatalf("no result %s %q in:\n%s", check, target, dump(rep))
	return Result{}
}

// expect asserts one result's status and current value ("" = any).
func expect(t *testing.T, rep Report, check, target string, status Status, current string) Result {
	t.Helper()
	r := find(t, rep, check, target)
	if r.Status != status || (current != "" && r.Current != current) {
		t.Errorf("%s %s: got %s %q (%s), want %s %q", check, r.Target, r.Status, r.Current, r.Reason, status, current)
	}
	return r
}

func dump(rep Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		b.WriteString(strings.Join([]string{r.Check, r.Target, r.Current, r.Recommended, string(r.Status), r.Reason}, " | "))
		b.WriteByte('\n')
	}
	return b.String()
}

func readTreeFile(t *testing.T, root, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
