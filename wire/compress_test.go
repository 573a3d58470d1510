package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/klauspost/compress/s2"
)

// jsonRecords builds n consecutive records from index first whose payloads
// look like a document store's: JSON with repeated keys and similar values,
// padded or cut to size bytes.
func jsonRecords(first uint64, n, size int) []byte {
	var b []byte
	r := rand.New(rand.NewPCG(1, uint64(size)))
	for i := range n {
		var p []byte
		for len(p) < size {
			id := r.IntN(100000)
			p = fmt.Appendf(p, `{"user_id":%d,"name":"user-%d","email":"user%d@example.com","balance":%d.%02d,"active":true,"tags":["kraft","replication"],"updated_at":"2026-11-26T11:%02d:%02dZ"}`,
				id, id, id, r.IntN(10000), r.IntN(100), r.IntN(60), r.IntN(60))
		}
		b = AppendEntry(b, EntryNormal, first+uint64(i), 7, p[:size])
	}
	return b
}

// randomRecords builds n records of incompressible payloads.
func randomRecords(first uint64, n, size int) []byte {
	var b []byte
	r := rand.New(rand.NewPCG(2, uint64(size)))
	p := make([]byte, size)
	for i := range n {
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		b = AppendEntry(b, EntryNormal, first+uint64(i), 7, p)
	}
	return b
}

func appendOf(records []byte, n int) Message {
	return Message{Type: MsgAppend, From: 1, To: 2, Term: 9, Index: 1000, LogTerm: 8, Commit: 990,
		Entries: records, EntryCount: n}
}

func TestCompressedAppendRoundTrip(t *testing.T) {
	for _, n := range []int{1, 64} {
		want := appendOf(jsonRecords(1001, n, 4096), n)
		frame, ok := AppendMessageCompressed(nil, &want, 0)
		plain := AppendMessage(nil, &want)
		if !ok || len(frame) >= len(plain) {
			t.Fatalf("%d records: compressed %v, %d bytes vs %d plain", n, ok, len(frame), len(plain))
		}
		if MessageSize(&want) != len(plain) {
			t.Fatalf("MessageSize %d, plain frame %d", MessageSize(&want), len(plain))
		}
		var got Message
		if err := DecodeMessage(decodeFrame(t, frame), &got); err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		if !got.Compressed {
			t.Fatal("decoded compressed Append without Compressed set")
		}
		got.Compressed, got.inflated = false, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
		if again := AppendMessage(nil, &got); !bytes.Equal(again, plain) {
			t.Fatal("a decoded compressed Append re-encodes to a different plain frame")
		}
	}
}

// The plain form is chosen, byte for byte as AppendMessage, whenever
// compression does not apply or does not pay.
func TestCompressOnlyWhenItPays(t *testing.T) {
	cases := []struct {
		name     string
		m        Message
		minBytes int
	}{
		{"below the default threshold", appendOf(jsonRecords(1001, 3, 1000), 3), 0},
		{"below an explicit threshold", appendOf(jsonRecords(1001, 64, 128), 64), 64 << 10},
		{"incompressible records", appendOf(randomRecords(1001, 64, 1024), 64), 0},
		{"empty append", appendOf(nil, 0), 0},
		{"not an append", Message{Type: MsgSnapshot, From: 1, To: 2, Size: 8192, Data: make([]byte, 8192)}, 0},
	}
	for _, c := range cases {
		frame, ok := AppendMessageCompressed([]byte("prefix"), &c.m, c.minBytes)
		if ok || !bytes.Equal(frame, AppendMessage([]byte("prefix"), &c.m)) {
			t.Errorf("%s: compressed %v, or not the plain frame", c.name, ok)
		}
	}
	m := appendOf(jsonRecords(1001, 3, 1000), 3)
	if _, ok := AppendMessageCompressed(nil, &m, len(m.Entries)); !ok {
		t.Error("a records block of exactly minBytes was not compressed")
	}
}

// compressedBody builds the body of a compressed Append carrying block
// (an S2 block, or anything a test wants to lie with) after count.
func compressedBody(m *Message, count uint32, block []byte) []byte {
	b, _ := appendMessageHead(nil, m, flagCompressed)
	b = b[FrameHeaderSize : len(b)-4]
	b = binary.LittleEndian.AppendUint32(b, count)
	return append(b, block...)
}

// zeroRecords: n records with zero payloads of size bytes, a highly
// compressible block.
func zeroRecords(first uint64, n, size int) []byte {
	var b []byte
	p := make([]byte, size)
	for i := range n {
		b = AppendEntry(b, EntryNormal, first+uint64(i), 7, p)
	}
	return b
}

func TestMalformedCompressedAppends(t *testing.T) {
	m := appendOf(jsonRecords(1001, 8, 1024), 8)
	good := s2.Encode(nil, m.Entries)
	lie := func(n int) []byte { // the block with its inflated length replaced
		_, hl := binary.Uvarint(good)
		return append(binary.AppendUvarint(nil, uint64(n)), good[hl:]...)
	}
	reencode := func(edit func(records []byte) []byte) []byte {
		return s2.Encode(nil, edit(bytes.Clone(m.Entries)))
	}
	bomb := zeroRecords(1001, 2000, 4096) // 8 MiB of records, a few hundred bytes compressed
	cases := []struct {
		name     string
		typ      MsgType
		body     []byte
		maxFrame int
		kind     error
	}{
		{"compressed flag on a heartbeat", MsgHeartbeat, func() []byte {
			h := heartbeat()
			b, _ := appendMessageHead(nil, &h, flagCompressed)
			return b[FrameHeaderSize:]
		}(), 0, ErrMalformed},
		{"missing entry count", MsgAppend, compressedBody(&m, 8, good)[:raftHeaderSize+24+2], 0, ErrTruncated},
		{"no block", MsgAppend, compressedBody(&m, 8, nil), 0, ErrMalformed},
		{"bad block header", MsgAppend, compressedBody(&m, 8, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), 0, ErrMalformed},
		{"empty block", MsgAppend, compressedBody(&m, 0, s2.Encode(nil, nil)), 0, ErrMalformed},
		{"inflated length past max frame", MsgAppend, compressedBody(&m, 8, good), len(m.Entries), ErrFrameTooLarge},
		{"inflated length claims 4 GiB", MsgAppend, compressedBody(&m, 8, lie(1<<32-1)), 0, ErrFrameTooLarge},
		{"bomb: tiny frame inflating past max", MsgAppend, compressedBody(&m, 2000, s2.Encode(nil, bomb)), 1 << 20, ErrFrameTooLarge},
		{"count too large for inflated length", MsgAppend, compressedBody(&m, 1<<30, good), 0, ErrMalformed},
		{"inflated length lies long", MsgAppend, compressedBody(&m, 8, lie(len(m.Entries)+100)), 0, ErrMalformed},
		{"inflated length lies short", MsgAppend, compressedBody(&m, 8, lie(len(m.Entries)-100)), 0, ErrMalformed},
		{"block truncated", MsgAppend, compressedBody(&m, 8, good[:len(good)-5]), 0, ErrMalformed},
		{"count says fewer than carried", MsgAppend, compressedBody(&m, 7, good), 0, ErrMalformed},
		{"bad record checksum", MsgAppend, compressedBody(&m, 8, reencode(func(r []byte) []byte {
			r[EntryHeaderSize] ^= 1
			return r
		})), 0, ErrChecksum},
		{"records not consecutive from prev+1", MsgAppend, func() []byte {
			m2 := m
			m2.Index = 50
			return compressedBody(&m2, 8, good)
		}(), 0, ErrMalformed},
		{"record truncated", MsgAppend, compressedBody(&m, 8, reencode(func(r []byte) []byte { return r[:len(r)-3] })), 0, ErrTruncated},
	}
	for _, c := range cases {
		var got Message
		err := DecodeMessageLimit(Frame{Type: c.typ, Body: c.body}, &got, c.maxFrame)
		var we *Error
		if !errors.Is(err, c.kind) || !errors.As(err, &we) {
			t.Errorf("%s: err = %v, want *Error of kind %v", c.name, err, c.kind)
		}
		if errors.Is(c.kind, ErrFrameTooLarge) && cap(got.inflated) != 0 {
			t.Errorf("%s: allocated %d bytes before refusing", c.name, cap(got.inflated))
		}
		if cap(got.inflated) > len(m.Entries)+100 {
			t.Errorf("%s: inflate buffer grew to %d", c.name, cap(got.inflated))
		}
	}
	// The bomb inflates fine under a limit that admits it: the refusal
	// above is the limit's doing, not the block's.
	var got Message
	if err := DecodeMessage(decodeFrame(t, mustCompress(t, appendOf(bomb, 2000))), &got); err != nil || got.EntryCount != 2000 {
		t.Fatalf("8 MiB of records under the default limit: %v", err)
	}
}

func mustCompress(t testing.TB, m Message) []byte {
	t.Helper()
	frame, ok := AppendMessageCompressed(nil, &m, 0)
	if !ok {
		t.Fatal("not compressed")
	}
	return frame
}

// A connection decodes into one Message: once its inflate buffer has grown,
// compressed Appends cost no allocation to encode or decode, like plain ones.
func TestCompressedAppendDoesNotAllocate(t *testing.T) {
	m := appendOf(jsonRecords(1001, 64, 1024), 64)
	frame := mustCompress(t, m)
	buf := make([]byte, 0, MessageSize(&m)+s2.MaxEncodedLen(len(m.Entries)))
	var got Message
	allocs := testing.AllocsPerRun(50, func() {
		var ok bool
		if buf, ok = AppendMessageCompressed(buf[:0], &m, 0); !ok {
			panic("not compressed")
		}
		f, _, _ := ParseFrame(frame, 0)
		if err := DecodeMessage(f, &got); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
	// A plain Append decoded into the same Message aliases its frame again.
	plain := AppendMessage(nil, &m)
	if err := DecodeMessage(decodeFrame(t, plain), &got); err != nil || got.Compressed || &got.Entries[0] != &plain[len(plain)-len(m.Entries)] {
		t.Fatalf("plain Append after a compressed one: err %v, compressed %v", err, got.Compressed)
	}
}

func seedCompressed(f *testing.F) {
	for _, m := range []Message{appendOf(jsonRecords(11, 4, 1200), 4), appendOf(zeroRecords(11, 200, 64), 200)} {
		frame := mustCompress(f, m)
		f.Add(frame[FrameHeaderSize:])
	}
	m := appendOf(nil, 0)
	f.Add(compressedBody(&m, 1, []byte{0xff, 0xff, 0xff, 0x0f}))
}

// FuzzDecodeCompressedAppend feeds arbitrary compressed-Append bodies to the
// decoder under a small frame limit. Nothing may panic or inflate past the
// limit; whatever decodes must mean the same as its plain form, and
// compressing that again must decode to the same message.
func FuzzDecodeCompressedAppend(f *testing.F) {
	seedCompressed(f)
	const maxFrame = 1 << 20
	check := func(t *testing.T, body []byte) {
		var m Message
		if DecodeMessageLimit(Frame{Type: MsgAppend, Body: body}, &m, maxFrame) != nil {
			if cap(m.inflated) > maxFrame {
				t.Fatalf("inflate buffer of %d bytes under a %d limit", cap(m.inflated), maxFrame)
			}
			return
		}
		if !m.Compressed && body[24]&flagCompressed != 0 {
			t.Fatal("compressed body decoded without Compressed set")
		}
		want := m
		want.Compressed, want.inflated = false, nil
		want.Entries = bytes.Clone(m.Entries)
		for _, frame := range [][]byte{AppendMessage(nil, &want), func() []byte { b, _ := AppendMessageCompressed(nil, &want, 1); return b }()} {
			var again Message
			if err := DecodeMessageLimit(decodeFrame(t, frame), &again, maxFrame); err != nil {
				t.Fatalf("re-encoded Append does not decode: %v", err)
			}
			again.Compressed, again.inflated = false, nil
			if !reflect.DeepEqual(normalize(again), normalize(want)) {
				t.Fatalf("re-encoded Append differs:\n got %+v\nwant %+v", again, want)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check(t, body)
		// Fix the records' checksums behind the compression, so the fuzzer
		// also reaches the record checks.
		fixed := fixCompressedChecksums(body)
		if fixed != nil {
			check(t, fixed)
		}
	})
}

// fixCompressedChecksums returns body with its S2 block inflated, the
// records' checksums rewritten, and deflated again; nil if it does not
// inflate within a small limit.
func fixCompressedChecksums(body []byte) []byte {
	at := raftHeaderSize + 8*len(layouts[MsgAppend]) + 4
	if len(body) < at {
		return nil
	}
	if n, err := s2.DecodedLen(body[at:]); err != nil || n > 1<<20 {
		return nil
	}
	records, err := s2.Decode(nil, body[at:])
	if err != nil {
		return nil
	}
	fixRecordChecksums(records)
	return append(bytes.Clone(body[:at]), s2.Encode(nil, records)...)
}

// Compression benchmarks: a 64-record Append of JSON-like (compressible)
// and random payloads of 128 B and 1 KiB. Bytes/s is of the plain frame;
// ratio is plain frame bytes over wire frame bytes.
var compressCases = []struct {
	name    string
	records func(first uint64, n, size int) []byte
	size    int
}{
	{"json/128B", jsonRecords, 128},
	{"json/1KiB", jsonRecords, 1024},
	{"random/128B", randomRecords, 128},
	{"random/1KiB", randomRecords, 1024},
}

func BenchmarkCompressEncode(b *testing.B) {
	for _, c := range compressCases {
		b.Run(c.name, func(b *testing.B) {
			m := appendOf(c.records(1001, 64, c.size), 64)
			buf := make([]byte, 0, MessageSize(&m)+s2.MaxEncodedLen(len(m.Entries)))
			b.SetBytes(int64(MessageSize(&m)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = AppendMessageCompressed(buf[:0], &m, 0)
			}
			b.ReportMetric(float64(MessageSize(&m))/float64(len(buf)), "ratio")
		})
	}
}

// BenchmarkCompressDecode includes inflating and verifying every record;
// BenchmarkCompressDecodePlain is the same Append sent plain, for reference.
func BenchmarkCompressDecode(b *testing.B) {
	for _, c := range compressCases {
		b.Run(c.name, func(b *testing.B) {
			m := appendOf(c.records(1001, 64, c.size), 64)
			frame, _ := AppendMessageCompressed(nil, &m, 0)
			benchDecode(b, frame, MessageSize(&m))
		})
	}
}

func BenchmarkCompressDecodePlain(b *testing.B) {
	for _, c := range compressCases {
		b.Run(c.name, func(b *testing.B) {
			m := appendOf(c.records(1001, 64, c.size), 64)
			benchDecode(b, AppendMessage(nil, &m), MessageSize(&m))
		})
	}
}

func benchDecode(b *testing.B, frame []byte, plainSize int) {
	var m Message
	b.SetBytes(int64(plainSize))
	b.ReportAllocs()
	for b.Loop() {
		f, _, err := ParseFrame(frame, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := DecodeMessage(f, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(plainSize)/float64(len(frame)), "ratio")
}
