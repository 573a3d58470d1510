package sm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// goldenSessionWorkload exercises the response cache's corners, for a
// snapshot and results recorded from the map-based cache the ring
// replaced (commit 4eaede9): the ring must answer every request the same
// way and write the same bytes. MaxCachedResponsesPerSession is 4.
func goldenSessionWorkload() []wire.ClientRequest {
	var rs []wire.ClientRequest
	w := func(id, seq, first uint64, op wire.Op, key, value, expect string) {
		rs = append(rs, wire.ClientRequest{ClientID: id, Seq: seq, FirstUnacked: first, NewSession: true,
			Op: op, Key: []byte(key), Value: []byte(value), Expect: []byte(expect)})
	}
	put := func(id, seq, first uint64, key, value string) { w(id, seq, first, wire.OpPut, key, value, "") }
	// Client 1: six pipelined writes, none acknowledged: 1 and 2 evicted.
	for seq := uint64(1); seq <= 6; seq++ {
		put(1, seq, 1, fmt.Sprint("d", seq), "v")
	}
	put(1, 1, 1, "d1", "again") // evicted: refused
	put(1, 4, 1, "d4", "again") // cached
	// Client 2: failed CASes answer with the current value, cached; out
	// of order and sparse.
	put(2, 1, 1, "c", "one")
	w(2, 30, 1, wire.OpCAS, "c", "x", "nope")
	put(9, 1, 1, "c", "two") // another client changes c
	w(2, 20, 1, wire.OpCAS, "c", "x", "nope")
	w(2, 10, 1, wire.OpCAS, "c", "x", "nope")
	w(2, 30, 1, wire.OpCAS, "c", "x", "nope") // retries: the cached values
	w(2, 20, 1, wire.OpCAS, "c", "x", "nope")
	w(2, 25, 1, wire.OpDelete, "c", "", "")    // full: 1 evicted
	put(2, 40, 11, "c", "three")               // acknowledges 10 and below
	w(2, 10, 10, wire.OpCAS, "c", "x", "nope") // forgotten: refused
	w(2, 20, 11, wire.OpCAS, "c", "x", "nope") // cached
	// Client 3: sparse seqs fill the cache, then a seq older than all of
	// them arrives: it is applied and kept, the oldest evicted, and it
	// ends below forgottenBelow (in the snapshot too).
	for _, seq := range []uint64{10, 100, 1000, 10000, 50, 20} {
		put(3, seq, 1, fmt.Sprint("s", seq), "v")
	}
	put(3, 20, 1, "s20", "again") // cached, below forgottenBelow
	put(3, 15, 1, "s15", "v")     // never applied, below forgottenBelow: refused
	// Client 8: the same, then FirstUnacked forgets them all.
	for _, seq := range []uint64{10, 100, 1000, 10000, 50, 20} {
		put(8, seq, 1, fmt.Sprint("e", seq), "v")
	}
	put(8, 20001, 20000, "e20001", "v")
	put(8, 20, 20, "e20", "again") // forgotten: refused
	// Client 4: FirstUnacked jumps over part of the cache.
	for seq := uint64(1); seq <= 3; seq++ {
		put(4, seq, 1, fmt.Sprint("j", seq), "v")
	}
	put(4, 9, 3, "j9", "v")
	put(4, 2, 2, "j2", "again") // forgotten: refused
	put(4, 3, 3, "j3", "again") // cached
	// Client 5: seq 0 is a seq like any other on the wire.
	put(5, 0, 0, "z", "v")
	put(5, 0, 0, "z", "again")
	// Client 6: seqs at the top of the range.
	put(6, 1<<64-3, 1<<64-3, "t1", "v")
	put(6, 1<<64-1, 1<<64-3, "t2", "v")
	put(6, 1<<64-2, 1<<64-3, "t3", "v")
	put(6, 1<<64-1, 1<<64-2, "t2", "again")
	// A session that does not exist is not opened without NewSession.
	rs = append(rs, wire.ClientRequest{ClientID: 77, Seq: 5, FirstUnacked: 5, Op: wire.OpPut, Key: []byte("u"), Value: []byte("v")})
	return rs
}

// runGoldenSessionWorkload returns the workload's results, one line each,
// and the snapshot after it.
func runGoldenSessionWorkload(t *testing.T) (string, []byte) {
	cfg := DefaultKVConfig()
	cfg.MaxCachedResponsesPerSession = 4
	h := newHarness(t, cfg)
	var out strings.Builder
	for _, r := range goldenSessionWorkload() {
		h.now += 1000
		status, value := h.apply(r)
		fmt.Fprintf(&out, "%d/%d %v %q\n", r.ClientID, r.Seq, status, value)
	}
	return out.String(), snapshotBytes(t, h.kv)
}

// Recorded from the map-based cache (commit 4eaede9).
const goldenSessionResults = `1/1 OK ""
1/2 OK ""
1/3 OK ""
1/4 OK ""
1/5 OK ""
1/6 OK ""
1/1 Error "request 1 of client 1 was already answered and its response forgotten"
1/4 OK ""
2/1 OK ""
2/30 CompareFailed "one"
9/1 OK ""
2/20 CompareFailed "two"
2/10 CompareFailed "two"
2/30 CompareFailed "one"
2/20 CompareFailed "two"
2/25 OK ""
2/40 OK ""
2/10 Error "request 10 of client 2 was already answered and its response forgotten"
2/20 CompareFailed "two"
3/10 OK ""
3/100 OK ""
3/1000 OK ""
3/10000 OK ""
3/50 OK ""
3/20 OK ""
3/20 OK ""
3/15 Error "request 15 of client 3 was already answered and its response forgotten"
8/10 OK ""
8/100 OK ""
8/1000 OK ""
8/10000 OK ""
8/50 OK ""
8/20 OK ""
8/20001 OK ""
8/20 Error "request 20 of client 8 was already answered and its response forgotten"
4/1 OK ""
4/2 OK ""
4/3 OK ""
4/9 OK ""
4/2 Error "request 2 of client 4 was already answered and its response forgotten"
4/3 OK ""
5/0 OK ""
5/0 OK ""
6/18446744073709551613 OK ""
6/18446744073709551615 OK ""
6/18446744073709551614 OK ""
6/18446744073709551615 OK ""
77/5 SessionExpired "session of client 77 expired or unknown; start a new session"
`

// The snapshot after goldenSessionWorkload, recorded from the map-based
// cache (commit 4eaede9): the format of every snapshot on disk.
const goldenSessionSnapshot = "" +
	"4b565331300000000000000080bbfaed51728618e8af1dea587286181c00000000000000080000000000000001000000" +
	"050000006374687265650200000001000000643176020000000100000064327602000000010000006433760200000001" +
	"000000643476020000000100000064357602000000010000006436760300000001000000653130760400000001000000" +
	"653130307605000000010000006531303030760600000001000000653130303030760300000001000000653230760600" +
	"0000010000006532303030317603000000010000006535307602000000010000006a317602000000010000006a327602" +
	"000000010000006a337602000000010000006a3976030000000100000073313076040000000100000073313030760500" +
	"000001000000733130303076060000000100000073313030303076030000000100000073323076030000000100000073" +
	"35307602000000010000007431760200000001000000743276020000000100000074337601000000010000007a760100" +
	"000000000000401ffaed5172861803000000000000000400000003000000000000000000000000040000000000000000" +
	"0000000005000000000000000000000000060000000000000000000000000200000000000000384afaed517286180b00" +
	"000000000000040000001400000000000000050300000074776f190000000000000000000000001e0000000000000005" +
	"030000006f6e652800000000000000000000000003000000000000007869faed51728618330000000000000004000000" +
	"1400000000000000000000000064000000000000000000000000e8030000000000000000000000102700000000000000" +
	"00000000040000000000000028a0faed5172861803000000000000000200000003000000000000000000000000090000" +
	"000000000000000000000500000000000000f8a7faed5172861800000000000000000100000000000000000000000000" +
	"000000060000000000000098b7faed51728618feffffffffffffff02000000feffffffffffffff0000000000ffffffff" +
	"ffffffff00000000000800000000000000b888faed51728618204e00000000000001000000214e000000000000000000" +
	"00000900000000000000f82afaed5172861801000000000000000100000001000000000000000000000000ca3ccb37fe" +
	"fda747"

// The ring answers every request of goldenSessionWorkload as the map did,
// and writes the same snapshot bytes; the recorded snapshot restores and
// writes back the same.
func TestKVSessionsMatchMapBasedCache(t *testing.T) {
	results, snap := runGoldenSessionWorkload(t)
	if results != goldenSessionResults {
		t.Errorf("results differ from the map-based cache's:\n%s\nwant:\n%s", results, goldenSessionResults)
	}
	want, err := hex.DecodeString(goldenSessionSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, want) {
		t.Errorf("snapshot differs from the map-based cache's:\n%x\nwant:\n%x", snap, want)
	}
	kv, _ := NewKV(DefaultKVConfig())
	if err := kv.Restore(bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if got := snapshotBytes(t, kv); !bytes.Equal(got, want) {
		t.Errorf("the recorded snapshot restores and writes back as:\n%x\nwant:\n%x", got, want)
	}
	if s := kv.sessions[3]; s.forgottenBelow != 51 || s.responses.len() != 4 {
		t.Errorf("client 3 restored with forgottenBelow %d and %d responses", s.forgottenBelow, s.responses.len())
	} else if _, ok := s.responses.get(20); !ok {
		t.Error("client 3's response to seq 20, below forgottenBelow, not restored")
	}
}
