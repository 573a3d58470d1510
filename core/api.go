package core

import (
	"fmt"

	"github.com/kraftdb/kraft/wire"
)

// LearnerCatchUpLagEntries: a learner is promoted only when its match index
// is within this many entries of the leader's commit index.
const LearnerCatchUpLagEntries = 128

// Propose appends a batch of commands (one entry each) to the leader's log
// and returns the index of the first. Entries reach followers with the next
// Ready. It fails with NotLeaderError on a non-leader, ErrTransferInProgress
// during a leadership transfer, ErrEntryTooLarge, or TooManyPendingError
// when the uncommitted limits would be exceeded.
func (r *Raft) Propose(batch [][]byte) (uint64, error) {
	if r.role != RoleLeader {
		return 0, &NotLeaderError{Leader: r.lead}
	}
	if r.transferee != 0 {
		return 0, ErrTransferInProgress
	}
	size := 0
	for _, b := range batch {
		if len(b) > r.cfg.MaxEntryBytes {
			return 0, fmt.Errorf("%w: %d bytes > MaxEntryBytes %d", ErrEntryTooLarge, len(b), r.cfg.MaxEntryBytes)
		}
		size += wire.EntrySize(len(b))
	}
	if err := r.checkPending(len(batch), size); err != nil {
		return 0, err
	}
	first := r.log.lastIndex() + 1
	for _, b := range batch {
		r.log.appendEntry(wire.EntryNormal, r.term, b)
	}
	r.needBcast = true
	return first, nil
}

// fitPending is how many proposals of batch, from the front, the pending
// limits admit now (at least one when nothing is pending, as checkPending).
func (r *Raft) fitPending(batch [][]byte) int {
	pendN := int(r.log.lastIndex() - r.log.committed)
	pendB := r.log.bytesBetween(r.log.committed, r.log.lastIndex())
	k := 0
	for k < len(batch) {
		size := wire.EntrySize(len(batch[k]))
		if pendN+k > 0 && (pendN+k+1 > r.cfg.MaxUncommittedEntries || pendB+size > r.cfg.MaxUncommittedBytes) {
			break
		}
		pendB += size
		k++
	}
	return k
}

// pendingError describes the pending limits and what is pending now.
func (r *Raft) pendingError() error {
	return &TooManyPendingError{PendingEntries: int(r.log.lastIndex() - r.log.committed),
		PendingBytes: r.log.bytesBetween(r.log.committed, r.log.lastIndex()),
		LimitEntries: r.cfg.MaxUncommittedEntries, LimitBytes: r.cfg.MaxUncommittedBytes}
}

func (r *Raft) checkPending(n, size int) error {
	pendN := int(r.log.lastIndex() - r.log.committed)
	pendB := r.log.bytesBetween(r.log.committed, r.log.lastIndex())
	if pendN > 0 && (pendN+n > r.cfg.MaxUncommittedEntries || pendB+size > r.cfg.MaxUncommittedBytes) {
		return &TooManyPendingError{PendingEntries: pendN, PendingBytes: pendB,
			LimitEntries: r.cfg.MaxUncommittedEntries, LimitBytes: r.cfg.MaxUncommittedBytes}
	}
	return nil
}

// ReadIndex requests a linearizable read. Its answer is a ReadState with the
// same Context in a later Ready: a read served after applying ReadState.Index
// is linearizable. On a follower the request is forwarded to the leader; it
// fails with NotLeaderError when no leader is known. Reads that arrive
// between two Readys share one heartbeat round.
func (r *Raft) ReadIndex(ctx uint64) error {
	if r.role != RoleLeader {
		if r.lead == 0 {
			return &NotLeaderError{}
		}
		r.send(wire.Message{Type: wire.MsgReadIndex, To: r.lead, Context: ctx})
		return nil
	}
	r.readIndex(ctx, 0)
	return nil
}

func (r *Raft) readIndex(ctx, from uint64) {
	r.reads = append(r.reads, readReq{ctx: ctx, from: from})
	r.startReads()
}

// startReads fixes the read index of waiting reads once the leader has
// committed an entry of its own term (before that, its commit index may lag
// the cluster's, Raft §6.4), then asks for a confirming heartbeat round.
func (r *Raft) startReads() {
	if r.role != RoleLeader || len(r.reads) == 0 {
		return
	}
	if t, _ := r.log.term(r.log.committed); t != r.term {
		return
	}
	// Unassigned reads are a suffix (reads are appended, and assigned all
	// at once): start at the first of them, so that n reads arriving one
	// by one cost O(n), not O(n^2) (a twentieth of the leader's CPU at
	// 1,024 clients reading).
	if r.readsAssigned >= len(r.reads) {
		return
	}
	for i := r.readsAssigned; i < len(r.reads); i++ {
		r.reads[i].index = r.log.committed
	}
	r.readsAssigned = len(r.reads)
	if r.cfg.Bug == BugReadNoHeartbeat || (r.cfg.LeaseReads && r.leaseValid()) {
		// The lease says no other leader can exist yet: answer now.
		keep := r.reads[:0]
		for _, rq := range r.reads {
			if rq.round == 0 {
				r.deliverRead(rq)
			} else {
				keep = append(keep, rq)
			}
		}
		r.reads = keep
		r.readsAssigned = len(keep)
		return
	}
	r.needRound = true // the next Ready sends one heartbeat round for all of them
}

func (r *Raft) deliverRead(rq readReq) {
	if rq.from == 0 || rq.from == r.id {
		r.readStates = append(r.readStates, ReadState{Index: rq.index, Context: rq.ctx})
		return
	}
	r.send(wire.Message{Type: wire.MsgReadIndexResp, To: rq.from, Index: rq.index, Context: rq.ctx})
}

// quorumRound is the latest heartbeat round a quorum has answered.
func (r *Raft) quorumRound() uint64 {
	return r.members.quorumIndex(func(id uint64) uint64 {
		if id == r.id {
			return r.round
		}
		if p := r.progress(id); p != nil {
			return p.ackedRound
		}
		return 0
	}, &r.scratch)
}

// releaseReads answers every read whose heartbeat round a quorum confirmed.
func (r *Raft) releaseReads() {
	if len(r.reads) == 0 {
		return
	}
	q := r.quorumRound()
	n := 0
	for _, rq := range r.reads[:r.readsAssigned] {
		if rq.round == 0 || rq.round > q {
			break
		}
		r.deliverRead(rq)
		n++
	}
	r.reads = append(r.reads[:0], r.reads[n:]...)
	r.readsAssigned -= n
}

// leaseValid: a quorum answered a heartbeat sent at tick T, so none of them
// will vote for another candidate before T + ElectionTimeoutMinTicks.
func (r *Raft) leaseValid() bool {
	if r.transferee != 0 || r.sentTimeoutNow {
		return false
	}
	q := r.quorumRound()
	if q == 0 || r.round-q >= leaseRounds {
		return false
	}
	sent := r.roundSentTick[q%leaseRounds]
	return r.ticks < sent+uint64(r.cfg.ElectionTimeoutMinTicks-r.cfg.LeaseMarginTicks)
}

func (r *Raft) failReads(err error) {
	r.failReadsWith(err)
}

func (r *Raft) failReadsWith(err error) {
	for _, rq := range r.reads {
		if rq.from == 0 || rq.from == r.id {
			r.readStates = append(r.readStates, ReadState{Context: rq.ctx, Err: err})
		}
	}
	r.reads = r.reads[:0]
	r.readsAssigned = 0
	r.needRound = false
}

// ProposeConfChange proposes a membership change. One op that changes at
// most one voter is a single-server change (EntryConfChange); anything else
// goes through joint consensus (EntryConfChangeJoint), which the leader
// leaves automatically once the joint configuration is applied. At most one
// change may be pending.
func (r *Raft) ProposeConfChange(ccs ...ConfChange) error {
	if r.role != RoleLeader {
		return &NotLeaderError{Leader: r.lead}
	}
	if r.transferee != 0 {
		return ErrTransferInProgress
	}
	if r.pendingConfIndex > r.log.applied || r.members.Joint() {
		return ErrPendingConfChange
	}
	for _, cc := range ccs {
		if cc.Op == ConfAddVoter && r.members.IsLearner(cc.NodeID) {
			if p := r.progress(cc.NodeID); p == nil || p.match+LearnerCatchUpLagEntries < r.log.committed {
				return fmt.Errorf("%w: node %d", ErrLearnerBehind, cc.NodeID)
			}
		}
	}
	typ := wire.EntryConfChange
	payload := appendConfChange(nil, 0, ccs)
	n, ok := applyConfEntry(r.members, false, payload)
	if !ok || len(ccs) != 1 {
		typ = wire.EntryConfChangeJoint
		if n, ok = applyConfEntry(r.members, true, payload); !ok || len(ccs) == 0 {
			return ErrInvalidConfChange
		}
	}
	_ = n
	if err := r.checkPending(1, wire.EntrySize(len(payload))); err != nil {
		return err
	}
	r.pendingConfIndex = r.log.appendEntry(typ, r.term, payload)
	r.needBcast = true
	return nil
}

// ClearPendingConfChange lifts the one-pending-change guard (kraft-ctl
// clear-pending-config-change), and with it the re-proposal of a lost
// "leave joint" entry. It is an operator override for a change whose entry
// can no longer commit or apply: single-server changes rely on there being
// at most one uncommitted change in the log, so use it only when the pending
// entry is known to be dead (for instance after the nodes it added were
// lost). What the guard cannot break is determinism: every node validates a
// conf entry against the membership at its index when applying it, and an
// entry that does not apply there is a no-op everywhere.
func (r *Raft) ClearPendingConfChange() error {
	if r.role != RoleLeader {
		return &NotLeaderError{Leader: r.lead}
	}
	r.pendingConfIndex = 0
	return nil
}

// TransferLeadership hands leadership to a voter: the leader stops taking
// proposals, brings the target's log up to date, then sends TimeoutNow. If
// no new leader emerges within ElectionTimeoutMinTicks the transfer is
// abandoned and proposals resume.
func (r *Raft) TransferLeadership(to uint64) error {
	if r.role != RoleLeader {
		return &NotLeaderError{Leader: r.lead}
	}
	if to == r.id {
		return nil
	}
	if !r.members.IsVoter(to) {
		return fmt.Errorf("%w: node %d", ErrNotMember, to)
	}
	r.transferee, r.transferElapsed = to, 0
	p := r.progress(to)
	if p.match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.needBcast = true
	}
	return nil
}

// CreateSnapshot records that the state machine's snapshot data covers
// every entry up to index (which must be applied) and compacts the log up
// to it. The data is what the leader sends to followers behind the log.
func (r *Raft) CreateSnapshot(index uint64, data []byte) error {
	if index <= r.log.snapIndex {
		return &SnapshotTooOldError{Index: index, FirstIndex: r.log.firstIndex()}
	}
	if index > r.log.applied {
		return fmt.Errorf("kraft/core: snapshot index %d beyond applied index %d", index, r.log.applied)
	}
	term, _ := r.log.term(index)
	m := r.snap.Meta.Membership
	keep := r.confHistory[:0]
	for _, c := range r.confHistory {
		if c.index <= index {
			m = c.m
		} else {
			keep = append(keep, c)
		}
	}
	r.confHistory = keep
	r.snap = Snapshot{Meta: SnapshotMeta{Index: index, Term: term, Membership: m}, Data: data}
	r.snapMeta = AppendMembership(nil, m)
	r.log.compactTo(index)
	return nil
}

// Persisted reports that the entries up to index (whose term is term) and
// the hard state handed out with them are durable. Stale reports (for
// entries since replaced) are ignored.
func (r *Raft) Persisted(index, term uint64) {
	if index <= r.log.stable || index >= r.log.unsent || !r.log.matchTerm(index, term) {
		return
	}
	r.log.stable = index
	if r.role == RoleLeader {
		r.maybeCommit()
	}
}

// sendCommit tells a caught-up follower a newer commit index with an empty
// Append anchored at its match index (which it is known to hold).
func (r *Raft) sendCommit(p *progress) {
	if p.sentCommit >= r.log.committed {
		return
	}
	t, ok := r.log.term(p.match)
	if !ok {
		return
	}
	commit := min(r.log.committed, p.match)
	if commit <= p.sentCommit {
		return
	}
	r.send(wire.Message{Type: wire.MsgAppend, To: p.id, Index: p.match, LogTerm: t, Commit: commit})
	p.sentCommit = commit
}

// Campaign starts an election at once, as if the election timer fired
// (tests and operator tooling; a non-voter ignores it).
func (r *Raft) Campaign() {
	if r.role != RoleLeader && r.promotable() {
		r.campaign(!r.cfg.DisablePreVote, false)
	}
}
