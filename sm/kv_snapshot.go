package sm

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/kraftdb/kraft/wire"
)

// KV snapshot stream (all integers little-endian):
//
//	header   magic "KVS1" u32 | applied u64 | nowNano u64 | nextSweepNano u64 |
//	         keys u64 | sessions u64
//	keys     (sorted) keyLen u32 | valueLen u32 | key | value
//	sessions (sorted by client ID) clientID u64 | lastActiveNano u64 |
//	         forgottenBelow u64 | responses u32 |
//	         (sorted by seq) seq u64 | status u8 | valueLen u32 | value
//	trailer  xxhash64 of every byte before it
//
// KV delta stream (SnapshotDelta; applies on top of the state at base):
//
//	header   magic "KVD1" u32 | base u64 | applied u64 | nowNano u64 |
//	         nextSweepNano u64 | changes u64 | sessions u64
//	changes  (sorted by key) op u8 (1 put, 2 delete) | keyLen u32 |
//	         [put: valueLen u32] | key | [put: value]
//	sessions as in a full snapshot: they replace the session table
//	trailer  xxhash64 of every byte before it
//
// Sorting makes snapshots of equal states byte-identical on every replica.
const (
	kvSnapshotMagic uint32 = 'K' | 'V'<<8 | 'S'<<16 | '1'<<24
	kvDeltaMagic    uint32 = 'K' | 'V'<<8 | 'D'<<16 | '1'<<24
	deltaOpPut      uint8  = 1
	deltaOpDelete   uint8  = 2
)

// ErrSnapshotCorrupt is wrapped by every Restore failure caused by the
// snapshot's bytes (as opposed to the reader's I/O errors).
var ErrSnapshotCorrupt = errors.New("kraft/sm: corrupt KV snapshot")

// ErrDeltaBase: RestoreDelta was given a delta whose base is not the
// store's current state (a missing or reordered link of a chain).
var ErrDeltaBase = errors.New("kraft/sm: KV delta snapshot does not apply to this state")

type snapSession struct {
	lastActiveNano int64
	forgottenBelow uint64
	responses      []cachedResponse // in seq order
}

type kvSnapshot struct {
	delta         bool
	base          uint64 // delta only
	applied       uint64
	nowNano       int64
	nextSweepNano int64
	// data is the store's key table, frozen until Release (or a private
	// clone when hold is nil); read-only here.
	data     *keyTable
	changed  map[string]struct{} // delta only: the keys written since base
	hold     *generation
	sessions map[uint64]snapSession
}

func (s *kvSnapshot) Release() {
	if s.hold != nil {
		s.hold.released.Store(true)
	}
	s.data, s.changed, s.sessions, s.hold = nil, nil, nil, nil
}

// hashWriter checksums everything written through it.
type hashWriter struct {
	w      io.Writer
	digest *xxhash.Digest
	n      int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	h.digest.Write(p)
	n, err := h.w.Write(p)
	h.n += int64(n)
	return n, err
}

// WriteTo streams the snapshot. It runs without any lock on the KV: the
// table it reads stays frozen until Release.
func (s *kvSnapshot) WriteTo(w io.Writer) (int64, error) {
	hw := &hashWriter{w: w, digest: xxhash.New()}
	bw := bufio.NewWriterSize(hw, 256<<10)
	var scratch [64]byte
	put := func(b []byte) { bw.Write(b) } // bufio keeps the first error; checked at Flush
	le := binary.LittleEndian

	if s.delta {
		h := le.AppendUint32(scratch[:0], kvDeltaMagic)
		h = le.AppendUint64(h, s.base)
		h = le.AppendUint64(h, s.applied)
		h = le.AppendUint64(h, uint64(s.nowNano))
		h = le.AppendUint64(h, uint64(s.nextSweepNano))
		h = le.AppendUint64(h, uint64(len(s.changed)))
		put(le.AppendUint64(h, uint64(len(s.sessions))))
		for _, k := range sortedKeys(s.changed) {
			v, ok := s.data.get(bytesOf(k))
			if !ok {
				put(le.AppendUint32(append(scratch[:0], deltaOpDelete), uint32(len(k))))
				bw.WriteString(k)
				continue
			}
			put(le.AppendUint32(le.AppendUint32(append(scratch[:0], deltaOpPut), uint32(len(k))), uint32(len(v))))
			bw.WriteString(k)
			put(v)
		}
	} else {
		h := le.AppendUint32(scratch[:0], kvSnapshotMagic)
		h = le.AppendUint64(h, s.applied)
		h = le.AppendUint64(h, uint64(s.nowNano))
		h = le.AppendUint64(h, uint64(s.nextSweepNano))
		h = le.AppendUint64(h, uint64(s.data.len()))
		put(le.AppendUint64(h, uint64(len(s.sessions))))
		for _, p := range sortedPairs(s.data) {
			put(le.AppendUint32(le.AppendUint32(scratch[:0], uint32(len(p.key))), uint32(len(p.value))))
			bw.WriteString(p.key)
			put(p.value)
		}
	}
	for _, id := range sortedKeys(s.sessions) {
		ss := s.sessions[id]
		b := le.AppendUint64(scratch[:0], id)
		b = le.AppendUint64(b, uint64(ss.lastActiveNano))
		b = le.AppendUint64(b, ss.forgottenBelow)
		put(le.AppendUint32(b, uint32(len(ss.responses))))
		for _, r := range ss.responses {
			b := le.AppendUint64(scratch[:0], r.seq)
			b = append(b, byte(r.status))
			put(le.AppendUint32(b, uint32(len(r.value))))
			put(r.value)
		}
	}
	if err := bw.Flush(); err != nil {
		return hw.n, fmt.Errorf("kraft/sm: writing KV snapshot: %w", err)
	}
	if _, err := w.Write(le.AppendUint64(scratch[:0], hw.digest.Sum64())); err != nil {
		return hw.n, fmt.Errorf("kraft/sm: writing KV snapshot: %w", err)
	}
	return hw.n + 8, nil
}

// snapReader decodes a snapshot stream while checksumming it. The first
// error sticks; later reads return zero values.
type snapReader struct {
	r      *bufio.Reader
	digest *xxhash.Digest
	err    error
	buf    [8]byte
}

func (sr *snapReader) fail(err error) {
	if sr.err == nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: stream ends early", ErrSnapshotCorrupt)
		}
		sr.err = err
	}
}

func (sr *snapReader) full(p []byte) {
	if sr.err != nil {
		return
	}
	if _, err := io.ReadFull(sr.r, p); err != nil {
		sr.fail(err)
		return
	}
	sr.digest.Write(p)
}

func (sr *snapReader) u64() uint64 {
	sr.full(sr.buf[:8])
	return binary.LittleEndian.Uint64(sr.buf[:8])
}
func (sr *snapReader) u32() uint32 {
	sr.full(sr.buf[:4])
	return binary.LittleEndian.Uint32(sr.buf[:4])
}
func (sr *snapReader) u8() uint8 { sr.full(sr.buf[:1]); return sr.buf[0] }

// bytes reads n bytes. Large lengths are read incrementally, so a corrupt
// length field cannot make Restore allocate more than the stream holds.
func (sr *snapReader) bytes(n uint32) []byte {
	if sr.err != nil {
		return nil
	}
	if n <= 64<<10 {
		p := make([]byte, n)
		sr.full(p)
		return p
	}
	var b bytes.Buffer
	if _, err := io.CopyN(&b, sr.r, int64(n)); err != nil {
		sr.fail(err)
		return nil
	}
	sr.digest.Write(b.Bytes())
	return b.Bytes()
}

// readSessions decodes the session section.
func (sr *snapReader) sessions(n uint64) map[uint64]*session {
	sessions := make(map[uint64]*session, min(n, 1<<16))
	var rs []cachedResponse // reused: setSorted copies
	for i := uint64(0); i < n && sr.err == nil; i++ {
		id := sr.u64()
		s := &session{lastActiveNano: int64(sr.u64()), forgottenBelow: sr.u64()}
		nResp := sr.u32()
		rs = rs[:0]
		for j := uint32(0); j < nResp && sr.err == nil; j++ {
			seq, status := sr.u64(), wire.Status(sr.u8())
			rs = append(rs, cachedResponse{seq: seq, status: status, value: sr.bytes(sr.u32())})
		}
		s.responses.setSorted(sortResponses(rs))
		sessions[id] = s
	}
	return sessions
}

// finish checks the trailer: the checksum, then nothing after it.
func (sr *snapReader) finish() error {
	if sr.err != nil {
		return sr.err
	}
	want := sr.digest.Sum64()
	var sum [8]byte
	if _, err := io.ReadFull(sr.r, sum[:]); err != nil {
		return fmt.Errorf("%w: missing checksum", ErrSnapshotCorrupt)
	}
	if got := binary.LittleEndian.Uint64(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %016x, computed %016x", ErrSnapshotCorrupt, got, want)
	}
	if n, _ := sr.r.Read(sum[:1]); n != 0 {
		return fmt.Errorf("%w: bytes after the checksum", ErrSnapshotCorrupt)
	}
	return nil
}

// Restore replaces the store's state with a snapshot's. The whole stream is
// decoded and its checksum verified before anything is replaced, so a
// corrupt or truncated snapshot leaves the store as it was.
func (kv *KV) Restore(r io.Reader) error {
	sr := &snapReader{r: bufio.NewReaderSize(r, 256<<10), digest: xxhash.New()}
	if m := sr.u32(); sr.err == nil && m != kvSnapshotMagic {
		if m == kvDeltaMagic {
			return fmt.Errorf("%w: a delta snapshot where a full one is expected", ErrSnapshotCorrupt)
		}
		return fmt.Errorf("%w: magic %#08x, want %#08x", ErrSnapshotCorrupt, m, kvSnapshotMagic)
	}
	applied, nowNano, nextSweep := sr.u64(), int64(sr.u64()), int64(sr.u64())
	nKeys, nSessions := sr.u64(), sr.u64()
	// Counts come from the stream: never trust them for preallocation.
	data := newKeyTable(int(min(nKeys, 1<<16)))
	var dataB int64
	for i := uint64(0); i < nKeys && sr.err == nil; i++ {
		kl, vl := sr.u32(), sr.u32()
		k, v := sr.bytes(kl), sr.bytes(vl)
		data.set(k, v)
		dataB += int64(len(k) + len(v))
	}
	sessions := sr.sessions(nSessions)
	if err := sr.finish(); err != nil {
		return err
	}
	if uint64(data.len()) != nKeys || uint64(len(sessions)) != nSessions {
		return fmt.Errorf("%w: duplicate keys or sessions", ErrSnapshotCorrupt)
	}
	if invariants {
		data.check()
	}
	kv.mu.Lock()
	// A snapshot still being written keeps the old table; this one is new.
	kv.data, kv.over, kv.overKeys, kv.hold = data, nil, nil, nil
	kv.keys, kv.dataB, kv.sessions, kv.applied, kv.nowNano, kv.nextSweepNano = data.len(), dataB, sessions, applied, nowNano, nextSweep
	kv.dirty, kv.captured = make(map[string]struct{}), applied
	kv.mu.Unlock()
	return nil
}

type deltaChange struct {
	key     []byte
	value   []byte
	deleted bool
}

// RestoreDelta applies a delta snapshot (IncrementalStateMachine) on top
// of the current state, which must be the state at the delta's base
// (ErrDeltaBase otherwise). The stream is decoded and verified first: on
// any error the store is left as it was.
func (kv *KV) RestoreDelta(r io.Reader) error {
	sr := &snapReader{r: bufio.NewReaderSize(r, 256<<10), digest: xxhash.New()}
	if m := sr.u32(); sr.err == nil && m != kvDeltaMagic {
		return fmt.Errorf("%w: magic %#08x, want the delta magic %#08x", ErrSnapshotCorrupt, m, kvDeltaMagic)
	}
	base, applied, nowNano, nextSweep := sr.u64(), sr.u64(), int64(sr.u64()), int64(sr.u64())
	nChanges, nSessions := sr.u64(), sr.u64()
	changes := make([]deltaChange, 0, min(nChanges, 1<<16))
	for i := uint64(0); i < nChanges && sr.err == nil; i++ {
		switch op := sr.u8(); {
		case sr.err != nil:
		case op == deltaOpPut:
			kl, vl := sr.u32(), sr.u32()
			changes = append(changes, deltaChange{key: sr.bytes(kl), value: sr.bytes(vl)})
		case op == deltaOpDelete:
			changes = append(changes, deltaChange{key: sr.bytes(sr.u32()), deleted: true})
		default:
			sr.fail(fmt.Errorf("%w: delta change %d has op %d", ErrSnapshotCorrupt, i, op))
		}
	}
	sessions := sr.sessions(nSessions)
	if err := sr.finish(); err != nil {
		return err
	}
	if uint64(len(sessions)) != nSessions {
		return fmt.Errorf("%w: duplicate sessions", ErrSnapshotCorrupt)
	}
	if applied < base {
		return fmt.Errorf("%w: delta from index %d back to %d", ErrSnapshotCorrupt, base, applied)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.applied != base {
		return fmt.Errorf("%w: delta on index %d, the state is at index %d", ErrDeltaBase, base, kv.applied)
	}
	for _, c := range changes {
		if c.deleted {
			kv.del(c.key)
		} else {
			kv.set(c.key, c.value)
		}
	}
	kv.sessions, kv.applied, kv.nowNano, kv.nextSweepNano = sessions, applied, nowNano, nextSweep
	kv.dirty, kv.captured = make(map[string]struct{}), applied
	return nil
}

// kvPair is one key and its value, with the key's first 16 bytes inline
// (big-endian, zero-padded) so that most comparisons never leave the slice.
type kvPair struct {
	hi, lo uint64
	key    string
	value  []byte
}

// sortedPairs returns t's entries in key order. Taking the values along
// while iterating avoids a random lookup per key, and ordering by the
// inline prefixes avoids most key dereferences: both were cache misses,
// and together most of a full snapshot's CPU (see
// perf/results/speedups.md). The prefixes are radix-sorted (least
// significant byte first, a pass skipped where all keys share the byte,
// which most do: 8-byte keys, common prefixes); runs of equal prefixes are
// then ordered by the whole key.
func sortedPairs(t *keyTable) []kvPair {
	ps := make([]kvPair, 0, t.len())
	for k, v := range t.all {
		stepAside(len(ps))
		var b [16]byte
		copy(b[:], k)
		ps = append(ps, kvPair{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), key: k, value: v})
	}
	if len(ps) < 256 {
		slices.SortFunc(ps, comparePairs)
		return ps
	}
	// Sort small (prefix, position) records, then gather the pairs.
	type rec struct {
		hi, lo uint64
		i      uint32
	}
	a := make([]rec, len(ps))
	for i := range ps {
		a[i] = rec{ps[i].hi, ps[i].lo, uint32(i)}
	}
	b := make([]rec, len(ps))
	for pass := 0; pass < 16; pass++ {
		shift := uint(8 * (pass % 8))
		digit := func(r *rec) int {
			if pass < 8 {
				return int(r.lo >> shift & 0xff)
			}
			return int(r.hi >> shift & 0xff)
		}
		var count [257]int
		for i := range a {
			stepAside(i)
			count[digit(&a[i])+1]++
		}
		if count[digit(&a[0])+1] == len(a) {
			continue // every key has the same byte here
		}
		for d := 1; d < 257; d++ {
			count[d] += count[d-1]
		}
		for i := range a {
			stepAside(i)
			d := digit(&a[i])
			b[count[d]] = a[i]
			count[d]++
		}
		a, b = b, a
	}
	out := make([]kvPair, len(ps))
	for i := range a {
		stepAside(i)
		out[i] = ps[a[i].i]
	}
	// Equal prefixes with different keys: zero padding orders a shorter key
	// like a longer one with zero bytes, so the full comparison decides.
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].hi == out[i].hi && out[j].lo == out[i].lo {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(out[i:j], comparePairs)
		}
		i = j
	}
	return out
}

func comparePairs(a, b kvPair) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return strings.Compare(a.key, b.key)
}

// stepAside yields the processor every stepAsideKeys keys that a
// snapshot's sort handles. WriteTo runs beside Apply and the node's other
// goroutines, and where they share one Go scheduler (GOMAXPROCS=1) the
// runtime would otherwise let the sort, most of a full snapshot's CPU, run
// 10 ms at a time while writes wait (perf/results/speedups.md, item 60).
// core yields the same way while the serialized bytes are written.
func stepAside(i int) {
	if i%stepAsideKeys == stepAsideKeys-1 {
		sortYields.Add(1)
		runtime.Gosched()
	}
}

// stepAsideKeys keys are well under a millisecond of any of the sort's
// loops on the development VM (a million keys sort in ~0.4 s).
const stepAsideKeys = 8192

// sortYields counts stepAside's yields, for tests.
var sortYields atomic.Uint64
