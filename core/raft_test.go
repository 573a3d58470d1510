package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

func TestErrorTextsAreTheSeeds(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&NotLeaderError{Leader: 2}, "not leader, leader is node 2"},
		{&TermMismatchError{Local: 42, Remote: 41}, "term mismatch: local=42, remote=41"},
		{&LogMismatchError{Index: 1000, Expected: 5, Got: 4}, "log mismatch at index 1000: expected term 5, got term 4"},
		{&SnapshotTooOldError{Index: 500, FirstIndex: 1000}, "cannot install snapshot: index 500 < first log index 1000"},
		{&QuorumError{Got: 2, Total: 5, Need: 3}, "quorum not reached: got 2/5, need 3"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestConfigValidateRelations(t *testing.T) {
	c := testConfig(1)
	c.LeaseReads, c.DisableCheckQuorum = true, true
	if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("lease reads without check-quorum: %v", err)
	}
	c = testConfig(1)
	c.ElectionTimeoutMinTicks = c.HeartbeatIntervalTicks
	if err := c.Validate(); err == nil {
		t.Fatal("election timeout not above heartbeat accepted")
	}
	c = testConfig(0)
	if err := c.Validate(); err == nil {
		t.Fatal("ID 0 accepted")
	}
}

// §5.2: election timeouts are randomized in [min, max].
func TestElectionTimeoutIsRandomizedWithinBounds(t *testing.T) {
	seen := map[int]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		cfg := testConfig(1)
		cfg.Rand = rand.NewPCG(seed, 1)
		r, _ := New(cfg, Bootstrap([]uint64{1, 2, 3}))
		if r.electionTimeout < cfg.ElectionTimeoutMinTicks || r.electionTimeout > cfg.ElectionTimeoutMaxTicks {
			t.Fatalf("timeout %d outside [%d, %d]", r.electionTimeout, cfg.ElectionTimeoutMinTicks, cfg.ElectionTimeoutMaxTicks)
		}
		seen[r.electionTimeout] = true
	}
	if len(seen) < 5 {
		t.Fatalf("only %d distinct timeouts", len(seen))
	}
}

func TestFollowerElectsItselfAfterTimeoutAndAppendsNoop(t *testing.T) {
	c := newCluster(t, 3)
	c.tick(1, 21) // beyond the maximum timeout
	c.deliver()
	r := c.nodes[1]
	if r.Role() != RoleLeader {
		t.Fatalf("node 1 is %v", r.Role())
	}
	st := r.Status()
	raw := r.Entries(st.LastIndex, st.LastIndex)
	e, _, _ := wire.DecodeEntry(raw)
	if e.Type != wire.EntryNoop || e.Term != st.Term {
		t.Fatalf("last entry after election is %v/%d, want a no-op of term %d", e.Type, e.Term, st.Term)
	}
	if st.Commit != st.LastIndex {
		t.Fatalf("no-op not committed: commit %d last %d", st.Commit, st.LastIndex)
	}
}

// Pre-vote: a node cut off does not inflate its term, so rejoining does not
// depose the leader.
func TestPreVoteKeepsTermOfPartitionedNode(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	c.tick(3, 100)
	c.deliver()
	if got := c.nodes[3].Status().Term; got != c.nodes[1].Status().Term {
		t.Fatalf("isolated node's term %d, leader's %d", got, c.nodes[1].Status().Term)
	}
	c.heal()
	c.tickAll(3)
	c.deliver()
	if c.nodes[1].Role() != RoleLeader {
		t.Fatal("leader deposed by a rejoining node")
	}
}

func TestWithoutPreVoteAPartitionedNodeInflatesItsTerm(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.DisablePreVote = true })
	c.elect(1)
	c.isolate(3)
	c.tick(3, 100)
	c.deliver()
	if c.nodes[3].Status().Term <= c.nodes[1].Status().Term {
		t.Fatal("expected term inflation without pre-vote")
	}
}

// Check-quorum: a leader that hears from no quorum within an election
// timeout steps down, failing its waiting reads with the quorum error.
func TestCheckQuorumStepsDownIsolatedLeader(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.isolate(1)
	if err := c.nodes[1].ReadIndex(9); err != nil {
		t.Fatal(err)
	}
	c.tick(1, 2*testConfig(1).ElectionTimeoutMinTicks+1)
	c.deliver()
	if c.nodes[1].Role() != RoleFollower {
		t.Fatalf("isolated leader still %v", c.nodes[1].Role())
	}
	rs := c.reads[1]
	if len(rs) != 1 || rs[0].Err == nil || rs[0].Err.Error() != "quorum not reached: got 1/3, need 2" {
		t.Fatalf("reads after step-down: %+v", rs)
	}
}

func TestWithoutCheckQuorumIsolatedLeaderStays(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.DisableCheckQuorum = true })
	c.elect(1)
	c.isolate(1)
	c.tick(1, 100)
	if c.nodes[1].Role() != RoleLeader {
		t.Fatal("stepped down without check-quorum")
	}
}

// Raft Figure 8: an entry from an earlier term is not committed by counting
// replicas, only together with an entry of the leader's own term.
func TestFigure8OldTermNotCommittedByCounting(t *testing.T) {
	for _, bug := range []Bug{BugNone, BugCommitOldTerm} {
		c := newCluster(t, 3, func(c *Config) { c.Bug = bug })
		c.elect(1)
		// Leader 1 appends an entry only it stores.
		c.isolate(1)
		old := c.propose(1, "old")
		c.deliver()
		c.heal()
		// It wins a later term, but its Appends (with the new no-op) are lost.
		c.dropType = wire.MsgAppend
		c.elect(1)
		c.dropType = 0
		r := c.nodes[1]
		// Follower 3 acknowledges the old entry, not yet the no-op.
		r.handleAppendResp(r.progress(3), &wire.Message{From: 3, Index: old, Type: wire.MsgAppendResp})
		committed := r.Status().Commit >= old
		if bug == BugNone && committed {
			t.Fatal("entry of an older term committed by counting replicas")
		}
		if bug == BugCommitOldTerm && !committed {
			t.Fatal("the injected bug is not observable")
		}
	}
}

// §5.3 fast backtracking: a follower with a long divergent suffix is
// repaired in a few round trips, not one per entry.
func TestFastBacktrackingSkipsWholeTerms(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	for i := 0; i < 20; i++ {
		c.propose(1, "shared")
	}
	c.deliver()
	c.isolate(1)
	for i := 0; i < 50; i++ {
		c.propose(1, "lost")
	}
	c.deliver()
	c.elect(2)
	for i := 0; i < 50; i++ {
		c.propose(2, "kept")
	}
	c.deliver()
	c.elect(3) // its first probe to 1 lands in 1's divergent term-2 suffix
	c.heal()
	c.tick(3, 2)
	log := c.deliver()
	rejects := 0
	for _, l := range log {
		if strings.Contains(l, "1→3 AppendResp") && strings.Contains(l, "REJECT") {
			rejects++
		}
	}
	if rejects == 0 || rejects > 2 {
		t.Fatalf("%d rejections to repair the follower", rejects)
	}
	if a, b := c.nodes[1].Status(), c.nodes[3].Status(); a.LastIndex != b.LastIndex || a.LastTerm != b.LastTerm {
		t.Fatalf("logs differ: %+v vs %+v", a, b)
	}
	if !strings.Contains(strings.Join(c.errs, "\n"), "log mismatch at index") {
		t.Fatalf("no log mismatch reported: %v", c.errs)
	}
}

// Pipelining: in replicate state the leader keeps at most MaxInflightMsgs
// Appends of at most MaxMsgBytes each outstanding per follower.
func TestReplicationWindowBoundsMessagesAndBytes(t *testing.T) {
	c := newCluster(t, 2, func(c *Config) { c.MaxMsgBytes, c.MaxInflightMsgs, c.MaxInflightBytes = 200, 3, 10000 })
	c.elect(1)
	c.isolate(2) // acknowledgements never come back
	for i := 0; i < 40; i++ {
		c.propose(1, strings.Repeat("x", 40))
	}
	c.processAll()
	appends := 0
	for _, m := range c.queue {
		if m.Type == wire.MsgAppend {
			appends++
			if m.EntryCount > 1 && len(m.Entries) > 200 {
				t.Fatalf("Append of %d bytes > MaxMsgBytes", len(m.Entries))
			}
			if m.EntryCount == 0 {
				t.Fatal("empty Append in the window")
			}
		}
	}
	if appends != 3 {
		t.Fatalf("%d Appends in flight, want MaxInflightMsgs = 3", appends)
	}
}

func TestProposalsInOneTurnShareOneAppendPerFollower(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	for i := 0; i < 10; i++ {
		c.propose(1, "v")
	}
	rd := c.nodes[1].Ready()
	n := 0
	for _, m := range rd.Messages {
		if m.Type == wire.MsgAppend {
			n++
			if m.EntryCount != 10 {
				t.Fatalf("Append carries %d entries, want 10", m.EntryCount)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d Appends, want one per follower", n)
	}
}

// Durability order: a follower's acknowledgement and a vote wait for the
// disk; the leader's Appends do not.
func TestDurabilityOrderInReady(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.propose(1, "v")
	rd := c.nodes[1].Ready()
	for _, m := range rd.MessagesAfterPersist {
		t.Fatalf("leader message %v waits for its disk", m.Type)
	}
	if len(rd.Messages) == 0 {
		t.Fatal("no Appends")
	}
	m := rd.Messages[0]
	c.nodes[1].Advance(rd)
	c.nodes[m.To].Step(&m)
	frd := c.nodes[m.To].Ready()
	if len(frd.MessagesAfterPersist) != 1 || frd.MessagesAfterPersist[0].Type != wire.MsgAppendResp || len(frd.Entries) == 0 {
		t.Fatalf("follower ack not held for persistence: %+v", frd)
	}
	// Until Persisted, the leader does not count its own copy.
	if st := c.nodes[1].Status(); st.Persisted >= st.LastIndex {
		t.Fatal("leader counted unpersisted entries as stored")
	}
}

func TestReadIndexWaitsForAHeartbeatRound(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.isolate(1) // a deposed-but-unaware leader must not answer
	if err := c.nodes[1].ReadIndex(7); err != nil {
		t.Fatal(err)
	}
	c.deliver()
	if len(c.reads[1]) != 0 {
		t.Fatalf("read answered without a quorum: %+v", c.reads[1])
	}
	c.heal()
	c.tick(1, 2)
	c.deliver()
	if len(c.reads[1]) != 1 || c.reads[1][0].Context != 7 || c.reads[1][0].Index != c.nodes[1].Status().Commit {
		t.Fatalf("reads: %+v", c.reads[1])
	}
}

func TestReadIndexBatchesReadsIntoOneRound(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	for ctx := uint64(1); ctx <= 5; ctx++ {
		c.nodes[1].ReadIndex(ctx)
	}
	log := c.deliver()
	hb := 0
	for _, l := range log {
		if strings.Contains(l, " Heartbeat ") {
			hb++
		}
	}
	if hb != 2 || len(c.reads[1]) != 5 {
		t.Fatalf("%d heartbeats for 5 reads (want 2, one per follower), %d answered", hb, len(c.reads[1]))
	}
}

func TestReadIndexForwardedFromFollower(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	if err := c.nodes[2].ReadIndex(11); err != nil {
		t.Fatal(err)
	}
	c.deliver()
	if len(c.reads[2]) != 1 || c.reads[2][0].Context != 11 {
		t.Fatalf("follower reads: %+v", c.reads[2])
	}
}

func TestLeaseReadAnswersWithoutARoundWhileTheLeaseHolds(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.LeaseReads = true })
	c.elect(1)
	c.tick(1, 2) // a heartbeat round establishes the lease
	c.deliver()
	c.nodes[1].ReadIndex(1)
	c.processAll()
	if len(c.reads[1]) != 1 {
		t.Fatalf("lease read not answered at once: %+v", c.reads[1])
	}
	c.isolate(1)
	c.tick(1, testConfig(1).ElectionTimeoutMinTicks) // the lease runs out
	c.nodes[1].ReadIndex(2)
	c.processAll()
	if len(c.reads[1]) != 1 {
		t.Fatalf("read answered from an expired lease: %+v", c.reads[1])
	}
}

func TestTransferLeadershipCatchesUpThenTimeoutNow(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	c.propose(1, "a")
	c.deliver()
	c.heal()
	if err := c.nodes[1].TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[1].Propose([][]byte{[]byte("b")}); !errors.Is(err, ErrTransferInProgress) {
		t.Fatalf("proposal during transfer: %v", err)
	}
	c.tick(1, 2)
	c.deliver()
	if c.nodes[3].Role() != RoleLeader {
		t.Fatalf("node 3 is %v after transfer", c.nodes[3].Role())
	}
}

func TestTransferTimesOutAndProposalsResume(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	c.nodes[1].TransferLeadership(3)
	c.tick(1, testConfig(1).ElectionTimeoutMinTicks)
	c.cut[[2]uint64{1, 2}], c.cut[[2]uint64{2, 1}] = false, false
	if _, err := c.nodes[1].Propose([][]byte{[]byte("b")}); err != nil {
		t.Fatalf("proposals did not resume: %v", err)
	}
}

func TestFlowControlRejectsBeyondUncommittedLimits(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.MaxUncommittedEntries = 5 })
	c.elect(1)
	c.isolate(1)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = c.nodes[1].Propose([][]byte{[]byte("x")})
	}
	var tm *TooManyPendingError
	if !errors.As(err, &tm) || !errors.Is(err, ErrTooManyPending) || tm.PendingEntries != 5 {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "too many pending requests") {
		t.Fatal(err)
	}
}

func TestProposeOnFollowerNamesTheLeader(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(2)
	_, err := c.nodes[1].Propose([][]byte{[]byte("x")})
	if err == nil || err.Error() != "not leader, leader is node 2" {
		t.Fatalf("got %v", err)
	}
}

func TestStaleTermMessageReportsTermMismatch(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.elect(2)
	err := c.nodes[2].Step(&wire.Message{Type: wire.MsgAppend, From: 1, To: 2, Term: 2})
	if err == nil || !strings.HasPrefix(err.Error(), "term mismatch: local=") {
		t.Fatalf("got %v", err)
	}
}

func TestLearnerReplicatesWithoutVotingAndIsPromotedWhenCaughtUp(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.add(4, InitialState{})
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddLearner, NodeID: 4}); err != nil {
		t.Fatal(err)
	}
	c.deliver()
	c.tickAll(2)
	c.deliver()
	st := c.nodes[1].Status()
	if !st.Membership.IsLearner(4) || c.nodes[4].Status().Commit != st.Commit {
		t.Fatalf("learner not caught up: %s / %s", statusLine(c.nodes[1]), statusLine(c.nodes[4]))
	}
	c.tick(4, 100)
	if c.nodes[4].Role() != RoleFollower {
		t.Fatal("a learner campaigned")
	}
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddVoter, NodeID: 4}); err != nil {
		t.Fatal(err)
	}
	c.deliver()
	c.tickAll(2)
	c.deliver()
	if !c.nodes[4].Status().Membership.IsVoter(4) {
		t.Fatalf("not promoted: %s", statusLine(c.nodes[4]))
	}
}

func TestLearnerBehindIsNotPromoted(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.add(4, InitialState{})
	c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddLearner, NodeID: 4})
	c.isolate(4)
	c.deliver()
	for i := 0; i < LearnerCatchUpLagEntries+10; i++ {
		c.propose(1, "x")
		c.deliver()
	}
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddVoter, NodeID: 4}); !errors.Is(err, ErrLearnerBehind) {
		t.Fatalf("got %v", err)
	}
}

func TestJointConsensusReplacesTwoVotersAndLeavesAutomatically(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.add(4, InitialState{})
	c.add(5, InitialState{})
	err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddVoter, NodeID: 4}, ConfChange{Op: ConfAddVoter, NodeID: 5},
		ConfChange{Op: ConfRemoveNode, NodeID: 2}, ConfChange{Op: ConfRemoveNode, NodeID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfRemoveNode, NodeID: 1}); !errors.Is(err, ErrPendingConfChange) {
		t.Fatalf("second change while one is pending: %v", err)
	}
	c.deliver()
	c.tickAll(2)
	c.deliver()
	m := c.nodes[1].Status().Membership
	if m.Joint() || !slicesEqual(m.Voters, []uint64{1, 4, 5}) {
		t.Fatalf("membership %+v", m)
	}
}

func TestRemovingTheLeaderMakesItStepDown(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfRemoveNode, NodeID: 1}); err != nil {
		t.Fatal(err)
	}
	c.deliver()
	if c.nodes[1].Role() == RoleLeader {
		t.Fatal("removed leader still leads")
	}
	c.tickAll(25)
	c.deliver()
	if c.nodes[2].Role() != RoleLeader && c.nodes[3].Role() != RoleLeader {
		t.Fatalf("no new leader:\n%s", c.status())
	}
}

func TestClearPendingConfChange(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.isolate(1)
	c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddLearner, NodeID: 9})
	if st := c.nodes[1].Status(); st.PendingConfIndex == 0 {
		t.Fatal("no pending change reported")
	}
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddLearner, NodeID: 8}); !errors.Is(err, ErrPendingConfChange) {
		t.Fatal(err)
	}
	c.nodes[1].ClearPendingConfChange()
	if err := c.nodes[1].ProposeConfChange(ConfChange{Op: ConfAddLearner, NodeID: 8}); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotInstalledInChunksOnFollowerBehindTheLog(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.MaxSnapshotChunkBytes = 4 })
	c.elect(1)
	c.isolate(3)
	for i := 0; i < 5; i++ {
		c.propose(1, "v")
	}
	c.deliver()
	applied := c.nodes[1].Status().Applied
	if err := c.nodes[1].CreateSnapshot(applied, []byte("state-at-snapshot")); err != nil {
		t.Fatal(err)
	}
	c.heal()
	c.tick(1, 2)
	log := c.deliver()
	chunks := 0
	for _, l := range log {
		if strings.Contains(l, " Snapshot term=") {
			chunks++
		}
	}
	st := c.nodes[3].Status()
	if chunks < 5 || st.SnapshotIndex != applied || st.Commit < applied {
		t.Fatalf("%d chunks; follower %s", chunks, statusLine(c.nodes[3]))
	}
	if err := c.nodes[1].CreateSnapshot(applied-1, nil); err == nil ||
		!strings.HasPrefix(err.Error(), "cannot install snapshot: index ") {
		t.Fatalf("older snapshot: %v", err)
	}
}

func TestForceNewClusterKeepsTheLogAndLeadsAlone(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.propose(1, "survives")
	c.deliver()
	// Node 2 survives alone: rebuild it from its "disk" with the option.
	st := c.nodes[2].Status()
	disk := InitialState{HardState: HardState{Term: st.Term, Vote: st.Vote, Commit: st.Commit},
		Entries: c.nodes[2].Entries(st.FirstIndex, st.LastIndex)}
	cfg := testConfig(2)
	cfg.ForceNewCluster = true
	r, err := New(cfg, disk)
	if err != nil {
		t.Fatal(err)
	}
	one := &cluster{t: t, nodes: map[uint64]*Raft{2: r}, ids: []uint64{2}, cut: map[[2]uint64]bool{},
		applied: map[uint64][]wire.Entry{}, reads: map[uint64][]ReadState{}}
	one.process(r)
	one.tick(2, 25)
	one.deliver()
	if r.Role() != RoleLeader || !slicesEqual(r.Status().Membership.Voters, []uint64{2}) {
		t.Fatalf("%s", statusLine(r))
	}
	if _, err := r.Propose([][]byte{[]byte("after")}); err != nil {
		t.Fatal(err)
	}
	one.deliver()
	if r.Status().Commit != r.Status().LastIndex {
		t.Fatal("single-member cluster does not commit")
	}
}

func TestStatusReportsPeers(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	st := c.nodes[1].Status()
	if st.Role != RoleLeader || uint8(st.Role) != 3 || len(st.Peers) != 3 || st.Leader != 1 {
		t.Fatalf("%+v", st)
	}
	for _, p := range st.Peers {
		if p.Match != st.LastIndex || p.State != ProgressReplicate && p.ID != 1 {
			t.Fatalf("peer %+v", p)
		}
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Thesis §10.2.1: the leader's own write runs in parallel with replication;
// a quorum of followers commits an entry before the leader's disk does.
func TestLeaderCommitsOnAFollowerQuorumBeforeItsOwnWrite(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	r := c.nodes[1]
	i := c.propose(1, "v")
	rd := r.Ready() // the driver has not reported this write durable
	for _, m := range rd.Messages {
		f := c.nodes[m.To]
		f.Step(&m)
		frd := f.Ready()
		f.Persisted(frd.LastIndex, frd.LastTerm)
		for _, ack := range frd.MessagesAfterPersist {
			r.Step(&ack)
		}
		f.Advance(frd)
	}
	r.Advance(rd)
	st := r.Status()
	if st.Commit < i || st.Persisted >= i {
		t.Fatalf("commit %d persisted %d for entry %d", st.Commit, st.Persisted, i)
	}
	// Committed entries are handed to the state machine only once durable here.
	if rd := r.Ready(); len(rd.CommittedEntries) != 0 {
		t.Fatal("entry applied before the leader persisted it")
	}
	r.Persisted(i, st.Term)
	if rd := r.Ready(); len(rd.CommittedEntries) == 0 {
		t.Fatal("entry not applied after persisting")
	}
}

func TestOlderSnapshotFromALeaderIsRefused(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	for i := 0; i < 5; i++ {
		c.propose(1, "v")
	}
	c.deliver()
	f := c.nodes[2]
	applied := f.Status().Applied
	if err := f.CreateSnapshot(applied, nil); err != nil {
		t.Fatal(err)
	}
	meta := AppendMembership(nil, f.Status().Membership)
	err := f.Step(&wire.Message{Type: wire.MsgSnapshot, From: 1, To: 2, Term: f.Status().Term,
		Index: 2, LogTerm: 2, Size: 1, Done: true, Data: []byte{0}, Meta: meta})
	want := fmt.Sprintf("cannot install snapshot: index 2 < first log index %d", applied+1)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestNoLeaseReadsOnceTimeoutNowWasSent(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.LeaseReads = true })
	c.elect(1)
	c.tick(1, 2)
	c.deliver()
	c.dropType = wire.MsgTimeoutNow // the target never campaigns...
	c.nodes[1].TransferLeadership(2)
	c.deliver()
	c.tick(1, testConfig(1).ElectionTimeoutMinTicks) // ...and the transfer is abandoned
	c.deliver()
	c.dropType = 0
	if c.nodes[1].Role() != RoleLeader || c.nodes[1].Status().LeaseValid {
		t.Fatalf("lease still trusted after TimeoutNow: %+v", c.nodes[1].Status())
	}
}

// A follower the leader heard from in the previous check-quorum period
// stays RecentActive right after a new period starts (status health must
// not flicker to DOWN), and stops being so after two silent periods.
func TestRecentActiveSpansTwoCheckQuorumPeriods(t *testing.T) {
	c := newCluster(t, 3)
	c.elect(1)
	c.propose(1, "x")
	c.deliver() // followers answer: active in this period
	active := func() map[uint64]bool {
		out := map[uint64]bool{}
		for _, p := range c.nodes[1].Status().Peers {
			out[p.ID] = p.RecentActive
		}
		return out
	}
	if a := active(); !a[2] || !a[3] {
		t.Fatalf("after the followers answered: %v", a)
	}
	// Cut node 3 off; a new period starts (the leader ticks through it
	// without delivering anything, so nobody has answered in it yet).
	c.isolate(3)
	r := c.nodes[1]
	for r.Tick(); r.electionElapsed != 0; r.Tick() {
	}
	if a := active(); !a[2] || !a[3] {
		t.Fatalf("just after a check-quorum period started: %v, want both still recently active", a)
	}
	c.deliver()
	for i := 0; i < 2*r.cfg.ElectionTimeoutMinTicks; i++ {
		c.tickAll(1)
		c.deliver()
	}
	if r.Role() != RoleLeader {
		t.Fatalf("node 1 lost leadership with node 2 answering: %s", statusLine(r))
	}
	if a := active(); !a[2] || a[3] {
		t.Fatalf("after two periods with node 3 cut off: %v, want 2 active and 3 not", a)
	}
}
