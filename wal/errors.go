package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("kraft/wal: closed")
	// ErrCompacted: the requested index lies before the log's first index
	// (it was compacted into a snapshot).
	ErrCompacted = errors.New("kraft/wal: index compacted")
	// ErrUnavailable: the requested index lies after the log's last index.
	ErrUnavailable = errors.New("kraft/wal: index not in log")
	// ErrRecordTooLarge: a record does not fit in an empty segment.
	ErrRecordTooLarge = errors.New("kraft/wal: record larger than a segment")
	// ErrNoSnapshot: the snapshot directory holds no valid snapshot.
	ErrNoSnapshot = errors.New("kraft/wal: no snapshot")
)

// CorruptionError says that stored bytes are damaged in a way that a crash
// cannot explain (bad checksum before the tail, a gap, an index or term that
// goes backwards). Open refuses to start; nothing on disk was modified.
type CorruptionError struct {
	File   string // path of the damaged file
	Offset int64  // byte offset of the damaged record or field in File
	Detail string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("kraft/wal: corruption in %s at offset %d: %s (run 'kraft-ctl verify-data' and follow the data recovery procedure)",
		e.File, e.Offset, e.Detail)
}

// FatalError wraps a failed fsync (or a write whose outcome is unknown).
// After it the WAL refuses every write: the page cache may have dropped the
// dirty pages, so retrying could report data durable that is not. The
// process must restart and recover from what is on disk.
type FatalError struct {
	Op  string
	Err error
}

func (e *FatalError) Error() string {
	return "kraft/wal: fatal " + e.Op + " error, refusing further writes: " + e.Err.Error()
}

func (e *FatalError) Unwrap() error { return e.Err }

// IsFatal reports whether err is (or wraps) a *FatalError.
func IsFatal(err error) bool {
	var fe *FatalError
	return errors.As(err, &fe)
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("kraft/wal: "+format, args...)
}
