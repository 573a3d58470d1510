//go:build linux

package tuning

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckNVMeWithMqDeadline(t *testing.T) {
	rep := mustCheck(t, fakeHost(testTree("nvme-mq-deadline"), &fakeNofile{soft: 1024, hard: 4096}), kraftOpts())
	expect(t, rep, "disk.scheduler", "nvme0n1 (data,wal)", StatusWarn, "mq-deadline")
	expect(t, rep, "disk.nr_requests", "nvme0n1", StatusWarn, "64")
	expect(t, rep, "disk.write_cache", "nvme0n1", StatusOK, "write back")
	expect(t, rep, "net.core.rmem_max", "host", StatusWarn, "212992")
	expect(t, rep, "net.core.wmem_max", "host", StatusWarn, "212992")
	expect(t, rep, "net.ipv4.tcp_rmem", "host", StatusWarn, "4096 131072 6291456")
	expect(t, rep, "net.ipv4.tcp_wmem", "host", StatusWarn, "4096 16384 4194304")
	expect(t, rep, "net.ipv4.tcp_fastopen", "host", StatusWarn, "1")
	r := expect(t, rep, "mem.thp.enabled", "host", StatusWarn, "madvise")
	if r.Recommended != "always" || !strings.Contains(r.Reason, "4 KiB pages") {
		t.Errorf("THP enabled row: %+v", r)
	}
	r = expect(t, rep, "mem.thp.defrag", "host", StatusWarn, "always")
	if !strings.Contains(r.Reason, "compaction") {
		t.Errorf("THP defrag row: %+v", r)
	}
	expect(t, rep, "nofile.soft", "process", StatusWarn, "1024")
	expect(t, rep, "nofile.hard", "process", StatusWarn, "4096")
	expect(t, rep, "fs.type", "data", StatusOK, "ext4")
	expect(t, rep, "fs.free", "data", StatusOK, "100 GiB of 200 GiB (50%)")
	expect(t, rep, "layout.wal-snapshots", "wal,snapshots", StatusWarn, "shared: nvme0n1")
	// The disk under both data and WAL is reported once.
	if n := countChecks(rep, "disk.scheduler"); n != 1 {
		t.Errorf("%d scheduler rows, want 1:\n%s", n, dump(rep))
	}
}

func TestCheckSATASSDAndHDD(t *testing.T) {
	h := fakeHost(testTree("sata-ssd"), &fakeNofile{soft: 65536, hard: 1 << 20})
	rep := mustCheck(t, h, kraftOpts())
	r := expect(t, rep, "disk.scheduler", "sda (data,wal)", StatusOK, "mq-deadline")
	if !strings.Contains(r.Reason, "acceptable") {
		t.Errorf("SATA SSD with mq-deadline should say it is acceptable: %q", r.Reason)
	}
	expect(t, rep, "disk.nr_requests", "sda", StatusOK, "256")
	expect(t, rep, "disk.write_cache", "sda", StatusOK, "write through")
	for _, c := range []string{"net.core.rmem_max", "net.core.wmem_max", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_fastopen", "mem.thp.enabled", "mem.thp.defrag", "nofile.soft", "nofile.hard"} {
		expect(t, rep, c, "", StatusOK, "")
	}
	expect(t, rep, "layout.wal-snapshots", "", StatusOK, "separate")
	if rep.HasWarnings() {
		t.Errorf("tuned SATA host has warnings:\n%s", dump(rep))
	}

	// The WAL on the rotational snapshot disk: bfq is fine there, the
	// queue is not, and now WAL and snapshots share sdb.
	opts := kraftOpts()
	opts.WALDir = "/var/lib/kraft/snapshots/wal"
	rep = mustCheck(t, h, opts)
	expect(t, rep, "disk.scheduler", "sdb (wal)", StatusOK, "bfq")
	expect(t, rep, "disk.nr_requests", "sdb (wal)", StatusWarn, "64")
	expect(t, rep, "fs.type", "wal", StatusOK, "xfs")
	expect(t, rep, "layout.wal-snapshots", "", StatusWarn, "shared: sdb")
}

func TestCheckDeviceMapperAndMDOverNVMe(t *testing.T) {
	h := fakeHost(testTree("dm-nvme"), &fakeNofile{soft: 65536, hard: 65536})
	opts := kraftOpts()
	opts.WALDir = "/var/lib/kraft/wal"
	rep := mustCheck(t, h, opts)
	// dm-0 (data) stripes nvme0n1p1 and nvme1n1; md127 (WAL) mirrors
	// nvme2n1p1 and nvme3n1p1. The dm/md devices themselves are not rows.
	expect(t, rep, "disk.scheduler", "nvme0n1 (data)", StatusOK, "none")
	expect(t, rep, "disk.nr_requests", "nvme0n1 (data)", StatusOK, "1023")
	expect(t, rep, "disk.nr_requests", "nvme1n1 (data)", StatusWarn, "128")
	expect(t, rep, "disk.scheduler", "nvme2n1 (wal)", StatusWarn, "mq-deadline")
	expect(t, rep, "disk.scheduler", "nvme3n1 (wal)", StatusOK, "none")
	expect(t, rep, "disk.nr_requests", "nvme3n1 (wal)", StatusWarn, "255")
	expect(t, rep, "fs.type", "data", StatusOK, "xfs")
	expect(t, rep, "fs.type", "wal", StatusOK, "ext4")
	expect(t, rep, "layout.wal-snapshots", "", StatusOK, "separate")
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Target, "dm-") || strings.HasPrefix(r.Target, "md") {
			t.Errorf("stacked device reported instead of its disks: %+v", r)
		}
	}
	if n := countChecks(rep, "disk.scheduler"); n != 4 {
		t.Errorf("%d disks, want 4:\n%s", n, dump(rep))
	}

	// WAL in the data dir: it shares nvme1n1 with the snapshot LV.
	rep = mustCheck(t, h, kraftOpts())
	expect(t, rep, "layout.wal-snapshots", "", StatusWarn, "shared: nvme1n1")
	expect(t, rep, "disk.scheduler", "nvme1n1 (data,wal)", StatusOK, "none")
}

func TestCheckContainerOverlay(t *testing.T) {
	h := fakeHost(testTree("container-ro"), &fakeNofile{soft: 1 << 20, hard: 1 << 20})
	opts := Options{DataDir: "/var/lib/kraft/data", SnapshotDir: "/var/lib/kraft/snap shots"}
	rep := mustCheck(t, h, opts)
	r := expect(t, rep, "disk", "data", StatusCannotRead, "-")
	if !strings.Contains(r.Reason, "no block device behind /") || !strings.Contains(r.Reason, "overlay") {
		t.Errorf("overlay reason: %q", r.Reason)
	}
	expect(t, rep, "fs.type", "data", StatusWarn, "overlay")
	// The snapshot volume (an escaped mount point) is an NVMe disk, the
	// data dir is on the overlay: nothing to compare but mounts, which differ.
	expect(t, rep, "layout.wal-snapshots", "", StatusCannotRead, "-")
}

func TestCheckMissingFiles(t *testing.T) {
	h := fakeHost(testTree("missing-files"), &fakeNofile{getErr: errString("kraft/tuning: reading RLIMIT_NOFILE: operation not permitted")})
	rep := mustCheck(t, h, kraftOpts())
	// btrfs reports an anonymous 0:40; the source /dev/sda leads to the disk.
	expect(t, rep, "disk.scheduler", "sda (data,wal)", StatusCannotRead, "mq-deadline") // rotational missing
	r := expect(t, rep, "disk.nr_requests", "sda", StatusCannotRead, "-")
	if !strings.Contains(r.Reason, "sda/queue/nr_requests") || !strings.Contains(r.Reason, "no such file") {
		t.Errorf("missing nr_requests reason: %q", r.Reason)
	}
	expect(t, rep, "disk.write_cache", "sda", StatusCannotRead, "-")
	expect(t, rep, "net.core.rmem_max", "host", StatusOK, "16777216")
	expect(t, rep, "net.core.wmem_max", "host", StatusCannotRead, "-")
	r = expect(t, rep, "net.ipv4.tcp_rmem", "host", StatusCannotRead, "4096 87380")
	if !strings.Contains(r.Reason, "unexpected format") {
		t.Errorf("malformed tcp_rmem reason: %q", r.Reason)
	}
	expect(t, rep, "net.ipv4.tcp_fastopen", "host", StatusCannotRead, "-")
	// A kernel built without transparent huge pages has no such files.
	r = expect(t, rep, "mem.thp.enabled", "host", StatusCannotRead, "-")
	if !strings.Contains(r.Reason, "transparent_hugepage/enabled") {
		t.Errorf("missing THP reason: %q", r.Reason)
	}
	expect(t, rep, "mem.thp.defrag", "host", StatusCannotRead, "-")
	expect(t, rep, "nofile.soft", "", StatusCannotRead, "-")
	expect(t, rep, "nofile.hard", "", StatusCannotRead, "-")
	expect(t, rep, "fs.type", "data", StatusOK, "btrfs")
	// Snapshots on a btrfs whose source has no sysfs entry.
	expect(t, rep, "layout.wal-snapshots", "", StatusCannotRead, "-")
	if rep.HasWarnings() {
		t.Errorf("unreadable values must not be WARN:\n%s", dump(rep))
	}
}

func TestCheckWithoutMountinfo(t *testing.T) {
	h := fakeHost(testTree("sata-ssd"), &fakeNofile{soft: 65536, hard: 65536})
	h.ProcRoot = t.TempDir() // no self/mountinfo, no sys/
	rep := mustCheck(t, h, kraftOpts())
	r := expect(t, rep, "disk", "data", StatusCannotRead, "-")
	if !strings.Contains(r.Reason, "mountinfo") {
		t.Errorf("reason should name mountinfo: %q", r.Reason)
	}
	expect(t, rep, "net.core.rmem_max", "", StatusCannotRead, "-")
	expect(t, rep, "fs.type", "data", StatusCannotRead, "-")
	expect(t, rep, "fs.free", "data", StatusOK, "") // statfs needs no mountinfo
}

func TestCheckFreeSpaceAndFilesystem(t *testing.T) {
	free := func(total, avail uint64, want Status) {
		t.Helper()
		h := fakeHost(testTree("sata-ssd"), &fakeNofile{soft: 65536, hard: 65536})
		h.Statfs = func(string) (FSStat, error) { return FSStat{TotalBytes: total, FreeBytes: avail}, nil }
		rep := mustCheck(t, h, kraftOpts())
		expect(t, rep, "fs.free", "data", want, "")
	}
	free(1<<40, 200<<30, StatusOK)
	free(1<<40, 50<<30, StatusWarn) // 4.9% of a big disk
	free(10<<30, 5<<30, StatusWarn) // 50% but under 8 GiB
	free(16<<30, 8<<30, StatusOK)   // exactly at both floors
	free(0, 0, StatusWarn)

	fsType := func(t *testing.T, typ string, want Status) {
		t.Helper()
		r := checkFSType(role{name: "data", dir: "/d", mnt: mount{fsType: typ}})
		if r.Status != want {
			t.Errorf("fs %q: %s (%s), want %s", typ, r.Status, r.Reason, want)
		}
	}
	fsType(t, "ext4", StatusOK)
	fsType(t, "xfs", StatusOK)
	fsType(t, "btrfs", StatusOK)
	fsType(t, "tmpfs", StatusWarn)
	fsType(t, "overlay", StatusWarn)
	fsType(t, "nfs4", StatusWarn)
	fsType(t, "fuse.sshfs", StatusWarn)
	fsType(t, "vfat", StatusWarn)
	fsType(t, "", StatusCannotRead)
}

func TestCheckRejectsEmptyDataDir(t *testing.T) {
	if _, err := fakeHost(testTree("sata-ssd"), &fakeNofile{}).Check(Options{}); err == nil ||
		!strings.HasPrefix(err.Error(), "kraft/tuning: ") {
		t.Errorf("Check with no data dir: %v", err)
	}
}

func TestCheckFollowsSymlinkedDataDir(t *testing.T) {
	// A data dir reached through a symlink is checked where it lives:
	// resolveDir keeps the missing tail and resolves the existing prefix.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	resolved, existing, err := resolveDir(filepath.Join(dir, "link", "data"))
	if err != nil || existing != filepath.Join(dir, "real") || resolved != filepath.Join(dir, "real", "data") {
		t.Errorf("resolveDir through a symlink: %q %q %v", resolved, existing, err)
	}
	resolved, existing, err = resolveDir(dir + "/not/yet")
	if err != nil || existing == "" || !strings.HasSuffix(resolved, "/not/yet") {
		t.Errorf("resolveDir: %q %q %v", resolved, existing, err)
	}
	if resolved, _, err := resolveDir("relative/dir"); err != nil || !strings.HasPrefix(resolved, "/") {
		t.Errorf("relative dir not made absolute: %q %v", resolved, err)
	}
}

func countChecks(rep Report, check string) int {
	n := 0
	for _, r := range rep.Results {
		if r.Check == check {
			n++
		}
	}
	return n
}

type errString string

func (e errString) Error() string { return string(e) }

// TestCheckTransparentHugePages: every mode the kernel offers, and files
// that are not a bracketed choice.
func TestCheckTransparentHugePages(t *testing.T) {
	root := copyTree(t, testTree("sata-ssd"))
	h := fakeHost(root, &fakeNofile{soft: 65536, hard: 65536})
	dir := filepath.Join(root, "sys/kernel/mm/transparent_hugepage")
	cases := []struct {
		enabled, defrag           string
		enabledWant, defragWant   Status
		enabledShown, defragShown string
	}{
		{"[always] madvise never", "always defer defer+madvise [madvise] never", StatusOK, StatusOK, "always", "madvise"},
		{"always [madvise] never", "always defer [defer+madvise] madvise never", StatusWarn, StatusOK, "madvise", "defer+madvise"},
		{"always madvise [never]", "always [defer] defer+madvise madvise never", StatusWarn, StatusOK, "never", "defer"},
		{"[always] madvise never", "[always] defer defer+madvise madvise never", StatusOK, StatusWarn, "always", "always"},
		{"[always] madvise never", "always defer defer+madvise madvise [never]", StatusOK, StatusOK, "always", "never"},
		// Not a choice list: never guessed at.
		{"always", "", StatusCannotRead, StatusCannotRead, "always", "-"},
		// Unknown modes in brackets are read; "always" is offered and can
		// be written, "madvise" is not offered: a WARN without a fix.
		{"[sometimes] always", "[bogus]", StatusWarn, StatusWarn, "sometimes", "bogus"},
	}
	for _, c := range cases {
		if err := os.WriteFile(filepath.Join(dir, "enabled"), []byte(c.enabled+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "defrag"), []byte(c.defrag+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rep := mustCheck(t, h, kraftOpts())
		e, d := find(t, rep, "mem.thp.enabled", "host"), find(t, rep, "mem.thp.defrag", "host")
		if e.Status != c.enabledWant || e.Current != c.enabledShown {
			t.Errorf("enabled %q: %s %q, want %s %q", c.enabled, e.Status, e.Current, c.enabledWant, c.enabledShown)
		}
		if d.Status != c.defragWant || d.Current != c.defragShown {
			t.Errorf("defrag %q: %s %q, want %s %q", c.defrag, d.Status, d.Current, c.defragWant, c.defragShown)
		}
		if (e.Status == StatusWarn) != (e.fix != nil) {
			t.Errorf("enabled %q: a WARN needs a fix and only a WARN has one: %+v", c.enabled, e)
		}
		if wantFix := d.Status == StatusWarn && c.defrag != "[bogus]"; wantFix != (d.fix != nil) {
			t.Errorf("defrag %q: fix %+v, want one: %v", c.defrag, d.fix, wantFix)
		}
	}
}
