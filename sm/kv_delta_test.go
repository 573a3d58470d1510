package sm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// wideCommands writes and deletes over many keys (randomCommands uses 8).
func wideCommands(seed uint64, n, keys int) []Command {
	rng := rand.New(rand.NewPCG(seed, seed))
	c := &client{id: 1}
	cmds := make([]Command, 0, n)
	for i := range n {
		key := fmt.Sprint("key-", rng.IntN(keys))
		var r wire.ClientRequest
		switch rng.IntN(4) {
		case 0:
			r = c.req(wire.OpDelete, key, "", "")
		default:
			r = c.req(wire.OpPut, key, fmt.Sprint("value-", i), "")
		}
		cmds = append(cmds, Command{Index: uint64(i + 1), Term: 1, Data: command(int64(1_700_000_000_000_000_000+i), r)})
	}
	return cmds
}

func writeSnap(t *testing.T, s Snapshot) []byte {
	t.Helper()
	defer s.Release()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deltaBytes(t *testing.T, kv *KV, wantBase uint64) []byte {
	t.Helper()
	s, base, ok, err := kv.SnapshotDelta()
	if err != nil || !ok || base != wantBase {
		t.Fatalf("SnapshotDelta = base %d ok %v %v, want base %d", base, ok, err, wantBase)
	}
	return writeSnap(t, s)
}

// A full snapshot followed by deltas restores to exactly the state of a
// replica that applied the same commands: deletions included.
func TestKVDeltaChainRestoresExactly(t *testing.T) {
	cmds := wideCommands(1, 4000, 500)
	src, _ := NewKV(DefaultKVConfig())
	applyAll(t, src, cmds[:1000], 7)
	chain := [][]byte{snapshotBytes(t, src)}
	base := uint64(1000)
	for _, upTo := range []int{1100, 1150, 2000, 2001, 2600} {
		applyAll(t, src, cmds[base:upTo], 13)
		chain = append(chain, deltaBytes(t, src, base))
		base = uint64(upTo)
	}
	if len(chain[1]) >= len(chain[0])/2 {
		t.Errorf("a delta of 100 commands is %d bytes, the full snapshot %d", len(chain[1]), len(chain[0]))
	}
	ref, _ := NewKV(DefaultKVConfig())
	applyAll(t, ref, cmds[:2600], 100)

	dst, _ := NewKV(DefaultKVConfig())
	if err := dst.Restore(bytes.NewReader(chain[0])); err != nil {
		t.Fatal(err)
	}
	for i, d := range chain[1:] {
		if err := dst.RestoreDelta(bytes.NewReader(d)); err != nil {
			t.Fatalf("delta %d: %v", i, err)
		}
	}
	if dst.Applied() != 2600 || dst.Len() != ref.Len() || dst.SizeBytes() != ref.SizeBytes() {
		t.Fatalf("restored: applied %d, %d keys, %d bytes; reference %d keys, %d bytes", dst.Applied(), dst.Len(), dst.SizeBytes(), ref.Len(), ref.SizeBytes())
	}
	if !bytes.Equal(snapshotBytes(t, dst), snapshotBytes(t, ref)) {
		t.Fatal("state restored from the chain differs from the replica that applied the commands")
	}
	// It continues like the reference.
	got, want := applyAll(t, dst, cmds[2600:], 9), applyAll(t, ref, cmds[2600:], 50)
	for i := range got {
		if got[i].Value != want[i].Value {
			t.Fatalf("cmd %d after the chain: %d, want %d", 2600+i, got[i].Value, want[i].Value)
		}
	}
}

// A delta whose base is not the current state, or a damaged one, is
// refused and the state is left as it was.
func TestKVRestoreDeltaRefusesWrongBaseAndDamage(t *testing.T) {
	cmds := wideCommands(2, 600, 100)
	src, _ := NewKV(DefaultKVConfig())
	applyAll(t, src, cmds[:200], 10)
	full := snapshotBytes(t, src)
	applyAll(t, src, cmds[200:300], 10)
	d1 := deltaBytes(t, src, 200)
	applyAll(t, src, cmds[300:400], 10)
	d2 := deltaBytes(t, src, 300)

	dst, _ := NewKV(DefaultKVConfig())
	if err := dst.Restore(bytes.NewReader(full)); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, dst)
	if err := dst.RestoreDelta(bytes.NewReader(d2)); !errors.Is(err, ErrDeltaBase) {
		t.Fatalf("delta skipping a link: %v", err)
	}
	if err := dst.Restore(bytes.NewReader(d1)); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("Restore of a delta: %v", err)
	}
	if err := dst.RestoreDelta(bytes.NewReader(full)); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("RestoreDelta of a full snapshot: %v", err)
	}
	for i := 0; i < len(d1); i += 7 {
		b := bytes.Clone(d1)
		b[i] ^= 0x10
		if err := dst.RestoreDelta(bytes.NewReader(b)); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	if err := dst.RestoreDelta(bytes.NewReader(d1[:len(d1)-3])); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("truncated delta: %v", err)
	}
	if !bytes.Equal(snapshotBytes(t, dst), before) || dst.Applied() != 200 {
		t.Fatal("a refused delta changed the state")
	}
}

// When most keys changed, SnapshotDelta declines: a full one is due.
func TestKVSnapshotDeltaDeclinesWhenTooMuchChanged(t *testing.T) {
	kv, _ := NewKV(DefaultKVConfig())
	applyAll(t, kv, wideCommands(3, 100, 100), 10)
	snapshotBytes(t, kv)
	c := &client{id: 9}
	cmds := make([]Command, 0, deltaMinKeys+10)
	for i := range deltaMinKeys + 10 {
		cmds = append(cmds, Command{Index: uint64(101 + i), Term: 1, Data: command(1, c.req(wire.OpPut, fmt.Sprint("n", i), "v", ""))})
	}
	applyAll(t, kv, cmds, 100)
	if _, _, ok, err := kv.SnapshotDelta(); ok || err != nil {
		t.Fatalf("SnapshotDelta after %d new keys: ok %v %v", len(cmds), ok, err)
	}
	snapshotBytes(t, kv)
	if _, base, ok, _ := kv.SnapshotDelta(); !ok || base != kv.Applied() {
		t.Fatalf("after a full capture a delta is possible again: ok %v base %d", ok, base)
	}
}

// The capture does not copy the key map: the snapshot reads the store's
// own map, frozen; writes meanwhile go to the overlay, and after Release
// they drain back while Apply goes on. Every step agrees with a replica
// that never took a snapshot (run under -race).
func TestKVCaptureFreezesInsteadOfCopying(t *testing.T) {
	cmds := wideCommands(4, 6000, 300)
	kv, _ := NewKV(DefaultKVConfig())
	applyAll(t, kv, cmds[:2000], 25)
	ref, _ := NewKV(DefaultKVConfig())
	applyAll(t, ref, cmds[:2000], 2000)
	want := snapshotBytes(t, ref)

	s, err := kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(s.(*kvSnapshot).data).UnsafePointer() != reflect.ValueOf(kv.data).UnsafePointer() {
		t.Fatal("Snapshot copied the key map")
	}
	applyAll(t, kv, cmds[2000:3000], 10)
	kv.mu.RLock()
	overlay := len(kv.over)
	kv.mu.RUnlock()
	if overlay == 0 {
		t.Fatal("writes after the capture did not go to the overlay")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		applyAll(t, kv, cmds[3000:4000], 10)
	}()
	got := writeSnap(t, s) // releases
	wg.Wait()
	if !bytes.Equal(got, want) {
		t.Fatal("snapshot written during Apply does not match the state at capture")
	}
	applyAll(t, ref, cmds[2000:4000], 100)
	for i := 4000; i < 6000; i += 10 {
		applyAll(t, kv, cmds[i:i+10], 10)
		applyAll(t, ref, cmds[i:i+10], 10)
		for k := range 300 {
			key := []byte(fmt.Sprint("key-", k))
			a, aok := kv.Get(key)
			b, bok := ref.Get(key)
			if aok != bok || !bytes.Equal(a, b) {
				t.Fatalf("after cmd %d, %s: %q %v, reference %q %v", i+10, key, a, aok, b, bok)
			}
		}
	}
	kv.mu.RLock()
	drained := kv.hold == nil && kv.over == nil
	kv.mu.RUnlock()
	if !drained || kv.Len() != ref.Len() || kv.SizeBytes() != ref.SizeBytes() {
		t.Fatalf("overlay drained %v; %d keys %d bytes, reference %d keys %d bytes", drained, kv.Len(), kv.SizeBytes(), ref.Len(), ref.SizeBytes())
	}
	if !bytes.Equal(snapshotBytes(t, kv), snapshotBytes(t, ref)) {
		t.Fatal("final state differs")
	}
}

// Two captures in a row without a Release in between (the node never does
// this) still each see their own point in time.
func TestKVOverlappingCaptures(t *testing.T) {
	cmds := wideCommands(5, 900, 50)
	kv, _ := NewKV(DefaultKVConfig())
	ref, _ := NewKV(DefaultKVConfig())
	applyAll(t, kv, cmds[:300], 10)
	applyAll(t, ref, cmds[:300], 10)
	s1, _ := kv.Snapshot()
	want1 := snapshotBytes(t, ref)
	applyAll(t, kv, cmds[300:600], 10)
	applyAll(t, ref, cmds[300:600], 10)
	s2, _ := kv.Snapshot()
	want2 := snapshotBytes(t, ref)
	applyAll(t, kv, cmds[600:], 10)
	if !bytes.Equal(writeSnap(t, s2), want2) || !bytes.Equal(writeSnap(t, s1), want1) {
		t.Fatal("overlapping captures do not see their own points in time")
	}
}
