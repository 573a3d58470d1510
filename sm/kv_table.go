package sm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"unsafe"
)

// keyTable is KV's key → value map: an open-addressing hash table made for
// a store larger than the CPU caches, where a lookup costs its cache misses.
// A Go map spends one on the group's control word, one on the slot's string
// header and one on the key's bytes; here a get touches the slot's line and
// then one entry whose first bytes are the key. A put of a key of at most
// 8 bytes touches only the slot: the slot holds the key's length and first
// 8 bytes, and the value's length, so neither finding the key nor replacing
// its value reads the old entry.
//
//	slots (a power of two of them; linear probing from hash & (len-1)):
//
//	+----------+---------------+------------+--------------+------------+
//	| hash u64 | entry pointer | keyLen u32 | valueLen u32 | prefix u64 |
//	+----------+---------------+------------+--------------+------------+
//	  32 B, two to a cache line; entry nil: the slot is empty. The lengths
//	  are the entry's; prefix is the key's first 8 bytes, zero-padded.
//
//	entry (one allocation per key, in 8-byte words, written once and never
//	modified afterwards):
//
//	+------------+--------------+-----+-------+
//	| keyLen u32 | valueLen u32 | key | value |
//	+------------+--------------+-----+-------+
//
// The full hash sits in the slot, so a probe past another key almost never
// reads that key's entry, and growth rehashes without reading any entry.
// The entry keeps its own copy of the lengths, so a key or value handed
// out stays readable from the entry alone (all, a frozen clone).
//
// Deletion shifts the following entries of the probe run back (no
// tombstones), so the table's load is its key count and a miss ends at the
// first empty slot.
//
// Ownership: a set stores a new entry and never writes an old one, so keys
// and values handed out (get, all) stay valid and unchanged for as long as
// anyone holds them, with or without a lock. The table itself is not safe
// for concurrent use: KV serializes writers against readers with its mutex
// and, while a snapshot holds the table frozen, does not write it at all.
type keyTable struct {
	slots []slot // len is a power of two, at least keyTableSlotsMin
	count int    // occupied slots
	seed  maphash.Seed
}

type slot struct {
	hash             uint64
	entry            *entryHeader // nil: empty
	keyLen, valueLen uint32       // the entry's
	prefix           uint64       // keyPrefix of the entry's key
}

// slotPrefixBytes is how many of a key's first bytes its slot holds.
const slotPrefixBytes = 8

// keyPrefix returns key's first slotPrefixBytes bytes (zero-padded) as one
// word. With the length it decides equality for keys no longer than that,
// and tells most other unequal keys apart, without reading an entry.
func keyPrefix(key []byte) uint64 {
	if len(key) >= slotPrefixBytes {
		return binary.LittleEndian.Uint64(key)
	}
	var b [slotPrefixBytes]byte
	copy(b[:], key)
	return binary.LittleEndian.Uint64(b[:])
}

// holds reports whether the occupied slot s holds key (whose hash is h and
// prefix p). Only a key longer than 8 bytes whose hash, length and prefix
// all match is compared with the entry.
func (s *slot) holds(h, p uint64, key []byte) bool {
	if s.hash != h || s.keyLen != uint32(len(key)) || s.prefix != p {
		return false
	}
	return len(key) <= slotPrefixBytes || bytes.Equal(s.entry.key()[slotPrefixBytes:], key[slotPrefixBytes:])
}

func newSlot(h uint64, e *entryHeader, prefix uint64) slot {
	return slot{hash: h, entry: e, keyLen: e.keyLen, valueLen: e.valueLen, prefix: prefix}
}

// entryHeader starts an entry; the key and value bytes follow it in the same
// allocation.
type entryHeader struct{ keyLen, valueLen uint32 }

const (
	entryHeaderBytes = int(unsafe.Sizeof(entryHeader{}))
	// entryLenMax bounds a key's or a value's length: the entry stores them
	// as u32 (as does the snapshot stream).
	entryLenMax = math.MaxUint32
	// keyTableSlotsMin is an empty table's capacity.
	keyTableSlotsMin = 8
	// The table grows (doubles) before more than 3/4 of its slots would be
	// occupied. With linear probing that bounds the expected probe run to
	// 2.5 slots for a hit and 8.5 for a miss (Knuth); the slot array costs
	// 43 to 85 B per key.
	keyTableLoadMaxNumerator   = 3
	keyTableLoadMaxDenominator = 4
)

// newKeyTable returns an empty table sized for keys keys without growth.
func newKeyTable(keys int) *keyTable {
	n := keyTableSlotsMin
	for n*keyTableLoadMaxNumerator < keys*keyTableLoadMaxDenominator {
		n *= 2
	}
	return &keyTable{slots: make([]slot, n), seed: maphash.MakeSeed()}
}

// len returns the number of keys.
func (t *keyTable) len() int { return t.count }

// get returns key's value, capacity clipped; it does not allocate.
func (t *keyTable) get(key []byte) ([]byte, bool) {
	i, ok := t.find(maphash.Bytes(t.seed, key), key)
	if !ok {
		return nil, false
	}
	return t.slots[i].entry.value(), true
}

// set stores a copy of key and value in a new entry. It returns the length
// of the value it replaced, if there was one. The old value's length comes
// from the slot, and for a key of at most 8 bytes so does the match, so
// replacing a value reads the old entry only for a longer key.
func (t *keyTable) set(key, value []byte) (oldValueLen int, replaced bool) {
	h, p := maphash.Bytes(t.seed, key), keyPrefix(key)
	i, ok := t.findPrefixed(h, p, key)
	e := newEntry(key, value)
	if ok {
		s := &t.slots[i]
		oldValueLen = int(s.valueLen)
		s.entry, s.valueLen = e, e.valueLen
		if invariants {
			t.checkRun(i)
		}
		return oldValueLen, true
	}
	if (t.count+1)*keyTableLoadMaxDenominator > len(t.slots)*keyTableLoadMaxNumerator {
		t.grow()
		i, _ = t.findPrefixed(h, p, key)
	}
	t.slots[i] = newSlot(h, e, p)
	t.count++
	if invariants {
		t.checkRun(i)
	}
	return 0, false
}

// delete removes key. It returns the length of the value it held.
func (t *keyTable) delete(key []byte) (valueLen int, ok bool) {
	i, ok := t.find(maphash.Bytes(t.seed, key), key)
	if !ok {
		return 0, false
	}
	valueLen = int(t.slots[i].valueLen)
	t.removeAt(i)
	t.count--
	if invariants {
		t.checkRun(i)
	}
	return valueLen, true
}

// find returns the slot holding key, or else the empty slot that ends key's
// probe run (where key would go).
func (t *keyTable) find(h uint64, key []byte) (int, bool) {
	return t.findPrefixed(h, keyPrefix(key), key)
}

// findPrefixed is find with key's prefix already computed.
func (t *keyTable) findPrefixed(h, p uint64, key []byte) (int, bool) {
	mask := len(t.slots) - 1
	i := int(h) & mask
	for range len(t.slots) {
		s := &t.slots[i]
		if s.entry == nil {
			return i, false
		}
		if s.holds(h, p, key) {
			return i, true
		}
		i = (i + 1) & mask
	}
	panic("kraft: BUG: keyTable has no empty slot")
}

// removeAt empties slot i and moves back each entry after it in the probe
// run that may move (whose home is not between the hole and the entry, in
// probe order), so that every entry stays reachable from its home without
// crossing an empty slot.
func (t *keyTable) removeAt(i int) {
	mask := len(t.slots) - 1
	hole := i
	j := i
	for range len(t.slots) {
		j = (j + 1) & mask
		if t.slots[j].entry == nil {
			t.slots[hole] = slot{}
			return
		}
		// Distances in probe order, so the wrap-around needs no case.
		home := int(t.slots[j].hash) & mask
		if (j-home)&mask >= (j-hole)&mask {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	panic("kraft: BUG: keyTable has no empty slot")
}

// grow doubles the slot array. Each entry moves by its stored hash: no
// entry is read. It costs O(slots) on the caller, once per doubling.
func (t *keyTable) grow() {
	old := t.slots
	t.slots = make([]slot, 2*len(old))
	mask := len(t.slots) - 1
	for _, s := range old {
		if s.entry == nil {
			continue
		}
		i := int(s.hash) & mask
		for t.slots[i].entry != nil { // bounded: the new array is at most half full
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
	if invariants {
		t.check()
	}
}

// clone returns a table with the same keys that shares the (immutable)
// entries: O(slots), no entry is read or copied.
func (t *keyTable) clone() *keyTable {
	c := &keyTable{slots: make([]slot, len(t.slots)), count: t.count, seed: t.seed}
	copy(c.slots, t.slots)
	return c
}

// all yields every key and value once, in slot order (which varies from
// table to table: callers that need an order sort). The key string and the
// value alias the entry, which nobody modifies. The table must not be
// written during the iteration.
func (t *keyTable) all(yield func(key string, value []byte) bool) {
	for i := range t.slots {
		if e := t.slots[i].entry; e != nil {
			if !yield(e.keyString(), e.value()) {
				return
			}
		}
	}
}

// newEntry allocates an entry holding copies of key and value. The
// allocation is in 8-byte words so the header is aligned.
func newEntry(key, value []byte) *entryHeader {
	if len(key) > entryLenMax || len(value) > entryLenMax {
		panic(fmt.Sprintf("kraft: BUG: keyTable entry of a %d B key and a %d B value", len(key), len(value)))
	}
	n := entryHeaderBytes + len(key) + len(value)
	words := make([]uint64, (n+7)/8)
	e := (*entryHeader)(unsafe.Pointer(&words[0]))
	e.keyLen, e.valueLen = uint32(len(key)), uint32(len(value))
	b := e.bytes()
	copy(b[entryHeaderBytes:], key)
	copy(b[entryHeaderBytes+len(key):], value)
	return e
}

// bytes returns the entry's header, key and value.
func (e *entryHeader) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(e)), entryHeaderBytes+int(e.keyLen)+int(e.valueLen))
}

func (e *entryHeader) key() []byte {
	k := entryHeaderBytes + int(e.keyLen)
	return e.bytes()[entryHeaderBytes:k:k]
}

// keyString views the key as a string; sound because an entry is never
// modified.
func (e *entryHeader) keyString() string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(e), entryHeaderBytes)), int(e.keyLen))
}

// value returns the value with its capacity clipped, so that a caller's
// append copies instead of writing past it.
func (e *entryHeader) value() []byte {
	b := e.bytes()
	return b[entryHeaderBytes+int(e.keyLen) : len(b) : len(b)]
}

// hash returns key's hash in this table.
func (t *keyTable) hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// warm loads the home slot of each of n keys (at(i): its hash, whether
// the caller will read its value; ok false: skip i), then the entry there
// where the lookup or the caller will read it (a value to be read, a key
// longer than the slot's prefix), in two passes of independent loads, so
// that lookups of those keys soon after find them cached and the misses
// overlap instead of coming one after another. The result means nothing;
// callers keep it so that the loads are not optimized away.
func (t *keyTable) warm(n int, at func(i int) (h uint64, readsValue, ok bool)) uint64 {
	mask := len(t.slots) - 1
	var sink uint64
	for i := range n {
		if h, _, ok := at(i); ok {
			sink += t.slots[int(h)&mask].hash
		}
	}
	for i := range n {
		if h, readsValue, ok := at(i); ok {
			if s := &t.slots[int(h)&mask]; s.entry != nil && (readsValue || s.keyLen > slotPrefixBytes) {
				sink += uint64(s.entry.keyLen)
			}
		}
	}
	return sink
}

// bytesOf views s as bytes without copying, for lookups by a string key;
// callers only read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// checkRun checks the probe run (maximal stretch of occupied slots) around
// slot i: each entry in it is reachable from its home without crossing an
// empty slot, and its stored hash is its key's. Costly (it reads entries):
// invariants builds only.
func (t *keyTable) checkRun(i int) {
	mask := len(t.slots) - 1
	start := i
	for range len(t.slots) {
		if t.slots[start].entry == nil {
			break
		}
		start = (start - 1) & mask
	}
	// start is the empty slot before the run (or i itself when i is empty).
	for j, n := (start+1)&mask, 0; t.slots[j].entry != nil; j, n = (j+1)&mask, n+1 {
		if n >= len(t.slots) {
			panic("kraft: BUG: keyTable has no empty slot")
		}
		t.checkSlot(j, start)
	}
}

// checkSlot checks occupied slot j of the run that follows empty slot
// start.
func (t *keyTable) checkSlot(j, start int) {
	mask := len(t.slots) - 1
	s := t.slots[j]
	if h := maphash.Bytes(t.seed, s.entry.key()); h != s.hash {
		panic(fmt.Sprintf("kraft: BUG: keyTable slot %d holds hash %#x, its key hashes to %#x", j, s.hash, h))
	}
	if s.keyLen != s.entry.keyLen || s.valueLen != s.entry.valueLen || s.prefix != keyPrefix(s.entry.key()) {
		panic(fmt.Sprintf("kraft: BUG: keyTable slot %d holds lengths %d/%d and prefix %#x, its entry %d/%d and %#x",
			j, s.keyLen, s.valueLen, s.prefix, s.entry.keyLen, s.entry.valueLen, keyPrefix(s.entry.key())))
	}
	home := int(s.hash) & mask
	if (j-home)&mask >= (j-start)&mask {
		panic(fmt.Sprintf("kraft: BUG: keyTable slot %d (home %d) is cut off from its home by empty slot %d", j, home, start))
	}
}

// check checks every slot and the count. Costly: invariants builds only.
func (t *keyTable) check() {
	mask := len(t.slots) - 1
	if len(t.slots) < keyTableSlotsMin || len(t.slots)&mask != 0 {
		panic(fmt.Sprintf("kraft: BUG: keyTable has %d slots", len(t.slots)))
	}
	lastEmpty := -1
	for j := len(t.slots) - 1; j >= 0; j-- { // the last empty slot starts the run that wraps around
		if t.slots[j].entry == nil {
			lastEmpty = j
			break
		}
	}
	if lastEmpty < 0 {
		panic("kraft: BUG: keyTable has no empty slot")
	}
	count, empty := 0, lastEmpty
	for k := range len(t.slots) {
		j := (lastEmpty + 1 + k) & mask
		if t.slots[j].entry == nil {
			empty = j
			continue
		}
		t.checkSlot(j, empty)
		count++
	}
	if count != t.count {
		panic(fmt.Sprintf("kraft: BUG: keyTable counts %d keys, holds %d", t.count, count))
	}
}
