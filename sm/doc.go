// Package sm holds the state-machine contract a Kraft node replicates
// (StateMachine, Snapshot) and KV, the reference key-value store that kraftd
// serves.
//
// Ownership: a node calls Apply, Snapshot and Restore from its single apply
// goroutine. A Snapshot's WriteTo runs on another goroutine, concurrently
// with Apply. KV.Get is safe from any goroutine (reads after ReadIndex).
//
// KV commands are client requests as they arrived on the wire, prefixed by
// the leader's clock (see AppendCommand): no re-encoding on the leader, and a
// deterministic clock for session expiry on every replica.
//
// Sessions give exactly-once writes (Raft thesis §6.3): a write is applied
// once per (client ID, seq); a retry gets the cached response. Responses
// below the client's FirstUnacked are forgotten, and only a request flagged
// NewSession may open a session, so a write retried after its session
// expired is refused (StatusSessionExpired) rather than applied twice. The
// one window left is a retry of a session's very first request after that
// session expired: clients must not retry a request older than half the
// session timeout.
//
// Keys: KV holds its keys in a keyTable (kv_table.go), an open-addressing
// hash table that keeps each key and its value in one immutable entry, so
// a lookup costs two cache misses on a store larger than the caches; its
// slots also hold each key's length and first 8 bytes and its value's
// length, so a put of a key of at most 8 bytes costs one.
//
// Snapshots: KV.Snapshot freezes the key table instead of copying it
// (writes go to an overlay until the snapshot is released, then drain back
// a few per applied command; kv_generations.go), so a capture costs
// O(sessions) on the Apply goroutine whatever the store's size. KV also
// implements IncrementalStateMachine: it tracks the keys written since the
// last capture and SnapshotDelta writes only those (tombstones for
// deletions).
//
// The snapshot and delta stream formats are documented in kv_snapshot.go.
package sm
