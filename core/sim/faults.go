package sim

import (
	"slices"

	"github.com/kraftdb/kraft/core"
)

// fault injects one randomly chosen fault among those the options allow.
func (s *Sim) fault() {
	if s.now >= s.o.Duration {
		return // the quiet period has begun
	}
	var kinds []func()
	if s.o.Crashes {
		kinds = append(kinds, s.crashOne, s.crashOne)
	}
	if s.o.Partitions {
		kinds = append(kinds, s.partitionSymmetric, s.partitionAsymmetric, s.isolateLeader)
	}
	if s.o.SlowNodes {
		kinds = append(kinds, s.slowOne)
	}
	if s.o.Membership {
		kinds = append(kinds, s.changeMembership, s.changeMembership)
	}
	if s.o.Transfers {
		kinds = append(kinds, s.transfer)
	}
	if len(kinds) > 0 {
		kinds[s.rng.IntN(len(kinds))]()
	}
}

func (s *Sim) leader() *node {
	var best *node
	for _, n := range s.nodes {
		if n.up && n.r.Role() == core.RoleLeader {
			if best == nil || n.r.Status().Term > best.r.Status().Term {
				best = n
			}
		}
	}
	return best
}

func (s *Sim) crashOne() {
	var cand []*node
	for _, n := range s.nodes {
		if n.up {
			cand = append(cand, n)
		}
	}
	if len(cand) == 0 {
		return
	}
	n := cand[s.rng.IntN(len(cand))]
	if l := s.leader(); l != nil && s.rng.IntN(2) == 0 {
		n = l
	}
	s.crash(n, 10*Millisecond+Time(s.rng.Int64N(int64(s.o.DownMax))))
}

func (s *Sim) crash(n *node, downFor Time) {
	s.tracef("crash %d (%d unsynced writes lost)", n.id, len(n.writes))
	n.up = false
	n.writes, n.syncing = nil, 0
	n.reads = nil
	s.Stats.Crashes++
	s.push(&event{at: s.now + downFor, kind: evRestart, node: n.idx})
}

func (s *Sim) healAfter(d Time) {
	s.push(&event{at: s.now + d, kind: evHeal})
}

func (s *Sim) heal(int) {
	for _, row := range s.blocked {
		clear(row)
	}
}

func (s *Sim) healAll() {
	s.heal(0)
	s.slowIdx = -1
	// Raft needs broadcast time well below the election timeout to make
	// progress; healing brings the network back to that.
	s.o.LatencyMax = min(s.o.LatencyMax, 10*Millisecond)
	s.o.DropPct = 0
	for _, n := range s.nodes {
		if !n.up && n.started {
			s.push(&event{at: s.now + Time(s.rng.IntN(50))*Millisecond, kind: evRestart, node: n.idx})
		}
	}
}

func (s *Sim) partitionSymmetric() {
	perm := s.rng.Perm(len(s.nodes))
	cut := 1 + s.rng.IntN(len(s.nodes)-1)
	side := make([]bool, len(s.nodes))
	for _, i := range perm[:cut] {
		side[i] = true
	}
	for a := range s.nodes {
		for b := range s.nodes {
			s.blocked[a][b] = side[a] != side[b]
		}
	}
	s.Stats.Partitions++
	s.tracef("partition %v", side)
	s.healAfter(100*Millisecond + Time(s.rng.IntN(900))*Millisecond)
}

func (s *Sim) partitionAsymmetric() {
	for k := 0; k < 1+s.rng.IntN(len(s.nodes)); k++ {
		a, b := s.rng.IntN(len(s.nodes)), s.rng.IntN(len(s.nodes))
		if a != b {
			s.blocked[a][b] = true
			s.tracef("block %d→%d", a+1, b+1)
		}
	}
	s.Stats.Partitions++
	s.healAfter(100*Millisecond + Time(s.rng.IntN(900))*Millisecond)
}

// isolateLeader cuts the leader off (optionally only its outbound or inbound
// side): the classic stale-leader scenario for reads.
func (s *Sim) isolateLeader() {
	l := s.leader()
	if l == nil {
		s.partitionSymmetric()
		return
	}
	mode := s.rng.IntN(3)
	for o := range s.nodes {
		if o == l.idx {
			continue
		}
		if mode != 1 {
			s.blocked[l.idx][o] = true
		}
		if mode != 2 {
			s.blocked[o][l.idx] = true
		}
	}
	s.Stats.Partitions++
	s.tracef("isolate leader %d mode %d", l.id, mode)
	s.healAfter(200*Millisecond + Time(s.rng.IntN(800))*Millisecond)
}

func (s *Sim) slowOne() {
	s.slowIdx = s.rng.IntN(len(s.nodes))
	s.tracef("slow node %d", s.slowIdx+1)
}

func (s *Sim) transfer() {
	l := s.leader()
	if l == nil {
		return
	}
	voters := l.r.Status().Membership.Voters
	to := voters[s.rng.IntN(len(voters))]
	s.tracef("transfer %d → %d: %v", l.id, to, l.r.TransferLeadership(to))
	s.Stats.Transfers++
	s.drain(l)
}

// changeMembership adds a learner, promotes a caught-up learner, removes a
// voter (possibly the leader) or replaces one through joint consensus.
func (s *Sim) changeMembership() {
	l := s.leader()
	if l == nil {
		return
	}
	st := l.r.Status()
	m := st.Membership
	members := m.Members()
	var outside []uint64
	for _, n := range s.nodes {
		if !slices.Contains(members, n.id) {
			outside = append(outside, n.id)
		}
	}
	var ccs []core.ConfChange
	switch k := s.rng.IntN(4); {
	case k == 0 && len(outside) > 0:
		ccs = []core.ConfChange{{Op: core.ConfAddLearner, NodeID: outside[s.rng.IntN(len(outside))]}}
	case k == 1 && len(m.Learners) > 0:
		ccs = []core.ConfChange{{Op: core.ConfAddVoter, NodeID: m.Learners[s.rng.IntN(len(m.Learners))]}}
	case k == 2 && len(m.Voters) > 3:
		ccs = []core.ConfChange{{Op: core.ConfRemoveNode, NodeID: m.Voters[s.rng.IntN(len(m.Voters))]}}
	case k == 3 && len(m.Learners) > 0 && len(m.Voters) >= 3:
		ccs = []core.ConfChange{{Op: core.ConfAddVoter, NodeID: m.Learners[0]},
			{Op: core.ConfRemoveNode, NodeID: m.Voters[s.rng.IntN(len(m.Voters))]}}
	default:
		if len(outside) > 0 {
			ccs = []core.ConfChange{{Op: core.ConfAddLearner, NodeID: outside[0]}}
		}
	}
	if len(ccs) == 0 {
		return
	}
	err := l.r.ProposeConfChange(ccs...)
	s.tracef("conf change %v at leader %d: %v", ccs, l.id, err)
	if err == nil {
		s.Stats.ConfChanges++
		for _, cc := range ccs {
			if n := s.nodes[cc.NodeID-1]; !n.started {
				s.start(n) // a new node starts empty and learns everything from the leader
			}
		}
	}
	s.drain(l)
}
