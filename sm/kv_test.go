package sm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// harness applies client requests one at a time with a controllable leader
// clock and consecutive indexes.
type harness struct {
	t     *testing.T
	kv    *KV
	index uint64
	now   int64
}

func newHarness(t *testing.T, cfg KVConfig) *harness {
	kv, err := NewKV(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, kv: kv, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
}

func command(now int64, r wire.ClientRequest) []byte {
	frame := wire.AppendClientRequest(nil, &r)
	return AppendCommand(nil, now, frame[wire.FrameHeaderSize:])
}

func (h *harness) apply(r wire.ClientRequest) (wire.Status, string) {
	h.index++
	res := make([]Result, 1)
	h.kv.Apply([]Command{{Index: h.index, Term: 1, Data: command(h.now, r)}}, res)
	return wire.Status(res[0].Value), string(res[0].Data)
}

func (h *harness) expect(r wire.ClientRequest, status wire.Status, value string) {
	h.t.Helper()
	gotS, gotV := h.apply(r)
	if gotS != status || (value != "*" && gotV != value) {
		h.t.Fatalf("%v seq %d %q: got %v %q, want %v %q", r.Op, r.Seq, r.Key, gotS, gotV, status, value)
	}
}

// client numbers its requests like a well-behaved client: it flags
// NewSession until its first write (reads open no session).
type client struct {
	id, seq uint64
	opened  bool
}

func (c *client) req(op wire.Op, key, value, expect string) wire.ClientRequest {
	c.seq++
	r := wire.ClientRequest{ClientID: c.id, Seq: c.seq, FirstUnacked: c.seq, NewSession: !c.opened,
		Op: op, Key: []byte(key), Value: []byte(value), Expect: []byte(expect)}
	c.opened = c.opened || op != wire.OpGet
	return r
}

func TestKVOperations(t *testing.T) {
	h := newHarness(t, DefaultKVConfig())
	c := &client{id: 1}
	h.expect(c.req(wire.OpGet, "k", "", ""), wire.StatusNotFound, "")
	h.expect(c.req(wire.OpPut, "k", "v1", ""), wire.StatusOK, "")
	h.expect(c.req(wire.OpGet, "k", "", ""), wire.StatusOK, "v1")
	h.expect(c.req(wire.OpCAS, "k", "v2", "nope"), wire.StatusCompareFailed, "v1")
	h.expect(c.req(wire.OpCAS, "k", "v2", "v1"), wire.StatusOK, "")
	h.expect(c.req(wire.OpCAS, "missing", "x", ""), wire.StatusNotFound, "")
	if v, ok := h.kv.Get([]byte("k")); !ok || string(v) != "v2" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	h.expect(c.req(wire.OpDelete, "k", "", ""), wire.StatusOK, "")
	h.expect(c.req(wire.OpDelete, "k", "", ""), wire.StatusNotFound, "")
	h.expect(c.req(wire.OpPut, "", "empty key is a key", ""), wire.StatusOK, "")
	if h.kv.Len() != 1 || h.kv.Applied() != h.index {
		t.Fatalf("Len %d Applied %d", h.kv.Len(), h.kv.Applied())
	}
	// One key "" with an 18-byte value is left.
	if got := h.kv.SizeBytes(); got != 18+kvEntryOverheadBytes {
		t.Fatalf("SizeBytes = %d", got)
	}
}

// GetMany answers as Get does, key by key, with hits, misses, an empty
// value, a key given twice, and writes made while a snapshot holds the
// table frozen (the overlay).
func TestKVGetManyMatchesGet(t *testing.T) {
	h := newHarness(t, DefaultKVConfig())
	c := &client{id: 1}
	for i := range 200 {
		h.expect(c.req(wire.OpPut, fmt.Sprint("k", i), fmt.Sprint("v", i), ""), wire.StatusOK, "")
	}
	h.expect(c.req(wire.OpPut, "empty", "", ""), wire.StatusOK, "")
	snap, err := h.kv.Snapshot() // freezes the table: the writes below go to the overlay
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	h.expect(c.req(wire.OpPut, "k1", "new", ""), wire.StatusOK, "")
	h.expect(c.req(wire.OpDelete, "k2", "", ""), wire.StatusOK, "")
	h.expect(c.req(wire.OpPut, "fresh", "f", ""), wire.StatusOK, "")
	var keys [][]byte
	for _, k := range []string{"k0", "k1", "k2", "k3", "k199", "k200", "missing", "empty", "fresh", "k0"} {
		keys = append(keys, []byte(k))
	}
	for n := 0; n <= len(keys); n++ { // every length, 0 and 1 included
		values, found := make([][]byte, n), make([]bool, n)
		h.kv.GetMany(keys[:n], values, found)
		for i, k := range keys[:n] {
			v, ok := h.kv.Get(k)
			if found[i] != ok || string(values[i]) != string(v) {
				t.Fatalf("GetMany of %d keys: %q = %q %v, Get says %q %v", n, k, values[i], found[i], v, ok)
			}
		}
	}
	if v, ok := h.kv.Get([]byte("k1")); !ok || string(v) != "new" {
		t.Fatalf("k1 = %q %v", v, ok)
	}
}

func TestKVValuesDoNotAliasCommandBuffers(t *testing.T) {
	kv, _ := NewKV(DefaultKVConfig())
	data := command(1, wire.ClientRequest{ClientID: 1, Seq: 1, FirstUnacked: 1, NewSession: true, Op: wire.OpPut, Key: []byte("k"), Value: []byte("value")})
	kv.Apply([]Command{{Index: 1, Data: data}}, make([]Result, 1))
	clear(data) // the node reuses its buffers after Apply
	if v, _ := kv.Get([]byte("k")); string(v) != "value" {
		t.Fatalf("stored value changed with the command buffer: %q", v)
	}
}

// A retried write is applied once: the retry of a successful CAS would fail
// its comparison if it were applied again.
func TestKVRetryIsAppliedOnce(t *testing.T) {
	h := newHarness(t, DefaultKVConfig())
	c := &client{id: 7}
	h.expect(c.req(wire.OpPut, "k", "a", ""), wire.StatusOK, "")
	cas := c.req(wire.OpCAS, "k", "b", "a")
	h.expect(cas, wire.StatusOK, "")
	h.expect(cas, wire.StatusOK, "") // retry: cached, not re-applied
	other := &client{id: 8}
	h.expect(other.req(wire.OpPut, "k", "c", ""), wire.StatusOK, "")
	h.expect(cas, wire.StatusOK, "") // still the cached answer, and "c" survives
	if v, _ := h.kv.Get([]byte("k")); string(v) != "c" {
		t.Fatalf("retry was re-applied: k = %q", v)
	}
	// A pipelined request with a lower seq that was never applied is applied.
	late := wire.ClientRequest{ClientID: 7, Seq: 10, FirstUnacked: 3, Op: wire.OpPut, Key: []byte("x"), Value: []byte("10")}
	early := wire.ClientRequest{ClientID: 7, Seq: 9, FirstUnacked: 3, Op: wire.OpPut, Key: []byte("y"), Value: []byte("9")}
	h.expect(late, wire.StatusOK, "")
	h.expect(early, wire.StatusOK, "")
	if _, ok := h.kv.Get([]byte("y")); !ok {
		t.Fatal("lower seq arriving after a higher one was not applied")
	}
}

func TestKVForgetsAcknowledgedResponses(t *testing.T) {
	h := newHarness(t, DefaultKVConfig())
	c := &client{id: 1}
	first := c.req(wire.OpPut, "k", "1", "")
	h.expect(first, wire.StatusOK, "")
	h.expect(c.req(wire.OpPut, "k", "2", ""), wire.StatusOK, "") // FirstUnacked=2 acknowledges seq 1
	status, text := h.apply(first)
	if status != wire.StatusError || !bytes.Contains([]byte(text), []byte("already answered")) {
		t.Fatalf("stale retry: %v %q", status, text)
	}
	if v, _ := h.kv.Get([]byte("k")); string(v) != "2" {
		t.Fatalf("stale retry was applied: %q", v)
	}
}

func TestKVResponseCacheIsBounded(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.MaxCachedResponsesPerSession = 4
	h := newHarness(t, cfg)
	reqs := make([]wire.ClientRequest, 6)
	for i := range reqs { // a client pipelining 6 requests, none acknowledged
		reqs[i] = wire.ClientRequest{ClientID: 1, Seq: uint64(i + 1), FirstUnacked: 1, NewSession: i == 0, Op: wire.OpPut, Key: []byte(fmt.Sprint(i)), Value: []byte("v")}
		h.expect(reqs[i], wire.StatusOK, "")
	}
	s := h.kv.sessions[1]
	if n := s.responses.len(); n != 4 {
		t.Fatalf("%d cached responses, cap 4", n)
	}
	for seq := uint64(3); seq <= 6; seq++ { // the newest four
		if _, ok := s.responses.get(seq); !ok {
			t.Fatalf("response to seq %d not cached", seq)
		}
	}
	if s.forgottenBelow != 3 {
		t.Fatalf("forgottenBelow %d after evicting seqs 1 and 2", s.forgottenBelow)
	}
	h.expect(reqs[0], wire.StatusError, "*") // evicted: refused, not re-applied
	h.expect(reqs[5], wire.StatusOK, "")
}

func TestKVSessionExpiry(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.SessionTimeout = 10 * time.Second
	h := newHarness(t, cfg)
	stranger := wire.ClientRequest{ClientID: 99, Seq: 5, FirstUnacked: 5, Op: wire.OpPut, Key: []byte("k"), Value: []byte("v")}
	h.expect(stranger, wire.StatusSessionExpired, "*")
	if _, ok := h.kv.Get([]byte("k")); ok {
		t.Fatal("write without a session was applied")
	}
	c := &client{id: 1}
	h.expect(c.req(wire.OpPut, "a", "1", ""), wire.StatusOK, "")
	h.now += (9 * time.Second).Nanoseconds()
	h.expect(c.req(wire.OpPut, "a", "2", ""), wire.StatusOK, "") // still alive, and refreshed
	h.now += (16 * time.Second).Nanoseconds()
	other := &client{id: 2}
	h.expect(other.req(wire.OpPut, "b", "1", ""), wire.StatusOK, "") // stamps advance; sweep runs
	h.expect(c.req(wire.OpPut, "a", "3", ""), wire.StatusSessionExpired, "*")
	if v, _ := h.kv.Get([]byte("a")); string(v) != "2" {
		t.Fatalf("write in an expired session was applied: %q", v)
	}
	// Reads need no session.
	h.expect(wire.ClientRequest{ClientID: 12345, Seq: 1, Op: wire.OpGet, Key: []byte("a")}, wire.StatusOK, "2")
}

func TestKVMaxSessionsEvictsLeastRecentlyUsed(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.MaxSessions = 2
	h := newHarness(t, cfg)
	a, b, c := &client{id: 1}, &client{id: 2}, &client{id: 3}
	h.expect(a.req(wire.OpPut, "k", "a", ""), wire.StatusOK, "")
	h.now++
	h.expect(b.req(wire.OpPut, "k", "b", ""), wire.StatusOK, "")
	h.now++
	h.expect(a.req(wire.OpPut, "k", "a2", ""), wire.StatusOK, "") // a is now the most recent
	h.now++
	h.expect(c.req(wire.OpPut, "k", "c", ""), wire.StatusOK, "") // evicts b
	if h.kv.Sessions() != 2 || h.kv.sessions[2] != nil || h.kv.sessions[1] == nil {
		t.Fatalf("sessions after eviction: %v", h.kv.sessions)
	}
}

func TestKVRejectsUndecodableCommands(t *testing.T) {
	kv, _ := NewKV(DefaultKVConfig())
	cmds := []Command{{Index: 1, Data: nil}, {Index: 2, Data: []byte("12345678garbage")}}
	res := make([]Result, 2)
	kv.Apply(cmds, res)
	for i, r := range res {
		if wire.Status(r.Value) != wire.StatusError || len(r.Data) == 0 {
			t.Fatalf("cmd %d: %v %q", i, wire.Status(r.Value), r.Data)
		}
	}
	if kv.Applied() != 2 || kv.Len() != 0 {
		t.Fatal("undecodable commands changed the state")
	}
}

func TestKVConfigValidate(t *testing.T) {
	for _, cfg := range []KVConfig{
		{SessionTimeout: 0, MaxSessions: 1, MaxCachedResponsesPerSession: 1},
		{SessionTimeout: time.Second, MaxSessions: 0, MaxCachedResponsesPerSession: 1},
		{SessionTimeout: time.Second, MaxSessions: 1, MaxCachedResponsesPerSession: -1},
	} {
		if _, err := NewKV(cfg); err == nil {
			t.Errorf("NewKV(%+v) accepted", cfg)
		}
	}
}

// randomCommands is a seeded workload over few keys and clients, with
// retries, expirations and garbage mixed in.
func randomCommands(seed uint64, n int) []Command {
	rng := rand.New(rand.NewPCG(seed, seed))
	clients := make([]client, 5)
	for i := range clients {
		clients[i].id = uint64(i + 1)
	}
	now := int64(1_700_000_000_000_000_000)
	var cmds []Command
	var last wire.ClientRequest
	for i := 0; i < n; i++ {
		now += rng.Int64N(int64(5 * time.Second))
		c := &clients[rng.IntN(len(clients))]
		key := fmt.Sprint("k", rng.IntN(8))
		var r wire.ClientRequest
		switch rng.IntN(10) {
		case 0:
			r = last // a retry of whatever came before
		case 1, 2:
			r = c.req(wire.OpGet, key, "", "")
		case 3:
			r = c.req(wire.OpDelete, key, "", "")
		case 4, 5:
			r = c.req(wire.OpCAS, key, fmt.Sprint(i), fmt.Sprint(rng.IntN(i+1)))
		case 6:
			cmds = append(cmds, Command{Data: []byte("not a command")})
			continue
		default:
			r = c.req(wire.OpPut, key, fmt.Sprint(i), "")
		}
		last = r
		cmds = append(cmds, Command{Data: command(now, r)})
	}
	for i := range cmds {
		cmds[i].Index = uint64(i + 1)
		cmds[i].Term = 1
	}
	return cmds
}

func snapshotBytes(t *testing.T, kv *KV) []byte {
	t.Helper()
	s, err := kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (wrote %d)", n, err, buf.Len())
	}
	return buf.Bytes()
}

func applyAll(t *testing.T, kv *KV, cmds []Command, batch int) []Result {
	res := make([]Result, len(cmds))
	for i := 0; i < len(cmds); i += batch {
		j := min(i+batch, len(cmds))
		kv.Apply(cmds[i:j], res[i:j])
	}
	return res
}

// Replicas applying the same log in different batchings agree on every
// result and produce byte-identical snapshots.
func TestKVDeterminism(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.SessionTimeout = 20 * time.Second
	cfg.MaxSessions = 3
	for seed := uint64(1); seed <= 20; seed++ {
		cmds := randomCommands(seed, 400)
		a, _ := NewKV(cfg)
		b, _ := NewKV(cfg)
		ra, rb := applyAll(t, a, cmds, 1), applyAll(t, b, cmds, 37)
		for i := range ra {
			if ra[i].Value != rb[i].Value || !bytes.Equal(ra[i].Data, rb[i].Data) {
				t.Fatalf("seed %d cmd %d: %v/%q vs %v/%q", seed, i, ra[i].Value, ra[i].Data, rb[i].Value, rb[i].Data)
			}
		}
		if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
			t.Fatalf("seed %d: snapshots differ", seed)
		}
	}
}

// A replica restored from a snapshot then continues exactly like one that
// applied the whole log, sessions included.
func TestKVSnapshotRestoreContinues(t *testing.T) {
	cmds := randomCommands(42, 600)
	whole, _ := NewKV(DefaultKVConfig())
	want := applyAll(t, whole, cmds, 16)

	first, _ := NewKV(DefaultKVConfig())
	applyAll(t, first, cmds[:300], 16)
	snap := snapshotBytes(t, first)
	restored, _ := NewKV(DefaultKVConfig())
	restored.Put1ForTest("junk", "replaced by Restore")
	if err := restored.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if restored.Applied() != 300 {
		t.Fatalf("Applied after restore = %d", restored.Applied())
	}
	if _, ok := restored.Get([]byte("junk")); ok {
		t.Fatal("Restore kept state from before")
	}
	got := applyAll(t, restored, cmds[300:], 16)
	for i := range got {
		if got[i].Value != want[300+i].Value || !bytes.Equal(got[i].Data, want[300+i].Data) {
			t.Fatalf("cmd %d after restore: %v %q, want %v %q", 300+i, got[i].Value, got[i].Data, want[300+i].Value, want[300+i].Data)
		}
	}
	if !bytes.Equal(snapshotBytes(t, restored), snapshotBytes(t, whole)) {
		t.Fatal("restored replica's final snapshot differs")
	}
	if restored.SizeBytes() != whole.SizeBytes() {
		t.Fatalf("SizeBytes after restore %d, replica that applied everything %d", restored.SizeBytes(), whole.SizeBytes())
	}
}

// Put1ForTest writes a key directly, bypassing the log (tests only).
func (kv *KV) Put1ForTest(k, v string) {
	kv.mu.Lock()
	kv.set([]byte(k), []byte(v))
	kv.mu.Unlock()
}

// Every single-bit flip and every truncation of a snapshot is refused, and
// the store keeps its state.
func TestKVRestoreRejectsCorruption(t *testing.T) {
	src, _ := NewKV(DefaultKVConfig())
	applyAll(t, src, randomCommands(7, 60), 8)
	snap := snapshotBytes(t, src)
	dst, _ := NewKV(DefaultKVConfig())
	dst.Put1ForTest("mine", "kept")
	check := func(what string, b []byte) {
		t.Helper()
		err := dst.Restore(bytes.NewReader(b))
		if !errors.Is(err, ErrSnapshotCorrupt) {
			t.Fatalf("%s: Restore = %v", what, err)
		}
		if v, ok := dst.Get([]byte("mine")); !ok || string(v) != "kept" || dst.Applied() != 0 {
			t.Fatalf("%s: state changed by a failed Restore", what)
		}
	}
	for i := range snap {
		for _, bit := range []uint{0, 3, 7} {
			b := bytes.Clone(snap)
			b[i] ^= 1 << bit
			check(fmt.Sprintf("flip byte %d bit %d", i, bit), b)
		}
	}
	for n := 0; n < len(snap); n++ {
		check(fmt.Sprintf("truncated to %d", n), snap[:n])
	}
	check("trailing byte", append(bytes.Clone(snap), 0))
}

// Writing a snapshot runs concurrently with Apply and captures the state at
// the time Snapshot was called (run under -race).
func TestKVSnapshotConcurrentWithApply(t *testing.T) {
	cmds := randomCommands(3, 2000)
	kv, _ := NewKV(DefaultKVConfig())
	applyAll(t, kv, cmds[:1000], 50)
	ref, _ := NewKV(DefaultKVConfig())
	applyAll(t, ref, cmds[:1000], 1000)
	want := snapshotBytes(t, ref)

	s, err := kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		applyAll(t, kv, cmds[1000:], 10)
		for i := 0; i < 100; i++ {
			kv.Get([]byte("k1"))
		}
	}()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	s.Release()
	wg.Wait()
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("snapshot written during Apply does not match the state at Snapshot time")
	}
}

func TestKVApplyIndexMustAdvance(t *testing.T) {
	kv, _ := NewKV(DefaultKVConfig())
	kv.Apply([]Command{{Index: 5, Data: nil}}, make([]Result, 1))
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("re-applying index 5 did not panic")
		}
	}()
	kv.Apply([]Command{{Index: 5, Data: nil}}, make([]Result, 1))
}

// FuzzKVRestore: snapshot files come from disk and from the network
// (InstallSnapshot); any bytes must be refused cleanly.
func FuzzKVRestore(f *testing.F) {
	src, _ := NewKV(DefaultKVConfig())
	res := make([]Result, 30)
	src.Apply(randomCommands(1, 30), res)
	s, _ := src.Snapshot()
	var buf bytes.Buffer
	s.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("KVS1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, _ := NewKV(DefaultKVConfig())
		if err := kv.Restore(bytes.NewReader(data)); err != nil {
			if !errors.Is(err, ErrSnapshotCorrupt) {
				t.Fatalf("Restore error not classified: %v", err)
			}
			return
		}
		// Whatever restores must write back identically.
		s, _ := kv.Snapshot()
		var out bytes.Buffer
		s.WriteTo(&out)
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatal("restored snapshot writes back differently")
		}
	})
}

// sortedPairs orders keys exactly as a plain string sort does, prefixes
// shorter than, equal to and longer than its 16 inline bytes, and zero
// bytes, included.
func TestSortedPairsMatchesAStringSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	m := map[string][]byte{"": nil, "\x00": nil, "\x00\x00": nil, "a": nil, "a\x00": nil}
	for len(m) < 5000 {
		n := rng.IntN(24)
		b := make([]byte, n)
		for i := range b {
			b[i] = "a\x00\xff"[rng.IntN(3)]
		}
		m[string(b)] = []byte{byte(n)}
	}
	for i := range 1000 { // long runs of one 16-byte prefix, ordered by what follows
		m[fmt.Sprintf("a-shared-prefix!%d", i*7919%1000)] = []byte{1}
	}
	want := sortedKeys(m)
	t0 := newKeyTable(0)
	for k, v := range m {
		t0.set([]byte(k), v)
	}
	got := sortedPairs(t0)
	for i := range want {
		if got[i].key != want[i] || !bytes.Equal(got[i].value, m[want[i]]) {
			t.Fatalf("position %d: %q, want %q", i, got[i].key, want[i])
		}
	}
}
