//go:build linux

package tuning

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	ok := func(line string, want mount) {
		t.Helper()
		ms, err := parseMountinfo([]byte(line))
		if err != nil || len(ms) != 1 || ms[0] != want {
			t.Errorf("parseMountinfo(%q) = %+v, %v; want %+v", line, ms, err, want)
		}
	}
	bad := func(line string) {
		t.Helper()
		if ms, err := parseMountinfo([]byte(line)); err == nil {
			t.Errorf("parseMountinfo(%q) = %+v, want an error", line, ms)
		}
	}
	ok("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
		mount{majMin: "98:0", mountPoint: "/mnt2", fsType: "ext3", source: "/dev/root"})
	ok("36 35 98:0 / /data rw - xfs /dev/sdb1 rw", // no optional fields
		mount{majMin: "98:0", mountPoint: "/data", fsType: "xfs", source: "/dev/sdb1"})
	ok("36 35 98:0 / /a shared:1 master:2 propagate_from:3 - xfs /dev/sdb1 rw", // several
		mount{majMin: "98:0", mountPoint: "/a", fsType: "xfs", source: "/dev/sdb1"})
	ok(`36 35 98:0 / /my\040data\134x rw - ext4 /dev/my\040disk rw`, // escapes
		mount{majMin: "98:0", mountPoint: `/my data\x`, fsType: "ext4", source: "/dev/my disk"})
	ok(`36 35 98:0 / /trail\04 rw - ext4 /dev/sda rw`, // short escape kept as is
		mount{majMin: "98:0", mountPoint: `/trail\04`, fsType: "ext4", source: "/dev/sda"})
	bad("36 35 98:0 / /data rw ext4 /dev/sdb1 rw")    // no separator
	bad("36 35 98:0 / /data rw - ext4")               // no source
	bad("36 35 nomajmin / /data rw - ext4 /dev/x rw") // no maj:min
	bad("garbage")
	if ms, err := parseMountinfo([]byte("\n\n")); err != nil || len(ms) != 0 {
		t.Errorf("empty mountinfo: %v %v", ms, err)
	}
}

func TestMountFor(t *testing.T) {
	mounts := []mount{
		{majMin: "8:1", mountPoint: "/"},
		{majMin: "8:2", mountPoint: "/var/lib/kraft"},
		{majMin: "8:3", mountPoint: "/var/lib/kraft2"},
		{majMin: "8:4", mountPoint: "/var/lib/kraft"}, // mounted over 8:2
	}
	want := func(dir, majMin string) {
		t.Helper()
		m, ok := mountFor(mounts, dir)
		if !ok || m.majMin != majMin {
			t.Errorf("mountFor(%q) = %+v %v, want %s", dir, m, ok, majMin)
		}
	}
	want("/", "8:1")
	want("/etc", "8:1")
	want("/var/lib/kraft", "8:4")
	want("/var/lib/kraft/data", "8:4")
	want("/var/lib/kraft2/x", "8:3")
	want("/var/lib/kraftx", "8:1") // a prefix of the name is not a parent
	if _, ok := mountFor(nil, "/x"); ok {
		t.Error("mountFor with no mounts found one")
	}
}

func TestParseScheduler(t *testing.T) {
	want := func(in, active string, n int) {
		t.Helper()
		a, offered := parseScheduler(in)
		if a != active || len(offered) != n {
			t.Errorf("parseScheduler(%q) = %q %v, want %q and %d offered", in, a, offered, active, n)
		}
	}
	want("none [mq-deadline] kyber bfq", "mq-deadline", 4)
	want("[none] mq-deadline", "none", 2)
	want("none", "none", 1) // dm/md: no choice
	want("noop deadline [cfq]", "cfq", 3)
	want("", "", 0)
	want("none mq-deadline", "", 2) // malformed: nothing active
}

func TestCheckScheduler(t *testing.T) {
	want := func(kind deviceKind, active string, offered []string, status Status, fixTo string) {
		t.Helper()
		d := blockDevice{name: "x", sysPath: "/sys/x", kind: kind, scheduler: active, schedulers: offered}
		r := checkScheduler(d, "x")
		got := ""
		if r.fix != nil {
			got = r.fix.value
		}
		if r.Status != status || got != fixTo {
			t.Errorf("%v %s: got %s fix %q (%s), want %s fix %q", kind, active, r.Status, got, r.Reason, status, fixTo)
		}
	}
	all := []string{"none", "mq-deadline", "kyber", "bfq"}
	want(kindNVMe, "none", all, StatusOK, "")
	want(kindNVMe, "mq-deadline", all, StatusWarn, "none")
	want(kindNVMe, "kyber", all, StatusWarn, "none")
	want(kindNVMe, "mq-deadline", []string{"mq-deadline"}, StatusWarn, "") // none not offered: no fix
	want(kindSSD, "none", all, StatusOK, "")
	want(kindSSD, "mq-deadline", all, StatusOK, "") // acceptable, said so
	want(kindSSD, "bfq", all, StatusWarn, "none")
	want(kindHDD, "mq-deadline", all, StatusOK, "")
	want(kindHDD, "bfq", all, StatusOK, "")
	want(kindHDD, "none", all, StatusWarn, "mq-deadline")
	want(kindNVMe, "noop", []string{"noop", "deadline"}, StatusOK, "") // legacy single-queue names
	want(kindUnknown, "none", all, StatusCannotRead, "")
	want(kindNVMe, "", nil, StatusCannotRead, "") // empty or malformed file

	if r := checkWriteCache(blockDevice{name: "x"}, "x"); r.Current != "(empty)" || r.Status != StatusCannotRead {
		t.Errorf("empty write_cache: %+v", r)
	}

	r := checkScheduler(blockDevice{name: "x", kind: kindSSD, scheduler: "mq-deadline"}, "x")
	if r.Reason == "" || r.Recommended != "none (mq-deadline acceptable)" {
		t.Errorf("SSD with mq-deadline: %+v", r)
	}
}

func TestFormatBytes(t *testing.T) {
	want := func(n uint64, s string) {
		t.Helper()
		if got := formatBytes(n); got != s {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, s)
		}
	}
	want(0, "0 B")
	want(1023, "1023 B")
	want(1024, "1 KiB")
	want(16<<20, "16 MiB")
	want(3<<29, "1.5 GiB")
	want(1<<62, "4096 PiB")
}

// TestDiskStackCycle: a slaves/ loop in a broken tree is an error after
// maxStackDepth layers, not a hang.
func TestDiskStackCycle(t *testing.T) {
	root := t.TempDir()
	for _, l := range [][2]string{
		{"sys/devices/virtual/block/dm-0/slaves/dm-1", "../../dm-1"},
		{"sys/devices/virtual/block/dm-1/slaves/dm-0", "../../dm-0"},
		{"sys/dev/block/253:0", "../../devices/virtual/block/dm-0"},
	} {
		p := filepath.Join(root, l[0])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l[1], p); err != nil {
			t.Fatal(err)
		}
	}
	h := Host{SysRoot: filepath.Join(root, "sys")}
	if disks, err := h.diskStack(mount{majMin: "253:0"}); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Errorf("cycle: %v %v", disks, err)
	}
	if _, err := h.diskStack(mount{majMin: "1:1", mountPoint: "/x", fsType: "ext4", source: "/dev/none"}); err == nil ||
		!strings.Contains(err.Error(), "no block device behind /x") {
		t.Errorf("missing device: %v", err)
	}
}
