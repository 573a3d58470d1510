package wire

import (
	"encoding/binary"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Entry record layout: the same bytes are stored in the WAL and carried in
// AppendEntries (see doc.go for the diagram).
const (
	EntryHeaderSize  = 24 // length u32, type u8, flags u8, reserved u16, index u64, term u64
	EntryTrailerSize = 8  // xxhash64 of header and payload
	EntryOverhead    = EntryHeaderSize + EntryTrailerSize
	// MaxEntryPayload is what the u32 length field can describe. Nodes
	// configure a far smaller limit (max entry size); this is the format's.
	MaxEntryPayload = 1<<32 - 1 - EntryOverhead
)

// EntryType says how the state machine layer treats an entry's payload.
// Zero is never valid, so a zero-filled WAL region cannot decode as an entry.
type EntryType uint8

const (
	EntryInvalid EntryType = 0
	// EntryNormal carries a state-machine command.
	EntryNormal EntryType = 1
	// EntryNoop is appended by a new leader so that it can commit entries of
	// earlier terms (Raft §5.4.2); its payload is empty.
	EntryNoop EntryType = 2
	// EntryConfChange is a single-step membership change (one voter added or
	// removed, learners added, promoted or removed); payload encoded by core.
	EntryConfChange EntryType = 3
	// EntryConfChangeJoint enters or leaves a joint configuration (Raft
	// §4.3, joint consensus); payload encoded by core.
	EntryConfChangeJoint EntryType = 4
	maxEntryType         EntryType = 4
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "Normal"
	case EntryNoop:
		return "Noop"
	case EntryConfChange:
		return "ConfChange"
	case EntryConfChangeJoint:
		return "ConfChangeJoint"
	}
	return "EntryType(" + strconv.Itoa(int(t)) + ")"
}

// Entry is a decoded entry record. Payload aliases the decoder's input.
type Entry struct {
	Type    EntryType
	Index   uint64
	Term    uint64
	Payload []byte
}

// EntrySize is the record size of an entry with a payload of n bytes.
func EntrySize(n int) int { return EntryOverhead + n }

// AppendEntry appends the record for one entry to dst and returns the
// extended slice. It panics if the payload cannot be described by the format
// (a caller bug: limits are enforced long before this point).
func AppendEntry(dst []byte, t EntryType, index, term uint64, payload []byte) []byte {
	if uint64(len(payload)) > MaxEntryPayload {
		panic("kraft: BUG: entry payload of " + strconv.Itoa(len(payload)) + " bytes exceeds the record format")
	}
	start := len(dst)
	var h [EntryHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(EntrySize(len(payload))))
	h[4] = byte(t)
	binary.LittleEndian.PutUint64(h[8:], index)
	binary.LittleEndian.PutUint64(h[16:], term)
	dst = append(dst, h[:]...)
	dst = append(dst, payload...)
	return binary.LittleEndian.AppendUint64(dst, xxhash.Sum64(dst[start:]))
}

// EntryHeader is the fixed part of a record, readable without verifying the
// checksum (the WAL uses it to size a read).
type EntryHeader struct {
	Size  int // whole record, header and checksum included
	Type  EntryType
	Index uint64
	Term  uint64
}

// ParseEntryHeader validates and decodes the header at the start of b. It
// checks that the record fits in b but not its checksum.
func ParseEntryHeader(b []byte) (EntryHeader, error) {
	if len(b) < EntryHeaderSize {
		return EntryHeader{}, errorf(ErrTruncated, 0, "entry header needs %d bytes, have %d", EntryHeaderSize, len(b))
	}
	size := binary.LittleEndian.Uint32(b)
	if size < EntryOverhead {
		return EntryHeader{}, errorf(ErrMalformed, 0, "entry length %d < minimum %d", size, EntryOverhead)
	}
	if uint64(size) > uint64(len(b)) {
		return EntryHeader{}, errorf(ErrTruncated, 0, "entry length %d > %d bytes available", size, len(b))
	}
	t := EntryType(b[4])
	if t == EntryInvalid || t > maxEntryType {
		return EntryHeader{}, errorf(ErrUnknownType, 4, "entry type %d", b[4])
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return EntryHeader{}, errorf(ErrMalformed, 5, "reserved entry header bytes are not zero")
	}
	return EntryHeader{
		Size:  int(size),
		Type:  t,
		Index: binary.LittleEndian.Uint64(b[8:]),
		Term:  binary.LittleEndian.Uint64(b[16:]),
	}, nil
}

// DecodeEntry decodes and verifies the record at the start of b and returns
// it with the record's size. The payload aliases b.
func DecodeEntry(b []byte) (Entry, int, error) {
	h, err := ParseEntryHeader(b)
	if err != nil {
		return Entry{}, 0, err
	}
	sumAt := h.Size - EntryTrailerSize
	if got, want := xxhash.Sum64(b[:sumAt]), binary.LittleEndian.Uint64(b[sumAt:]); got != want {
		return Entry{}, 0, errorf(ErrChecksum, sumAt, "entry %d: computed %016x, stored %016x", h.Index, got, want)
	}
	return Entry{Type: h.Type, Index: h.Index, Term: h.Term, Payload: b[EntryHeaderSize:sumAt]}, h.Size, nil
}

// EntryIter walks a run of records that were already verified (by
// DecodeMessage or by the WAL's recovery). It does not re-verify checksums;
// it only re-reads headers, so it is cheap.
type EntryIter struct {
	b []byte
}

// NewEntryIter iterates over the verified records in b.
func NewEntryIter(b []byte) EntryIter { return EntryIter{b: b} }

// Next returns the next entry and its raw record bytes; ok is false at the
// end. A malformed record here means the caller broke the precondition.
func (it *EntryIter) Next() (e Entry, raw []byte, ok bool) {
	if len(it.b) == 0 {
		return Entry{}, nil, false
	}
	h, err := ParseEntryHeader(it.b)
	if err != nil {
		panic("kraft: BUG: EntryIter over unverified records: " + err.Error())
	}
	raw = it.b[:h.Size]
	e = Entry{Type: h.Type, Index: h.Index, Term: h.Term, Payload: raw[EntryHeaderSize : h.Size-EntryTrailerSize]}
	it.b = it.b[h.Size:]
	return e, raw, true
}

// VerifyEntries checks that b is a run of well-formed records with valid
// checksums and consecutive indexes starting at firstIndex (when firstIndex
// is non-zero). It returns the number of records.
func VerifyEntries(b []byte, firstIndex uint64) (int, error) {
	count := 0
	next := firstIndex
	for off := 0; off < len(b); {
		e, n, err := DecodeEntry(b[off:])
		if err != nil {
			we := err.(*Error)
			we.Offset += off
			return count, we
		}
		if next != 0 && e.Index != next {
			return count, errorf(ErrMalformed, off, "entry index %d, expected %d", e.Index, next)
		}
		next = e.Index + 1
		off += n
		count++
	}
	return count, nil
}
