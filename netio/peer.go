package netio

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/wire"
	"github.com/panjf2000/gnet/v2"
)

// peer is the outbound side of one peer: a goroutine that dials with a
// timeout and backoff, performs the handshake on the plain socket, and then
// hands the socket to a gnet event loop for writing. Dialling never happens
// inside a gnet callback.
type peer struct {
	t    *Transport
	id   uint64
	addr string

	out      atomic.Pointer[outbox] // nil while disconnected
	lost     chan struct{}          // the event loop saw the connection close
	done     chan struct{}
	ctx      context.Context // cancelled by stop: interrupts a dial or handshake in progress
	cancel   context.CancelFunc
	stopOnce sync.Once

	// remoteCaps: the Capabilities of the last Hello the peer answered
	// (dial goroutine only), for compression negotiation (compress.go).
	remoteCaps uint64
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{t: t, id: id, addr: addr, lost: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, cancel: cancel}
}

func (p *peer) stop() { p.stopOnce.Do(func() { p.cancel(); close(p.done) }) }

// outConn is the gnet context of a dialled connection. Its outbox writes
// the socket directly (outbox.writeDirectLocked), so OnClose closes the
// outbox before gnet closes the fd: a write can then never reach a closed
// or reused descriptor.
type outConn struct {
	p      *peer
	mu     sync.Mutex
	ob     *outbox
	closed bool
}

// closeOutbox runs in OnClose, on the event loop, before gnet closes the fd.
func (oc *outConn) closeOutbox() {
	oc.mu.Lock()
	oc.closed = true
	ob := oc.ob
	oc.mu.Unlock()
	if ob != nil {
		ob.close()
	}
}

func (p *peer) run() {
	defer p.t.wg.Done()
	log := p.t.log.With("peer", p.id, "addr", p.addr)
	backoff := p.t.cfg.ReconnectMin
	failing := false
	for {
		select {
		case <-p.done:
			return
		default:
		}
		p.t.stats.Dials.Add(1)
		conn, err := p.dial()
		if err == nil {
			var ob *outbox
			var hangup func()
			ob, hangup, err = p.attach(conn)
			if err == nil {
				if failing {
					log.Info("peer reachable again")
				}
				failing, backoff = false, p.t.cfg.ReconnectMin
				ob.compress = p.t.compressTo(p.remoteCaps)
				p.out.Store(ob)
				select {
				case <-p.lost:
				case <-p.done:
				}
				hangup()
				p.out.Store(nil)
				ob.close()
				continue
			}
		}
		p.t.stats.DialFailures.Add(1)
		if !failing || errors.Is(err, wire.ErrClusterMismatch) || errors.Is(err, wire.ErrNodeMismatch) {
			log.Warn("cannot connect to peer", "error", err.Error(), "retry_in", backoff)
		}
		failing = true
		select {
		case <-p.done:
			return
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)/4+1))):
		}
		backoff = min(2*backoff, p.t.cfg.ReconnectMax)
	}
}

// attach hands a handshaken connection to what writes it: a gnet event
// loop (plaintext) or a writer goroutine (TLS, which gnet cannot carry).
// Either way the connection's end is reported on p.lost. hangup closes it.
func (p *peer) attach(conn net.Conn) (*outbox, func(), error) {
	if tc, ok := conn.(*tls.Conn); ok {
		ob, w := newStreamOutbox(tc, p.t.cfg.MaxInflightBytesPerConn, &p.t.stats)
		go p.watchTLS(tc)
		return ob, func() { tc.Close(); w.stop() }, nil
	}
	oc := &outConn{p: p}
	gc, err := p.t.dialer.EnrollContext(conn, oc)
	if err != nil {
		return nil, nil, fmt.Errorf("registering with the event loop: %w", err)
	}
	ob := newOutbox(gc, p.t.cfg.MaxInflightBytesPerConn, &p.t.stats)
	ob.direct, ob.fd, ob.cork = true, gc.Fd(), &p.t.cork
	oc.mu.Lock()
	if oc.closed {
		ob.close() // gone already: the fd may be closed
	} else {
		oc.ob = ob
	}
	oc.mu.Unlock()
	return ob, func() { gc.Close() }, nil
}

// watchTLS reads a dialled TLS connection, on which nothing but the Error
// frame of a refusing peer is expected, and reports its end on p.lost.
func (p *peer) watchTLS(tc *tls.Conn) {
	b := make([]byte, 4096)
	n, _ := io.ReadAtLeast(tc, b, wire.FrameHeaderSize)
	if f, k, err := wire.ParseFrame(b[:n], len(b)); err == nil && k > 0 && f.Type == wire.MsgError {
		_, text, _ := wire.DecodeErrorFrame(f.Body)
		p.t.log.Warn("peer reported an error on our connection", "peer", p.id, "error", string(text))
	}
	tc.Close()
	select {
	case p.lost <- struct{}{}:
	default:
	}
}

// dial connects (over TLS when PeerTLS is set, checking that the server's
// certificate names p.id) and runs the handshake synchronously: send our
// Hello, read the peer's Hello (or the Error frame it refuses us with) and
// check that it is the node we meant to reach.
func (p *peer) dial() (net.Conn, error) {
	cfg := &p.t.cfg
	conn, err := p.t.dialPeer(p.ctx, p.addr, p.id)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	// Stopping the peer (Close, RemovePeer) must not wait for a remote that
	// accepted and says nothing: closing the socket ends the handshake.
	interrupt := context.AfterFunc(p.ctx, func() { conn.Close() })
	h, err := handshakeDialer(conn, p.t.hello(wire.RolePeer), p.id)
	if !interrupt() && err == nil {
		err = ErrClosed
	}
	if err != nil {
		conn.Close()
		p.t.stats.HandshakesFailed.Add(1)
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	p.remoteCaps = h.Capabilities
	if cfg.OnPeerHello != nil {
		cfg.OnPeerHello(h)
	}
	return conn, nil
}

// dialPeer connects to a peer port, with mutual TLS when PeerTLS is set:
// the server's certificate must verify against the CA and name want (any
// node if want is 0); both the handshake and the dial are bounded.
func (t *Transport) dialPeer(ctx context.Context, addr string, want uint64) (net.Conn, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || t.cfg.PeerTLS == nil {
		return conn, err
	}
	conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	tc := tls.Client(conn, t.cfg.PeerTLS.PeerConfig(want))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		t.stats.TLSHandshakeFailures.Add(1)
		if errors.As(err, new(*identityError)) {
			t.stats.TLSIdentityRefused.Add(1)
		}
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// handshakeDialer is the dialling side of the handshake: send ours, read
// the acceptor's (or the Error frame it refuses us with) and check it.
// want, if non-zero, is the node ID we meant to reach.
func handshakeDialer(conn net.Conn, ours wire.Hello, want uint64) (wire.Hello, error) {
	if _, err := conn.Write(wire.AppendHello(nil, ours)); err != nil {
		return wire.Hello{}, err
	}
	b := make([]byte, wire.MaxHelloSize)
	read := func(from, to int) error {
		if _, err := io.ReadFull(conn, b[from:to]); err != nil {
			return fmt.Errorf("reading the handshake: %w", err)
		}
		return nil
	}
	if err := read(0, 4); err != nil {
		return wire.Hello{}, err
	}
	if binary.LittleEndian.Uint32(b) != wire.Magic {
		return wire.Hello{}, readRefusal(conn, b[:4])
	}
	if err := read(4, wire.HelloSize); err != nil {
		return wire.Hello{}, err
	}
	have := wire.HelloSize
	n, err := wire.HelloLen(b[:have])
	if err == nil && n == 0 { // a peer hello: its address section's length follows
		if err = read(have, have+2); err == nil {
			have += 2
			n, err = wire.HelloLen(b[:have])
		}
	}
	if err != nil {
		return wire.Hello{}, err
	}
	if err := read(have, n); err != nil {
		return wire.Hello{}, err
	}
	b = b[:n]
	h, err := wire.DecodeHello(b)
	if err != nil {
		return wire.Hello{}, err
	}
	if err := h.Check(ours.ClusterID, ours.Role); err != nil {
		return wire.Hello{}, err
	}
	if want != 0 && h.NodeID != want {
		return wire.Hello{}, fmt.Errorf("%w: dialled node %d at %s, reached node %d", wire.ErrNodeMismatch, want, conn.RemoteAddr(), h.NodeID)
	}
	return h, nil
}

// readRefusal reads the Error frame a node sends instead of its Hello.
func readRefusal(conn net.Conn, head []byte) error {
	size, err := wire.FrameSize(head, 64<<10)
	if err != nil {
		return fmt.Errorf("%w: the remote answered neither a handshake nor an error frame", wire.ErrBadMagic)
	}
	frame := make([]byte, size)
	copy(frame, head)
	if _, err := io.ReadFull(conn, frame[4:]); err != nil {
		return fmt.Errorf("reading the remote's refusal: %w", err)
	}
	f, _, _ := wire.ParseFrame(frame, 64<<10)
	if f.Type != wire.MsgError {
		return fmt.Errorf("%w: the remote answered a %v frame to the handshake", wire.ErrBadMagic, f.Type)
	}
	code, text, err := wire.DecodeErrorFrame(f.Body)
	if err != nil {
		return err
	}
	kind := wire.ErrBadMagic
	switch code {
	case wire.ErrCodeClusterMismatch:
		kind = wire.ErrClusterMismatch
	case wire.ErrCodeNodeMismatch, wire.ErrCodeIdentity:
		kind = wire.ErrNodeMismatch
	case wire.ErrCodeBadHandshake:
		kind = wire.ErrVersion
	}
	return fmt.Errorf("%w: refused by the remote: %s", kind, text)
}

// dialerHandler handles events of dialled connections. Peers never send
// Raft traffic on them (each node dials its own), only an Error frame
// before they drop us.
type dialerHandler struct {
	gnet.BuiltinEventEngine
	t *Transport
}

func (d *dialerHandler) OnTraffic(c gnet.Conn) gnet.Action {
	oc, _ := c.Context().(*outConn)
	b, _ := c.Next(-1)
	if f, n, err := wire.ParseFrame(b, 64<<10); err == nil && n > 0 && f.Type == wire.MsgError {
		_, text, _ := wire.DecodeErrorFrame(f.Body)
		if oc != nil {
			d.t.log.Warn("peer reported an error on our connection", "peer", oc.p.id, "error", string(text))
		}
		return gnet.Close
	}
	return gnet.Close // nothing else is expected on an outbound connection
}

func (d *dialerHandler) OnClose(c gnet.Conn, err error) gnet.Action {
	if oc, ok := c.Context().(*outConn); ok {
		oc.closeOutbox()
		select {
		case oc.p.lost <- struct{}{}:
		default:
		}
	}
	return gnet.None
}
