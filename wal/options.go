package wal

import (
	"log/slog"
	"time"
)

// FsyncMode says when appended entries count as persisted.
type FsyncMode uint8

const (
	// FsyncAlways (default): an entry counts as persisted (DurableIndex,
	// Durable, WaitDurable) only after the fdatasync that covers it. A
	// power loss loses nothing that was reported persisted.
	FsyncAlways FsyncMode = iota
	// FsyncBatch: entries count as persisted once written to the OS;
	// the writer syncs every SyncInterval. A power loss or kernel crash
	// can lose what was written in the last SyncInterval (plus the sync
	// in progress); a process crash alone loses nothing.
	FsyncBatch
	// FsyncNone: entries count as persisted once written to the OS and
	// the WAL never syncs except in Sync and Close. A power loss can lose
	// any amount (whatever the kernel had not yet written back, typically
	// up to 30 s); a process crash alone loses nothing. Tests and
	// benchmarks only.
	FsyncNone
)

func (m FsyncMode) String() string {
	switch m {
	case FsyncAlways:
		return "always"
	case FsyncBatch:
		return "batch"
	case FsyncNone:
		return "none"
	}
	return "FsyncMode(?)"
}

// ParseFsyncMode parses "always", "batch" or "none".
func ParseFsyncMode(s string) (FsyncMode, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "batch":
		return FsyncBatch, nil
	case "none":
		return FsyncNone, nil
	}
	return 0, errorf("unknown fsync mode %q (want always, batch or none)", s)
}

const (
	// DefaultSegmentSizeBytes is the size every new segment is
	// preallocated to.
	DefaultSegmentSizeBytes = 64 << 20
	// MinSegmentSizeBytes keeps segments at least a few pages long.
	MinSegmentSizeBytes = 4096
	// MaxSegmentSizeBytes: record offsets inside a segment are u32.
	MaxSegmentSizeBytes = 1 << 31
	// DefaultSyncInterval is FsyncBatch's period.
	DefaultSyncInterval = 10 * time.Millisecond
	// DefaultZeroFillPause is ZeroFillPause's default.
	DefaultZeroFillPause = time.Millisecond
	// DefaultSnapshotsRetained is how many snapshot files SaveSnapshot
	// keeps (the newest ones).
	DefaultSnapshotsRetained = 2
)

// Options configure Open. The zero value is valid: OSFS, 64 MiB segments,
// FsyncAlways, zero-filled preallocation, snapshots in <dir>/snapshots.
type Options struct {
	FS               FS
	SegmentSizeBytes int64
	Fsync            FsyncMode
	SyncInterval     time.Duration // FsyncBatch only
	// FallocateOnly preallocates segments with fallocate alone instead of
	// also writing zeros. Zero-filling measured faster per sync
	// (perf/results/wal.md) and, written with O_DIRECT, as fast or faster
	// in the cluster too (perf/results/speedups.md, items 16-17); this
	// exists for those benchmarks.
	FallocateOnly bool
	// ZeroFillPause spaces a segment's zero-fill on a real file system: the
	// preparer waits this long after each 256 KiB of zeros (the default
	// paces a 64 MiB segment over ~0.3 s), so that its writes (64 MiB in a
	// burst otherwise) leave the device to the log's syncs in between. It
	// never holds up the log: while an append waits for the segment, the
	// rest goes without pauses. 0: DefaultZeroFillPause; negative: no
	// pauses. (perf/results/speedups.md, items 33 and 50.)
	ZeroFillPause time.Duration
	// RecycleSegments is how many segments retired by compaction are kept
	// to be written again instead of preparing fresh, zero-filled ones
	// (recycle.go): the disk keeps up to that many segments' space after
	// a compaction. 0: DefaultRecycleSegments; negative: none (every
	// retired segment is deleted).
	RecycleSegments int
	// SnapshotDir holds snapshot-<index>-<term>.dat files.
	SnapshotDir       string
	SnapshotsRetained int
	// Logger receives recovery notes (a torn tail cut off). nil: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults(dir string) {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.SegmentSizeBytes == 0 {
		o.SegmentSizeBytes = DefaultSegmentSizeBytes
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.ZeroFillPause == 0 {
		o.ZeroFillPause = DefaultZeroFillPause
	}
	if o.RecycleSegments == 0 {
		o.RecycleSegments = DefaultRecycleSegments
	}
	if o.SnapshotDir == "" {
		o.SnapshotDir = dir + "/snapshots"
	}
	if o.SnapshotsRetained == 0 {
		o.SnapshotsRetained = DefaultSnapshotsRetained
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the options after defaults are applied.
func (o *Options) Validate() error {
	if o.SegmentSizeBytes < MinSegmentSizeBytes || o.SegmentSizeBytes > MaxSegmentSizeBytes {
		return errorf("segment size %d bytes outside [%d, %d]", o.SegmentSizeBytes, MinSegmentSizeBytes, MaxSegmentSizeBytes)
	}
	if o.Fsync > FsyncNone {
		return errorf("unknown fsync mode %d", o.Fsync)
	}
	if o.Fsync == FsyncBatch && o.SyncInterval <= 0 {
		return errorf("sync interval %v must be positive", o.SyncInterval)
	}
	if o.SnapshotsRetained < 1 {
		return errorf("snapshots retained %d must be at least 1", o.SnapshotsRetained)
	}
	return nil
}
