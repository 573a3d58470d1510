package sm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// BenchmarkKVApplyPipelined applies puts of one session with 256 requests
// in flight (FirstUnacked trails Seq by 256), as a pipelining client sends
// them: the session's response cache stays full.
func BenchmarkKVApplyPipelined(b *testing.B) {
	kv, _ := NewKV(DefaultKVConfig())
	cmds := make([]Command, 64)
	res := make([]Result, 64)
	now := time.Now().UnixNano()
	var seq uint64
	mk := func() []byte {
		seq++
		first := uint64(1)
		if seq > 256 {
			first = seq - 256
		}
		r := wire.ClientRequest{ClientID: 7, Seq: seq, FirstUnacked: first, NewSession: seq == 1, Op: wire.OpPut,
			Key: []byte(fmt.Sprint("k", seq%10000)), Value: make([]byte, 128)}
		f := wire.AppendClientRequest(nil, &r)
		return AppendCommand(nil, now, f[wire.FrameHeaderSize:])
	}
	var index uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(cmds) {
		b.StopTimer()
		for k := range cmds {
			index++
			cmds[k] = Command{Index: index, Data: mk()}
		}
		b.StartTimer()
		kv.Apply(cmds, res)
	}
}

// BenchmarkKVApplyPutsLargeKeySpace: puts of 128 B values to keys drawn
// uniformly from a key space far larger than the CPU caches (1M keys, as
// kraftbench's 100,000 per node times three nodes on one machine): what
// it costs is memory latency, the cache lines a put touches.
//
//	go test ./sm -run '^$' -bench KVApplyPutsLargeKeySpace -benchmem -count 6
func BenchmarkKVApplyPutsLargeKeySpace(b *testing.B) {
	const keys, batch = 1 << 20, 64
	kv, _ := NewKV(DefaultKVConfig())
	now := time.Now().UnixNano()
	var seq, index uint64
	value := make([]byte, 128)
	key := make([]byte, 8)
	mk := func(k uint64) []byte {
		seq++
		binary.BigEndian.PutUint64(key, k)
		r := wire.ClientRequest{ClientID: 7, Seq: seq, FirstUnacked: seq, NewSession: seq == 1, Op: wire.OpPut, Key: key, Value: value}
		f := wire.AppendClientRequest(nil, &r)
		return AppendCommand(nil, now, f[wire.FrameHeaderSize:])
	}
	cmds := make([]Command, batch)
	res := make([]Result, batch)
	apply := func(pick func() uint64) {
		for k := range cmds {
			index++
			cmds[k] = Command{Index: index, Data: mk(pick())}
		}
		kv.Apply(cmds, res)
	}
	var next uint64
	for next < keys {
		apply(func() uint64 { next++; return next - 1 })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1024 {
		apply(func() uint64 { return rng.Uint64N(keys) }) // warm
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		for k := range cmds {
			index++
			cmds[k] = Command{Index: index, Data: mk(rng.Uint64N(keys))}
		}
		b.StartTimer()
		kv.Apply(cmds, res)
	}
}
