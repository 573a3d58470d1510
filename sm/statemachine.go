package sm

import "io"

// Command is one committed log entry handed to Apply. Data aliases memory
// owned by the caller and is valid only during the Apply call.
type Command struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// Result is what Apply returns for one command; the node hands it to the
// client that proposed the command. Data may alias the state machine's own
// memory and must not be modified by the receiver.
type Result struct {
	Value uint64
	Data  []byte
}

// StateMachine is the replicated application. The contract, which every
// implementation must keep for replicas to stay identical:
//
//   - Apply is called from a single goroutine with committed commands in log
//     order, each index exactly once (after a Restore, from the snapshot's
//     index + 1). It must be deterministic: the same commands on the same
//     state give the same results and the same new state on every replica,
//     so it may not read clocks, randomness or local configuration. It
//     fills results[i] for cmds[i]; len(results) == len(cmds).
//   - Snapshot is called on the Apply goroutine between Apply calls and must
//     return quickly: it captures a point-in-time view (as of the last
//     applied command) and returns a Snapshot whose WriteTo may then run on
//     another goroutine, concurrently with further Apply calls.
//   - Restore replaces the entire state with the one a Snapshot wrote. It is
//     called on the Apply goroutine; on error the state machine must be left
//     as it was (the node then refuses to continue rather than diverge).
type StateMachine interface {
	Apply(cmds []Command, results []Result)
	Snapshot() (Snapshot, error)
	Restore(r io.Reader) error
}

// Snapshot is a captured state that can be written out.
type Snapshot interface {
	// WriteTo writes the snapshot; it is safe to call concurrently with
	// Apply on the state machine that produced it. The node yields the
	// processor as w takes bytes; work that writes nothing for long (a
	// sort of every key) should call runtime.Gosched every millisecond or
	// so, or, where the node has one Go scheduler, it holds writes up for
	// the runtime's 10 ms slices (KV does, docs/tuning.md).
	WriteTo(w io.Writer) (int64, error)
	// Release frees what the snapshot holds; it is called once, after
	// WriteTo or when the snapshot is abandoned.
	Release()
}

// IncrementalStateMachine is a StateMachine that can also capture only
// what changed since its previous capture, so that a node may write a
// small delta snapshot instead of the whole state (chained to the previous
// snapshot file). The contract, beside StateMachine's:
//
//   - A capture is a Snapshot or a successful SnapshotDelta; Restore and
//     RestoreDelta also start a new delta period.
//   - SnapshotDelta is called like Snapshot (Apply goroutine, quick). It
//     captures the changes (including deletions) since the previous capture
//     or restore, whose last applied index it returns as base, or returns
//     ok false and captures nothing when it cannot (it stopped tracking
//     because too much changed): the caller then takes a full Snapshot.
//   - RestoreDelta applies a stream written by a delta Snapshot on top of
//     the current state, which must be the state at the delta's base;
//     otherwise, or on any damage, it returns an error and leaves the state
//     as it was. Restore followed by RestoreDelta of each delta in order
//     gives the state at the last delta, equal to the state of a replica
//     that applied the same commands.
type IncrementalStateMachine interface {
	StateMachine
	SnapshotDelta() (s Snapshot, base uint64, ok bool, err error)
	RestoreDelta(r io.Reader) error
}
