package core

import (
	"encoding/binary"
	"slices"
)

// Membership is a cluster configuration. While Outgoing is non-empty the
// cluster is in joint consensus (Raft §4.3): elections and commitment need a
// majority of Voters and, separately, a majority of Outgoing. Learners
// receive the log but neither vote nor count. All lists are sorted.
type Membership struct {
	Voters   []uint64
	Outgoing []uint64
	Learners []uint64
}

// Joint reports whether the configuration is joint.
func (m Membership) Joint() bool { return len(m.Outgoing) > 0 }

// IsVoter reports whether id votes in either half.
func (m Membership) IsVoter(id uint64) bool {
	return slices.Contains(m.Voters, id) || slices.Contains(m.Outgoing, id)
}

// IsLearner reports whether id is a learner and not a voter.
func (m Membership) IsLearner(id uint64) bool {
	return !m.IsVoter(id) && slices.Contains(m.Learners, id)
}

// Members returns every node ID in the configuration, sorted.
func (m Membership) Members() []uint64 {
	all := append(append(append([]uint64(nil), m.Voters...), m.Outgoing...), m.Learners...)
	slices.Sort(all)
	return slices.Compact(all)
}

func (m Membership) clone() Membership {
	return Membership{Voters: slices.Clone(m.Voters), Outgoing: slices.Clone(m.Outgoing), Learners: slices.Clone(m.Learners)}
}

// majorityIndex returns the largest index that a majority of ids have
// reached; an empty set agrees to anything.
func majorityIndex(ids []uint64, matchOf func(uint64) uint64, scratch *[]uint64) uint64 {
	if len(ids) == 0 {
		return ^uint64(0)
	}
	s := (*scratch)[:0]
	for _, id := range ids {
		s = append(s, matchOf(id))
	}
	*scratch = s
	slices.Sort(s)
	return s[(len(s)-1)/2] // the value that a majority has reached or passed
}

// quorumIndex is the index acknowledged by the configuration's quorum.
func (m Membership) quorumIndex(matchOf func(uint64) uint64, scratch *[]uint64) uint64 {
	return min(majorityIndex(m.Voters, matchOf, scratch), majorityIndex(m.Outgoing, matchOf, scratch))
}

type voteOutcome uint8

const (
	votePending voteOutcome = iota
	voteWon
	voteLost
)

func majorityVote(ids []uint64, votes map[uint64]bool) voteOutcome {
	if len(ids) == 0 {
		return voteWon
	}
	yes, no := 0, 0
	for _, id := range ids {
		if v, ok := votes[id]; ok {
			if v {
				yes++
			} else {
				no++
			}
		}
	}
	q := len(ids)/2 + 1
	switch {
	case yes >= q:
		return voteWon
	case len(ids)-no < q:
		return voteLost
	}
	return votePending
}

func (m Membership) voteResult(votes map[uint64]bool) voteOutcome {
	a, b := majorityVote(m.Voters, votes), majorityVote(m.Outgoing, votes)
	switch {
	case a == voteLost || b == voteLost:
		return voteLost
	case a == voteWon && b == voteWon:
		return voteWon
	}
	return votePending
}

// Snapshot Meta encoding (wire.Message.Meta, and the membership a driver
// stores next to a snapshot file):
//
//	+---------+-----------+--------------+-----------+--------------+-----------+--------------+
//	| ver u8  | nVoters   | voters u64…  | nOutgoing | outgoing u64…| nLearners | learners u64…|
//	| = 1     | u16       |              | u16       |              | u16       |              |
//	+---------+-----------+--------------+-----------+--------------+-----------+--------------+
//
// All little-endian.
const membershipVersion = 1

// AppendMembership appends m's encoding to dst.
func AppendMembership(dst []byte, m Membership) []byte {
	dst = append(dst, membershipVersion)
	for _, l := range [][]uint64{m.Voters, m.Outgoing, m.Learners} {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(l)))
		for _, id := range l {
			dst = binary.LittleEndian.AppendUint64(dst, id)
		}
	}
	return dst
}

// DecodeMembership decodes AppendMembership's output.
func DecodeMembership(b []byte) (Membership, error) {
	var m Membership
	if len(b) < 1 || b[0] != membershipVersion {
		return m, ErrBadSnapshotMeta
	}
	b = b[1:]
	lists := [3]*[]uint64{&m.Voters, &m.Outgoing, &m.Learners}
	for _, l := range lists {
		if len(b) < 2 {
			return m, ErrBadSnapshotMeta
		}
		n := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if len(b) < 8*n {
			return m, ErrBadSnapshotMeta
		}
		for i := 0; i < n; i++ {
			*l = append(*l, binary.LittleEndian.Uint64(b[8*i:]))
		}
		b = b[8*n:]
	}
	if len(b) != 0 {
		return m, ErrBadSnapshotMeta
	}
	return m, nil
}

// ConfChangeOp is one membership operation.
type ConfChangeOp uint8

const (
	// ConfAddVoter adds a voter, or promotes a learner.
	ConfAddVoter ConfChangeOp = 1
	// ConfRemoveNode removes a voter or learner.
	ConfRemoveNode ConfChangeOp = 2
	// ConfAddLearner adds a learner, or demotes a voter.
	ConfAddLearner ConfChangeOp = 3
)

// ConfChange is one operation on one node.
type ConfChange struct {
	Op     ConfChangeOp
	NodeID uint64
}

// Conf-change entry payloads (wire.EntryConfChange and EntryConfChangeJoint):
//
//	+----------+---------+-------------------------------+
//	| flags u8 | n u16   | n × (op u8, node u64)         |
//	+----------+---------+-------------------------------+
//
// EntryConfChange applies the ops at once; they may change at most one voter
// (single-server change). EntryConfChangeJoint with ops enters a joint
// configuration (Outgoing = old voters); with n = 0 it leaves it. flags bit 0
// (confFlagForce) is force-new-cluster's reset: the membership becomes
// exactly the voters the ops add. An entry that does not apply to the
// membership at its index is a no-op on every node (validation is
// deterministic), so every node reaches the same membership whatever was
// proposed; the one-pending-change guard is still what keeps single-server
// changes one at a time.
const confFlagForce = 1

func appendConfChange(dst []byte, flags byte, ccs []ConfChange) []byte {
	dst = append(dst, flags)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(ccs)))
	for _, cc := range ccs {
		dst = append(dst, byte(cc.Op))
		dst = binary.LittleEndian.AppendUint64(dst, cc.NodeID)
	}
	return dst
}

// DecodeConfChange decodes a conf-change entry payload.
func DecodeConfChange(b []byte) (flags byte, ccs []ConfChange, ok bool) {
	if len(b) < 3 {
		return 0, nil, false
	}
	flags = b[0]
	n := int(binary.LittleEndian.Uint16(b[1:]))
	b = b[3:]
	if len(b) != 9*n {
		return 0, nil, false
	}
	for i := 0; i < n; i++ {
		ccs = append(ccs, ConfChange{Op: ConfChangeOp(b[9*i]), NodeID: binary.LittleEndian.Uint64(b[9*i+1:])})
	}
	return flags, ccs, true
}

func applyOps(m Membership, ccs []ConfChange) (Membership, bool) {
	m = m.clone()
	del := func(l []uint64, id uint64) []uint64 {
		return slices.DeleteFunc(l, func(x uint64) bool { return x == id })
	}
	add := func(l []uint64, id uint64) []uint64 {
		if !slices.Contains(l, id) {
			l = append(l, id)
			slices.Sort(l)
		}
		return l
	}
	for _, cc := range ccs {
		if cc.NodeID == 0 {
			return m, false
		}
		switch cc.Op {
		case ConfAddVoter:
			m.Learners = del(m.Learners, cc.NodeID)
			m.Voters = add(m.Voters, cc.NodeID)
		case ConfRemoveNode:
			m.Learners = del(m.Learners, cc.NodeID)
			m.Voters = del(m.Voters, cc.NodeID)
		case ConfAddLearner:
			m.Voters = del(m.Voters, cc.NodeID)
			m.Learners = add(m.Learners, cc.NodeID)
		default:
			return m, false
		}
	}
	return m, len(m.Voters) > 0
}

func voterDiff(a, b []uint64) int {
	n := 0
	for _, x := range a {
		if !slices.Contains(b, x) {
			n++
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			n++
		}
	}
	return n
}

// applyConfEntry returns the membership after a conf-change entry, or ok =
// false when the entry does not apply (it is then a no-op everywhere).
func applyConfEntry(m Membership, joint bool, payload []byte) (Membership, bool) {
	flags, ccs, ok := DecodeConfChange(payload)
	if !ok {
		return m, false
	}
	if flags&confFlagForce != 0 {
		var n Membership
		for _, cc := range ccs {
			n.Voters = append(n.Voters, cc.NodeID)
		}
		slices.Sort(n.Voters)
		return n, len(n.Voters) > 0
	}
	if joint {
		if len(ccs) == 0 {
			if !m.Joint() {
				return m, false
			}
			n := m.clone()
			n.Outgoing = nil
			return n, true
		}
		if m.Joint() {
			return m, false
		}
		n, ok := applyOps(m, ccs)
		if !ok {
			return m, false
		}
		n.Outgoing = slices.Clone(m.Voters)
		return n, true
	}
	if m.Joint() {
		return m, false
	}
	n, ok := applyOps(m, ccs)
	if !ok || voterDiff(m.Voters, n.Voters) > 1 {
		return m, false
	}
	return n, true
}
