package core

// ProgressState is how the leader replicates to one follower.
type ProgressState uint8

const (
	// ProgressProbe: one Append at a time until the follower's match is known.
	ProgressProbe ProgressState = iota
	// ProgressReplicate: optimistic pipelining within the in-flight window.
	ProgressReplicate
	// ProgressSnapshot: an InstallSnapshot is under way.
	ProgressSnapshot
)

func (s ProgressState) String() string {
	return [...]string{"probe", "replicate", "snapshot"}[s]
}

// progress is the leader's view of one member (itself included).
type progress struct {
	id          uint64
	match, next uint64
	state       ProgressState
	paused      bool // probe: an Append is out, wait for its answer or a heartbeat
	active      bool // heard from during the current check-quorum period
	activePrev  bool // ... during the previous one (status: RecentActive)
	sentCommit  uint64
	ackedRound  uint64 // highest heartbeat round it answered
	// matchAtHeartbeat: match when the previous heartbeat answer arrived.
	matchAtHeartbeat uint64

	// inflight window: last index and bytes of each unacknowledged Append.
	inflightLast  []uint64
	inflightBytes []int
	inflightHead  int
	inflightCount int
	inflightTotal int

	snapIndex  uint64 // ProgressSnapshot: the snapshot being sent
	snapOffset uint64 // bytes of it the follower has acknowledged
}

func newProgress(id uint64, maxInflight int) *progress {
	return &progress{id: id, inflightLast: make([]uint64, maxInflight), inflightBytes: make([]int, maxInflight)}
}

func (p *progress) inflightFull(maxBytes int) bool {
	return p.inflightCount == len(p.inflightLast) || p.inflightTotal >= maxBytes
}

func (p *progress) addInflight(last uint64, n int) {
	if p.inflightCount == len(p.inflightLast) {
		bug("in-flight window of %d overflowed", len(p.inflightLast))
	}
	k := (p.inflightHead + p.inflightCount) % len(p.inflightLast)
	p.inflightLast[k], p.inflightBytes[k] = last, n
	p.inflightCount++
	p.inflightTotal += n
}

// freeInflight releases every message whose entries are acknowledged.
func (p *progress) freeInflight(upTo uint64) {
	for p.inflightCount > 0 && p.inflightLast[p.inflightHead] <= upTo {
		p.inflightTotal -= p.inflightBytes[p.inflightHead]
		p.inflightHead = (p.inflightHead + 1) % len(p.inflightLast)
		p.inflightCount--
	}
}

func (p *progress) resetInflight() {
	p.inflightHead, p.inflightCount, p.inflightTotal = 0, 0, 0
}

func (p *progress) becomeProbe() {
	p.state, p.paused = ProgressProbe, false
	p.next = p.match + 1
	p.resetInflight()
}

func (p *progress) becomeReplicate() {
	p.state, p.paused = ProgressReplicate, false
	p.next = p.match + 1
	p.matchAtHeartbeat = p.match
	p.resetInflight()
}
