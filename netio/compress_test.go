package netio

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// jsonEntries builds n records from index first with JSON-like payloads of
// about size bytes: the kind of commands that compress well.
func jsonEntries(first uint64, n, size int) []byte {
	var b []byte
	for i := range n {
		var p []byte
		for j := 0; len(p) < size; j++ {
			id := int(first) + 7*i + j
			p = fmt.Appendf(p, `{"user_id":%d,"email":"user%d@example.com","active":true,"tags":["kraft"]}`, id, id)
		}
		b = wire.AppendEntry(b, wire.EntryNormal, first+uint64(i), 3, p[:size])
	}
	return b
}

// replicationTraffic is what a leader sends a follower: batches above the
// compression threshold, one below it, and a heartbeat.
func replicationTraffic(from, to uint64) []wire.Message {
	var ms []wire.Message
	next := uint64(1)
	for _, n := range []int{64, 64, 32, 1} { // 64×128 B ≈ 10 KiB; 1×128 B is below 4 KiB
		ms = append(ms, wire.Message{Type: wire.MsgAppend, From: from, To: to, Term: 3, Index: next - 1, LogTerm: 3,
			Commit: next - 1, Entries: jsonEntries(next, n, 128), EntryCount: n})
		next += uint64(n)
	}
	return append(ms, wire.Message{Type: wire.MsgHeartbeat, From: from, To: to, Term: 3, Commit: next - 1, Context: 1})
}

func compressionPair(t *testing.T, mode transportMode, aOn, bOn bool) (*node, *node) {
	t.Helper()
	a := mode.start(t, 1, func(c *Config) { c.ReplicationCompression = aOn })
	b := mode.start(t, 2, func(c *Config) { c.ReplicationCompression = bOn })
	a.t.SetPeer(2, b.peer)
	b.t.SetPeer(1, a.peer)
	waitFor(t, "both connected", func() bool { return a.t.Connected(2) && b.t.Connected(1) })
	return a, b
}

// exchange sends traffic from one node to the other and checks that every
// message arrives as sent; it returns how many arrived compressed.
func exchange(t *testing.T, from, to *node, fromID, toID uint64) (compressed int) {
	t.Helper()
	sent := replicationTraffic(fromID, toID)
	for i := range sent {
		if err := from.t.Send(&sent[i]); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	to.rec.wait(t, len(sent))
	to.rec.mu.Lock()
	defer to.rec.mu.Unlock()
	got := to.rec.msgs[len(to.rec.msgs)-len(sent):]
	for i, g := range got {
		w := sent[i]
		if g.Type != w.Type || g.From != w.From || g.To != w.To || g.Term != w.Term || g.Index != w.Index ||
			g.LogTerm != w.LogTerm || g.Commit != w.Commit || g.Context != w.Context ||
			g.EntryCount != w.EntryCount || !bytes.Equal(g.Entries, w.Entries) {
			t.Fatalf("message %d (%v) differs:\n got %+v\nwant %+v", i, w.Type, g, w)
		}
		if g.Compressed {
			compressed++
		}
	}
	return compressed
}

// Over both paths: the outbox of a gnet connection and the writer
// goroutine of a TLS one.
func TestReplicationCompressionShrinksAppends(t *testing.T) {
	for _, mode := range transportModes(t) {
		t.Run(mode.name, func(t *testing.T) { testCompressionShrinksAppends(t, mode) })
	}
}

func testCompressionShrinksAppends(t *testing.T, mode transportMode) {
	a, b := compressionPair(t, mode, true, true)
	if n := exchange(t, a, b, 1, 2); n != 3 {
		t.Fatalf("%d Appends arrived compressed, want the 3 above the threshold", n)
	}
	st := a.t.Stats()
	raw, sent := st.ReplicationBytesRaw.Load(), st.ReplicationBytesWire.Load()
	ratio := float64(raw) / float64(sent)
	t.Logf("replication bytes: raw %d, wire %d, ratio %.2f", raw, sent, ratio)
	if st.AppendsCompressed.Load() != 3 || ratio < 2 {
		t.Fatalf("AppendsCompressed %d, ratio %.2f (raw %d, wire %d); want 3 and at least 2",
			st.AppendsCompressed.Load(), ratio, raw, sent)
	}
	var plain int
	for _, m := range replicationTraffic(1, 2) {
		if m.Type == wire.MsgAppend {
			plain += wire.MessageSize(&m)
		}
	}
	if raw != uint64(plain) {
		t.Fatalf("ReplicationBytesRaw %d, the plain Appends were %d bytes", raw, plain)
	}
}

// Mixed settings interoperate in both directions, and nothing is
// compressed unless both sides advertised it.
func TestReplicationCompressionMixedSettings(t *testing.T) {
	for _, c := range []struct{ aOn, bOn bool }{{true, false}, {false, true}, {false, false}} {
		t.Run(fmt.Sprintf("a=%v,b=%v", c.aOn, c.bOn), func(t *testing.T) {
			a, b := compressionPair(t, transportMode{name: "plaintext"}, c.aOn, c.bOn)
			if h, err := a.t.Probe(b.peer); err != nil || (h.Capabilities&wire.CapCompressS2 != 0) != c.bOn {
				t.Fatalf("b's Hello: capabilities %#x, err %v; compression on: %v", h.Capabilities, err, c.bOn)
			}
			if n := exchange(t, a, b, 1, 2) + exchange(t, b, a, 2, 1); n != 0 {
				t.Fatalf("%d Appends arrived compressed", n)
			}
			for _, n := range []*node{a, b} {
				st := n.t.Stats()
				if st.AppendsCompressed.Load() != 0 || st.ReplicationBytesRaw.Load() != st.ReplicationBytesWire.Load() || st.ReplicationBytesRaw.Load() == 0 {
					t.Fatalf("compressed %d, raw %d, wire %d", st.AppendsCompressed.Load(), st.ReplicationBytesRaw.Load(), st.ReplicationBytesWire.Load())
				}
			}
		})
	}
}

// A node decodes compressed Appends even with compression off: the form
// is negotiated by the sender, and a receiver must take what it is sent.
func TestCompressedAppendDecodedWithCompressionOff(t *testing.T) {
	for _, mode := range transportModes(t) {
		t.Run(mode.name, func(t *testing.T) { testCompressedAppendDecodedWithCompressionOff(t, mode) })
	}
}

func testCompressedAppendDecodedWithCompressionOff(t *testing.T, mode transportMode) {
	b := mode.start(t, 2, nil)
	conn := mode.dial(t, b.peer) // as node 9, the ID of mode's raw certificate
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	hello := wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, Capabilities: wire.CapCompressS2, PeerAddr: "127.0.0.1:1"}
	if _, err := handshakeDialer(conn, hello, 2); err != nil {
		t.Fatal(err)
	}
	m := replicationTraffic(9, 2)[0]
	frame, ok := wire.AppendMessageCompressed(nil, &m, 0)
	if !ok {
		t.Fatal("test traffic did not compress")
	}
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	b.rec.wait(t, 1)
	b.rec.mu.Lock()
	got := b.rec.msgs[0]
	b.rec.mu.Unlock()
	if !got.Compressed || got.EntryCount != m.EntryCount || !bytes.Equal(got.Entries, m.Entries) {
		t.Fatalf("got compressed %v, %d entries; want the %d sent", got.Compressed, got.EntryCount, m.EntryCount)
	}
}
