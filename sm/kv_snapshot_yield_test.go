package sm

import (
	"io"
	"testing"
)

// A full snapshot's sort, most of its CPU, yields the processor as it goes:
// WriteTo runs beside Apply, on one Go scheduler where nodes share a host.
func TestKVSnapshotSortStepsAside(t *testing.T) {
	const keys = 40_000
	kv, _ := loadKV(t, keys, 8)
	s, err := kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	before := sortYields.Load()
	if _, err := s.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
	s.Release()
	// The collection, the gathering and each radix pass's count yield
	// once per stepAsideKeys keys; three of them are a loose floor.
	if got, want := sortYields.Load()-before, uint64(3*(keys/stepAsideKeys)); got < want {
		t.Fatalf("a snapshot of %d keys yielded %d times while sorting, want at least %d", keys, got, want)
	}
}
