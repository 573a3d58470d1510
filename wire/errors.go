package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every decoder failure wraps exactly one of them, so callers
// classify with errors.Is and still get the detail in the message.
var (
	// ErrTruncated: the input ends before a length or field says it should.
	ErrTruncated = errors.New("kraft/wire: truncated input")
	// ErrFrameTooLarge: a length prefix exceeds the configured maximum. It is
	// reported before anything is allocated for the frame.
	ErrFrameTooLarge = errors.New("kraft/wire: frame too large")
	// ErrUnknownType: a message or entry type byte this version does not know.
	ErrUnknownType = errors.New("kraft/wire: unknown type")
	// ErrChecksum: an entry record's xxhash64 does not match its bytes.
	ErrChecksum = errors.New("kraft/wire: checksum mismatch")
	// ErrMalformed: a length or count field is inconsistent with the bytes
	// around it (points past the end, leaves trailing bytes, breaks index
	// continuity, uses reserved bits).
	ErrMalformed = errors.New("kraft/wire: malformed message")
	// ErrBadMagic: the first bytes of a connection are not a Kraft handshake.
	ErrBadMagic = errors.New("kraft/wire: bad magic")
	// ErrVersion: the peer speaks a protocol version this build cannot.
	ErrVersion = errors.New("kraft/wire: unsupported protocol version")
	// ErrClusterMismatch: the peer belongs to another cluster.
	ErrClusterMismatch = errors.New("kraft/wire: cluster ID mismatch")
	// ErrNodeMismatch: the peer's node ID is not the one expected on this
	// connection (duplicate ID, or a dial that reached the wrong node).
	ErrNodeMismatch = errors.New("kraft/wire: node ID mismatch")
)

// Error is the typed error every decoder returns. Kind is one of the
// sentinel errors above; Offset is the byte offset in the decoder's input
// where the problem was found.
type Error struct {
	Kind   error
	Offset int
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v at offset %d", e.Kind, e.Offset)
	}
	return fmt.Sprintf("%v at offset %d: %s", e.Kind, e.Offset, e.Detail)
}

func (e *Error) Unwrap() error { return e.Kind }

// errorf builds an *Error. It is only reached on the failure path, so the
// allocation does not touch the zero-allocation decode path.
func errorf(kind error, off int, format string, args ...any) error {
	return &Error{Kind: kind, Offset: off, Detail: fmt.Sprintf(format, args...)}
}
