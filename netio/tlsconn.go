package netio

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// The TLS path. gnet has no TLS, so a port with TLS configured is served
// by crypto/tls over the net package: an accept goroutine per port, and per
// connection a reader goroutine (which drives the same session as gnet's
// OnTraffic) and a writer goroutine (which drains the connection's outbox).
// Dialled peer connections over TLS get the same writer and a reader that
// only watches for the Error frame and EOF.

// tlsRecordHandshake is the first byte of every TLS connection (the record
// type of the ClientHello). A connection starting with anything else (our
// "KRFT" magic, HTTP) is answered with a plaintext Error frame.
const tlsRecordHandshake = 0x16

// tlsReadBufBytes is the initial read buffer of a TLS connection; it grows
// to hold the largest frame in progress (bounded by MaxFrameBytes) and
// shrinks back once that frame is done. Small, because idle client
// connections are the many; crypto/tls buffers a whole record itself.
const tlsReadBufBytes = 4 << 10

// tlsServers holds the TLS listeners of a transport and their connections.
type tlsServers struct {
	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{} // open accepted connections, closed by stop
	closed bool
	wg     sync.WaitGroup // accept loops and connection goroutines
}

// listenTLS binds addr and serves it with TLS for the given role.
func (s *server) listenTLS(addr string, port wire.Role, cfg *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ts := &s.tls
	ts.mu.Lock()
	ts.lns = append(ts.lns, ln)
	if ts.conns == nil {
		ts.conns = make(map[net.Conn]struct{})
	}
	ts.mu.Unlock()
	ts.wg.Add(1)
	go s.acceptTLS(ln, port, cfg)
	return nil
}

func (s *server) acceptTLS(ln net.Listener, port wire.Role, cfg *tls.Config) {
	ts := &s.tls
	defer ts.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.t.log.Warn("accepting a TLS connection", "port", port.String(), "error", err.Error())
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		ts.mu.Lock()
		if ts.closed {
			ts.mu.Unlock()
			c.Close()
			return
		}
		ts.conns[c] = struct{}{}
		ts.wg.Add(1)
		ts.mu.Unlock()
		go func() {
			defer ts.wg.Done()
			s.serveTLS(c, port, cfg)
			ts.mu.Lock()
			delete(ts.conns, c)
			ts.mu.Unlock()
		}()
	}
}

// stop closes the listeners and every connection, and waits for their
// goroutines.
func (ts *tlsServers) stop() {
	ts.mu.Lock()
	ts.closed = true
	for _, ln := range ts.lns {
		ln.Close()
	}
	for c := range ts.conns {
		c.Close()
	}
	ts.mu.Unlock()
	ts.wg.Wait()
}

// serveTLS runs one accepted connection of a TLS port to its end.
func (s *server) serveTLS(raw net.Conn, port wire.Role, cfg *tls.Config) {
	t := s.t
	defer raw.Close()
	remote := raw.RemoteAddr().String()
	// The slot is taken at once, as gnet's OnOpen does, so handshakes in
	// progress count against MaxConnsPerPort. A connection beyond it is
	// still handshaken (bounded by HandshakeTimeout) so that the remote
	// can read why it is refused.
	overloaded := s.takeSlot(port)
	if overloaded == nil {
		defer s.conns[port].Add(-1)
	}
	raw.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil {
		t.stats.HandshakesFailed.Add(1)
		return // closed before saying anything: a port scan or health check
	}
	if first[0] != tlsRecordHandshake {
		t.stats.TLSRequired.Add(1)
		t.stats.HandshakesFailed.Add(1)
		t.log.Warn("refusing plaintext connection on a TLS port", "remote", remote, "port", port.String(), "first_bytes", fmt.Sprintf("%q", first[:]))
		msg := fmt.Sprintf("this port requires TLS: the %s port of node %d serves TLS only (configure the client with TLS)", port, t.cfg.NodeID)
		closeGently(raw, wire.AppendErrorFrame(nil, wire.ErrCodeTLSRequired, msg))
		return
	}
	tc := tls.Server(&replayConn{Conn: raw, head: first[:]}, cfg)
	if err := tc.Handshake(); err != nil {
		t.stats.TLSHandshakeFailures.Add(1)
		t.stats.HandshakesFailed.Add(1)
		t.log.Warn("TLS handshake failed", "remote", remote, "port", port.String(), "error", err.Error())
		return
	}
	conn := &tlsConn{c: tc, remote: remote}
	defer conn.stopWriter()
	if overloaded != nil {
		conn.closeWith(overloaded)
		return
	}
	ss := &session{s: s, conn: conn, port: port}
	if port == wire.RolePeer {
		leaf := tc.ConnectionState().PeerCertificates[0] // present and verified: ServerConfig(true)
		ss.verifyIdentity, ss.certIDs, ss.certSubject = true, NodeIDs(leaf), leaf.Subject.String()
	}
	err := s.readTLS(ss, tc)
	s.forget(ss.client)
	if err == nil {
		return
	}
	var ne net.Error
	switch {
	case !ss.hello && errors.As(err, &ne) && ne.Timeout():
		t.stats.HandshakeTimeouts.Add(1)
		raw.SetDeadline(time.Now().Add(time.Second))
		tc.Write(wire.AppendErrorFrame(nil, wire.ErrCodeBadHandshake, "handshake not completed within "+t.cfg.HandshakeTimeout.String()))
	case errors.As(err, new(*refusal)):
		frame := ss.refusal(err)
		tc.SetWriteDeadline(time.Now().Add(time.Second))
		tc.Write(frame)
		// As closeGently: drain what the remote sent so a reset does not
		// destroy the refusal before it is read.
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(tc, 64<<10))
	}
}

// readTLS feeds what arrives to the session until the connection ends; a
// nil error is a clean close (EOF, or closed by this side).
func (s *server) readTLS(ss *session, tc *tls.Conn) error {
	buf := make([]byte, 0, tlsReadBufBytes)
	deadline := true // HandshakeTimeout, until the Hello is done
	for {
		if deadline && ss.hello {
			tc.SetDeadline(time.Time{}) // client idleness is the sweeper's
			deadline = false
		}
		k, err := tc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if k > 0 {
			ss.client.newRead()
			done, ferr := ss.feed(buf)
			if ferr != nil {
				return ferr
			}
			buf = buf[:copy(buf, buf[done:])]
			// Make room for the unit in progress (its size is checked in
			// next), or give a large buffer back once it is done.
			if need, _ := ss.next(buf[:min(len(buf), ss.headLen())]); need > cap(buf) {
				buf = append(make([]byte, 0, need), buf...)
			} else if cap(buf) > tlsReadBufBytes && len(buf) <= tlsReadBufBytes && need <= tlsReadBufBytes {
				buf = append(make([]byte, 0, tlsReadBufBytes), buf...)
			} else if len(buf) == cap(buf) {
				buf = append(make([]byte, 0, 2*cap(buf)), buf...)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// closeGently writes frame, half-closes, and drains what the remote already
// sent, so the kernel does not answer unread data with a reset that would
// destroy the frame before the remote reads it.
func closeGently(c net.Conn, frame []byte) {
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write(frame)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	c.Close()
}

// replayConn gives back the bytes read to tell TLS from plaintext before
// reading on.
type replayConn struct {
	net.Conn
	head []byte
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(b, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	return r.Conn.Read(b)
}

// tlsConn is the acceptedConn of a TLS connection.
type tlsConn struct {
	c      *tls.Conn
	remote string
	once   sync.Once
	w      *streamSink // the outbox's writer, once there is an outbox
}

func (c *tlsConn) remoteAddr() string { return c.remote }

// writeNow writes on the reader goroutine. tls.Conn serialises writes, so
// a frame is never interleaved with the writer goroutine's.
func (c *tlsConn) writeNow(b []byte) error { _, err := c.c.Write(b); return err }

func (c *tlsConn) newOutbox(maxBytes int, stats *Stats) *outbox {
	o, w := newStreamOutbox(c.c, maxBytes, stats)
	c.w = w
	return o
}

// closeWith bounds its write: a remote that does not read must not hold
// the caller (the sweeper, the reader goroutine).
func (c *tlsConn) closeWith(frame []byte) {
	c.once.Do(func() {
		c.c.SetWriteDeadline(time.Now().Add(time.Second))
		c.c.Write(frame)
		c.c.Close()
	})
}

func (c *tlsConn) stopWriter() {
	if c.w != nil {
		c.w.stop()
	}
}

// streamSink is an outbox's writer goroutine for a blocking connection. An
// outbox has at most one write in flight, so the hand-over channel holds
// one buffer and asyncWrite never blocks.
type streamSink struct {
	conn     net.Conn
	o        *outbox
	work     chan []byte
	quit     chan struct{}
	stopOnce sync.Once
}

// newStreamOutbox returns an outbox whose frames a new goroutine writes to
// conn; sink.stop ends it (the caller closes conn).
func newStreamOutbox(conn net.Conn, maxBytes int, stats *Stats) (*outbox, *streamSink) {
	o := &outbox{maxBytes: maxBytes, stats: stats}
	w := &streamSink{conn: conn, o: o, work: make(chan []byte, 1), quit: make(chan struct{})}
	o.w = w
	go w.run()
	return o, w
}

func (w *streamSink) asyncWrite(buf []byte) error {
	select {
	case w.work <- buf:
		return nil
	case <-w.quit:
		return ErrClosed
	}
}

func (w *streamSink) run() {
	for {
		select {
		case b := <-w.work:
			_, err := w.conn.Write(b)
			// The kernel took all of it (a blocking write returns then):
			// nothing stays behind in user space.
			w.o.written(0, err)
			if err != nil {
				w.conn.Close()
				return
			}
		case <-w.quit:
			return
		}
	}
}

func (w *streamSink) stop() {
	w.stopOnce.Do(func() { close(w.quit) })
	w.o.close()
}
