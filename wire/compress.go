package wire

import (
	"encoding/binary"
	"slices"

	"github.com/klauspost/compress/s2"
)

// DefaultCompressMinBytes is the smallest records block that
// AppendMessageCompressed tries to compress. Below it the S2 block header
// and the sender's CPU cost more than the few bytes saved; heartbeats and
// single small entries are far below it.
const DefaultCompressMinBytes = 4 << 10

// AppendMessageCompressed appends m as one frame. An Append whose records
// block is at least minBytes long (minBytes <= 0: DefaultCompressMinBytes)
// is sent with the flag compressed and the records as one S2 block, when
// that block is smaller than the records; any other message, and an Append
// that does not shrink, is appended exactly as AppendMessage would. It
// reports whether it compressed.
//
// Use it only toward a peer whose Hello carries CapCompressS2. It does not
// allocate when dst has room for the plain frame plus S2's worst case
// (s2.MaxEncodedLen of the records).
func AppendMessageCompressed(dst []byte, m *Message, minBytes int) ([]byte, bool) {
	if minBytes <= 0 {
		minBytes = DefaultCompressMinBytes
	}
	need := s2.MaxEncodedLen(len(m.Entries))
	if m.Type != MsgAppend || len(m.Entries) < minBytes || need < 0 {
		return AppendMessage(dst, m), false
	}
	dst, start := appendMessageHead(dst, m, flagCompressed)
	at := len(dst)
	dst = slices.Grow(dst, need)
	// s2.Encode writes in place when its dst has the capacity: the block
	// goes straight after the head, without a second buffer.
	block := s2.Encode(dst[at:at+need], m.Entries)
	if len(block) >= len(m.Entries) {
		return AppendMessage(dst[:start], m), false
	}
	return endFrame(dst[:at+len(block)], start), true
}

// MessageSize is the size of the frame AppendMessage writes for m, length
// prefix included: what a compressed Append would have cost uncompressed.
func MessageSize(m *Message) int {
	n := FrameHeaderSize + raftHeaderSize + 8*len(layouts[m.Type])
	switch m.Type {
	case MsgAppend:
		n += 4 + len(m.Entries)
	case MsgSnapshot:
		n += 4 + len(m.Meta) + len(m.Data)
	}
	return n
}

// decodeCompressedAppendTail inflates the S2 block after the entry count
// into m.inflated and then checks the records exactly as a plain Append's.
// Everything that bounds the allocation is checked from the block's header
// first: the inflated frame must fit in maxFrame, and the count must fit in
// the inflated length. The inflated length is a claim the S2 decoder then
// holds the block to (a block that inflates to anything else is corrupt),
// so a lying header costs at most one buffer of maxFrame per Message.
func decodeCompressedAppendTail(b []byte, off int, m *Message, maxFrame int) error {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	if len(b)-off < 4 {
		return errorf(ErrTruncated, off, "Append entry count")
	}
	count := binary.LittleEndian.Uint32(b[off:])
	off += 4
	block := b[off:]
	n, err := s2.DecodedLen(block)
	if err != nil {
		return errorf(ErrMalformed, off, "compressed Append: S2 block header: %v", err)
	}
	if n == 0 {
		return errorf(ErrMalformed, off, "compressed Append with no records")
	}
	// The plain frame's length field would count the type byte, the body up
	// to the records, and the records.
	if plain := 1 + uint64(off) + uint64(n); plain > uint64(maxFrame) {
		return errorf(ErrFrameTooLarge, off, "compressed Append inflates to a frame of %d bytes > max %d", plain, maxFrame)
	}
	if uint64(count)*EntryOverhead > uint64(n) {
		return errorf(ErrMalformed, off-4, "Append says %d entries, %d inflated bytes cannot hold them", count, n)
	}
	if cap(m.inflated) < n {
		m.inflated = make([]byte, 0, min(max(n, 2*cap(m.inflated)), maxFrame))
	}
	records, err := s2.Decode(m.inflated[:n], block)
	if err != nil || len(records) != n {
		return errorf(ErrMalformed, off, "compressed Append: S2 block of %d bytes does not inflate to the %d it claims: %v", len(block), n, err)
	}
	got, err := VerifyEntries(records, m.Index+1)
	if err != nil {
		we := err.(*Error)
		return errorf(we.Kind, off, "compressed Append, at offset %d of the inflated records: %s", we.Offset, we.Detail)
	}
	if uint32(got) != count {
		return errorf(ErrMalformed, off-4, "Append says %d entries, carries %d", count, got)
	}
	m.Entries, m.EntryCount, m.Compressed = records, got, true
	return nil
}
