package tuning

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
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
	r.Results = append(r.Results, h.checkMemory()...)
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
