package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/kraftdb/kraft/wire"
)

const (
	segmentSuffix = ".seg"
	// sectorBytes is the unit a torn write is assumed to tear at: a device
	// writes a 512-byte sector entirely or not at all.
	sectorBytes = 512
)

// segmentName is the file name of the segment whose first record has index
// first: 20 decimal digits so that names sort like indexes.
func segmentName(first uint64) string {
	return fmt.Sprintf("%020d%s", first, segmentSuffix)
}

func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	return first, err == nil
}

// segScan is what reading one segment found.
type segScan struct {
	offsets   []uint32 // start of each valid record
	lastIndex uint64   // index of the last valid record (0: none)
	lastTerm  uint64
	end       int64 // end of the last valid record
	// junkEnd > end: bytes [end, junkEnd) are a torn write to cut off.
	junkEnd int64
	// bad: the segment is corrupt at badOffset (a crash cannot explain it).
	bad       bool
	badOffset int64
	badDetail string
}

// scanSegment verifies every record of one segment mapping. expectFirst is
// the index the first record must carry (from the file name); prevTerm the
// term of the record before it. newest says whether this is the last
// segment, the only place where a torn write may legitimately be found.
// prior holds the sector checksums of a recycled segment's previous
// content (nil for a fresh, zero-filled one; see prior.go): past the data,
// its sectors may hold that content instead of zeros.
func scanSegment(m []byte, expectFirst, prevTerm uint64, newest bool, prior []uint64) segScan {
	var s segScan
	next, term := expectFirst, prevTerm
	off := 0
	for off < len(m) {
		if len(m)-off < 4 || binary.LittleEndian.Uint32(m[off:]) == 0 {
			break // end of data, unless written bytes follow (checked below)
		}
		e, n, err := wire.DecodeEntry(m[off:])
		if err != nil {
			s.end = int64(off)
			s.classifyBad(m, off, newest, prior, err.Error())
			return s
		}
		var detail string
		switch {
		case e.Index != next:
			detail = fmt.Sprintf("record has index %d, expected %d", e.Index, next)
		case e.Term < term:
			detail = fmt.Sprintf("record %d has term %d after term %d", e.Index, e.Term, term)
		}
		if detail != "" {
			s.end = int64(off)
			if prior == nil {
				s.setBad(off, detail)
			} else {
				// A valid record that does not follow on is the previous
				// life's (its index is below any this life writes) or
				// damage: the sectors decide.
				s.classifyBad(m, off, newest, prior, detail)
			}
			return s
		}
		if s.offsets == nil {
			s.offsets = make([]uint32, 0, offsetsCapacity(len(m), n))
		}
		s.offsets = append(s.offsets, uint32(off))
		s.lastIndex, s.lastTerm = e.Index, e.Term
		next, term = e.Index+1, e.Term
		off += n
	}
	s.end = int64(off)
	detail := "non-zero bytes after the end of data"
	if prior != nil {
		detail = "bytes that are neither zeros nor the segment's prior content after the end of data"
	}
	if !newest {
		if p := firstWritten(m, off, prior); p < len(m) {
			s.setBad(p, fmt.Sprintf("%s at offset %d", detail, off))
		}
		return s
	}
	s.classifyBad(m, off, true, prior, detail)
	return s
}

func (s *segScan) setBad(off int, detail string) {
	s.bad, s.badOffset, s.badDetail = true, int64(off), detail
}

// classifyBad decides what the bytes from off, where the valid records
// end, are: nothing (every piece unwritten: zeros, or a recycled segment's
// prior content), a torn write (cut off) or corruption (refuse). A torn
// write leaves an unwritten piece (the record's part of a sector the
// device never wrote) inside the record it tore, or a record that runs off
// the end of a file cut short; a flipped bit does neither, except when it
// clears the only set bit of a zero piece. That one case is ambiguous, and
// a crash is far likelier than bit rot in the last record, so it counts as
// torn. A record that one flipped bit elsewhere would make valid is
// corruption. Written bytes after the data of an older segment are always
// corruption.
func (s *segScan) classifyBad(m []byte, off int, newest bool, prior []uint64, detail string) {
	junkEnd := writtenEnd(m, off, prior)
	if junkEnd <= off {
		return // the end of data
	}
	if !newest {
		s.setBad(off, detail)
		return
	}
	if pos, ok := oneBitFromValid(m[off:]); ok && !inUnwrittenPiece(m, off, off+pos, prior) {
		s.setBad(off, detail+" (one bit from a valid record)")
		return
	}
	if !runsOffEnd(m, off) && !hasUnwrittenPiece(m, off, prior) {
		s.setBad(off, detail)
		return
	}
	s.junkEnd = int64(junkEnd)
}

// firstWritten returns the offset of the first byte at or after from that
// lies in a written piece (len(m) if none).
func firstWritten(m []byte, from int, prior []uint64) int {
	if prior == nil {
		if nz := firstNonZero(m[from:]); nz >= 0 {
			return from + nz
		}
		return len(m)
	}
	for p := from; p < len(m); {
		q := min((p/sectorBytes+1)*sectorBytes, len(m))
		if !unwrittenPiece(m, p, q, prior) {
			if nz := firstNonZero(m[p:q]); nz >= 0 {
				return p + nz
			}
			return p
		}
		p = q
	}
	return len(m)
}

// runsOffEnd reports whether the record claimed at off would extend past
// the end of the file: only a file cut short (never a bit flip of a
// well-formed record, see oneBitFromValid) produces that.
func runsOffEnd(m []byte, off int) bool {
	if len(m)-off < wire.EntryHeaderSize {
		return true
	}
	return int64(binary.LittleEndian.Uint32(m[off:])) > int64(len(m)-off)
}

// recordExtent is the byte range the record claimed at off covers: by its
// length field when that is plausible, else its header.
func recordExtent(m []byte, off int) (int, int) {
	end := off + wire.EntryHeaderSize
	if len(m)-off >= 4 {
		if size := int(binary.LittleEndian.Uint32(m[off:])); size >= wire.EntryOverhead && size <= len(m)-off {
			end = off + size
		}
	}
	return off, min(end, len(m))
}

// hasUnwrittenPiece reports whether the record claimed at off overlaps a
// sector in which its bytes read as never written: the mark of a sector
// the device never wrote.
func hasUnwrittenPiece(m []byte, off int, prior []uint64) bool {
	from, end := recordExtent(m, off)
	for p := from; p < end; {
		q := min((p/sectorBytes+1)*sectorBytes, end)
		if unwrittenPiece(m, p, q, prior) {
			return true
		}
		p = q
	}
	return false
}

// inUnwrittenPiece reports whether byte pos of the record claimed at off
// lies in a sector piece of that record that reads as never written.
func inUnwrittenPiece(m []byte, off, pos int, prior []uint64) bool {
	from, end := recordExtent(m, off)
	if pos < from || pos >= end {
		return false
	}
	p := max(from, pos/sectorBytes*sectorBytes)
	q := min((pos/sectorBytes+1)*sectorBytes, end)
	return unwrittenPiece(m, p, q, prior)
}

// oneBitFromValid reports whether b starts with a record that one flipped
// bit in its header or checksum would make valid, and the byte offset of
// that bit. A torn write cannot produce that (it would need a 64-bit hash
// collision) unless the bit lies in a piece the tear zeroed.
func oneBitFromValid(b []byte) (int, bool) {
	if len(b) < wire.EntryOverhead {
		return 0, false
	}
	if h, err := wire.ParseEntryHeader(b); err == nil {
		sumAt := h.Size - wire.EntryTrailerSize
		if x := xxhash.Sum64(b[:sumAt]) ^ binary.LittleEndian.Uint64(b[sumAt:]); bits.OnesCount64(x) == 1 {
			return sumAt + bits.TrailingZeros64(x)/8, true
		}
	}
	var hdr [wire.EntryHeaderSize]byte
	copy(hdr[:], b)
	for bit := 0; bit < 8*wire.EntryHeaderSize; bit++ {
		hdr[bit/8] ^= 1 << (bit % 8)
		size := int(binary.LittleEndian.Uint32(hdr[:]))
		if size >= wire.EntryOverhead && size <= len(b) {
			var d xxhash.Digest
			d.Reset()
			_, _ = d.Write(hdr[:])
			_, _ = d.Write(b[wire.EntryHeaderSize : size-wire.EntryTrailerSize])
			if d.Sum64() == binary.LittleEndian.Uint64(b[size-wire.EntryTrailerSize:]) {
				return bit / 8, true
			}
		}
		hdr[bit/8] ^= 1 << (bit % 8)
	}
	return 0, false
}

// offsetsCapacity guesses how many records a segment of segBytes holds
// from the size of one, so that the index grows once, not log2(n) times.
func offsetsCapacity(segBytes, recordBytes int) int {
	return segBytes/max(recordBytes, wire.EntryOverhead) + 1
}

// firstNonZero returns the offset of the first non-zero byte of b, or -1.
func firstNonZero(b []byte) int {
	for base := 0; base < len(b); base += zeroChunkBytes {
		chunk := b[base:min(base+zeroChunkBytes, len(b))]
		if bytes.Equal(chunk, zeroChunk[:len(chunk)]) {
			continue
		}
		for i, c := range chunk {
			if c != 0 {
				return base + i
			}
		}
	}
	return -1
}
