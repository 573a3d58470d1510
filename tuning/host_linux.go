package tuning

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultHost returns the real host: /sys, /proc, statfs(2), prlimit(2) on
// this process, and os.Geteuid.
func DefaultHost() Host { return Host{SysRoot: "/sys", ProcRoot: "/proc"} }

func (h Host) sysRoot() string {
	if h.SysRoot == "" {
		return "/sys"
	}
	return h.SysRoot
}

func (h Host) procRoot() string {
	if h.ProcRoot == "" {
		return "/proc"
	}
	return h.ProcRoot
}

func (h Host) statfs(path string) (FSStat, error) {
	if h.Statfs != nil {
		return h.Statfs(path)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSStat{}, fmt.Errorf("kraft/tuning: statfs %s: %w", path, err)
	}
	bsize := uint64(st.Bsize)
	return FSStat{TotalBytes: st.Blocks * bsize, FreeBytes: st.Bavail * bsize}, nil
}

func (h Host) nofile() NofileLimiter {
	if h.Nofile != nil {
		return h.Nofile
	}
	return prlimitNofile{pid: h.NofilePID}
}

func (h Host) euid() int {
	if h.Euid != nil {
		return h.Euid()
	}
	return os.Geteuid()
}

// write stores value in an existing sysfs/procfs file. It never creates a
// file: a missing one means the kernel does not have the setting.
func (h Host) write(path, value string) error {
	if h.WriteFile != nil {
		return h.WriteFile(path, value)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// prlimitNofile is RLIMIT_NOFILE of process pid (0 = this process).
type prlimitNofile struct{ pid int }

func (p prlimitNofile) Get() (soft, hard uint64, err error) {
	var lim unix.Rlimit
	if err := unix.Prlimit(p.pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		return 0, 0, fmt.Errorf("kraft/tuning: reading RLIMIT_NOFILE%s: %w", p.who(), err)
	}
	return lim.Cur, lim.Max, nil
}

func (p prlimitNofile) Set(soft, hard uint64) error {
	lim := unix.Rlimit{Cur: soft, Max: hard}
	if err := unix.Prlimit(p.pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		return fmt.Errorf("kraft/tuning: setting RLIMIT_NOFILE%s: %w", p.who(), err)
	}
	return nil
}

func (p prlimitNofile) who() string {
	if p.pid == 0 {
		return ""
	}
	return fmt.Sprintf(" of pid %d", p.pid)
}

// explainWriteError turns a failed sysfs/procfs write into the one-line
// reason an operator needs: what failed and what to do about it.
func explainWriteError(err error, euid int) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "not present on this kernel"
	case errors.Is(err, unix.EROFS):
		return "read-only filesystem (as in containers): apply on the host"
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		if euid != 0 {
			return "permission denied: not root (run as root)"
		}
		return "permission denied even as root (read-only in this namespace or container?)"
	case errors.Is(err, unix.EINVAL):
		return "kernel rejected the value (invalid argument)"
	}
	return strings.TrimPrefix(err.Error(), "kraft/tuning: ")
}
