package netio

import (
	"sync"

	"github.com/kraftdb/kraft/wire"
)

// Replication compression (Config.ReplicationCompression). A node that has
// it on advertises wire.CapCompressS2 in its Hellos; its outbound
// connection to a peer compresses Appends only when the peer's Hello (read
// by the dialler during the handshake) carries the bit too. Accepted
// connections decode both forms whatever this node advertised, so nodes
// with mixed settings interoperate: a pair where either side is off sends
// everything plain.
//
// wire.AppendMessageCompressed decides per Append: only records blocks of
// at least wire.DefaultCompressMinBytes, and only when S2 makes them
// smaller. The S2 work happens outside the outbox's mutex, into a pooled
// scratch buffer, so the event loop's write completion never waits on it;
// the frame is then copied into the pending buffer under the mutex.

// capabilities is the bit set this node's Hellos advertise on a
// connection of the given role; compression is between peers only.
func (t *Transport) capabilities(role wire.Role) uint64 {
	if t.cfg.ReplicationCompression && role == wire.RolePeer {
		return wire.CapCompressS2
	}
	return 0
}

// compressTo reports whether Appends to a peer whose Hello carried caps
// are compressed: only when both Hellos carry CapCompressS2.
func (t *Transport) compressTo(caps uint64) bool {
	return t.capabilities(wire.RolePeer)&caps&wire.CapCompressS2 != 0
}

// compressScratch holds buffers a compressed frame is built in before it
// is copied into an outbox. Buffers above maxPooledScratch are dropped
// rather than kept for the rare batch that needed them.
var compressScratch = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledScratch = 4 << 20

// sendAppend queues one Append, compressed when the connection negotiated
// it and wire.AppendMessageCompressed finds it worth it, and counts it in
// the replication byte counters either way.
func (o *outbox) sendAppend(m *wire.Message) error {
	raw := wire.MessageSize(m)
	// Above DefaultMaxFrameSize stays plain: receivers bound inflation by
	// their own MaxFrameBytes (DecodeMessageLimit), which may be the
	// default, and a plain frame that large is refused the same way.
	if !o.compress || len(m.Entries) < wire.DefaultCompressMinBytes || raw > wire.DefaultMaxFrameSize {
		if err := o.appendPlain(m); err != nil {
			return err
		}
		o.countAppend(raw, raw, false)
		return nil
	}
	bp := compressScratch.Get().(*[]byte)
	frame, compressed := wire.AppendMessageCompressed((*bp)[:0], m, wire.DefaultCompressMinBytes)
	err := o.enqueueFrame(frame)
	if cap(frame) <= maxPooledScratch {
		*bp = frame[:0]
		compressScratch.Put(bp)
	}
	if err != nil {
		return err
	}
	o.countAppend(raw, len(frame), compressed)
	return nil
}

// enqueueFrame copies one encoded frame into the pending buffer.
func (o *outbox) enqueueFrame(frame []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	before := len(o.pending)
	o.pending = append(o.pending, frame...)
	return o.afterAppendLocked(before)
}

func (o *outbox) countAppend(raw, sent int, compressed bool) {
	o.stats.ReplicationBytesRaw.Add(uint64(raw))
	o.stats.ReplicationBytesWire.Add(uint64(sent))
	if compressed {
		o.stats.AppendsCompressed.Add(1)
	}
}
