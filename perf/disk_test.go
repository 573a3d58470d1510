package perf

import (
	"strings"
	"testing"
	"time"
)

// Lines as Linux 6.x prints them (20 fields), a partition line with 17
// (no flush counters), one as kernels before 4.18 print (14), and a
// truncated one.
const diskstatsSample = ` 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 1640064 567335 135957778 1791471 64976260 344757 6244949576 16030140 0 8885832 24167477 1662977 162 4864253584 1213894 23538742 5131970
 254       1 vda1 900 0 7200 10 5000 20 80000 300 0 400 500 0 0 0 0 0 0
   8      16 sdb 10 0 80 1 77 3 616 9 0 5 10
   8      32 sdc 10 0 80 1 77
`

func TestParseDiskStats(t *testing.T) {
	c, err := parseDiskStats(strings.NewReader(diskstatsSample), 254, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := DiskCounters{Device: "vda", BytesWritten: 6244949576 * 512, Writes: 64976260, Flushes: 23538742}
	if c != want {
		t.Fatalf("vda: got %+v, want %+v", c, want)
	}
	// The partition, not the disk, by minor number; 17 fields: no flushes.
	if c, err = parseDiskStats(strings.NewReader(diskstatsSample), 254, 1); err != nil || c != (DiskCounters{Device: "vda1", BytesWritten: 80000 * 512, Writes: 5000}) {
		t.Fatalf("vda1: got %+v, %v", c, err)
	}
	if c, err = parseDiskStats(strings.NewReader(diskstatsSample), 8, 16); err != nil || c != (DiskCounters{Device: "sdb", BytesWritten: 616 * 512, Writes: 77}) {
		t.Fatalf("sdb (14 fields): got %+v, %v", c, err)
	}
	// Too few fields to be a diskstats line: an error, not zeros.
	if _, err := parseDiskStats(strings.NewReader(diskstatsSample), 8, 32); err == nil || !strings.Contains(err.Error(), "fields") {
		t.Fatalf("sdc (8 fields): want a field-count error, got %v", err)
	}
	// A device that is not there (tmpfs has major 0).
	if _, err := parseDiskStats(strings.NewReader(diskstatsSample), 0, 42); err == nil || !strings.Contains(err.Error(), "not in /proc/diskstats") {
		t.Fatalf("0:42: want not-found, got %v", err)
	}
	// A counter that is not a number.
	bad := strings.Replace(diskstatsSample, "6244949576", "62x", 1)
	if _, err := parseDiskStats(strings.NewReader(bad), 254, 0); err == nil || !strings.Contains(err.Error(), `"62x"`) {
		t.Fatalf("bad number: got %v", err)
	}
}

func TestDiskCountersSinceAndRow(t *testing.T) {
	a := DiskCounters{Device: "vda", BytesWritten: 1000, Writes: 10, Flushes: 4}
	b := DiskCounters{Device: "vda", BytesWritten: 2_001_000, Writes: 110, Flushes: 404}
	d := b.since(a)
	if d != (DiskCounters{Device: "vda", BytesWritten: 2_000_000, Writes: 100, Flushes: 400}) {
		t.Fatalf("since: %+v", d)
	}
	if got := a.since(b); got.Device != "" {
		t.Fatalf("counters that went backwards gave %+v, want none", got)
	}
	if got := (DiskCounters{Device: "vdb", BytesWritten: 5000}).since(a); got.Device != "" {
		t.Fatalf("another device gave %+v, want none", got)
	}
	res := &Result{Ops: 1000, Elapsed: 2 * time.Second, Latency: NewHistogram(), Service: NewHistogram(), Disk: d, CPUSeconds: -1, GeneratorCPUSeconds: -1}
	r := NewRow(res, Floor{})
	if r.DiskDevice != "vda" || r.DiskBytesPerOp != 2000 || r.DiskMBPerSec != 1 || r.DiskFlushesPerSec != 200 {
		t.Fatalf("row: device %q, %v B/op, %v MB/s, %v flushes/s", r.DiskDevice, r.DiskBytesPerOp, r.DiskMBPerSec, r.DiskFlushesPerSec)
	}
	if cells := r.cells(); !strings.Contains(strings.Join(cells, "|"), "2000 (1, 200)") {
		t.Fatalf("table cells lack the disk column: %q", cells)
	}
	res.Disk = DiskCounters{}
	if r := NewRow(res, Floor{}); r.DiskDevice != "" || r.DiskBytesPerOp != 0 {
		t.Fatalf("unmeasured disk gave %+v", r)
	}
}

// DiskOf finds the device of a real directory where there is one.
func TestDiskOf(t *testing.T) {
	read, err := DiskOf(t.TempDir())
	if err != nil {
		t.Skipf("no block device under the temp dir here: %v", err)
	}
	c, err := read()
	if err != nil || c.Device == "" {
		t.Fatalf("read: %+v, %v", c, err)
	}
	if _, err := DiskOf("/nonexistent/kraft"); err == nil {
		t.Fatal("DiskOf a missing path: no error")
	}
}
