package core

import (
	"fmt"
	"math/rand/v2"
)

// Config holds one node's Raft parameters. Times are in ticks: the driver
// calls Tick at a fixed interval (kraftd: 1 ms... see DefaultConfig), so
// ElectionTimeoutMinTicks=150 with a 1 ms tick is the seed's 150 ms.
type Config struct {
	// ID is this node's ID; never 0.
	ID uint64
	// Rand is the only source of randomness (election timeouts). The
	// simulator passes a seeded source so that a run replays exactly.
	Rand rand.Source

	// A follower starts an election after a timeout drawn uniformly from
	// [ElectionTimeoutMinTicks, ElectionTimeoutMaxTicks] each time its timer
	// resets. A leader sends heartbeats every HeartbeatIntervalTicks.
	ElectionTimeoutMinTicks int
	ElectionTimeoutMaxTicks int
	HeartbeatIntervalTicks  int

	// DisablePreVote turns pre-vote (Raft thesis §9.6) off; it is on by default.
	DisablePreVote bool
	// DisableCheckQuorum turns check-quorum off; on by default. With it, a
	// leader that has not heard from a quorum within ElectionTimeoutMinTicks
	// steps down, and a follower that heard from a leader within that time
	// ignores (pre-)vote requests (leader stickiness).
	DisableCheckQuorum bool
	// LeaseReads answers ReadIndex from the leader's lease without a
	// heartbeat round while the lease holds. Requires check-quorum. Safe only
	// when tick rates differ by less than LeaseMarginTicks per election timeout.
	LeaseReads       bool
	LeaseMarginTicks int

	// Replication window and batching. A message carries entries up to
	// MaxMsgBytes (at least one entry); at most MaxInflightMsgs messages and
	// MaxInflightBytes of entries are unacknowledged per follower.
	MaxMsgBytes      int
	MaxInflightMsgs  int
	MaxInflightBytes int
	// MaxEntryBytes bounds one proposal's payload.
	MaxEntryBytes int
	// Flow control: Propose fails with TooManyPendingError beyond these.
	MaxUncommittedEntries int
	MaxUncommittedBytes   int
	// MaxCommittedBytesPerReady bounds Ready.CommittedEntries (at least one entry).
	MaxCommittedBytesPerReady int
	// MaxSnapshotChunkBytes is the InstallSnapshot chunk size.
	MaxSnapshotChunkBytes int

	// LogCacheBytes bounds the memory of log entries that are stable and
	// applied (0: keep every entry since the snapshot). Older entries are
	// read back through LogReader when a lagging follower needs them; both
	// must be set for the bound to apply, and then entries that every
	// recently active follower has are let go at once, whole buffers at a
	// time, well before the bound. Entries not yet stable or applied are
	// always in memory (MaxUncommitted* bound those on a leader).
	LogCacheBytes int
	LogReader     LogReader

	// ForceNewCluster restarts a surviving node as the only voter of a new
	// one-member cluster, keeping its log (quorum-loss recovery,
	// kraft-ctl force-new-cluster). Everything in its log counts as committed.
	ForceNewCluster bool

	// Bug injects a deliberate protocol bug. Tests only: it exists so that
	// the simulator can prove it catches each one. Zero in production.
	Bug Bug
}

// LogReader reads stored entry records back (the WAL's mapping: see
// wal.WAL.Entries, which implements it). It returns the records of
// entries lo, lo+1, ... below hi, at least one, at most maxBytes unless the
// first alone is larger; the bytes must stay valid until the call that
// asked for them returns.
type LogReader interface {
	Entries(lo, hi uint64, maxBytes int) ([]byte, error)
}

// Bug names a deliberately injected protocol bug (see Config.Bug).
type Bug uint8

const (
	BugNone Bug = iota
	// BugVoteNotPersisted: the vote is left out of HardState.
	BugVoteNotPersisted
	// BugCommitOldTerm: the leader commits entries of older terms by counting.
	BugCommitOldTerm
	// BugKeepConflict: a follower keeps a conflicting suffix instead of truncating.
	BugKeepConflict
	// BugReadNoHeartbeat: ReadIndex is answered without a heartbeat round.
	BugReadNoHeartbeat
	// BugSnapshotOffByOne: a received snapshot is installed one index too high.
	BugSnapshotOffByOne
	// BugVoteIgnoresLog: votes are granted without the up-to-date log check.
	BugVoteIgnoresLog
	// BugAckBeforePersist: followers acknowledge Appends before their
	// entries are durable (a driver that sends MessagesAfterPersist early).
	BugAckBeforePersist
	BugCount
)

func (b Bug) String() string {
	return [...]string{"none", "vote-not-persisted", "commit-old-term", "keep-conflict",
		"read-no-heartbeat", "snapshot-off-by-one", "vote-ignores-log", "ack-before-persist"}[b]
}

// DefaultConfig: 1 ms ticks, 150–300 ms election timeout, 50 ms heartbeats
// (DESIGN.md §6), and the reference spec's pending caps.
func DefaultConfig(id uint64, src rand.Source) Config {
	return Config{
		ID:                        id,
		Rand:                      src,
		ElectionTimeoutMinTicks:   150,
		ElectionTimeoutMaxTicks:   300,
		HeartbeatIntervalTicks:    50,
		LeaseMarginTicks:          10,
		MaxMsgBytes:               1 << 20,
		MaxInflightMsgs:           10,
		MaxInflightBytes:          16 << 20,
		MaxEntryBytes:             1 << 20,
		MaxUncommittedEntries:     100000,
		MaxUncommittedBytes:       256 << 20,
		MaxCommittedBytesPerReady: 4 << 20,
		MaxSnapshotChunkBytes:     1 << 20,
	}
}

// Validate checks every field and the relations between them.
func (c *Config) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(f, a...))
	}
	switch {
	case c.ID == 0:
		return bad("ID must not be 0")
	case c.Rand == nil:
		return bad("Rand must be set (a seeded source)")
	case c.HeartbeatIntervalTicks <= 0:
		return bad("HeartbeatIntervalTicks %d must be > 0", c.HeartbeatIntervalTicks)
	case c.ElectionTimeoutMinTicks <= c.HeartbeatIntervalTicks:
		return bad("ElectionTimeoutMinTicks %d must exceed HeartbeatIntervalTicks %d", c.ElectionTimeoutMinTicks, c.HeartbeatIntervalTicks)
	case c.ElectionTimeoutMaxTicks < c.ElectionTimeoutMinTicks:
		return bad("ElectionTimeoutMaxTicks %d < ElectionTimeoutMinTicks %d", c.ElectionTimeoutMaxTicks, c.ElectionTimeoutMinTicks)
	case c.LeaseReads && c.DisableCheckQuorum:
		return bad("LeaseReads requires check-quorum")
	case c.LeaseReads && (c.LeaseMarginTicks < 0 || c.LeaseMarginTicks >= c.ElectionTimeoutMinTicks):
		return bad("LeaseMarginTicks %d must be in [0, ElectionTimeoutMinTicks)", c.LeaseMarginTicks)
	case c.MaxMsgBytes <= 0 || c.MaxInflightMsgs <= 0 || c.MaxInflightBytes <= 0:
		return bad("MaxMsgBytes, MaxInflightMsgs, MaxInflightBytes must be > 0")
	case c.MaxInflightBytes < c.MaxMsgBytes:
		return bad("MaxInflightBytes %d < MaxMsgBytes %d", c.MaxInflightBytes, c.MaxMsgBytes)
	case c.MaxEntryBytes <= 0 || c.MaxUncommittedEntries <= 0 || c.MaxUncommittedBytes <= 0:
		return bad("MaxEntryBytes, MaxUncommittedEntries, MaxUncommittedBytes must be > 0")
	case c.MaxUncommittedBytes < c.MaxEntryBytes:
		return bad("MaxUncommittedBytes %d < MaxEntryBytes %d", c.MaxUncommittedBytes, c.MaxEntryBytes)
	case c.MaxCommittedBytesPerReady <= 0 || c.MaxSnapshotChunkBytes <= 0:
		return bad("MaxCommittedBytesPerReady and MaxSnapshotChunkBytes must be > 0")
	case c.Bug >= BugCount:
		return bad("unknown Bug %d", c.Bug)
	}
	return nil
}
