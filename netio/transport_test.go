package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// logBuffer collects a transport's log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recorder is a Handler that keeps copies of what arrives.
type recorder struct {
	mu       sync.Mutex
	msgs     []wire.Message
	requests []wire.ClientRequest
	arrived  chan struct{}
	respond  atomic.Bool
	lastConn atomic.Pointer[ClientConn]
	received []time.Time // ClientConn.ReceivedAt of each request
}

func newRecorder() *recorder { return &recorder{arrived: make(chan struct{}, 1<<16)} }

func (r *recorder) HandleRaft(m *wire.Message) {
	c := *m
	c.Entries, c.Meta, c.Data = bytes.Clone(m.Entries), bytes.Clone(m.Meta), bytes.Clone(m.Data)
	r.mu.Lock()
	r.msgs = append(r.msgs, c)
	r.mu.Unlock()
	r.arrived <- struct{}{}
}

func (r *recorder) HandleClient(c *ClientConn, req *wire.ClientRequest, body []byte) {
	cp := *req
	cp.Key, cp.Value = bytes.Clone(req.Key), bytes.Clone(req.Value)
	r.mu.Lock()
	r.requests = append(r.requests, cp)
	r.received = append(r.received, c.ReceivedAt())
	r.mu.Unlock()
	r.lastConn.Store(c)
	if r.respond.Load() { // echo the key back, from another goroutine like a node would
		go c.Respond(&wire.ClientResponse{Seq: cp.Seq, Status: wire.StatusOK, Value: cp.Key})
	}
	r.arrived <- struct{}{}
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-r.arrived:
		case <-timeout:
			t.Fatalf("only %d of %d messages arrived", i, n)
		}
	}
}

// freeAddr returns a listen address below the kernel's ephemeral port
// range: a port probed free in the ephemeral range can be taken by some
// outbound connection before gnet binds it, which parallel tests do.
func freeAddr(t testing.TB) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	for {
		p := int(nextPort.Add(1))
		if p >= low {
			t.Fatal("ran out of test ports below the ephemeral range")
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
}

var nextPort atomic.Int64

func init() { nextPort.Store(int64(18000 + rand.IntN(8000))) }

type node struct {
	t      *Transport
	rec    *recorder
	logs   *logBuffer
	peer   string
	client string
}

func startNode(t *testing.T, id, cluster uint64, tweak func(*Config)) *node {
	t.Helper()
	n := &node{rec: newRecorder(), logs: &logBuffer{}, peer: freeAddr(t), client: freeAddr(t)}
	cfg := Config{NodeID: id, ClusterID: cluster, PeerAddr: n.peer, ClientAddr: n.client,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if tweak != nil {
		tweak(&cfg)
	}
	tr, err := New(cfg, n.rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	n.t = tr
	t.Cleanup(func() { tr.Close() })
	return n
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pair(t *testing.T) (*node, *node) {
	a, b := startNode(t, 1, 7, nil), startNode(t, 2, 7, nil)
	a.t.SetPeer(2, b.peer)
	b.t.SetPeer(1, a.peer)
	waitFor(t, "both connected", func() bool { return a.t.Connected(2) && b.t.Connected(1) })
	return a, b
}

func TestEveryRaftMessageCrosses(t *testing.T) {
	a, b := pair(t)
	var entries []byte
	for i := uint64(0); i < 5; i++ {
		entries = wire.AppendEntry(entries, wire.EntryNormal, 11+i, 3, []byte(fmt.Sprint("cmd", i)))
	}
	sent := []wire.Message{
		{Type: wire.MsgAppend, Index: 10, LogTerm: 3, Commit: 9, Entries: entries, EntryCount: 5},
		{Type: wire.MsgAppendResp, Index: 15, Hint: 12, LogTerm: 2, Reject: true},
		{Type: wire.MsgVote, Index: 15, LogTerm: 3, Transfer: true},
		{Type: wire.MsgVoteResp},
		{Type: wire.MsgPreVote, Index: 15, LogTerm: 3},
		{Type: wire.MsgPreVoteResp, Reject: true},
		{Type: wire.MsgSnapshot, Index: 100, LogTerm: 3, Offset: 0, Size: 4, Done: true, Meta: []byte("m"), Data: []byte("data")},
		{Type: wire.MsgSnapshotResp, Index: 100, Offset: 4},
		{Type: wire.MsgTimeoutNow},
		{Type: wire.MsgHeartbeat, Commit: 15, Context: 8},
		{Type: wire.MsgHeartbeatResp, Index: 15, Context: 8},
		{Type: wire.MsgReadIndex, Context: 9},
		{Type: wire.MsgReadIndexResp, Index: 15, Context: 9},
	}
	for i := range sent {
		sent[i].From, sent[i].To, sent[i].Term = 1, 2, 3
		if err := a.t.Send(&sent[i]); err != nil {
			t.Fatalf("send %v: %v", sent[i].Type, err)
		}
	}
	b.rec.wait(t, len(sent))
	for i, got := range b.rec.msgs {
		want := sent[i]
		if got.Type != want.Type || got.Index != want.Index || got.Commit != want.Commit || got.Context != want.Context ||
			got.Reject != want.Reject || !bytes.Equal(got.Entries, want.Entries) || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("message %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	// And the other way, on b's own outbound connection.
	if err := b.t.Send(&wire.Message{Type: wire.MsgHeartbeatResp, From: 2, To: 1, Term: 3, Index: 15}); err != nil {
		t.Fatal(err)
	}
	a.rec.wait(t, 1)
}

// Messages sent while a write is in flight share the next write.
// Each side learns where the other can be reached from the handshake.
func TestPeersLearnAdvertisedAddresses(t *testing.T) {
	var mu sync.Mutex
	learned := map[uint64]wire.Hello{}
	record := func(c *Config) {
		c.AdvertiseAdmin = "admin.example:7003"
		c.OnPeerHello = func(h wire.Hello) {
			mu.Lock()
			learned[h.NodeID] = h
			mu.Unlock()
		}
	}
	a, b := startNode(t, 1, 7, record), startNode(t, 2, 7, nil)
	a.t.SetPeer(2, b.peer)
	b.t.SetPeer(1, a.peer)
	waitFor(t, "both connected", func() bool { return a.t.Connected(2) && b.t.Connected(1) })
	mu.Lock()
	defer mu.Unlock()
	if h := learned[2]; h.PeerAddr != b.peer || h.ClientAddr != b.client {
		t.Fatalf("node 1 learned %+v for node 2 (peer %s client %s)", h, b.peer, b.client)
	}
}

func TestProbeAndQueuedBytes(t *testing.T) {
	a, b := pair(t)
	h, err := a.t.Probe(b.peer)
	if err != nil || h.NodeID != 2 || h.ClientAddr != b.client {
		t.Fatalf("Probe = %+v, %v", h, err)
	}
	if _, err := a.t.Probe(freeAddr(t)); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
	rawConn(t, b.client, 7, 0)
	waitFor(t, "client connection counted", func() bool { _, conns := b.t.QueuedBytes(); return conns == 2 })
}

// Sends between Cork and Uncork leave together; a Send outside them is
// written at once (from the sender, on an idle connection).
func TestSendsCoalesce(t *testing.T) {
	a, b := pair(t)
	const n, group = 20000, 100
	for i := 0; i < n; i++ {
		if i%group == 0 {
			a.t.Cork()
		}
		m := wire.Message{Type: wire.MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: uint64(i)}
		for {
			err := a.t.Send(&m)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrBusy) {
				t.Fatal(err)
			}
			a.t.Uncork()
			time.Sleep(time.Millisecond)
			a.t.Cork()
		}
		if i%group == group-1 {
			a.t.Uncork()
		}
	}
	b.rec.wait(t, n)
	for i, m := range b.rec.msgs {
		if m.Commit != uint64(i) {
			t.Fatalf("message %d arrived as %d: order lost", i, m.Commit)
		}
	}
	frames, writes := a.t.Stats().FramesOut.Load(), a.t.Stats().Writes.Load()
	t.Logf("%d frames in %d writes", frames, writes)
	if writes*2 > frames {
		t.Fatalf("%d frames took %d writes: no coalescing", frames, writes)
	}

	// Uncorked, on an idle connection: one write per Send, done by the
	// sender before Send returns. (A send right after the loop's last
	// write may still go through the loop, until its completion says
	// gnet's buffer is empty: hence most, not all.)
	direct := 0
	for i := 0; i < 50; i++ {
		before := a.t.Stats().DirectWrites.Load()
		m := wire.Message{Type: wire.MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: uint64(n + i)}
		if err := a.t.Send(&m); err != nil {
			t.Fatal(err)
		}
		direct += int(a.t.Stats().DirectWrites.Load() - before)
		b.rec.wait(t, 1)
	}
	if direct < 45 {
		t.Fatalf("%d of 50 idle sends written directly by the sender", direct)
	}
}

// stalledPeer accepts one connection, answers the handshake as node id, and
// never reads again.
func stalledPeer(t *testing.T, cluster, id uint64) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { c.Close() })
		b := make([]byte, wire.MaxHelloSize)
		io.ReadFull(c, b[:wire.HelloSize+2])
		n, _ := wire.HelloLen(b[:wire.HelloSize+2])
		io.ReadFull(c, b[wire.HelloSize+2:n])
		c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: cluster, NodeID: id}))
	}()
	return l.Addr().String()
}

// A peer that stops reading costs at most MaxInflightBytesPerConn (plus the
// kernel's socket buffers): then Send says ErrBusy instead of queueing.
func TestSendIsBoundedWhenPeerStopsReading(t *testing.T) {
	a := startNode(t, 1, 7, func(c *Config) { c.MaxFrameBytes = 1 << 20; c.MaxInflightBytesPerConn = 1 << 20 })
	a.t.SetPeer(2, stalledPeer(t, 7, 2))
	waitFor(t, "connected", func() bool { return a.t.Connected(2) })
	payload := bytes.Repeat([]byte{1}, 64<<10)
	m := wire.Message{Type: wire.MsgSnapshot, From: 1, To: 2, Term: 1, Size: 1 << 40, Data: payload}
	var accepted, afterBusy int
	busy := false
	deadline := time.Now().Add(2 * time.Second)
	for accepted < 512<<20 && time.Now().Before(deadline) {
		err := a.t.Send(&m)
		if errors.Is(err, ErrBusy) {
			busy = true
			time.Sleep(time.Millisecond) // let probes refresh the backlog
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted += len(payload)
		if busy {
			afterBusy += len(payload)
		}
		m.Offset += uint64(len(payload))
	}
	t.Logf("accepted %d MiB, %d KiB of it after the first ErrBusy (the kernel's socket buffers grow meanwhile)", accepted>>20, afterBusy>>10)
	if !busy {
		t.Fatalf("accepted %d MiB for a peer that never reads", accepted>>20)
	}
	// What this process holds for the peer never exceeds the limit; the rest
	// of what was accepted sits in kernel socket buffers, bounded by the OS.
	ob := a.t.peers[2].out.Load()
	ob.mu.Lock()
	queued := ob.backlog + len(ob.writing) + len(ob.pending)
	ob.mu.Unlock()
	if queued > 1<<20 {
		t.Fatalf("%d KiB queued in user space, limit 1 MiB", queued>>10)
	}
	if accepted > 64<<20 {
		t.Fatalf("accepted %d MiB: more than the limit plus any socket buffers", accepted>>20)
	}
}

func TestRefusesAnotherCluster(t *testing.T) {
	a := startNode(t, 1, 7, nil)
	stranger := startNode(t, 3, 8, nil)
	stranger.t.SetPeer(1, a.peer)
	waitFor(t, "both logs to name the mismatch", func() bool {
		return strings.Contains(a.logs.String(), "cluster 8, this node in cluster 7") &&
			strings.Contains(stranger.logs.String(), "refused by the remote") &&
			strings.Contains(stranger.logs.String(), "cluster ID mismatch")
	})
	if stranger.t.Connected(1) {
		t.Fatal("a node of another cluster connected")
	}
}

func TestRefusesDuplicateNodeID(t *testing.T) {
	a := startNode(t, 1, 7, nil)
	imposter := startNode(t, 1, 7, nil) // misconfigured: same ID as a
	imposter.t.cfg.NodeID = 1
	imposter.t.peers = map[uint64]*peer{}
	// Dial a as if a were node 2: the handshake is refused on both sides.
	imposter.t.SetPeer(2, a.peer)
	waitFor(t, "duplicate ID in both logs", func() bool {
		return strings.Contains(a.logs.String(), "same ID") && strings.Contains(imposter.logs.String(), "same ID")
	})
}

// rawConn dials addr and performs a handshake as the given role.
func rawConn(t *testing.T, addr string, cluster, self uint64) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	role := wire.RolePeer
	if self == 0 {
		role = wire.RoleClient
	}
	if _, err := handshakeDialer(c, wire.Hello{Role: role, ClusterID: cluster, NodeID: self, PeerAddr: "x:1"}, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

// expectRefusal reads until EOF and checks that an Error frame with text
// came first.
func expectRefusal(t *testing.T, c net.Conn, text string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, _ := io.ReadAll(c)
	f, _, err := wire.ParseFrame(all, 0)
	if err != nil || f.Type != wire.MsgError {
		t.Fatalf("got %q, want an Error frame", all)
	}
	_, msg, _ := wire.DecodeErrorFrame(f.Body)
	if !strings.Contains(string(msg), text) {
		t.Fatalf("refusal %q does not mention %q", msg, text)
	}
}

func TestHostileInputIsRefusedAndServiceContinues(t *testing.T) {
	a, b := pair(t)
	cases := []struct {
		name  string
		addr  string
		bytes func(c net.Conn)
		text  string
	}{
		{"HTTP on the peer port", b.peer, func(c net.Conn) { c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n1234567")) }, `"GET "`},
		{"HTTP on the client port", b.client, func(c net.Conn) { c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n1234567")) }, "KRFT"},
		{"client hello on the peer port", b.peer, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7}))
		}, "client connected to the peer port"},
		{"oversized frame", b.peer, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"}))
			c.Write(binary.LittleEndian.AppendUint32(nil, 1<<30))
		}, "frame too large"},
		{"zero-length frame", b.peer, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"}))
			c.Write([]byte{0, 0, 0, 0})
		}, "frame length 0"},
		{"lying inner length", b.client, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7}))
			f := wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: 1, Op: wire.OpPut, Key: []byte("k")})
			binary.LittleEndian.PutUint32(f[wire.FrameHeaderSize+28:], 1<<20)
			c.Write(f)
		}, "malformed"},
		{"spoofed sender", b.peer, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"}))
			c.Write(wire.AppendMessage(nil, &wire.Message{Type: wire.MsgTimeoutNow, From: 1, To: 2, Term: 99}))
		}, "message from 1 to 2 on the connection of node 9"},
		{"raft frame on the client port", b.client, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7}))
			c.Write(wire.AppendMessage(nil, &wire.Message{Type: wire.MsgTimeoutNow, From: 1, To: 2, Term: 99}))
		}, "TimeoutNow frame on the client port"},
		{"unknown frame type", b.peer, func(c net.Conn) {
			c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"}))
			c.Write([]byte{1, 0, 0, 0, 99})
		}, "unknown type"},
	}
	for _, tc := range cases {
		c, err := net.Dial("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc.bytes(c)
		// After a valid hello the node answers with its own first.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var head [4]byte
		io.ReadFull(c, head[:])
		if binary.LittleEndian.Uint32(head[:]) == wire.Magic {
			rest := make([]byte, wire.MaxHelloSize)
			copy(rest, head[:])
			io.ReadFull(c, rest[4:wire.HelloSize])
			if n, _ := wire.HelloLen(rest[:wire.HelloSize]); n == 0 { // a peer hello: addresses follow
				io.ReadFull(c, rest[wire.HelloSize:wire.HelloSize+2])
				n, _ = wire.HelloLen(rest[:wire.HelloSize+2])
				io.ReadFull(c, rest[wire.HelloSize+2:n])
			}
			expectRefusal(t, c, tc.text)
		} else {
			expectRefusal(t, &prefixConn{Conn: c, prefix: head[:]}, tc.text)
		}
		c.Close()
	}
	if len(b.rec.msgs) != 0 || len(b.rec.requests) != 0 {
		t.Fatalf("hostile input reached the handler: %d messages, %d requests", len(b.rec.msgs), len(b.rec.requests))
	}
	// The node still serves its real peer.
	if err := a.t.Send(&wire.Message{Type: wire.MsgHeartbeat, From: 1, To: 2, Term: 1}); err != nil {
		t.Fatal(err)
	}
	b.rec.wait(t, 1)
	if got := b.t.Stats().BadFrames.Load() + b.t.Stats().HandshakesFailed.Load(); got < uint64(len(cases)) {
		t.Fatalf("counted %d refusals for %d hostile connections", got, len(cases))
	}
}

type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

func TestClientRequestsAndResponses(t *testing.T) {
	n := startNode(t, 1, 7, nil)
	n.rec.respond.Store(true)
	c := rawConn(t, n.client, 7, 0)
	var batch []byte
	for i := 1; i <= 100; i++ { // pipelined in one write
		batch = wire.AppendClientRequest(batch, &wire.ClientRequest{ClientID: 5, Seq: uint64(i), Op: wire.OpGet, Key: []byte(fmt.Sprint("key", i))})
	}
	c.Write(batch)
	resps, err := readResponses(t, c, 100, 10*time.Second)
	if err != nil {
		t.Fatalf("after %d responses: %v", len(resps), err)
	}
	got := map[uint64]string{}
	for _, r := range resps {
		got[r.Seq] = string(r.Value)
	}
	for i := uint64(1); i <= 100; i++ {
		if got[i] != fmt.Sprint("key", i) {
			t.Fatalf("response %d = %q", i, got[i])
		}
	}
}

// ReceivedAt is one clock reading for the requests of one read, and a new
// one for the next read.
func TestReceivedAtIsPerRead(t *testing.T) {
	n := startNode(t, 1, 7, nil)
	c := rawConn(t, n.client, 7, 0)
	send := func(seqs ...uint64) {
		var batch []byte
		for _, seq := range seqs { // pipelined in one write
			batch = wire.AppendClientRequest(batch, &wire.ClientRequest{ClientID: 5, Seq: seq, Op: wire.OpGet, Key: []byte("k")})
		}
		if _, err := c.Write(batch); err != nil {
			t.Fatal(err)
		}
		n.rec.wait(t, len(seqs))
	}
	before := time.Now()
	send(1, 2, 3)
	time.Sleep(30 * time.Millisecond)
	send(4)
	n.rec.mu.Lock()
	at := slices.Clone(n.rec.received)
	n.rec.mu.Unlock()
	if len(at) != 4 {
		t.Fatalf("%d requests recorded, want 4", len(at))
	}
	if at[0].Before(before) || !at[1].Equal(at[0]) || !at[2].Equal(at[0]) {
		t.Fatalf("one read's requests received at %v, %v, %v (sent after %v)", at[0], at[1], at[2], before)
	}
	if d := at[3].Sub(at[0]); d < 30*time.Millisecond {
		t.Fatalf("a request read 30 ms later received %v after the first", d)
	}
}

// Peers set before Start are dialled once the loops run.
func TestSetPeerBeforeStart(t *testing.T) {
	b := startNode(t, 2, 7, nil)
	rec := newRecorder()
	tr, err := New(Config{NodeID: 1, ClusterID: 7, PeerAddr: freeAddr(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, rec)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetPeer(2, b.peer)
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	waitFor(t, "connected", func() bool { return tr.Connected(2) })
}

func TestReconnectsAfterPeerRestart(t *testing.T) {
	a, b := pair(t)
	addr := b.peer
	b.t.Close()
	waitFor(t, "disconnect noticed", func() bool { return !a.t.Connected(2) })
	if err := a.t.Send(&wire.Message{Type: wire.MsgHeartbeat, From: 1, To: 2}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send to a dead peer: %v", err)
	}
	rec := newRecorder()
	tr, err := New(Config{NodeID: 2, ClusterID: 7, PeerAddr: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	waitFor(t, "reconnect", func() bool { return a.t.Connected(2) })
	if err := a.t.Send(&wire.Message{Type: wire.MsgHeartbeat, From: 1, To: 2, Term: 5}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
}

func TestConfigValidate(t *testing.T) {
	ok := Config{NodeID: 1, PeerAddr: "127.0.0.1:7001", ClientAddr: "127.0.0.1:7002"}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(c *Config){
		"NodeID":                     func(c *Config) { c.NodeID = 0 },
		"PeerAddr is required":       func(c *Config) { c.PeerAddr = "" },
		"PeerAddr \"nope\"":          func(c *Config) { c.PeerAddr = "nope" },
		"both":                       func(c *Config) { c.ClientAddr = c.PeerAddr },
		"ServerLoops":                func(c *Config) { c.ServerLoops = 0 },
		"MaxInflightBytesPerConn":    func(c *Config) { c.MaxInflightBytesPerConn = c.MaxFrameBytes - 1 },
		"ReconnectMin":               func(c *Config) { c.ReconnectMax = c.ReconnectMin / 2 },
		"Peers has node ID 0":        func(c *Config) { c.Peers = map[uint64]string{0: "a:1"} },
		"IdleTimeout":                func(c *Config) { c.IdleTimeout = -time.Second },
		"MaxInflightRequestsPerConn": func(c *Config) { c.MaxInflightRequestsPerConn = -1 },
	}
	for want, mutate := range bad {
		c := ok
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate = %v", want, err)
		}
	}
	if _, err := New(Config{NodeID: 1, PeerAddr: "127.0.0.1:0"}, newRecorder()); err == nil {
		t.Error("New accepted port 0")
	}
	if _, err := New(ok, nil); err == nil {
		t.Error("New accepted a nil handler")
	}
}

// A connection that never finishes its handshake (slowloris) is closed
// after HandshakeTimeout with a reason, and the node keeps serving.
func TestSlowHandshakeIsClosed(t *testing.T) {
	b := startNode(t, 2, 7, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", b.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("KRF")) // three bytes, then nothing
	start := time.Now()
	expectRefusal(t, c, "handshake not completed within 200ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
	if b.t.Stats().HandshakeTimeouts.Load() == 0 {
		t.Fatal("handshake timeout not counted")
	}
	if _, client := b.t.Conns(); client != 0 {
		t.Fatalf("the closed connection still holds a slot: %d", client)
	}
	rawConn(t, b.client, 7, 0) // still serving
}

// Beyond MaxConnsPerPort a connection is refused as overloaded; closing
// one frees its slot.
func TestMaxConnsPerPort(t *testing.T) {
	n := startNode(t, 1, 7, func(c *Config) { c.MaxConnsPerPort = 3 })
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		conns = append(conns, rawConn(t, n.client, 7, 0))
	}
	over, err := net.Dial("tcp", n.client)
	if err != nil {
		t.Fatal(err)
	}
	expectRefusal(t, over, "maximum of 3 connections")
	over.Close()
	if n.t.Stats().ConnsRefused.Load() != 1 {
		t.Fatalf("refusals counted: %d", n.t.Stats().ConnsRefused.Load())
	}
	if _, client := n.t.Conns(); client != 3 {
		t.Fatalf("open client connections: %d", client)
	}
	conns[0].Close()
	waitFor(t, "the slot to free", func() bool { _, client := n.t.Conns(); return client == 2 })
	rawConn(t, n.client, 7, 0) // accepted again
	// The peer port has its own budget.
	rawConn(t, n.peer, 7, 9)
}

// readResponses reads client responses from c until want have come or
// within has passed (then with the read error); Value is copied.
func readResponses(t *testing.T, c net.Conn, want int, within time.Duration) ([]wire.ClientResponse, error) {
	t.Helper()
	var out []wire.ClientResponse
	var buf []byte
	c.SetReadDeadline(time.Now().Add(within))
	for len(out) < want {
		tmp := make([]byte, 4096)
		k, err := c.Read(tmp)
		if err != nil {
			return out, err
		}
		buf = append(buf, tmp[:k]...)
		for {
			f, size, err := wire.ParseFrame(buf, 0)
			if err != nil {
				t.Fatal(err)
			}
			if size == 0 {
				break
			}
			var r wire.ClientResponse
			if err := wire.DecodeClientResponse(f.Body, &r); err != nil {
				t.Fatal(err)
			}
			r.Value = bytes.Clone(r.Value)
			out = append(out, r)
			buf = buf[size:]
		}
	}
	return out, nil
}

// Responses held in a ResponseBatch leave only at Flush, in one write per
// connection; Respond, for comparison, writes a connection's first answer
// alone.
func TestResponseBatchWritesEachConnectionOnce(t *testing.T) {
	n := startNode(t, 1, 7, nil)
	const conns, per = 3, 20
	var cs []net.Conn
	var ccs []*ClientConn
	for i := range conns {
		c := rawConn(t, n.client, 7, 0)
		c.Write(wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 5, Seq: uint64(i), Op: wire.OpGet, Key: []byte("k")}))
		n.rec.wait(t, 1)
		cs, ccs = append(cs, c), append(ccs, n.rec.lastConn.Load())
	}
	readAll := func(c net.Conn, want int, within time.Duration) (seqs []uint64, err error) {
		resps, err := readResponses(t, c, want, within)
		for _, r := range resps {
			seqs = append(seqs, r.Seq)
		}
		return seqs, err
	}
	var b ResponseBatch
	writes := n.t.Stats().Writes.Load()
	for k := range per {
		for i, cc := range ccs {
			if err := cc.RespondIn(&b, &wire.ClientResponse{Seq: uint64(100*i + k), Status: wire.StatusOK}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if seqs, err := readAll(cs[0], 1, 100*time.Millisecond); len(seqs) > 0 || err == nil {
		t.Fatalf("held responses arrived before Flush: %v (%v)", seqs, err)
	}
	b.Flush()
	for i, c := range cs {
		seqs, err := readAll(c, per, 10*time.Second)
		if err != nil {
			t.Fatalf("conn %d: %d of %d responses: %v", i, len(seqs), per, err)
		}
		for k, s := range seqs {
			if s != uint64(100*i+k) {
				t.Fatalf("conn %d: response %d has seq %d", i, k, s)
			}
		}
	}
	if got := n.t.Stats().Writes.Load() - writes; got != conns {
		t.Fatalf("%d writes for %d connections' held responses, want one each", got, conns)
	}
	// The same answers through Respond: the first leaves at once, alone.
	writes = n.t.Stats().Writes.Load()
	for k := range per {
		ccs[0].Respond(&wire.ClientResponse{Seq: uint64(k), Status: wire.StatusOK})
	}
	if _, err := readAll(cs[0], per, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := n.t.Stats().Writes.Load() - writes; got < 1 {
		t.Fatalf("Respond: %d writes", got)
	} else {
		t.Logf("Respond: %d writes for %d answers; RespondIn + Flush: 1", got, per)
	}
}
