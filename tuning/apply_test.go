//go:build linux

package tuning

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const nvme0 = "sys/devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1"

func TestApplyNVMe(t *testing.T) {
	root := copyTree(t, testTree("nvme-mq-deadline"))
	nofile := &fakeNofile{soft: 1024, hard: 4096}
	h := fakeHost(root, nofile)
	// Like the kernel, switching the scheduler resets nr_requests; Apply
	// must set it after the scheduler, not before.
	var order []string
	h.WriteFile = func(path, value string) error {
		order = append(order, filepath.Base(path))
		if filepath.Base(path) == "scheduler" {
			if err := os.WriteFile(filepath.Join(filepath.Dir(path), "nr_requests"), []byte("32\n"), 0o644); err != nil {
				return err
			}
		}
		if filepath.Base(filepath.Dir(path)) == "transparent_hugepage" {
			return writeChoice(path, value) // the kernel keeps listing every mode
		}
		return os.WriteFile(path, []byte(value+"\n"), 0o644)
	}
	changes, err := h.Apply(kraftOpts(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // check → value written
		"disk.scheduler":        "none",
		"disk.nr_requests":      "256",
		"net.core.rmem_max":     "16777216",
		"net.core.wmem_max":     "16777216",
		"net.ipv4.tcp_rmem":     "4096 131072 16777216", // min and default kept
		"net.ipv4.tcp_wmem":     "4096 16384 16777216",
		"net.ipv4.tcp_fastopen": "3",
		"mem.thp.enabled":       "always",
		"mem.thp.defrag":        "madvise",
		"nofile":                "soft=65536 hard=65536",
	}
	for _, c := range changes {
		if c.Check == "layout.wal-snapshots" {
			if c.Outcome != OutcomeManual {
				t.Errorf("layout change: %+v", c)
			}
			continue
		}
		if c.Outcome != OutcomeApplied || c.To != want[c.Check] {
			t.Errorf("change %+v, want applied to %q", c, want[c.Check])
		}
		delete(want, c.Check)
	}
	if len(want) != 0 {
		t.Errorf("not changed: %v", want)
	}
	if order[0] != "scheduler" || order[1] != "nr_requests" {
		t.Errorf("write order %v: scheduler must come first", order)
	}
	if got := readTreeFile(t, root, nvme0+"/queue/nr_requests"); got != "256" {
		t.Errorf("nr_requests after apply = %s", got)
	}
	if got := readTreeFile(t, root, "proc/sys/net/ipv4/tcp_rmem"); got != "4096 131072 16777216" {
		t.Errorf("tcp_rmem after apply = %q", got)
	}
	if got := readTreeFile(t, root, "sys/kernel/mm/transparent_hugepage/enabled"); got != "[always] madvise never" {
		t.Errorf("THP enabled after apply = %q", got)
	}
	if got := readTreeFile(t, root, "sys/kernel/mm/transparent_hugepage/defrag"); got != "always defer defer+madvise [madvise] never" {
		t.Errorf("THP defrag after apply = %q", got)
	}
	if nofile.soft != 65536 || nofile.hard != 65536 || nofile.sets != 1 {
		t.Errorf("nofile after apply: %+v (one Set for both rows)", nofile)
	}
	rep := mustCheck(t, h, kraftOpts())
	for _, r := range rep.Warnings() {
		if r.Check != "layout.wal-snapshots" {
			t.Errorf("still WARN after apply: %+v", r)
		}
	}
	expect(t, rep, "mem.thp.enabled", "host", StatusOK, "always")
	expect(t, rep, "mem.thp.defrag", "host", StatusOK, "madvise")
}

// writeChoice writes a sysfs choice file as the kernel shows it after the
// write: every mode it had, the written one in brackets.
func writeChoice(path, value string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	modes := strings.Fields(string(raw))
	found := false
	for i, m := range modes {
		m = strings.Trim(m, "[]")
		if m == value {
			m, found = "["+m+"]", true
		}
		modes[i] = m
	}
	if !found {
		return &os.PathError{Op: "write", Path: path, Err: unix.EINVAL}
	}
	return os.WriteFile(path, []byte(strings.Join(modes, " ")+"\n"), 0o644)
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	root := copyTree(t, testTree("nvme-mq-deadline"))
	nofile := &fakeNofile{soft: 1024, hard: 4096}
	h := fakeHost(root, nofile)
	h.WriteFile = func(path, value string) error {
		t.Errorf("dry run wrote %q to %s", value, path)
		return nil
	}
	changes, err := h.Apply(kraftOpts(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 11 {
		t.Errorf("%d planned changes, want 11: %+v", len(changes), changes)
	}
	for _, c := range changes {
		switch {
		case c.Check == "layout.wal-snapshots":
			if c.Outcome != OutcomeManual || c.Reason == "" {
				t.Errorf("layout: %+v", c)
			}
		case c.Outcome != OutcomeDryRun || c.Path == "":
			t.Errorf("dry-run change %+v", c)
		case c.Check == "disk.scheduler":
			if !strings.HasSuffix(c.Path, "nvme0n1/queue/scheduler") || c.From != "mq-deadline" || c.To != "none" {
				t.Errorf("scheduler plan %+v", c)
			}
		}
	}
	if nofile.sets != 0 {
		t.Errorf("dry run set RLIMIT_NOFILE")
	}
	if got := readTreeFile(t, root, nvme0+"/queue/scheduler"); got != "[mq-deadline] kyber none" {
		t.Errorf("scheduler file changed: %q", got)
	}
}

// TestApplyReadOnlyContainer: /sys and /proc/sys are read-only, as in a
// container. Every write fails with its own reason; the rest still runs.
func TestApplyReadOnlyContainer(t *testing.T) {
	root := copyTree(t, testTree("container-ro"))
	nofile := &fakeNofile{soft: 1024, hard: 1 << 20}
	h := fakeHost(root, nofile)
	h.WriteFile = func(path, value string) error {
		return &os.PathError{Op: "open", Path: path, Err: unix.EROFS}
	}
	opts := Options{DataDir: "/var/lib/kraft/snap shots/data"}
	changes, err := h.Apply(opts, false)
	if err != nil {
		t.Fatal(err)
	}
	failed, applied := 0, 0
	for _, c := range changes {
		switch c.Outcome {
		case OutcomeFailed:
			failed++
			if !strings.Contains(c.Reason, "read-only filesystem") {
				t.Errorf("reason %q", c.Reason)
			}
		case OutcomeApplied:
			applied++
			if c.Check != "nofile" {
				t.Errorf("applied %+v", c)
			}
		}
	}
	// scheduler, nr_requests, 4 network values, fast open, THP enabled.
	if failed != 8 || applied != 1 {
		t.Errorf("failed %d applied %d, want 8 and 1: %+v", failed, applied, changes)
	}
	if nofile.soft != 65536 {
		t.Errorf("soft nofile not raised: %+v", nofile)
	}
}

func TestApplyNotRoot(t *testing.T) {
	root := copyTree(t, testTree("nvme-mq-deadline"))
	nofile := &fakeNofile{soft: 1024, hard: 4096, setErr: unix.EPERM}
	h := fakeHost(root, nofile)
	h.Euid = func() int { return 1000 }
	h.WriteFile = func(path, value string) error {
		return &os.PathError{Op: "open", Path: path, Err: unix.EACCES}
	}
	changes, err := h.Apply(kraftOpts(), false)
	if err != nil {
		t.Fatal(err)
	}
	var nofileChanges []Change
	for _, c := range changes {
		if strings.HasPrefix(c.Check, "nofile") {
			nofileChanges = append(nofileChanges, c)
			continue
		}
		if c.Outcome == OutcomeFailed && !strings.Contains(c.Reason, "not root") {
			t.Errorf("reason %q does not say not root", c.Reason)
		}
	}
	// The hard raise is refused; the soft limit still goes up to the hard one.
	if len(nofileChanges) != 2 ||
		nofileChanges[0].Outcome != OutcomeFailed || !strings.Contains(nofileChanges[0].Reason, "LimitNOFILE") ||
		nofileChanges[1].Outcome != OutcomeApplied || nofileChanges[1].To != "soft=4096 hard=4096" {
		t.Errorf("nofile changes: %+v", nofileChanges)
	}
	if nofile.soft != 4096 || nofile.hard != 4096 {
		t.Errorf("nofile: %+v", nofile)
	}
}

func TestApplyNrRequestsRejected(t *testing.T) {
	root := copyTree(t, testTree("dm-nvme"))
	h := fakeHost(root, &fakeNofile{soft: 65536, hard: 65536})
	h.WriteFile = func(path, value string) error {
		if filepath.Base(path) == "nr_requests" {
			return &os.PathError{Op: "write", Path: path, Err: unix.EINVAL}
		}
		return os.WriteFile(path, []byte(value), 0o644)
	}
	opts := kraftOpts()
	opts.WALDir = "/var/lib/kraft/wal"
	changes, err := h.Apply(opts, false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ChangeOutcome{}
	for _, c := range changes {
		got[c.Check+" "+c.Target] = c.Outcome
		if c.Check == "disk.nr_requests" && !strings.Contains(c.Reason, "queue may be shallower") {
			t.Errorf("nr_requests reason %q", c.Reason)
		}
	}
	want := map[string]ChangeOutcome{
		"disk.scheduler nvme2n1 (wal)":    OutcomeApplied,
		"disk.nr_requests nvme1n1 (data)": OutcomeFailed,
		"disk.nr_requests nvme3n1 (wal)":  OutcomeFailed,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s (all: %v)", k, got[k], v, got)
		}
	}
}

func TestApplyWritesOnlyExistingFiles(t *testing.T) {
	// The default writer must not create a sysfs file the kernel lacks.
	h := Host{}
	path := filepath.Join(t.TempDir(), "nr_requests")
	err := h.write(path, "256")
	if err == nil || !os.IsNotExist(err) {
		t.Fatalf("write to a missing file: %v", err)
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Errorf("write created %s", path)
	}
	if got := explainWriteError(err, 0); got != "not present on this kernel" {
		t.Errorf("explain: %q", got)
	}
}

func TestExplainWriteError(t *testing.T) {
	want := func(err error, euid int, substr string) {
		t.Helper()
		if got := explainWriteError(err, euid); !strings.Contains(got, substr) {
			t.Errorf("explainWriteError(%v, %d) = %q, want it to contain %q", err, euid, got, substr)
		}
	}
	pe := func(e error) error { return &os.PathError{Op: "open", Path: "/sys/x", Err: e} }
	want(pe(unix.EROFS), 0, "read-only filesystem")
	want(pe(unix.EACCES), 1000, "not root")
	want(pe(unix.EPERM), 1000, "not root")
	want(pe(unix.EACCES), 0, "even as root")
	want(pe(unix.EINVAL), 0, "rejected")
	want(pe(unix.ENOENT), 0, "not present")
	want(pe(unix.EIO), 0, "input/output error")
}
