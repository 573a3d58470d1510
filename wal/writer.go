package wal

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// syncLoop is the writer goroutine: it makes appended bytes durable. Each
// round captures, under mu, the segments written since the last round and
// the last index they hold, syncs them without the lock (appends continue
// meanwhile and go into the next round: group commit), then publishes
// "synced up to that index". A goroutine blocked in WaitDurable or Sync
// runs the round itself when no round is in progress (it would otherwise
// sleep while this goroutine did the same work); rounds never overlap.
func (w *WAL) syncLoop() {
	defer w.wg.Done()
	var tick <-chan time.Time
	if w.opts.Fsync == FsyncBatch {
		t := time.NewTicker(w.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		stopping := false
		select {
		case <-w.stop:
			stopping = true
		case <-w.writerKick:
		case <-tick:
		}
		w.mu.Lock()
		for w.syncing {
			w.durableCnd.Wait()
		}
		w.closeRetiredLocked()
		w.syncRoundLocked()
		w.mu.Unlock()
		if stopping {
			return
		}
	}
}

// syncRoundLocked runs one capture-sync-publish round. Holds mu on entry
// and on return (released during the syncs); requires !w.syncing.
func (w *WAL) syncRoundLocked() {
	if w.syncing {
		panic("kraft: BUG: overlapping sync rounds")
	}
	if w.fatal != nil {
		w.forceSync = false
		w.durableCnd.Broadcast()
		return
	}
	if len(w.unsynced) == 0 && !w.dirDirty {
		// Every write was captured by a round that completed.
		w.forceSync = false
		w.advanceSynced(w.lastIndex)
		return
	}
	target := w.lastIndex
	buf := w.roundBuf[:0]
	for _, s := range w.unsynced {
		s.dirty = false
		buf = append(buf, s)
	}
	clear(w.unsynced)
	w.unsynced = w.unsynced[:0]
	dirDirty := w.dirDirty
	w.dirDirty = false
	w.forceSync = false
	w.truncFloor = ^uint64(0)
	w.syncing = true
	w.mu.Unlock()

	var err error
	if dirDirty {
		if serr := w.fsys.SyncDir(w.dir); serr != nil {
			err = &FatalError{Op: "directory fsync", Err: serr}
		}
	}
	for _, s := range buf {
		if err != nil {
			break
		}
		if serr := s.f.Sync(); serr != nil {
			err = &FatalError{Op: "fdatasync", Err: serr}
		}
	}
	clear(buf)

	w.mu.Lock()
	w.roundBuf = buf[:0]
	w.syncing = false
	if err != nil {
		w.setFatal(err)
		return
	}
	w.advanceSynced(min(target, w.truncFloor))
	w.syncRounds.Add(1)
}

// advanceSynced records that everything up to i is synced. Holds mu.
func (w *WAL) advanceSynced(i uint64) {
	if i > w.synced {
		w.synced = i
	}
	if w.opts.Fsync == FsyncAlways {
		w.publishDurable(w.synced)
	}
	w.durableCnd.Broadcast()
}

// closeRetiredLocked releases segments retired before the latest
// TruncateSuffix/CompactPrefix call: into the recycling pool, or to the
// dropper goroutine to close (unmapping and closing a large file, and
// removing one the pool has no room for, stays off mu's path). It runs
// between rounds, so no sync is using them: on the writer goroutine, and
// at the start of those calls (bumpEpochLocked); Close drops the rest.
// Holds mu.
func (w *WAL) closeRetiredLocked() {
	keep := w.retired[:0]
	for _, r := range w.retired {
		if r.epoch < w.epoch {
			w.releaseRetired(r.seg)
			continue
		}
		keep = append(keep, r)
	}
	clear(w.retired[len(keep):])
	w.retired = keep
}

// bumpEpochLocked starts a TruncateSuffix or CompactPrefix call: what the
// calls before it retired may now be released (the view lifetime rule).
// The writer goroutine does that between its rounds, but it wakes only for
// FsyncAlways appends and FsyncBatch ticks: in FsyncNone retired segments
// stayed open, their disk space not given back, until Close. So they are
// released here too, unless a round, which may be syncing one of them, is
// in flight (the writer's next wake-up or the next call releases them).
// Holds mu.
func (w *WAL) bumpEpochLocked() {
	w.epoch++
	if !w.syncing {
		w.closeRetiredLocked()
	}
}

// preparedSegment is a preallocated, synced, mapped file waiting to become
// a segment.
type preparedSegment struct {
	path string
	f    File
	m    []byte
	// priorPath: a recycled file's prior-content file (recycle.go).
	priorPath string
}

// prepareLoop is the preparer goroutine: it keeps one preallocated segment
// ready so that Append rarely waits for a new file. A failure (a full disk)
// is kept for the next Append that needs a segment, which returns it;
// preparation is retried when asked again.
func (w *WAL) prepareLoop() {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-w.prepKick:
		}
		w.prepMu.Lock()
		need := w.prepared == nil && w.prepErr == nil
		seq := w.prepSeq
		w.prepSeq++
		w.prepMu.Unlock()
		if !need {
			continue
		}
		p, err := w.prepareSegment(seq)
		w.prepMu.Lock()
		w.prepared, w.prepErr = p, err
		w.prepCnd.Broadcast()
		w.prepMu.Unlock()
	}
}

func (w *WAL) prepareSegment(seq uint64) (p *preparedSegment, err error) {
	for s := w.takeRecycled(); s != nil; s = w.takeRecycled() {
		p, err := w.prepareRecycled(seq, s)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, errStopped) {
			return nil, err
		}
		w.log.Warn("kraft/wal: could not recycle a segment; preparing a fresh one", "err", err)
	}
	name := path.Join(w.dir, fmt.Sprintf("prep-%d.tmp", seq))
	f, err := w.fsys.Create(name)
	if err != nil {
		return nil, errorf("preparing segment: %w", err)
	}
	if p, ok := f.(pagePadder); ok {
		p.padWritesToPage()
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = w.fsys.Remove(name)
			err = errorf("preparing segment %s: %w", name, err)
		}
	}()
	zeroFill := !w.opts.FallocateOnly
	pace := func() {}
	if _, device := f.(*osFile); device && zeroFill && w.opts.ZeroFillPause > 0 {
		pace = w.pauseZeroFill
	}
	if err := preallocate(f, w.opts.SegmentSizeBytes, zeroFill, w.stop, pace); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	m, err := f.Map()
	if err != nil {
		return nil, err
	}
	return &preparedSegment{path: name, f: f, m: m}, nil
}

// prepareStepBytes is how far the preparer grows a segment between checks
// for Close and between its pauses (ZeroFillPause). Each step's zeros go
// to the device as one write, and a log sync issued meanwhile waits behind
// it: 256 KiB keeps that wait well under a millisecond, where 4 MiB steps
// put several milliseconds into the syncs' tail (perf/results/speedups.md,
// item 50).
const prepareStepBytes = 256 << 10

var errStopped = errors.New("stopped")

// preallocate grows f to sizeBytes in steps, giving up with errStopped as
// soon as stop is closed, and calling pace between steps.
func preallocate(f File, sizeBytes int64, zeroFill bool, stop <-chan struct{}, pace func()) error {
	for size := min(int64(prepareStepBytes), sizeBytes); ; size = min(size+prepareStepBytes, sizeBytes) {
		select {
		case <-stop:
			return errStopped
		default:
		}
		if err := f.Preallocate(size, zeroFill); err != nil {
			return err
		}
		if size == sizeBytes {
			return nil
		}
		pace()
	}
}

// pauseZeroFill waits ZeroFillPause between two steps of a segment's zeros,
// unless an append is waiting for the segment (or comes to wait meanwhile),
// or the WAL closes.
func (w *WAL) pauseZeroFill() {
	if w.prepWaiters.Load() > 0 {
		return
	}
	t := time.NewTimer(w.opts.ZeroFillPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.prepHurry:
	case <-w.stop:
	}
}

// reservePrepared makes w.reserved hold at least need prepared segments,
// waiting for the preparer. Holds mu (the preparer never takes it).
func (w *WAL) reservePrepared(need int) error {
	for len(w.reserved) < need {
		w.prepMu.Lock()
		// An error left by an earlier attempt is stale (space may have
		// been freed since): discard it and wait for a fresh attempt.
		w.prepErr = nil
		if w.prepared == nil {
			w.prepWaiters.Add(1)
			kick(w.prepHurry)
			for w.prepared == nil && w.prepErr == nil {
				kick(w.prepKick)
				w.prepCnd.Wait()
			}
			w.prepWaiters.Add(-1)
		}
		p, err := w.prepared, w.prepErr
		w.prepared, w.prepErr = nil, nil
		w.prepMu.Unlock()
		if err != nil {
			return err
		}
		w.prepAsked = true // prepare the next one now
		kick(w.prepKick)
		w.reserved = append(w.reserved, p)
	}
	return nil
}

// takeReserved pops the oldest reserved segment. Holds mu.
func (w *WAL) takeReserved() *preparedSegment {
	if len(w.reserved) == 0 {
		panic("kraft: BUG: segment roll without a reserved segment")
	}
	p := w.reserved[0]
	copy(w.reserved, w.reserved[1:])
	w.reserved[len(w.reserved)-1] = nil
	w.reserved = w.reserved[:len(w.reserved)-1]
	return p
}
