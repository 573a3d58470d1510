package sm

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// KVConfig bounds the reference key-value store's memory for sessions. The
// limits are part of the replicated behaviour: every replica must run with
// the same values (kraftd takes them from cluster-wide configuration).
type KVConfig struct {
	// SessionTimeout expires a client session idle for this long, measured
	// on the leader's clock stamps carried in the log (deterministic).
	SessionTimeout time.Duration
	// MaxSessions caps live sessions; beyond it the least recently used
	// session is expired.
	MaxSessions int
	// MaxCachedResponsesPerSession caps the responses a session remembers
	// for retries; a client pipelining deeper than this loses the ability to
	// retry its oldest requests (they get an error, never a re-apply).
	MaxCachedResponsesPerSession int
}

// DefaultKVConfig matches the reference implementation's session defaults.
func DefaultKVConfig() KVConfig {
	return KVConfig{SessionTimeout: 60 * time.Second, MaxSessions: 100_000, MaxCachedResponsesPerSession: 1024}
}

// Validate checks the configuration.
func (c KVConfig) Validate() error {
	switch {
	case c.SessionTimeout <= 0:
		return fmt.Errorf("kraft/sm: SessionTimeout must be positive, got %v", c.SessionTimeout)
	case c.MaxSessions <= 0:
		return fmt.Errorf("kraft/sm: MaxSessions must be positive, got %d", c.MaxSessions)
	case c.MaxCachedResponsesPerSession <= 0:
		return fmt.Errorf("kraft/sm: MaxCachedResponsesPerSession must be positive, got %d", c.MaxCachedResponsesPerSession)
	}
	return nil
}

// response is a cached answer to one write, replayed on a retry.
type response struct {
	status wire.Status
	value  []byte
}

// session remembers what one client's writes returned.
type session struct {
	lastActiveNano int64
	// forgottenBelow: every seq below it was answered and acknowledged by
	// the client (or evicted from the cache); a request below it is stale.
	forgottenBelow uint64
	responses      responseCache // kv_session.go
}

// KV is the reference state machine kraftd serves: put, get, delete and
// compare-and-swap on byte keys, with client sessions for exactly-once
// writes. Apply runs on one goroutine; Get may be called from any goroutine.
//
// Snapshots are cheap to capture (see kv_generations.go): a capture freezes
// the key table as it is and later writes go to an overlay until the
// snapshot is released, so the capture costs O(sessions), not O(keys), on
// the Apply goroutine, and WriteTo streams the frozen table on another
// goroutine. Values are never modified in place (a put stores a copy).
type KV struct {
	cfg KVConfig

	mu sync.RWMutex // guards the fields below against concurrent Get; Apply holds it per batch
	// data holds the keys (kv_table.go), except while a snapshot holds it
	// frozen: then writes go to over until the snapshot is released and the
	// overlay is drained back into data (see kv_generations.go).
	data     *keyTable
	over     map[string]overlayValue
	overKeys []string    // keys of over in insertion order: the drain's queue
	hold     *generation // the snapshot holding data frozen (or draining); nil if none
	keys     int         // number of live keys (data and over together)
	dataB    int64       // sum of live key and value lengths
	// dirty names the keys written since the last capture (Snapshot,
	// SnapshotDelta) or restore, for delta snapshots; nil after it grew
	// past deltaMaxKeys (the next delta would not be worth it).
	dirty    map[string]struct{}
	captured uint64 // applied index at the last capture or restore: a delta's base
	applied  uint64 // index of the last applied command
	sessions map[uint64]*session
	// nowNano is the newest leader stamp applied: the store's clock.
	nowNano       int64
	nextSweepNano int64
	// batch holds the decoded commands of the Apply in progress (Apply
	// goroutine only; reused, so steady state allocates nothing).
	batch    []decodedCommand
	warmSink uint64        // keeps warm's loads from being optimized away
	getSink  atomic.Uint64 // the same for GetMany, which runs under the read lock
}

// decodedCommand is one command of an Apply batch, decoded up front so
// that warm can touch what the batch's keys need before they are applied.
type decodedCommand struct {
	stamp int64
	err   error
	req   wire.ClientRequest
	hash  uint64 // of req.Key in data, when err is nil
}

// NewKV returns an empty store.
func NewKV(cfg KVConfig) (*KV, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &KV{cfg: cfg, data: newKeyTable(0), sessions: make(map[uint64]*session), dirty: make(map[string]struct{})}, nil
}

// Get returns the value of key as of the last applied command. The returned
// slice must not be modified.
func (kv *KV) Get(key []byte) ([]byte, bool) {
	kv.mu.RLock()
	v, ok := kv.lookup(key)
	kv.mu.RUnlock()
	return v, ok
}

// GetMany looks up keys[i] into values[i] and found[i] (both len(keys)),
// as of the last applied command, under one read lock: Get for a batch.
// It touches every key's table slot, then entry, before looking any up,
// so that their cache misses overlap (see warm). The values must not be
// modified.
func (kv *KV) GetMany(keys, values [][]byte, found []bool) {
	if len(values) != len(keys) || len(found) != len(keys) {
		panic("kraft: BUG: KV.GetMany with slices of different lengths")
	}
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	if len(keys) > 1 {
		kv.getSink.Store(kv.data.warm(len(keys), func(i int) (uint64, bool, bool) { return kv.data.hash(keys[i]), true, true }))
	}
	for i, k := range keys {
		values[i], found[i] = kv.lookup(k)
	}
}

// Applied returns the index of the last applied command.
func (kv *KV) Applied() uint64 {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.applied
}

// Len returns the number of keys.
func (kv *KV) Len() int {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.keys
}

// kvEntryOverheadBytes approximates what a key costs beyond its key and
// value bytes, for SizeBytes: its slot in the table (32 B at a load of 3/8
// to 3/4: 43 to 85 B per key), the entry's header (8 B) and the
// allocator's rounding up to a size class (8 B for a 152 B entry).
// Measured: 1M keys of 16 B with 128 B values take 227 B of heap per key,
// 83 B beyond their bytes (at a load of 1/2).
const kvEntryOverheadBytes = 80

// SizeBytes estimates the memory the keys and values hold: their bytes
// plus a per-key overhead for the table.
func (kv *KV) SizeBytes() int64 {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.dataB + int64(kv.keys)*kvEntryOverheadBytes
}

// Sessions returns the number of live client sessions.
func (kv *KV) Sessions() int {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return len(kv.sessions)
}

// Apply applies a batch of commands. results[i].Value is the wire.Status of
// cmds[i] and results[i].Data the value it returns (get, or the current value
// on a failed cas). An undecodable command is answered with StatusError; it
// changes nothing, the same way on every replica.
func (kv *KV) Apply(cmds []Command, results []Result) {
	if len(results) != len(cmds) {
		panic("kraft: BUG: KV.Apply with len(results) != len(cmds)")
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.drainOverlay(drainPerCommand * len(cmds))
	kv.decodeBatch(cmds)
	kv.warm()
	for i := range cmds {
		c := &cmds[i]
		if c.Index <= kv.applied {
			panic(fmt.Sprintf("kraft: BUG: KV.Apply index %d after %d", c.Index, kv.applied))
		}
		kv.applied = c.Index
		status, value := kv.applyOne(&kv.batch[i])
		results[i] = Result{Value: uint64(status), Data: value}
	}
	clear(kv.batch) // drop the references into cmds
}

// decodeBatch decodes cmds into kv.batch.
func (kv *KV) decodeBatch(cmds []Command) {
	if cap(kv.batch) < len(cmds) {
		kv.batch = make([]decodedCommand, len(cmds))
	}
	kv.batch = kv.batch[:len(cmds)]
	for i := range cmds {
		d := &kv.batch[i]
		d.stamp, d.err = decodeCommand(cmds[i].Data, &d.req)
		if d.err == nil {
			d.hash = kv.data.hash(d.req.Key)
		}
	}
}

// warm touches the table slot that each command of the batch will look
// up, and then the entry where the command reads it (keyTable.warm: a get
// or a compare-and-swap reads the value; a put or delete of a key longer
// than 8 bytes compares the key): the CPU overlaps their cache misses,
// where applying the commands one by one waits for each miss in turn (a
// store larger than the caches spends most of a put there).
func (kv *KV) warm() {
	if len(kv.batch) < 2 {
		return
	}
	kv.warmSink += kv.data.warm(len(kv.batch), func(i int) (uint64, bool, bool) {
		d := &kv.batch[i]
		return d.hash, d.req.Op == wire.OpGet || d.req.Op == wire.OpCAS, d.err == nil
	})
}

func (kv *KV) applyOne(d *decodedCommand) (wire.Status, []byte) {
	stamp, err := d.stamp, d.err
	if err != nil {
		return wire.StatusError, []byte(err.Error())
	}
	if stamp > kv.nowNano {
		kv.nowNano = stamp
	}
	kv.maybeExpireSessions()
	r := &d.req
	if r.Op == wire.OpGet {
		v, ok := kv.lookup(r.Key)
		if !ok {
			return wire.StatusNotFound, nil
		}
		return wire.StatusOK, v
	}
	s, status, value := kv.sessionFor(r)
	if s == nil {
		return status, value
	}
	if cached, ok := s.responses.get(r.Seq); ok {
		s.lastActiveNano = kv.nowNano
		return cached.status, cached.value
	}
	status, value = kv.write(r)
	kv.remember(s, r.Seq, response{status: status, value: value})
	return status, value
}

// sessionFor returns the session a write runs in, or nil with the status
// that answers the request instead.
func (kv *KV) sessionFor(r *wire.ClientRequest) (*session, wire.Status, []byte) {
	s := kv.sessions[r.ClientID]
	if s == nil {
		if !r.NewSession {
			return nil, wire.StatusSessionExpired, []byte(fmt.Sprintf("session of client %d expired or unknown; start a new session", r.ClientID))
		}
		if len(kv.sessions) >= kv.cfg.MaxSessions {
			kv.evictLeastRecentSession()
		}
		s = &session{}
		kv.sessions[r.ClientID] = s
	}
	s.lastActiveNano = kv.nowNano
	// Responses the client has acknowledged are forgotten.
	if r.FirstUnacked > s.forgottenBelow {
		s.responses.forgetBelow(r.FirstUnacked) // O(1) per response forgotten
		s.forgottenBelow = r.FirstUnacked
	}
	if r.Seq < s.forgottenBelow {
		if _, ok := s.responses.get(r.Seq); !ok {
			return nil, wire.StatusError, []byte(fmt.Sprintf("request %d of client %d was already answered and its response forgotten", r.Seq, r.ClientID))
		}
	}
	return s, 0, nil
}

// remember caches a response, evicting the oldest beyond the per-session
// cap. The seq is not cached, and is at or above forgottenBelow (sessionFor
// refuses the others); if it is older than every cached one and the cache
// is full, it is kept and the (younger) oldest entry evicted: it ends up
// below forgottenBelow, answering its retries, and is the next to go.
func (kv *KV) remember(s *session, seq uint64, resp response) {
	if s.responses.len() >= kv.cfg.MaxCachedResponsesPerSession {
		oldest := s.responses.popOldest()
		s.forgottenBelow = max(s.forgottenBelow, oldest+1)
	}
	s.responses.add(seq, resp)
}

func (kv *KV) write(r *wire.ClientRequest) (wire.Status, []byte) {
	switch r.Op {
	case wire.OpPut:
		kv.set(r.Key, r.Value)
		return wire.StatusOK, nil
	case wire.OpDelete:
		if !kv.del(r.Key) {
			return wire.StatusNotFound, nil
		}
		return wire.StatusOK, nil
	case wire.OpCAS:
		cur, ok := kv.lookup(r.Key)
		if !ok {
			return wire.StatusNotFound, nil
		}
		if !bytes.Equal(cur, r.Expect) {
			return wire.StatusCompareFailed, cur
		}
		kv.set(r.Key, r.Value)
		return wire.StatusOK, nil
	}
	panic("kraft: BUG: KV.write with op " + r.Op.String()) // decode admits no other op
}

// set stores a copy of key and value, keeping keys and dataB current.
// Without an overlay it is one probe of the table.
func (kv *KV) set(key, value []byte) {
	oldLen, replaced := 0, false
	if kv.over == nil {
		oldLen, replaced = kv.data.set(key, value)
	} else {
		var old []byte
		old, replaced = kv.lookup(key)
		oldLen = len(old)
		kv.storeOverlaid(key, append(make([]byte, 0, len(value)), value...), false)
	}
	if replaced {
		kv.dataB -= int64(len(key) + oldLen)
	} else {
		kv.keys++
	}
	kv.dataB += int64(len(key) + len(value))
	kv.markDirty(key)
}

// del removes key; false if it was not there.
func (kv *KV) del(key []byte) bool {
	oldLen, ok := 0, false
	if kv.over == nil {
		oldLen, ok = kv.data.delete(key)
	} else {
		var old []byte
		if old, ok = kv.lookup(key); ok {
			oldLen = len(old)
			kv.storeOverlaid(key, nil, true)
		}
	}
	if !ok {
		return false
	}
	kv.keys--
	kv.dataB -= int64(len(key) + oldLen)
	kv.markDirty(key)
	return true
}

// maybeExpireSessions sweeps idle sessions at most twice per timeout, so
// Apply pays O(sessions) rarely. Only log stamps drive it.
func (kv *KV) maybeExpireSessions() {
	if kv.nowNano < kv.nextSweepNano {
		return
	}
	timeout := kv.cfg.SessionTimeout.Nanoseconds()
	kv.nextSweepNano = kv.nowNano + timeout/2
	for id, s := range kv.sessions {
		if kv.nowNano-s.lastActiveNano > timeout {
			delete(kv.sessions, id)
		}
	}
}

// evictLeastRecentSession removes the session idle longest, ties broken by
// client ID so that every replica evicts the same one.
func (kv *KV) evictLeastRecentSession() {
	var victim uint64
	var victimActive int64
	first := true
	for id, s := range kv.sessions {
		if first || s.lastActiveNano < victimActive || (s.lastActiveNano == victimActive && id < victim) {
			victim, victimActive, first = id, s.lastActiveNano, false
		}
	}
	delete(kv.sessions, victim)
}

// sortedKeys returns m's keys in order, so snapshots of equal states are
// byte-identical on every replica.
func sortedKeys[K ~string | ~uint64, V any](m map[K]V) []K {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}
