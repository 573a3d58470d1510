// Package core holds Kraft's Raft consensus core: Raft, a pure,
// single-goroutine state machine. It has no goroutines, clock, I/O or global
// randomness: time is Tick, randomness is the seeded Config.Rand, input is
// Step/Propose/ReadIndex/ProposeConfChange/TransferLeadership, and output is
// a Ready batch. That is what lets core/sim run whole clusters
// deterministically from a seed.
//
// Node (node*.go) is the embeddable driver built on it: it runs the drive
// loop below on one goroutine with the WAL (package wal) for storage, a
// Transport (netio in kraftd) for messages and an sm.StateMachine on a
// separate apply goroutine. The pure files (raft.go, log.go, progress.go,
// membership.go, ready.go, api.go, status.go) never touch goroutines, clocks
// or I/O; only node*.go do. See ExampleNode for embedding a node.
//
// # The drive loop
//
// One goroutine owns a Raft value and repeats:
//
//  1. Wait for input: a tick (every Config tick interval, 1 ms by default),
//     peer messages, client proposals and reads, admin requests, and
//     "persisted up to (index, term)" reports from the WAL writer. Node
//     ticks the core by the monotonic clock, not by ticker deliveries
//     (which a busy runtime delivers late and drops): owed ticks are paid
//     back, after the queued peer messages are stepped, up to a third of
//     the minimum election timeout at once (tickClock in node.go).
//  2. Feed all of it that is queued: Tick(); Step(&msg) (its error is
//     informational, log it at debug level); Propose(batch) (answer the
//     client at once on error: NotLeaderError, TooManyPendingError, ...);
//     ReadIndex(ctx); Persisted(index, term) for each WAL report.
//  3. If HasReady(), take rd := Ready(). Everything fed in step 2 is in this
//     one batch: one WAL write, one Append per follower.
//  4. If rd.Snapshot != nil: hand it to the state machine (restore) and to
//     storage (it replaces the log up to its index).
//  5. Hand rd.Entries and rd.HardState (if rd.HardStateChanged) to the WAL
//     writer as one write: truncate at rd.FirstIndex, append. Do not wait.
//  6. Send rd.Messages now. The leader's Appends are here: it replicates
//     while its own disk write is in flight (thesis §10.2.1).
//  7. Queue rd.MessagesAfterPersist behind this write: send them when the
//     WAL is durable through rd.LastIndex and rd.HardState is durable, even
//     if this Ready had no entries of its own (votes and follower acks must
//     not promise what a crash could take back).
//  8. When the WAL reports the write durable, call
//     Persisted(rd.LastIndex, rd.LastTerm) (in step 2 of a later turn) and
//     release the messages of step 7. Writes complete in order.
//  9. Hand rd.CommittedEntries to the apply goroutine, in order; they are
//     durable locally. Answer rd.ReadStates once the state machine has
//     applied ReadState.Index.
//  10. Call Advance(rd): the core may reuse the message and read-state
//     slices. Entry bytes (rd.Entries, rd.CommittedEntries, Append
//     payloads) are immutable and may be held by the WAL writer and the
//     network for as long as needed.
//  11. Now and then, after applying up to index i, call CreateSnapshot(i,
//     data) to compact the log; the data is what lagging followers receive.
//
// # Log entries
//
// Entries are wire entry records (wire.AppendEntry) kept back to back in
// chunks of up to 4 MiB, so the bytes the leader appends are the bytes the
// WAL stores, the followers receive and the state machine reads. A chunk is
// never copied or grown: a full one is followed by a new one, and regions
// that were handed out are never written again (truncation caps the chunk
// it cuts). A Ready's Entries or CommittedEntries and an Append's entries
// stop at a chunk boundary; the rest follows in the next one. With
// Config.LogCacheBytes and a Config.LogReader (Node passes its WAL), entries
// that are stable and applied are dropped from the chunks beyond the limit
// and read back from storage when a lagging follower needs them.
//
// # Node's asynchronous calls
//
// Propose and Read block their caller; ProposeAsync and ReadAsync take a
// callback instead, called once on one of the node's goroutines (quick,
// never waiting on the node), which lets a server answer thousands of
// clients from its network event loops without a goroutine per request.
//
// # Roles
//
// Each role installs its own step and tick functions (stepFollower,
// stepCandidate for pre-candidates and candidates, stepLeader; tickElection,
// tickHeartbeat). Role values are the kraft_role metric's: 0 follower,
// 1 pre-candidate, 2 candidate, 3 leader.
//
// # Formats defined here
//
// Conf-change entry payloads (wire.EntryConfChange, EntryConfChangeJoint):
// see appendConfChange in membership.go. Snapshot Meta (wire.Message.Meta):
// the membership at the snapshot index, see AppendMembership. A new cluster
// starts from Bootstrap(voters): entry 1 sets the founding voters.
//
// # Choices
//
//   - Membership changes take effect when the entry is applied (handed out
//     in CommittedEntries), as in etcd; at most one may be pending; a joint
//     configuration is left automatically. An entry that does not apply to
//     the membership at its index is a no-op on every node.
//   - A node that just started, or heard from a leader within
//     ElectionTimeoutMinTicks, ignores vote requests (with check-quorum);
//     that is what makes lease reads sound. TimeoutNow campaigns override it.
//   - Reads wait for the leader to commit an entry of its own term; reads
//     arriving between two Readys share one heartbeat round.
//   - Committed entries are handed out only up to the locally persisted
//     index.
//   - Injected bugs (Config.Bug) exist for the simulator's self-test only.
//
// Costly self-checks compile in under the invariants build tag.
package core
