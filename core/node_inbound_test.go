package core

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/kraftdb/kraft/wire"
)

// Step's copies go back to it once the loop has stepped them, whatever the
// message: a follower's heartbeats and a leader's acknowledgements between
// Appends must not use up the spares, or every Append after them grows a
// new buffer. The loop here runs two messages behind Step, as it does
// under load; the copies must still hold what was sent.
func TestStepReusesInboundsOfEveryKind(t *testing.T) {
	n := &Node{recvC: make(chan *inbound, 64), spareC: make(chan *inbound, spareInbound), smallC: make(chan *inbound, spareSmallInbound)}
	fill := func(size int, b byte) []byte { return bytes.Repeat([]byte{b}, size) }
	msgs := []wire.Message{
		{Type: wire.MsgAppend, Index: 1, Entries: fill(8<<10, 'a')},
		{Type: wire.MsgHeartbeat, Index: 2},
		{Type: wire.MsgAppendResp, Index: 3},
		{Type: wire.MsgAppend, Index: 4, Entries: fill(100, 'b')},
		{Type: wire.MsgSnapshot, Index: 5, Meta: fill(9, 'c'), Data: fill(4<<10, 'd')},
	}
	inbounds := map[*inbound]bool{}
	bufs := map[*byte]bool{}
	next := 0 // index of the message the loop takes next
	const steps = 1000
	for i := range steps {
		sent := msgs[i%len(msgs)]
		n.Step(&sent)
		for len(n.recvC) > 2 || (i == steps-1 && len(n.recvC) > 0) {
			in := <-n.recvC
			want := &msgs[next%len(msgs)]
			next++
			if in.m.Type != want.Type || in.m.Index != want.Index || !bytes.Equal(in.m.Entries, want.Entries) ||
				!bytes.Equal(in.m.Meta, want.Meta) || !bytes.Equal(in.m.Data, want.Data) {
				t.Fatalf("message %d: stepped %s index %d (%d/%d/%d bytes), sent %s index %d", next-1,
					in.m.Type, in.m.Index, len(in.m.Entries), len(in.m.Meta), len(in.m.Data), want.Type, want.Index)
			}
			inbounds[in] = true
			if cap(in.buf) > 0 {
				bufs[unsafe.SliceData(in.buf)] = true
			}
			n.reuse(in)
		}
	}
	if next != steps {
		t.Fatalf("the loop took %d of %d messages", next, steps)
	}
	// At most four inbounds are out at once (three queued, one stepping)
	// from each of the two spare sets (small messages, large ones), and
	// each grows its buffer at most three times (100 B, 4 KiB + 9 B,
	// 8 KiB).
	if len(inbounds) > 8 || len(bufs) > 12 {
		t.Fatalf("%d messages used %d inbounds and %d buffers; spares are being lost", steps, len(inbounds), len(bufs))
	}
	t.Logf("%d messages: %d inbounds, %d buffers", steps, len(inbounds), len(bufs))
}

// Under a read load a leader steps hundreds of small messages (forwarded
// read requests, heartbeat answers) between two turns of its loop. Their
// inbounds come back for the next burst: bursts of 300 reuse the first
// burst's, while an Append's large buffer keeps its own spare.
func TestStepReusesInboundsOfSmallBursts(t *testing.T) {
	n := &Node{recvC: make(chan *inbound, 1024), spareC: make(chan *inbound, spareInbound), smallC: make(chan *inbound, spareSmallInbound)}
	inbounds := map[*inbound]bool{}
	const burst, bursts = 300, 10
	for range bursts {
		n.Step(&wire.Message{Type: wire.MsgAppend, Entries: make([]byte, 64<<10)})
		for i := range burst {
			n.Step(&wire.Message{Type: wire.MsgReadIndex, Context: uint64(i)})
		}
		for len(n.recvC) > 0 {
			in := <-n.recvC
			inbounds[in] = true
			n.reuse(in)
		}
	}
	if len(inbounds) > burst+1 {
		t.Fatalf("%d bursts of %d small messages and an Append used %d inbounds, want at most %d", bursts, burst, len(inbounds), burst+1)
	}
}
