package core

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// Transport sends Raft messages to peers. Send must not block and must
// encode m before returning (the node reuses it); a message it cannot send
// is dropped, and Raft retransmits. netio.Transport implements it.
type Transport interface {
	Send(m *wire.Message) error
}

// Corker is an optional Transport extension (netio.Transport has it): the
// node calls Cork before the Sends of one turn (a Ready's messages, or the
// acknowledgements a finished write releases) and Uncork after them, so
// that the transport can write each peer's messages together, and at once.
type Corker interface {
	Cork()
	Uncork()
}

// NodeConfig configures a Node.
type NodeConfig struct {
	// Raft holds the protocol parameters; its timeouts are in ticks of
	// TickInterval (default 1ms, matching DefaultConfig). Raft.Rand
	// may be nil: the node seeds one.
	Raft         Config
	TickInterval time.Duration

	// WALDir holds the log and hard state; WAL.SnapshotDir the snapshots.
	WALDir string
	WAL    wal.Options

	StateMachine sm.StateMachine
	Transport    Transport

	// Bootstrap lists the founding voters of a new cluster. It is used only
	// when the storage is empty; a node with an empty storage and no
	// Bootstrap waits to be added by an existing cluster.
	Bootstrap []uint64

	// SnapshotEveryEntries takes a snapshot once this many entries were
	// applied since the last one (0: only on request).
	SnapshotEveryEntries uint64
	// SnapshotMinInterval spaces automatic snapshots: one that is due by
	// SnapshotEveryEntries waits until this long after the previous
	// snapshot of this process started (0: no minimum). Under a heavy
	// write load a snapshot per threshold would rewrite the whole state
	// every few seconds; with a minimum the log grows instead (disk,
	// restart replay), bounded by the write rate times the interval.
	// Requested snapshots (Node.Snapshot) are never delayed.
	SnapshotMinInterval time.Duration
	// Snapshots: compression, incremental (delta) snapshots, and whether
	// the apply goroutine waits for the write (see SnapshotOptions).
	Snapshots SnapshotOptions

	// BatchSize caps the proposals that become one batch (one Propose, one
	// WAL append, one Append per follower; default 4096). Proposals queued
	// while the loop works are batched without waiting; BatchTimeout (0:
	// never wait) lets a partial batch wait up to that long for more,
	// trading a lone proposal's latency for fewer, larger batches.
	BatchSize    int
	BatchTimeout time.Duration

	// ProposalQueueLen and InboxLen bound the queues into the loop.
	ProposalQueueLen int
	InboxLen         int

	// OnPersistLatency, if set, receives for every appended batch the time
	// from its WAL append to the durable report (the group commit's fsync),
	// on the loop goroutine.
	OnPersistLatency func(time.Duration)
	// OnCommitLatency, if set, receives for every batch this node appended
	// as leader, when it commits: the time from its append to its commit,
	// and from its local durability to its commit (waiting for followers).
	OnCommitLatency func(appendToCommit, durableToCommit time.Duration)

	// AfterReads, if set, is called on the goroutine that has just run a
	// batch of successful ReadAsync callbacks (the loop, after the reads a
	// heartbeat round confirmed; the reads goroutine, after the reads an
	// apply released), after the last of them. An embedder can gather the
	// reads in its callbacks and serve them together here. It is not
	// called after a stale read's callback (which runs inside ReadAsync)
	// nor after failed reads (it may be called when no callback ran). It
	// must be quick, like the callbacks.
	AfterReads func()

	// AfterApply, if set, is called on the apply goroutine after each
	// batch of committed entries it applied, once the batch's Propose and
	// ProposeAsync waiters have their outcomes (after the last callback).
	// Every successful ProposeAsync callback runs on the apply goroutine
	// before such a call, so an embedder can hold the answers it gives in
	// them and send them together here (kraftd writes each client
	// connection's once). It must be quick, like the callbacks.
	AfterApply func()

	// OnMembership is called on the loop goroutine whenever the membership
	// may have changed (it must be quick: e.g. update the transport's peers).
	OnMembership func(Membership)

	Logger *slog.Logger
}

func (c *NodeConfig) withDefaults() {
	if c.TickInterval == 0 {
		c.TickInterval = time.Millisecond // DefaultConfig's timeouts are in milliseconds
	}
	if c.BatchSize == 0 {
		c.BatchSize = 4096
	}
	if c.ProposalQueueLen == 0 {
		c.ProposalQueueLen = 8192
	}
	if c.InboxLen == 0 {
		c.InboxLen = 8192
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the configuration; errors name the field.
func (c *NodeConfig) Validate() error {
	switch {
	case c.TickInterval < time.Millisecond:
		return fmt.Errorf("kraft/core: TickInterval must be at least 1ms, got %v", c.TickInterval)
	case c.WALDir == "":
		return errors.New("kraft/core: WALDir is required")
	case c.StateMachine == nil:
		return errors.New("kraft/core: StateMachine is required")
	case c.Transport == nil:
		return errors.New("kraft/core: Transport is required")
	case c.BatchSize < 1:
		return fmt.Errorf("kraft/core: BatchSize must be positive, got %d", c.BatchSize)
	case c.BatchTimeout < 0:
		return fmt.Errorf("kraft/core: BatchTimeout must not be negative, got %v", c.BatchTimeout)
	case c.SnapshotMinInterval < 0:
		return fmt.Errorf("kraft/core: SnapshotMinInterval must not be negative, got %v", c.SnapshotMinInterval)
	case c.ProposalQueueLen < 1 || c.InboxLen < 1:
		return errors.New("kraft/core: ProposalQueueLen and InboxLen must be positive")
	}
	return nil
}
