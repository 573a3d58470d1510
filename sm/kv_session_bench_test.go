package sm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// BenchmarkKVApplySessions: puts of 128 B values to 100,000 keys from many
// client sessions at once, each write of a session acknowledging the ones
// before its window (FirstUnacked = Seq-inflight+1), in batches of 256
// commands across random sessions. sessions=1024/inflight=1 is the
// in-process cluster of perf/inproc (1,024 clients with one request each);
// sessions=32/inflight=32 is kraftd's shape (a session per connection,
// ~32 requests in flight each). Beyond the put, what it measures is the
// per-session response cache: forgetting the acknowledged response and
// remembering the new one, in a session that is rarely in the CPU caches.
//
//	go test ./sm -run '^$' -bench KVApplySessions -benchmem -count 6
func BenchmarkKVApplySessions(b *testing.B) {
	for _, c := range []struct{ sessions, inflight int }{{1024, 1}, {32, 32}} {
		b.Run(fmt.Sprintf("sessions=%d/inflight=%d", c.sessions, c.inflight), func(b *testing.B) {
			benchmarkKVApplySessions(b, c.sessions, c.inflight, 100_000, wire.OpPut)
		})
	}
}

// BenchmarkKVSessionCache: as BenchmarkKVApplySessions, but deletes of
// keys that are not there, in an empty store: what is left is decoding
// and the session path, response cache included. sessions=65536 has the
// sessions outgrow the CPU's L2 cache.
//
//	go test ./sm -run '^$' -bench KVSessionCache -benchmem -count 6
func BenchmarkKVSessionCache(b *testing.B) {
	for _, c := range []struct{ sessions, inflight int }{{1024, 1}, {32, 32}, {65536, 1}} {
		b.Run(fmt.Sprintf("sessions=%d/inflight=%d", c.sessions, c.inflight), func(b *testing.B) {
			benchmarkKVApplySessions(b, c.sessions, c.inflight, 0, wire.OpDelete)
		})
	}
}

// benchmarkKVApplySessions applies op to random keys below keys (loaded
// first) from sessions sessions with inflight writes each.
func benchmarkKVApplySessions(b *testing.B, sessions, inflight int, keys uint64, op wire.Op) {
	const batch = 256
	kv, _ := NewKV(DefaultKVConfig())
	now := time.Now().UnixNano()
	seqs := make([]uint64, sessions) // last seq of each session (client IDs 1..sessions)
	value := make([]byte, 128)
	key := make([]byte, 8)
	var frame []byte
	bufs := make([][]byte, batch) // the commands' buffers, reused: building them allocates nothing
	mk := func(slot, session int, k uint64, op wire.Op) []byte {
		seqs[session]++
		seq := seqs[session]
		first := uint64(1)
		if seq > uint64(inflight) {
			first = seq - uint64(inflight) + 1
		}
		binary.BigEndian.PutUint64(key, k)
		r := wire.ClientRequest{ClientID: uint64(session + 1), Seq: seq, FirstUnacked: first, NewSession: seq == 1,
			Op: op, Key: key}
		if op == wire.OpPut {
			r.Value = value
		}
		frame = wire.AppendClientRequest(frame[:0], &r)
		bufs[slot] = AppendCommand(bufs[slot][:0], now, frame[wire.FrameHeaderSize:])
		return bufs[slot]
	}
	cmds := make([]Command, batch)
	res := make([]Result, batch)
	var index uint64
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(int) (int, uint64) {
		s := rng.IntN(sessions)
		if keys == 0 {
			return s, rng.Uint64()
		}
		return s, rng.Uint64N(keys)
	}
	apply := func(pick func(k int) (int, uint64), op wire.Op) {
		for k := range cmds {
			index++
			s, key := pick(k)
			cmds[k] = Command{Index: index, Data: mk(k, s, key, op)}
		}
		kv.Apply(cmds, res)
	}
	// Load every key, open every session, then warm up with random traffic
	// until every session's cache holds its window.
	for next := uint64(0); next < keys; next += batch {
		apply(func(k int) (int, uint64) { return k % sessions, (next + uint64(k)) % keys }, wire.OpPut)
	}
	for next := 0; next < sessions; next += batch {
		apply(func(k int) (int, uint64) { return (next + k) % sessions, uint64(k) }, op)
	}
	for range 4 * sessions * inflight / batch {
		apply(random, op)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		for k := range cmds {
			index++
			s, key := random(k)
			cmds[k] = Command{Index: index, Data: mk(k, s, key, op)}
		}
		b.StartTimer()
		kv.Apply(cmds, res)
	}
	b.StopTimer()
	want := wire.StatusOK
	if op == wire.OpDelete {
		want = wire.StatusNotFound
	}
	for i := range res {
		if wire.Status(res[i].Value) != want {
			b.Fatalf("result %d: %v %q", i, wire.Status(res[i].Value), res[i].Data)
		}
	}
}
