package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// testEntry is the model of one appended entry.
type testEntry struct {
	index, term uint64
	payload     []byte
}

func encodeEntries(es []testEntry) []byte {
	var b []byte
	for _, e := range es {
		b = wire.AppendEntry(b, wire.EntryNormal, e.index, e.term, e.payload)
	}
	return b
}

// makeEntries builds n entries from index first, term term, with random
// payloads of 1..maxPayload bytes.
func makeEntries(rng *rand.Rand, first, term uint64, n, maxPayload int) []testEntry {
	es := make([]testEntry, n)
	for i := range es {
		p := make([]byte, 1+rng.IntN(maxPayload))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		es[i] = testEntry{index: first + uint64(i), term: term, payload: p}
	}
	return es
}

func memOpts(fsys FS, segBytes int64) Options {
	return Options{FS: fsys, SegmentSizeBytes: segBytes}
}

func mustOpen(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func mustAppend(t testing.TB, w *WAL, es []testEntry) {
	t.Helper()
	if err := w.Append(encodeEntries(es)); err != nil {
		t.Fatalf("Append [%d..]: %v", es[0].index, err)
	}
}

// readAll returns every entry in [FirstIndex, LastIndex] through Entries.
func readAll(t testing.TB, w *WAL) []testEntry {
	t.Helper()
	var out []testEntry
	first, last := w.FirstIndex(), w.LastIndex()
	for i := first; i <= last; {
		b, err := w.Entries(i, last+1, 1<<20)
		if err != nil {
			t.Fatalf("Entries(%d): %v", i, err)
		}
		it := wire.NewEntryIter(b)
		for {
			e, _, ok := it.Next()
			if !ok {
				break
			}
			if e.Index != i {
				t.Fatalf("Entries: got index %d, want %d", e.Index, i)
			}
			out = append(out, testEntry{index: e.Index, term: e.Term, payload: append([]byte(nil), e.Payload...)})
			i++
		}
	}
	return out
}

func sameEntries(a, b []testEntry) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d entries, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i].index != b[i].index || a[i].term != b[i].term || !bytes.Equal(a[i].payload, b[i].payload) {
			return fmt.Errorf("entry %d: got (%d,%d,%d bytes), want (%d,%d,%d bytes)", i,
				a[i].index, a[i].term, len(a[i].payload), b[i].index, b[i].term, len(b[i].payload))
		}
	}
	return nil
}

func asCorruption(err error) *CorruptionError {
	var ce *CorruptionError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
