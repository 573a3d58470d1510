package client

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// fakeServer speaks the client protocol on 127.0.0.1 in front of a real
// sm.KV (so session rules are the real ones). Its policy decides, request
// by request, how to misbehave.
type fakeServer struct {
	t         *testing.T
	ln        net.Listener
	addr      string
	clusterID uint64
	nodeID    uint64

	// Set before the first connection.
	policy func(n int, req *wire.ClientRequest) action // nil: apply everything
	// handshakeReply replaces the server's Hello when set.
	handshakeReply []byte
	// tlsConfig makes the port TLS-only, as netio's client port with
	// --client-cert: a connection whose first byte does not start a TLS
	// handshake gets an Error frame saying the port requires TLS.
	tlsConfig *tls.Config
	// reverse > 1 answers requests in groups of that many, last first.
	reverse int

	clockOffsetNano atomic.Int64 // added to the KV's leader stamps

	log *fakeLog // shared by the fake nodes of one cluster

	mu       sync.Mutex
	received []wire.ClientRequest // headers only (no key/value)
	accepted int
	tlsConns int      // connections that completed a TLS handshake
	peerCNs  []string // client certificates' CommonNames, per TLS connection
	conns    map[net.Conn]struct{}
	closed   bool

	wg sync.WaitGroup
}

type actionKind int

const (
	actApply            actionKind = iota
	actNotLeader                   // StatusNotLeader with leaderAddr and text
	actDrop                        // close the connection without applying
	actApplyThenDrop               // apply, then close without answering
	actTimeout                     // StatusTimeout without applying
	actApplyThenTimeout            // apply, answer StatusTimeout
	actTooMany                     // StatusTooManyRequests
	actNoQuorum                    // StatusNoQuorum with text
	actSilence                     // never answer
	actRaw                         // write raw bytes instead of a response
)

type action struct {
	kind       actionKind
	leaderAddr string
	text       string
	delay      time.Duration // before the answer is written
	raw        []byte
}

func newFakeServer(t *testing.T, kvCfg sm.KVConfig) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := sm.NewKV(kvCfg)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{t: t, ln: ln, addr: ln.Addr().String(), clusterID: 7, nodeID: 1, log: &fakeLog{kv: kv}, conns: make(map[net.Conn]struct{})}
	fs.wg.Add(1)
	go fs.acceptLoop()
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) Close() {
	fs.mu.Lock()
	if fs.closed {
		fs.mu.Unlock()
		return
	}
	fs.closed = true
	_ = fs.ln.Close()
	for nc := range fs.conns {
		_ = nc.Close()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

func (fs *fakeServer) acceptLoop() {
	defer fs.wg.Done()
	for {
		nc, err := fs.ln.Accept()
		if err != nil {
			return
		}
		fs.mu.Lock()
		if fs.closed {
			fs.mu.Unlock()
			_ = nc.Close()
			return
		}
		fs.accepted++
		fs.conns[nc] = struct{}{}
		fs.wg.Add(1)
		fs.mu.Unlock()
		go fs.serve(nc)
	}
}

// requests returns a copy of the request headers received so far.
func (fs *fakeServer) requests() []wire.ClientRequest {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]wire.ClientRequest(nil), fs.received...)
}

func (fs *fakeServer) connections() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.accepted
}

// fakeLog stands for the replicated log and state machine: fake nodes
// that share one are one cluster (a session opened on one is known to all).
type fakeLog struct {
	mu    sync.Mutex
	kv    *sm.KV
	index uint64
}

// value reads the KV directly.
func (fs *fakeServer) value(key string) (string, bool) {
	v, ok := fs.log.kv.Get([]byte(key))
	return string(v), ok
}

// serveConn state: one writer mutex, since delayed answers come from timers.
type serverConn struct {
	nc   net.Conn
	wmu  sync.Mutex
	held [][]byte
}

func (sc *serverConn) write(b []byte) {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_, _ = sc.nc.Write(b)
}

func (fs *fakeServer) serve(raw net.Conn) {
	defer fs.wg.Done()
	defer func() {
		fs.mu.Lock()
		delete(fs.conns, raw)
		fs.mu.Unlock()
		_ = raw.Close()
	}()
	// Test fields are read only after the first read, which orders them
	// after the client's first write (for the race detector too).
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil {
		return
	}
	var nc net.Conn = &prefixedConn{Conn: raw, prefix: bytes.NewReader(first[:])}
	if fs.tlsConfig != nil {
		if nc = fs.serveTLS(nc, first[0]); nc == nil {
			return
		}
	}
	var hb [wire.HelloSize]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		return
	}
	h, err := wire.DecodeHello(hb[:])
	if err != nil {
		_, _ = nc.Write(wire.AppendErrorFrame(nil, wire.ErrCodeBadHandshake, err.Error()))
		return
	}
	if fs.handshakeReply != nil {
		_, _ = nc.Write(fs.handshakeReply)
		// Keep reading until the client gives up, so it sees our bytes.
		_, _ = io.Copy(io.Discard, nc)
		return
	}
	if err := h.Check(fs.clusterID, wire.RoleClient); err != nil {
		_, _ = nc.Write(wire.AppendErrorFrame(nil, wire.ErrCodeClusterMismatch, err.Error()))
		return
	}
	// As netio does: the answer's role echoes the dialer's.
	_, _ = nc.Write(wire.AppendHello(nil, wire.Hello{Role: h.Role, ClusterID: fs.clusterID, NodeID: fs.nodeID}))

	sc := &serverConn{nc: nc}
	br := bufio.NewReader(nc)
	var timers sync.WaitGroup
	defer timers.Wait()
	var buf []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		size, err := wire.FrameSize(hdr[:], 0)
		if err != nil {
			fs.t.Errorf("fake server: client sent a bad frame: %v", err)
			return
		}
		buf = append(buf[:0], hdr[:]...)
		buf = append(buf, make([]byte, size-4)...)
		if _, err := io.ReadFull(br, buf[4:]); err != nil {
			return
		}
		f, _, err := wire.ParseFrame(buf, 0)
		if err != nil || f.Type != wire.MsgClientRequest {
			fs.t.Errorf("fake server: client sent %v frame, err %v", f.Type, err)
			return
		}
		var req wire.ClientRequest
		if err := wire.DecodeClientRequest(f.Body, &req); err != nil {
			fs.t.Errorf("fake server: client sent an undecodable request: %v", err)
			return
		}
		if !fs.handle(sc, &req, f.Body, &timers) {
			return
		}
	}
}

// handle answers one request; false closes the connection.
func (fs *fakeServer) handle(sc *serverConn, req *wire.ClientRequest, body []byte, timers *sync.WaitGroup) bool {
	fs.mu.Lock()
	n := len(fs.received)
	hdr := *req
	hdr.Key, hdr.Value, hdr.Expect = nil, nil, nil
	fs.received = append(fs.received, hdr)
	fs.mu.Unlock()
	act := action{kind: actApply}
	if fs.policy != nil {
		act = fs.policy(n, req)
	}
	resp := wire.ClientResponse{Seq: req.Seq}
	switch act.kind {
	case actApply, actApplyThenDrop, actApplyThenTimeout:
		resp.Status, resp.Value, resp.Index = fs.apply(body)
		if resp.Status != wire.StatusOK && resp.Status != wire.StatusCompareFailed {
			// sm returns its error text as the result's data; a node
			// carries it in the response's Error.
			resp.Value, resp.Error = nil, resp.Value
		}
		if act.kind == actApplyThenDrop {
			return false
		}
		if act.kind == actApplyThenTimeout {
			resp.Status, resp.Value, resp.Error = wire.StatusTimeout, nil, []byte("request timed out")
		}
	case actNotLeader:
		resp.Status, resp.LeaderAddr, resp.Error = wire.StatusNotLeader, []byte(act.leaderAddr), []byte(act.text)
	case actDrop:
		return false
	case actTimeout:
		resp.Status, resp.Error = wire.StatusTimeout, []byte("request timed out")
	case actTooMany:
		resp.Status, resp.Error = wire.StatusTooManyRequests, []byte("too many pending entries")
	case actNoQuorum:
		resp.Status, resp.Error = wire.StatusNoQuorum, []byte(act.text)
	case actSilence:
		return true
	case actRaw:
		sc.write(act.raw)
		return true
	}
	resp.Term = 1
	out := wire.AppendClientResponse(nil, &resp)
	switch {
	case act.delay > 0:
		timers.Add(1)
		time.AfterFunc(act.delay, func() { defer timers.Done(); sc.write(out) })
	case fs.reverse > 1:
		sc.held = append(sc.held, out)
		if len(sc.held) == fs.reverse {
			for i := len(sc.held) - 1; i >= 0; i-- {
				sc.write(sc.held[i])
			}
			sc.held = sc.held[:0]
		}
	default:
		sc.write(out)
	}
	return true
}

// apply runs one request through the KV, as a leader would after commit.
func (fs *fakeServer) apply(body []byte) (wire.Status, []byte, uint64) {
	l := fs.log
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	now := time.Now().UnixNano() + fs.clockOffsetNano.Load()
	cmds := []sm.Command{{Index: l.index, Term: 1, Data: sm.AppendCommand(nil, now, body)}}
	res := make([]sm.Result, 1)
	l.kv.Apply(cmds, res)
	return wire.Status(res[0].Value), res[0].Data, l.index
}

// rawResponse builds a frame of type t with body b, or any bytes.
func rawFrame(t wire.MsgType, body []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(body)+1))
	out = append(out, byte(t))
	return append(out, body...)
}

// serveTLS answers a plaintext Hello (first is its first byte, still to
// be read from nc) with an Error frame, as a TLS-only port does, or
// completes a TLS handshake and returns the TLS connection. nil: the
// connection is done.
func (fs *fakeServer) serveTLS(nc net.Conn, first byte) net.Conn {
	if first != 0x16 { // TLS handshake record
		// Read the rest of the Hello first: closing with unread bytes
		// would reset the connection before the client reads our answer.
		var hello [wire.HelloSize]byte
		_, _ = io.ReadFull(nc, hello[:])
		_, _ = nc.Write(wire.AppendErrorFrame(nil, wire.ErrCodeTLSRequired, "this port requires TLS"))
		return nil
	}
	tc := tls.Server(nc, fs.tlsConfig)
	if err := tc.Handshake(); err != nil {
		return nil
	}
	fs.mu.Lock()
	fs.tlsConns++
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		fs.peerCNs = append(fs.peerCNs, pc[0].Subject.CommonName)
	}
	fs.mu.Unlock()
	return tc
}

// prefixedConn gives back bytes already read from Conn before reading on.
type prefixedConn struct {
	net.Conn
	prefix *bytes.Reader
}

func (c *prefixedConn) Read(b []byte) (int, error) {
	if c.prefix.Len() > 0 {
		return c.prefix.Read(b)
	}
	return c.Conn.Read(b)
}
