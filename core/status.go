package core

import "slices"

// PeerStatus is the leader's view of one member.
type PeerStatus struct {
	ID          uint64
	Match, Next uint64
	State       ProgressState
	Learner     bool
	// RecentActive: the leader heard from it within the current or the
	// previous check-quorum period (an election timeout or two). Just
	// after a period starts nobody has answered yet in it, so the current
	// period alone would show every follower inactive for a moment.
	RecentActive bool
}

// Status is a point-in-time view of the node for metrics and kraft-ctl.
type Status struct {
	ID, Term, Vote, Leader uint64
	Role                   Role
	Commit, Applied        uint64
	Persisted              uint64
	FirstIndex, LastIndex  uint64
	LastTerm               uint64
	SnapshotIndex          uint64
	Membership             Membership
	PendingConfIndex       uint64 // 0: none pending
	Transferee             uint64 // 0: no transfer under way
	LeaseValid             bool
	Peers                  []PeerStatus // leader only
}

// Status returns the node's status.
func (r *Raft) Status() Status {
	s := Status{ID: r.id, Term: r.term, Vote: r.vote, Leader: r.lead, Role: r.role,
		Commit: r.log.committed, Applied: r.log.applied, Persisted: r.log.stable,
		FirstIndex: r.log.firstIndex(), LastIndex: r.log.lastIndex(), LastTerm: r.log.lastTerm(),
		SnapshotIndex: r.log.snapIndex, Membership: r.members.clone(), Transferee: r.transferee}
	if r.role == RoleLeader {
		if r.pendingConfIndex > r.log.applied {
			s.PendingConfIndex = r.pendingConfIndex
		}
		s.LeaseValid = r.cfg.LeaseReads && r.leaseValid()
		for _, p := range r.prs {
			s.Peers = append(s.Peers, PeerStatus{ID: p.id, Match: p.match, Next: p.next, State: p.state,
				Learner: r.members.IsLearner(p.id), RecentActive: p.active || p.activePrev})
		}
	}
	return s
}

// Term returns the term of entry i, if the log holds it (or i is the
// snapshot index).
func (r *Raft) Term(i uint64) (uint64, bool) { return r.log.term(i) }

// Entries returns the records of entries [lo, hi]; they must be in the
// log's cache. The result is a copy when they span more than one of the
// log's buffers.
func (r *Raft) Entries(lo, hi uint64) []byte {
	b, last := r.log.slice(lo, hi)
	for last < hi {
		var more []byte
		more, last = r.log.slice(last+1, hi)
		b = append(b[:len(b):len(b)], more...)
	}
	return b
}

// Role returns the node's role.
func (r *Raft) Role() Role { return r.role }

// Leader returns the known leader's ID, or 0.
func (r *Raft) Leader() uint64 { return r.lead }

// IsMember reports whether the node is in the configuration it has applied.
func (r *Raft) IsMember(id uint64) bool { return slices.Contains(r.members.Members(), id) }
