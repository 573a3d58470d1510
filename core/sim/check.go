package sim

import (
	"github.com/cespare/xxhash/v2"
	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/wire"
)

// checkNewEntries: log matching. Every entry that enters any log is
// identified by (index, term); two entries with the same identity must have
// the same bytes and the same previous term, which by induction makes the
// logs identical up to there (Raft §5.3, Log Matching).
func (s *Sim) checkNewEntries(n *node, rd *core.Ready) {
	if len(rd.Entries) == 0 {
		return
	}
	prevTerm, ok := n.r.Term(rd.FirstIndex - 1)
	if !ok {
		s.fail("node %d: no term for index %d before new entries", n.id, rd.FirstIndex-1)
		return
	}
	it := wire.NewEntryIter(rd.Entries)
	for {
		e, raw, ok := it.Next()
		if !ok {
			break
		}
		id := entryID{term: e.Term, hash: xxhash.Sum64(raw), prevTerm: prevTerm}
		key := [2]uint64{e.Index, e.Term}
		if old, seen := s.logIDs[key]; seen && old != id {
			s.fail("log matching: node %d entry %d/%d differs from an earlier one with the same index and term (prev term %d vs %d)",
				n.id, e.Index, e.Term, prevTerm, old.prevTerm)
			return
		}
		s.logIDs[key] = id
		prevTerm = e.Term
	}
}

// applyCommitted applies entries to the node's KV state and checks state
// machine safety: every node applies the same entry at each index and
// reaches the same state.
func (s *Sim) applyCommitted(n *node, ents []byte) {
	it := wire.NewEntryIter(ents)
	for {
		e, raw, ok := it.Next()
		if !ok {
			break
		}
		if e.Index != n.kv.applied+1 {
			s.fail("node %d applies entry %d after %d", n.id, e.Index, n.kv.applied)
			return
		}
		if e.Type == wire.EntryNormal {
			_, _, key, val := decodeCmd(e.Payload)
			n.kv.vals[key] = val
		}
		n.kv.applied = e.Index
		for int(e.Index) >= len(s.applied) {
			s.applied = append(s.applied, applyRec{})
		}
		rec := applyRec{term: e.Term, hash: xxhash.Sum64(raw), state: n.kv.hash(), set: true}
		if old := s.applied[e.Index]; old.set && old != rec {
			s.fail("state machine safety: node %d applied %d/%d, another node applied %d/%d there (or reached another state)",
				n.id, e.Index, e.Term, e.Index, old.term)
			return
		}
		s.applied[e.Index] = rec
		s.maxCommit = max(s.maxCommit, e.Index)
		if e.Type == wire.EntryNormal {
			c, op, _, _ := decodeCmd(e.Payload)
			s.writeApplied(c, op)
		}
	}
	s.serveReads(n)
}

// checkSafety runs after every event.
func (s *Sim) checkSafety() {
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		st := n.r.Status()
		if st.Role != core.RoleLeader {
			n.leaderT = 0
			continue
		}
		// Election safety: at most one leader per term.
		if l, ok := s.leaders[st.Term]; ok && l != n.id {
			s.fail("election safety: nodes %d and %d both lead term %d", l, n.id, st.Term)
			return
		}
		if _, ok := s.leaders[st.Term]; !ok {
			s.leaders[st.Term] = n.id
			s.Stats.Elections++
			s.tracef("node %d leads term %d", n.id, st.Term)
			s.checkLeaderComplete(n, st)
		}
		// Leader append-only: a leader never removes or rewrites entries.
		if n.leaderT == st.Term {
			if st.LastIndex < n.leadLog {
				s.fail("leader append-only: leader %d's log shrank from %d to %d", n.id, n.leadLog, st.LastIndex)
				return
			}
			if t, ok := n.r.Term(n.leadLog); ok && t != n.leadLogTerm {
				s.fail("leader append-only: leader %d's entry %d changed term %d → %d", n.id, n.leadLog, n.leadLogTerm, t)
				return
			}
		}
		if invariantsBuild && n.leaderT == st.Term {
			// The whole log, not just its tail: no entry a leader holds
			// changes while it leads.
			for i := max(st.SnapshotIndex+1, n.leadFrom); i < n.leadFrom+uint64(len(n.leadTerms)); i++ {
				if t, _ := n.r.Term(i); t != n.leadTerms[i-n.leadFrom] {
					s.fail("leader append-only: leader %d's entry %d changed term %d → %d", n.id, i, n.leadTerms[i-n.leadFrom], t)
					return
				}
			}
		}
		if invariantsBuild {
			n.leadFrom, n.leadTerms = st.SnapshotIndex+1, n.leadTerms[:0]
			for i := st.SnapshotIndex + 1; i <= st.LastIndex; i++ {
				t, _ := n.r.Term(i)
				n.leadTerms = append(n.leadTerms, t)
			}
		}
		n.leaderT, n.leadLog, n.leadLogTerm = st.Term, st.LastIndex, st.LastTerm
	}
}

// checkLeaderComplete: a new leader holds every entry applied anywhere
// (applied entries are committed), Raft §5.4 Leader Completeness.
func (s *Sim) checkLeaderComplete(n *node, st core.Status) {
	for i := st.SnapshotIndex + 1; i < uint64(len(s.applied)); i++ {
		rec := s.applied[i]
		if !rec.set {
			continue
		}
		t, ok := n.r.Term(i)
		if !ok || t != rec.term {
			s.fail("leader completeness: leader %d of term %d lacks committed entry %d/%d (has term %d)", n.id, st.Term, i, rec.term, t)
			return
		}
	}
}

// Liveness is required only with pre-vote or check-quorum: without either,
// a removed server that never learned of its removal can disrupt elections
// indefinitely (Raft thesis §4.2.3).
func (s *Sim) livenessMark() {
	if !s.o.PreVote && !s.o.CheckQuorum {
		return
	}
	l := s.leader()
	if l == nil {
		s.fail("liveness: no leader %v after all faults healed", s.o.Quiet/2/Millisecond)
		return
	}
	s.liveLeader, s.liveIndex = l, l.r.Status().LastIndex
}

func (s *Sim) checkLiveness() error {
	l := s.liveLeader
	if l == nil {
		return nil
	}
	for _, id := range l.r.Status().Membership.Members() {
		n := s.nodes[id-1]
		if n.up && n.kv.applied < s.liveIndex {
			return s.fail("liveness: node %d applied %d, leader %d had %d entries %v before the end", id, n.kv.applied, l.id, s.liveIndex, s.o.Quiet/2/Millisecond)
		}
	}
	return nil
}
