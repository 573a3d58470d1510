package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/anishathalye/porcupine"
)

// A write whose outcome is unknown and whose value only a successful
// compare-and-swap saw (as its expected value) took effect: pruning it
// made a linearizable history fail the check (TestLinearizableUnderFaults,
// seed 770149: "cas(k1, 5.1670→5.1673) ok" with the put of 5.1670 gone).
func TestPruneKeepsWritesThatACompareAndSwapSaw(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: kvIn{kind: opPut, key: 1, value: "0.1"}, Output: kvOut{}, Call: 0, Return: 10},
		{ClientId: 5, Input: kvIn{kind: opPut, key: 1, value: "5.1"}, Output: kvOut{unknown: true}, Call: 20, Return: 1 << 62},
		{ClientId: 5, Input: kvIn{kind: opCAS, key: 1, value: "5.2", expect: "5.1"}, Output: kvOut{swapped: true}, Call: 30, Return: 40},
		{ClientId: 1, Input: kvIn{kind: opGet, key: 1}, Output: kvOut{value: "5.2"}, Call: 50, Return: 60},
		// Never observed by anyone: may go.
		{ClientId: 2, Input: kvIn{kind: opPut, key: 1, value: "2.1"}, Output: kvOut{unknown: true}, Call: 70, Return: 1 << 62},
		// Its CAS's outcome is unknown, but nobody saw the value that CAS
		// writes, so neither needs to have taken effect: both go.
		{ClientId: 3, Input: kvIn{kind: opPut, key: 1, value: "3.1"}, Output: kvOut{unknown: true}, Call: 80, Return: 1 << 62},
		{ClientId: 3, Input: kvIn{kind: opCAS, key: 1, value: "3.2", expect: "3.1"}, Output: kvOut{unknown: true}, Call: 90, Return: 1 << 62},
	}
	kept := prune(ops)
	values := map[string]bool{}
	for _, o := range kept {
		values[o.Input.(kvIn).value] = true
	}
	if !values["5.1"] || values["3.1"] || values["2.1"] || values["3.2"] || len(kept) != 4 {
		t.Fatalf("kept %d operations, values %v: want all but the put of 2.1, the put of 3.1 and the CAS to 3.2", len(kept), values)
	}
	if porcupine.CheckOperations(kvModel, kept) != true {
		t.Fatal("the pruned history is not linearizable, the whole one is")
	}
	if !porcupine.CheckOperations(kvModel, ops) {
		t.Fatal("the whole history should be linearizable")
	}
}

// prune keeps an unknown write when a completed operation saw its value,
// directly or through unknown compare-and-swaps that took effect, and
// drops the rest, however they expect each other's values.
func TestPruneFollowsChainsOfUnknownWrites(t *testing.T) {
	unknown := kvOut{unknown: true}
	const never = 1 << 62
	ops := []porcupine.Operation{
		{ClientId: 0, Input: kvIn{kind: opPut, key: 1, value: "a"}, Output: kvOut{}, Call: 0, Return: 10},
		{ClientId: 1, Input: kvIn{kind: opPut, key: 1, value: "b"}, Output: unknown, Call: 20, Return: never},
		{ClientId: 1, Input: kvIn{kind: opCAS, key: 1, value: "c", expect: "b"}, Output: unknown, Call: 30, Return: never},
		{ClientId: 2, Input: kvIn{kind: opGet, key: 1}, Output: kvOut{value: "c"}, Call: 40, Return: 50},
		// Seen by nobody, though they expect each other's values.
		{ClientId: 3, Input: kvIn{kind: opPut, key: 1, value: "d"}, Output: unknown, Call: 60, Return: never},
		{ClientId: 3, Input: kvIn{kind: opCAS, key: 1, value: "e", expect: "d"}, Output: unknown, Call: 70, Return: never},
		{ClientId: 4, Input: kvIn{kind: opCAS, key: 1, value: "f", expect: "c"}, Output: unknown, Call: 80, Return: never},
	}
	kept := prune(ops)
	var values []string
	for _, o := range kept {
		values = append(values, o.Input.(kvIn).value)
	}
	if fmt.Sprint(values) != "[a b c ]" {
		t.Fatalf("prune kept the writes of %q, want a, b, c and the get", values)
	}
	if !porcupine.CheckOperations(kvModel, kept) {
		t.Fatal("the pruned history is not linearizable")
	}
	// Without the unknown put of b the get of c cannot be explained: the
	// chain had to stay.
	if porcupine.CheckOperations(kvModel, slices.Delete(slices.Clone(kept), 1, 2)) {
		t.Fatal("a history without the write of b checked as linearizable")
	}

	// A partition: every client leaves a run of unknown writes, each CAS
	// expecting the client's previous value, and afterwards everyone reads
	// the value from before. None of them took effect; kept, they were 180
	// writes open to the end of the history.
	part := []porcupine.Operation{{ClientId: 0, Input: kvIn{kind: opPut, key: 2, value: "x"}, Output: kvOut{}, Call: 0, Return: 5}}
	at := int64(10)
	for i := range 15 {
		for c := range 6 {
			prev := fmt.Sprintf("%d.%d", c, 2*i)
			part = append(part,
				porcupine.Operation{ClientId: c, Input: kvIn{kind: opPut, key: 2, value: prev}, Output: unknown, Call: at, Return: never},
				porcupine.Operation{ClientId: c, Input: kvIn{kind: opCAS, key: 2, value: fmt.Sprintf("%d.%d", c, 2*i+1), expect: prev}, Output: unknown, Call: at + 1, Return: never})
			at += 2
		}
	}
	for c := range 6 {
		part = append(part, porcupine.Operation{ClientId: c, Input: kvIn{kind: opGet, key: 2}, Output: kvOut{value: "x"}, Call: at, Return: at + 1})
		at += 2
	}
	if kept := prune(part); len(kept) != 7 {
		t.Fatalf("prune kept %d of the partition's %d operations, want the put and the 6 reads", len(kept), len(part))
	} else if !porcupine.CheckOperations(kvModel, kept) {
		t.Fatal("the pruned partition is not linearizable")
	}
}
