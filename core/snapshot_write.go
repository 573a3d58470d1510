package core

import (
	"bytes"
	"sync"
	"time"

	"github.com/kraftdb/kraft/sm"
)

// snapChain is what the node knows of its own newest snapshot, for the
// next delta: a delta may follow only a snapshot this node wrote (file
// durable, data handed to the core) whose capture is the one the state
// machine's delta counts from. The apply goroutine reads it; the writer
// goroutine updates it when a write ends; a restore resets it.
type snapChain struct {
	mu  sync.Mutex
	gen uint64 // bumped by reset: a write begun before does not update
	chainState
}

type chainState struct {
	valid     bool
	index     uint64 // the newest snapshot's index
	deltas    int    // deltas after the full snapshot
	fullBytes int    // size of the full snapshot's frame
	// data is the materialized chain up to index, as the core holds it.
	// A delta is appended in place: the core and messages in flight only
	// read data[:len] of older versions, which appends never touch.
	data []byte
	// room, after a full snapshot (deltas == 0), is its buffer from the
	// start: chainHeaderBytes free, then data (the plain stream). The first
	// delta writes the chain header there, so the full state is never
	// copied to become the head of a chain.
	room []byte
}

func (c *snapChain) reset() {
	c.mu.Lock()
	c.gen++
	c.valid, c.data, c.room = false, nil, nil
	c.mu.Unlock()
}

// snapJob is one captured snapshot on its way to disk.
type snapJob struct {
	s           sm.Snapshot
	index, term uint64
	delta       bool
	base        uint64 // delta only: the snapshot it applies to
	gen         uint64
	prev        chainState // delta only: the chain it extends
	chain       *snapChain
	captureDur  time.Duration
	started     time.Time
	bytes       int    // of the file's data, uncompressed (set by the write)
	room        []byte // full only: the buffer data sits in (see chainState.room)
}

// chainHeaderBytes precede the first frame of a chain.
const chainHeaderBytes = len(chainMagic) + frameHeaderBytes

// serializeSnapshot writes the captured snapshot out and returns the data
// the core keeps (and sends to followers) and the data of its file.
//
// A full snapshot's data is the plain stream, as nodes without chains
// wrote and read it (a follower that predates chains can install it); it
// becomes the head of a chain only when a delta follows. A delta's data is
// the chain up to it; its file holds the delta frame alone.
func (n *Node) serializeSnapshot(job *snapJob) (data, file []byte, err error) {
	var buf bytes.Buffer
	if job.delta {
		buf.Write(appendFrameHeader(nil, frameDelta))
	} else {
		// One allocation of about the right size: growing by doubling
		// would copy (and leave to the GC) about as much again, which
		// for a state of a GiB shows in the latency of Apply.
		if sz, ok := n.sm.(interface{ SizeBytes() int64 }); ok {
			buf.Grow(int(sz.SizeBytes()) + 1<<20)
		}
		buf.Write(make([]byte, chainHeaderBytes))
	}
	_, err = job.s.WriteTo(&yieldingWriter{w: &buf})
	job.s.Release()
	if err != nil {
		return nil, nil, err
	}
	b := buf.Bytes()
	if !job.delta {
		job.room = b
		return b[chainHeaderBytes:], b[chainHeaderBytes:], nil
	}
	finishFrame(b, 0)
	prev := job.prev.data
	if job.prev.deltas == 0 {
		// The full snapshot becomes the head of a chain: its header goes
		// into the room before it (no reader of the plain stream sees it).
		head := job.prev.room[:chainHeaderBytes+len(prev)]
		copy(head, chainMagic)
		head[len(chainMagic)] = frameFull
		finishFrame(head, len(chainMagic))
		prev = head
	}
	return append(prev, b...), append([]byte(chainMagic), b...), nil
}

func (j *snapJob) kind() string {
	if j.delta {
		return "delta"
	}
	return "full"
}

// captureSnapshot captures the state machine (apply goroutine): a delta
// when the options, the chain and the state machine all allow one,
// otherwise a full snapshot.
func (n *Node) captureSnapshot(a *applier, index, term uint64) (*snapJob, error) {
	start := time.Now()
	job := &snapJob{index: index, term: term, started: start, chain: a.chain}
	a.chain.mu.Lock()
	c, gen := a.chain.chainState, a.chain.gen
	a.chain.mu.Unlock()
	job.gen = gen
	o := n.cfg.Snapshots
	inc, isInc := n.sm.(sm.IncrementalStateMachine)
	if o.Incremental && isInc && c.valid && c.deltas < o.maxDeltaChain() && len(c.data)-c.fullBytes <= c.fullBytes/2 {
		s, base, ok, err := inc.SnapshotDelta()
		if err != nil {
			return nil, err
		}
		switch {
		case ok && base == c.index:
			job.s, job.delta, job.base, job.prev = s, true, base, c
		case ok:
			// The state machine's last capture is not our newest file
			// (a failed write in between): a delta would have no base.
			s.Release()
		}
	}
	if job.s == nil {
		s, err := n.sm.Snapshot()
		if err != nil {
			return nil, err
		}
		job.s = s
	}
	job.captureDur = time.Since(start)
	return job, nil
}

// writeSnapshot serializes the captured snapshot, hands it to the core
// (which compacts its log and serves it to lagging followers), makes the
// file durable, then compacts the WAL. A crash between steps leaves the
// previous snapshot and the full log: nothing is lost.
func (n *Node) writeSnapshot(job *snapJob) (uint64, error) {
	index, err := n.writeSnapshotSteps(job)
	job.s = nil
	if err != nil {
		n.rememberChain(job, nil, false)
	}
	return index, err
}

func (n *Node) writeSnapshotSteps(job *snapJob) (uint64, error) {
	data, file, err := n.serializeSnapshot(job)
	if err != nil {
		return 0, err
	}
	job.bytes = len(file)
	var m Membership
	if cerr := n.control(func(r *Raft) {
		if err = r.CreateSnapshot(job.index, data); err == nil {
			m = snapshotMembership(r)
		}
	}); cerr != nil {
		return 0, cerr
	}
	if err != nil {
		return 0, err
	}
	if err := n.saveSnapshotFile(job.index, job.term, m, file, job.base); err != nil {
		return 0, err
	}
	n.rememberChain(job, data, true)
	job.room = nil
	if err := n.compactWAL(); err != nil {
		return 0, err
	}
	n.lastSnap.Store(job.index)
	return job.index, nil
}

// compactWAL releases the log before the oldest snapshot file kept
// (wal.Options.SnapshotsRetained, plus bases), removing the segments wholly
// before it. Each kept snapshot with the log after it thus still rebuilds
// the newest state: an older one is a fallback when a newer file is lost
// or damaged. The compaction point is a snapshot of ours or the leader's,
// so the log holds its index with its term (committed entries never
// change); if not, the log is left alone rather than discarded.
func (n *Node) compactWAL() error {
	snaps, err := n.wal.Snapshots()
	if err != nil || len(snaps) == 0 {
		return err
	}
	oldest := snaps[0]
	if t, err := n.wal.Term(oldest.Index); err != nil || t != oldest.Term {
		return nil // before the log's start already (or not ours to judge)
	}
	return n.wal.CompactPrefix(oldest.Index, oldest.Term)
}

// rememberChain records the outcome of a write for the next delta, unless
// a restore came in between.
func (*Node) rememberChain(job *snapJob, data []byte, ok bool) {
	c := job.chain
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != job.gen {
		return
	}
	if !ok {
		c.valid, c.data, c.room = false, nil, nil
		return
	}
	c.valid, c.index, c.data = true, job.index, data
	if job.delta {
		c.deltas, c.room = job.prev.deltas+1, nil
	} else {
		c.deltas, c.fullBytes, c.room = 0, len(data), job.room
	}
}
