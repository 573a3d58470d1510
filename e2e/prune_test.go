package e2e

import (
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
		// Its CAS's outcome is unknown, so it may have seen 3.1: stays (the
		// CAS itself, whose value nobody saw, goes).
		{ClientId: 3, Input: kvIn{kind: opPut, key: 1, value: "3.1"}, Output: kvOut{unknown: true}, Call: 80, Return: 1 << 62},
		{ClientId: 3, Input: kvIn{kind: opCAS, key: 1, value: "3.2", expect: "3.1"}, Output: kvOut{unknown: true}, Call: 90, Return: 1 << 62},
	}
	kept := prune(ops)
	values := map[string]bool{}
	for _, o := range kept {
		values[o.Input.(kvIn).value] = true
	}
	if !values["5.1"] || !values["3.1"] || values["2.1"] || values["3.2"] || len(kept) != 5 {
		t.Fatalf("kept %d operations, values %v: want all but the put of 2.1 and the CAS to 3.2", len(kept), values)
	}
	if porcupine.CheckOperations(kvModel, kept) != true {
		t.Fatal("the pruned history is not linearizable, the whole one is")
	}
	if !porcupine.CheckOperations(kvModel, ops) {
		t.Fatal("the whole history should be linearizable")
	}
}
