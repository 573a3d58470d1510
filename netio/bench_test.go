package netio

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/testpki"
	"github.com/kraftdb/kraft/wire"
)

// countingHandler counts Raft messages and entry bytes, copying nothing.
type countingHandler struct{ msgs atomic.Int64 }

func (h *countingHandler) HandleRaft(m *wire.Message)                            { h.msgs.Add(1) }
func (h *countingHandler) HandleClient(*ClientConn, *wire.ClientRequest, []byte) {}

// BenchmarkPeerLink measures Append throughput over one peer link, node 1
// to node 2: plaintext (gnet both ways) against mutual TLS (crypto/tls
// goroutines), in the same run. Each op is one Append of 16 entries of 256
// bytes; MB/s counts the entry records.
//
//	go test -run '^$' -bench PeerLink -benchmem ./netio
func BenchmarkPeerLink(b *testing.B) {
	pki := testpki.New(b, b.TempDir())
	for _, mode := range []string{"plaintext", "tls"} {
		b.Run(mode, func(b *testing.B) {
			var tweak [3]func(*Config)
			if mode == "tls" {
				for id := uint64(1); id <= 2; id++ {
					cert, key := pki.Node(id)
					src, err := NewTLSSource(cert, key, pki.CAFile())
					if err != nil {
						b.Fatal(err)
					}
					tweak[id] = func(c *Config) { c.PeerTLS = src }
				}
			}
			start := func(id uint64, h Handler) (*Transport, string) {
				addr := freeAddr(b)
				cfg := Config{NodeID: id, ClusterID: 7, PeerAddr: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
				if tweak[id] != nil {
					tweak[id](&cfg)
				}
				tr, err := New(cfg, h)
				if err != nil {
					b.Fatal(err)
				}
				if err := tr.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { tr.Close() })
				return tr, addr
			}
			recv := &countingHandler{}
			a, _ := start(1, &countingHandler{})
			_, addr := start(2, recv)
			a.SetPeer(2, addr)
			waitFor(b, "connected", func() bool { return a.Connected(2) })

			var entries []byte
			payload := make([]byte, 256)
			for i := uint64(0); i < 16; i++ {
				entries = wire.AppendEntry(entries, wire.EntryNormal, 101+i, 3, payload)
			}
			m := wire.Message{Type: wire.MsgAppend, From: 1, To: 2, Term: 3, Index: 100, LogTerm: 3, Entries: entries, EntryCount: 16}
			b.SetBytes(int64(len(entries)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for {
					err := a.Send(&m)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrBusy) {
						b.Fatal(err)
					}
					time.Sleep(20 * time.Microsecond)
				}
			}
			waitFor(b, "all delivered", func() bool { return recv.msgs.Load() == int64(b.N) })
			b.StopTimer()
		})
	}
}

// heldSink takes a write and holds it until the benchmark completes it,
// as gnet would on its loop after the socket took the bytes.
type heldSink struct {
	o    *outbox
	busy bool
}

func (s *heldSink) asyncWrite([]byte) error { s.busy = true; return nil }

// BenchmarkRespondIn: a leader's apply goroutine answering writes with
// RespondIn, 400 per applied batch over 32 client connections, then
// ResponseBatch.Flush; each write completes before the next batch. One
// op is one answer (its encoding, the in-flight count, the outbox).
//
//	go test ./netio -run '^$' -bench RespondIn -benchmem -count 6
func BenchmarkRespondIn(b *testing.B) {
	const conns, perBatch = 32, 400
	var stats Stats
	cs := make([]*ClientConn, conns)
	sinks := make([]*heldSink, conns)
	for i := range cs {
		o := &outbox{maxBytes: 64 << 20, stats: &stats}
		sinks[i] = &heldSink{o: o}
		o.w = sinks[i]
		cs[i] = &ClientConn{id: uint64(i), out: o, maxInflight: 1 << 30}
	}
	var batch ResponseBatch
	r := &wire.ClientResponse{Seq: 1, Status: wire.StatusOK}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c := cs[n%conns]
		c.inflight.Add(1)
		r.Seq++
		if err := c.RespondIn(&batch, r); err != nil {
			b.Fatal(err)
		}
		if n++; n%perBatch == 0 {
			batch.Flush()
			for _, s := range sinks {
				if s.busy {
					s.busy = false
					s.o.written(0, nil)
				}
			}
		}
	}
}
