package sm

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"testing"
)

// checkTableMatches checks t against the model: every key found with its
// value, a key not in the model not found, and all yielding every pair once.
func checkTableMatches(t *testing.T, tab *keyTable, model map[string][]byte) {
	t.Helper()
	tab.check()
	if tab.len() != len(model) {
		t.Fatalf("table has %d keys, model %d", tab.len(), len(model))
	}
	seen := make(map[string]bool, len(model))
	for k, v := range tab.all {
		if seen[k] {
			t.Fatalf("all yields %q twice", k)
		}
		seen[k] = true
		want, ok := model[k]
		if !ok || !bytes.Equal(v, want) {
			t.Fatalf("all yields %q = %q, model has %q %v", k, v, want, ok)
		}
	}
	if len(seen) != len(model) {
		t.Fatalf("all yields %d keys, model has %d", len(seen), len(model))
	}
	for k, want := range model {
		if v, ok := tab.get([]byte(k)); !ok || !bytes.Equal(v, want) {
			t.Fatalf("get(%q) = %q %v, want %q", k, v, ok, want)
		}
	}
	if v, ok := tab.get([]byte("not a key of any model")); ok {
		t.Fatalf("get of a missing key = %q", v)
	}
}

// The table behaves as a Go map through phases that grow it, churn it at a
// steady size (deletes shift entries back, across the wrap-around too) and
// shrink it to empty; a clone taken midway keeps its own contents.
func TestKeyTableMatchesAMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			tab, model := newKeyTable(0), map[string][]byte{}
			space := 3000 // keys drawn from a space a few times the live count: many misses, updates and re-inserts
			key := func() string {
				n := rng.IntN(space)
				return fmt.Sprintf("%0*d", n%17, n) // lengths 0 to 16 (a key of "" included)
			}
			op := func(pDelete float64) {
				k := key()
				if rng.Float64() < pDelete {
					want, had := model[k]
					n, ok := tab.delete([]byte(k))
					if ok != had || n != len(want) {
						t.Fatalf("delete(%q) = %d %v, model %d %v", k, n, ok, len(want), had)
					}
					delete(model, k)
					return
				}
				v := make([]byte, rng.IntN(40))
				for i := range v {
					v[i] = byte(rng.Uint32())
				}
				old, had := model[k]
				n, replaced := tab.set([]byte(k), v)
				if replaced != had || n != len(old) {
					t.Fatalf("set(%q) replaced %d %v, model %d %v", k, n, replaced, len(old), had)
				}
				model[k] = bytes.Clone(v)
				for i := range v { // the table holds a copy: scribble on ours
					v[i] ^= 0xff
				}
			}
			phases := []struct {
				ops     int
				pDelete float64
			}{
				{4000, 0.1},  // grow
				{20000, 0.5}, // churn at a steady size
				{4000, 0.9},  // delete-heavy: long backward shifts
				{4000, 0.3},
			}
			var cloned *keyTable
			var clonedModel map[string][]byte
			for pi, p := range phases {
				for i := range p.ops {
					op(p.pDelete)
					if i%97 == 0 {
						checkTableMatches(t, tab, model)
					}
				}
				checkTableMatches(t, tab, model)
				if pi == 1 {
					cloned, clonedModel = tab.clone(), make(map[string][]byte, len(model))
					for k, v := range model {
						clonedModel[k] = v
					}
				}
			}
			for _, k := range sortedKeys(model) { // empty it
				if _, ok := tab.delete([]byte(k)); !ok {
					t.Fatalf("delete(%q) of a present key failed", k)
				}
				delete(model, k)
				if len(model)%97 == 0 {
					checkTableMatches(t, tab, model)
				}
			}
			if tab.len() != 0 {
				t.Fatalf("%d keys left", tab.len())
			}
			checkTableMatches(t, cloned, clonedModel)
		})
	}
}

// keysWithHomes returns keys whose home slots in a table of n slots are
// homes, in order (found by trying keys: the seed is random).
func keysWithHomes(t *testing.T, tab *keyTable, n int, homes ...int) [][]byte {
	t.Helper()
	keys := make([][]byte, len(homes))
	used := map[string]bool{}
	for i, h := range homes {
		for c := 0; keys[i] == nil; c++ {
			if c > 1_000_000 {
				t.Fatal("no key found for a home")
			}
			k := fmt.Sprint("k", c)
			if !used[k] && int(maphash.String(tab.seed, k))&(n-1) == h {
				keys[i], used[k] = []byte(k), true
			}
		}
	}
	return keys
}

// A deletion moves back the entries of a run that wraps around the end of
// the slot array, and only those that may move: an entry at its home stays.
func TestKeyTableDeleteShiftsAcrossTheWrapAround(t *testing.T) {
	const slots = 16
	layouts := []struct {
		homes []int
		// emptied is the slot a deletion of key i leaves empty.
		emptied func(i int) int
	}{
		// Homes 13, 13, 14, 15, 15, 0, 2 fill slots 13 to 3: every entry
		// after the deleted one moves back, the run's end empties.
		{[]int{13, 13, 14, 15, 15, 0, 2}, func(int) int { return 3 }},
		// The last key sits at its home, slot 3: it never moves.
		{[]int{13, 13, 14, 15, 15, 0, 3}, func(i int) int { return map[bool]int{true: 3, false: 2}[i == 6] }},
	}
	for li, l := range layouts {
		for victim := range l.homes {
			tab := newKeyTable(0)
			tab.slots = make([]slot, slots) // room for 12 keys: no growth below
			keys := keysWithHomes(t, tab, slots, l.homes...)
			model := map[string][]byte{}
			for i, k := range keys {
				tab.set(k, []byte{byte(i)})
				model[string(k)] = []byte{byte(i)}
			}
			if tab.slots[12].entry != nil || tab.slots[0].entry == nil || tab.slots[3].entry == nil || tab.slots[4].entry != nil {
				t.Fatalf("layout %d: the run does not wrap around as planned", li)
			}
			if _, ok := tab.delete(keys[victim]); !ok {
				t.Fatalf("layout %d: delete of key %d failed", li, victim)
			}
			delete(model, string(keys[victim]))
			checkTableMatches(t, tab, model)
			for j := 13; j != 4; j = (j + 1) % slots {
				if (tab.slots[j].entry == nil) != (j == l.emptied(victim)) {
					t.Fatalf("layout %d, key %d deleted: slot %d empty %v, want slot %d emptied", li, victim, j, tab.slots[j].entry == nil, l.emptied(victim))
				}
			}
		}
	}
}

// Keys and values handed out are never modified by later writes, and a
// value's capacity is clipped so that appending to it copies.
func TestKeyTableValuesHandedOutStayUnchanged(t *testing.T) {
	tab := newKeyTable(0)
	tab.set([]byte("a"), []byte("first"))
	tab.set([]byte("b"), []byte("other"))
	v, _ := tab.get([]byte("a"))
	var k0 string
	for k := range tab.all {
		k0 = k
		break
	}
	if cap(v) != len(v) {
		t.Fatalf("value capacity %d beyond its length %d", cap(v), len(v))
	}
	_ = append(v, "XXXXXXXXXXXXXXXX"...)
	tab.set([]byte("a"), []byte("secnd")) // same length: still a new entry
	for i := range 100 {                  // growth moves slots, not entries
		tab.set(fmt.Appendf(nil, "key-%d", i), []byte("filler"))
	}
	tab.delete([]byte("a"))
	if string(v) != "first" || (k0 != "a" && k0 != "b") {
		t.Fatalf("handed-out value %q, key %q changed", v, k0)
	}
	if b, _ := tab.get([]byte("b")); string(b) != "other" {
		t.Fatalf("append to a value changed the next key's value: %q", b)
	}
}

// Same at the KV's surface: a value Get returned survives a put of the same
// key, one of the same length included.
func TestKVGetValueSurvivesLaterPuts(t *testing.T) {
	kv, _ := NewKV(DefaultKVConfig())
	kv.Put1ForTest("k", "value-1")
	v, _ := kv.Get([]byte("k"))
	kv.Put1ForTest("k", "value-2")
	if string(v) != "value-1" || cap(v) != len(v) {
		t.Fatalf("Get's value became %q (cap %d)", v, cap(v))
	}
	if w, _ := kv.Get([]byte("k")); string(w) != "value-2" {
		t.Fatalf("Get after the put = %q", w)
	}
}

// Lookups by a []byte key do not allocate: table hits and misses, and Get
// with and without an overlay in front of the table.
func TestKeyLookupsDoNotAllocate(t *testing.T) {
	kv, _ := NewKV(DefaultKVConfig())
	for i := range 1000 {
		kv.Put1ForTest(fmt.Sprint("key-", i), "value")
	}
	hit, miss := []byte("key-500"), []byte("key-none")
	check := func(what string) {
		t.Helper()
		if n := testing.AllocsPerRun(100, func() {
			kv.data.get(hit)
			kv.data.get(miss)
			kv.Get(hit)
			kv.Get(miss)
		}); n != 0 {
			t.Fatalf("%s: %v allocations per lookup round", what, n)
		}
	}
	check("no overlay")
	s, _ := kv.Snapshot()
	kv.Put1ForTest("key-500", "in the overlay")
	check("overlay")
	if v, _ := kv.Get(hit); string(v) != "in the overlay" {
		t.Fatalf("Get through the overlay = %q", v)
	}
	s.Release()
}

// BenchmarkKeyTableGet: hits on a table larger than the CPU caches, against
// a Go map of the same keys (what KV held before). The queries are copies
// of the keys, so a lookup reads the stored key where it lies.
//
//	go test ./sm -run '^$' -bench KeyTableGet -benchmem -count 6
func BenchmarkKeyTableGet(b *testing.B) {
	const keys, queries = 1 << 20, 1 << 16
	value := make([]byte, 128)
	tab, m := newKeyTable(0), make(map[string][]byte)
	for i := range keys {
		k := fmt.Appendf(nil, "key-%012d", i)
		tab.set(k, value)
		m[string(k)] = bytes.Clone(value)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	qs := make([][]byte, queries)
	for i := range qs {
		qs[i] = fmt.Appendf(nil, "key-%012d", rng.IntN(keys))
	}
	b.Run("keyTable", func(b *testing.B) {
		runtime.GC()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, ok := tab.get(qs[i&(queries-1)]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		runtime.GC()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, ok := m[string(qs[i&(queries-1)])]; !ok {
				b.Fatal("miss")
			}
		}
	})
}

// Keys that a slot's length and 8-byte prefix alone do not tell apart
// (zero bytes at the end, a shared first 8 bytes) are distinct keys, even
// when their hashes collide: holds compares the entry for keys longer than
// 8 bytes, and the length for shorter ones.
func TestKeyTableKeysAlikeInTheirSlot(t *testing.T) {
	keys := []string{"", "\x00", "\x00\x00", "ab", "ab\x00", "ab\x00\x00\x00\x00\x00\x00",
		"abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefghj", "abcdefghij", "abcdefghik"}
	tab, model := newKeyTable(0), map[string][]byte{}
	for i, k := range keys {
		if _, replaced := tab.set([]byte(k), []byte(fmt.Sprint("v", i))); replaced {
			t.Fatalf("set(%q) replaced the value of another key", k)
		}
		model[k] = []byte(fmt.Sprint("v", i))
	}
	checkTableMatches(t, tab, model)
	for i, k := range keys { // each replaced once: one key each, not two
		if n, replaced := tab.set([]byte(k), []byte(fmt.Sprint("w", i))); !replaced || n != len(model[k]) {
			t.Fatalf("second set(%q) = %d %v, want %d true", k, n, replaced, len(model[k]))
		}
		model[k] = []byte(fmt.Sprint("w", i))
	}
	checkTableMatches(t, tab, model)

	// A hash collision: every pair under one hash.
	const h = 0x5eed
	for _, a := range keys {
		s := newSlot(h, newEntry([]byte(a), nil), keyPrefix([]byte(a)))
		for _, b := range keys {
			if got := s.holds(h, keyPrefix([]byte(b)), []byte(b)); got != (a == b) {
				t.Fatalf("slot of %q holds %q: %v", a, b, got)
			}
		}
	}
}

// A put of a key of at most 8 bytes replaces its value without reading the
// old entry: here the old entry is scribbled over first (which nothing
// else may do), and the put still finds its key in the slot. Longer keys
// still compare the entry.
func TestKeyTableShortKeyPutReadsNoEntry(t *testing.T) {
	tab := newKeyTable(0)
	key := []byte("8 bytes!")
	tab.set(key, []byte("old"))
	i, _ := tab.find(tab.hash(key), key)
	old := tab.slots[i].entry
	clear(old.bytes()[entryHeaderBytes:]) // the key's bytes, as the entry holds them
	old.keyLen, old.valueLen = 0, 0
	if n, replaced := tab.set(key, []byte("new")); !replaced || n != 3 || tab.len() != 1 {
		t.Fatalf("set over a scribbled entry = %d %v with %d keys, want 3 true 1", n, replaced, tab.len())
	}
	if v, ok := tab.get(key); !ok || string(v) != "new" {
		t.Fatalf("get = %q %v", v, ok)
	}
}
