package netio

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/kraftdb/kraft/wire"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

var (
	// ErrBusy: the connection's queue is at MaxInflightBytesPerConn; the
	// message was not queued.
	ErrBusy = errors.New("kraft/netio: connection queue full")
	// ErrNotConnected: no connection to that peer right now; the message
	// was not queued (Raft retransmits once the peer is back).
	ErrNotConnected = errors.New("kraft/netio: peer not connected")
	// ErrClosed: the connection or transport is closed.
	ErrClosed = errors.New("kraft/netio: closed")
)

// outbox queues frames for one gnet connection and coalesces them: the
// first frame of an idle connection is written at once; frames that arrive
// while a write is in flight accumulate and go out together in the next
// one. Two buffers alternate, so steady state allocates nothing.
//
// Any goroutine may enqueue. The write completion runs on the connection's
// event loop (gnet) or writer goroutine (TLS). The sink does not copy, so
// the buffer being written is owned by it until the completion callback.
type outbox struct {
	w        sink
	maxBytes int
	stats    *Stats
	// compress: Appends may go S2-compressed (a peer connection where both
	// Hellos carry wire.CapCompressS2). Set before the outbox is shared.
	compress bool

	mu      sync.Mutex
	pending []byte // frames not yet handed to gnet
	writing []byte // the buffer gnet owns; nil when no write is in flight
	spare   []byte
	// backlog is what gnet holds in its own outbound buffer because the
	// kernel would not take it yet (gnet copies the rest of a write there).
	// It is read on the event loop after each write and counts against
	// maxBytes, so a peer that stops reading cannot grow memory.
	backlog int
	closed  bool
	// direct: fd is the socket of a gnet connection that the outbox may
	// write itself (see writeDirectLocked); peer links only.
	direct bool
	fd     int
	// cork, for direct outboxes: while it is on, frames wait in pending
	// (dirty marks the outbox as listed in cork) until Uncork.
	cork  *corker
	dirty bool
	// listed: the outbox is in a ResponseBatch, whose Flush starts the
	// write of what RespondIn held.
	listed bool
}

// corker holds back the direct writes of a transport's peer outboxes
// between Transport.Cork and Transport.Uncork, so that all the messages a
// node sends a peer in one turn leave in one write.
type corker struct {
	mu    sync.Mutex
	on    bool
	dirty []*outbox
}

// hold lists o (its o.mu held) for Uncork and reports true while corked.
func (k *corker) hold(o *outbox) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.on {
		return false
	}
	if !o.dirty {
		o.dirty = true
		k.dirty = append(k.dirty, o)
	}
	return true
}

// sink is where an outbox writes: a gnet connection or a TLS writer
// goroutine. asyncWrite hands buf over; unless it returns an error, the
// sink later calls the outbox's written exactly once, after which buf is
// the outbox's again.
type sink interface {
	asyncWrite(buf []byte) error
}

// newOutbox returns an outbox writing to a gnet connection.
func newOutbox(c gnet.Conn, maxBytes int, stats *Stats) *outbox {
	o := &outbox{maxBytes: maxBytes, stats: stats}
	o.w = &gnetSink{c: c, done: func(c gnet.Conn, err error) error {
		o.written(c.OutboundBuffered(), err)
		return nil
	}}
	return o
}

// gnetSink writes with gnet's AsyncWrite; done is built once, so a write
// allocates no callback.
type gnetSink struct {
	c    gnet.Conn
	done gnet.AsyncCallback
}

func (g *gnetSink) asyncWrite(buf []byte) error { return g.c.AsyncWrite(buf, g.done) }

// sendMessage queues one Raft message.
func (o *outbox) sendMessage(m *wire.Message) error {
	if m.Type == wire.MsgAppend {
		return o.sendAppend(m) // compress.go
	}
	return o.appendPlain(m)
}

// appendPlain encodes m as it is into the queue.
func (o *outbox) appendPlain(m *wire.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	before := len(o.pending)
	o.pending = wire.AppendMessage(o.pending, m)
	return o.afterAppendLocked(before)
}

// sendResponse queues one client response and starts its write.
func (o *outbox) sendResponse(r *wire.ClientResponse) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	before := len(o.pending)
	o.pending = wire.AppendClientResponse(o.pending, r)
	return o.afterAppendLocked(before)
}

// holdResponse queues one client response without starting a write
// (ResponseBatch.Flush will, through release) and marks the outbox listed
// in the same critical section; list reports that it was not yet, so the
// caller adds it to its batch.
func (o *outbox) holdResponse(r *wire.ClientResponse) (list bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false, ErrClosed
	}
	before := len(o.pending)
	o.pending = wire.AppendClientResponse(o.pending, r)
	if err := o.checkRoomLocked(before); err != nil {
		return false, err
	}
	list, o.listed = !o.listed, true
	return list, nil
}

// release starts the write of what RespondIn held, unless one is in flight
// (its completion takes pending along).
func (o *outbox) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.listed = false
	if !o.closed && o.writing == nil && len(o.pending) > 0 {
		o.flushLocked()
	}
}

// checkRoomLocked takes back the frame just appended (from before) when
// the outbox is over maxBytes, with ErrBusy.
func (o *outbox) checkRoomLocked(before int) error {
	if o.backlog+len(o.writing)+len(o.pending) > o.maxBytes {
		o.pending = o.pending[:before]
		o.stats.SendsRefused.Add(1)
		if o.writing == nil {
			// Refresh backlog: the kernel may have drained gnet's buffer
			// since the last write. An empty write is that probe.
			o.flushLocked()
		}
		return ErrBusy
	}
	o.stats.FramesOut.Add(1)
	return nil
}

func (o *outbox) afterAppendLocked(before int) error {
	if err := o.checkRoomLocked(before); err != nil {
		return err
	}
	if o.writing == nil {
		if o.direct && o.cork != nil && o.cork.hold(o) {
			// written at Uncork
		} else if o.direct && o.backlog == 0 {
			o.writeDirectLocked()
		} else {
			o.flushLocked()
		}
	}
	return nil
}

// uncork writes what a corked outbox holds.
func (o *outbox) uncork() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dirty = false
	if o.closed || o.writing != nil || len(o.pending) == 0 {
		return // the write in flight's completion takes pending along
	}
	if o.backlog == 0 {
		o.writeDirectLocked()
	} else {
		o.flushLocked()
	}
}

// writeDirectLocked writes pending to the socket from the calling
// goroutine, skipping the hand-over to the event loop (an eventfd write, a
// thread wake-up and the loop's own write): on a Raft peer connection that
// hand-over was two of the hops of every commit, one each way. It is only
// called with no write in flight and nothing left in gnet's buffer, so gnet
// never writes this socket at the same time; what the kernel does not take
// goes through the event loop as before, behind nothing. The fd stays open
// while the outbox is: gnet calls OnClose, which closes the outbox under
// o.mu, before it closes the fd (see outConn).
func (o *outbox) writeDirectLocked() {
	n := 0
	for n < len(o.pending) {
		k, err := unix.Write(o.fd, o.pending[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || k <= 0 {
			break // EAGAIN, or an error that gnet's write reports and closes on
		}
		n += k
	}
	if n > 0 {
		o.stats.Writes.Add(1)
		o.stats.DirectWrites.Add(1)
		o.stats.BytesOut.Add(uint64(n))
	}
	if n == len(o.pending) {
		o.pending = o.pending[:0]
		return
	}
	o.pending = o.pending[n:]
	o.flushLocked()
}

// flushLocked hands pending (possibly empty: a probe) to gnet.
// Precondition: no write in flight.
func (o *outbox) flushLocked() {
	if o.pending == nil {
		o.pending = make([]byte, 0, 4096)
	}
	o.writing, o.pending, o.spare = o.pending, o.spare[:0], nil
	o.stats.Writes.Add(1)
	o.stats.BytesOut.Add(uint64(len(o.writing)))
	if err := o.w.asyncWrite(o.writing); err != nil {
		// The loop is gone (engine stopping): nothing will call back.
		o.closed = true
		o.writing = nil
	}
}

// written is the sink's completion callback. backlog is what the sink
// still holds because the kernel would not take it yet.
func (o *outbox) written(backlog int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.spare, o.writing = o.writing[:0], nil
	o.backlog = backlog
	if err != nil {
		o.closed = true
		o.pending = o.pending[:0]
		return
	}
	if len(o.pending) > 0 && !o.closed {
		o.flushLocked()
	}
}

// queued is what the outbox holds: not yet written, being written, and
// left in gnet's buffer at the last write.
func (o *outbox) queued() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(o.backlog + len(o.writing) + len(o.pending))
}

// close drops what is queued; later sends get ErrClosed.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.pending = o.pending[:0]
	o.mu.Unlock()
}

// Stats counts transport activity. All fields are updated atomically and
// may be read at any time.
type Stats struct {
	FramesIn          atomic.Uint64
	BytesIn           atomic.Uint64
	FramesOut         atomic.Uint64 // frames queued
	BytesOut          atomic.Uint64
	Writes            atomic.Uint64 // buffers handed to the kernel (one per coalesced batch)
	DirectWrites      atomic.Uint64 // of them, written by the sender itself, not the event loop (writeDirectLocked)
	SendsRefused      atomic.Uint64 // ErrBusy
	SendsUnconnected  atomic.Uint64 // ErrNotConnected
	HandshakesFailed  atomic.Uint64
	HandshakeTimeouts atomic.Uint64 // accepted connections closed for not completing the Hello in time
	ConnsRefused      atomic.Uint64 // accepted connections refused at MaxConnsPerPort
	BadFrames         atomic.Uint64
	Dials             atomic.Uint64
	DialFailures      atomic.Uint64

	TLSHandshakeFailures atomic.Uint64 // TLS handshakes failed, accepted or dialled (no/expired/foreign certificate, ...)
	TLSIdentityRefused   atomic.Uint64 // verified certificates that do not name the node ID of the handshake (either side)
	TLSRequired          atomic.Uint64 // plaintext connections refused on a TLS port
	IdleTimeouts         atomic.Uint64 // client connections closed after IdleTimeout without a frame
	InflightRefused      atomic.Uint64 // client requests answered StatusTooManyRequests at MaxInflightRequestsPerConn

	// Append frames queued to peers, as they would be sent plain (Raw) and
	// as sent (Wire): Raw/Wire is the replication compression ratio, 1
	// while compression is off (Config.ReplicationCompression).
	ReplicationBytesRaw  atomic.Uint64
	ReplicationBytesWire atomic.Uint64
	AppendsCompressed    atomic.Uint64 // Append frames sent S2-compressed
}
