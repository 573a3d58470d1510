package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// ErrSnapshotInProgress: a snapshot is already being taken.
var ErrSnapshotInProgress = errors.New("kraft/core: a snapshot is already in progress")

// applier is the apply goroutine's state.
type applier struct {
	cmds        []sm.Command
	results     []sm.Result
	lastTerm    uint64 // term of the last applied entry
	lastApplied uint64
}

func (n *Node) runApply() {
	defer n.wg.Done()
	a := &applier{lastApplied: n.applied.Load()}
	for {
		select {
		case task, ok := <-n.applyC:
			if !ok {
				return
			}
			if err := n.apply(a, task); err != nil {
				n.fail(err)
				return
			}
			if t := n.cfg.SnapshotEveryEntries; t > 0 && a.lastApplied-n.lastSnap.Load() >= t {
				n.startSnapshot(a, nil)
			}
		case reply := <-n.snapReq:
			n.startSnapshot(a, reply)
		}
	}
}

func (n *Node) apply(a *applier, task applyTask) error {
	if s := task.snapshot; s != nil {
		if err := n.sm.Restore(bytes.NewReader(s.Data)); err != nil {
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
	clear(res)
	n.publishApplied(a.lastApplied)
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
// by the StateMachine contract) and writes it out on another goroutine, so
// Apply continues meanwhile. reply, if non-nil, gets the outcome.
func (n *Node) startSnapshot(a *applier, reply chan snapResult) {
	index, term := a.lastApplied, a.lastTerm
	answer := func(r snapResult) {
		if reply != nil {
			reply <- r
		}
	}
	if index == 0 || index == n.lastSnap.Load() {
		answer(snapResult{index: n.lastSnap.Load()})
		return
	}
	if !n.snapBusy.CompareAndSwap(false, true) {
		answer(snapResult{err: ErrSnapshotInProgress})
		return
	}
	s, err := n.sm.Snapshot()
	if err != nil {
		n.snapBusy.Store(false)
		answer(snapResult{err: err})
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		idx, err := n.writeSnapshot(s, index, term)
		if err != nil {
			n.log.Error("snapshot failed", "index", index, "error", err.Error())
		} else {
			n.log.Info("snapshot taken", "index", idx, "term", term)
		}
		n.snapBusy.Store(false)
		answer(snapResult{index: idx, err: err})
		// The threshold may have been crossed again while this one was
		// written (that trigger was skipped): check now rather than wait
		// for the next applied entry, which may never come.
		if t := n.cfg.SnapshotEveryEntries; t > 0 && n.applied.Load()-n.lastSnap.Load() >= t {
			select {
			case n.snapReq <- nil:
			default:
			}
		}
	}()
}

// writeSnapshot hands the snapshot to the core (which compacts its log and
// serves it to lagging followers), makes the file durable, then compacts
// the WAL. A crash between steps leaves the previous snapshot and the full
// log: nothing is lost.
func (n *Node) writeSnapshot(s sm.Snapshot, index, term uint64) (uint64, error) {
	var buf bytes.Buffer
	_, err := s.WriteTo(&buf)
	s.Release()
	if err != nil {
		return 0, err
	}
	data := buf.Bytes()
	var m Membership
	if cerr := n.control(func(r *Raft) {
		if err = r.CreateSnapshot(index, data); err == nil {
			m = snapshotMembership(r)
		}
	}); cerr != nil {
		return 0, cerr
	}
	if err != nil {
		return 0, err
	}
	if _, err := n.wal.SaveSnapshot(index, term, bytes.NewReader(encodeSnapshotFile(m, data))); err != nil {
		return 0, err
	}
	if err := n.wal.CompactPrefix(index, term); err != nil {
		return 0, err
	}
	n.lastSnap.Store(index)
	return index, nil
}

// snapshotMembership is the membership recorded with the snapshot the core
// just created: the membership at the snapshot's index, which may differ
// from the current one when a change committed after it.
func snapshotMembership(r *Raft) Membership {
	return r.snap.Meta.Membership.clone()
}

// A snapshot file's data (inside the WAL's checksummed snapshot file):
//
//	membership length u32 | membership (AppendMembership) | state machine snapshot
func encodeSnapshotFile(m Membership, data []byte) []byte {
	enc := AppendMembership(nil, m)
	out := make([]byte, 0, 4+len(enc)+len(data))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(enc)))
	out = append(out, enc...)
	return append(out, data...)
}

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
