// Package netio is Kraft's network layer: gnet event loops serving the peer
// port (7001) and the client port (7002), and one outbound connection to
// every peer, all speaking the formats of package wire.
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
// # Refusals
//
// Anything that is not a valid handshake or frame — another cluster's node,
// a node claiming this node's ID, a client on the peer port, HTTP, an
// oversized or malformed frame, a Raft message whose sender differs from
// the handshake's node ID — is logged with the remote address and answered
// with an Error frame naming the problem; then the connection closes. The
// dialling side logs the refusal text too, so both logs say why.
package netio
