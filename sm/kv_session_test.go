package sm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/kraftdb/kraft/wire"
)

// checkCacheMatches fails unless c holds exactly m's responses, in order,
// and keeps its invariants.
func checkCacheMatches(t *testing.T, what string, c *responseCache, m map[uint64]response) {
	t.Helper()
	c.check()
	got := c.appendTo(nil)
	want := slices.Sorted(maps.Keys(m))
	if len(got) != len(want) || c.len() != len(want) {
		t.Fatalf("%s: %d responses (len %d), want %d", what, len(got), c.len(), len(want))
	}
	for i, seq := range want {
		if got[i].seq != seq || got[i].status != m[seq].status || !bytes.Equal(got[i].value, m[seq].value) {
			t.Fatalf("%s: entry %d is seq %d %v %q, want seq %d %v %q", what, i, got[i].seq, got[i].status, got[i].value, seq, m[seq].status, m[seq].value)
		}
	}
}

// The ring answers like a map over random operations: seqs mostly in
// order, some out of order, some far apart, at both ends of the range;
// growth, wrap-around, forgetting and eviction of the oldest.
func TestResponseCacheMatchesMap(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		base := uint64(0) // the seqs start at 0, near the top of the range, or anywhere
		switch seed % 3 {
		case 1:
			base = 1<<64 - 5000
		case 2:
			base = rng.Uint64() / 2
		}
		var c responseCache
		m := make(map[uint64]response)
		next := base // the next new seq
		for step := range 2000 {
			what := fmt.Sprintf("seed %d step %d", seed, step)
			switch op := rng.IntN(10); {
			case op < 5: // a new seq, usually the next
				seq := next
				switch rng.IntN(8) {
				case 0: // out of order: an older one, not yet cached
					seq = next - uint64(rng.IntN(int(min(next-base, 40))+1))
				case 1: // far ahead
					seq = next + uint64(rng.IntN(5000))
				}
				if _, ok := m[seq]; ok || seq < base || seq > 1<<64-10 {
					continue
				}
				r := response{status: wire.Status(rng.IntN(9)), value: []byte(fmt.Sprint(seq))}
				if rng.IntN(2) == 0 {
					r.value = nil
				}
				c.add(seq, r)
				m[seq] = r
				next = max(next, seq+1)
			case op < 7: // look up a seq near the cached ones
				seq := next - uint64(rng.IntN(int(min(next-base, 100))+1))
				if rng.IntN(4) == 0 {
					seq = next + uint64(rng.IntN(3))
				}
				got, ok := c.get(seq)
				want, wok := m[seq]
				if ok != wok || got.status != want.status || !bytes.Equal(got.value, want.value) {
					t.Fatalf("%s: get(%d) = %v %q %v, want %v %q %v", what, seq, got.status, got.value, ok, want.status, want.value, wok)
				}
			case op < 9: // forget below a bound (FirstUnacked)
				bound := next - uint64(rng.IntN(int(min(next-base, 64))+1))
				c.forgetBelow(bound)
				maps.DeleteFunc(m, func(seq uint64, _ response) bool { return seq < bound })
			default: // evict the oldest
				if len(m) == 0 {
					continue
				}
				want := slices.Min(slices.Collect(maps.Keys(m)))
				if got := c.popOldest(); got != want {
					t.Fatalf("%s: popOldest = %d, want %d", what, got, want)
				}
				delete(m, want)
			}
			checkCacheMatches(t, what, &c, m)
		}
	}
}

// kvModel is the specification of KV's sessions, on maps: what the ring
// must do. Sessions never expire in it (the tests using it set a long
// timeout and many sessions).
type kvModel struct {
	maxCached int
	data      map[string]string
	sessions  map[uint64]*modelSession
}

type modelSession struct {
	lastActiveNano int64
	forgottenBelow uint64
	responses      map[uint64]response
}

func newKVModel(maxCached int) *kvModel {
	return &kvModel{maxCached: maxCached, data: make(map[string]string), sessions: make(map[uint64]*modelSession)}
}

func (m *kvModel) apply(now int64, r *wire.ClientRequest) (wire.Status, string) {
	if r.Op == wire.OpGet {
		v, ok := m.data[string(r.Key)]
		if !ok {
			return wire.StatusNotFound, ""
		}
		return wire.StatusOK, v
	}
	s := m.sessions[r.ClientID]
	if s == nil {
		if !r.NewSession {
			return wire.StatusSessionExpired, fmt.Sprintf("session of client %d expired or unknown; start a new session", r.ClientID)
		}
		s = &modelSession{responses: make(map[uint64]response)}
		m.sessions[r.ClientID] = s
	}
	s.lastActiveNano = now
	if r.FirstUnacked > s.forgottenBelow { // the client saw every answer below it
		maps.DeleteFunc(s.responses, func(seq uint64, _ response) bool { return seq < r.FirstUnacked })
		s.forgottenBelow = r.FirstUnacked
	}
	if cached, ok := s.responses[r.Seq]; ok {
		return cached.status, string(cached.value)
	}
	if r.Seq < s.forgottenBelow {
		return wire.StatusError, fmt.Sprintf("request %d of client %d was already answered and its response forgotten", r.Seq, r.ClientID)
	}
	var status wire.Status
	var value []byte
	cur, ok := m.data[string(r.Key)]
	switch {
	case r.Op == wire.OpPut:
		m.data[string(r.Key)] = string(r.Value)
	case !ok:
		status = wire.StatusNotFound
	case r.Op == wire.OpDelete:
		delete(m.data, string(r.Key))
	case cur != string(r.Expect):
		status, value = wire.StatusCompareFailed, []byte(cur)
	default:
		m.data[string(r.Key)] = string(r.Value)
	}
	if len(s.responses) >= m.maxCached { // evict the oldest
		oldest := slices.Min(slices.Collect(maps.Keys(s.responses)))
		delete(s.responses, oldest)
		s.forgottenBelow = max(s.forgottenBelow, oldest+1)
	}
	s.responses[r.Seq] = response{status: status, value: value}
	return status, string(value)
}

// snapshot encodes the model in the snapshot format of kv_snapshot.go,
// independently of it; the header's clock fields are kv's.
func (m *kvModel) snapshot(kv *KV) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, kvSnapshotMagic)
	b = le.AppendUint64(b, kv.applied)
	b = le.AppendUint64(b, uint64(kv.nowNano))
	b = le.AppendUint64(b, uint64(kv.nextSweepNano))
	b = le.AppendUint64(b, uint64(len(m.data)))
	b = le.AppendUint64(b, uint64(len(m.sessions)))
	for _, k := range slices.Sorted(maps.Keys(m.data)) {
		b = le.AppendUint32(le.AppendUint32(b, uint32(len(k))), uint32(len(m.data[k])))
		b = append(append(b, k...), m.data[k]...)
	}
	for _, id := range slices.Sorted(maps.Keys(m.sessions)) {
		s := m.sessions[id]
		b = le.AppendUint64(b, id)
		b = le.AppendUint64(b, uint64(s.lastActiveNano))
		b = le.AppendUint64(b, s.forgottenBelow)
		b = le.AppendUint32(b, uint32(len(s.responses)))
		for _, seq := range slices.Sorted(maps.Keys(s.responses)) {
			r := s.responses[seq]
			b = append(le.AppendUint64(b, seq), byte(r.status))
			b = append(le.AppendUint32(b, uint32(len(r.value))), r.value...)
		}
	}
	return le.AppendUint64(b, xxhash.Sum64(b))
}

// checkSessions fails unless kv's sessions are the model's.
func (m *kvModel) checkSessions(t *testing.T, what string, kv *KV) {
	t.Helper()
	if len(kv.sessions) != len(m.sessions) {
		t.Fatalf("%s: %d sessions, model %d", what, len(kv.sessions), len(m.sessions))
	}
	for id, ms := range m.sessions {
		s := kv.sessions[id]
		if s == nil || s.forgottenBelow != ms.forgottenBelow || s.lastActiveNano != ms.lastActiveNano {
			t.Fatalf("%s: session %d is %+v, model %+v", what, id, s, ms)
		}
		checkCacheMatches(t, fmt.Sprintf("%s: session %d", what, id), &s.responses, ms.responses)
	}
}

// modelClient sends writes the way a pipelining client over unreliable
// connections may: several in flight, delivered out of order, retried,
// its seqs sometimes skipping ahead (its reads take seqs too), answers
// acknowledged out of order.
type modelClient struct {
	id      uint64
	next    uint64              // the next new seq
	unacked map[uint64]struct{} // seqs sent and not acknowledged
	pending []wire.ClientRequest
}

func (c *modelClient) firstUnacked() uint64 {
	if len(c.unacked) == 0 {
		return c.next
	}
	return slices.Min(slices.Collect(maps.Keys(c.unacked)))
}

// request returns the client's next request to deliver.
func (c *modelClient) request(rng *rand.Rand, maxCached int) wire.ClientRequest {
	if len(c.pending) == 0 || rng.IntN(3) == 0 {
		seq := c.next
		c.next++
		if rng.IntN(6) == 0 {
			c.next += uint64(rng.IntN(3 * maxCached)) // sparse
		}
		c.unacked[seq] = struct{}{}
		r := wire.ClientRequest{ClientID: c.id, Seq: seq, NewSession: rng.IntN(20) != 0,
			Key: []byte(fmt.Sprint("k", rng.IntN(6))), Value: []byte(fmt.Sprint(seq)), Expect: []byte(fmt.Sprint(rng.IntN(int(seq) + 1)))}
		r.Op = []wire.Op{wire.OpPut, wire.OpDelete, wire.OpCAS, wire.OpCAS}[rng.IntN(4)]
		c.pending = append(c.pending, r)
	}
	var r wire.ClientRequest
	switch i := rng.IntN(len(c.pending)); {
	case rng.IntN(4) == 0: // a retry of an earlier seq, or of any seq
		r = c.pending[i]
		if rng.IntN(4) == 0 && c.next > 0 {
			r.Seq = rng.Uint64N(c.next)
		}
	case rng.IntN(2) == 0: // the oldest pending first
		r = c.pending[0]
		c.pending = slices.Delete(c.pending, 0, 1)
	default: // out of order
		r = c.pending[i]
		c.pending = slices.Delete(c.pending, i, i+1)
	}
	r.FirstUnacked = min(c.firstUnacked(), r.Seq)
	if rng.IntN(3) == 0 { // the client saw answers, not always the oldest
		for seq := range c.unacked {
			if rng.IntN(3) == 0 {
				delete(c.unacked, seq)
			}
		}
	}
	return r
}

// KV's sessions match the map-based model over random request sequences
// from pipelining clients with small caches: every answer, every
// session's cached responses and forgottenBelow after every request, and
// the snapshot's bytes (encoded from the model independently); a restored
// replica goes on matching.
func TestKVSessionsMatchModel(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		cfg := DefaultKVConfig()
		cfg.SessionTimeout = time.Hour
		cfg.MaxCachedResponsesPerSession = 1 + rng.IntN(12)
		h := newHarness(t, cfg)
		m := newKVModel(cfg.MaxCachedResponsesPerSession)
		clients := make([]*modelClient, 1+rng.IntN(4))
		for i := range clients {
			clients[i] = &modelClient{id: uint64(i + 1), next: uint64(rng.IntN(3)), unacked: make(map[uint64]struct{})}
		}
		restoreAt := rng.IntN(1500)
		for step := range 1500 {
			what := fmt.Sprintf("seed %d (cap %d) step %d", seed, cfg.MaxCachedResponsesPerSession, step)
			r := clients[rng.IntN(len(clients))].request(rng, cfg.MaxCachedResponsesPerSession)
			h.now += 1000
			gotS, gotV := h.apply(r)
			wantS, wantV := m.apply(h.now, &r)
			if gotS != wantS || gotV != wantV {
				t.Fatalf("%s: client %d seq %d (first unacked %d) %v: got %v %q, model %v %q", what, r.ClientID, r.Seq, r.FirstUnacked, r.Op, gotS, gotV, wantS, wantV)
			}
			m.checkSessions(t, what, h.kv)
			if step == restoreAt || step == 1499 {
				snap := snapshotBytes(t, h.kv)
				if want := m.snapshot(h.kv); !bytes.Equal(snap, want) {
					t.Fatalf("%s: snapshot\n%x\nmodel's\n%x", what, snap, want)
				}
				restored, _ := NewKV(cfg)
				if err := restored.Restore(bytes.NewReader(snap)); err != nil {
					t.Fatal(err)
				}
				h.kv = restored
				m.checkSessions(t, what+" (restored)", h.kv)
			}
		}
	}
}

// Pipelined writes within the window arrive out of order: each is applied
// once, and its retry gets its own cached answer.
func TestKVOutOfOrderSeqsInWindow(t *testing.T) {
	h := newHarness(t, DefaultKVConfig())
	h.expect(wire.ClientRequest{ClientID: 9, Seq: 1, FirstUnacked: 1, NewSession: true, Op: wire.OpPut, Key: []byte("c"), Value: []byte("0")}, wire.StatusOK, "")
	// Each CAS expects "0"; only the first applied succeeds. The others
	// fail with the value then current, which their retries must repeat.
	order := []uint64{5, 3, 8, 2, 7, 4, 6}
	answers := make(map[uint64]string)
	for i, seq := range order {
		r := wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: 2, NewSession: true, Op: wire.OpCAS,
			Key: []byte("c"), Value: []byte(fmt.Sprint(seq)), Expect: []byte("0")}
		status, value := h.apply(r)
		if want := wire.StatusCompareFailed; i == 0 && status != wire.StatusOK || i > 0 && (status != want || value != "5") {
			t.Fatalf("seq %d: %v %q", seq, status, value)
		}
		answers[seq] = fmt.Sprint(status, value)
	}
	h.expect(wire.ClientRequest{ClientID: 9, Seq: 2, FirstUnacked: 2, Op: wire.OpPut, Key: []byte("c"), Value: []byte("0")}, wire.StatusOK, "")
	for _, seq := range []uint64{2, 8, 5, 6, 3, 7, 4} {
		r := wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: 2, Op: wire.OpCAS, Key: []byte("c"), Value: []byte(fmt.Sprint(seq)), Expect: []byte("0")}
		if status, value := h.apply(r); fmt.Sprint(status, value) != answers[seq] {
			t.Fatalf("retry of seq %d: %v %q, first answered %s", seq, status, value, answers[seq])
		}
	}
	if v, _ := h.kv.Get([]byte("c")); string(v) != "0" {
		t.Fatalf("a retry was applied: c = %q", v)
	}
	if got := h.kv.sessions[1].responses.appendTo(nil); len(got) != 7 || got[0].seq != 2 || got[6].seq != 8 {
		t.Fatalf("cached: %+v", got)
	}
}

// A session with more writes in flight than fit in the session itself
// (inlineResponses) moves them to a ring of its own, growing it as
// needed: every answer stays cached until acknowledged, then is forgotten.
func TestKVResponseCacheGrows(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.MaxCachedResponsesPerSession = 1000
	h := newHarness(t, cfg)
	const n = 300
	// Distinct answers: CAS failures that return the key's value at the time.
	for i := range n {
		h.expect(wire.ClientRequest{ClientID: 2, Seq: uint64(i + 1), FirstUnacked: uint64(i + 1), NewSession: i == 0,
			Op: wire.OpPut, Key: []byte("k"), Value: []byte(fmt.Sprint("v", i))}, wire.StatusOK, "")
		h.expect(wire.ClientRequest{ClientID: 1, Seq: uint64(i + 10), FirstUnacked: 10, NewSession: i == 0,
			Op: wire.OpCAS, Key: []byte("k"), Value: []byte("x"), Expect: []byte("nope")}, wire.StatusCompareFailed, fmt.Sprint("v", i))
	}
	s := h.kv.sessions[1]
	if s.responses.len() != n || len(s.responses.buf) != 512 {
		t.Fatalf("%d responses in a ring of %d", s.responses.len(), len(s.responses.buf))
	}
	for i := n - 1; i >= 0; i-- { // retries, newest first
		h.expect(wire.ClientRequest{ClientID: 1, Seq: uint64(i + 10), FirstUnacked: 10,
			Op: wire.OpCAS, Key: []byte("k"), Value: []byte("x"), Expect: []byte("nope")}, wire.StatusCompareFailed, fmt.Sprint("v", i))
	}
	// Acknowledge all but the last ten.
	last := uint64(n + 9)
	h.expect(wire.ClientRequest{ClientID: 1, Seq: last + 1, FirstUnacked: last - 9, Op: wire.OpPut, Key: []byte("k"), Value: []byte("y")}, wire.StatusOK, "")
	if s.responses.len() != 11 {
		t.Fatalf("%d responses after acknowledging", s.responses.len())
	}
	h.expect(wire.ClientRequest{ClientID: 1, Seq: last - 10, FirstUnacked: last - 10, Op: wire.OpCAS, Key: []byte("k"), Expect: []byte("nope")}, wire.StatusError, "*")
	h.expect(wire.ClientRequest{ClientID: 1, Seq: last - 9, FirstUnacked: last - 9, Op: wire.OpCAS, Key: []byte("k"), Expect: []byte("nope")}, wire.StatusCompareFailed, fmt.Sprint("v", n-10))
}

// Eviction at the cap takes the oldest response and forgets every seq
// up to it, whether the seqs are dense or far apart.
func TestKVResponseCacheEvictsTheOldest(t *testing.T) {
	for _, seqs := range [][]uint64{
		{1, 2, 3, 4, 5, 6, 7},                      // dense
		{3, 1, 2, 5, 4, 7, 6},                      // dense, out of order
		{5, 17, 1000, 1 << 40, 1<<40 + 1, 1 << 50}, // sparse
	} {
		cfg := DefaultKVConfig()
		cfg.MaxCachedResponsesPerSession = 4
		h := newHarness(t, cfg)
		for _, seq := range seqs {
			h.expect(wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: min(seq, 1), NewSession: true, Op: wire.OpPut, Key: []byte(fmt.Sprint(seq)), Value: []byte("v")}, wire.StatusOK, "")
		}
		sorted := slices.Sorted(slices.Values(seqs))
		kept, evicted := sorted[len(sorted)-4:], sorted[:len(sorted)-4]
		s := h.kv.sessions[1]
		if s.responses.len() != 4 {
			t.Fatalf("%v: %d responses", seqs, s.responses.len())
		}
		for _, seq := range kept {
			if _, ok := s.responses.get(seq); !ok {
				t.Fatalf("%v: %d not cached", seqs, seq)
			}
		}
		if len(evicted) > 0 && s.forgottenBelow != slices.Max(evicted)+1 {
			t.Fatalf("%v: forgottenBelow %d", seqs, s.forgottenBelow)
		}
		for _, seq := range evicted {
			h.kv.Put1ForTest(fmt.Sprint(seq), "changed")
			h.expect(wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: min(seq, 1), Op: wire.OpPut, Key: []byte(fmt.Sprint(seq)), Value: []byte("v")}, wire.StatusError, "*")
			if v, _ := h.kv.Get([]byte(fmt.Sprint(seq))); string(v) != "changed" {
				t.Fatalf("%v: evicted seq %d re-applied", seqs, seq)
			}
		}
	}
}

// A full cache given a seq older than every one it holds keeps it and
// evicts its oldest entry, as the map did; the seq then sits below
// forgottenBelow, answers its retries, and is the next evicted: the
// oldest. (The map evicted the oldest at or above forgottenBelow first,
// keeping such a seq until FirstUnacked passed it.)
func TestKVFullCacheEvictsTheOldestBelowForgottenBelow(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.MaxCachedResponsesPerSession = 2
	h := newHarness(t, cfg)
	put := func(seq uint64, status wire.Status) {
		t.Helper()
		h.expect(wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: 1, NewSession: true, Op: wire.OpPut, Key: []byte("k"), Value: []byte(fmt.Sprint(seq))}, status, "*")
	}
	put(10, wire.StatusOK)
	put(20, wire.StatusOK)
	put(5, wire.StatusOK) // evicts 10: forgottenBelow 11, and 5 is kept below it
	s := h.kv.sessions[1]
	if s.forgottenBelow != 11 || s.responses.len() != 2 {
		t.Fatalf("forgottenBelow %d, %d responses", s.forgottenBelow, s.responses.len())
	}
	put(5, wire.StatusOK)    // cached: not re-applied
	put(7, wire.StatusError) // below forgottenBelow, never applied: refused
	put(30, wire.StatusOK)   // evicts 5, the oldest
	put(5, wire.StatusError) // forgotten
	put(20, wire.StatusOK)   // cached
	if v, _ := h.kv.Get([]byte("k")); string(v) != "30" {
		t.Fatalf("k = %q", v)
	}
	if got := s.responses.appendTo(nil); len(got) != 2 || got[0].seq != 20 || got[1].seq != 30 || s.forgottenBelow != 11 {
		t.Fatalf("cached %+v, forgottenBelow %d", got, s.forgottenBelow)
	}
}

// FirstUnacked forgets exactly the responses below it, in the middle of
// the cache or past its end.
func TestKVFirstUnackedForgets(t *testing.T) {
	h := newHarness(t, DefaultKVConfig())
	w := func(seq, first uint64, status wire.Status) {
		t.Helper()
		h.expect(wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: first, NewSession: true, Op: wire.OpPut, Key: []byte(fmt.Sprint(seq)), Value: []byte("v")}, status, "")
	}
	for seq := uint64(1); seq <= 10; seq++ {
		w(seq, 1, wire.StatusOK)
	}
	w(11, 6, wire.StatusOK)
	s := h.kv.sessions[1]
	if s.forgottenBelow != 6 || s.responses.len() != 6 {
		t.Fatalf("forgottenBelow %d, %d responses", s.forgottenBelow, s.responses.len())
	}
	for seq := uint64(1); seq <= 5; seq++ {
		h.expect(wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: seq, Op: wire.OpPut, Key: []byte("x"), Value: []byte("v")}, wire.StatusError, "*")
	}
	w(6, 6, wire.StatusOK) // cached
	w(100, 50, wire.StatusOK)
	if s.forgottenBelow != 50 || s.responses.len() != 1 {
		t.Fatalf("forgottenBelow %d, %d responses", s.forgottenBelow, s.responses.len())
	}
	if _, ok := h.kv.Get([]byte("x")); ok {
		t.Fatal("a forgotten seq was applied")
	}
}

// A snapshot holds the sessions as they were at its capture, however the
// caches change after it.
func TestKVSnapshotCapturesResponses(t *testing.T) {
	cfg := DefaultKVConfig()
	cfg.MaxCachedResponsesPerSession = 8
	h := newHarness(t, cfg)
	c := &client{id: 1}
	for range 5 {
		r := c.req(wire.OpPut, "k", "v", "")
		r.FirstUnacked = 1
		h.apply(r)
	}
	want := snapshotBytes(t, h.kv)
	s, err := h.kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for range 20 { // grows, wraps, forgets, evicts (10 in flight, 8 cached)
		r := c.req(wire.OpPut, "k", "v", "")
		r.FirstUnacked = 1
		if r.Seq > 10 {
			r.FirstUnacked = r.Seq - 9
		}
		h.apply(r)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("the snapshot changed with the sessions after its capture")
	}
}

// A snapshot whose responses are not in seq order, or repeat a seq, is
// restored as the map did (the last of a seq wins), and written back in
// order.
func TestKVRestoreOrdersResponses(t *testing.T) {
	le := binary.LittleEndian
	encode := func(seqs []uint64) []byte {
		b := le.AppendUint32(nil, kvSnapshotMagic)
		b = le.AppendUint64(b, 7)  // applied
		b = le.AppendUint64(b, 1)  // nowNano
		b = le.AppendUint64(b, 2)  // nextSweepNano
		b = le.AppendUint64(b, 0)  // keys
		b = le.AppendUint64(b, 1)  // sessions
		b = le.AppendUint64(b, 42) // client ID
		b = le.AppendUint64(b, 1)  // lastActiveNano
		b = le.AppendUint64(b, 3)  // forgottenBelow
		b = le.AppendUint32(b, uint32(len(seqs)))
		for i, seq := range seqs {
			b = append(le.AppendUint64(b, seq), byte(i))
			b = append(le.AppendUint32(b, 1), byte('a'+i))
		}
		return le.AppendUint64(b, xxhash.Sum64(b))
	}
	kv, _ := NewKV(DefaultKVConfig())
	if err := kv.Restore(bytes.NewReader(encode([]uint64{9, 4, 1 << 63, 4, 5, 9, 3}))); err != nil {
		t.Fatal(err)
	}
	// 4 and 9 are given twice: the later ones (positions 3 and 5) win.
	want := encode([]uint64{3, 4, 5, 9, 1 << 63})
	// Rewrite the statuses and values to those of the winners.
	winners := []int{6, 3, 4, 5, 2}
	off := 4 + 8*5 + 8*3 + 4
	for _, w := range winners {
		want[off+8] = byte(w)
		want[off+8+1+4] = byte('a' + w)
		off += 8 + 1 + 4 + 1
	}
	want = le.AppendUint64(want[:len(want)-8], xxhash.Sum64(want[:len(want)-8]))
	if got := snapshotBytes(t, kv); !bytes.Equal(got, want) {
		t.Fatalf("written back as\n%x\nwant\n%x", got, want)
	}
}
