package client

import (
	"math/rand/v2"
	"testing"
)

// TestSeqTableMatchesAMap drives a seqTable and a map with the same puts,
// gets and removes: seqs handed out in order, removed mostly soon and some
// 40,000 steps later (stragglers: the live seqs then span more than the
// ring, so the ring grows to its cap and the overflow map is used),
// re-puts of live seqs, and lookups of seqs never added or already
// removed.
func TestSeqTableMatchesAMap(t *testing.T) {
	for _, stride := range []uint64{1, 3, 32} {
		r := rand.New(rand.NewPCG(stride, 7))
		var tab seqTable[uint64]
		model := map[uint64]uint64{}
		var live []uint64
		sawOverflow := false
		stragglersAnswered := 0
		var stuck [][2]uint64 // seq, and when it was added: answered 40,000 steps later
		next := uint64(1)
		check := func(seq uint64) {
			t.Helper()
			v, ok := tab.get(seq)
			mv, mok := model[seq]
			if ok != mok || v != mv {
				t.Fatalf("stride %d: get(%d) = %d, %v; want %d, %v", stride, seq, v, ok, mv, mok)
			}
		}
		for i := 0; i < 200_000; i++ {
			switch op := r.IntN(100); {
			case op < 45: // a new request
				seq := next
				next += stride
				v := r.Uint64()
				tab.put(seq, v)
				model[seq] = v
				sawOverflow = sawOverflow || tab.over != nil
				if r.IntN(5000) == 0 {
					stuck = append(stuck, [2]uint64{seq, uint64(i)})
				} else {
					live = append(live, seq)
				}
			case op < 50 && len(live) > 0: // a re-put of a live seq
				seq := live[r.IntN(len(live))]
				v := r.Uint64()
				tab.put(seq, v)
				model[seq] = v
			case len(live) > 0: // an answer: usually one of the oldest few
				k := r.IntN(min(len(live), 8))
				if r.IntN(1000) == 0 {
					k = r.IntN(len(live))
				}
				seq := live[k]
				live = append(live[:k], live[k+1:]...)
				v, ok := tab.remove(seq)
				if !ok || v != model[seq] {
					t.Fatalf("stride %d: remove(%d) = %d, %v; want %d, true", stride, seq, v, ok, model[seq])
				}
				delete(model, seq)
				if _, ok := tab.remove(seq); ok {
					t.Fatalf("stride %d: second remove(%d) found it", stride, seq)
				}
			}
			// A straggler is answered 40,000 steps after it was sent
			// (from the ring: the seqs that collided with it went to
			// the overflow meanwhile).
			if len(stuck) > 0 && uint64(i)-stuck[0][1] >= 40_000 {
				seq := stuck[0][0]
				stuck = stuck[1:]
				v, ok := tab.remove(seq)
				if !ok || v != model[seq] {
					t.Fatalf("stride %d: straggler remove(%d) = %d, %v; want %d, true", stride, seq, v, ok, model[seq])
				}
				delete(model, seq)
				stragglersAnswered++
			}
			check(next)                               // never added
			check(next - stride*uint64(r.IntN(64)+1)) // recent: live or removed
			if tab.len() != len(model) {
				t.Fatalf("stride %d: len %d, model %d", stride, tab.len(), len(model))
			}
		}
		// Stragglers were kept past seqRingMax later seqs: the ring
		// reached its cap and some seqs went to the overflow.
		if stragglersAnswered == 0 {
			t.Fatalf("stride %d: no straggler was answered", stride)
		}
		if len(tab.ring) != seqRingMax || !sawOverflow {
			t.Fatalf("stride %d: ring %d, overflow used %v: the test did not reach the overflow", stride, len(tab.ring), sawOverflow)
		}
		seen, before := map[uint64]bool{}, len(model)
		tab.each(func(seq, v uint64) bool {
			if seen[seq] || model[seq] != v {
				t.Fatalf("stride %d: each gave %d=%d (seen %v, model %d)", stride, seq, v, seen[seq], model[seq])
			}
			seen[seq] = true
			if seq%2 == 0 { // removing the entry given is allowed
				tab.remove(seq)
				delete(model, seq)
			}
			return true
		})
		if len(seen) != before || tab.len() != len(model) {
			t.Fatalf("stride %d: each gave %d of %d; after it len %d, model %d", stride, len(seen), before, tab.len(), len(model))
		}
		for seq := range model {
			check(seq)
		}
	}
}

// TestSeqTableStaysSmallForFewLiveSeqs: one request at a time, in order,
// never grows the ring past its first size, whatever the seqs reached.
func TestSeqTableStaysSmallForFewLiveSeqs(t *testing.T) {
	var tab seqTable[*call]
	c := &call{}
	for seq := uint64(1); seq < 1_000_000; seq++ {
		tab.put(seq, c)
		if got, ok := tab.remove(seq); !ok || got != c {
			t.Fatalf("remove(%d) = %p, %v", seq, got, ok)
		}
	}
	if len(tab.ring) != seqRingMin || tab.over != nil || tab.len() != 0 {
		t.Fatalf("ring %d, overflow %v, len %d", len(tab.ring), tab.over, tab.len())
	}
}

// A seq in the overflow stays there when it is put again after the ring
// slot that pushed it out was freed: it must not gain a second copy in the
// ring, which a remove would leave the overflow's stale one behind.
func TestSeqTableRePutOfAnOverflowSeq(t *testing.T) {
	var tab seqTable[uint64]
	a, b := uint64(1), uint64(1+seqRingMax) // the same slot at every ring size
	tab.put(a, 10)
	tab.put(b, 20) // grows the ring to its cap, then overflows
	if tab.over == nil {
		t.Fatal("the second seq did not overflow")
	}
	tab.remove(a)
	tab.put(b, 21)
	if tab.len() != 1 {
		t.Fatalf("len %d after re-putting the only live seq, want 1", tab.len())
	}
	if v, ok := tab.remove(b); !ok || v != 21 {
		t.Fatalf("remove(%d) = %d, %v; want 21, true", b, v, ok)
	}
	if v, ok := tab.get(b); ok || tab.len() != 0 {
		t.Fatalf("after removing %d: get = %d, %v; len %d", b, v, ok, tab.len())
	}
}
