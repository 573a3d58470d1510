package core

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

var (
	// ErrStopped: the node is closed or stopped by a fatal storage error.
	ErrStopped = errors.New("kraft/core: node stopped")
	// ErrProposalDropped: another leader's entry took the proposal's place
	// before it committed. It was not applied; retrying is safe.
	ErrProposalDropped = errors.New("kraft/core: proposal dropped by a leadership change; retry")
	// ErrCleared: an operator cleared the pending requests
	// (kraft-ctl clear-pending-requests). The outcome of a cleared write is
	// unknown: it may still commit.
	ErrCleared = errors.New("kraft/core: request cleared by an operator; outcome unknown")
	// ErrOutcomeUnknown: a leadership change left this node unable to tell
	// whether the proposal will commit (its index was reused here while
	// another node may still hold its entry, or a snapshot from the leader
	// covered it). Retry it only if applying it twice is harmless, or
	// through a session that deduplicates (as kraftd's clients do).
	ErrOutcomeUnknown = errors.New("kraft/core: proposal outcome unknown after a leadership change")
)

// Node runs one Raft replica: the loop goroutine owns the core state
// machine and the WAL's write side, the apply goroutine owns the state
// machine. See doc.go for the drive loop.
type Node struct {
	cfg   NodeConfig
	clock tickClock // loop goroutine: when the core was last ticked
	log   *slog.Logger
	wal   *wal.WAL
	sm    sm.StateMachine

	propC  chan *proposal
	recvC  chan *inbound
	spareC chan *inbound // stepped messages with large buffers (Appends), for Step to reuse (see inbound)
	smallC chan *inbound // stepped messages of at most smallInbound bytes, likewise
	readC  chan *readWaiter
	ctlC   chan func(r *Raft)
	applyC chan applyTask
	// waiterBufs carries applied tasks' waiter slices back from the apply
	// goroutine to the loop, so that a batch's waiters are gathered
	// without growing a fresh slice from nothing (~9 allocations per
	// batch of a few hundred writes).
	waiterBufs chan []*proposal
	stopC      chan struct{}
	wg         sync.WaitGroup

	stopOnce sync.Once
	fatalErr atomic.Pointer[error]

	// Loop goroutine only.
	raft        *Raft
	waiters     waitQueue              // proposals in the log, by index
	reads       map[uint64]*readWaiter // by read context
	nextReadCtx uint64
	persistQ    []persistMark
	commitQ     []commitMark
	held        []heldMessages
	savedHS     HardState
	batch       [][]byte    // proposals gathered for the next Propose
	batchProps  []*proposal // their waiters, in the same order
	batchTimer  *time.Timer // armed while a partial batch waits (BatchTimeout)
	batchArmed  bool
	loggedRole  Role // last role and leader logged (logRoleChange)
	loggedLead  uint64

	// Apply goroutine, published for readers.
	applied    atomic.Uint64
	appliedMu  sync.Mutex
	appliedSig chan struct{} // closed and replaced whenever applied advances
	snapReq    chan chan snapResult
	snapBusy   atomic.Bool
	snapDone   chan struct{} // a snapshot's writer finished (capacity 1)
	lastSnap   atomic.Uint64

	// ReadAsync callbacks waiting for the apply to reach their index, in
	// index order (read indexes never decrease on a node); runReads calls them.
	readyMu   sync.Mutex
	ready     []*readWaiter
	readyKick chan struct{}
	// loopDone is closed when the loop has returned: the loop is what adds
	// to ready, so runReads fails what is left only after that.
	loopDone chan struct{}

	// Counters.
	inboxDropped atomic.Uint64
	batches      atomic.Uint64 // proposal batches handed to the core
	batchEntries atomic.Uint64 // proposals in them
}

type proposal struct {
	data        []byte
	index, term uint64
	res         sm.Result
	err         error
	done        chan struct{} // closed by finish (Propose)
	to          Completer     // called by finish instead (ProposeTo, ProposeAsync)
	trace       *Trace        // nil unless traced
}

// Trace is the path of one traced proposal through this node.
type Trace struct {
	Index, Term uint64
	Received    time.Time // Propose called
	Appended    time.Time // in the leader's log (the loop took it)
	Committed   time.Time // handed to the apply goroutine as committed
	Applied     time.Time // the state machine returned its result
}

func (p *proposal) finish(res sm.Result, err error) {
	if p.to != nil {
		p.to.Complete(res, err) // the last use of p: the callee may reuse it (ProposeIn)
		return
	}
	p.res, p.err = res, err
	close(p.done)
}

type readWaiter struct {
	index uint64
	err   error
	done  chan struct{} // closed by complete (Read)
	to    ReadCompleter // called by complete instead (ReadTo, ReadAsync)
	n     *Node         // for to: where to wait for the apply
}

// complete reports the read's outcome (index and err set): Read's waiter
// is woken; ReadAsync's callback runs now if the state machine has applied
// the read index, else once the apply reaches it (runReads).
func (r *readWaiter) complete() {
	if r.to == nil {
		close(r.done)
		return
	}
	if r.err != nil || r.n.applied.Load() >= r.index {
		r.to.ReadDone(r.index, r.err)
		return
	}
	r.n.readyMu.Lock()
	r.n.ready = append(r.n.ready, r)
	r.n.readyMu.Unlock()
	select {
	case r.n.readyKick <- struct{}{}:
	default:
	}
}

type persistMark struct {
	index, term uint64
	appended    time.Time
}

// commitMark times a leader's appended batch until it commits.
type commitMark struct {
	index             uint64
	appended, durable time.Time
}

// heldMessages wait until the log is durable up to index (Ready.
// MessagesAfterPersist: votes and acknowledgements).
type heldMessages struct {
	index uint64
	msgs  []wire.Message
}

type applyTask struct {
	snapshot *Snapshot // restore before applying entries
	entries  []byte
	waiters  []*proposal // for indexes in entries, ascending
}

type snapResult struct {
	index uint64
	err   error
}

// NewNode opens the storage, restores the newest snapshot, replays the log
// into the core and starts the loop and apply goroutines.
func NewNode(cfg NodeConfig) (*Node, error) {
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Raft.Rand == nil {
		var seed [16]byte
		rand.Read(seed[:])
		cfg.Raft.Rand = mrand.NewPCG(binary.LittleEndian.Uint64(seed[:]), binary.LittleEndian.Uint64(seed[8:]))
	}
	log := cfg.Logger.With("component", "raft", "node", cfg.Raft.ID)
	opts := cfg.WAL
	if opts.Logger == nil {
		opts.Logger = log
	}
	w, err := wal.Open(cfg.WALDir, opts)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: log, wal: w, sm: cfg.StateMachine,
		propC:      make(chan *proposal, cfg.ProposalQueueLen),
		recvC:      make(chan *inbound, cfg.InboxLen),
		spareC:     make(chan *inbound, spareInbound),
		smallC:     make(chan *inbound, spareSmallInbound),
		readC:      make(chan *readWaiter, cfg.ProposalQueueLen),
		ctlC:       make(chan func(*Raft), 16),
		applyC:     make(chan applyTask, 64),
		waiterBufs: make(chan []*proposal, 8),
		stopC:      make(chan struct{}),
		reads:      make(map[uint64]*readWaiter),
		appliedSig: make(chan struct{}),
		snapReq:    make(chan chan snapResult, 1),
		snapDone:   make(chan struct{}, 1),
		readyKick:  make(chan struct{}, 1),
		loopDone:   make(chan struct{}),
	}
	st, err := n.recover()
	if err != nil {
		w.Close()
		return nil, err
	}
	if cfg.Raft.LogReader == nil {
		cfg.Raft.LogReader = w
		n.cfg.Raft.LogReader = w
	}
	n.raft, err = New(cfg.Raft, st)
	if err != nil {
		w.Close()
		return nil, err
	}
	n.savedHS = st.HardState
	n.wg.Add(3)
	go n.runLoop()
	go n.runApply()
	go n.runReads()
	if cfg.OnMembership != nil {
		n.control(func(r *Raft) { cfg.OnMembership(r.Status().Membership) })
	}
	return n, nil
}

// recover builds the core's initial state from the newest snapshot and the
// log after it, restoring the state machine from the snapshot.
func (n *Node) recover() (InitialState, error) {
	var st InitialState
	snap, err := n.loadSnapshotChain() // snapshot_chain.go: the newest file and its bases
	switch {
	case errors.Is(err, wal.ErrNoSnapshot):
	case err != nil:
		return st, err
	default:
		st.Snapshot = snap
		n.applied.Store(snap.Meta.Index)
		n.lastSnap.Store(snap.Meta.Index)
	}
	hs := n.wal.HardState()
	st.HardState = HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit}
	if st.HardState.Term < st.Snapshot.Meta.Term {
		// A data dir emptied and restored from a snapshot file (the guide's
		// data-corruption procedure): the node's term and vote were lost
		// with it. It resumes at the snapshot's term with no vote. (If it
		// had voted in a later term before the wipe, it could vote again in
		// that term: restore a node while the cluster has a stable leader.)
		st.HardState.Term, st.HardState.Vote = st.Snapshot.Meta.Term, 0
		n.log.Warn("hard state lost: resuming at the restored snapshot's term", "term", st.HardState.Term, "snapshot", st.Snapshot.Meta.Index)
	}
	first := max(n.wal.FirstIndex(), st.Snapshot.Meta.Index+1)
	if last := n.wal.LastIndex(); last >= first {
		// Copy out of the mapping: the core keeps these bytes for as long as
		// the entries stay in its log, beyond the mapping's lifetime rule.
		// The pieces alias the segments' mappings, which stay until the WAL
		// changes, so they are gathered first and copied once into a buffer
		// of their exact size: appending them one by one grew and copied the
		// buffer again and again (3.1 M entries of 128 B: peak RSS 3.4 GB).
		var pieces [][]byte
		total := 0
		for lo := first; lo <= last; {
			b, err := n.wal.Entries(lo, last+1, 64<<20)
			if err != nil {
				return st, err
			}
			pieces = append(pieces, b)
			total += len(b)
			lo += uint64(countRecords(b))
		}
		st.Entries = make([]byte, 0, total)
		for _, b := range pieces {
			st.Entries = append(st.Entries, b...)
		}
		n.wal.ReleaseMapped() // the copy is all the core reads from here
	}
	// The commit index rides along with term and vote and need not be
	// durable: it may name entries a power loss took (committed by the
	// others, never acknowledged by this node). Resume from what is here;
	// the leader tells the rest.
	if last := max(st.Snapshot.Meta.Index, n.wal.LastIndex()); st.HardState.Commit > last {
		n.log.Info("commit index beyond the recovered log; resuming from the log's end", "commit", st.HardState.Commit, "last", last)
		st.HardState.Commit = last
	}
	empty := st.Snapshot.Meta.Index == 0 && len(st.Entries) == 0 && hs == (wal.HardState{})
	if empty && len(n.cfg.Bootstrap) > 0 {
		// The founding entry and hard state are made durable before the
		// node says anything, like any other log state.
		st = Bootstrap(n.cfg.Bootstrap)
		if err := n.wal.Append(st.Entries); err != nil {
			return st, err
		}
		hs := st.HardState
		if err := n.wal.SaveHardState(wal.HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit}); err != nil {
			return st, err
		}
		if err := n.wal.Sync(); err != nil {
			return st, err
		}
		n.log.Info("bootstrapped a new cluster", "voters", n.cfg.Bootstrap)
		return st, nil
	}
	if empty {
		n.log.Info("empty storage and no bootstrap: waiting to be added to a cluster")
	} else {
		n.log.Info("recovered", "snapshot", st.Snapshot.Meta.Index, "first", first, "last", n.wal.LastIndex(), "term", hs.Term, "commit", hs.Commit)
	}
	return st, nil
}

func countRecords(b []byte) int {
	it := wire.NewEntryIter(b)
	c := 0
	for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
		c++
	}
	return c
}

// Step hands a message from a peer to the node. It copies what the message
// refers to (the caller's buffer is reused) and never blocks: when the
// inbox is full the message is dropped, as a lossy network would.
func (n *Node) Step(m *wire.Message) {
	spares := n.spareC
	size := len(m.Entries) + len(m.Meta) + len(m.Data)
	if size <= smallInbound {
		spares = n.smallC
	}
	var in *inbound
	select {
	case in = <-spares:
	default:
		in = new(inbound)
	}
	in.m = *m
	if size > 0 {
		buf := in.buf[:0]
		if cap(buf) < size {
			buf = make([]byte, 0, size)
		}
		buf = append(buf, m.Entries...)
		buf = append(buf, m.Meta...)
		buf = append(buf, m.Data...)
		in.buf = buf
		in.m.Entries = buf[:len(m.Entries):len(m.Entries)]
		in.m.Meta = buf[len(m.Entries) : len(m.Entries)+len(m.Meta) : len(m.Entries)+len(m.Meta)]
		in.m.Data = buf[len(m.Entries)+len(m.Meta):]
	}
	select {
	case n.recvC <- in:
	default:
		n.inboxDropped.Add(1)
	}
}

// inbound is a peer message as Step copied it for the loop. Once the loop
// has stepped one, the core has copied what it keeps (Raft.Step), so every
// inbound goes back to Step for the next message, its buffer with it (a
// fresh buffer per Append, with its zeroing and page faults, was 5% of a
// follower's CPU at 1,024 clients). All kinds go back, not only Appends:
// a spare taken by a heartbeat and dropped took its Append-sized buffer
// with it, and the next Appends grew a new one (at 1,024 clients ~9% of a
// follower's Appends allocated, and the leader allocated an inbound for
// every acknowledgement).
type inbound struct {
	m   wire.Message
	buf []byte // holds m's Entries, Meta and Data
}

// spareInbound and maxSpareInbound bound what the spares of large
// messages hold: a few Appends' worth, none larger than a usual batch.
// Small messages (heartbeats, acknowledgements, forwarded read requests and
// their answers) have spares of their own, many more of them: under a read
// load a leader steps hundreds between two turns of its loop, and with 16
// spares shared with the Appends it allocated an inbound for most of them
// (perf/results/speedups.md, item 55).
const (
	spareInbound      = 16
	maxSpareInbound   = 1 << 20
	smallInbound      = 4 << 10
	spareSmallInbound = 512
)

// reuse offers a stepped message's inbound to Step, unless its buffer is
// larger than the spares may hold (a snapshot chunk's, an outsized Append's).
func (n *Node) reuse(in *inbound) {
	if cap(in.buf) > maxSpareInbound {
		return
	}
	in.m = wire.Message{}
	poisonInbound(in.buf[:cap(in.buf)])
	spares := n.spareC
	if cap(in.buf) <= smallInbound {
		spares = n.smallC
	}
	select {
	case spares <- in:
	default:
	}
}

// poisonInbound fills a reused buffer with garbage under the invariants
// tag: were the core to keep bytes of a stepped Append, the tests would
// see them change instead of stale bytes that still look right.
func poisonInbound(b []byte) {
	if invariantsOn {
		for i := range b {
			b[i] = 0x5a
		}
	}
}

// Propose replicates cmd and returns the state machine's result once it is
// applied on this node. On a follower it fails with *NotLeaderError.
// A context error means the outcome is unknown.
func (n *Node) Propose(ctx context.Context, cmd []byte) (sm.Result, error) {
	res, _, err := n.propose1(ctx, &proposal{data: cmd, done: make(chan struct{})})
	return res, err
}

// ErrQueueFull: ProposeAsync found the node's proposal queue full (a
// burst beyond ProposalQueueLen); retry later, like a pending-limit refusal.
var ErrQueueFull = errors.New("kraft/core: proposal queue full")

// ProposeAsync is Propose without waiting: it queues cmd and returns at
// once; done is called exactly once with the outcome, on one of the node's
// goroutines (so it must be quick and must not call back into the node
// and wait; when the node is stopping, done may run on a caller of
// ProposeAsync or ReadAsync with ErrStopped, so it must not take a lock
// that caller holds). It never blocks: when the queue is full it returns
// ErrQueueFull and done is not called. There is no deadline: a caller that
// gives up must treat the outcome as unknown, as with a Propose whose
// context ended. For servers that answer many clients from an event loop,
// it saves a goroutine, a context and a channel per write.
func (n *Node) ProposeAsync(cmd []byte, done func(sm.Result, error)) error {
	return n.ProposeTo(cmd, completerFunc(done))
}

// completerFunc is ProposeAsync's done as a Completer (a func in an
// interface allocates nothing).
type completerFunc func(sm.Result, error)

func (f completerFunc) Complete(res sm.Result, err error) { f(res, err) }

// Completer receives the outcome of a ProposeTo: ProposeAsync's done as
// an interface, with the same rules.
type Completer interface {
	Complete(res sm.Result, err error)
}

// ProposeTo is ProposeAsync reporting to c: a server that keeps state per
// request can pass that state instead of a closure over it, which saves an
// allocation per write (kraftd's leader made 5.2 per write).
func (n *Node) ProposeTo(cmd []byte, c Completer) error {
	return n.ProposeIn(new(Proposal), cmd, c)
}

// Proposal is room for one proposal in a caller's own per-request state
// (see ProposeIn). Its zero value is ready to use.
type Proposal struct{ p proposal }

// ProposeIn is ProposeTo with the node's record of the proposal kept in p
// instead of an allocation of its own: per-request state that embeds a
// Proposal and implements Completer proposes with one allocation, its
// own (kraftd's pending write does). The node holds p from the call until
// it calls c.Complete, and never touches p after that call (c.Complete may
// hand p to be reused at once), or not at all when ProposeIn returns an
// error; until then the caller must not use p for another proposal.
func (n *Node) ProposeIn(p *Proposal, cmd []byte, c Completer) error {
	p.p = proposal{data: cmd, to: c}
	if trySend(n.propC, &p.p) {
		n.drainIfStopped()
		return nil
	}
	return n.queueFullOrStopped()
}

// trySend is a non-blocking send on one channel. The Async calls try it
// before looking at stopC: a select over the queue, stopC and default
// locks both channels every time (selectgo was 2.7% of a leader's CPU at
// 1,024 clients, called once per request). A request queued on a stopped
// node is answered by drainIfStopped, as one that raced Close always was.
func trySend[T any](c chan T, v T) bool {
	select {
	case c <- v:
		return true
	default:
		return false
	}
}

// queueFullOrStopped is why a request found no room in its queue.
func (n *Node) queueFullOrStopped() error {
	select {
	case <-n.stopC:
		return n.stoppedErr()
	default:
		return ErrQueueFull
	}
}

// ProposeTraced is Propose that also reports when the proposal reached
// each stage (kraft-ctl trace-request).
func (n *Node) ProposeTraced(ctx context.Context, cmd []byte) (sm.Result, Trace, error) {
	p := &proposal{data: cmd, done: make(chan struct{}), trace: &Trace{Received: time.Now()}}
	res, queued, err := n.propose1(ctx, p)
	if queued {
		<-p.done // the node writes the trace until it finishes p, whatever ctx does
	}
	return res, *p.trace, err
}

// propose1 queues p and waits for its outcome; queued reports whether p
// reached the queue (the node finishes every queued proposal once, also
// when it stops).
func (n *Node) propose1(ctx context.Context, p *proposal) (res sm.Result, queued bool, err error) {
	select {
	case n.propC <- p:
		n.drainIfStopped()
	case <-ctx.Done():
		return sm.Result{}, false, ctx.Err()
	case <-n.stopC:
		return sm.Result{}, false, n.stoppedErr()
	}
	select {
	case <-p.done:
		return p.res, true, p.err
	case <-ctx.Done():
		return sm.Result{}, true, ctx.Err()
	case <-n.stopC:
		return sm.Result{}, true, n.stoppedErr()
	}
}

// Read makes the local state machine ready for a read of the given
// consistency and returns the applied index it reflects. Linearizable and
// lease reads go through ReadIndex (lease reads answer from the leader's
// lease when the core is configured for them); stale reads return at once.
func (n *Node) Read(ctx context.Context, c wire.Consistency) (uint64, error) {
	if c == wire.ReadStale {
		return n.applied.Load(), nil
	}
	r := &readWaiter{done: make(chan struct{})}
	select {
	case n.readC <- r:
		n.drainIfStopped()
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopC:
		return 0, n.stoppedErr()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopC:
		return 0, n.stoppedErr()
	}
	if r.err != nil {
		return 0, r.err
	}
	return r.index, n.WaitApplied(ctx, r.index)
}

// ReadAsync is Read without waiting: done is called exactly once with the
// applied index the read may be served at (the state machine has applied
// it), or an error, on one of the node's goroutines (so it must be quick
// and must not wait on the node; when the node is stopping, done may run
// on a caller of ReadAsync or ProposeAsync with ErrStopped, as with
// ProposeAsync). Stale reads
// call done at once. It never blocks: a full queue returns ErrQueueFull
// and done is not called. Reads queued together share one heartbeat round,
// as with Read.
func (n *Node) ReadAsync(c wire.Consistency, done func(index uint64, err error)) error {
	return n.ReadTo(c, readFunc(done))
}

// readFunc is ReadAsync's done as a ReadCompleter.
type readFunc func(uint64, error)

func (f readFunc) ReadDone(index uint64, err error) { f(index, err) }

// ReadCompleter receives the outcome of a ReadTo: ReadAsync's done as an
// interface, with the same rules.
type ReadCompleter interface {
	ReadDone(index uint64, err error)
}

// ReadTo is ReadAsync reporting to c, as ProposeTo is to ProposeAsync: a
// server that keeps state per request passes it instead of a closure. The
// node calls c.ReadDone once and does not use c after that call, so c may
// be reused from then on (kraftd's pending reads are).
func (n *Node) ReadTo(consistency wire.Consistency, c ReadCompleter) error {
	if consistency == wire.ReadStale {
		c.ReadDone(n.applied.Load(), nil)
		return nil
	}
	if trySend(n.readC, &readWaiter{to: c, n: n}) {
		n.drainIfStopped()
		return nil
	}
	return n.queueFullOrStopped()
}

// runReads calls the callbacks of ReadAsync reads whose index the apply
// has reached.
func (n *Node) runReads() {
	defer n.wg.Done()
	var batch []*readWaiter
	for {
		n.appliedMu.Lock()
		sig := n.appliedSig
		n.appliedMu.Unlock()
		applied := n.applied.Load()
		n.readyMu.Lock()
		k := 0
		for k < len(n.ready) && n.ready[k].index <= applied {
			k++
		}
		batch = append(batch[:0], n.ready[:k]...)
		n.ready = n.ready[:copy(n.ready, n.ready[k:])]
		pending := len(n.ready)
		n.readyMu.Unlock()
		for _, r := range batch {
			r.to.ReadDone(r.index, nil)
		}
		if len(batch) > 0 && n.cfg.AfterReads != nil {
			n.cfg.AfterReads()
		}
		clear(batch)
		if pending == 0 {
			select {
			case <-n.readyKick:
				continue
			case <-n.loopDone:
			}
		} else {
			select {
			case <-sig:
				continue
			case <-n.loopDone:
			}
		}
		n.readyMu.Lock()
		left := n.ready
		n.ready = nil
		n.readyMu.Unlock()
		for _, r := range left {
			r.to.ReadDone(0, n.stoppedErr())
		}
		return
	}
}

// WaitApplied blocks until the state machine has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.appliedMu.Lock()
		sig := n.appliedSig
		n.appliedMu.Unlock()
		if n.applied.Load() >= index {
			return nil
		}
		select {
		case <-sig:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stopC:
			return n.stoppedErr()
		}
	}
}

// Applied is the index of the last entry applied to the state machine.
func (n *Node) Applied() uint64 { return n.applied.Load() }

// control runs f on the loop goroutine and waits for it.
func (n *Node) control(f func(r *Raft)) error {
	done := make(chan struct{})
	select {
	case n.ctlC <- func(r *Raft) { f(r); close(done) }:
	case <-n.stopC:
		return n.stoppedErr()
	}
	select {
	case <-done:
		return nil
	case <-n.stopC:
		return n.stoppedErr()
	}
}

// Status returns the core's status with this node's applied index.
func (n *Node) Status() (Status, error) {
	var st Status
	err := n.control(func(r *Raft) { st = r.Status() })
	st.Applied = n.applied.Load()
	return st, err
}

// ChangeMembership proposes ccs and waits until the change is applied here.
func (n *Node) ChangeMembership(ctx context.Context, ccs ...ConfChange) error {
	var pending uint64
	var err error
	if cerr := n.control(func(r *Raft) {
		if err = r.ProposeConfChange(ccs...); err == nil {
			pending = r.Status().PendingConfIndex
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	return n.WaitApplied(ctx, pending)
}

// AddVoter, AddLearner and RemoveServer are the single-node changes.
func (n *Node) AddVoter(ctx context.Context, id uint64) error {
	return n.ChangeMembership(ctx, ConfChange{Op: ConfAddVoter, NodeID: id})
}

func (n *Node) AddLearner(ctx context.Context, id uint64) error {
	return n.ChangeMembership(ctx, ConfChange{Op: ConfAddLearner, NodeID: id})
}

func (n *Node) RemoveServer(ctx context.Context, id uint64) error {
	return n.ChangeMembership(ctx, ConfChange{Op: ConfRemoveNode, NodeID: id})
}

// ClearPendingConfChange lifts a stuck membership change's guard.
func (n *Node) ClearPendingConfChange() error {
	var err error
	if cerr := n.control(func(r *Raft) { err = r.ClearPendingConfChange() }); cerr != nil {
		return cerr
	}
	return err
}

// TransferLeadership hands leadership to id and waits until a leader other
// than this node is known (or ctx ends).
func (n *Node) TransferLeadership(ctx context.Context, id uint64) error {
	var err error
	if cerr := n.control(func(r *Raft) { err = r.TransferLeadership(id) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	for {
		st, err := n.Status()
		if err != nil {
			return err
		}
		if st.Leader != 0 && st.Leader != n.cfg.Raft.ID {
			if st.Leader != id {
				return fmt.Errorf("kraft/core: leadership went to node %d, not %d", st.Leader, id)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Snapshot takes a snapshot now and returns its index. If one is being
// written already (an automatic one), it waits for that one and then takes
// its own of what was applied meanwhile, so the index it returns covers
// everything applied when it was called.
func (n *Node) Snapshot(ctx context.Context) (uint64, error) {
	res := make(chan snapResult, 1)
	select {
	case n.snapReq <- res:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopC:
		return 0, n.stoppedErr()
	}
	select {
	case r := <-res:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopC:
		return 0, n.stoppedErr()
	}
}

// Err returns the fatal error that stopped the node, if any.
func (n *Node) Err() error {
	if p := n.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Done is closed when the node stops (Close or a fatal error).
func (n *Node) Done() <-chan struct{} { return n.stopC }

func (n *Node) stoppedErr() error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrStopped, err)
	}
	return ErrStopped
}

// fail stops the node after a fatal error (a storage failure): continuing
// could acknowledge what is not durable.
func (n *Node) fail(err error) {
	if n.fatalErr.CompareAndSwap(nil, &err) {
		n.log.Error("fatal: stopping the node", "error", err.Error())
	}
	n.stopOnce.Do(func() { close(n.stopC) })
}

// Close stops the node and closes its storage. Outstanding calls return
// ErrStopped.
func (n *Node) Close() error {
	n.stopOnce.Do(func() { close(n.stopC) })
	n.wg.Wait()
	err := n.wal.Close()
	if errors.Is(err, wal.ErrClosed) {
		err = nil
	}
	return err
}

// LogBytes sums the record bytes of entries lo..hi held in the WAL (the
// same bytes the core keeps in memory for that range).
func (n *Node) LogBytes(lo, hi uint64) (int64, error) {
	var total int64
	for lo <= hi && lo != 0 {
		b, err := n.wal.Entries(lo, hi+1, 64<<20)
		if err != nil {
			return total, err
		}
		total += int64(len(b))
		lo += uint64(countRecords(b))
	}
	return total, nil
}

// WALDir and SnapshotDir are where the node's files live.
func (n *Node) WALDir() string { return n.cfg.WALDir }

// SnapshotFiles lists the snapshot files, oldest first.
func (n *Node) SnapshotFiles() ([]wal.SnapshotMeta, error) { return n.wal.Snapshots() }

// LastSnapshotIndex is the index of the newest snapshot taken or installed.
func (n *Node) LastSnapshotIndex() uint64 { return n.lastSnap.Load() }

// SnapshotInProgress reports whether a snapshot is being written.
func (n *Node) SnapshotInProgress() bool { return n.snapBusy.Load() }

// SetBatching changes BatchSize and BatchTimeout of the running node (a
// configuration reload); the next batch uses them.
func (n *Node) SetBatching(size int, timeout time.Duration) error {
	if size < 1 || timeout < 0 {
		return fmt.Errorf("kraft/core: batch size %d must be positive and timeout %v not negative", size, timeout)
	}
	return n.control(func(*Raft) { n.cfg.BatchSize, n.cfg.BatchTimeout = size, timeout })
}

// SetPendingLimits changes the core's MaxUncommittedEntries and
// MaxUncommittedBytes of the running node (a configuration reload).
// Lowering them refuses new proposals until the backlog drains below;
// nothing already accepted is dropped.
func (n *Node) SetPendingLimits(entries, bytes int) error {
	if entries < 1 || bytes < 1 {
		return fmt.Errorf("kraft/core: pending limits %d entries, %d bytes must be positive", entries, bytes)
	}
	return n.control(func(r *Raft) { r.cfg.MaxUncommittedEntries, r.cfg.MaxUncommittedBytes = entries, bytes })
}

// BatchStats are counts since start: batches of proposals handed to the
// core and the proposals in them.
type BatchStats struct {
	Batches, Proposals uint64
}

// Batches returns the node's batching counters.
func (n *Node) Batches() BatchStats {
	return BatchStats{Batches: n.batches.Load(), Proposals: n.batchEntries.Load()}
}

// WALStats are the node's WAL counters since start.
type WALStats struct {
	// Syncs: completed sync rounds (group commits: one fdatasync per
	// dirty segment covers every append before it). Syncs/proposals is
	// the syncs paid per write.
	Syncs uint64
	// SegmentsRecycled: segments written again instead of fresh ones
	// (wal.Options.RecycleSegments).
	SegmentsRecycled uint64
	// SegmentsReadBack: recycled segments that were read back whole to
	// checksum their sectors (those sealed before the node started; see
	// wal.WAL.SegmentsReadBack).
	SegmentsReadBack uint64
}

// WALStats returns the node's WAL counters.
func (n *Node) WALStats() WALStats {
	return WALStats{
		Syncs:            n.wal.SyncRounds(),
		SegmentsRecycled: n.wal.SegmentsRecycled(),
		SegmentsReadBack: n.wal.SegmentsReadBack(),
	}
}

// LogCache is the memory of the core's in-memory log (see
// Config.LogCacheBytes): record bytes held, the buffer's capacity, the
// first index held (older entries are read from the WAL), and how many of
// its buffers reused the memory of evicted ones.
type LogCache struct {
	Bytes, Capacity int
	FirstIndex      uint64
	Limit           int
	ReusedChunks    uint64
}

// LogCache reports the in-memory log's size.
func (n *Node) LogCache() (LogCache, error) {
	var lc LogCache
	err := n.control(func(r *Raft) {
		lc.Bytes, lc.Capacity = r.log.cachedBytes()
		lc.FirstIndex, lc.Limit = r.log.cacheFirst, r.log.cacheBytes
		lc.ReusedChunks = r.log.reusedChunks
	})
	return lc, err
}

// InboxDropped counts peer messages dropped because the inbox was full.
func (n *Node) InboxDropped() uint64 { return n.inboxDropped.Load() }

// ---- loop goroutine ----

const maxDrain = 4096

func (n *Node) runLoop() {
	defer n.wg.Done()
	defer close(n.applyC)
	defer close(n.loopDone)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	n.clock = tickClock{interval: n.cfg.TickInterval, at: time.Now(), maxCatchUp: max(1, n.cfg.Raft.ElectionTimeoutMinTicks/3)}
	n.batchTimer = time.NewTimer(time.Hour)
	n.batchTimer.Stop()
	defer n.batchTimer.Stop()
	for {
		var batchDue <-chan time.Time
		if n.batchArmed {
			batchDue = n.batchTimer.C
		}
		select {
		case <-n.stopC:
			n.failWaiters(n.stoppedErr())
			return
		case <-ticker.C:
			n.tickToNow()
		case p := <-n.propC:
			n.tickToNow()
			n.propose(p)
		case <-batchDue:
			n.tickToNow()
			n.batchArmed = false
			n.flushBatch()
		case in := <-n.recvC:
			n.step(in)
			n.drainInbox()
			n.tickToNow()
		case r := <-n.readC:
			n.tickToNow()
			n.read(r)
		case f := <-n.ctlC:
			n.tickToNow()
			f(n.raft)
		case <-n.wal.Durable():
			n.tickToNow()
			n.onDurable()
		}
		// What the apply goroutine finished with, the log may write over.
		n.raft.ReleaseThrough(n.applied.Load())
		if err := n.processReady(); err != nil {
			// Nothing more after a fatal error or a dropped apply task:
			// continuing could acknowledge what is not durable, or apply
			// with a gap.
			if err != errStopping {
				n.fail(err)
			}
			n.failWaiters(n.stoppedErr())
			return
		}
	}
}

// errStopping: processReady stopped because the node is stopping (Close),
// not because of a fault.
var errStopping = errors.New("kraft/core: stopping")

// tickToNow ticks the core once per TickInterval passed on the monotonic
// clock since the last tick, before the loop handles an input, so that
// election timeouts, check-quorum and leases run at wall-clock speed. The
// ticker only wakes the loop: the Go runtime can deliver a 1 ms tick 10 ms
// late and drop those in between (seen on 2 CPUs with gnet's event loops
// blocked in epoll_wait holding every P; a follower that clients kept busy
// counted 14 ticks per 100 ms, held its lease 7x too long and made 3-node
// elections take 600-1100 ms, perf/results/elections.md).
//
// When more than one tick is owed (the loop or the whole process was held
// up), the peer messages already queued are stepped first: they arrived
// before now, and a heartbeat or its answer that waited out the stall must
// count before the stall's ticks do, or a busy node would campaign against
// (or a leader step down from) a cluster that was talking to it all along.
func (n *Node) tickToNow() {
	due := n.clock.due(time.Now())
	if due > 1 {
		n.drainInbox()
	}
	for range due {
		n.raft.Tick()
	}
}

// drainInbox steps the peer messages queued now (at most maxDrain).
func (n *Node) drainInbox() {
	for i := 0; i < maxDrain; i++ {
		select {
		case in := <-n.recvC:
			n.step(in)
			continue
		default:
		}
		return
	}
}

// tickClock counts the tick intervals that passed since the last call.
//
// Lateness is paid back in full up to maxCatchUp ticks at a time; beyond
// that (the loop or the whole process stalled: CPU starvation, a GC pause,
// SIGSTOP) the rest is forgiven. Small, frequent lateness (the ticker
// delivered 10-20 ms late on a busy 2-CPU host) thus costs no wall-clock
// accuracy, while one long stall does not fire every timer at once: with
// the full stall counted, nodes of a loaded 3-node cluster on 2 CPUs
// stepped down and campaigned every few seconds (kraftbench, 1,024
// clients), each one a 0.5-2 s outage. The price is that after a long
// stall the core's clock is behind the wall clock by the forgiven part,
// as it was with tick-per-delivery; see --lease-reads.
type tickClock struct {
	interval   time.Duration
	at         time.Time // when the last tick delivered was due
	maxCatchUp int       // see above: ElectionTimeoutMinTicks/3 in a node
}

// due returns how many ticks are owed at now.
func (c *tickClock) due(now time.Time) int {
	k := int(now.Sub(c.at) / c.interval)
	if k <= 0 {
		return 0
	}
	if k > c.maxCatchUp {
		c.at = now
		return c.maxCatchUp
	}
	c.at = c.at.Add(time.Duration(k) * c.interval)
	return k
}

func (n *Node) step(in *inbound) {
	m := &in.m
	if err := n.raft.Step(m); err != nil {
		n.log.Debug("message refused", "type", m.Type.String(), "from", m.From, "error", err.Error())
	}
	n.reuse(in)
}

// propose adds p and every proposal already queued behind it to the
// batch, up to BatchSize, which becomes one Propose: one WAL append and
// one Append per follower. A full batch goes at once; a partial one goes
// at once too unless BatchTimeout is set, in which case it waits at most
// that long (from its first proposal's arrival) for more proposals.
func (n *Node) propose(p *proposal) {
	limit := n.cfg.BatchSize
	n.batch, n.batchProps = append(n.batch, p.data), append(n.batchProps, p)
	for len(n.batch) < limit {
		select {
		case q := <-n.propC:
			n.batch, n.batchProps = append(n.batch, q.data), append(n.batchProps, q)
			continue
		default:
		}
		break
	}
	if len(n.batch) < limit && n.cfg.BatchTimeout > 0 {
		if !n.batchArmed {
			n.batchTimer.Reset(n.cfg.BatchTimeout)
			n.batchArmed = true
		}
		return
	}
	if n.batchArmed {
		n.batchTimer.Stop()
		n.batchArmed = false
	}
	n.flushBatch()
}

// flushBatch proposes the gathered batch to the core.
func (n *Node) flushBatch() {
	if len(n.batch) == 0 {
		return
	}
	// Admit what the pending limits allow; the rest fails at once with the
	// typed error rather than sinking the whole batch.
	if k := n.raft.fitPending(n.batch); k < len(n.batch) && n.raft.Role() == RoleLeader {
		err := n.raft.pendingError()
		for _, q := range n.batchProps[k:] {
			q.finish(sm.Result{}, err)
		}
		clear(n.batch[k:])
		clear(n.batchProps[k:])
		n.batch, n.batchProps = n.batch[:k], n.batchProps[:k]
		if k == 0 {
			return
		}
	}
	n.batches.Add(1)
	n.batchEntries.Add(uint64(len(n.batch)))
	first, err := n.raft.Propose(n.batch)
	if err != nil {
		for _, q := range n.batchProps {
			q.finish(sm.Result{}, err)
		}
		n.resetBatch()
		return
	}
	term, _ := n.raft.Term(first)
	now := time.Now()
	for i, q := range n.batchProps {
		q.index, q.term = first+uint64(i), term
		if q.trace != nil {
			q.trace.Index, q.trace.Term, q.trace.Appended = q.index, term, now
		}
		n.waiters.push(q)
	}
	n.resetBatch()
}

func (n *Node) resetBatch() {
	clear(n.batch)
	clear(n.batchProps)
	n.batch, n.batchProps = n.batch[:0], n.batchProps[:0]
}

func (n *Node) read(r *readWaiter) {
	n.nextReadCtx++
	ctx := n.nextReadCtx
	if err := n.raft.ReadIndex(ctx); err != nil {
		r.err = err
		r.complete()
		return
	}
	n.reads[ctx] = r
	// Reads queued behind this one share its heartbeat round.
	for {
		select {
		case q := <-n.readC:
			n.nextReadCtx++
			if err := n.raft.ReadIndex(n.nextReadCtx); err != nil {
				q.err = err
				q.complete()
				continue
			}
			n.reads[n.nextReadCtx] = q
			continue
		default:
		}
		return
	}
}

func (n *Node) processReady() error {
	for n.raft.HasReady() {
		rd := n.raft.Ready()
		membershipMayChange, err := n.handleReady(&rd)
		if err != nil {
			return err
		}
		n.raft.Advance(rd)
		if n.cfg.OnMembership != nil && membershipMayChange {
			n.cfg.OnMembership(n.raft.Status().Membership)
		}
		n.logRoleChange(rd.HardState.Term)
	}
	return nil
}

// logRoleChange logs this node's role and known leader when they change
// (elections, step-downs, a new leader heard of): what an operator reads
// first after an incident.
func (n *Node) logRoleChange(term uint64) {
	role, lead := n.raft.Role(), n.raft.Leader()
	if role == n.loggedRole && lead == n.loggedLead {
		return
	}
	if role == RoleCandidate || role == RolePreCandidate {
		n.log.Info("campaigning", "role", role.String(), "term", term, "previous_leader", n.loggedLead)
	} else {
		n.log.Info("role changed", "role", role.String(), "term", term, "leader", lead, "previous_role", n.loggedRole.String(), "previous_leader", n.loggedLead)
	}
	n.loggedRole, n.loggedLead = role, lead
}

// handleReady persists, sends and applies one Ready in the order the core's
// contract requires (see Ready's doc in the core).
// It reports whether the membership may have changed (a snapshot, or a
// committed conf-change entry), for OnMembership.
func (n *Node) handleReady(rd *Ready) (membershipMayChange bool, err error) {
	confChanged := false
	if rd.Snapshot != nil {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return false, err
		}
	}
	hs := rd.HardState
	if rd.HardStateChanged && (hs.Term != n.savedHS.Term || hs.Vote != n.savedHS.Vote) {
		// Term and vote must be durable before any message leaves (a
		// candidate's requests count its own vote); the commit index rides
		// along (it need not be durable: it is re-learned, see recover).
		if err := n.wal.SaveHardState(wal.HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit}); err != nil {
			return false, err
		}
		n.savedHS = hs
	}
	// The leader's Appends leave before its own write: followers write in
	// parallel with it, and its pwrite is off their critical path.
	n.sendAll(rd.Messages)
	if len(rd.Entries) > 0 {
		if rd.FirstIndex <= n.wal.LastIndex() {
			if err := n.wal.TruncateSuffix(rd.FirstIndex); err != nil {
				return false, err
			}
			n.dropHeldFrom(rd.FirstIndex)
			n.commitQ = n.commitQ[:0]
		}
		if err := n.wal.Append(rd.Entries); err != nil {
			return false, err
		}
		now := time.Now()
		n.persistQ = append(n.persistQ, persistMark{rd.LastIndex, rd.LastTerm, now})
		if n.cfg.OnCommitLatency != nil && n.raft.Role() == RoleLeader {
			n.commitQ = append(n.commitQ, commitMark{index: rd.LastIndex, appended: now})
		}
	}
	// Votes and acknowledgements promise that the log is durable through
	// LastIndex: also in a Ready without entries, whose acknowledgement may
	// cover entries of an earlier Ready still being synced. The hard state
	// was saved synchronously above.
	if len(rd.MessagesAfterPersist) > 0 {
		if len(n.held) == 0 && n.wal.DurableIndex() >= rd.LastIndex {
			n.sendAll(rd.MessagesAfterPersist)
		} else {
			n.held = append(n.held, heldMessages{index: rd.LastIndex, msgs: slices.Clone(rd.MessagesAfterPersist)})
		}
	}
	if len(rd.CommittedEntries) > 0 || rd.Snapshot != nil {
		task := applyTask{entries: rd.CommittedEntries, snapshot: rd.Snapshot}
		select {
		case task.waiters = <-n.waiterBufs:
		default:
		}
		it := wire.NewEntryIter(rd.CommittedEntries)
		var first, last uint64
		for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
			if first == 0 {
				first = e.Index
			}
			last = e.Index
			if e.Type == wire.EntryConfChange || e.Type == wire.EntryConfChangeJoint {
				confChanged = true
			}
		}
		if rd.Snapshot != nil {
			n.waiters.passOver(rd.Snapshot.Meta.Index)
		}
		if last > 0 {
			task.waiters = n.waiters.takeCommitted(first, last, task.waiters)
			for _, p := range task.waiters {
				if p.trace != nil {
					p.trace.Committed = time.Now()
				}
			}
		}
		n.observeCommit(last)
		select {
		case n.applyC <- task:
		case <-n.stopC:
			// Stopping with the apply queue full: the task is dropped, so
			// its waiters are answered here, and the loop returns at once
			// (a later task would reach the apply goroutine with a gap).
			for _, p := range task.waiters {
				p.finish(sm.Result{}, n.stoppedErr())
			}
			return false, errStopping
		}
	}
	for _, rs := range rd.ReadStates {
		if r := n.reads[rs.Context]; r != nil {
			delete(n.reads, rs.Context)
			r.index, r.err = rs.Index, rs.Err
			r.complete()
		}
	}
	if len(rd.ReadStates) > 0 && n.cfg.AfterReads != nil {
		n.cfg.AfterReads()
	}
	// A follower has nothing to do while its entries sync but wait to
	// acknowledge them: it syncs them itself when the writer goroutine is
	// idle, saving the hand-over there and back (a leader's loop keeps
	// taking acknowledgements and proposals meanwhile instead).
	if len(rd.Entries) > 0 && n.wal.DurableIndex() < rd.LastIndex && n.raft.Role() != RoleLeader {
		if _, err := n.wal.SyncNow(); err != nil {
			return false, err
		}
	}
	// With the writer faster than this loop, the entries may already be durable.
	if len(rd.Entries) > 0 && n.wal.DurableIndex() >= rd.LastIndex {
		n.onDurable()
	}
	return confChanged || rd.Snapshot != nil, nil
}

// installSnapshot persists a snapshot received from the leader and resets
// the log to start after it; the apply goroutine restores the state machine.
func (n *Node) installSnapshot(s *Snapshot) error {
	if err := n.saveSnapshotFile(s.Meta.Index, s.Meta.Term, s.Meta.Membership, s.Data, 0); err != nil {
		return err
	}
	if err := n.wal.CompactPrefix(s.Meta.Index, s.Meta.Term); err != nil {
		return err
	}
	n.dropHeldFrom(0)
	n.persistQ = n.persistQ[:0]
	n.lastSnap.Store(s.Meta.Index)
	n.log.Info("installed snapshot from the leader", "index", s.Meta.Index, "term", s.Meta.Term, "bytes", len(s.Data))
	return nil
}

// observeCommit reports the commit latency of the leader's batches that
// committed up to index.
func (n *Node) observeCommit(index uint64) {
	f := n.cfg.OnCommitLatency
	if f == nil || len(n.commitQ) == 0 {
		return
	}
	now := time.Now()
	k := 0
	for k < len(n.commitQ) && n.commitQ[k].index <= index {
		m := n.commitQ[k]
		ack := time.Duration(0)
		if !m.durable.IsZero() {
			ack = now.Sub(m.durable)
		}
		f(now.Sub(m.appended), ack)
		k++
	}
	n.commitQ = n.commitQ[:copy(n.commitQ, n.commitQ[k:])]
}

// ClearPending fails every proposal and read waiting in this node with
// ErrCleared (kraft-ctl clear-pending-requests) and returns how many.
// Cleared writes may still commit: their outcome is unknown.
func (n *Node) ClearPending() (int, error) {
	cleared := 0
	err := n.control(func(*Raft) {
		cleared = n.waiters.len() + len(n.reads) + len(n.batchProps)
		n.failWaiters(ErrCleared)
	})
	return cleared, err
}

// dropHeldFrom discards held acknowledgements of entries at or after from:
// those entries were replaced, and acknowledging them would be a lie.
func (n *Node) dropHeldFrom(from uint64) {
	keep := n.held[:0]
	for _, h := range n.held {
		if h.index < from {
			keep = append(keep, h)
		}
	}
	n.held = keep
}

// onDurable reports newly durable entries to the core and releases the
// messages that waited for them.
func (n *Node) onDurable() {
	if err := n.wal.Err(); err != nil {
		n.fail(err)
		return
	}
	d := n.wal.DurableIndex()
	i := 0
	for i < len(n.persistQ) && n.persistQ[i].index <= d {
		i++
	}
	if i > 0 {
		now := time.Now()
		if f := n.cfg.OnPersistLatency; f != nil {
			for _, m := range n.persistQ[:i] {
				f(now.Sub(m.appended))
			}
		}
		for k := range n.commitQ {
			if n.commitQ[k].index <= n.persistQ[i-1].index && n.commitQ[k].durable.IsZero() {
				n.commitQ[k].durable = now
			}
		}
		last := n.persistQ[i-1]
		n.persistQ = n.persistQ[:copy(n.persistQ, n.persistQ[i:])]
		n.raft.Persisted(last.index, last.term)
	}
	j := 0
	if c, ok := n.cfg.Transport.(Corker); ok && len(n.held) > 0 && n.held[0].index <= d {
		c.Cork()
		defer c.Uncork()
	}
	for j < len(n.held) && n.held[j].index <= d {
		for k := range n.held[j].msgs {
			n.cfg.Transport.Send(&n.held[j].msgs[k])
		}
		j++
	}
	n.held = n.held[:copy(n.held, n.held[j:])]
}

func (n *Node) failWaiters(err error) {
	for _, p := range n.batchProps {
		p.finish(sm.Result{}, err)
	}
	n.resetBatch()
	n.waiters.failAll(err)
	for c, r := range n.reads {
		r.err = err
		r.complete()
		delete(n.reads, c)
	}
	n.drainQueues(err)
}

// drainQueues fails the proposals and reads waiting in the loop's queues.
// Any goroutine may call it: each queued request is received, and so
// answered, once.
func (n *Node) drainQueues(err error) {
	for {
		select {
		case p := <-n.propC:
			p.finish(sm.Result{}, err)
		case r := <-n.readC:
			r.err = err
			r.complete()
		default:
			return
		}
	}
}

// drainIfStopped runs after a request was queued: if the node is stopping,
// the loop may already have drained the queues for the last time (a select
// with a closed stopC may still pick the send), so the caller drains them
// itself and the request is answered (with the stopped error) rather than
// stranded. Stopped before the loop's own drain, the loop or this takes it,
// whichever receives it first.
func (n *Node) drainIfStopped() {
	select {
	case <-n.stopC:
		n.drainQueues(n.stoppedErr())
	default:
	}
}

// sendAll sends msgs, corked (see Corker) when there is more than one.
func (n *Node) sendAll(msgs []wire.Message) {
	if len(msgs) == 0 {
		return
	}
	if c, ok := n.cfg.Transport.(Corker); ok && len(msgs) > 1 {
		c.Cork()
		defer c.Uncork()
	}
	for i := range msgs {
		n.cfg.Transport.Send(&msgs[i])
	}
}
