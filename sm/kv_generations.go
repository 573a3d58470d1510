package sm

import (
	"math"
	"sync/atomic"
)

// Cheap captures. A snapshot must see the store as of its capture while
// Apply goes on, and the capture runs on the Apply goroutine, so copying
// the key table there would stall every commit for O(keys). Instead the
// capture freezes the table:
//
//	capture:  hold = new generation; over = {}        O(1)
//	writes:   over[k] = value | tombstone             while hold is not released
//	reads:    over first, then data
//	Release:  hold.released = true                    (the snapshot's goroutine)
//	Apply:    drain drainPerCommand overlay entries per command into data;
//	          writes go to data again (and drop k from over)
//	          hold = nil once over is empty
//
// The frozen table is only read (by WriteTo, Get and lookups) until the
// release; afterwards only the Apply goroutine writes it, under mu. The
// drain costs O(writes made while the snapshot was written), spread over
// later Apply calls. A second capture while the first is still unreleased
// (the node never does that) gets a private merged clone, O(keys).

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
// It does not allocate.
func (kv *KV) lookup(key []byte) ([]byte, bool) {
	if kv.over != nil {
		if o, ok := kv.over[string(key)]; ok {
			return o.value, !o.deleted
		}
	}
	return kv.data.get(key)
}

// storeOverlaid records a write (value, a fresh copy, or a deletion) while
// there is an overlay: in it while data is frozen, else in data (the
// overlay's entry for key, older than this write, is dropped). Callers hold
// mu for writing and keep keys, dataB and dirty themselves.
func (kv *KV) storeOverlaid(key, value []byte, deleted bool) {
	if !kv.hold.released.Load() {
		k := string(key)
		if _, ok := kv.over[k]; !ok {
			kv.overKeys = append(kv.overKeys, k)
		}
		kv.over[k] = overlayValue{value: value, deleted: deleted}
		return
	}
	delete(kv.over, string(key))
	if deleted {
		kv.data.delete(key)
	} else {
		kv.data.set(key, value)
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
				kv.data.delete(bytesOf(k))
			} else {
				kv.data.set(bytesOf(k), o.value)
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

// freeze returns a table that holds the keys as of now and stays unchanged
// until the returned generation (nil: the table is a private clone) is
// released. Callers hold mu for writing.
func (kv *KV) freeze() (*keyTable, *generation) {
	kv.drainOverlay(math.MaxInt)
	if kv.hold != nil {
		t := kv.data.clone()
		for k, o := range kv.over {
			if o.deleted {
				t.delete(bytesOf(k))
			} else {
				t.set(bytesOf(k), o.value)
			}
		}
		return t, nil
	}
	kv.hold = &generation{}
	kv.over = make(map[string]overlayValue)
	return kv.data, kv.hold
}

func (kv *KV) markDirty(key []byte) {
	if kv.dirty == nil {
		return
	}
	if len(kv.dirty) >= max(deltaMinKeys, kv.keys/deltaMaxKeysFraction) {
		kv.dirty = nil // too much changed: the next snapshot is a full one
		return
	}
	if _, ok := kv.dirty[string(key)]; !ok { // the lookup does not allocate
		kv.dirty[string(key)] = struct{}{}
	}
}

// captureSessions copies the sessions (they change in place).
func (kv *KV) captureSessions() map[uint64]snapSession {
	sessions := make(map[uint64]snapSession, len(kv.sessions))
	for id, s := range kv.sessions {
		sessions[id] = snapSession{lastActiveNano: s.lastActiveNano, forgottenBelow: s.forgottenBelow, responses: s.responses.appendTo(nil)}
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
