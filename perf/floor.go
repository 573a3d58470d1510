package perf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Floor is the machine's physical floor for one commit.
type Floor struct {
	FsyncP50, FsyncP99 time.Duration // 4 KiB pwrite + fdatasync, in the data directory
	RTTP50             time.Duration // loopback TCP round trip of a small message
	// SharedFsyncP50: the same fdatasync while SharedBy writers (the
	// nodes of a cluster on this one disk) each sync a file of their own
	// at once, as they do for every write. 0 when not measured.
	SharedFsyncP50 time.Duration
	SharedBy       int
}

// CommitFloor is the least latency one client's write can have:
// the leader's fdatasync, in parallel with a follower's, plus the round
// trips client→leader and leader→follower.
func (f Floor) CommitFloor() time.Duration { return f.FsyncP50 + 2*f.RTTP50 }

// SharedCommitFloor is CommitFloor where the nodes share one disk: their
// fdatasyncs run at the same time and a device that serves flushes one
// after another makes each slower (0 when not measured).
func (f Floor) SharedCommitFloor() time.Duration {
	if f.SharedFsyncP50 == 0 {
		return 0
	}
	return f.SharedFsyncP50 + 2*f.RTTP50
}

// MeasureFsync times n rounds of a 4 KiB pwrite and fdatasync on a
// preallocated file in dir, as the WAL does.
func MeasureFsync(dir string, n int) (p50, p99 time.Duration, err error) {
	samples, err := MeasureSharedFsync(dir, n, 1)
	if err != nil {
		return 0, 0, err
	}
	return Percentile(samples, 0.50), Percentile(samples, 0.99), nil
}

// MeasureSharedFsync runs MeasureFsync's rounds in writers goroutines at
// once, each on a file of its own in dir, and returns every round's time,
// sorted.
func MeasureSharedFsync(dir string, n, writers int) ([]time.Duration, error) {
	samples := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples[w], errs[w] = fsyncRounds(dir, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	all := slices.Concat(samples...)
	slices.Sort(all)
	return all, nil
}

func fsyncRounds(dir string, n int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "kraftbench-fsync-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const size = 64 << 20
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if err := f.Truncate(size); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	samples := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		off := int64(i*4096) % size
		start := time.Now()
		if _, err := f.WriteAt(buf, off); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		samples = append(samples, time.Since(start))
	}
	return samples, nil
}

// MeasureLoopbackRTT times n ping-pongs of 64 bytes over TCP on 127.0.0.1.
func MeasureLoopbackRTT(n int) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 64)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	b := make([]byte, 64)
	samples := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := c.Read(b); err != nil {
			return 0, err
		}
		samples = append(samples, time.Since(start))
	}
	slices.Sort(samples)
	return Percentile(samples, 0.50), nil
}

// MeasureFloor measures both in dir; with sharedBy > 1 (the nodes of a
// local cluster, all on dir's disk) also the fdatasync of that many
// writers at once.
func MeasureFloor(dir string, sharedBy int) (Floor, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Floor{}, err
	}
	p50, p99, err := MeasureFsync(filepath.Clean(dir), 500)
	if err != nil {
		return Floor{}, fmt.Errorf("kraft/perf: fdatasync probe: %w", err)
	}
	rtt, err := MeasureLoopbackRTT(2000)
	if err != nil {
		return Floor{}, fmt.Errorf("kraft/perf: loopback probe: %w", err)
	}
	f := Floor{FsyncP50: p50, FsyncP99: p99, RTTP50: rtt}
	if sharedBy > 1 {
		samples, err := MeasureSharedFsync(filepath.Clean(dir), 300, sharedBy)
		if err != nil {
			return Floor{}, fmt.Errorf("kraft/perf: shared fdatasync probe: %w", err)
		}
		f.SharedFsyncP50, f.SharedBy = Percentile(samples, 0.50), sharedBy
	}
	return f, nil
}

// Percentile of sorted samples (nearest rank).
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
