package wal

import (
	"encoding/binary"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/kraftdb/kraft/wire"
)

// fixChecksums walks b as a run of records and rewrites each record's
// checksum, so that the fuzzer reaches the index, term and tail logic
// instead of stopping at the first checksum. A trailing 0xff byte in the
// input disables the fix-up for one record (so bad checksums stay covered).
func fixChecksums(b []byte) {
	for off := 0; len(b)-off >= wire.EntryOverhead; {
		size := int(binary.LittleEndian.Uint32(b[off:]))
		if size < wire.EntryOverhead || size > len(b)-off {
			return
		}
		sumAt := off + size - wire.EntryTrailerSize
		if b[sumAt] != 0xff {
			binary.LittleEndian.PutUint64(b[sumAt:], xxhash.Sum64(b[off:sumAt]))
		}
		off += size
	}
}

// FuzzSegmentReader feeds arbitrary segment contents to the record reader
// (with checksums recomputed) and checks what it accepts: every accepted
// record verifies, indexes run on from the file name, and the reader
// either reaches a clean zero tail, flags a torn tail to cut, or reports
// corruption at an offset inside the segment. It must never panic.
func FuzzSegmentReader(f *testing.F) {
	seed := wire.AppendEntry(nil, wire.EntryNormal, 7, 1, []byte("hello"))
	seed = wire.AppendEntry(seed, wire.EntryNoop, 8, 2, nil)
	f.Add(seed, true)
	f.Add(append(append([]byte(nil), seed...), make([]byte, 600)...), false)
	f.Add(append(append([]byte(nil), seed[:40]...), 0, 0, 0, 0, 1), true)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, newest bool) {
		if len(data) > 1<<16 {
			return
		}
		m := append([]byte(nil), data...)
		fixChecksums(m)
		s := scanSegment(m, 7, 1, newest, nil)
		if s.end < 0 || s.end > int64(len(m)) {
			t.Fatalf("end %d outside [0, %d]", s.end, len(m))
		}
		n, err := wire.VerifyEntries(m[:s.end], 7)
		if err != nil || n != len(s.offsets) {
			t.Fatalf("accepted bytes do not verify: %d records, %v (reader counted %d)", n, err, len(s.offsets))
		}
		for k, o := range s.offsets {
			h, err := wire.ParseEntryHeader(m[o:])
			if err != nil || h.Index != 7+uint64(k) {
				t.Fatalf("record %d at %d: %+v %v", k, o, h, err)
			}
		}
		checkScanEnd(t, m, s, newest, nil)
	})
}

// FuzzRecycledSegmentReader is FuzzSegmentReader on a recycled segment:
// the new bytes (records with checksums recomputed) lie over a previous
// life's bytes, whose sector checksums the reader gets as prior content.
// Besides what the plain reader promises, nothing it leaves after the data
// (or after a torn tail it cuts) may be written bytes: only zeros or
// sectors of the prior content.
func FuzzRecycledSegmentReader(f *testing.F) {
	rec := wire.AppendEntry(nil, wire.EntryNormal, 7, 1, []byte("hello"))
	rec = wire.AppendEntry(rec, wire.EntryNoop, 8, 2, nil)
	old := wire.AppendEntry(nil, wire.EntryNormal, 3, 1, make([]byte, 700))
	old = wire.AppendEntry(old, wire.EntryNormal, 4, 1, make([]byte, 900))
	f.Add(rec, old, true)
	f.Add(rec, old, false)
	f.Add(rec[:40], old, true)
	f.Add([]byte{}, old, true)
	f.Add(rec, []byte{}, true)
	f.Fuzz(func(t *testing.T, data, old []byte, newest bool) {
		if len(data) > 1<<15 || len(old) > 1<<15 {
			return
		}
		m := make([]byte, max(len(data), len(old), 1))
		copy(m, old)
		prior := sectorSums(m)
		d := append([]byte(nil), data...)
		fixChecksums(d)
		copy(m, d)
		s := scanSegment(m, 7, 1, newest, prior)
		if s.end < 0 || s.end > int64(len(m)) {
			t.Fatalf("end %d outside [0, %d]", s.end, len(m))
		}
		n, err := wire.VerifyEntries(m[:s.end], 7)
		if err != nil || n != len(s.offsets) {
			t.Fatalf("accepted bytes do not verify: %d records, %v (reader counted %d)", n, err, len(s.offsets))
		}
		checkScanEnd(t, m, s, newest, prior)
	})
}

// checkScanEnd checks how a scan of m ended: corruption inside the
// segment, a torn tail only in the newest segment with nothing written
// after it, or a clean end with nothing written after it ("written": not
// zeros, nor a sector of the prior content when prior is given).
func checkScanEnd(t *testing.T, m []byte, s segScan, newest bool, prior []uint64) {
	t.Helper()
	switch {
	case s.bad:
		if s.badOffset < s.end || s.badOffset >= int64(len(m)) {
			t.Fatalf("corruption offset %d outside [%d, %d)", s.badOffset, s.end, len(m))
		}
	case s.junkEnd > 0:
		if !newest || s.junkEnd <= s.end || s.junkEnd > int64(len(m)) {
			t.Fatalf("torn tail [%d, %d) in a segment of %d bytes (newest %v)", s.end, s.junkEnd, len(m), newest)
		}
		if e := writtenEnd(m, int(s.junkEnd), prior); e != int(s.junkEnd) {
			t.Fatalf("written bytes up to %d after the torn tail [%d, %d)", e, s.end, s.junkEnd)
		}
	default:
		if e := writtenEnd(m, int(s.end), prior); e != int(s.end) {
			t.Fatalf("clean end at %d with written bytes up to %d after it", s.end, e)
		}
	}
}
