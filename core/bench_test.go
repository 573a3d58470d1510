package core

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// benchCluster steps three nodes in memory: messages go straight from one
// Ready to the peer's Step, and every write is "persisted" at once.
type benchCluster struct {
	nodes     [3]*Raft
	queue     []wire.Message
	spare     []wire.Message
	committed int
}

// newBenchCluster starts three voters (tweak adjusts each config) and
// elects node 1.
func newBenchCluster(b *testing.B, tweak func(*Config)) *benchCluster {
	c := &benchCluster{}
	voters := []uint64{1, 2, 3}
	for i := range c.nodes {
		cfg := testConfig(uint64(i + 1))
		if tweak != nil {
			tweak(&cfg)
		}
		r, err := New(cfg, Bootstrap(voters))
		if err != nil {
			b.Fatal(err)
		}
		r.startupQuiet = false
		c.nodes[i] = r
	}
	c.nodes[0].campaign(false, true)
	c.run()
	if c.nodes[0].Role() != RoleLeader {
		b.Fatal("no leader")
	}
	return c
}

func (c *benchCluster) drain(r *Raft) {
	for r.HasReady() {
		rd := r.Ready()
		if r.id == 1 {
			it := wire.NewEntryIter(rd.CommittedEntries)
			for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
				c.committed++
			}
		}
		c.queue = append(c.queue, rd.Messages...)
		if rd.LastIndex > 0 {
			r.Persisted(rd.LastIndex, rd.LastTerm)
		}
		c.queue = append(c.queue, rd.MessagesAfterPersist...)
		r.Advance(rd)
	}
}

func (c *benchCluster) run() {
	for {
		for _, r := range c.nodes {
			c.drain(r)
		}
		if len(c.queue) == 0 {
			return
		}
		q := c.queue
		c.queue, c.spare = c.spare[:0], q
		for i := range q {
			c.nodes[q[i].To-1].Step(&q[i])
		}
	}
}

// BenchmarkCommit3Nodes: 128-byte proposals in batches of 64 on a 3-node
// cluster stepped in memory (no I/O). Reports committed entries/s and
// allocations per committed entry.
//
//	go test ./core -run '^$' -bench Commit3Nodes -benchmem -benchtime 200000x
func BenchmarkCommit3Nodes(b *testing.B) {
	const batchEntries, payloadBytes, compactEvery = 64, 128, 1 << 16
	c := newBenchCluster(b, func(cfg *Config) { cfg.MaxInflightMsgs = 64 })
	payload := make([]byte, payloadBytes)
	batch := make([][]byte, batchEntries)
	for i := range batch {
		batch[i] = payload
	}
	c.committed = 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.nodes[0].Propose(batch); err != nil {
			b.Fatal(err)
		}
		c.run()
		if i%(compactEvery/batchEntries) == 0 {
			for _, r := range c.nodes {
				r.CreateSnapshot(r.Status().Applied, nil)
			}
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(c.committed), "allocs/entry")
	if c.committed != b.N*batchEntries {
		b.Fatalf("committed %d of %d", c.committed, b.N*batchEntries)
	}
	b.ReportMetric(float64(c.committed)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkReadIndexBurst: a burst of ReadIndex requests on the leader of
// a 3-node cluster stepped in memory, then the heartbeat round that
// confirms them all. ns/op is per read: flat in the burst size when each
// request costs O(1) (it cost O(pending reads) before).
//
//	go test ./core -run '^$' -bench ReadIndexBurst -benchmem
func BenchmarkReadIndexBurst(b *testing.B) {
	for _, burst := range []int{16, 1024} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			c := newBenchCluster(b, nil)
			b.ResetTimer()
			for i := 0; i < b.N; i += burst {
				for k := 0; k < burst; k++ {
					if err := c.nodes[0].ReadIndex(uint64(i + k + 1)); err != nil {
						b.Fatal(err)
					}
				}
				c.run()
			}
		})
	}
}

// BenchmarkNodeRecover measures a restart: NewNode reading back a WAL of
// 200,000 entries of 128 B after the snapshot (none here), then Close.
// B/op shows what recovery allocates for the log.
func BenchmarkNodeRecover(b *testing.B) {
	dir := b.TempDir()
	w, err := wal.Open(dir, wal.Options{SegmentSizeBytes: 16 << 20, Fsync: wal.FsyncNone})
	if err != nil {
		b.Fatal(err)
	}
	const n = 200000
	payload := make([]byte, 128)
	var recs []byte
	for i := uint64(1); i <= n; i++ {
		recs = wire.AppendEntry(recs, wire.EntryNormal, i, 1, payload)
		if i%10000 == 0 {
			if err := w.Append(recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := w.SaveHardState(wal.HardState{Term: 1}); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	kv, _ := sm.NewKV(sm.DefaultKVConfig())
	cfg := NodeConfig{Raft: DefaultConfig(1, rand.NewPCG(1, 1)), WALDir: dir, WAL: wal.Options{SegmentSizeBytes: 16 << 20, Fsync: wal.FsyncNone},
		StateMachine: kv, Transport: nopTransport{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Raft.ElectionTimeoutMinTicks, cfg.Raft.ElectionTimeoutMaxTicks = 100000, 100000 // no election while measuring
	for b.Loop() {
		nd, err := NewNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if st, _ := nd.Status(); st.LastIndex != n {
			b.Fatalf("recovered through %d, want %d", st.LastIndex, n)
		}
		nd.Close()
	}
}

type nopTransport struct{}

func (nopTransport) Send(*wire.Message) error { return nil }

// BenchmarkNodeStepAppend: Step copying 30 KB Appends (a batch of ~130
// writes of 128 B) for a loop that steps them; "reuse" returns each copy
// as the loop does (Node.reuse), "fresh" drops it, as Step did before.
//
//	go test ./core -run '^$' -bench NodeStepAppend -benchmem
func BenchmarkNodeStepAppend(b *testing.B) {
	m := &wire.Message{Type: wire.MsgAppend, From: 1, To: 2, Term: 1, Entries: make([]byte, 30<<10)}
	for _, reuse := range []bool{true, false} {
		name := map[bool]string{true: "reuse", false: "fresh"}[reuse]
		b.Run(name, func(b *testing.B) {
			n := &Node{recvC: make(chan *inbound, 64), spareC: make(chan *inbound, spareInbound), smallC: make(chan *inbound, spareSmallInbound)}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for in := range n.recvC {
					if in.m.Entries[0] != 0 {
						panic("bad copy")
					}
					if reuse {
						n.reuse(in)
					}
				}
			}()
			b.SetBytes(int64(len(m.Entries)))
			b.ReportAllocs()
			for b.Loop() {
				n.Step(m)
			}
			close(n.recvC)
			<-done
		})
	}
}

// BenchmarkLogAppend: the in-memory log's append of one 128 B write, with a
// snapshot's compaction every 2^20 entries, as a leader under load does;
// index growth and compaction are in the amortized cost.
//
//	go test ./core -run '^$' -bench LogAppend -benchmem -count 6
func BenchmarkLogAppend(b *testing.B) {
	benchLogAppend(b, &raftLog{}, nil)
}

// BenchmarkLogAppendEvicting: a leader's log under load with the log cache
// on (256 MiB, so 4 MiB chunks) and every entry applied, persisted and
// acknowledged 256 entries after its append, as at 1,024 clients. "gc"
// leaves evicted chunks to the garbage collector (what a driver that never
// calls ReleaseThrough gets, and what every driver got before it);
// "reuse" releases the applied entries, as core.Node does, so evicted
// chunks hold the next entries.
//
//	go test ./core -run '^$' -bench LogAppendEvicting -benchmem -count 6
func BenchmarkLogAppendEvicting(b *testing.B) {
	for _, release := range []bool{false, true} {
		b.Run(map[bool]string{false: "gc", true: "reuse"}[release], func(b *testing.B) {
			l := &raftLog{reader: modelReader{}, cacheBytes: 256 << 20}
			benchLogAppend(b, l, func(i uint64) {
				if i%256 == 0 {
					done := i - 256
					l.committed, l.stable, l.applied = i, i, done
					if release {
						l.released = done
					}
					l.evict(math.MaxUint64)
				}
			})
		})
	}
}

// benchLogAppend appends 128 B entries to l, calls after (if set) with
// each new index, and compacts every 2^20 entries as a snapshot would.
func benchLogAppend(b *testing.B, l *raftLog, after func(i uint64)) {
	l.reset(0, 0)
	payload := make([]byte, 128)
	b.SetBytes(int64(wire.EntrySize(len(payload))))
	b.ReportAllocs()
	for b.Loop() {
		i := l.appendEntry(wire.EntryNormal, 1, payload)
		if after != nil {
			after(i)
		}
		if i%(1<<20) == 0 {
			l.committed, l.stable = max(l.committed, i), max(l.stable, i)
			l.applied = max(l.applied, i-1000)
			l.compactTo(i - 1000)
		}
	}
}
