package core

import (
	"errors"
	"fmt"
)

// The seed's error texts (seed/troubleshooting.md) are reproduced exactly by
// the typed errors below; operators grep for them. Everything else carries the
// package prefix.

// NotLeaderError: a proposal, read or admin request reached a node that is
// not the leader. Leader is 0 when no leader is known.
type NotLeaderError struct{ Leader uint64 }

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("not leader, leader is node %d", e.Leader)
}

// TermMismatchError: a message from an older term was dropped (and answered
// so that its sender learns the newer term where Raft prescribes it).
type TermMismatchError struct{ Local, Remote uint64 }

func (e *TermMismatchError) Error() string {
	return fmt.Sprintf("term mismatch: local=%d, remote=%d", e.Local, e.Remote)
}

// LogMismatchError: an AppendEntries did not match the follower's log at its
// previous index (Raft §5.3); the follower answered with a backtracking hint.
// Got is 0 when the follower has no entry at Index.
type LogMismatchError struct{ Index, Expected, Got uint64 }

func (e *LogMismatchError) Error() string {
	return fmt.Sprintf("log mismatch at index %d: expected term %d, got term %d", e.Index, e.Expected, e.Got)
}

// QuorumError: a leader could not hear from a quorum (check-quorum stepped it
// down, failing the reads that waited on it).
type QuorumError struct{ Got, Total, Need int }

func (e *QuorumError) Error() string {
	return fmt.Sprintf("quorum not reached: got %d/%d, need %d", e.Got, e.Total, e.Need)
}

// SnapshotTooOldError: a snapshot older than the log's first index was
// offered (by a leader in InstallSnapshot, or locally by CreateSnapshot).
type SnapshotTooOldError struct{ Index, FirstIndex uint64 }

func (e *SnapshotTooOldError) Error() string {
	return fmt.Sprintf("cannot install snapshot: index %d < first log index %d", e.Index, e.FirstIndex)
}

// TooManyPendingError: Propose would exceed the uncommitted-entry limits
// (Config.MaxUncommittedEntries / MaxUncommittedBytes). It is backpressure:
// retry after some entries commit. errors.Is(err, ErrTooManyPending) holds.
type TooManyPendingError struct {
	PendingEntries, PendingBytes int
	LimitEntries, LimitBytes     int
}

func (e *TooManyPendingError) Error() string {
	return fmt.Sprintf("kraft/core: too many pending requests: %d entries / %d bytes uncommitted (limits %d entries / %d bytes)",
		e.PendingEntries, e.PendingBytes, e.LimitEntries, e.LimitBytes)
}

// Is makes errors.Is(err, ErrTooManyPending) true.
func (e *TooManyPendingError) Is(target error) bool { return target == ErrTooManyPending }

var (
	// ErrTooManyPending classifies TooManyPendingError.
	ErrTooManyPending = errors.New("kraft/core: too many pending requests")
	// ErrTransferInProgress: proposals are blocked while leadership moves.
	ErrTransferInProgress = errors.New("kraft/core: leadership transfer in progress")
	// ErrPendingConfChange: at most one membership change may be pending.
	ErrPendingConfChange = errors.New("kraft/core: a membership change is already pending")
	// ErrInvalidConfChange: the change does not apply to the current membership.
	ErrInvalidConfChange = errors.New("kraft/core: invalid membership change")
	// ErrLearnerBehind: a learner is promoted only once it has caught up.
	ErrLearnerBehind = errors.New("kraft/core: learner has not caught up")
	// ErrNotMember: the target node is not a voter of the configuration.
	ErrNotMember = errors.New("kraft/core: node is not a voting member")
	// ErrEntryTooLarge: one payload is larger than Config.MaxEntryBytes.
	ErrEntryTooLarge = errors.New("kraft/core: entry too large")
	// ErrBadSnapshotMeta: snapshot membership bytes do not decode.
	ErrBadSnapshotMeta = errors.New("kraft/core: malformed snapshot membership")
	// ErrBadInitialState: the persisted state handed to New is inconsistent.
	ErrBadInitialState = errors.New("kraft/core: inconsistent initial state")
	// ErrInvalidConfig: Config.Validate failed.
	ErrInvalidConfig = errors.New("kraft/core: invalid config")
)

func bug(format string, args ...any) {
	panic("kraft: BUG: " + fmt.Sprintf(format, args...))
}
