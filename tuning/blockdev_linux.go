package tuning

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxStackDepth bounds how many layers (partition → dm → md → ...) are
// followed from a mount down to the disks; a deeper stack is a loop in a
// broken tree, not a real host.
const maxStackDepth = 16

// maxSysfsValueBytes bounds a single sysfs/procfs value read.
const maxSysfsValueBytes = 4096

type deviceKind int

const (
	kindUnknown deviceKind = iota
	kindNVMe
	kindSSD
	kindHDD
)

func (k deviceKind) String() string {
	switch k {
	case kindNVMe:
		return "NVMe"
	case kindSSD:
		return "SATA/SAS SSD"
	case kindHDD:
		return "rotational disk"
	}
	return "unknown device type"
}

// blockDevice is a whole disk at the bottom of a stack: the device whose
// queue settings decide how WAL writes and flushes reach the media.
type blockDevice struct {
	name    string // "nvme0n1"
	sysPath string // resolved directory under SysRoot/devices
	kind    deviceKind

	scheduler  string   // active one: "none", "mq-deadline", ...
	schedulers []string // offered by the kernel
	schedErr   error
	nrRequests int
	nrErr      error
	writeCache string // "write back" or "write through"
	wcErr      error
	rotErr     error
}

// diskStack resolves a mount to the whole disks under it:
//
//	/sys/dev/block/MAJ:MIN ──symlink──▶ /sys/devices/.../nvme0n1/nvme0n1p1
//	  has "partition"  → its parent directory is the disk
//	  has slaves/*     → device-mapper or md: follow each slave
//	  otherwise        → a disk: read its queue/
//
// The paths are resolved inside SysRoot, so a fake tree with relative
// symlinks behaves like the real one. The result is deduplicated and in
// slave order.
func (h Host) diskStack(m mount) ([]string, error) {
	start := filepath.Join(h.sysRoot(), "dev", "block", m.majMin)
	dir, err := filepath.EvalSymlinks(start)
	if err != nil && strings.HasPrefix(m.source, "/dev/") {
		// btrfs and a few others report an anonymous 0:N device in
		// mountinfo; the source names the real one.
		dir, err = filepath.EvalSymlinks(filepath.Join(h.sysRoot(), "class", "block", filepath.Base(m.source)))
	}
	if err != nil {
		return nil, fmt.Errorf("kraft/tuning: no block device behind %s (%s on %s, device %s)",
			m.mountPoint, m.fsType, m.source, m.majMin)
	}
	var disks []string
	seen := map[string]bool{}
	if err := walkStack(dir, 0, seen, &disks); err != nil {
		return nil, err
	}
	return disks, nil
}

func walkStack(dir string, depth int, seen map[string]bool, disks *[]string) error {
	if depth > maxStackDepth {
		return fmt.Errorf("kraft/tuning: device stack deeper than %d at %s", maxStackDepth, dir)
	}
	if fileExists(filepath.Join(dir, "partition")) {
		dir = filepath.Dir(dir)
	}
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kraft/tuning: %w", err)
	}
	if len(slaves) == 0 {
		if !seen[dir] {
			seen[dir] = true
			*disks = append(*disks, dir)
		}
		return nil
	}
	for _, s := range slaves {
		next, err := filepath.EvalSymlinks(filepath.Join(dir, "slaves", s.Name()))
		if err != nil {
			return fmt.Errorf("kraft/tuning: following %s: %w", filepath.Join(dir, "slaves", s.Name()), err)
		}
		if err := walkStack(next, depth+1, seen, disks); err != nil {
			return err
		}
	}
	return nil
}

// readBlockDevice reads a disk's queue settings. Each value that cannot be
// read keeps its error, so one missing file does not hide the others.
func readBlockDevice(dir string) blockDevice {
	d := blockDevice{name: filepath.Base(dir), sysPath: dir}
	q := filepath.Join(dir, "queue")

	var sched string
	sched, d.schedErr = readValue(filepath.Join(q, "scheduler"))
	if d.schedErr == nil {
		d.scheduler, d.schedulers = parseScheduler(sched)
	}

	var nr string
	nr, d.nrErr = readValue(filepath.Join(q, "nr_requests"))
	if d.nrErr == nil {
		d.nrRequests, d.nrErr = strconv.Atoi(nr)
	}

	d.writeCache, d.wcErr = readValue(filepath.Join(q, "write_cache"))

	rot, rotErr := readValue(filepath.Join(q, "rotational"))
	d.rotErr = rotErr
	switch {
	case strings.HasPrefix(d.name, "nvme") || strings.Contains(dir, "/nvme/"):
		d.kind = kindNVMe
	case rotErr == nil && rot == "0":
		d.kind = kindSSD
	case rotErr == nil && rot == "1":
		d.kind = kindHDD
	}
	return d
}

// parseScheduler reads queue/scheduler: "none [mq-deadline] kyber bfq". The
// active one is in brackets; a device without a choice prints just "none".
func parseScheduler(s string) (active string, offered []string) {
	for _, f := range strings.Fields(s) {
		name := strings.Trim(f, "[]")
		if name != f {
			active = name
		}
		offered = append(offered, name)
	}
	if active == "" && len(offered) == 1 {
		active = offered[0]
	}
	return active, offered
}

// readValue reads a one-line sysfs/procfs value, trimmed.
func readValue(path string) (string, error) {
	data, err := readFileLimited(path, maxSysfsValueBytes)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
