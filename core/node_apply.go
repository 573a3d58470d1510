package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// applier is the apply goroutine's state.
type applier struct {
	cmds        []sm.Command
	results     []sm.Result
	lastTerm    uint64 // term of the last applied entry
	lastApplied uint64
	chain       *snapChain
	// backlog holds the tasks that arrived while a synchronous snapshot
	// was written (SnapshotOptions.Sync); applyClosed: the loop is gone.
	backlog     []applyTask
	applyClosed bool
	// snapStarted: when this process's latest snapshot started (zero:
	// none yet); snapDue fires when SnapshotMinInterval has passed since,
	// armed only while an automatic snapshot waits for it (else nil).
	snapStarted time.Time
	snapDue     <-chan time.Time
	// snapWaiting: Snapshot calls that came while a snapshot was being
	// written; they get the next one, started when that one is done.
	snapWaiting []chan snapResult
}

func (n *Node) runApply() {
	defer n.wg.Done()
	a := &applier{lastApplied: n.applied.Load(), chain: &snapChain{}}
	for {
		if len(a.backlog) > 0 {
			task := a.backlog[0]
			a.backlog[0] = applyTask{}
			a.backlog = a.backlog[1:]
			if !n.applyTask(a, task) {
				return
			}
			continue
		}
		if a.applyClosed {
			return
		}
		select {
		case task, ok := <-n.applyC:
			if !ok {
				return
			}
			if !n.applyTask(a, task) {
				return
			}
		case reply := <-n.snapReq:
			n.startSnapshot(a, reply)
		case <-n.snapDone:
			if len(a.snapWaiting) > 0 {
				n.startSnapshot(a, nil)
			} else {
				// The threshold may have been crossed again while that
				// one was written (that trigger was skipped): look now
				// rather than at the next applied entry, which may never
				// come.
				n.maybeSnapshot(a)
			}
		case <-a.snapDue:
			a.snapDue = nil
			n.maybeSnapshot(a)
		}
	}
}

// applyTask applies one task and takes a snapshot if one is due; false
// after a fatal error.
func (n *Node) applyTask(a *applier, task applyTask) bool {
	if err := n.apply(a, task); err != nil {
		n.fail(err)
		return false
	}
	n.maybeSnapshot(a)
	return true
}

// maybeSnapshot starts an automatic snapshot when SnapshotEveryEntries
// entries were applied since the last one, unless SnapshotMinInterval has
// not passed since the previous start: then it arms a.snapDue to look
// again at that time (the next applied entry may never come).
func (n *Node) maybeSnapshot(a *applier) {
	if t := n.cfg.SnapshotEveryEntries; t == 0 || a.lastApplied-n.lastSnap.Load() < t {
		return
	}
	if !a.snapStarted.IsZero() {
		if wait := n.cfg.SnapshotMinInterval - time.Since(a.snapStarted); wait > 0 {
			if a.snapDue == nil {
				a.snapDue = time.After(wait)
			}
			return
		}
	}
	n.startSnapshot(a, nil)
}

func (n *Node) apply(a *applier, task applyTask) error {
	if s := task.snapshot; s != nil {
		a.chain.reset() // the next snapshot of ours is a full one
		if err := restoreChain(n.sm, s.Data); err != nil {
			return fmt.Errorf("kraft/core: restoring the snapshot at index %d from the leader: %w", s.Meta.Index, err)
		}
		a.lastApplied, a.lastTerm = s.Meta.Index, s.Meta.Term
		n.publishApplied(s.Meta.Index)
	}
	if len(task.entries) == 0 {
		return nil
	}
	a.cmds = a.cmds[:0]
	it := wire.NewEntryIter(task.entries)
	for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
		if e.Index <= a.lastApplied {
			continue // covered by a snapshot restored above
		}
		if e.Index != a.lastApplied+1 {
			panic(fmt.Sprintf("kraft: BUG: applying index %d after %d", e.Index, a.lastApplied))
		}
		a.lastApplied, a.lastTerm = e.Index, e.Term
		if e.Type == wire.EntryNormal {
			a.cmds = append(a.cmds, sm.Command{Index: e.Index, Term: e.Term, Data: e.Payload})
		}
	}
	if cap(a.results) < len(a.cmds) {
		a.results = make([]sm.Result, len(a.cmds))
	}
	res := a.results[:len(a.cmds)]
	if len(a.cmds) > 0 {
		n.sm.Apply(a.cmds, res)
	}
	// Waiters and commands are both in index order: one merge pass. A waiter
	// whose index holds another term's entry (or a no-op) was dropped.
	ci := 0
	for _, p := range task.waiters {
		for ci < len(a.cmds) && a.cmds[ci].Index < p.index {
			ci++
		}
		if ci < len(a.cmds) && a.cmds[ci].Index == p.index && a.cmds[ci].Term == p.term {
			if p.trace != nil {
				p.trace.Applied = time.Now()
			}
			p.finish(res[ci], nil)
		} else {
			p.finish(sm.Result{}, ErrProposalDropped)
		}
	}
	if cap(task.waiters) > 0 {
		clear(task.waiters)
		select {
		case n.waiterBufs <- task.waiters[:0]:
		default:
		}
	}
	clear(res)
	n.publishApplied(a.lastApplied)
	if len(task.waiters) > 0 && n.cfg.AfterApply != nil {
		n.cfg.AfterApply()
	}
	return nil
}

func (n *Node) publishApplied(index uint64) {
	n.applied.Store(index)
	n.appliedMu.Lock()
	close(n.appliedSig)
	n.appliedSig = make(chan struct{})
	n.appliedMu.Unlock()
}

// startSnapshot captures the state machine on the apply goroutine (quick,
// by the StateMachine contract) and writes it out: on another goroutine
// while Apply continues, or, with SnapshotOptions.Sync, while the apply
// goroutine waits. reply, if non-nil, gets the outcome; while another
// snapshot is being written, it waits for the next one (snapWaiting),
// which the apply goroutine starts once snapDone says that one is done.
func (n *Node) startSnapshot(a *applier, reply chan snapResult) {
	index, term := a.lastApplied, a.lastTerm
	if n.snapBusy.Load() {
		if reply != nil {
			a.snapWaiting = append(a.snapWaiting, reply)
		}
		return
	}
	replies := a.snapWaiting
	a.snapWaiting = nil
	if reply != nil {
		replies = append(replies, reply)
	}
	answer := func(r snapResult) {
		for _, c := range replies {
			c <- r // each buffered, each answered once
		}
	}
	if index == 0 || index == n.lastSnap.Load() {
		answer(snapResult{index: n.lastSnap.Load()})
		return
	}
	if !n.snapBusy.CompareAndSwap(false, true) {
		panic("kraft: BUG: a snapshot started outside the apply goroutine")
	}
	a.snapStarted = time.Now()
	job, err := n.captureSnapshot(a, index, term)
	if err != nil {
		n.snapBusy.Store(false)
		answer(snapResult{err: err})
		return
	}
	done := make(chan struct{})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(done)
		idx, err := n.writeSnapshot(job)
		if err != nil {
			n.log.Error("snapshot failed", "index", index, "error", err.Error())
		} else {
			n.log.Info("snapshot taken", "index", idx, "term", term, "kind", job.kind(), "base", job.base,
				"bytes", job.bytes, "capture", job.captureDur, "write", time.Since(job.started))
		}
		n.snapBusy.Store(false)
		answer(snapResult{index: idx, err: err})
		select {
		case n.snapDone <- struct{}{}:
		default: // one is pending already
		}
	}()
	if n.cfg.Snapshots.Sync {
		n.waitSnapshot(a, done)
	}
}

// waitSnapshot blocks the apply goroutine until done closes. Tasks that
// arrive meanwhile are queued, not applied: the loop must never block on
// the apply queue while the writer needs the loop (it hands the snapshot
// to the core there).
func (n *Node) waitSnapshot(a *applier, done chan struct{}) {
	for {
		select {
		case <-done:
			return
		case task, ok := <-n.applyC:
			if !ok {
				a.applyClosed = true
				<-done
				return
			}
			a.backlog = append(a.backlog, task)
		}
	}
}

// snapshotMembership is the membership recorded with the snapshot the core
// just created: the membership at the snapshot's index, which may differ
// from the current one when a change committed after it.
func snapshotMembership(r *Raft) Membership {
	return r.snap.Meta.Membership.clone()
}

// A snapshot file's data (inside the WAL's checksummed snapshot file):
//
//	membership length u32 | membership (AppendMembership) | snapshot data
//
// (written by saveSnapshotFile; the snapshot data is a chain, see
// snapshot_chain.go).
func decodeSnapshotFile(b []byte) (Membership, []byte, error) {
	if len(b) < 4 {
		return Membership{}, nil, errors.New("snapshot data shorter than its header")
	}
	l := binary.LittleEndian.Uint32(b)
	if uint64(l) > uint64(len(b)-4) {
		return Membership{}, nil, fmt.Errorf("membership length %d beyond the data (%d bytes)", l, len(b)-4)
	}
	m, err := DecodeMembership(b[4 : 4+l])
	if err != nil {
		return Membership{}, nil, err
	}
	return m, b[4+l:], nil
}
