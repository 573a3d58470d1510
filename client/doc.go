// Package client is the Go client for a Kraft cluster's client port (7002
// by default): Put, Get, Delete and CAS with leader discovery, redirects,
// retries and exactly-once writes. It uses the standard net package.
//
// # Guarantees
//
// Exactly once. A Client has a session: a random 64-bit client ID, and a
// sequence number per request. Every send of a request, first or retry, on
// any connection to any node, carries the same (client ID, seq), so the
// state machine applies a write at most once and answers a retry from its
// session cache (sm's doc). Each request also carries FirstUnacked, the
// lowest seq of a write still in progress, so the server can forget
// answers the client has seen. Writes carry the new-session flag until one
// write has been answered by the state machine; only that flag lets the
// server open a session, so an expired session is reported, never silently
// reopened under a retried write. The server keeps a bounded number of
// answers per session (sm: 1024); the client never lets a write be numbered
// more than SessionWindow writes after the oldest write still in progress,
// so the answer a retry needs is never the one the server dropped.
//
// A write's outcome is reported as unknown (errors.Is(err,
// ErrUnknownOutcome)) when it was sent and then the connection broke, the
// server answered "timeout", or the context ended, and no later attempt
// got a definite answer. Such a write has been applied at most once; a
// copy still in flight inside the cluster may yet be applied after the
// call returned (read back to know).
//
// Retries, precisely:
//
//   - "not leader" with a leader address: the client remembers the address,
//     drops the connection and resends at once to the leader. Without an
//     address (election in progress) it moves to the next endpoint after a
//     backoff.
//   - connection refused, broken or undecodable: next endpoint (or the
//     leader again if it was a redirect target), after a backoff; the
//     in-flight requests are resent with their seqs.
//   - no answer within AttemptTimeout (a paused or cut-off node keeps its
//     TCP connection open): the connection is dropped and every call on it
//     is resent, with its seq, starting from the next endpoint.
//   - "timeout" (outcome unknown) and "too many requests": the same request,
//     same seq, after a backoff.
//   - "no quorum": returned at once (ErrNoQuorum, with the server's text,
//     e.g. "quorum not reached: got 2/5, need 3").
//   - "session expired": the client starts a new session (new client ID).
//     If every earlier send of the write was refused before the state
//     machine ran (so nothing was applied), the write is reissued in the new
//     session; otherwise the call fails with ErrSessionExpired and
//     ErrUnknownOutcome.
//   - A write first sent more than SessionTimeout/2 ago is not retried when
//     an earlier send may have been applied: the session may have expired
//     meanwhile, and a retry of a session's very first write could then be
//     applied twice. The call fails with ErrUnknownOutcome.
//   - At most 1+MaxRetries sends and dials per call; then the last
//     failure is returned (ErrNotLeader, ErrTimeout, ErrTooManyRequests,
//     ErrUnavailable, ErrProtocol, with the server's text). Backoff starts
//     at RetryBackoff and doubles up to RetryBackoffMax, jittered in
//     [d/2, d]. Every call is bounded by its context, or by RequestTimeout
//     when the context has no deadline.
//
// Reads (Get) open no session and are retried freely; Linearizable is the
// default consistency.
//
// # Connections and goroutines
//
// One connection at a time, to the node believed to lead, shared by every
// call (pipelining). Per connection there are two goroutines:
//
//   - the writer: calls append their encoded frame to the connection's
//     buffer under a mutex and wake the writer, which yields once (so that
//     callers already runnable append theirs), swaps the buffer out and
//     writes it with one syscall; requests arriving during a write go out
//     together in the next one. A write stalled for RequestTimeout kills
//     the connection.
//   - the reader: reads frames, checking each length prefix against
//     MaxFrameBytes before buffering the body, and hands each response to
//     the call waiting on its Seq (responses may come in any order). Seqs
//     are unique per Client, across sessions, so they pair on any
//     connection.
//
// and one timer, the sweeper, which enforces the AttemptTimeout and the
// deadline of every call waiting on the connection, so that a caller
// arms no timer of its own: it is armed for the earliest moment a pending
// call may expire, and disarms itself when nothing is pending. A caller
// whose context cannot be cancelled (context.Background) then waits for
// its answer with a single channel receive.
//
// Dialing (with the handshake) happens on a calling goroutine, one dial at
// a time; other callers wait for it. At most MaxInflight calls are in
// progress; further callers block until a slot frees or their context
// ends. Close fails the calls in progress with ErrClosed and returns after
// both goroutines have exited.
//
// # Asynchronous calls
//
// PutAsync and GetAsync start a call and return; a callback gets the
// outcome, exactly once, with the guarantees above. They exist for callers
// that keep many calls in flight (a load generator): a synchronous call
// parks its goroutine and the reader wakes it, two goroutine switches per
// call, where the callback of an asynchronous one runs on the reader
// itself. Only the first send takes that path, when a connection is up, a
// slot is free and the session window is open (else the call starts on a
// goroutine of its own and waits there, as a synchronous one would); an
// answer other than a final one, a broken connection or an AttemptTimeout
// hands the call, its seq unchanged, to a goroutine that carries on as a
// synchronous call would. Close waits for every callback.
//
// # TLS
//
// Config.TLS (nil: plaintext) makes every connection crypto/tls over the
// standard net package; LoadTLS builds it from PEM files (the CA that
// signed the nodes' certificates, and optionally a client certificate and
// key for nodes run with --client-ca), TLS 1.2 at least. The TLS handshake
// counts in DialTimeout and is interrupted by the call's context, as the
// Kraft Hello is. Each node's certificate is verified against the host of
// the address dialled, endpoint or redirect target, so a node's certificate
// must name the host clients reach it by (DNS SAN, or IP SAN for an
// address such as 127.0.0.1).
//
// A TLS mismatch is a configuration error, returned at once (ErrTLS) with
// what is wrong: "endpoint 10.0.0.1:7002 requires TLS" (a plaintext client
// at a TLS-only port, which answers with an Error frame or a TLS alert),
// "does not speak TLS" (a TLS client at a plaintext port), "its certificate
// is not trusted" (CA or names), "refused the TLS handshake" (the node
// wants a client certificate its CA signed). A node that accepts the
// connection and then stays silent is only unavailable: retried elsewhere.
//
// # Errors
//
// Every error is an *Error: the operation, a Kind (one of the Err*
// sentinels or a context error) and the server's text, prefixed
// "kraft/client: ", e.g.
//
//	kraft/client: put: not leader: not leader, leader is node 2 (6 attempts)
//
// A handshake refused by the node (Error frame: wrong cluster ID) fails the
// call at once with ErrRefused and wire.ErrClusterMismatch; a TLS mismatch
// fails it at once with ErrTLS (see TLS above).
package client
