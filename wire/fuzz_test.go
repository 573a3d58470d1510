package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// fixRecordChecksums rewrites the checksum of every record in a run whose
// length field fits, so fuzzed records are not all rejected at the checksum
// and the fuzzer explores what lies behind it.
func fixRecordChecksums(b []byte) {
	for len(b) >= EntryHeaderSize {
		size := int(binary.LittleEndian.Uint32(b))
		if size < EntryOverhead || size > len(b) {
			return
		}
		binary.LittleEndian.PutUint64(b[size-EntryTrailerSize:], xxhash.Sum64(b[:size-EntryTrailerSize]))
		b = b[size:]
	}
}

// fixFrameChecksums does the same for the records inside every Append frame
// of a stream of frames.
func fixFrameChecksums(b []byte) {
	recordsAt := FrameHeaderSize + raftHeaderSize + 8*len(layouts[MsgAppend]) + 4
	for len(b) >= FrameHeaderSize {
		size, err := FrameSize(b, 1<<20)
		if err != nil || size > len(b) {
			return
		}
		if MsgType(b[4]) == MsgAppend && size > recordsAt && b[FrameHeaderSize+24]&flagCompressed == 0 {
			fixRecordChecksums(b[recordsAt:size])
		}
		b = b[size:]
	}
}

func seedFrames(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendMessage(nil, &m))
	}
	f.Add(AppendClientRequest(nil, &ClientRequest{ClientID: 1, Seq: 1, Op: OpCAS, Key: []byte("k"), Value: []byte("v"), Expect: []byte("e")}))
	f.Add(AppendClientResponse(nil, &ClientResponse{Seq: 1, Status: StatusNotLeader, LeaderAddr: []byte("h:1"), Error: []byte("x")}))
	big := appendOf(jsonRecords(11, 4, 1200), 4)
	compressed, _ := AppendMessageCompressed(nil, &big, 0)
	f.Add(compressed)
	f.Add(AppendErrorFrame(nil, ErrCodeBadFrame, "bad"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
}

// FuzzDecodeFrame feeds a byte stream through the frame reader and every
// decoder, as a connection handler would. Nothing may panic, and whatever
// decodes must re-encode to exactly the bytes it came from (one encoding
// per message: no field is silently dropped or defaulted).
func FuzzDecodeFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.Clone(data)
		fixFrameChecksums(data)
		for len(data) > 0 {
			fr, n, err := ParseFrame(data, 1<<20)
			if err != nil || n == 0 {
				return
			}
			raw := data[:n]
			data = data[n:]
			var again []byte
			switch {
			case fr.Type.IsRaft():
				var m Message
				if DecodeMessage(fr, &m) != nil {
					continue
				}
				again = AppendMessage(nil, &m)
				if m.Compressed {
					// S2 has many encodings of one input: what must hold
					// is that the plain form means the same message.
					var plain Message
					if err := DecodeMessage(decodeFrame(t, again), &plain); err != nil || !bytes.Equal(plain.Entries, m.Entries) || plain.EntryCount != m.EntryCount {
						t.Fatalf("compressed Append's plain form differs (%v)", err)
					}
					continue
				}
			case fr.Type == MsgClientRequest:
				var r ClientRequest
				if DecodeClientRequest(fr.Body, &r) != nil {
					continue
				}
				again = AppendClientRequest(nil, &r)
			case fr.Type == MsgClientResponse:
				var r ClientResponse
				if DecodeClientResponse(fr.Body, &r) != nil {
					continue
				}
				again = AppendClientResponse(nil, &r)
			case fr.Type == MsgError:
				code, text, err := DecodeErrorFrame(fr.Body)
				if err != nil {
					continue
				}
				again = AppendErrorFrame(nil, code, string(text))
			default:
				continue
			}
			if !bytes.Equal(again, raw) {
				t.Fatalf("%v decoded but re-encodes differently:\n in  %x\n out %x", fr.Type, raw, again)
			}
		}
	})
}

// FuzzDecodeEntry drives the record reader the WAL and AppendEntries share.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(AppendEntry(nil, EntryNormal, 1, 1, []byte("hello")))
	f.Add(AppendEntry(nil, EntryNoop, 1<<40, 7, nil))
	f.Add(entries(3, 3, 8))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.Clone(data)
		fixRecordChecksums(data)
		off := 0
		for off < len(data) {
			e, n, err := DecodeEntry(data[off:])
			if err != nil {
				return
			}
			if n < EntryOverhead || off+n > len(data) {
				t.Fatalf("record size %d at %d of %d", n, off, len(data))
			}
			if again := AppendEntry(nil, e.Type, e.Index, e.Term, e.Payload); !bytes.Equal(again, data[off:off+n]) {
				t.Fatalf("entry re-encodes differently")
			}
			off += n
		}
	})
}

// FuzzDecodeHello checks the first bytes any connection handler reads.
func FuzzDecodeHello(f *testing.F) {
	f.Add(AppendHello(nil, Hello{Role: RolePeer, ClusterID: 1, NodeID: 2, PeerAddr: "h:1", ClientAddr: "h:2", AdminAddr: "h:3"}))
	f.Add(AppendHello(nil, Hello{Role: RoleClient, ClusterID: 9}))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n12345"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, lenErr := HelloLen(data)
		h, err := DecodeHello(data)
		if err != nil {
			return
		}
		if lenErr != nil || n == 0 || n > len(data) {
			t.Fatalf("DecodeHello accepted what HelloLen says is %d bytes (%v)", n, lenErr)
		}
		if again := AppendHello(nil, h); !bytes.Equal(again, data[:n]) {
			t.Fatalf("hello re-encodes differently")
		}
	})
}
