package tuning

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// role is one directory Kraft writes and the devices under it.
type role struct {
	name     string // "data", "wal", "snapshots"
	dir      string
	resolved string // symlinks resolved; may not exist yet
	existing string // deepest existing ancestor ("" if none)
	mnt      mount
	disks    []string // whole-disk sysfs dirs
	err      error    // why mnt/disks are unknown
}

// Check reads the host and returns every check's result. It never writes.
// Values that cannot be read become CANNOT-READ results, not errors; the
// error is for options that make checking impossible.
func (h Host) Check(opts Options) (Report, error) {
	if opts.DataDir == "" {
		return Report{}, fmt.Errorf("kraft/tuning: data dir is empty")
	}
	mounts, mountsErr := h.readMounts()
	roles := h.resolveRoles(opts, mounts, mountsErr)

	var r Report
	r.Results = append(r.Results, h.checkDisks(roles)...)
	r.Results = append(r.Results, h.checkNetwork()...)
	r.Results = append(r.Results, h.checkNofile()...)
	r.Results = append(r.Results, h.checkFilesystems(roles)...)
	if res, ok := checkLayout(roles); ok {
		r.Results = append(r.Results, res)
	}
	assertResults(r.Results)
	return r, nil
}

func (h Host) resolveRoles(opts Options, mounts []mount, mountsErr error) []role {
	dirs := []role{{name: "data", dir: opts.DataDir}, {name: "wal", dir: opts.walDir()}}
	if opts.SnapshotDir != "" {
		dirs = append(dirs, role{name: "snapshots", dir: opts.SnapshotDir})
	}
	for i := range dirs {
		ro := &dirs[i]
		ro.resolved, ro.existing, ro.err = resolveDir(ro.dir)
		if ro.err != nil {
			continue
		}
		if mountsErr != nil {
			ro.err = mountsErr
			continue
		}
		m, ok := mountFor(mounts, ro.resolved)
		if !ok {
			ro.err = fmt.Errorf("kraft/tuning: no mount holds %s", ro.resolved)
			continue
		}
		ro.mnt = m
		ro.disks, ro.err = h.diskStack(m)
	}
	return dirs
}

// checkDisks reports each disk under the data and WAL directories once, with
// the roles it serves. Snapshots only matter for the layout check.
func (h Host) checkDisks(roles []role) []Result {
	var order []string
	users := map[string][]string{}
	var out []Result
	unresolved := map[string]int{} // resolved dir → index in out
	for _, ro := range roles {
		if ro.name == "snapshots" {
			continue
		}
		if ro.err != nil {
			if i, ok := unresolved[ro.resolved]; ok {
				// The WAL in the data dir: one row for both.
				out[i].Target = strings.Replace(out[i].Target, " ", ","+ro.name+" ", 1)
				continue
			}
			unresolved[ro.resolved] = len(out)
			out = append(out, Result{
				Check: "disk", Target: ro.name + " " + ro.dir, Current: "-", Recommended: "-",
				Status: StatusCannotRead, Reason: trimPrefix(ro.err),
			})
			continue
		}
		for _, d := range ro.disks {
			if _, ok := users[d]; !ok {
				order = append(order, d)
			}
			if !slices.Contains(users[d], ro.name) {
				users[d] = append(users[d], ro.name)
			}
		}
	}
	for _, dir := range order {
		d := readBlockDevice(dir)
		target := d.name + " (" + strings.Join(users[dir], ",") + ")"
		out = append(out, checkScheduler(d, target), checkNrRequests(d, target), checkWriteCache(d, target))
	}
	return out
}

func checkScheduler(d blockDevice, target string) Result {
	res := Result{Check: "disk.scheduler", Target: target, Current: d.scheduler}
	want, acceptable, why := schedulerAdvice(d.kind)
	res.Recommended = want
	if d.kind == kindSSD {
		res.Recommended = "none (mq-deadline acceptable)"
	}
	if d.kind == kindHDD {
		res.Recommended = "mq-deadline (or bfq)"
	}
	switch {
	case d.schedErr != nil:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+relQueue(d, "scheduler")+": "+shortErr(d.schedErr)
	case d.scheduler == "":
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "no active scheduler in "+relQueue(d, "scheduler")
	case d.kind == kindUnknown:
		res.Status, res.Reason = StatusCannotRead, "cannot tell NVMe, SSD or HDD apart: "+relQueue(d, "rotational")+" unreadable or not 0/1"
	case slices.Contains(acceptable, d.scheduler):
		res.Status, res.Reason = StatusOK, d.kind.String()+": "+why
		if d.kind == kindSSD && d.scheduler != "none" && d.scheduler != "noop" {
			res.Reason = d.kind.String() + ": mq-deadline is acceptable; none saves a little CPU per request"
		}
	default:
		res.Status = StatusWarn
		res.Reason = d.kind.String() + ": " + d.scheduler + " is not recommended; " + why
		if slices.Contains(d.schedulers, want) {
			res.fix = &fix{path: filepath.Join(d.sysPath, "queue", "scheduler"), value: want}
		} else {
			res.Reason += " (" + want + " not offered by this kernel)"
		}
	}
	return res
}

// schedulerAdvice returns the scheduler to set for a kind of disk, the ones
// that are fine as they are (including the legacy single-queue names), and
// why.
func schedulerAdvice(k deviceKind) (want string, acceptable []string, why string) {
	switch k {
	case kindNVMe:
		return "none", []string{"none", "noop"},
			"none sends fdatasync-heavy WAL writes straight to the device queues"
	case kindSSD:
		return "none", []string{"none", "noop", "mq-deadline", "deadline"},
			"no seek cost to hide, so no reordering is needed"
	case kindHDD:
		return "mq-deadline", []string{"mq-deadline", "deadline", "bfq"},
			"mq-deadline bounds how long a WAL write waits behind snapshot I/O"
	}
	return "none", nil, ""
}

func checkNrRequests(d blockDevice, target string) Result {
	res := Result{Check: "disk.nr_requests", Target: target, Recommended: ">= " + strconv.Itoa(recommendedNrRequests)}
	switch {
	case d.nrErr != nil:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+relQueue(d, "nr_requests")+": "+shortErr(d.nrErr)
	case d.nrRequests >= recommendedNrRequests:
		res.Current, res.Status, res.Reason = strconv.Itoa(d.nrRequests), StatusOK, "deep enough for group-commit bursts next to snapshot I/O"
	default:
		res.Current, res.Status = strconv.Itoa(d.nrRequests), StatusWarn
		res.Reason = "a shallow queue makes WAL writes wait behind snapshot and compaction I/O"
		res.fix = &fix{path: filepath.Join(d.sysPath, "queue", "nr_requests"), value: strconv.Itoa(recommendedNrRequests)}
	}
	return res
}

// checkWriteCache is informational: both answers are safe because the WAL
// syncs with fdatasync, which flushes a volatile cache. It tells the
// operator what a sync costs on this disk.
func checkWriteCache(d blockDevice, target string) Result {
	res := Result{Check: "disk.write_cache", Target: target, Current: d.writeCache, Recommended: "-", Status: StatusOK}
	switch {
	case d.wcErr != nil:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+relQueue(d, "write_cache")+": "+shortErr(d.wcErr)
	case d.writeCache == "write back":
		res.Reason = "volatile cache: every fdatasync also flushes it (safe; costs a flush per sync)"
	case d.writeCache == "write through":
		res.Reason = "no volatile cache (or power-loss protected): fdatasync needs no flush"
	default:
		res.Status, res.Reason = StatusCannotRead, "unrecognised write cache type in "+relQueue(d, "write_cache")
		if res.Current == "" {
			res.Current = "(empty)"
		}
	}
	return res
}

// sysctl is one procfs value of the network checks.
type sysctl struct {
	name    string // "net.core.rmem_max"
	minimum int64  // for the value, or for the third field of a triple
	triple  bool   // tcp_rmem/tcp_wmem: "min default max"
	why     string
}

var networkSysctls = []sysctl{
	{"net.core.rmem_max", recommendedRmemMaxBytes, false, "caps SO_RCVBUF: a small cap throttles AppendEntries and snapshot streams"},
	{"net.core.wmem_max", recommendedWmemMaxBytes, false, "caps SO_SNDBUF: a small cap throttles AppendEntries and snapshot streams"},
	{"net.ipv4.tcp_rmem", recommendedTCPRmemMaxBytes, true, "autotuning ceiling of receive buffers; replication pipelines need a full window"},
	{"net.ipv4.tcp_wmem", recommendedTCPWmemMaxBytes, true, "autotuning ceiling of send buffers; replication pipelines need a full window"},
}

func (h Host) sysctlPath(name string) string {
	return filepath.Join(h.procRoot(), "sys", filepath.FromSlash(strings.ReplaceAll(name, ".", "/")))
}

func (h Host) checkNetwork() []Result {
	var out []Result
	for _, s := range networkSysctls {
		out = append(out, h.checkSysctl(s))
	}
	return append(out, h.checkFastOpen())
}

func (h Host) checkSysctl(s sysctl) Result {
	path := h.sysctlPath(s.name)
	res := Result{Check: s.name, Target: "host", Recommended: ">= " + strconv.FormatInt(s.minimum, 10) + " (" + formatBytes(uint64(s.minimum)) + ")"}
	if s.triple {
		res.Recommended = "max >= " + strconv.FormatInt(s.minimum, 10) + " (" + formatBytes(uint64(s.minimum)) + ")"
	}
	raw, err := readValue(path)
	if err != nil {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+path+": "+shortErr(err)
		return res
	}
	res.Current = strings.Join(strings.Fields(raw), " ")
	fields, err := parseInts(raw)
	if err != nil || (s.triple && len(fields) != 3) || (!s.triple && len(fields) != 1) {
		res.Status, res.Reason = StatusCannotRead, "unexpected format in "+path
		return res
	}
	got := fields[len(fields)-1]
	if got >= s.minimum {
		res.Status, res.Reason = StatusOK, s.why
		return res
	}
	res.Status, res.Reason = StatusWarn, s.why
	value := strconv.FormatInt(s.minimum, 10)
	if s.triple {
		value = fmt.Sprintf("%d %d %d", fields[0], fields[1], s.minimum)
	}
	res.fix = &fix{path: path, value: value}
	return res
}

func (h Host) checkFastOpen() Result {
	path := h.sysctlPath("net.ipv4.tcp_fastopen")
	res := Result{Check: "net.ipv4.tcp_fastopen", Target: "host", Recommended: strconv.Itoa(recommendedTCPFastOpen)}
	raw, err := readValue(path)
	if err != nil {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+path+": "+shortErr(err)
		return res
	}
	res.Current = raw
	v, err := strconv.ParseInt(raw, 0, 64)
	if err != nil {
		res.Status, res.Reason = StatusCannotRead, "unexpected format in "+path
		return res
	}
	const why = "client and server fast open save a round trip when a peer reconnects after a partition"
	if v&recommendedTCPFastOpen == recommendedTCPFastOpen {
		res.Status, res.Reason = StatusOK, why
		return res
	}
	res.Status, res.Reason = StatusWarn, why
	res.fix = &fix{path: path, value: strconv.FormatInt(v|recommendedTCPFastOpen, 10)}
	return res
}

func (h Host) nofileTarget() string {
	if h.Nofile == nil && h.NofilePID != 0 {
		return "pid " + strconv.Itoa(h.NofilePID)
	}
	return "process"
}

func (h Host) checkNofile() []Result {
	target := h.nofileTarget()
	want := ">= " + strconv.Itoa(RecommendedNofile)
	soft, hard, err := h.nofile().Get()
	if err != nil {
		r := Result{Target: target, Current: "-", Recommended: want, Status: StatusCannotRead, Reason: trimPrefix(err)}
		rs, rh := r, r
		rs.Check, rh.Check = "nofile.soft", "nofile.hard"
		return []Result{rs, rh}
	}
	f := &fix{nofile: &nofileFix{fromSoft: soft, fromHard: hard, soft: max(soft, RecommendedNofile), hard: max(hard, RecommendedNofile)}}
	mk := func(name string, v uint64, why string) Result {
		r := Result{Check: name, Target: target, Current: formatRlimit(v), Recommended: want, Status: StatusOK, Reason: why}
		if v < RecommendedNofile {
			r.Status, r.fix = StatusWarn, f
		}
		return r
	}
	return []Result{
		mk("nofile.soft", soft, "each peer and client connection, WAL segment and snapshot holds a descriptor"),
		mk("nofile.hard", hard, "the ceiling the soft limit can be raised to without root (systemd: LimitNOFILE)"),
	}
}

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

func parseInts(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func formatRlimit(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// formatBytes prints a size in the largest binary unit that keeps it >= 1.
func formatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func relQueue(d blockDevice, file string) string { return d.name + "/queue/" + file }

func trimPrefix(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimPrefix(err.Error(), "kraft/tuning: ")
}

// shortErr drops the path an *fs.PathError repeats (the caller names it).
func shortErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return trimPrefix(err)
}
