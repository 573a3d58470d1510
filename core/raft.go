package core

import (
	"fmt"
	"math/rand/v2"

	"github.com/kraftdb/kraft/wire"
)

// Role is a node's Raft role, encoded as in the kraft_role metric.
type Role uint8

const (
	RoleFollower     Role = 0
	RolePreCandidate Role = 1
	RoleCandidate    Role = 2
	RoleLeader       Role = 3
)

func (r Role) String() string {
	return [...]string{"follower", "pre-candidate", "candidate", "leader"}[r]
}

// HardState is what must be durable before MessagesAfterPersist leave.
type HardState struct {
	Term, Vote, Commit uint64
}

// SnapshotMeta describes a snapshot: the last index and term it covers and
// the membership at that index.
type SnapshotMeta struct {
	Index, Term uint64
	Membership  Membership
}

// Snapshot is a state-machine snapshot with its metadata.
type Snapshot struct {
	Meta SnapshotMeta
	Data []byte
}

// InitialState is what a node recovered from its storage (empty for a brand
// new node that will join an existing cluster). A new cluster starts every
// founding member from Bootstrap(voters).
type InitialState struct {
	HardState HardState
	Snapshot  Snapshot
	// Entries: the verified records after Snapshot.Meta.Index, in order.
	Entries []byte
}

// ReadState answers ReadIndex(Context): once the state machine has applied
// Index, a read reflects every write committed before ReadIndex was called.
// Err is set (and Index 0) when the read was dropped.
type ReadState struct {
	Index, Context uint64
	Err            error
}

type readReq struct {
	ctx   uint64
	from  uint64 // 0: local
	index uint64 // set once the read is among Raft.reads[:readsAssigned]
	round uint64 // heartbeat round, sent after index was set, that confirms it
}

type stepFunc func(r *Raft, m *wire.Message) error

// leaseRounds is how many heartbeat rounds' send ticks are remembered.
const leaseRounds = 256

// Raft is the pure Raft state machine of one node. It is not safe for
// concurrent use: one goroutine drives it (see doc.go).
type Raft struct {
	id  uint64
	cfg Config
	rng *rand.Rand

	term, vote, lead uint64
	role             Role
	log              raftLog
	members          Membership
	confHistory      []confAt // membership after each applied conf entry past the snapshot
	prs              []*progress
	votes            map[uint64]bool

	step stepFunc
	tick func(r *Raft)

	ticks             uint64
	electionElapsed   int
	heartbeatElapsed  int
	electionTimeout   int // randomized
	startupQuiet      bool
	transferee        uint64
	transferElapsed   int
	pendingConfIndex  uint64
	needBcast         bool
	forceReset        bool
	sentTimeoutNow    bool // this term: the lease is void (see sendTimeoutNow)
	ignoreConfThrough uint64

	msgs, msgsAfter []wire.Message
	readStates      []ReadState
	reads           []readReq
	readsAssigned   int // reads[:readsAssigned] have their index; the rest wait (see startReads)
	round           uint64
	roundSentTick   [leaseRounds]uint64
	needRound       bool

	snap        Snapshot // latest snapshot, sent to followers behind the log
	snapMeta    []byte   // encoded snap.Meta.Membership
	incoming    Snapshot // follower: chunks received so far
	toInstall   *Snapshot
	prevHS      HardState
	scratch     []uint64
	recycleMsgs []wire.Message
	recycleAft  []wire.Message
	recycleRS   []ReadState // rd.ReadStates back from Advance
}

type confAt struct {
	index uint64
	m     Membership
}

// Bootstrap is the initial state of every founding member of a new cluster:
// entry 1 (term 1) is a conf change that sets the founding voters, committed.
// All founders write the same bytes, and a node that joins later learns the
// founding membership by replicating entry 1 like any other.
func Bootstrap(voters []uint64) InitialState {
	ccs := make([]ConfChange, len(voters))
	for i, id := range voters {
		ccs[i] = ConfChange{Op: ConfAddVoter, NodeID: id}
	}
	rec := wire.AppendEntry(nil, wire.EntryConfChange, 1, 1, appendConfChange(nil, confFlagForce, ccs))
	return InitialState{HardState: HardState{Term: 1, Commit: 1}, Entries: rec}
}

// New creates a node from its configuration and recovered state.
func New(cfg Config, st InitialState) (*Raft, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Raft{id: cfg.ID, cfg: cfg, rng: rand.New(cfg.Rand), votes: map[uint64]bool{}}
	sm := st.Snapshot.Meta
	r.log.reset(sm.Index, sm.Term)
	r.log.reader, r.log.cacheBytes = cfg.LogReader, cfg.LogCacheBytes
	r.snap = Snapshot{Meta: SnapshotMeta{Index: sm.Index, Term: sm.Term, Membership: sm.Membership.clone()}, Data: st.Snapshot.Data}
	r.snapMeta = AppendMembership(nil, sm.Membership)
	r.members = sm.Membership.clone()
	it := wire.NewEntryIter(st.Entries)
	for {
		e, raw, ok := it.Next()
		if !ok {
			break
		}
		if e.Index != r.log.lastIndex()+1 || e.Term < r.log.lastTerm() {
			return nil, fmt.Errorf("%w: entry %d (term %d) follows %d (term %d)", ErrBadInitialState, e.Index, e.Term, r.log.lastIndex(), r.log.lastTerm())
		}
		r.log.appendRaw(raw, e.Index, e.Term)
	}
	hs := st.HardState
	if hs.Commit > r.log.lastIndex() {
		return nil, fmt.Errorf("%w: commit %d beyond last index %d", ErrBadInitialState, hs.Commit, r.log.lastIndex())
	}
	if r.log.lastTerm() > hs.Term {
		return nil, fmt.Errorf("%w: last log term %d beyond term %d", ErrBadInitialState, r.log.lastTerm(), hs.Term)
	}
	r.term, r.vote = hs.Term, hs.Vote
	r.log.committed = max(hs.Commit, sm.Index)
	r.log.stable = r.log.lastIndex()
	r.log.unsent = r.log.lastIndex() + 1
	r.prevHS = r.hardState()
	if cfg.ForceNewCluster {
		r.log.committed = r.log.lastIndex()
		r.ignoreConfThrough = r.log.lastIndex()
		r.members = Membership{Voters: []uint64{r.id}}
		r.forceReset = true
	}
	r.resetProgress()
	r.becomeFollower(r.term, 0)
	r.startupQuiet = true
	return r, nil
}

// ID returns the node's ID.
func (r *Raft) ID() uint64 { return r.id }

func (r *Raft) hardState() HardState {
	hs := HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
	if r.cfg.Bug == BugVoteNotPersisted {
		hs.Vote = 0
	}
	return hs
}

func (r *Raft) checkQuorum() bool { return !r.cfg.DisableCheckQuorum }

func (r *Raft) resetProgress() {
	ids := r.members.Members()
	old := r.prs
	r.prs = r.prs[:0:0]
	for _, id := range ids {
		var p *progress
		for _, o := range old {
			if o.id == id {
				p = o
			}
		}
		if p == nil {
			p = newProgress(id, r.cfg.MaxInflightMsgs)
			p.next = r.log.lastIndex() + 1
		}
		r.prs = append(r.prs, p)
	}
}

func (r *Raft) progress(id uint64) *progress {
	for _, p := range r.prs {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (r *Raft) send(m wire.Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	r.msgs = append(r.msgs, m)
}

// sendAfterPersist queues m to leave only once this Ready's state is durable.
func (r *Raft) sendAfterPersist(m wire.Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	r.msgsAfter = append(r.msgsAfter, m)
}

func (r *Raft) resetElectionTimer() {
	r.electionElapsed = 0
	span := r.cfg.ElectionTimeoutMaxTicks - r.cfg.ElectionTimeoutMinTicks + 1
	r.electionTimeout = r.cfg.ElectionTimeoutMinTicks + r.rng.IntN(span)
}

func (r *Raft) reset(term uint64) {
	if term != r.term {
		r.term, r.vote = term, 0
	}
	r.lead = 0
	r.resetElectionTimer()
	r.heartbeatElapsed = 0
	r.transferee, r.transferElapsed = 0, 0
	clear(r.votes)
	r.failReads(&NotLeaderError{})
}

func (r *Raft) becomeFollower(term, lead uint64) {
	r.reset(term)
	r.lead = lead
	r.role, r.step, r.tick = RoleFollower, stepFollower, tickElection
}

func (r *Raft) becomePreCandidate() {
	r.lead = 0
	r.resetElectionTimer()
	clear(r.votes)
	r.failReads(&NotLeaderError{})
	r.role, r.step, r.tick = RolePreCandidate, stepCandidate, tickElection
}

func (r *Raft) becomeCandidate() {
	r.reset(r.term + 1)
	r.vote = r.id
	r.role, r.step, r.tick = RoleCandidate, stepCandidate, tickElection
}

func (r *Raft) becomeLeader() {
	r.reset(r.term)
	r.lead = r.id
	r.role, r.step, r.tick = RoleLeader, stepLeader, tickHeartbeat
	for _, p := range r.prs {
		p.match, p.sentCommit, p.ackedRound, p.active = 0, 0, 0, true
		p.becomeProbe()
		p.next = r.log.lastIndex() + 1
	}
	if p := r.progress(r.id); p != nil {
		p.match = r.log.stable
	}
	r.pendingConfIndex = r.log.lastIndex()
	r.log.appendEntry(wire.EntryNoop, r.term, nil)
	if r.forceReset {
		r.forceReset = false
		r.pendingConfIndex = r.log.appendEntry(wire.EntryConfChange, r.term,
			appendConfChange(nil, confFlagForce, []ConfChange{{Op: ConfAddVoter, NodeID: r.id}}))
	}
	r.needBcast = true
	r.round = 0
	r.sentTimeoutNow = false
	r.maybeCommit()
}

// promotable: a voter with every committed membership change applied.
func (r *Raft) promotable() bool {
	if !r.members.IsVoter(r.id) {
		return false
	}
	for i := r.log.applied + 1; i <= r.log.committed; i++ {
		if t := r.log.entryType(i); t == wire.EntryConfChange || t == wire.EntryConfChangeJoint {
			return false
		}
	}
	return true
}

// campaign starts a pre-vote (preVote) or an election.
func (r *Raft) campaign(preVote, transfer bool) {
	voteTerm := r.term + 1
	typ := wire.MsgPreVote
	if preVote {
		r.becomePreCandidate()
	} else {
		r.becomeCandidate()
		voteTerm = r.term
		typ = wire.MsgVote
	}
	r.votes[r.id] = true
	if r.tally() {
		return
	}
	for _, id := range r.members.Members() {
		if id == r.id || !r.members.IsVoter(id) {
			continue
		}
		m := wire.Message{Type: typ, To: id, Term: voteTerm, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Transfer: transfer}
		if preVote {
			r.send(m)
		} else {
			// The candidate's own vote and term must be durable first.
			r.sendAfterPersist(m)
		}
	}
}

// tally acts on the votes so far; it reports whether the campaign ended.
func (r *Raft) tally() bool {
	switch r.members.voteResult(r.votes) {
	case voteWon:
		if r.role == RolePreCandidate {
			r.campaign(false, false)
		} else {
			r.becomeLeader()
		}
		return true
	case voteLost:
		r.becomeFollower(r.term, 0)
		return true
	}
	return false
}

// inLease: this node recently heard from a leader (or just started) and so
// ignores vote requests that could depose it (check-quorum stickiness; it is
// also what makes leader leases sound).
func (r *Raft) inLease() bool {
	return r.checkQuorum() && (r.lead != 0 || r.startupQuiet) && r.electionElapsed < r.cfg.ElectionTimeoutMinTicks
}

// Tick advances the logical clock by one tick.
func (r *Raft) Tick() {
	r.ticks++
	r.tick(r)
}

func tickElection(r *Raft) {
	r.electionElapsed++
	if r.electionElapsed >= r.cfg.ElectionTimeoutMinTicks {
		r.startupQuiet = false
	}
	if r.electionElapsed < r.electionTimeout {
		return
	}
	r.resetElectionTimer()
	if r.promotable() {
		r.campaign(!r.cfg.DisablePreVote, false)
	}
}

func tickHeartbeat(r *Raft) {
	r.electionElapsed++
	r.heartbeatElapsed++
	if r.transferee != 0 {
		r.transferElapsed++
		if r.transferElapsed >= r.cfg.ElectionTimeoutMinTicks {
			r.transferee, r.transferElapsed = 0, 0 // give up; proposals resume
		}
	}
	if r.electionElapsed >= r.cfg.ElectionTimeoutMinTicks {
		r.electionElapsed = 0
		if r.checkQuorum() {
			if err := r.quorumActive(); err != nil {
				r.failReadsWith(err)
				r.becomeFollower(r.term, 0)
				return
			}
		}
		for _, p := range r.prs {
			p.activePrev, p.active = p.active, p.id == r.id
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatIntervalTicks {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
	}
}

// quorumActive reports a QuorumError when the leader has not heard from a
// quorum of every half of the configuration this period.
func (r *Raft) quorumActive() error {
	for _, ids := range [][]uint64{r.members.Voters, r.members.Outgoing} {
		if len(ids) == 0 {
			continue
		}
		got := 0
		for _, id := range ids {
			if p := r.progress(id); p != nil && (p.active || id == r.id) {
				got++
			}
		}
		if need := len(ids)/2 + 1; got < need {
			return &QuorumError{Got: got, Total: len(ids), Need: need}
		}
	}
	return nil
}

// Step feeds one message from a peer. It returns nil when the message was
// handled; the typed errors (TermMismatchError, LogMismatchError,
// SnapshotTooOldError) report a message that Raft answered or dropped as it
// prescribes: drivers log them at debug level and carry on. Step copies
// whatever it keeps of m (entries, snapshot chunks), so m may alias a
// network buffer that is reused as soon as Step returns.
func (r *Raft) Step(m *wire.Message) error {
	switch {
	case m.Term > r.term:
		if (m.Type == wire.MsgVote || m.Type == wire.MsgPreVote) && !m.Transfer && r.inLease() {
			return nil // stick with the current leader
		}
		switch {
		case m.Type == wire.MsgPreVote:
		case m.Type == wire.MsgPreVoteResp && !m.Reject:
		case m.Type == wire.MsgAppend || m.Type == wire.MsgHeartbeat || m.Type == wire.MsgSnapshot:
			r.becomeFollower(m.Term, m.From)
		case m.Type == wire.MsgVote:
			// Adopting a newer term is not hearing from a leader or granting
			// a vote (Raft Figure 2): the election timer keeps running, so a
			// stale candidate cannot hold everyone's timers back forever.
			elapsed := r.electionElapsed
			r.becomeFollower(m.Term, 0)
			r.electionElapsed = elapsed
		default:
			r.becomeFollower(m.Term, 0)
		}
	case m.Term < r.term:
		switch m.Type {
		case wire.MsgAppend, wire.MsgHeartbeat, wire.MsgSnapshot:
			// Tell a deposed leader about the newer term.
			r.send(wire.Message{Type: wire.MsgAppendResp, To: m.From, Reject: true})
		case wire.MsgPreVote:
			r.send(wire.Message{Type: wire.MsgPreVoteResp, To: m.From, Reject: true})
		}
		return &TermMismatchError{Local: r.term, Remote: m.Term}
	}
	switch m.Type {
	case wire.MsgVote, wire.MsgPreVote:
		r.handleVote(m)
		return nil
	}
	err := r.step(r, m)
	r.checkInvariants()
	return err
}

func (r *Raft) handleVote(m *wire.Message) {
	pre := m.Type == wire.MsgPreVote
	canVote := r.vote == m.From || (r.vote == 0 && r.lead == 0) || (pre && m.Term > r.term)
	upToDate := r.log.isUpToDate(m.Index, m.LogTerm) || r.cfg.Bug == BugVoteIgnoresLog
	if !canVote || !upToDate {
		t := wire.MsgVoteResp
		if pre {
			t = wire.MsgPreVoteResp
		}
		r.send(wire.Message{Type: t, To: m.From, Reject: true})
		return
	}
	if pre {
		r.send(wire.Message{Type: wire.MsgPreVoteResp, To: m.From, Term: m.Term})
		return
	}
	r.electionElapsed = 0
	r.vote = m.From
	r.sendAfterPersist(wire.Message{Type: wire.MsgVoteResp, To: m.From})
}

func stepFollower(r *Raft, m *wire.Message) error {
	switch m.Type {
	case wire.MsgAppend:
		r.electionElapsed, r.lead = 0, m.From
		return r.handleAppend(m)
	case wire.MsgHeartbeat:
		r.electionElapsed, r.lead = 0, m.From
		r.commitTo(min(m.Commit, r.log.lastIndex()))
		// Index tells the leader how far this log reaches, so that it notices
		// a follower that lost entries it had acknowledged.
		r.send(wire.Message{Type: wire.MsgHeartbeatResp, To: m.From, Context: m.Context, Index: r.log.lastIndex()})
	case wire.MsgSnapshot:
		r.electionElapsed, r.lead = 0, m.From
		return r.handleSnapshot(m)
	case wire.MsgTimeoutNow:
		if r.members.IsVoter(r.id) {
			r.campaign(false, true)
		}
	case wire.MsgReadIndexResp:
		r.readStates = append(r.readStates, ReadState{Index: m.Index, Context: m.Context})
	}
	return nil
}

func stepCandidate(r *Raft, m *wire.Message) error {
	want := wire.MsgVoteResp
	if r.role == RolePreCandidate {
		want = wire.MsgPreVoteResp
	}
	switch m.Type {
	case wire.MsgAppend, wire.MsgHeartbeat, wire.MsgSnapshot:
		r.becomeFollower(m.Term, m.From)
		return stepFollower(r, m)
	case want:
		r.votes[m.From] = !m.Reject
		r.tally()
	}
	return nil
}

func (r *Raft) commitTo(i uint64) {
	if i > r.log.committed {
		r.log.committed = i
	}
}

func (r *Raft) handleAppend(m *wire.Message) error {
	if m.Index < r.log.committed {
		r.sendAfterPersist(wire.Message{Type: wire.MsgAppendResp, To: m.From, Index: r.log.committed})
		return nil
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		got, _ := r.log.term(m.Index)
		hint := r.log.findConflictByTerm(min(m.Index, r.log.lastIndex()), m.LogTerm)
		hintTerm, _ := r.log.term(hint)
		r.send(wire.Message{Type: wire.MsgAppendResp, To: m.From, Reject: true, Index: m.Index, Hint: hint, LogTerm: hintTerm})
		return &LogMismatchError{Index: m.Index, Expected: m.LogTerm, Got: got}
	}
	it := wire.NewEntryIter(m.Entries)
	n := uint64(0)
	for {
		e, raw, ok := it.Next()
		if !ok {
			break
		}
		n++
		if e.Index <= r.log.lastIndex() {
			if t, _ := r.log.term(e.Index); t == e.Term || (e.Index <= r.log.snapIndex) {
				continue
			}
			if r.cfg.Bug == BugKeepConflict {
				continue
			}
			r.log.truncateFrom(e.Index)
		}
		r.log.appendRaw(raw, e.Index, e.Term)
	}
	lastNew := m.Index + n
	r.commitTo(min(m.Commit, lastNew))
	ack := wire.Message{Type: wire.MsgAppendResp, To: m.From, Index: lastNew}
	if r.cfg.Bug == BugAckBeforePersist {
		r.send(ack)
		return nil
	}
	r.sendAfterPersist(ack)
	return nil
}

func (r *Raft) handleSnapshot(m *wire.Message) error {
	if m.Index <= r.log.committed {
		r.sendAfterPersist(wire.Message{Type: wire.MsgAppendResp, To: m.From, Index: r.log.committed})
		if m.Index < r.log.firstIndex() {
			return &SnapshotTooOldError{Index: m.Index, FirstIndex: r.log.firstIndex()}
		}
		return nil
	}
	if m.Offset == 0 {
		if r.log.matchTerm(m.Index, m.LogTerm) {
			// We hold the entry: the snapshot adds nothing but commitment.
			r.commitTo(m.Index)
			r.sendAfterPersist(wire.Message{Type: wire.MsgAppendResp, To: m.From, Index: m.Index})
			return nil
		}
		r.incoming = Snapshot{Meta: SnapshotMeta{Index: m.Index, Term: m.LogTerm}, Data: r.incoming.Data[:0:0]}
		mem, err := DecodeMembership(m.Meta)
		if err != nil {
			r.incoming = Snapshot{}
			return err
		}
		r.incoming.Meta.Membership = mem
	}
	in := &r.incoming
	if in.Meta.Index != m.Index || m.Offset != uint64(len(in.Data)) {
		have := uint64(len(in.Data))
		if in.Meta.Index != m.Index {
			have = 0
		}
		r.send(wire.Message{Type: wire.MsgSnapshotResp, To: m.From, Index: m.Index, Offset: have})
		return nil
	}
	in.Data = append(in.Data, m.Data...)
	if !m.Done {
		r.send(wire.Message{Type: wire.MsgSnapshotResp, To: m.From, Index: m.Index, Offset: uint64(len(in.Data))})
		return nil
	}
	s := *in
	r.incoming = Snapshot{}
	if r.cfg.Bug == BugSnapshotOffByOne {
		s.Meta.Index++
	}
	r.installSnapshot(s)
	r.sendAfterPersist(wire.Message{Type: wire.MsgAppendResp, To: m.From, Index: s.Meta.Index})
	return nil
}

func (r *Raft) installSnapshot(s Snapshot) {
	r.log.reset(s.Meta.Index, s.Meta.Term)
	r.snap = s
	r.snapMeta = AppendMembership(nil, s.Meta.Membership)
	r.members = s.Meta.Membership.clone()
	r.confHistory = nil
	r.resetProgress()
	r.toInstall = &s
}

func stepLeader(r *Raft, m *wire.Message) error {
	p := r.progress(m.From)
	if m.Type == wire.MsgReadIndex {
		r.readIndex(m.Context, m.From)
		return nil
	}
	if p == nil {
		return nil
	}
	p.active = true
	switch m.Type {
	case wire.MsgAppendResp:
		r.handleAppendResp(p, m)
	case wire.MsgHeartbeatResp:
		p.ackedRound = max(p.ackedRound, m.Context)
		r.releaseReads()
		if m.Context == r.round && m.Index < p.match && p.state != ProgressSnapshot {
			// An answer to the current round from a log that ends below what
			// the follower acknowledged: it lost entries (a node restored into
			// an empty data dir). Replication to it starts over with a probe;
			// without new writes nothing else would reach it. (Only the
			// current round counts, so a reordered old answer cannot do this.)
			p.match, p.sentCommit = 0, 0
			p.becomeProbe()
			p.next = m.Index + 1
		}
		switch {
		case p.state == ProgressSnapshot:
			r.sendSnapshotChunk(p)
		case p.match < r.log.lastIndex():
			// No acknowledgement since the previous heartbeat answer: the
			// Appends in flight were lost; probe again from match.
			if p.state == ProgressReplicate && p.match == p.matchAtHeartbeat {
				p.becomeProbe()
			}
			p.paused = false
			r.needBcast = true
		}
		p.matchAtHeartbeat = p.match
	case wire.MsgSnapshotResp:
		if p.state == ProgressSnapshot && m.Index == p.snapIndex && m.Offset >= p.snapOffset {
			p.snapOffset = m.Offset
			r.sendSnapshotChunk(p)
		}
	}
	return nil
}

func (r *Raft) handleAppendResp(p *progress, m *wire.Message) {
	if m.Reject {
		if p.state == ProgressReplicate && m.Index <= p.match ||
			p.state != ProgressReplicate && m.Index != p.next-1 {
			return // stale
		}
		// The answer to the current probe, at or below the index the follower
		// acknowledged, says its log now ends before it: it lost entries (a
		// node restored into an empty data dir, the guide's data-corruption
		// procedure). Its progress starts over; otherwise the probe would
		// repeat at match+1 forever. Forgetting an acknowledgement is safe:
		// commitment never moves back.
		if p.state == ProgressProbe && m.Index <= p.match && m.Hint < p.match {
			p.match, p.sentCommit = 0, 0
		}
		idx := m.Hint
		if m.LogTerm > 0 {
			idx = r.log.findConflictByTerm(m.Hint, m.LogTerm)
		}
		p.becomeProbe()
		p.next = max(min(m.Index, idx+1), p.match+1)
		r.needBcast = true
		return
	}
	if m.Index > p.match {
		p.match = m.Index
	}
	if p.next <= m.Index {
		p.next = m.Index + 1
	}
	p.freeInflight(m.Index)
	switch p.state {
	case ProgressProbe:
		p.becomeReplicate()
	case ProgressSnapshot:
		if p.match >= p.snapIndex {
			p.becomeProbe()
			p.paused = false
		}
	}
	r.maybeCommit()
	if p.sentCommit < r.log.committed {
		r.needBcast = true
	}
	if m.From == r.transferee && p.match == r.log.lastIndex() {
		r.sendTimeoutNow(m.From)
	}
	if p.next <= r.log.lastIndex() {
		r.needBcast = true
	}
}

// maybeCommit advances the commit index to what a quorum has stored, if
// that entry is of the current term (Raft §5.4.2: older entries commit only
// indirectly).
func (r *Raft) maybeCommit() {
	if self := r.progress(r.id); self != nil {
		self.match = r.log.stable
	}
	q := r.members.quorumIndex(func(id uint64) uint64 {
		if p := r.progress(id); p != nil {
			return p.match
		}
		return 0
	}, &r.scratch)
	if q <= r.log.committed || q > r.log.lastIndex() {
		return
	}
	if t, _ := r.log.term(q); t != r.term && r.cfg.Bug != BugCommitOldTerm {
		return
	}
	r.log.committed = q
	r.needBcast = true
	r.startReads()
}

// sendAppends sends p what it lacks, as many messages as the window allows.
func (r *Raft) sendAppends(p *progress) {
	for {
		if p.id == r.id || p.state == ProgressSnapshot || (p.state == ProgressProbe && p.paused) {
			return
		}
		if p.state == ProgressReplicate && p.inflightFull(r.cfg.MaxInflightBytes) {
			return
		}
		prev := p.next - 1
		prevTerm, ok := r.log.term(prev)
		if !ok {
			r.startSnapshot(p)
			return
		}
		last := r.log.lastIndex()
		hi := prev
		size := 0
		for hi < last {
			n := r.log.end(hi+1) - r.log.start(hi+1)
			if hi > prev && size+n > r.cfg.MaxMsgBytes {
				break
			}
			size += n
			hi++
		}
		if hi == prev && p.state == ProgressReplicate {
			r.sendCommit(p)
			return
		}
		ents, got, err := r.log.sliceForSend(prev+1, hi)
		if err != nil {
			// The stored entries cannot be read (a storage error the
			// driver reports on its own): the next heartbeat round or
			// acknowledgement tries again.
			return
		}
		if got < hi {
			size = r.log.end(got) - r.log.start(prev+1)
			hi = got
		}
		commit := r.log.committed
		r.send(wire.Message{Type: wire.MsgAppend, To: p.id, Index: prev, LogTerm: prevTerm, Commit: commit,
			Entries: ents, EntryCount: int(hi - prev)})
		p.sentCommit = commit
		if p.state == ProgressProbe {
			p.paused = true
			return
		}
		if hi == prev {
			return
		}
		p.addInflight(hi, size)
		p.next = hi + 1
	}
}

func (r *Raft) startSnapshot(p *progress) {
	p.state = ProgressSnapshot
	p.snapIndex, p.snapOffset = r.snap.Meta.Index, 0
	p.resetInflight()
	r.sendSnapshotChunk(p)
}

func (r *Raft) sendSnapshotChunk(p *progress) {
	if p.snapIndex != r.snap.Meta.Index {
		p.snapIndex, p.snapOffset = r.snap.Meta.Index, 0 // a newer snapshot replaced it
	}
	size := uint64(len(r.snap.Data))
	off := min(p.snapOffset, size)
	end := min(off+uint64(r.cfg.MaxSnapshotChunkBytes), size)
	r.send(wire.Message{Type: wire.MsgSnapshot, To: p.id, Index: r.snap.Meta.Index, LogTerm: r.snap.Meta.Term,
		Offset: off, Size: size, Done: end == size, Meta: r.snapMeta, Data: r.snap.Data[off:end]})
}

func (r *Raft) bcastHeartbeat() {
	r.round++
	r.roundSentTick[r.round%leaseRounds] = r.ticks
	r.needRound = false
	for i := range r.reads[:r.readsAssigned] {
		if r.reads[i].round == 0 {
			r.reads[i].round = r.round
		}
	}
	for _, p := range r.prs {
		if p.id == r.id {
			continue
		}
		r.send(wire.Message{Type: wire.MsgHeartbeat, To: p.id, Commit: min(p.match, r.log.committed), Context: r.round})
	}
	if self := r.progress(r.id); self != nil {
		self.ackedRound = r.round
	}
	r.releaseReads()
}

// sendTimeoutNow tells the transfer target to campaign at once. Its votes
// override the followers' leader stickiness, so from now on this leader's
// lease proves nothing: lease reads stay off for the rest of the term, even
// if the transfer is abandoned (the message may still arrive late).
func (r *Raft) sendTimeoutNow(to uint64) {
	r.sentTimeoutNow = true
	r.send(wire.Message{Type: wire.MsgTimeoutNow, To: to})
}
