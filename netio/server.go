package netio

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/wire"
	"github.com/panjf2000/gnet/v2"
)

// Handler receives what the transport decodes. Both methods run on the
// connection's event loop goroutine (or, on a TLS port, its reader
// goroutine), so calls for different connections may run concurrently:
// they must not block, and the byte slices they are given alias the
// connection's read buffer, valid only during the call; copy what must
// outlive it (into the WAL batch, a queue).
type Handler interface {
	// HandleRaft is called for each Raft message from an authenticated
	// peer; m.From is the node ID of the peer's handshake and m.To is this
	// node.
	HandleRaft(m *wire.Message)
	// HandleClient is called for each client request. body is the request's
	// raw frame body (what a proposal carries, see sm.AppendCommand). The
	// answer goes back through c.Respond, from any goroutine, at any time.
	HandleClient(c *ClientConn, req *wire.ClientRequest, body []byte)
}

// ClientConn is one accepted client connection.
type ClientConn struct {
	id     uint64
	remote string
	conn   acceptedConn
	out    *outbox
	closed atomic.Bool

	// inflight counts requests handed to HandleClient and not yet
	// answered through Respond; beyond maxInflight a request is answered
	// StatusTooManyRequests without reaching the handler.
	inflight    atomic.Int64
	maxInflight int64
	lastIn      atomic.Int64 // server.now when the last frame arrived

	// readAt is ReceivedAt's clock reading for the bytes being handled;
	// readAtSet false until the first call after each read. Both belong
	// to the goroutine that feeds the session.
	readAt    time.Time
	readAtSet bool
}

// ReceivedAt is when the request being handled arrived, for HandleClient
// to call (only there): the clock is read once per read from the
// connection and shared by every request that read brought (a clock read
// per request was 2.5% of a leader's CPU at 1,024 clients).
func (c *ClientConn) ReceivedAt() time.Time {
	if !c.readAtSet {
		c.readAt, c.readAtSet = time.Now(), true
	}
	return c.readAt
}

// newRead starts ReceivedAt afresh for the bytes of a new read.
func (c *ClientConn) newRead() {
	if c != nil {
		c.readAtSet = false
	}
}

// ID is unique among this transport's client connections.
func (c *ClientConn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *ClientConn) RemoteAddr() string { return c.remote }

// Respond queues r on the connection. It returns ErrClosed if the client
// went away and ErrBusy if the client is not reading its responses.
//
// Each call counts as the answer to one request for the connection's
// in-flight limit (Config.MaxInflightRequestsPerConn): call it once per
// request handed to HandleClient.
func (c *ClientConn) Respond(r *wire.ClientResponse) error {
	if err := c.answered(); err != nil {
		return err
	}
	// Answers go through the event loop, which coalesces those that arrive
	// while a write is in flight. (Writing a client's only answer in
	// progress directly, as peer links do, measured no faster: 1 client,
	// fsync none, p50 268/252 -> 257/254 us.)
	return c.out.sendResponse(r)
}

// RespondIn is Respond held in b: the response is queued but no write
// starts for it until b.Flush, so that the answers one goroutine gives many
// connections at once leave in one write per connection. (Respond writes a
// connection's first answer at once and the rest together behind it: at
// 1,024 clients on 32 connections, half the leader's response writes
// carried a single answer.)
func (c *ClientConn) RespondIn(b *ResponseBatch, r *wire.ClientResponse) error {
	if err := c.answered(); err != nil {
		return err
	}
	list, err := c.out.holdResponse(r)
	if list {
		b.add(c.out)
	}
	return err
}

// answered counts one answer against the in-flight limit and reports
// whether the connection is gone.
func (c *ClientConn) answered() error {
	for {
		n := c.inflight.Load()
		if n <= 0 || c.inflight.CompareAndSwap(n, n-1) {
			break
		}
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// ResponseBatch collects the connections that hold responses queued with
// RespondIn; Flush starts their writes. It is safe for concurrent use, but
// meant for one goroutine that answers in bursts (a node's apply
// goroutine, after each applied batch). A held response waits for Flush
// only while its connection has no write in flight: one in flight takes it
// along when it completes.
type ResponseBatch struct {
	mu   sync.Mutex
	outs []*outbox
}

// add lists o, which holdResponse has just marked listed.
func (b *ResponseBatch) add(o *outbox) {
	b.mu.Lock()
	b.outs = append(b.outs, o)
	b.mu.Unlock()
}

// Flush starts a write on every connection that holds responses.
func (b *ResponseBatch) Flush() {
	b.mu.Lock()
	outs := b.outs
	b.outs = nil
	b.mu.Unlock()
	for i, o := range outs {
		o.release()
		outs[i] = nil
	}
	b.mu.Lock()
	if b.outs == nil {
		b.outs = outs[:0] // keep the array
	}
	b.mu.Unlock()
}

// gnetConn adapts a gnet.Conn to the session of an accepted connection.
type gnetConn struct{ c gnet.Conn }

func (g gnetConn) remoteAddr() string { return g.c.RemoteAddr().String() }

// writeNow goes into gnet's outbound buffer, ahead of any AsyncWrite
// queued after it. It is called on the event loop.
func (g gnetConn) writeNow(b []byte) error { _, err := g.c.Write(b); return err }

func (g gnetConn) newOutbox(maxBytes int, stats *Stats) *outbox {
	return newOutbox(g.c, maxBytes, stats)
}

func (g gnetConn) closeWith(frame []byte) {
	g.c.AsyncWrite(frame, func(c gnet.Conn, _ error) error { return c.Close() })
}

// inConn is the per-connection state of an accepted gnet connection, kept
// in the gnet.Conn's context and touched only on its event loop.
type inConn struct {
	session
	counted bool // holds one of the port's MaxConnsPerPort slots
}

// server is the gnet event handler for the peer and client listeners.
type server struct {
	gnet.BuiltinEventEngine
	t          *Transport
	peerPort   int
	clientPort int
	booted     chan gnet.Engine
	nextClient atomic.Uint64
	clients    sync.Map // client ID → *ClientConn, open client connections

	conns   [3]atomic.Int64 // open accepted connections, by wire.Role (1 peer, 2 client)
	pending sync.Map        // gnet.Conn → time.Time: accepted, Hello not yet complete

	// now is a coarse clock (UnixNano) set by the idle sweeper, so that
	// marking a client connection active costs no clock read per frame.
	now          atomic.Int64
	inflightText []byte // the StatusTooManyRequests error text
	tls          tlsServers
}

// OnTick closes accepted connections whose handshake has not completed
// within HandshakeTimeout.
func (s *server) OnTick() (time.Duration, gnet.Action) {
	limit := s.t.cfg.HandshakeTimeout
	now := time.Now()
	s.pending.Range(func(k, v any) bool {
		if now.Sub(v.(time.Time)) > limit {
			s.pending.Delete(k)
			s.t.stats.HandshakeTimeouts.Add(1)
			c := k.(gnet.Conn)
			frame := wire.AppendErrorFrame(nil, wire.ErrCodeBadHandshake, "handshake not completed within "+limit.String())
			c.AsyncWrite(frame, func(c gnet.Conn, _ error) error { return c.Close() })
		}
		return true
	})
	return max(limit/4, 20*time.Millisecond), gnet.None
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	s.booted <- eng
	return gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	st := &inConn{session: session{s: s, conn: gnetConn{c}, port: wire.RolePeer}}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a.Port == s.clientPort && s.clientPort != 0 {
		st.port = wire.RoleClient
	}
	c.SetContext(st)
	if frame := s.takeSlot(st.port); frame != nil {
		return frame, gnet.Close
	}
	st.counted = true
	s.pending.Store(c, time.Now())
	return nil, gnet.None
}

// takeSlot takes one of the port's MaxConnsPerPort slots, or returns the
// Error frame that refuses the connection.
func (s *server) takeSlot(port wire.Role) []byte {
	if n := s.conns[port].Add(1); n > int64(s.t.cfg.MaxConnsPerPort) {
		s.conns[port].Add(-1)
		s.t.stats.ConnsRefused.Add(1)
		msg := fmt.Sprintf("the %s port has its maximum of %d connections", port, s.t.cfg.MaxConnsPerPort)
		return wire.AppendErrorFrame(nil, wire.ErrCodeOverloaded, msg)
	}
	return nil
}

// Conns is the number of open accepted connections on the peer and client ports.
func (t *Transport) Conns() (peer, client int64) {
	return t.srv.conns[wire.RolePeer].Load(), t.srv.conns[wire.RoleClient].Load()
}

func (s *server) OnClose(c gnet.Conn, _ error) gnet.Action {
	s.pending.Delete(c)
	if st, ok := c.Context().(*inConn); ok && st.counted {
		s.conns[st.port].Add(-1)
	}
	if st, ok := c.Context().(*inConn); ok {
		s.forget(st.client)
	}
	return gnet.None
}

// forget drops a closed client connection (nil: not a client).
func (s *server) forget(cc *ClientConn) {
	if cc != nil {
		cc.closed.Store(true)
		cc.out.close()
		s.clients.Delete(cc.id)
	}
}

// OnTraffic drives the connection's session over gnet's read buffer
// without copying: it peeks the head of the next unit, waits until the
// whole unit is buffered, and hands the session a view of it.
func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*inConn)
	st.client.newRead()
	for {
		buffered := c.InboundBuffered()
		head, _ := c.Peek(min(buffered, st.headLen()))
		size, err := st.next(head)
		if err != nil {
			return s.refuse(c, st, err)
		}
		if size == 0 || buffered < size {
			return gnet.None // wait for the rest; the limit was checked in next
		}
		wasHello := st.hello
		unit, _ := c.Peek(size)
		if err := st.process(unit); err != nil {
			return s.refuse(c, st, err)
		}
		if !wasHello {
			s.pending.Delete(c)
		}
		c.Discard(size)
	}
}

// refuse tells the remote why in an Error frame (flushed by gnet before it
// closes) and closes the connection.
func (s *server) refuse(c gnet.Conn, st *inConn, err error) gnet.Action {
	c.Write(st.refusal(err))
	return gnet.Close
}
