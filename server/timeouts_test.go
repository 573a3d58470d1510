package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// Writes and reads that time out while the apply is stalled race their
// own late completion, and the requests answered in time are reused for
// the next ones at once (writePool, readPool). Over a raw client
// connection: every request is answered exactly once, with OK or a
// timeout; a write answered OK is in the state machine by the time its
// answer arrives (a pending write reused while the node still held it
// would be answered with another entry's outcome, before its own was
// applied); a linearizable get of a key written before it was sent
// returns that key's value (a read reused too early would answer with
// another read's key).
func TestTimedOutRequestsAnsweredOnce(t *testing.T) {
	s := startOneNode(t, func(c *Config) { c.RequestTimeout = 10 * time.Millisecond })
	// Once the load starts, the apply stalls for 15 ms at once and then
	// every 25 ms: the sweeper times out what waits behind it. By the clock
	// rather than by batch count, since a slower build (race, invariants)
	// makes fewer, larger batches.
	var loading atomic.Bool
	var batches, stalls atomic.Int64
	var lastStall time.Time // the apply goroutine's alone
	stall := func() {
		batches.Add(1)
		if loading.Load() && (lastStall.IsZero() || time.Since(lastStall) >= 25*time.Millisecond) {
			time.Sleep(15 * time.Millisecond)
			lastStall = time.Now()
			stalls.Add(1)
		}
	}
	s.afterApplyForTest.Store(&stall)
	defer s.afterApplyForTest.Store(nil)

	c, err := net.Dial("tcp", s.cfg.AdvertisedClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: s.cfg.NumericClusterID()})); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(c, 1<<16)
	var hello []byte // the server's Hello
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		hello = append(hello, b)
		if n, err := wire.HelloLen(hello); err != nil {
			t.Fatal(err)
		} else if n > 0 && len(hello) == n {
			break
		}
	}
	readResponse := func() wire.ClientResponse {
		t.Helper()
		var head [wire.FrameHeaderSize]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			t.Fatal(err)
		}
		size, err := wire.FrameSize(head[:], 0)
		if err != nil {
			t.Fatal(err)
		}
		frame := append(head[:], make([]byte, size-len(head))...)
		if _, err := io.ReadFull(r, frame[len(head):]); err != nil {
			t.Fatal(err)
		}
		f, _, err := wire.ParseFrame(frame, 0)
		if err != nil || f.Type != wire.MsgClientResponse {
			t.Fatalf("frame %v: %v", f.Type, err)
		}
		var resp wire.ClientResponse
		if err := wire.DecodeClientResponse(f.Body, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	key := func(seq uint64) []byte { return fmt.Appendf(nil, "k%06d", seq) }
	value := func(seq uint64) []byte { return fmt.Appendf(nil, "v%06d-%0100d", seq, seq) }
	put := func(dst []byte, seq, firstUnacked uint64) []byte {
		return wire.AppendClientRequest(dst, &wire.ClientRequest{ClientID: 77, Seq: seq, FirstUnacked: firstUnacked,
			NewSession: seq == 1, Op: wire.OpPut, Key: key(seq), Value: value(seq)})
	}
	// The session first, on its own, retried while it times out (the same
	// seq: a retry of one that was applied gets its cached answer).
	for attempt := 1; ; attempt++ {
		if _, err := c.Write(put(nil, 1, 1)); err != nil {
			t.Fatal(err)
		}
		resp := readResponse()
		if resp.Seq == 1 && resp.Status == wire.StatusOK {
			break
		}
		if resp.Seq != 1 || resp.Status != wire.StatusTimeout || attempt == 50 {
			t.Fatalf("opening the session, attempt %d: seq %d status %v %q", attempt, resp.Seq, resp.Status, resp.Error)
		}
	}

	loading.Store(true)
	const total, window = 6000, 256
	answers := make([]int, total+2)
	reads := make(map[uint64]uint64) // a get's seq -> the seq whose put it reads
	var lastPut uint64               // the latest put answered OK
	var ok, timedOut, readOK, readTimedOut int
	next, oldest := uint64(2), uint64(2) // next to send; every seq below oldest is answered
	outstanding := 0
	var buf []byte
	for oldest <= total+1 {
		buf = buf[:0]
		for outstanding < window && next <= total+1 {
			if next%3 == 0 && lastPut > 0 { // a linearizable get of a key written before it was sent
				reads[next] = lastPut
				buf = wire.AppendClientRequest(buf, &wire.ClientRequest{ClientID: 77, Seq: next, FirstUnacked: oldest,
					Op: wire.OpGet, Consistency: wire.ReadLinearizable, Key: key(lastPut)})
			} else {
				buf = put(buf, next, oldest)
			}
			next++
			outstanding++
		}
		if len(buf) > 0 {
			if _, err := c.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		resp := readResponse()
		if resp.Seq < 2 || resp.Seq > total+1 {
			t.Fatalf("answer for seq %d, never sent", resp.Seq)
		}
		if answers[resp.Seq]++; answers[resp.Seq] > 1 {
			t.Fatalf("seq %d answered twice (now %v %q)", resp.Seq, resp.Status, resp.Error)
		}
		outstanding--
		if of, isRead := reads[resp.Seq]; isRead {
			switch resp.Status {
			case wire.StatusOK:
				readOK++
				if string(resp.Value) != string(value(of)) {
					t.Fatalf("get %d of key %s: value %.12q, want %.12q", resp.Seq, key(of), resp.Value, value(of))
				}
			case wire.StatusTimeout:
				readTimedOut++
			default:
				t.Fatalf("get %d of key %s, written before it was sent: status %v %q", resp.Seq, key(of), resp.Status, resp.Error)
			}
		} else {
			switch resp.Status {
			case wire.StatusOK:
				ok++
				if v, found := s.kv().Get(key(resp.Seq)); !found || string(v) != string(value(resp.Seq)) {
					t.Fatalf("seq %d answered OK before its write was applied (found %v)", resp.Seq, found)
				}
				lastPut = max(lastPut, resp.Seq)
			case wire.StatusTimeout:
				timedOut++
			default:
				t.Fatalf("seq %d: status %v %q", resp.Seq, resp.Status, resp.Error)
			}
		}
		for oldest <= total+1 && answers[oldest] > 0 {
			oldest++
		}
	}
	t.Logf("%d requests: %d writes answered OK, %d timed out; %d reads answered OK, %d timed out; %d applied batches, %d stalls",
		total, ok, timedOut, readOK, readTimedOut, batches.Load(), stalls.Load())
	if ok == 0 || timedOut == 0 || readOK == 0 || readTimedOut == 0 {
		t.Fatalf("writes %d OK, %d timed out; reads %d OK, %d timed out: the test needs all four", ok, timedOut, readOK, readTimedOut)
	}
}
