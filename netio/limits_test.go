package netio

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/testpki"
	"github.com/kraftdb/kraft/wire"
)

// transportMode runs a test over plaintext (gnet) and over TLS (crypto/tls
// goroutines), the two paths that share the session logic.
type transportMode struct {
	name string
	pki  *testpki.PKI // nil: plaintext
	cert string       // TLS: a node-9 certificate for raw peer connections
	key  string
}

func transportModes(t *testing.T) []transportMode {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Node(9)
	return []transportMode{{name: "plaintext"}, {name: "tls", pki: pki, cert: cert, key: key}}
}

func (m transportMode) start(t *testing.T, id uint64, tweak func(*Config)) *node {
	if m.pki == nil {
		return startNode(t, id, 7, tweak)
	}
	return startTLSNode(t, m.pki, id, tweak)
}

// dial opens a raw connection (TLS done, Kraft handshake not) to addr;
// over TLS it presents node 9's certificate, which the peer port accepts
// from a Hello claiming node 9.
func (m transportMode) dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	if m.pki == nil {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c, err := tlsDial(t, addr, m.pki, m.cert, m.key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// client opens a client connection with its handshake done.
func (m transportMode) client(t *testing.T, n *node) net.Conn {
	t.Helper()
	c := m.dial(t, n.client)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := handshakeDialer(c, wire.Hello{Role: wire.RoleClient, ClusterID: 7}, 0); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// closeWrite tells the server this side has sent everything.
func closeWrite(c net.Conn) {
	switch c := c.(type) {
	case *tls.Conn:
		c.CloseWrite()
	case *net.TCPConn:
		c.CloseWrite()
	}
}

// readError reads until the connection ends and returns the text of the
// Error frame it carried after the server's Hello ("" if none).
func readError(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open (read %d bytes)", len(all))
	}
	if n, _ := wire.HelloLen(all[:min(len(all), wire.MaxHelloSize)]); n > 0 && len(all) >= n {
		all = all[n:]
	} else if n == 0 && len(all) >= 4 && binary.LittleEndian.Uint32(all) == wire.Magic {
		return ""
	}
	f, size, err := wire.ParseFrame(all, 0)
	if err != nil || size == 0 || f.Type != wire.MsgError {
		return ""
	}
	_, text, _ := wire.DecodeErrorFrame(f.Body)
	return string(text)
}

func (r *recorder) counts() (msgs, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs), len(r.requests)
}

// Hostile bytes on both ports, over both paths: each connection is refused
// or simply ends, the handler never sees a thing, and the node keeps
// serving its peer and its clients.
func TestHostileInputOnEveryPortAndPath(t *testing.T) {
	for _, m := range transportModes(t) {
		t.Run(m.name, func(t *testing.T) {
			a, b := m.start(t, 1, nil), m.start(t, 2, nil)
			a.t.SetPeer(2, b.peer)
			waitFor(t, "connected", func() bool { return a.t.Connected(2) })
			rng := rand.New(rand.NewPCG(1, 2))
			random := func(n int) []byte {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
				return p
			}
			peerHello := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 9, PeerAddr: "h:9"})
			clientHello := wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7})
			var entries []byte
			entries = wire.AppendEntry(entries, wire.EntryNormal, 5, 1, []byte("x"))
			appendFrame := wire.AppendMessage(nil, &wire.Message{Type: wire.MsgAppend, From: 9, To: 2, Term: 1, Index: 4, Entries: entries, EntryCount: 1})
			lyingAppend := append([]byte(nil), appendFrame...)
			lyingAppend[len(lyingAppend)-len(entries)] ^= 0x40 // the record's length field
			request := wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: 1, Op: wire.OpPut, Key: []byte("k"), Value: []byte("v")})
			lyingRequest := append([]byte(nil), request...)
			binary.LittleEndian.PutUint32(lyingRequest[wire.FrameHeaderSize+28:], 1<<30)
			cat := func(parts ...[]byte) []byte {
				var out []byte
				for _, p := range parts {
					out = append(out, p...)
				}
				return out
			}
			type hostile struct {
				name string
				addr string
				send []byte
				want string // in the Error frame; "" if the connection may just end
			}
			var cases []hostile
			for _, port := range []struct {
				name, addr string
				hello      []byte
				frame      []byte
				lying      []byte
				lyingWant  string
			}{{"peer", b.peer, peerHello, appendFrame, lyingAppend, "entry length 97 > 33 bytes available"},
				{"client", b.client, clientHello, request, lyingRequest, "section lengths sum to"}} {
				cases = append(cases,
					hostile{port.name + ": random bytes", port.addr, random(4096), "bad magic"},
					hostile{port.name + ": truncated hello", port.addr, port.hello[:len(port.hello)/2], ""},
					hostile{port.name + ": hello then random bytes", port.addr, cat(port.hello, random(4096)), ""},
					hostile{port.name + ": truncated frame", port.addr, cat(port.hello, port.frame[:len(port.frame)-3]), ""},
					hostile{port.name + ": oversized length prefix", port.addr, cat(port.hello, []byte{0xff, 0xff, 0xff, 0xff, 1}), "frame too large"},
					hostile{port.name + ": lying inner length", port.addr, cat(port.hello, port.lying), port.lyingWant},
					hostile{port.name + ": zero length", port.addr, cat(port.hello, []byte{0, 0, 0, 0}), "frame length 0"},
				)
			}
			for _, h := range cases {
				c := m.dial(t, h.addr)
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				c.Write(h.send)
				closeWrite(c)
				got := readError(t, c)
				c.Close()
				if h.want != "" && !strings.Contains(got, h.want) {
					t.Errorf("%s: refusal %q, want %q", h.name, got, h.want)
				}
			}
			if msgs, reqs := b.rec.counts(); msgs != 0 || reqs != 0 {
				t.Fatalf("hostile input reached the handler: %d messages, %d requests", msgs, reqs)
			}
			if err := a.t.Send(&wire.Message{Type: wire.MsgHeartbeat, From: 1, To: 2, Term: 1}); err != nil {
				t.Fatal(err)
			}
			b.rec.wait(t, 1)
			b.rec.respond.Store(true)
			if r := roundTrip(t, m.client(t, b), 1, "still here"); r.Status != wire.StatusOK || string(r.Value) != "still here" {
				t.Fatalf("after the hostile input: %+v", r)
			}
			if got := b.t.Stats().BadFrames.Load(); got < 6 {
				t.Fatalf("BadFrames = %d after the hostile frames", got)
			}
		})
	}
}

// A client connection with nothing to say for IdleTimeout is closed with a
// reason; one waiting for a response is not, and peers never are.
func TestIdleClientConnectionsAreClosed(t *testing.T) {
	for _, m := range transportModes(t) {
		t.Run(m.name, func(t *testing.T) {
			tweak := func(c *Config) { c.IdleTimeout = 300 * time.Millisecond }
			a, b := m.start(t, 1, tweak), m.start(t, 2, tweak)
			a.t.SetPeer(2, b.peer)
			waitFor(t, "connected", func() bool { return a.t.Connected(2) })
			idle := m.client(t, b)
			waiting := m.client(t, b) // its request is never answered
			waiting.Write(wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: 1, Op: wire.OpGet, Key: []byte("k")}))
			if got := readError(t, idle); !strings.Contains(got, "idle for 300ms") {
				t.Fatalf("idle connection closed with %q", got)
			}
			if got := b.t.Stats().IdleTimeouts.Load(); got != 1 {
				t.Fatalf("IdleTimeouts = %d, want 1", got)
			}
			waiting.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := waiting.Read(make([]byte, 1)); err == nil {
				t.Fatal("the connection waiting for a response got data")
			} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("the connection waiting for a response was closed: %v", err)
			}
			if !a.t.Connected(2) {
				t.Fatal("a peer connection was idled")
			}
			if _, clients := b.t.Conns(); clients != 1 {
				t.Fatalf("open client connections: %d, want 1", clients)
			}
		})
	}
}

// Beyond MaxInflightRequestsPerConn unanswered requests, a request is
// answered TooManyRequests by the transport and never reaches the handler.
func TestInflightRequestsPerConnectionAreBounded(t *testing.T) {
	for _, m := range transportModes(t) {
		t.Run(m.name, func(t *testing.T) {
			n := m.start(t, 1, func(c *Config) { c.MaxInflightRequestsPerConn = 3 })
			c := m.client(t, n)
			var batch []byte
			for seq := uint64(1); seq <= 5; seq++ {
				batch = wire.AppendClientRequest(batch, &wire.ClientRequest{ClientID: 1, Seq: seq, Op: wire.OpGet, Key: []byte("k")})
			}
			c.Write(batch)
			for _, seq := range []uint64{4, 5} {
				r := readResponse(t, c)
				if r.Seq != seq || r.Status != wire.StatusTooManyRequests ||
					string(r.Error) != "too many in-flight requests on this connection (limit 3)" {
					t.Fatalf("response %+v (error %q), want TooManyRequests for seq %d", r, r.Error, seq)
				}
			}
			n.rec.wait(t, 3)
			if _, reqs := n.rec.counts(); reqs != 3 {
				t.Fatalf("the handler got %d requests, limit 3", reqs)
			}
			if got := n.t.Stats().InflightRefused.Load(); got != 2 {
				t.Fatalf("InflightRefused = %d, want 2", got)
			}
			// An answer frees a slot.
			cc := n.rec.lastConn.Load()
			if err := cc.Respond(&wire.ClientResponse{Seq: 1, Status: wire.StatusOK}); err != nil {
				t.Fatal(err)
			}
			if r := readResponse(t, c); r.Seq != 1 || r.Status != wire.StatusOK {
				t.Fatalf("%+v", r)
			}
			c.Write(wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: 6, Op: wire.OpGet, Key: []byte("k")}))
			n.rec.wait(t, 1)
			if _, reqs := n.rec.counts(); reqs != 4 {
				t.Fatalf("after an answer the handler got %d requests, want 4", reqs)
			}
		})
	}
}

// MaxConnsPerPort holds on the TLS path too.
func TestMaxConnsPerPortOverTLS(t *testing.T) {
	m := transportModes(t)[1]
	n := m.start(t, 1, func(c *Config) { c.MaxConnsPerPort = 2 })
	first := m.client(t, n)
	m.client(t, n)
	over := m.dial(t, n.client)
	over.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := handshakeDialer(over, wire.Hello{Role: wire.RoleClient, ClusterID: 7}, 0)
	if err == nil || !strings.Contains(err.Error(), "maximum of 2 connections") {
		t.Fatalf("third connection: %v", err)
	}
	if got := n.t.Stats().ConnsRefused.Load(); got != 1 {
		t.Fatalf("ConnsRefused = %d", got)
	}
	first.Close()
	waitFor(t, "the slot to free", func() bool { _, c := n.t.Conns(); return c == 1 })
	m.client(t, n)
}

// The handshake timeout holds on the TLS path: after the TLS handshake (a
// slowloris Hello) and before it (a TCP connection that says nothing).
func TestSlowHandshakeIsClosedOverTLS(t *testing.T) {
	m := transportModes(t)[1]
	n := m.start(t, 1, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	c := m.dial(t, n.client)
	c.Write([]byte("KRF"))
	if got := readError(t, c); !strings.Contains(got, "handshake not completed within 300ms") {
		t.Fatalf("slow Hello over TLS closed with %q", got)
	}
	if got := n.t.Stats().HandshakeTimeouts.Load(); got != 1 {
		t.Fatalf("HandshakeTimeouts = %d", got)
	}
	silent, err := net.Dial("tcp", n.peer)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent connection got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a silent connection on the TLS port was kept past the handshake timeout")
	}
	waitFor(t, "the slots to free", func() bool { p, c := n.t.Conns(); return p == 0 && c == 0 })
}

// rssBytes is this process's resident set (VmRSS), or 0 if unknown.
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// 5,000 idle client connections (a connection flood that completes its
// handshakes) cost bounded memory, and the node still answers. The TLS
// path (two goroutines and TLS buffers per connection) is shown with
// 1,000, since each costs an ECDSA handshake in this process (100 under
// the race detector, which multiplies per-goroutine memory ~10x).
func TestManyIdleClientConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 6,000 connections")
	}
	modes := transportModes(t)
	tlsConns := 1000
	if raceEnabled {
		tlsConns = 100
	}
	for _, tc := range []struct {
		m     transportMode
		conns int
	}{{modes[0], 5000}, {modes[1], tlsConns}} {
		t.Run(tc.m.name, func(t *testing.T) { manyIdleClients(t, tc.m, tc.conns) })
	}
}

func manyIdleClients(t *testing.T, m transportMode, conns int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	need := uint64(2*conns + 200) // both ends live in this process
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
			t.Skipf("RLIMIT_NOFILE is %d (hard %d), need %d for %d connections: raise it (ulimit -n) to run this test", lim.Cur, lim.Max, need, conns)
		}
	}
	n := m.start(t, 1, nil)
	n.rec.respond.Store(true)
	before := rssBytes()
	hello := wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7})
	open := make([]net.Conn, 0, conns)
	start := time.Now()
	for i := 0; i < conns; i++ {
		c := m.dial(t, n.client)
		open = append(open, c)
		c.Write(hello) // pipelined: the replies are read below
	}
	reply := make([]byte, wire.HelloSize)
	for i, c := range open {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, reply); err != nil || binary.LittleEndian.Uint32(reply) != wire.Magic {
			t.Fatalf("connection %d: handshake: %v %q", i, err, reply)
		}
	}
	waitFor(t, "all connections counted", func() bool { _, c := n.t.Conns(); return c == int64(conns) })
	after := rssBytes()
	growth := after - before
	t.Logf("%s: %d idle client connections opened in %v: VmRSS %d MiB before, %d MiB after, growth %d MiB (%d KiB per connection, both ends in this process)",
		m.name, conns, time.Since(start).Round(time.Millisecond), before>>20, after>>20, growth>>20, growth/int64(conns)>>10)
	if growth > 200<<20 {
		t.Fatalf("RSS grew %d MiB for %d idle connections", growth>>20, conns)
	}
	if r := roundTrip(t, open[conns/2], 1, "from the middle"); string(r.Value) != "from the middle" {
		t.Fatalf("%+v", r)
	}
	if r := roundTrip(t, m.client(t, n), 1, "new"); string(r.Value) != "new" {
		t.Fatalf("%+v", r)
	}
}
