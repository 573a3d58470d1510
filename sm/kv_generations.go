package sm

import (
	"maps"
	"math"
	"sync/atomic"
)

// Cheap captures. A snapshot must see the store as of its capture while
// Apply goes on, and the capture runs on the Apply goroutine, so copying
// the key map there would stall every commit for O(keys) (about a second
// per few million keys). Instead the capture freezes the map:
//
//	capture:  hold = new generation; over = {}        O(1)
//	writes:   over[k] = value | tombstone             while hold is not released
//	reads:    over first, then data
//	Release:  hold.released = true                    (the snapshot's goroutine)
//	Apply:    drain drainPerCommand overlay entries per command into data;
//	          writes go to data again (and drop k from over)
//	          hold = nil once over is empty
//
// The frozen map is only read (by WriteTo, Get and lookups) until the
// release; afterwards only the Apply goroutine writes it, under mu. The
// drain costs O(writes made while the snapshot was written), spread over
// later Apply calls. A second capture while the first is still unreleased
// (the node never does that) gets a private merged copy, O(keys).

// drainPerCommand bounds the overlay entries moved back per applied
// command: the overlay empties four times faster than writes fill it.
const drainPerCommand = 4

// Delta tracking stops (and the next SnapshotDelta refuses) once this many
// keys changed since the last capture, or 1/deltaMaxKeysFraction of the
// keys if that is more: a delta that large saves little over a full
// snapshot, and tracking must not grow without bound when no delta is
// ever taken.
const (
	deltaMinKeys         = 4096
	deltaMaxKeysFraction = 8
)

// overlayValue is a write made while data was frozen.
type overlayValue struct {
	value   []byte
	deleted bool
}

// generation is one capture of data; released once its snapshot is done.
type generation struct{ released atomic.Bool }

// lookup reads key through the overlay. Callers hold mu (either mode).
func (kv *KV) lookup(key string) ([]byte, bool) {
	if kv.over != nil {
		if o, ok := kv.over[key]; ok {
			return o.value, !o.deleted
		}
	}
	v, ok := kv.data[key]
	return v, ok
}

// store records a write (value, or a deletion). Callers hold mu for
// writing and keep keys and dataB themselves.
func (kv *KV) store(key string, value []byte, deleted bool) {
	kv.markDirty(key)
	if kv.hold != nil && !kv.hold.released.Load() {
		if _, ok := kv.over[key]; !ok {
			kv.overKeys = append(kv.overKeys, key)
		}
		kv.over[key] = overlayValue{value: value, deleted: deleted}
		return
	}
	if kv.over != nil {
		delete(kv.over, key) // older than this write; data is writable again
	}
	if deleted {
		delete(kv.data, key)
	} else {
		kv.data[key] = value
	}
}

// drainOverlay moves up to budget overlay entries into data once the
// snapshot that froze data is released.
func (kv *KV) drainOverlay(budget int) {
	if kv.hold == nil || !kv.hold.released.Load() {
		return
	}
	for ; budget > 0 && len(kv.overKeys) > 0; budget-- {
		k := kv.overKeys[0]
		kv.overKeys[0] = ""
		kv.overKeys = kv.overKeys[1:]
		if o, ok := kv.over[k]; ok {
			if o.deleted {
				delete(kv.data, k)
			} else {
				kv.data[k] = o.value
			}
			delete(kv.over, k)
		}
	}
	if len(kv.overKeys) == 0 {
		if len(kv.over) != 0 {
			panic("kraft: BUG: KV overlay drained with entries left")
		}
		kv.over, kv.overKeys, kv.hold = nil, nil, nil
	}
}

// freeze returns a map that holds the keys as of now and stays unchanged
// until the returned generation (nil: the map is a private copy) is
// released. Callers hold mu for writing.
func (kv *KV) freeze() (map[string][]byte, *generation) {
	kv.drainOverlay(math.MaxInt)
	if kv.hold != nil {
		m := maps.Clone(kv.data)
		for k, o := range kv.over {
			if o.deleted {
				delete(m, k)
			} else {
				m[k] = o.value
			}
		}
		return m, nil
	}
	kv.hold = &generation{}
	kv.over = make(map[string]overlayValue)
	return kv.data, kv.hold
}

func (kv *KV) markDirty(key string) {
	if kv.dirty == nil {
		return
	}
	if len(kv.dirty) >= max(deltaMinKeys, kv.keys/deltaMaxKeysFraction) {
		kv.dirty = nil // too much changed: the next snapshot is a full one
		return
	}
	kv.dirty[key] = struct{}{}
}

// captureSessions copies the sessions (they change in place).
func (kv *KV) captureSessions() map[uint64]snapSession {
	sessions := make(map[uint64]snapSession, len(kv.sessions))
	for id, s := range kv.sessions {
		sessions[id] = snapSession{lastActiveNano: s.lastActiveNano, forgottenBelow: s.forgottenBelow, responses: maps.Clone(s.responses)}
	}
	return sessions
}

// capture builds a snapshot of the current state; changed, if not nil,
// makes it a delta on base holding those keys.
func (kv *KV) capture(changed map[string]struct{}, base uint64) *kvSnapshot {
	data, hold := kv.freeze()
	s := &kvSnapshot{
		delta:         changed != nil,
		base:          base,
		applied:       kv.applied,
		nowNano:       kv.nowNano,
		nextSweepNano: kv.nextSweepNano,
		data:          data,
		changed:       changed,
		hold:          hold,
		sessions:      kv.captureSessions(),
	}
	kv.dirty, kv.captured = make(map[string]struct{}), kv.applied
	return s
}

// Snapshot captures the whole store as of the last applied command. It
// costs O(sessions) on the Apply goroutine: the key map is frozen, not
// copied (see above); the encoding runs later, in WriteTo.
func (kv *KV) Snapshot() (Snapshot, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.capture(nil, 0), nil
}

// SnapshotDelta captures what changed since the previous capture or
// restore (IncrementalStateMachine): the values of the keys written since,
// tombstones for the ones deleted, and the sessions. ok is false, and
// nothing is captured, when too many keys changed (more than
// max(4096, keys/8)) for a delta to be worth it.
func (kv *KV) SnapshotDelta() (s Snapshot, base uint64, ok bool, err error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.dirty == nil {
		return nil, 0, false, nil
	}
	base = kv.captured
	return kv.capture(kv.dirty, base), base, true, nil
}
