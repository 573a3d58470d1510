package sm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/kraftdb/kraft/wire"
)

// KV snapshot stream (all integers little-endian):
//
//	header   magic "KVS1" u32 | applied u64 | nowNano u64 | nextSweepNano u64 |
//	         keys u64 | sessions u64
//	keys     (sorted) keyLen u32 | valueLen u32 | key | value
//	sessions (sorted by client ID) clientID u64 | lastActiveNano u64 |
//	         forgottenBelow u64 | responses u32 |
//	         (sorted by seq) seq u64 | status u8 | valueLen u32 | value
//	trailer  xxhash64 of every byte before it
//
// Sorting makes snapshots of equal states byte-identical on every replica.
const kvSnapshotMagic uint32 = 'K' | 'V'<<8 | 'S'<<16 | '1'<<24

// ErrSnapshotCorrupt is wrapped by every Restore failure caused by the
// snapshot's bytes (as opposed to the reader's I/O errors).
var ErrSnapshotCorrupt = errors.New("kraft/sm: corrupt KV snapshot")

type snapSession struct {
	lastActiveNano int64
	forgottenBelow uint64
	responses      map[uint64]response
}

type kvSnapshot struct {
	applied       uint64
	nowNano       int64
	nextSweepNano int64
	data          map[string][]byte
	sessions      map[uint64]snapSession
}

func (s *kvSnapshot) Release() { s.data, s.sessions = nil, nil }

// hashWriter checksums everything written through it.
type hashWriter struct {
	w      io.Writer
	digest *xxhash.Digest
	n      int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	h.digest.Write(p)
	n, err := h.w.Write(p)
	h.n += int64(n)
	return n, err
}

// WriteTo streams the snapshot. It runs without any lock on the KV.
func (s *kvSnapshot) WriteTo(w io.Writer) (int64, error) {
	hw := &hashWriter{w: w, digest: xxhash.New()}
	bw := bufio.NewWriterSize(hw, 256<<10)
	var scratch [64]byte
	put := func(b []byte) { bw.Write(b) } // bufio keeps the first error; checked at Flush
	le := binary.LittleEndian

	h := le.AppendUint32(scratch[:0], kvSnapshotMagic)
	h = le.AppendUint64(h, s.applied)
	h = le.AppendUint64(h, uint64(s.nowNano))
	h = le.AppendUint64(h, uint64(s.nextSweepNano))
	h = le.AppendUint64(h, uint64(len(s.data)))
	h = le.AppendUint64(h, uint64(len(s.sessions)))
	put(h)
	for _, k := range sortedKeys(s.data) {
		v := s.data[k]
		put(le.AppendUint32(le.AppendUint32(scratch[:0], uint32(len(k))), uint32(len(v))))
		bw.WriteString(k)
		put(v)
	}
	for _, id := range sortedKeys(s.sessions) {
		ss := s.sessions[id]
		b := le.AppendUint64(scratch[:0], id)
		b = le.AppendUint64(b, uint64(ss.lastActiveNano))
		b = le.AppendUint64(b, ss.forgottenBelow)
		put(le.AppendUint32(b, uint32(len(ss.responses))))
		for _, seq := range sortedKeys(ss.responses) {
			r := ss.responses[seq]
			b := le.AppendUint64(scratch[:0], seq)
			b = append(b, byte(r.status))
			put(le.AppendUint32(b, uint32(len(r.value))))
			put(r.value)
		}
	}
	if err := bw.Flush(); err != nil {
		return hw.n, fmt.Errorf("kraft/sm: writing KV snapshot: %w", err)
	}
	if _, err := w.Write(le.AppendUint64(scratch[:0], hw.digest.Sum64())); err != nil {
		return hw.n, fmt.Errorf("kraft/sm: writing KV snapshot: %w", err)
	}
	return hw.n + 8, nil
}

// snapReader decodes a snapshot stream while checksumming it. The first
// error sticks; later reads return zero values.
type snapReader struct {
	r      *bufio.Reader
	digest *xxhash.Digest
	err    error
	buf    [8]byte
}

func (sr *snapReader) fail(err error) {
	if sr.err == nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: stream ends early", ErrSnapshotCorrupt)
		}
		sr.err = err
	}
}

func (sr *snapReader) full(p []byte) {
	if sr.err != nil {
		return
	}
	if _, err := io.ReadFull(sr.r, p); err != nil {
		sr.fail(err)
		return
	}
	sr.digest.Write(p)
}

func (sr *snapReader) u64() uint64 {
	sr.full(sr.buf[:8])
	return binary.LittleEndian.Uint64(sr.buf[:8])
}
func (sr *snapReader) u32() uint32 {
	sr.full(sr.buf[:4])
	return binary.LittleEndian.Uint32(sr.buf[:4])
}
func (sr *snapReader) u8() uint8 { sr.full(sr.buf[:1]); return sr.buf[0] }

// bytes reads n bytes. Large lengths are read incrementally, so a corrupt
// length field cannot make Restore allocate more than the stream holds.
func (sr *snapReader) bytes(n uint32) []byte {
	if sr.err != nil {
		return nil
	}
	if n <= 64<<10 {
		p := make([]byte, n)
		sr.full(p)
		return p
	}
	var b bytes.Buffer
	if _, err := io.CopyN(&b, sr.r, int64(n)); err != nil {
		sr.fail(err)
		return nil
	}
	sr.digest.Write(b.Bytes())
	return b.Bytes()
}

// Restore replaces the store's state with a snapshot's. The whole stream is
// decoded and its checksum verified before anything is replaced, so a
// corrupt or truncated snapshot leaves the store as it was.
func (kv *KV) Restore(r io.Reader) error {
	sr := &snapReader{r: bufio.NewReaderSize(r, 256<<10), digest: xxhash.New()}
	if m := sr.u32(); sr.err == nil && m != kvSnapshotMagic {
		return fmt.Errorf("%w: magic %#08x, want %#08x", ErrSnapshotCorrupt, m, kvSnapshotMagic)
	}
	applied, nowNano, nextSweep := sr.u64(), int64(sr.u64()), int64(sr.u64())
	nKeys, nSessions := sr.u64(), sr.u64()
	// Counts come from the stream: never trust them for preallocation.
	data := make(map[string][]byte, min(nKeys, 1<<16))
	for i := uint64(0); i < nKeys && sr.err == nil; i++ {
		kl, vl := sr.u32(), sr.u32()
		k, v := sr.bytes(kl), sr.bytes(vl)
		data[string(k)] = v
	}
	sessions := make(map[uint64]*session, min(nSessions, 1<<16))
	for i := uint64(0); i < nSessions && sr.err == nil; i++ {
		id := sr.u64()
		s := &session{lastActiveNano: int64(sr.u64()), forgottenBelow: sr.u64(), responses: make(map[uint64]response)}
		nResp := sr.u32()
		for j := uint32(0); j < nResp && sr.err == nil; j++ {
			seq, status := sr.u64(), wire.Status(sr.u8())
			s.responses[seq] = response{status: status, value: sr.bytes(sr.u32())}
		}
		sessions[id] = s
	}
	if sr.err != nil {
		return sr.err
	}
	want := sr.digest.Sum64()
	var sum [8]byte
	if _, err := io.ReadFull(sr.r, sum[:]); err != nil {
		return fmt.Errorf("%w: missing checksum", ErrSnapshotCorrupt)
	}
	if got := binary.LittleEndian.Uint64(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %016x, computed %016x", ErrSnapshotCorrupt, got, want)
	}
	if n, _ := sr.r.Read(sum[:1]); n != 0 {
		return fmt.Errorf("%w: bytes after the checksum", ErrSnapshotCorrupt)
	}
	if uint64(len(data)) != nKeys || uint64(len(sessions)) != nSessions {
		return fmt.Errorf("%w: duplicate keys or sessions", ErrSnapshotCorrupt)
	}
	var dataB int64
	for k, v := range data {
		dataB += int64(len(k) + len(v))
	}
	kv.mu.Lock()
	kv.data, kv.dataB, kv.sessions, kv.applied, kv.nowNano, kv.nextSweepNano = data, dataB, sessions, applied, nowNano, nextSweep
	kv.mu.Unlock()
	return nil
}
