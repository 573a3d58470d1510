package netio

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// fuzzConn is an acceptedConn with no socket: writes vanish, and the
// outbox's sink refuses, so nothing needs a goroutine.
type fuzzConn struct{}

func (fuzzConn) remoteAddr() string      { return "fuzz:1" }
func (fuzzConn) writeNow(b []byte) error { return nil }
func (fuzzConn) closeWith([]byte)        {}
func (fuzzConn) newOutbox(maxBytes int, stats *Stats) *outbox {
	o := &outbox{maxBytes: maxBytes, stats: stats}
	o.w = closedSink{}
	return o
}

type closedSink struct{}

func (closedSink) asyncWrite([]byte) error { return ErrClosed }

// strictHandler fails the fuzz run if anything it is handed is not a
// well-formed message for this connection: it must re-encode and decode to
// the same thing.
type strictHandler struct {
	t      *testing.T
	ss     *session
	nodeID uint64
	seen   int
}

func (h *strictHandler) HandleRaft(m *wire.Message) {
	h.seen++
	if h.ss.port != wire.RolePeer || !m.Type.IsRaft() || m.From != h.ss.peerID || m.To != h.nodeID || !h.ss.hello {
		h.t.Fatalf("HandleRaft on the %s port (hello %v, peer %d) with %+v", h.ss.port, h.ss.hello, h.ss.peerID, m)
	}
	if h.ss.verifyIdentity && !containsID(h.ss.certIDs, m.From) {
		h.t.Fatalf("message from node %d, which the certificate (%v) does not name", m.From, h.ss.certIDs)
	}
	f, _, err := wire.ParseFrame(wire.AppendMessage(nil, m), 0)
	var again wire.Message
	if err == nil {
		err = wire.DecodeMessage(f, &again)
	}
	if err != nil || again.Type != m.Type || again.Term != m.Term || !bytes.Equal(again.Entries, m.Entries) || !bytes.Equal(again.Data, m.Data) {
		h.t.Fatalf("the handler got a message that does not survive re-encoding (%v): %+v", err, m)
	}
}

func (h *strictHandler) HandleClient(c *ClientConn, req *wire.ClientRequest, body []byte) {
	h.seen++
	if h.ss.port != wire.RoleClient || c == nil || c != h.ss.client {
		h.t.Fatalf("HandleClient on the %s port", h.ss.port)
	}
	var again wire.ClientRequest
	if err := wire.DecodeClientRequest(body, &again); err != nil || again.Seq != req.Seq || !bytes.Equal(again.Key, req.Key) {
		h.t.Fatalf("the handler got a request that does not decode (%v): %+v", err, req)
	}
	c.Respond(&wire.ClientResponse{Seq: req.Seq})
}

// FuzzConnHandler drives the protocol logic shared by the gnet and TLS
// paths (Hello, frames, dispatch) with arbitrary byte streams delivered in
// arbitrary pieces, the way either driver does: no panic, and the handler
// sees only well-formed messages from the connection's authenticated node.
//
// The first byte picks the port (bit 0: client) and whether mutual-TLS
// identity checks apply (bit 1: the certificate names node 9); the second
// is the size of the pieces the stream arrives in.
func FuzzConnHandler(f *testing.F) {
	peerHello := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"})
	clientHello := wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7})
	entries := wire.AppendEntry(nil, wire.EntryNormal, 5, 1, []byte("cmd"))
	raft := wire.AppendMessage(nil, &wire.Message{Type: wire.MsgAppend, From: 9, To: 1, Term: 1, Index: 4, Entries: entries, EntryCount: 1})
	raft = wire.AppendMessage(raft, &wire.Message{Type: wire.MsgHeartbeat, From: 9, To: 1, Term: 1, Commit: 4})
	req := wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: 1, Op: wire.OpPut, Key: []byte("k"), Value: []byte("v")})
	seed := func(mode, piece byte, parts ...[]byte) {
		f.Add(append([]byte{mode, piece}, bytes.Join(parts, nil)...))
	}
	seed(0, 7, peerHello, raft)
	seed(2, 255, peerHello, raft)
	seed(1, 3, clientHello, req, req)
	seed(1, 64, clientHello, wire.AppendErrorFrame(nil, 1, "x"), req)
	seed(0, 1, []byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDrive(t, in) })
}

// fuzzDrive runs one FuzzConnHandler input and returns the handler.
func fuzzDrive(t *testing.T, in []byte) *strictHandler {
	h := &strictHandler{t: t, nodeID: 1}
	if len(in) < 2 {
		return h
	}
	mode, piece, stream := in[0], max(int(in[1]), 1), in[2:]
	tr, err := New(Config{NodeID: 1, ClusterID: 7, PeerAddr: "127.0.0.1:1", ClientAddr: "127.0.0.1:2",
		MaxFrameBytes: 64 << 10, MaxInflightRequestsPerConn: 4,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, h)
	if err != nil {
		t.Fatal(err)
	}
	ss := &session{s: tr.srv, conn: fuzzConn{}, port: wire.RolePeer}
	if mode&1 != 0 {
		ss.port = wire.RoleClient
	}
	if mode&2 != 0 && ss.port == wire.RolePeer {
		ss.verifyIdentity, ss.certIDs = true, []uint64{9}
	}
	h.ss = ss
	var buf []byte
	for len(stream) > 0 {
		k := min(piece, len(stream))
		buf, stream = append(buf, stream[:k]...), stream[k:]
		done, err := ss.feed(buf)
		if err != nil {
			if frame := ss.refusal(err); len(frame) == 0 {
				t.Fatal("a refusal without an Error frame")
			}
			return h
		}
		buf = buf[:copy(buf, buf[done:])]
	}
	return h
}

// The harness reaches the handler: well-formed streams, in any piece size,
// deliver every message; a certificate naming another node delivers none.
func TestFuzzHarnessReachesTheHandler(t *testing.T) {
	peerHello := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"})
	clientHello := wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7})
	hb := wire.AppendMessage(nil, &wire.Message{Type: wire.MsgHeartbeat, From: 9, To: 1, Term: 1})
	req := wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: 1, Op: wire.OpGet, Key: []byte("k")})
	for _, piece := range []byte{1, 5, 255} {
		if got := fuzzDrive(t, append([]byte{2, piece}, append(peerHello, append(hb, hb...)...)...)).seen; got != 2 {
			t.Fatalf("piece %d: %d raft messages handled, want 2", piece, got)
		}
		if got := fuzzDrive(t, append([]byte{1, piece}, append(clientHello, append(req, req...)...)...)).seen; got != 2 {
			t.Fatalf("piece %d: %d requests handled, want 2", piece, got)
		}
	}
	other := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 8, PeerAddr: "h:8"})
	hb8 := wire.AppendMessage(nil, &wire.Message{Type: wire.MsgHeartbeat, From: 8, To: 1, Term: 1})
	if got := fuzzDrive(t, append([]byte{2, 64}, append(other, hb8...)...)).seen; got != 0 {
		t.Fatalf("node 8 with a certificate naming node 9 got %d messages through", got)
	}
	if got := fuzzDrive(t, append([]byte{0, 64}, append(other, hb8...)...)).seen; got != 1 {
		t.Fatalf("node 8 without identity checks: %d messages, want 1", got)
	}
}
