package core

import (
	"fmt"

	"github.com/kraftdb/kraft/wal"
)

// DefaultMaxDeltaChain is how many delta snapshots may follow a full one
// before the next snapshot is full again.
const DefaultMaxDeltaChain = 8

// SnapshotOptions say how a node writes its snapshots (NodeConfig.
// Snapshots). The zero value is the behaviour before these options
// existed: uncompressed, always full, written off the apply goroutine.
// How many files are kept is wal.Options.SnapshotsRetained.
type SnapshotOptions struct {
	// Compression stores snapshot files compressed (wal.SnapshotCodecZstd)
	// or not (wal.SnapshotCodecNone, the zero value). Files record their
	// codec, so a node reads any file whatever its own setting; what is
	// sent to followers is never compressed by this setting.
	Compression wal.SnapshotCodec
	// Incremental writes a delta snapshot (the keys changed since the
	// previous snapshot) instead of a full one when the state machine is
	// an sm.IncrementalStateMachine and the chain of deltas since the last
	// full snapshot is shorter than MaxDeltaChain and holds less than half
	// the full snapshot's bytes; the state machine may also decline (too
	// much changed). The first snapshot after a start or after installing
	// the leader's snapshot is always full.
	Incremental bool
	// MaxDeltaChain bounds the deltas after a full snapshot (0:
	// DefaultMaxDeltaChain).
	MaxDeltaChain int
	// Sync makes the apply goroutine wait until the snapshot is written
	// and durable (no command is applied meanwhile; the apply queue is
	// buffered). False (default): the capture is the only part on the
	// apply goroutine (for sm.KV, O(sessions): the key map is frozen, not
	// copied), and serialization, compression and the file write run on
	// another goroutine while Apply goes on. Sync exists to compare with.
	Sync bool
}

// Validate checks the options.
func (o SnapshotOptions) Validate() error {
	switch {
	case o.Compression > wal.SnapshotCodecZstd:
		return fmt.Errorf("kraft/core: Snapshots.Compression: unknown codec %d", o.Compression)
	case o.MaxDeltaChain < 0:
		return fmt.Errorf("kraft/core: Snapshots.MaxDeltaChain must not be negative, got %d", o.MaxDeltaChain)
	}
	return nil
}

func (o SnapshotOptions) maxDeltaChain() int {
	if o.MaxDeltaChain == 0 {
		return DefaultMaxDeltaChain
	}
	return o.MaxDeltaChain
}
