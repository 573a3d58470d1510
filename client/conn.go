package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// readBufferBytes sizes the reader's bufio buffer; responses smaller than it
// are read without a syscall each.
const readBufferBytes = 64 << 10

// conn is one connection to one node. Calls register in pending under their
// Seq and append their frame to wbuf; the writer goroutine flushes wbuf,
// so requests that arrive while a write is in progress leave together in
// the next one. The reader goroutine pairs responses with calls by Seq.
//
// Whoever removes a call from pending (reader on a response, fail on
// connection loss, the sweeper on a timeout, the call itself on
// cancellation) is the only one that completes it.
//
// The sweeper enforces every pending call's AttemptTimeout and deadline,
// so that a caller waits with a plain channel receive instead of arming a
// timer per attempt: one timer per connection, armed for the earliest
// moment a pending call may expire (sweepAt). Calls are answered in
// microseconds to milliseconds and expire after seconds, so under load it
// fires about once per AttemptTimeout, and not at all when nothing is
// pending.
type conn struct {
	addr  string
	nc    net.Conn
	cfg   *Config
	stats *stats // the Client's; nil in a conn that never carried a request

	mu      sync.Mutex
	pending seqTable[*call] // emptied by fail
	wbuf    []byte          // frames the writer has not taken yet
	err     error           // why the connection died; nil while alive
	sweeper *time.Timer     // runs sweep; armed for sweepAt
	sweepAt time.Time       // zero: sweeper not armed

	wake chan struct{} // cap 1: wbuf has data
	dead chan struct{} // closed by fail
}

// dialConn dials addr and performs the handshake. It starts no goroutine:
// connFor starts the reader and writer once the connection is current.
func dialConn(ctx context.Context, cfg *Config, addr string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Kind: ErrUnavailable, Err: err}
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // the writer coalesces itself
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// A context cancelled mid-handshake must not leave us blocked in Read.
	// The deadline and the cancellation cover the TLS handshake too: the
	// tls.Conn reads and writes through nc.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	sc := nc // what the session speaks over: nc, or TLS over nc
	if cfg.TLS != nil {
		tc := tls.Client(nc, tlsFor(cfg.TLS, addr))
		if err = tc.Handshake(); err != nil {
			err = tlsHandshakeError(addr, err)
		}
		sc = tc
	}
	if err == nil {
		err = handshake(sc, cfg)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	cn := &conn{
		addr: addr,
		nc:   sc,
		cfg:  cfg,
		wake: make(chan struct{}, 1),
		dead: make(chan struct{}),
	}
	cn.sweeper = time.AfterFunc(time.Hour, cn.sweep)
	cn.sweeper.Stop()
	return cn, nil
}

// handshake sends the client's Hello and reads the node's answer: its Hello,
// or an Error frame saying why it refuses us.
func handshake(nc net.Conn, cfg *Config) error {
	hello := wire.AppendHello(make([]byte, 0, wire.HelloSize), wire.Hello{Role: wire.RoleClient, ClusterID: cfg.ClusterID})
	if _, err := nc.Write(hello); err != nil {
		return &Error{Kind: ErrUnavailable, Err: fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)}
	}
	var b [wire.MaxHelloSize]byte
	if _, err := io.ReadFull(nc, b[:4]); err != nil {
		if isRemoteAlert(err) { // TLS 1.3: the node refused our certificate
			return tlsRefusedError(nc.RemoteAddr().String(), err)
		}
		return &Error{Kind: ErrUnavailable, Err: fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)}
	}
	if binary.LittleEndian.Uint32(b[:]) != wire.Magic {
		if cfg.TLS == nil && looksLikeTLSRecord(b[:4]) {
			return errRequiresTLS(nc.RemoteAddr().String(), nil)
		}
		return readRefusal(nc, b[:4], cfg)
	}
	// A node answers a client with a client-role Hello (HelloSize bytes);
	// a peer-role one is longer, and HelloLen says by how much once enough
	// of it is in. Either is accepted.
	have, size := 4, wire.HelloSize
	for have < size {
		if _, err := io.ReadFull(nc, b[have:size]); err != nil {
			return &Error{Kind: ErrProtocol, Err: fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)}
		}
		have = size
		n, err := wire.HelloLen(b[:have])
		if err != nil {
			return &Error{Kind: ErrProtocol, Err: fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)}
		}
		if n == 0 {
			n = have + 2 // a peer Hello's extension length
		}
		size = n
	}
	h, err := wire.DecodeHello(b[:have])
	if err != nil {
		return &Error{Kind: ErrProtocol, Err: fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)}
	}
	// The node's role in its Hello is its own business; only the cluster
	// must match.
	if h.ClusterID != cfg.ClusterID {
		return &Error{Kind: ErrRefused, Err: fmt.Errorf("%w: node %s is in cluster %d, this client is configured for %d",
			wire.ErrClusterMismatch, nc.RemoteAddr(), h.ClusterID, cfg.ClusterID)}
	}
	return nil
}

// readRefusal reads the Error frame whose length prefix is in prefix. Any
// other frame in place of a Hello is a protocol error.
func readRefusal(nc net.Conn, prefix []byte, cfg *Config) error {
	size, err := wire.FrameSize(prefix, cfg.MaxFrameBytes)
	if err != nil {
		return &Error{Kind: ErrProtocol, Err: fmt.Errorf("handshake with %s: not a Kraft node (wrong port?): %w", nc.RemoteAddr(), err)}
	}
	frame := make([]byte, size)
	copy(frame, prefix)
	if _, err := io.ReadFull(nc, frame[4:]); err != nil {
		return &Error{Kind: ErrProtocol, Err: fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)}
	}
	if t := wire.MsgType(frame[4]); t != wire.MsgError {
		return &Error{Kind: ErrProtocol, Err: fmt.Errorf("handshake with %s: got a %v frame instead of a Hello", nc.RemoteAddr(), t)}
	}
	return refusalError(nc.RemoteAddr().String(), frame[wire.FrameHeaderSize:])
}

// refusalError turns an Error frame body into an *Error carrying its text.
func refusalError(addr string, body []byte) error {
	code, text, err := wire.DecodeErrorFrame(body)
	if err != nil {
		return &Error{Kind: ErrProtocol, Err: fmt.Errorf("node %s: %w", addr, err)}
	}
	e := &Error{Kind: ErrRefused, Text: fmt.Sprintf("node %s: %s", addr, text)}
	switch code {
	case wire.ErrCodeOverloaded:
		e.Kind = ErrUnavailable // connection limit: another try may get in
	case wire.ErrCodeIdleTimeout:
		e.Kind = ErrUnavailable // a new connection is welcome
	case wire.ErrCodeTLSRequired:
		// The one plaintext frame a TLS-only port sends (to a plaintext
		// Hello); the client names the fix.
		return errRequiresTLS(addr, errors.New(e.Text))
	case wire.ErrCodeClusterMismatch:
		e.Err = wire.ErrClusterMismatch
	case wire.ErrCodeNodeMismatch:
		e.Err = wire.ErrNodeMismatch
	}
	return e
}

// send registers c under seq and queues its frame. It fails when the
// connection is dead or the frame does not fit.
func (cn *conn) send(c *call, req *wire.ClientRequest) error {
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return err
	}
	cn.pending.put(req.Seq, c)
	if at := earlier(c.attemptEnd, c.deadline); cn.sweepAt.IsZero() || at.Before(cn.sweepAt) {
		cn.sweepAt = at
		cn.sweeper.Reset(time.Until(at))
	}
	cn.stats.framesQueued.Add(1)
	wasEmpty := len(cn.wbuf) == 0
	cn.wbuf = wire.AppendClientRequest(cn.wbuf, req)
	cn.mu.Unlock()
	if wasEmpty {
		select {
		case cn.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// forget removes c from pending; it reports false when someone else already
// took it (and so will complete it).
func (cn *conn) forget(seq uint64, c *call) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if p, ok := cn.pending.get(seq); !ok || p != c {
		return false
	}
	cn.pending.remove(seq)
	return true
}

// sweep completes the pending calls past their deadline with
// errCallExpired, and drops the connection when a call has waited
// AttemptTimeout for its answer: the node is stopped or cut off (a paused
// leader keeps its TCP connections open), so every call on it goes
// elsewhere. The calls that timed out are marked timedOut (they retry at
// once); the others get the same error from fail.
func (cn *conn) sweep() {
	now := time.Now()
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	var expired, timedOut []*call
	var next time.Time
	cn.pending.each(func(seq uint64, c *call) bool {
		switch {
		case !now.Before(c.deadline):
			expired = append(expired, c)
			cn.pending.remove(seq)
		case !now.Before(c.attemptEnd):
			timedOut = append(timedOut, c)
			cn.pending.remove(seq)
		default:
			if at := earlier(c.attemptEnd, c.deadline); next.IsZero() || at.Before(next) {
				next = at
			}
		}
		return true
	})
	cn.sweepAt = next
	if !next.IsZero() && len(timedOut) == 0 {
		cn.sweeper.Reset(next.Sub(now))
	}
	cn.mu.Unlock()
	for _, c := range expired {
		c.complete(nil, errCallExpired)
	}
	if len(timedOut) == 0 {
		return
	}
	// Dead before the timed-out calls learn it, so that their retries do
	// not pick this connection again.
	err := &Error{Kind: ErrUnavailable, Err: fmt.Errorf("no answer from %s within %v", cn.addr, cn.cfg.AttemptTimeout)}
	cn.fail(err)
	for _, c := range timedOut {
		c.timedOut = true
		c.complete(nil, err)
	}
}

// earlier returns the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// alive reports whether the connection may take new requests.
func (cn *conn) alive() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err == nil
}

// fail kills the connection once and completes every pending call with err.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	pending := cn.pending
	cn.pending = seqTable[*call]{}
	cn.wbuf = nil
	cn.sweeper.Stop()
	close(cn.dead)
	cn.mu.Unlock()
	_ = cn.nc.Close()
	pending.each(func(_ uint64, c *call) bool {
		c.complete(nil, err)
		return true
	})
}

// writeLoop flushes wbuf until the connection dies. Swapping wbuf with a
// spare buffer keeps the lock out of the syscall and reuses both buffers.
func (cn *conn) writeLoop() {
	var spare []byte
	for {
		select {
		case <-cn.wake:
		case <-cn.dead:
			return
		}
		// Let callers that are runnable now append their frames first, so
		// that one write carries them all.
		runtime.Gosched()
		cn.mu.Lock()
		if cn.err != nil {
			cn.mu.Unlock()
			return
		}
		out := cn.wbuf
		cn.wbuf = spare[:0]
		cn.mu.Unlock()
		if len(out) == 0 {
			spare = out
			continue
		}
		// A node that stops reading must not hold callers past their
		// timeouts forever: a stalled write kills the connection.
		_ = cn.nc.SetWriteDeadline(time.Now().Add(cn.cfg.RequestTimeout))
		cn.stats.writeCalls.Add(1)
		cn.stats.bytesWritten.Add(uint64(len(out)))
		if _, err := cn.nc.Write(out); err != nil {
			cn.fail(&Error{Kind: ErrUnavailable, Err: fmt.Errorf("write to %s: %w", cn.addr, err)})
			return
		}
		spare = out[:0]
	}
}

// readLoop reads responses until the connection dies. Every length prefix
// is checked against MaxFrameBytes before the body is buffered.
func (cn *conn) readLoop() {
	br := bufio.NewReaderSize(cn.nc, readBufferBytes)
	var body []byte
	var resp wire.ClientResponse
	var hdr [wire.FrameHeaderSize]byte // outside the loop: it escapes once, not per frame
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			cn.fail(readError(cn.addr, err))
			return
		}
		size, err := wire.FrameSize(hdr[:], cn.cfg.MaxFrameBytes)
		if err != nil {
			cn.fail(&Error{Kind: ErrProtocol, Err: fmt.Errorf("from %s: %w", cn.addr, err)})
			return
		}
		n := size - wire.FrameHeaderSize
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			cn.fail(readError(cn.addr, err))
			return
		}
		switch t := wire.MsgType(hdr[4]); t {
		case wire.MsgClientResponse:
			if err := wire.DecodeClientResponse(body, &resp); err != nil {
				cn.fail(&Error{Kind: ErrProtocol, Err: fmt.Errorf("from %s: %w", cn.addr, err)})
				return
			}
			cn.deliver(&resp)
		case wire.MsgError:
			cn.fail(refusalError(cn.addr, body))
			return
		default:
			cn.fail(&Error{Kind: ErrProtocol, Err: fmt.Errorf("from %s: unexpected %v frame on the client port", cn.addr, t)})
			return
		}
	}
}

// deliver completes the call waiting for r.Seq. A response nobody waits for
// belongs to a call that gave up (context ended): dropped.
func (cn *conn) deliver(r *wire.ClientResponse) {
	cn.mu.Lock()
	c, ok := cn.pending.remove(r.Seq)
	cn.mu.Unlock()
	if !ok {
		return
	}
	c.complete(r, nil)
}

func readError(addr string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Kind: ErrUnavailable, Err: fmt.Errorf("node %s closed the connection", addr)}
	}
	return &Error{Kind: ErrUnavailable, Err: fmt.Errorf("read from %s: %w", addr, err)}
}

// stats counts what the writer does, so tests and benchmarks can see
// coalescing (frames per write call).
type stats struct {
	framesQueued atomic.Uint64
	writeCalls   atomic.Uint64
	bytesWritten atomic.Uint64
}
