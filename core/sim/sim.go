// Package sim is Kraft's deterministic Raft simulator: N nodes running the
// real core.Raft in one goroutine, with a simulated clock, network and disk,
// every choice drawn from one seeded source. Faults: message drop,
// duplication, reordering and delay; symmetric and asymmetric partitions;
// crashes that lose unsynced disk writes, and restarts; slow nodes;
// membership changes, leadership transfers and snapshots while all that
// happens. After every event it checks Raft's safety properties (election
// safety, leader append-only, log matching, leader completeness, state
// machine safety); at the end it checks the clients' history for
// linearizability with porcupine. A failure names the seed, and the seed
// alone replays the run.
package sim

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/wire"
)

// Time is simulated time in microseconds.
type Time int64

const (
	Microsecond Time = 1
	Millisecond      = 1000 * Microsecond
	Second           = 1000 * Millisecond
)

// Options describe one run. Profile(seed) draws them from a seed.
type Options struct {
	Seed   uint64
	Voters int // founding voters: 3, 5 or 7
	Spares int // extra nodes that may join through membership changes

	Duration Time // faults and clients run this long; then a quiet period
	Quiet    Time // fault-free time at the end for operations to finish
	Tick     Time // interval between Tick calls on every node

	ElectionMinTicks, ElectionMaxTicks, HeartbeatTicks int
	PreVote, CheckQuorum, LeaseReads                   bool

	LatencyMin, LatencyMax Time // one-way network delay, uniform
	DiskMin, DiskMax       Time // write (and sync) latency, uniform
	DropPct, DupPct        int  // per message, percent

	Crashes, Partitions, SlowNodes, Membership, Transfers bool
	SnapshotEvery                                         int // applied entries between snapshots; 0: never
	Clients                                               int
	FaultGapMin, FaultGapMax                              Time // between faults, uniform
	DownMax                                               Time // a crashed node restarts within this
	// CrashAfterAckPct: percent chance that a node crashes right after its
	// disk write completes and the acknowledgements that waited on it
	// leave (votes, append acks), restarting within 30 ms: the adversary
	// for persist-before-acknowledge mistakes.
	CrashAfterAckPct int
	MaxMsgBytes      int // per Append; 0: 600
	// LogCacheBytes > 0 bounds each node's in-memory log: older entries
	// are read back from the node's simulated disk (core.Config.LogReader).
	LogCacheBytes int
	Bug           core.Bug

	// Trace prints every event (debugging a replay).
	Trace bool
}

// Profile draws a fault profile from the seed: cluster size, timing and
// which faults are on.
func Profile(seed uint64) Options {
	rng := rand.New(rand.NewPCG(seed, 0x6b726166))
	o := Options{
		Seed: seed, Voters: []int{3, 3, 5, 5, 7}[rng.IntN(5)], Spares: 2,
		Duration: Time(2+rng.IntN(3)) * Second, Quiet: 2 * Second, Tick: 10 * Millisecond,
		ElectionMinTicks: 10, ElectionMaxTicks: 20, HeartbeatTicks: 3,
		PreVote: rng.IntN(4) != 0, CheckQuorum: rng.IntN(4) != 0,
		LatencyMin: 1 * Millisecond, LatencyMax: Time(2+rng.IntN(20)) * Millisecond,
		DiskMin: 200 * Microsecond, DiskMax: Time(1+rng.IntN(10)) * Millisecond,
		DropPct: rng.IntN(8), DupPct: rng.IntN(5),
		Crashes: rng.IntN(3) != 0, Partitions: rng.IntN(3) != 0, SlowNodes: rng.IntN(3) == 0,
		Membership: rng.IntN(2) == 0, Transfers: rng.IntN(2) == 0,
		SnapshotEvery: []int{0, 5, 20, 50}[rng.IntN(4)], Clients: 2 + rng.IntN(3),
		FaultGapMin: 100 * Millisecond, FaultGapMax: 500 * Millisecond, DownMax: 850 * Millisecond,
	}
	o.LeaseReads = o.CheckQuorum && rng.IntN(3) == 0
	o.LogCacheBytes = []int{0, 0, 300, 3000}[rng.IntN(4)]
	if seed%2 == 0 {
		harsh(&o, seed)
	}
	return o
}

// harsh is the fault mix of even seeds: crash-heavy with short outages,
// crashes right after acknowledgements, frequent faults, one entry per
// Append, and mostly no pre-vote with narrow timeouts so that split votes
// and competing logs are common.
func harsh(o *Options, seed uint64) {
	o.PreVote = seed%8 == 0
	o.ElectionMaxTicks = o.ElectionMinTicks + 3
	o.Crashes, o.Partitions = true, true
	o.FaultGapMin, o.FaultGapMax = 20*Millisecond, 150*Millisecond
	o.DownMax = 150 * Millisecond
	o.CrashAfterAckPct = 25
	o.LatencyMax = 40 * Millisecond
	o.MaxMsgBytes = 1
}

// ReplayCommand is the command that replays one seed.
func ReplayCommand(seed uint64, bug core.Bug) string {
	tags := ""
	if invariantsBuild {
		tags = " -tags invariants"
	}
	b := ""
	if bug != core.BugNone {
		b = fmt.Sprintf(" -sim.bug=%d", bug)
	}
	return fmt.Sprintf("go test%s ./core/sim -run 'TestSimReplay$' -count=1 -v -sim.seed=%d%s", tags, seed, b)
}

type eventKind uint8

const (
	evTick eventKind = iota
	evDeliver
	evDiskDone
	evRestart
	evFault
	evClient
	evHeal
	evLiveness
)

type event struct {
	at   Time
	seq  uint64
	kind eventKind
	node int // index into nodes
	inc  int // node incarnation the event belongs to
	msg  wire.Message
	arg  int
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// disk is what survives a crash: only completed writes.
type disk struct {
	hs      core.HardState
	snap    core.Snapshot
	entries [][]byte // records after snap.Meta.Index
}

type write struct {
	hs        core.HardState
	hsChanged bool
	first     uint64
	entries   []byte
	snap      *core.Snapshot
	after     []wire.Message
	last      uint64
	lastTerm  uint64
}

type node struct {
	id          uint64
	idx         int
	r           *core.Raft
	up          bool
	started     bool // has ever run (spares start when added)
	inc         int
	disk        disk
	writes      []write // not yet durable, FIFO
	syncing     int     // how many of writes the sync under way covers (0: idle)
	kv          kvState
	leaderT     uint64 // term this node was last seen leading (append-only check)
	leadLog     uint64 // its last index then
	leadLogTerm uint64
	leadFrom    uint64 // invariants build: the leader's terms from leadFrom on
	leadTerms   []uint64
	reads       []pendingRead
}

type pendingRead struct {
	op    int
	index uint64
}

// kvState is the replicated state machine: a few registers.
type kvState struct {
	vals    [numKeys]uint64
	applied uint64
}

const numKeys = 3

func (k *kvState) hash() uint64 {
	var b [8 * numKeys]byte
	for i, v := range k.vals {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return xxhash.Sum64(b[:])
}

func (k *kvState) encode() []byte {
	b := make([]byte, 0, 8*numKeys)
	for _, v := range k.vals {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func (k *kvState) restore(b []byte, index uint64) {
	k.vals = [numKeys]uint64{}
	for i := range k.vals {
		if len(b) >= 8*(i+1) {
			k.vals[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
	}
	k.applied = index
}

// Command payload: client u32, op u32, key u8, value u64.
func encodeCmd(client, op int, key int, val uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(client))
	b = binary.LittleEndian.AppendUint32(b, uint32(op))
	b = append(b, byte(key))
	return binary.LittleEndian.AppendUint64(b, val)
}

func decodeCmd(b []byte) (client, op, key int, val uint64) {
	return int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:])), int(b[8]), binary.LittleEndian.Uint64(b[9:])
}

type entryID struct {
	term, hash, prevTerm uint64
}

type applyRec struct {
	term, hash, state uint64
	set               bool
}

// Sim is one simulation run.
type Sim struct {
	o     Options
	rng   *rand.Rand
	now   Time
	seq   uint64
	q     eventQueue
	nodes []*node

	blocked [][]bool // blocked[a][b]: messages a→b are dropped
	slowIdx int

	leaders   map[uint64]uint64     // term → leader
	logIDs    map[[2]uint64]entryID // (index, term) → identity
	applied   []applyRec            // index → what was applied there
	maxCommit uint64

	// Liveness: half-way through the quiet period a leader must exist, and
	// by the end every voter must have applied its last index of then.
	liveLeader *node
	liveIndex  uint64

	clients []*client
	ops     []op
	opSeq   int

	trace []string
	err   error
	Stats Stats
}

// Stats summarise a run.
type Stats struct {
	Events, Messages, Elections, Crashes, Partitions, ConfChanges, Transfers, Snapshots, SnapshotsSent int
	OpsOK, OpsUnknown, Reads                                                                           int
	CacheReads                                                                                         int // entries read back from disk after eviction
	MaxCommit                                                                                          uint64
}

// Run executes one simulation and returns the first violation found.
func Run(o Options) (st Stats, err error) {
	s := newSim(o)
	defer func() {
		if p := recover(); p != nil {
			err = s.fail("panic: %v", p)
			st = s.Stats
		}
	}()
	err = s.run()
	return s.Stats, err
}

func newSim(o Options) *Sim {
	s := &Sim{o: o, rng: rand.New(rand.NewPCG(o.Seed, 0x73696d)),
		leaders: map[uint64]uint64{}, logIDs: map[[2]uint64]entryID{}}
	n := o.Voters + o.Spares
	s.blocked = make([][]bool, n)
	for i := range s.blocked {
		s.blocked[i] = make([]bool, n)
	}
	s.slowIdx = -1
	var voters []uint64
	for i := 0; i < o.Voters; i++ {
		voters = append(voters, uint64(i+1))
	}
	for i := 0; i < n; i++ {
		nd := &node{id: uint64(i + 1), idx: i}
		if i < o.Voters {
			b := core.Bootstrap(voters)
			nd.disk.hs, nd.disk.entries = b.HardState, [][]byte{b.Entries}
		}
		s.nodes = append(s.nodes, nd)
		if i < o.Voters {
			s.start(nd)
		}
	}
	for c := 0; c < o.Clients; c++ {
		s.clients = append(s.clients, &client{id: c, target: s.rng.IntN(o.Voters)})
		s.push(&event{at: Time(s.rng.IntN(100)) * Millisecond, kind: evClient, arg: c})
	}
	if o.Quiet > 0 {
		s.push(&event{at: o.Duration + o.Quiet/2, kind: evLiveness})
	}
	if o.Crashes || o.Partitions || o.SlowNodes || o.Membership || o.Transfers {
		s.push(&event{at: 300*Millisecond + Time(s.rng.IntN(300))*Millisecond, kind: evFault})
	}
	return s
}

func (s *Sim) push(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

func (s *Sim) tracef(format string, args ...any) {
	line := fmt.Sprintf("%8.3fms ", float64(s.now)/float64(Millisecond)) + fmt.Sprintf(format, args...)
	if s.o.Trace {
		fmt.Println(line)
	}
	s.trace = append(s.trace, line)
	if len(s.trace) > 400 {
		s.trace = s.trace[200:]
	}
}

func (s *Sim) fail(format string, args ...any) error {
	if s.err == nil {
		for _, n := range s.nodes {
			if n.up {
				st := n.r.Status()
				s.tracef("node %d: %v term %d lead %d commit %d applied %d last %d/%d snap %d members %v", n.id, st.Role, st.Term, st.Leader, st.Commit, st.Applied, st.LastIndex, st.LastTerm, st.SnapshotIndex, st.Membership)
			}
		}
		s.err = fmt.Errorf("seed %d: at %.3fms: %s\nlast events:\n  %s\nreplay: %s",
			s.o.Seed, float64(s.now)/float64(Millisecond), fmt.Sprintf(format, args...),
			strings.Join(s.trace[max(0, len(s.trace)-40):], "\n  "), ReplayCommand(s.o.Seed, s.o.Bug))
	}
	return s.err
}

func (s *Sim) config(id uint64) core.Config {
	c := core.DefaultConfig(id, rand.NewPCG(s.o.Seed, id<<32|uint64(s.Stats.Crashes)))
	c.ElectionTimeoutMinTicks, c.ElectionTimeoutMaxTicks = s.o.ElectionMinTicks, s.o.ElectionMaxTicks
	c.HeartbeatIntervalTicks = s.o.HeartbeatTicks
	c.DisablePreVote, c.DisableCheckQuorum = !s.o.PreVote, !s.o.CheckQuorum
	c.LeaseReads, c.LeaseMarginTicks = s.o.LeaseReads, 2
	c.MaxMsgBytes = 600
	if s.o.MaxMsgBytes > 0 {
		c.MaxMsgBytes = s.o.MaxMsgBytes
	}
	c.MaxInflightMsgs = 4
	c.MaxInflightBytes = 4096
	c.MaxSnapshotChunkBytes = 16
	c.MaxCommittedBytesPerReady = 1000
	c.MaxUncommittedEntries = 64
	c.Bug = s.o.Bug
	return c
}

// start (re)creates a node's Raft from its disk.
func (s *Sim) start(n *node) {
	st := core.InitialState{HardState: n.disk.hs, Snapshot: n.disk.snap}
	for _, e := range n.disk.entries {
		st.Entries = append(st.Entries, e...)
	}
	cfg := s.config(n.id)
	if s.o.LogCacheBytes > 0 {
		cfg.LogCacheBytes, cfg.LogReader = s.o.LogCacheBytes, diskReader{s, n}
	}
	r, err := core.New(cfg, st)
	if err != nil {
		s.fail("node %d restart: %v", n.id, err)
		return
	}
	n.r, n.up, n.started = r, true, true
	n.inc++
	n.writes, n.syncing, n.reads = nil, 0, nil
	n.kv.restore(n.disk.snap.Data, n.disk.snap.Meta.Index)
	n.leaderT = 0
	s.push(&event{at: s.now + Time(s.rng.IntN(int(s.o.Tick))), kind: evTick, node: n.idx, inc: n.inc})
}

func (s *Sim) run() error {
	end := s.o.Duration + s.o.Quiet
	healed := false
	for s.q.Len() > 0 && s.err == nil {
		e := heap.Pop(&s.q).(*event)
		if e.at > end {
			break
		}
		s.now = e.at
		if !healed && s.now >= s.o.Duration {
			healed = true
			s.healAll()
		}
		s.Stats.Events++
		s.handle(e)
		if s.err == nil {
			s.checkSafety()
		}
	}
	if s.err != nil {
		return s.err
	}
	s.Stats.MaxCommit = s.maxCommit
	if err := s.checkLiveness(); err != nil {
		return err
	}
	return s.checkLinearizable()
}

func (s *Sim) handle(e *event) {
	switch e.kind {
	case evTick:
		n := s.nodes[e.node]
		if !n.up || n.inc != e.inc {
			return
		}
		n.r.Tick()
		s.drain(n)
		s.push(&event{at: s.now + s.o.Tick, kind: evTick, node: n.idx, inc: n.inc})
	case evDeliver:
		n := s.nodes[e.node]
		if !n.up {
			return
		}
		s.tracef("%d→%d %v t%d i%d lt%d c%d h%d n%d rej=%v ctx%d off%d", e.msg.From, e.msg.To, e.msg.Type, e.msg.Term, e.msg.Index, e.msg.LogTerm, e.msg.Commit, e.msg.Hint, e.msg.EntryCount, e.msg.Reject, e.msg.Context, e.msg.Offset)
		_ = n.r.Step(&e.msg)
		s.drain(n)
	case evDiskDone:
		n := s.nodes[e.node]
		if !n.up || n.inc != e.inc {
			return
		}
		s.completeSync(n)
	case evRestart:
		n := s.nodes[e.node]
		if n.up {
			return
		}
		s.tracef("restart %d", n.id)
		s.start(n)
		s.drain(n)
	case evFault:
		s.fault()
		if s.now < s.o.Duration {
			s.push(&event{at: s.now + s.o.FaultGapMin + Time(s.rng.Int64N(int64(s.o.FaultGapMax-s.o.FaultGapMin)+1)), kind: evFault})
		}
	case evHeal:
		s.heal(e.arg)
	case evLiveness:
		s.livenessMark()
	case evClient:
		s.clientStep(s.clients[e.arg], e.inc)
	}
}

// drain takes every Ready the node has and acts on it.
func (s *Sim) drain(n *node) {
	for s.err == nil && n.up && n.r.HasReady() {
		rd := n.r.Ready()
		s.checkNewEntries(n, &rd)
		if rd.Snapshot != nil {
			s.installSnapshot(n, rd.Snapshot)
		}
		s.applyCommitted(n, rd.CommittedEntries)
		for _, m := range rd.Messages {
			s.sendMsg(n, m)
		}
		for _, rs := range rd.ReadStates {
			s.readState(n, rs)
		}
		w := write{hs: rd.HardState, hsChanged: rd.HardStateChanged, first: rd.FirstIndex, entries: rd.Entries,
			snap: rd.Snapshot, after: slices.Clone(rd.MessagesAfterPersist), last: rd.LastIndex, lastTerm: rd.LastTerm}
		if rd.MustPersist() || len(w.after) > 0 {
			s.queueWrite(n, w)
		}
		n.r.Advance(rd)
		s.maybeSnapshot(n)
	}
}

// queueWrite hands a Ready's write to the node's disk. The disk does group
// commit, as the WAL writer does: writes queued while a sync is under way
// all complete with the next sync.
func (s *Sim) queueWrite(n *node, w write) {
	n.writes = append(n.writes, w)
	if n.syncing == 0 {
		s.startSync(n)
	}
}

func (s *Sim) startSync(n *node) {
	lat := s.o.DiskMin + Time(s.rng.Int64N(int64(s.o.DiskMax-s.o.DiskMin)+1))
	if n.idx == s.slowIdx {
		lat += 20 * Millisecond
	}
	n.syncing = len(n.writes)
	s.push(&event{at: s.now + lat, kind: evDiskDone, node: n.idx, inc: n.inc})
}

func (s *Sim) completeSync(n *node) {
	for k := n.syncing; k > 0 && n.up && s.err == nil; k-- {
		w := n.writes[0]
		n.writes = n.writes[1:]
		s.completeWrite(n, w)
	}
	if !n.up {
		return
	}
	n.syncing = 0
	s.drain(n)
	if len(n.writes) > 0 && n.syncing == 0 {
		s.startSync(n)
	}
}

func (s *Sim) completeWrite(n *node, w write) {
	d := &n.disk
	if w.snap != nil && w.snap.Meta.Index > d.snap.Meta.Index {
		d.snap = *w.snap
		d.entries = nil
	}
	if len(w.entries) > 0 {
		first := d.snap.Meta.Index + 1
		keep := int(w.first) - int(first)
		if keep < 0 {
			keep = 0
		}
		if keep < len(d.entries) {
			d.entries = d.entries[:keep]
		}
		it := wire.NewEntryIter(w.entries)
		for {
			e, raw, ok := it.Next()
			if !ok {
				break
			}
			if e.Index <= d.snap.Meta.Index {
				continue
			}
			if e.Index != first+uint64(len(d.entries)) {
				s.fail("node %d disk: entry %d appended after %d", n.id, e.Index, first+uint64(len(d.entries))-1)
				return
			}
			d.entries = append(d.entries, raw)
		}
	}
	if w.hsChanged {
		d.hs = w.hs
	}
	for _, m := range w.after {
		s.sendMsg(n, m)
	}
	if len(w.after) > 0 && s.o.CrashAfterAckPct > 0 && s.now < s.o.Duration && s.rng.IntN(100) < s.o.CrashAfterAckPct {
		s.crash(n, Millisecond+Time(s.rng.IntN(30))*Millisecond)
		return
	}
	if w.last > 0 {
		n.r.Persisted(w.last, w.lastTerm)
	}
}

// diskReader serves a node's evicted log entries from its simulated disk.
// The core asks only for entries it reported stable, so an entry missing
// from the disk is a bug in the core's cache and fails the run.
type diskReader struct {
	s *Sim
	n *node
}

func (d diskReader) Entries(lo, hi uint64, maxBytes int) ([]byte, error) {
	first := d.n.disk.snap.Meta.Index + 1
	if lo < first || hi <= lo || lo-first >= uint64(len(d.n.disk.entries)) {
		d.s.fail("node %d: log cache asked for entries [%d, %d) but the disk holds [%d, %d)",
			d.n.id, lo, hi, first, first+uint64(len(d.n.disk.entries)))
		return nil, fmt.Errorf("entries [%d, %d) not on disk", lo, hi)
	}
	var out []byte
	for i := lo; i < hi && i-first < uint64(len(d.n.disk.entries)); i++ {
		raw := d.n.disk.entries[i-first]
		if len(out) > 0 && len(out)+len(raw) > maxBytes {
			break
		}
		out = append(out, raw...)
	}
	d.s.Stats.CacheReads++
	return out, nil
}

func (s *Sim) maybeSnapshot(n *node) {
	if s.o.SnapshotEvery == 0 || n.kv.applied < n.r.Status().SnapshotIndex+uint64(s.o.SnapshotEvery) {
		return
	}
	idx := n.kv.applied
	data := n.kv.encode()
	if err := n.r.CreateSnapshot(idx, data); err != nil {
		s.fail("node %d CreateSnapshot(%d): %v", n.id, idx, err)
		return
	}
	t, _ := n.r.Term(idx)
	st := n.r.Status()
	n.disk.snap = core.Snapshot{Meta: core.SnapshotMeta{Index: idx, Term: t, Membership: st.Membership}, Data: data}
	// Snapshots are taken right after applying, so the membership the core
	// has applied is the one at idx.
	var kept [][]byte
	for _, raw := range n.disk.entries {
		if e, _, _ := wire.DecodeEntry(raw); e.Index > idx {
			kept = append(kept, raw)
		}
	}
	n.disk.entries = kept
	s.Stats.Snapshots++
}

func (s *Sim) installSnapshot(n *node, snap *core.Snapshot) {
	n.kv.restore(snap.Data, snap.Meta.Index)
	s.Stats.SnapshotsSent++
	s.tracef("node %d installs snapshot %d/%d", n.id, snap.Meta.Index, snap.Meta.Term)
	if int(snap.Meta.Index) < len(s.applied) {
		rec := s.applied[snap.Meta.Index]
		if rec.set && rec.state != n.kv.hash() {
			s.fail("node %d: snapshot at %d restores a state that differs from the one applied there", n.id, snap.Meta.Index)
		}
	}
}

func (s *Sim) sendMsg(from *node, m wire.Message) {
	to := int(m.To) - 1
	if to < 0 || to >= len(s.nodes) {
		return
	}
	s.Stats.Messages++
	if s.blocked[from.idx][to] || s.rng.IntN(100) < s.o.DropPct {
		return
	}
	// The message goes through the wire codec, as on a real network: the
	// receiver steps a decoded frame (entry checksums and index continuity
	// verified), never the sender's memory.
	frame := wire.AppendMessage(nil, &m)
	f, _, err := wire.ParseFrame(frame, len(frame))
	if err == nil {
		err = wire.DecodeMessage(f, &m)
	}
	if err != nil {
		s.fail("node %d sent a message that does not decode: %v", from.id, err)
		return
	}
	copies := 1
	if s.rng.IntN(100) < s.o.DupPct {
		copies = 2
	}
	for c := 0; c < copies; c++ {
		lat := s.o.LatencyMin + Time(s.rng.Int64N(int64(s.o.LatencyMax-s.o.LatencyMin)+1))
		if from.idx == s.slowIdx || to == s.slowIdx {
			lat += 15 * Millisecond
		}
		s.push(&event{at: s.now + lat, kind: evDeliver, node: to, msg: m})
	}
}
