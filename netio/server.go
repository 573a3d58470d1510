package netio

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/wire"
	"github.com/panjf2000/gnet/v2"
)

// Handler receives what the transport decodes. Both methods run on an event
// loop goroutine: they must not block, and the byte slices they are given
// alias the connection's read buffer, valid only during the call; copy what
// must outlive it (into the WAL batch, a queue).
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
	out    *outbox
	closed atomic.Bool
}

// ID is unique among this transport's client connections.
func (c *ClientConn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *ClientConn) RemoteAddr() string { return c.remote }

// Respond queues r on the connection. It returns ErrClosed if the client
// went away and ErrBusy if the client is not reading its responses.
func (c *ClientConn) Respond(r *wire.ClientResponse) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.out.sendResponse(r)
}

// inConn is the per-connection state of an accepted connection, kept in the
// gnet.Conn's context and touched only on its event loop.
type inConn struct {
	port    wire.Role // which listener accepted it
	counted bool      // holds one of the port's MaxConnsPerPort slots
	hello   bool      // handshake done
	peerID  uint64    // RolePeer: the node ID of the handshake
	client  *ClientConn
	msg     wire.Message
	req     wire.ClientRequest
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
	st := &inConn{port: wire.RolePeer}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a.Port == s.clientPort && s.clientPort != 0 {
		st.port = wire.RoleClient
	}
	c.SetContext(st)
	if n := s.conns[st.port].Add(1); n > int64(s.t.cfg.MaxConnsPerPort) {
		s.conns[st.port].Add(-1)
		s.t.stats.ConnsRefused.Add(1)
		msg := fmt.Sprintf("the %s port has its maximum of %d connections", st.port, s.t.cfg.MaxConnsPerPort)
		return wire.AppendErrorFrame(nil, wire.ErrCodeOverloaded, msg), gnet.Close
	}
	st.counted = true
	s.pending.Store(c, time.Now())
	return nil, gnet.None
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
	if st, ok := c.Context().(*inConn); ok && st.client != nil {
		st.client.closed.Store(true)
		st.client.out.close()
		s.clients.Delete(st.client.id)
	}
	return gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*inConn)
	if !st.hello {
		b, _ := c.Peek(min(c.InboundBuffered(), wire.MaxHelloSize))
		n, err := wire.HelloLen(b)
		if err != nil {
			return s.refuse(c, codeFor(err), err)
		}
		if n == 0 || len(b) < n {
			return gnet.None
		}
		if err := s.handshake(c, st, b[:n]); err != nil {
			return s.refuse(c, codeFor(err), err)
		}
		s.pending.Delete(c)
		c.Discard(n)
	}
	for {
		n := c.InboundBuffered()
		if n < 4 {
			return gnet.None
		}
		head, _ := c.Peek(4)
		size, err := wire.FrameSize(head, s.t.cfg.MaxFrameBytes)
		if err != nil {
			s.t.stats.BadFrames.Add(1)
			return s.refuse(c, wire.ErrCodeBadFrame, err)
		}
		if n < size {
			return gnet.None // wait for the rest; the limit was checked above
		}
		b, _ := c.Peek(size)
		f, _, err := wire.ParseFrame(b, s.t.cfg.MaxFrameBytes)
		if err == nil {
			err = s.dispatch(c, st, f)
		}
		if err != nil {
			s.t.stats.BadFrames.Add(1)
			return s.refuse(c, wire.ErrCodeBadFrame, err)
		}
		s.t.stats.FramesIn.Add(1)
		s.t.stats.BytesIn.Add(uint64(size))
		c.Discard(size)
	}
}

func (s *server) handshake(c gnet.Conn, st *inConn, b []byte) error {
	h, err := wire.DecodeHello(b)
	if err != nil {
		return err
	}
	if err := h.Check(s.t.cfg.ClusterID, st.port); err != nil {
		return err
	}
	if h.Role == wire.RolePeer && h.NodeID == s.t.cfg.NodeID {
		return fmt.Errorf("%w: remote claims node ID %d, which is this node's: two nodes are configured with the same ID", wire.ErrNodeMismatch, h.NodeID)
	}
	st.hello, st.peerID = true, h.NodeID
	if h.Role == wire.RoleClient {
		st.client = &ClientConn{id: s.nextClient.Add(1), remote: c.RemoteAddr().String(),
			out: newOutbox(c, s.t.cfg.MaxInflightBytesPerConn, &s.t.stats)}
		s.clients.Store(st.client.id, st.client)
	}
	// The reply goes through gnet's outbound buffer ahead of any response.
	_, err = c.Write(wire.AppendHello(nil, s.t.hello(h.Role)))
	if err == nil && h.Role == wire.RolePeer {
		s.t.log.Info("peer connected", "peer", h.NodeID, "remote", c.RemoteAddr().String(), "advertises", h.PeerAddr)
		if s.t.cfg.OnPeerHello != nil {
			s.t.cfg.OnPeerHello(h)
		}
	}
	return err
}

func (s *server) dispatch(c gnet.Conn, st *inConn, f wire.Frame) error {
	switch {
	case st.port == wire.RolePeer && f.Type.IsRaft():
		if err := wire.DecodeMessage(f, &st.msg); err != nil {
			return err
		}
		if st.msg.From != st.peerID || st.msg.To != s.t.cfg.NodeID {
			return fmt.Errorf("%w: message from %d to %d on the connection of node %d to node %d",
				wire.ErrNodeMismatch, st.msg.From, st.msg.To, st.peerID, s.t.cfg.NodeID)
		}
		s.t.handler.HandleRaft(&st.msg)
		return nil
	case st.port == wire.RoleClient && f.Type == wire.MsgClientRequest:
		if err := wire.DecodeClientRequest(f.Body, &st.req); err != nil {
			return err
		}
		s.t.handler.HandleClient(st.client, &st.req, f.Body)
		return nil
	case f.Type == wire.MsgError:
		code, text, _ := wire.DecodeErrorFrame(f.Body)
		s.t.log.Warn("remote reported an error", "remote", c.RemoteAddr().String(), "code", code, "error", string(text))
		return nil
	}
	return fmt.Errorf("%w: %v frame on the %s port", wire.ErrUnknownType, f.Type, st.port)
}

// refuse logs why a connection is dropped, tells the remote in an Error
// frame (flushed by gnet before it closes), and closes it.
func (s *server) refuse(c gnet.Conn, code wire.ErrorCode, err error) gnet.Action {
	st := c.Context().(*inConn)
	if !st.hello {
		s.t.stats.HandshakesFailed.Add(1)
	}
	s.t.log.Warn("refusing connection", "remote", c.RemoteAddr().String(), "port", st.port.String(), "error", err.Error())
	c.Write(wire.AppendErrorFrame(nil, code, err.Error()))
	return gnet.Close
}

func codeFor(err error) wire.ErrorCode {
	switch {
	case errors.Is(err, wire.ErrClusterMismatch):
		return wire.ErrCodeClusterMismatch
	case errors.Is(err, wire.ErrNodeMismatch):
		return wire.ErrCodeNodeMismatch
	}
	return wire.ErrCodeBadHandshake
}
