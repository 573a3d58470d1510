package core

import (
	"math"

	"github.com/kraftdb/kraft/wire"
)

// Ready is one batch of work for the driver. Taking a Ready (Raft.Ready)
// hands its contents over; the driver then:
//
//   - Snapshot (if set): restores the state machine from it and persists it
//     (with its membership); the log before and at Snapshot.Meta.Index is gone.
//   - Entries (if any): records for indexes FirstIndex..LastIndex. The driver
//     truncates its stored log at FirstIndex and appends them. They may be
//     written asynchronously (group commit); when they and HardState are
//     durable the driver calls Persisted(LastIndex, LastTerm).
//   - HardState: persist it if HardStateChanged, in the same write as Entries.
//   - Messages: may be sent at once, before Entries are durable. This is
//     where the leader's Appends are: it writes its own log in parallel with
//     its followers (Raft thesis §10.2.1).
//   - MessagesAfterPersist: may be sent only once the log is durable through
//     LastIndex (including entries handed out by earlier Readys and still in
//     flight) and HardState is durable: they are votes and follower
//     acknowledgements, which promise exactly that. A Ready without Entries
//     may still carry them (a duplicate Append is acknowledged again): they
//     then wait for the earlier writes. With writes completing in order, the
//     driver releases them when the write queued for this Ready finishes.
//   - CommittedEntries: records to apply, in order. They are durable locally.
//   - ReadStates: answers to ReadIndex.
//
// Slices are owned by the driver until it calls Advance, after which the
// core reuses the message slices (not the entry bytes, which are immutable:
// Entries, CommittedEntries and messages' Entries may be kept and written
// from any goroutine).
type Ready struct {
	HardState        HardState
	HardStateChanged bool

	Entries             []byte
	FirstIndex          uint64
	LastIndex, LastTerm uint64

	Snapshot *Snapshot

	Messages             []wire.Message
	MessagesAfterPersist []wire.Message

	CommittedEntries []byte
	ReadStates       []ReadState
}

// MustPersist reports whether this Ready has anything to write.
func (rd *Ready) MustPersist() bool {
	return rd.HardStateChanged || len(rd.Entries) > 0 || rd.Snapshot != nil
}

// HasReady reports whether Ready would return any work.
func (r *Raft) HasReady() bool {
	return len(r.msgs) > 0 || len(r.msgsAfter) > 0 || len(r.readStates) > 0 ||
		r.toInstall != nil || r.log.unsent <= r.log.lastIndex() ||
		r.hardState() != r.prevHS || r.applicable() ||
		(r.role == RoleLeader && (r.needBcast || r.needRound || r.mustLeaveJoint()))
}

func (r *Raft) applicable() bool { return min(r.log.committed, r.log.stable) > r.log.applied }

func (r *Raft) mustLeaveJoint() bool {
	return r.members.Joint() && r.pendingConfIndex <= r.log.applied
}

// Ready collects the work accumulated since the last call. Everything
// proposed and stepped in between goes out as one batch: one write, one
// Append per follower.
func (r *Raft) Ready() Ready {
	var rd Ready
	if r.toInstall != nil {
		rd.Snapshot, r.toInstall = r.toInstall, nil
	}
	r.collectCommitted(&rd)
	if r.role == RoleLeader {
		if r.mustLeaveJoint() {
			r.pendingConfIndex = r.log.appendEntry(wire.EntryConfChangeJoint, r.term, appendConfChange(nil, 0, nil))
			r.needBcast = true
		}
		if r.needRound {
			r.bcastHeartbeat()
		}
		if r.needBcast {
			r.needBcast = false
			for _, p := range r.prs {
				r.sendAppends(p)
			}
		}
	}
	if last := r.log.lastIndex(); r.log.unsent <= last {
		rd.FirstIndex = r.log.unsent
		rd.Entries, last = r.log.slice(r.log.unsent, last)
		r.log.unsent = last + 1
	}
	rd.LastIndex, rd.LastTerm = r.log.unsent-1, 0
	if t, ok := r.log.term(rd.LastIndex); ok {
		rd.LastTerm = t
	}
	if hs := r.hardState(); hs != r.prevHS {
		rd.HardState, rd.HardStateChanged, r.prevHS = hs, true, hs
	} else {
		rd.HardState = hs
	}
	rd.Messages, r.msgs = r.msgs, r.recycleMsgs
	rd.MessagesAfterPersist, r.msgsAfter = r.msgsAfter, r.recycleAft
	r.recycleMsgs, r.recycleAft = nil, nil
	rd.ReadStates, r.readStates, r.recycleRS = r.readStates, r.recycleRS, nil
	r.checkInvariants()
	return rd
}

// ReleaseThrough tells the core that the driver holds no entry record up
// to index i any more (it applied them; what it persisted and sent, it
// copied), so the memory of the log's evicted chunks that held them may
// be reused. A driver that never calls it leaves evicted chunks to the
// garbage collector.
func (r *Raft) ReleaseThrough(i uint64) {
	r.log.released = max(r.log.released, i)
}

// Advance tells the core that the driver is done with rd's message and
// read-state slices.
func (r *Raft) Advance(rd Ready) {
	r.recycleMsgs = rd.Messages[:0]
	r.recycleAft = rd.MessagesAfterPersist[:0]
	r.recycleRS = rd.ReadStates[:0]
	r.log.evict(r.cacheNeed())
}

// cacheNeed is the first entry that a follower may still be sent from the
// in-memory log: on a leader, the lowest match+1 of the followers heard from
// lately (one that went quiet, or is being sent a snapshot, reads from the
// WAL when it is back); elsewhere none (MaxUint64).
func (r *Raft) cacheNeed() uint64 {
	need := uint64(math.MaxUint64)
	if r.role != RoleLeader {
		return need
	}
	for _, p := range r.prs {
		if p.id != r.id && (p.active || p.activePrev) && p.state != ProgressSnapshot {
			need = min(need, p.match+1)
		}
	}
	return need
}

func (r *Raft) collectCommitted(rd *Ready) {
	hi := min(r.log.committed, r.log.stable)
	lo := r.log.applied + 1
	if hi < lo {
		return
	}
	end := lo
	size := r.log.end(lo) - r.log.start(lo)
	for end < hi {
		n := r.log.end(end+1) - r.log.start(end+1)
		if size+n > r.cfg.MaxCommittedBytesPerReady {
			break
		}
		size += n
		end++
	}
	rd.CommittedEntries, end = r.log.slice(lo, end)
	for i := lo; i <= end; i++ {
		r.log.applied = i
		if t := r.log.entryType(i); t == wire.EntryConfChange || t == wire.EntryConfChangeJoint {
			r.applyConf(i, t)
		}
	}
}

func (r *Raft) applyConf(i uint64, t wire.EntryType) {
	if i <= r.ignoreConfThrough {
		return
	}
	raw, _ := r.log.slice(i, i)
	e, _, err := wire.DecodeEntry(raw)
	if err != nil {
		bug("stored conf entry %d does not decode: %v", i, err)
	}
	n, ok := applyConfEntry(r.members, t == wire.EntryConfChangeJoint, e.Payload)
	if !ok {
		return
	}
	r.members = n
	r.confHistory = append(r.confHistory, confAt{index: i, m: n})
	r.resetProgress()
	if r.role == RoleLeader {
		for _, p := range r.prs {
			if p.next == 0 {
				p.next = r.log.lastIndex() + 1
			}
		}
		if !r.members.IsVoter(r.id) {
			r.becomeFollower(r.term, 0) // removed: step down, the rest elect
		}
		r.needBcast = true
	}
}
