package tuning

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
)

// goodFilesystems are filesystems whose fdatasync semantics and latency the
// WAL is built for. Others work but are slower or weaker.
var goodFilesystems = []string{"ext4", "xfs"}

// volatileFilesystems lose everything at power loss or reboot.
var volatileFilesystems = []string{"tmpfs", "ramfs"}

func (h Host) checkFilesystems(roles []role) []Result {
	var out []Result
	seen := map[string]bool{}
	for _, ro := range roles {
		if ro.name == "snapshots" || seen[ro.resolved] {
			continue
		}
		seen[ro.resolved] = true
		out = append(out, checkFSType(ro), h.checkFreeSpace(ro))
	}
	return out
}

func checkFSType(ro role) Result {
	res := Result{Check: "fs.type", Target: ro.name + " " + ro.dir, Current: ro.mnt.fsType, Recommended: "ext4 or xfs"}
	switch {
	case ro.mnt.fsType == "":
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "mount unknown: "+trimPrefix(ro.err)
	case slices.Contains(goodFilesystems, ro.mnt.fsType):
		res.Status, res.Reason = StatusOK, "journaled local filesystem with cheap fdatasync"
	case slices.Contains(volatileFilesystems, ro.mnt.fsType):
		res.Status, res.Reason = StatusWarn, "memory-backed: a reboot loses every acknowledged write"
	case ro.mnt.fsType == "overlay":
		res.Status, res.Reason = StatusWarn, "container overlay: put the data dir on a volume backed by a local disk"
	case isNetworkFS(ro.mnt.fsType):
		res.Status, res.Reason = StatusWarn, "network or FUSE filesystem: fsync latency and semantics are not a local disk's"
	case ro.mnt.fsType == "btrfs" || ro.mnt.fsType == "zfs" || ro.mnt.fsType == "f2fs":
		res.Status, res.Reason = StatusOK, "works; copy-on-write makes each fdatasync costlier than on ext4/xfs"
	default:
		res.Status, res.Reason = StatusWarn, "untested filesystem for the WAL"
	}
	return res
}

func isNetworkFS(t string) bool {
	switch t {
	case "nfs", "nfs4", "cifs", "smb3", "9p", "virtiofs", "ceph", "glusterfs", "lustre":
		return true
	}
	return strings.HasPrefix(t, "fuse")
}

func (h Host) checkFreeSpace(ro role) Result {
	res := Result{
		Check: "fs.free", Target: ro.name + " " + ro.dir,
		Recommended: fmt.Sprintf(">= %s and >= %d%%", formatBytes(recommendedFreeBytesMin), recommendedFreePercentMin),
	}
	if ro.existing == "" {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, trimPrefix(ro.err)
		return res
	}
	st, err := h.statfs(ro.existing)
	if err != nil {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, trimPrefix(err)
		return res
	}
	pct := 0.0
	if st.TotalBytes > 0 {
		pct = 100 * float64(st.FreeBytes) / float64(st.TotalBytes)
	}
	res.Current = fmt.Sprintf("%s of %s (%.0f%%)", formatBytes(st.FreeBytes), formatBytes(st.TotalBytes), math.Floor(pct))
	where := ""
	if ro.existing != ro.resolved {
		where = " (dir not created yet; measured at " + ro.existing + ")"
	}
	if st.FreeBytes >= recommendedFreeBytesMin && pct >= recommendedFreePercentMin {
		res.Status, res.Reason = StatusOK, "room for new preallocated WAL segments and snapshots"+where
		return res
	}
	res.Status, res.Reason = StatusWarn, "low space: segment preallocation and snapshots will fail with ENOSPC"+where
	return res
}

// checkLayout reports whether the WAL and the snapshots share a disk: a
// snapshot written in bulk then competes with every WAL fdatasync.
func checkLayout(roles []role) (Result, bool) {
	var wal, snap *role
	for i := range roles {
		switch roles[i].name {
		case "wal":
			wal = &roles[i]
		case "snapshots":
			snap = &roles[i]
		}
	}
	if wal == nil || snap == nil {
		return Result{}, false
	}
	res := Result{Check: "layout.wal-snapshots", Target: "wal,snapshots", Recommended: "separate devices"}
	var shared []string
	switch {
	case wal.err == nil && snap.err == nil:
		for _, d := range wal.disks {
			if slices.Contains(snap.disks, d) {
				shared = append(shared, filepath.Base(d))
			}
		}
	case wal.mnt.majMin != "" && wal.mnt.majMin == snap.mnt.majMin:
		shared = []string{wal.mnt.majMin + " (" + wal.mnt.fsType + ")"}
	default:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "devices unknown: "+trimPrefix(firstErr(wal.err, snap.err))
		return res, true
	}
	if len(shared) > 0 {
		res.Current, res.Status = "shared: "+strings.Join(shared, ","), StatusWarn
		res.Reason = "snapshot writes compete with WAL fdatasync; a separate WAL disk is recommended"
		return res, true
	}
	res.Current, res.Status, res.Reason = "separate", StatusOK, "snapshot writes do not delay WAL syncs"
	return res, true
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return fmt.Errorf("kraft/tuning: unknown")
}
