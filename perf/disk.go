package perf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DiskCounters are a block device's cumulative write counters, from
// /proc/diskstats.
type DiskCounters struct {
	Device       string
	BytesWritten uint64 // sectors written × 512
	Writes       uint64 // write requests completed
	Flushes      uint64 // flush requests completed (Linux 5.5+; 0 before)
}

// since is c minus an earlier reading of the same device; zero counters
// (Device "") if the device changed or a counter went backwards.
func (c DiskCounters) since(before DiskCounters) DiskCounters {
	if c.Device != before.Device || c.BytesWritten < before.BytesWritten || c.Writes < before.Writes || c.Flushes < before.Flushes {
		return DiskCounters{}
	}
	return DiskCounters{Device: c.Device, BytesWritten: c.BytesWritten - before.BytesWritten,
		Writes: c.Writes - before.Writes, Flushes: c.Flushes - before.Flushes}
}

// DiskOf returns a reader of the counters of the block device that holds
// path (its file system's device, as stat reports it). It fails where
// there is no such device in /proc/diskstats (tmpfs, overlay, not Linux).
// The counters are the whole device's: other writers on it count too.
func DiskOf(path string) (func() (DiskCounters, error), error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("kraft/perf: disk of %s: %w", path, err)
	}
	major, minor := unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)) // Dev is narrower on some systems
	read := func() (DiskCounters, error) {
		f, err := os.Open("/proc/diskstats")
		if err != nil {
			return DiskCounters{}, err
		}
		defer f.Close()
		return parseDiskStats(f, major, minor)
	}
	if _, err := read(); err != nil {
		return nil, fmt.Errorf("kraft/perf: disk of %s: %w", path, err)
	}
	return read, nil
}

// parseDiskStats finds device major:minor in /proc/diskstats text: fields
// major, minor, name, then reads, merged, sectors read, ms reading, writes
// (8th), merged, sectors written (10th), ..., flushes (19th, Linux 5.5+).
func parseDiskStats(r io.Reader, major, minor uint32) (DiskCounters, error) {
	sc := bufio.NewScanner(r)
	wantMajor, wantMinor := strconv.FormatUint(uint64(major), 10), strconv.FormatUint(uint64(minor), 10)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != wantMajor || f[1] != wantMinor {
			continue
		}
		if len(f) < 14 {
			return DiskCounters{}, fmt.Errorf("device %d:%d: %d fields in /proc/diskstats, want at least 14", major, minor, len(f))
		}
		num := func(i int) (uint64, error) {
			if i >= len(f) {
				return 0, nil // an older kernel: the field does not exist
			}
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("device %s: field %d %q: %w", f[2], i+1, f[i], err)
			}
			return v, nil
		}
		c := DiskCounters{Device: f[2]}
		var sectors uint64
		var err error
		if c.Writes, err = num(7); err != nil {
			return DiskCounters{}, err
		}
		if sectors, err = num(9); err != nil {
			return DiskCounters{}, err
		}
		if c.Flushes, err = num(18); err != nil {
			return DiskCounters{}, err
		}
		c.BytesWritten = sectors * 512
		return c, nil
	}
	if err := sc.Err(); err != nil {
		return DiskCounters{}, err
	}
	return DiskCounters{}, fmt.Errorf("device %d:%d is not in /proc/diskstats (not a block device: tmpfs, overlay?)", major, minor)
}
