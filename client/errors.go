package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kraftdb/kraft/wire"
)

// Sentinel errors. Every error a call returns is an *Error whose Kind is one
// of these (or a context error), so callers classify with errors.Is and
// still see the server's text in the message.
var (
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("kraft/client: client closed")
	// ErrNotLeader: nodes kept answering "not leader" until retries ran out
	// (an election that did not finish in time).
	ErrNotLeader = errors.New("kraft/client: not leader")
	// ErrNoQuorum: the leader cannot reach a quorum. Returned at once, not
	// retried: it does not heal on a millisecond scale.
	ErrNoQuorum = errors.New("kraft/client: no quorum")
	// ErrSessionExpired: the server forgot this client's session while a
	// write that had already been sent more than once was pending. The
	// client has started a new session; the error also matches
	// ErrUnknownOutcome.
	ErrSessionExpired = errors.New("kraft/client: session expired")
	// ErrUnknownOutcome: a write may or may not have been applied (sent,
	// then the connection broke, the server timed out, the context ended,
	// or the write grew too old to retry safely). Read back to find out.
	ErrUnknownOutcome = errors.New("kraft/client: outcome unknown")
	// ErrTooManyRequests: the leader's flow control kept refusing the
	// request until retries ran out. Nothing was proposed by those attempts.
	ErrTooManyRequests = errors.New("kraft/client: too many requests")
	// ErrTimeout: the server kept answering "timeout" until retries ran out.
	ErrTimeout = errors.New("kraft/client: server timeout")
	// ErrRequestFailed: the server answered with an error status.
	ErrRequestFailed = errors.New("kraft/client: request failed")
	// ErrUnavailable: no endpoint could be reached, or connections kept
	// breaking, until retries ran out.
	ErrUnavailable = errors.New("kraft/client: cluster unavailable")
	// ErrRefused: a node refused the connection with an Error frame (wrong
	// cluster ID, bad handshake); the server's text follows.
	ErrRefused = errors.New("kraft/client: connection refused by node")
	// ErrTLS: TLS is not agreed between the client and a node: the node
	// requires TLS and Config.TLS is nil, the node does not speak TLS, its
	// certificate is not trusted (CA, names), or it refused the client's
	// certificate (or the lack of one). The text says which. Not retried:
	// it is a configuration error that another attempt cannot fix.
	ErrTLS = errors.New("kraft/client: TLS error")
	// ErrProtocol: a node sent bytes that are not a valid response (bad
	// handshake, oversized or undecodable frame). The connection is dropped.
	ErrProtocol = errors.New("kraft/client: protocol error")
	// ErrTooLarge: the request does not fit in MaxFrameBytes. Nothing was sent.
	ErrTooLarge = errors.New("kraft/client: request too large")
)

// Error describes a failed call.
type Error struct {
	Op   string // "put", "get", "delete" or "cas"
	Kind error  // one of the sentinels above, or context.Canceled / DeadlineExceeded
	// Text is the server's error text (e.g. "quorum not reached: got 2/5,
	// need 3"), or a local detail.
	Text string
	// Err is the underlying cause (network, wire decoding), if any.
	Err error
	// OutcomeUnknown: the call was a write that may have been applied.
	// errors.Is(err, ErrUnknownOutcome) reports it too.
	OutcomeUnknown bool
	// Attempts counts the sends and dials made for the call.
	Attempts int
	// Status is the last status the server answered with; meaningful only
	// when HasStatus.
	Status    wire.Status
	HasStatus bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("kraft/client: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Kind.Error(), "kraft/client: "))
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	if e.Err != nil && !strings.Contains(e.Text, e.Err.Error()) {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "kraft/client: "))
	}
	fmt.Fprintf(&b, " (%d attempt", e.Attempts)
	if e.Attempts != 1 {
		b.WriteByte('s')
	}
	if e.OutcomeUnknown && e.Kind != ErrUnknownOutcome {
		b.WriteString("; outcome unknown")
	}
	b.WriteByte(')')
	return b.String()
}

// Unwrap lets errors.Is see Kind, Err and, for a write of unknown outcome,
// ErrUnknownOutcome.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.OutcomeUnknown {
		errs = append(errs, ErrUnknownOutcome)
	}
	return errs
}
