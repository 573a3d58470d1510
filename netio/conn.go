package netio

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/kraftdb/kraft/wire"
)

// acceptedConn is what the protocol logic of an accepted connection needs
// from the socket under it: a gnet.Conn (gnetConn) or a crypto/tls
// connection served by goroutines (tlsConn).
type acceptedConn interface {
	remoteAddr() string
	// writeNow writes b ahead of anything queued later on the connection
	// (the Hello reply). It runs on the connection's reading goroutine.
	writeNow(b []byte) error
	// newOutbox returns the queue through which responses go out.
	newOutbox(maxBytes int, stats *Stats) *outbox
	// closeWith writes frame, then closes. Safe from any goroutine.
	closeWith(frame []byte)
}

// session is the protocol of one accepted connection, the same on the
// gnet path and the TLS path: the Hello (checked against the cluster, the
// port's role and, under mutual TLS, the certificate's identities), then
// frames dispatched to the Handler. One goroutine at a time drives it (the
// connection's event loop or its reader goroutine) through next and
// process, which never block.
//
// The driver feeds it units: it shows next the first headLen bytes it has
// (or fewer), next answers how long the unit is (0: show more), and once
// that many bytes are buffered, process consumes exactly them. A unit's
// length is checked against MaxHelloSize or MaxFrameBytes in next, before
// the driver waits for or allocates anything.
type session struct {
	s    *server
	conn acceptedConn
	port wire.Role

	// mTLS peer port: the node IDs the client certificate names. The Hello
	// must claim one of them.
	verifyIdentity bool
	certIDs        []uint64
	certSubject    string

	hello  bool
	peerID uint64
	client *ClientConn
	msg    wire.Message
	req    wire.ClientRequest
}

// refusal is why a session ends: the Error frame code and the cause.
type refusal struct {
	code wire.ErrorCode
	err  error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuseWith(code wire.ErrorCode, err error) error { return &refusal{code: code, err: err} }

// headLen is how many leading bytes of the next unit next wants to see.
func (ss *session) headLen() int {
	if !ss.hello {
		return wire.MaxHelloSize
	}
	return 4
}

// next returns the size of the unit that head begins, or 0 while head is
// too short to tell.
func (ss *session) next(head []byte) (int, error) {
	if !ss.hello {
		n, err := wire.HelloLen(head)
		if err != nil {
			return 0, refuseWith(codeFor(err), err)
		}
		return n, nil
	}
	n, err := wire.FrameSize(head, ss.s.t.cfg.MaxFrameBytes)
	if err != nil {
		ss.s.t.stats.BadFrames.Add(1)
		return 0, refuseWith(wire.ErrCodeBadFrame, err)
	}
	return n, nil
}

// process consumes one whole unit of the size next returned. Byte slices
// handed to the Handler alias unit.
func (ss *session) process(unit []byte) error {
	if !ss.hello {
		if err := ss.handshake(unit); err != nil {
			var r *refusal
			if errors.As(err, &r) {
				return err
			}
			return refuseWith(codeFor(err), err)
		}
		return nil
	}
	f, _, err := wire.ParseFrame(unit, ss.s.t.cfg.MaxFrameBytes)
	if err == nil {
		err = ss.dispatch(f)
	}
	if err != nil {
		ss.s.t.stats.BadFrames.Add(1)
		return refuseWith(wire.ErrCodeBadFrame, err)
	}
	ss.s.t.stats.FramesIn.Add(1)
	ss.s.t.stats.BytesIn.Add(uint64(len(unit)))
	if ss.client != nil {
		ss.client.lastIn.Store(ss.s.now.Load())
	}
	return nil
}

// feed processes every whole unit at the start of b and returns how many
// bytes that was: the driver keeps the rest and reads more.
func (ss *session) feed(b []byte) (int, error) {
	done := 0
	for {
		rest := b[done:]
		n, err := ss.next(rest[:min(len(rest), ss.headLen())])
		if err != nil {
			return done, err
		}
		if n == 0 || len(rest) < n {
			return done, nil
		}
		if err := ss.process(rest[:n]); err != nil {
			return done, err
		}
		done += n
	}
}

func (ss *session) handshake(b []byte) error {
	t := ss.s.t
	h, err := wire.DecodeHello(b)
	if err != nil {
		return err
	}
	if err := h.Check(t.cfg.ClusterID, ss.port); err != nil {
		return err
	}
	if h.Role == wire.RolePeer && h.NodeID == t.cfg.NodeID {
		return fmt.Errorf("%w: remote claims node ID %d, which is this node's: two nodes are configured with the same ID", wire.ErrNodeMismatch, h.NodeID)
	}
	if ss.verifyIdentity && !containsID(ss.certIDs, h.NodeID) {
		t.stats.TLSIdentityRefused.Add(1)
		return refuseWith(wire.ErrCodeIdentity, &identityError{want: h.NodeID, names: ss.certIDs, subject: ss.certSubject})
	}
	ss.hello, ss.peerID = true, h.NodeID
	if h.Role == wire.RoleClient {
		ss.client = &ClientConn{id: ss.s.nextClient.Add(1), remote: ss.conn.remoteAddr(), conn: ss.conn,
			maxInflight: int64(t.cfg.MaxInflightRequestsPerConn),
			out:         ss.conn.newOutbox(t.cfg.MaxInflightBytesPerConn, &t.stats)}
		ss.client.lastIn.Store(ss.s.now.Load())
		ss.s.clients.Store(ss.client.id, ss.client)
	}
	// The reply goes out ahead of any response.
	err = ss.conn.writeNow(wire.AppendHello(nil, t.hello(h.Role)))
	if err == nil && h.Role == wire.RolePeer {
		t.log.Info("peer connected", "peer", h.NodeID, "remote", ss.conn.remoteAddr(), "advertises", h.PeerAddr)
		if t.cfg.OnPeerHello != nil {
			t.cfg.OnPeerHello(h)
		}
	}
	return err
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (ss *session) dispatch(f wire.Frame) error {
	t := ss.s.t
	switch {
	case ss.port == wire.RolePeer && f.Type.IsRaft():
		if err := wire.DecodeMessageLimit(f, &ss.msg, t.cfg.MaxFrameBytes); err != nil {
			return err
		}
		if ss.msg.From != ss.peerID || ss.msg.To != t.cfg.NodeID {
			return fmt.Errorf("%w: message from %d to %d on the connection of node %d to node %d",
				wire.ErrNodeMismatch, ss.msg.From, ss.msg.To, ss.peerID, t.cfg.NodeID)
		}
		t.handler.HandleRaft(&ss.msg)
		return nil
	case ss.port == wire.RoleClient && f.Type == wire.MsgClientRequest:
		if err := wire.DecodeClientRequest(f.Body, &ss.req); err != nil {
			return err
		}
		c := ss.client
		if c.inflight.Add(1) > c.maxInflight {
			c.inflight.Add(-1)
			t.stats.InflightRefused.Add(1)
			c.out.sendResponse(&wire.ClientResponse{Seq: ss.req.Seq, Status: wire.StatusTooManyRequests, Error: ss.s.inflightText})
			return nil
		}
		t.handler.HandleClient(c, &ss.req, f.Body)
		return nil
	case f.Type == wire.MsgError:
		code, text, _ := wire.DecodeErrorFrame(f.Body)
		t.log.Warn("remote reported an error", "remote", ss.conn.remoteAddr(), "code", code, "error", string(text))
		return nil
	}
	return fmt.Errorf("%w: %v frame on the %s port", wire.ErrUnknownType, f.Type, ss.port)
}

// refusal logs why the connection is dropped, counts it, and returns the
// Error frame that tells the remote; the caller writes it and closes.
func (ss *session) refusal(err error) []byte {
	t := ss.s.t
	code := wire.ErrCodeBadHandshake
	var r *refusal
	if errors.As(err, &r) {
		code = r.code
	}
	if !ss.hello {
		t.stats.HandshakesFailed.Add(1)
	}
	attrs := []any{"remote", ss.conn.remoteAddr(), "port", ss.port.String(), "error", err.Error()}
	var ie *identityError
	if errors.As(err, &ie) {
		attrs = append(attrs, "claimed_node", ie.want, "cert_nodes", fmt.Sprint(ie.names), "cert_subject", ie.subject)
	}
	t.log.Warn("refusing connection", attrs...)
	return wire.AppendErrorFrame(nil, code, err.Error())
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

func inflightText(limit int) []byte {
	return []byte("too many in-flight requests on this connection (limit " + strconv.Itoa(limit) + ")")
}
