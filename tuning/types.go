package tuning

import (
	"errors"
	"runtime"
)

// Recommendations. Each is the floor (or the exact value) below which a check
// reports WARN; Apply raises a value to it and never lowers one above it.
const (
	// recommendedNrRequests is the block-layer queue depth the seed asks
	// for: enough requests in flight that a group-commit burst of WAL
	// writes plus a snapshot stream does not queue in the scheduler.
	recommendedNrRequests = 256

	// recommendedRmemMaxBytes and recommendedWmemMaxBytes cap what
	// SO_RCVBUF/SO_SNDBUF may ask for; 16 MiB covers a 10 Gbit/s link at a
	// ~12 ms RTT, so AppendEntries pipelines are never window-limited.
	recommendedRmemMaxBytes = 16 << 20
	recommendedWmemMaxBytes = 16 << 20

	// recommendedTCPRmemMaxBytes and recommendedTCPWmemMaxBytes are the
	// third field of net.ipv4.tcp_rmem/tcp_wmem: how far autotuning may grow
	// a socket's buffers.
	recommendedTCPRmemMaxBytes = 16 << 20
	recommendedTCPWmemMaxBytes = 16 << 20

	// recommendedTCPFastOpen is the tcp_fastopen bit mask: 1 = client,
	// 2 = server, 3 = both (peers both dial and accept).
	recommendedTCPFastOpen = 3

	// RecommendedNofile is the RLIMIT_NOFILE floor, soft and hard (the
	// seed's limits.conf and the systemd unit's LimitNOFILE). Exported so
	// kraftd can name it in its own messages.
	RecommendedNofile = 65536

	// recommendedFreeBytesMin and recommendedFreePercentMin: the data
	// directory's filesystem should keep at least this much space for new
	// WAL segments (64 MiB each, preallocated) and snapshots. 8 GiB follows
	// the storage-sizing example in the seed's deployment guide (7.5 GB
	// minimum).
	recommendedFreeBytesMin   = 8 << 30
	recommendedFreePercentMin = 10
)

// Default directories, as in the seed's layout (/var/lib/kraft/...).
const (
	DefaultDataDir     = "/var/lib/kraft/data"
	DefaultSnapshotDir = "/var/lib/kraft/snapshots"
)

// ErrNotSupported is returned by Check and Apply on operating systems other
// than Linux: everything this package reads and writes is Linux's.
var ErrNotSupported = errors.New("kraft/tuning: not supported on this OS (" + runtime.GOOS + ")")

// Status is the verdict of one check.
type Status string

const (
	StatusOK         Status = "OK"
	StatusWarn       Status = "WARN"
	StatusCannotRead Status = "CANNOT-READ"
)

// Options names the directories whose devices and filesystems are checked.
// An empty WALDir means the WAL lives in DataDir (the default layout).
type Options struct {
	DataDir     string
	WALDir      string
	SnapshotDir string
}

// DefaultOptions returns the seed's default layout.
func DefaultOptions() Options {
	return Options{DataDir: DefaultDataDir, SnapshotDir: DefaultSnapshotDir}
}

func (o Options) walDir() string {
	if o.WALDir == "" {
		return o.DataDir
	}
	return o.WALDir
}

// Result is one check: what was read, what is recommended, and why.
type Result struct {
	// Check names the setting, e.g. "disk.scheduler", "net.core.rmem_max",
	// "nofile.soft". Stable: scripts may match on it.
	Check string `json:"check"`
	// Target is what the setting belongs to: a block device with the roles
	// it serves ("nvme0n1 (data,wal)"), a directory, or "host"/"process".
	Target      string `json:"target"`
	Current     string `json:"current"`
	Recommended string `json:"recommended"`
	Status      Status `json:"status"`
	Reason      string `json:"reason"`

	fix *fix // how Apply brings Current to Recommended; nil when it cannot
}

// fix is one change Apply can make for a WARN result: either a value written
// to a sysfs/procfs file, or an RLIMIT_NOFILE raise.
type fix struct {
	path   string // absolute, already under SysRoot/ProcRoot; "" for nofile
	value  string
	nofile *nofileFix
}

type nofileFix struct {
	fromSoft, fromHard uint64 // as read by Check
	soft, hard         uint64 // targets
}

// Report is the outcome of Check, in a stable order: devices, network, memory,
// file descriptors, filesystem, layout.
type Report struct {
	Results []Result `json:"results"`
}

// Warnings returns the results whose status is WARN.
func (r Report) Warnings() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == StatusWarn {
			out = append(out, res)
		}
	}
	return out
}

// HasWarnings reports whether any check is WARN (kraft-ctl exits 1 then).
func (r Report) HasWarnings() bool { return len(r.Warnings()) > 0 }

// ChangeOutcome says what Apply did with one item.
type ChangeOutcome string

const (
	OutcomeApplied ChangeOutcome = "applied"
	OutcomeDryRun  ChangeOutcome = "would-apply"
	OutcomeFailed  ChangeOutcome = "failed"
	// OutcomeManual: WARN that Apply cannot fix (filesystem, free space,
	// device layout, an unreadable value); Reason says what to do.
	OutcomeManual ChangeOutcome = "manual"
)

// Change is one item Apply handled.
type Change struct {
	Check   string        `json:"check"`
	Target  string        `json:"target"`
	Path    string        `json:"path,omitempty"`
	From    string        `json:"from"`
	To      string        `json:"to"`
	Outcome ChangeOutcome `json:"outcome"`
	Reason  string        `json:"reason,omitempty"`
}

// Host is where the checks look. Zero-valued fields take the real host's
// defaults (see DefaultHost); tests point SysRoot and ProcRoot at fake trees
// and replace the functions that touch the process or the disk.
type Host struct {
	SysRoot  string // "/sys"
	ProcRoot string // "/proc"

	// Statfs reports the filesystem under path. nil: statfs(2).
	Statfs func(path string) (FSStat, error)
	// Nofile reads and sets RLIMIT_NOFILE. nil: this process (prlimit(2)
	// on pid NofilePID, 0 = self).
	Nofile NofileLimiter
	// NofilePID selects the process whose RLIMIT_NOFILE the default
	// Nofile reads and raises (kraft-ctl --pid). 0 = this process.
	NofilePID int
	// WriteFile writes a sysfs/procfs value to an existing file. nil: open
	// O_WRONLY without O_CREATE, write, close.
	WriteFile func(path, value string) error
	// Euid is the effective user ID, used to explain permission errors.
	// nil: os.Geteuid.
	Euid func() int
}

// FSStat is the part of statfs(2) the free-space check needs.
type FSStat struct {
	TotalBytes uint64
	FreeBytes  uint64 // available to unprivileged users (f_bavail)
}

// NofileLimiter reads and sets a process's RLIMIT_NOFILE. It is an interface
// so tests exercise Apply's logic without changing real limits.
type NofileLimiter interface {
	Get() (soft, hard uint64, err error)
	Set(soft, hard uint64) error
}

// StartupResult is what StartupCheck did.
type StartupResult struct {
	Report Report
	// Warned are the WARN results it logged, each once.
	Warned []Result
	// NofileSoftBefore/After and NofileHard are this process's
	// RLIMIT_NOFILE around the raise (0 when it could not be read).
	NofileSoftBefore, NofileSoftAfter, NofileHard uint64
	// Err is why checking or raising failed, if it did; startup goes on.
	Err error
}
