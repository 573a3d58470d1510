// Package netio is Kraft's network layer: gnet event loops serving the peer
// port (7001) and the client port (7002), and one outbound connection to
// every peer, all speaking the formats of package wire. A port with TLS
// configured is served by crypto/tls instead (see TLS below).
//
// # Connections
//
//	accepted (server loops)                 dialled (dialer loops)
//	  Hello in ──▶ check cluster, role,       goroutine per peer: net.DialTimeout,
//	               node ID; Hello out          Hello out, Hello in (or the Error
//	  frames in ──▶ Handler.HandleRaft          frame that refuses us), check the
//	               Handler.HandleClient         node ID, then Enroll the socket in a
//	  responses out ◀── ClientConn.Respond      gnet loop; reconnect with backoff
//	                                          frames out ◀── Transport.Send
//
// Each node sends its Raft messages on the connection it dialled and
// receives on the ones it accepted, so every connection carries traffic one
// way (plus the Error frame a refusing side sends before it closes).
//
// # Goroutines and buffers
//
// Server loops (Config.ServerLoops) run OnTraffic: they decode frames in
// place and call the Handler with views into gnet's read buffer, valid only
// during the call — the handler copies what outlives it. A frame's length
// prefix is checked against MaxFrameBytes before the body is waited for, so
// an oversized frame costs nothing but the refusal.
//
// Outgoing frames go through an outbox per connection: encoded under a
// mutex into a pending buffer; the first frame of an idle connection is
// handed to gnet at once (AsyncWrite), and frames arriving meanwhile
// accumulate and leave in the next write. Coalescing thus follows load with
// no timer, and two buffers alternate so steady state does not allocate.
// gnet's AsyncWrite neither copies nor bounds its queue: the outbox bounds
// what it holds plus what gnet keeps for a socket the kernel will not take
// (OutboundBuffered), and Send answers ErrBusy beyond
// MaxInflightBytesPerConn. A Raft message refused this way is simply lost;
// Raft's retransmission recovers it.
//
// Dialled plaintext peer connections (where every Raft message goes) skip
// the event loop when they can: with no write in flight and nothing left in
// gnet's buffer, the sender writes the socket itself (no eventfd, no thread
// wake-up; Stats.DirectWrites). Transport.Cork/Uncork, which core.Node calls
// around each turn's Sends, hold those writes so that a peer's messages of
// one turn still leave together. OnClose closes the outbox before gnet
// closes the descriptor, so a direct write never reaches a closed or reused
// one. Client answers keep the event loop, which coalesces their bursts.
//
// The protocol of an accepted connection (Hello checks, frame limits,
// dispatch, refusals) lives in one place, session (conn.go), which both the
// gnet handler and the TLS reader goroutine drive; FuzzConnHandler fuzzes
// it without sockets.
//
// # TLS
//
// gnet has no TLS. With Config.PeerTLS the peer port is served with mutual
// TLS by crypto/tls over the net package, and peers are dialled with it;
// with Config.ClientTLS the client port is too. Plaintext ports stay on
// gnet. A TLS connection has a reader goroutine (the session) and a writer
// goroutine (its outbox's sink); a dialled TLS peer connection has the
// writer and a reader that only watches for the refusal and EOF.
//
//	accepted on a TLS port                      dialled with PeerTLS
//	  first byte != 0x16 ──▶ plaintext Error      TCP dial (DialTimeout), TLS
//	    "this port requires TLS", close            handshake: chain against the
//	  TLS handshake (client cert required on       CA, certificate must name the
//	    the peer port, verified against the CA)    node we dial (no host names:
//	  Hello: its node ID must be one the           peers may sit behind IPs/NAT)
//	    client certificate names                  then the Hello as in plaintext
//
// A certificate names node N by a URI SAN kraft://node/N or a DNS SAN whose
// first label is kraft-nodeN (NodeIDs). TLSSource loads certificate, key
// and CA from PEM files; Reload (SIGHUP) swaps them for new handshakes.
// MinVersion is TLS 1.2; Go negotiates 1.3 whenever both sides have it.
//
// # Limits
//
// Per port: MaxConnsPerPort accepted connections (handshakes in progress
// count), HandshakeTimeout to complete TLS and the Hello. Per client
// connection: MaxInflightRequestsPerConn requests handed to the Handler and
// not yet answered (beyond it the transport answers StatusTooManyRequests
// itself), IdleTimeout without a frame while nothing is pending (closed
// with an Error frame; a sweeper goroutine checks). Per connection:
// MaxFrameBytes and MaxInflightBytesPerConn. Each refusal is counted in
// Stats.
//
// # Refusals
//
// Anything that is not a valid handshake or frame — another cluster's node,
// a node claiming this node's ID, a client on the peer port, HTTP, an
// oversized or malformed frame, a Raft message whose sender differs from
// the handshake's node ID, a certificate that does not name the Hello's
// node — is logged with the remote address and answered with an Error
// frame naming the problem; then the connection closes. A failed TLS
// handshake (no certificate, another CA, expired) gets only the TLS alert,
// and a Warn line with the remote address and the reason. The
// dialling side logs the refusal text too, so both logs say why.
package netio
