package wire

import (
	"testing"
)

// The reference frame: an AppendEntries with 64 entries of 128 B.
func appendFrame64x128() (Message, []byte) {
	m := Message{Type: MsgAppend, From: 1, To: 2, Term: 9, Index: 1000, LogTerm: 9, Commit: 990,
		Entries: entries(1001, 64, 128), EntryCount: 64}
	return m, AppendMessage(nil, &m)
}

func BenchmarkEncodeAppend64x128(b *testing.B) {
	m, frame := appendFrame64x128()
	buf := make([]byte, 0, len(frame))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

// Head only: what a sender writes when it writev's the records from the WAL.
func BenchmarkEncodeAppendHead64x128(b *testing.B) {
	m, frame := appendFrame64x128()
	buf := make([]byte, 0, 128)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessageHead(buf[:0], &m)
	}
}

// Decode includes verifying all 64 checksums and index continuity.
func BenchmarkDecodeAppend64x128(b *testing.B) {
	_, frame := appendFrame64x128()
	var m Message
	b.SetBytes(int64(len(frame)))
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
}

func BenchmarkEncodeEntry128(b *testing.B) {
	payload := make([]byte, 128)
	buf := make([]byte, 0, EntrySize(128))
	b.SetBytes(int64(EntrySize(128)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEntry(buf[:0], EntryNormal, 1, 1, payload)
	}
}

func heartbeat() Message {
	return Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 9, Commit: 12345, Context: 77}
}

func BenchmarkEncodeHeartbeat(b *testing.B) {
	m := heartbeat()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

func BenchmarkDecodeHeartbeat(b *testing.B) {
	m := heartbeat()
	frame := AppendMessage(nil, &m)
	b.ReportAllocs()
	for b.Loop() {
		f, _, _ := ParseFrame(frame, 0)
		if err := DecodeMessage(f, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func clientRequest() ClientRequest {
	return ClientRequest{ClientID: 42, Seq: 7, Op: OpPut, Key: []byte("user:12345678"), Value: make([]byte, 128)}
}

func BenchmarkEncodeClientRequest(b *testing.B) {
	r := clientRequest()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendClientRequest(buf[:0], &r)
	}
}

func BenchmarkDecodeClientRequest(b *testing.B) {
	r := clientRequest()
	frame := AppendClientRequest(nil, &r)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		f, _, _ := ParseFrame(frame, 0)
		if err := DecodeClientRequest(f.Body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeClientResponse(b *testing.B) {
	r := ClientResponse{Seq: 7, Status: StatusOK, Index: 100, Term: 3, Value: make([]byte, 128)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendClientResponse(buf[:0], &r)
	}
}

func BenchmarkDecodeClientResponse(b *testing.B) {
	r := ClientResponse{Seq: 7, Status: StatusOK, Index: 100, Term: 3, Value: make([]byte, 128)}
	frame := AppendClientResponse(nil, &r)
	b.ReportAllocs()
	for b.Loop() {
		f, _, _ := ParseFrame(frame, 0)
		if err := DecodeClientResponse(f.Body, &r); err != nil {
			b.Fatal(err)
		}
	}
}
