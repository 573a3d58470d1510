package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// A history whose check ran out of time is saved, so that it can be
// checked again with a larger budget: porcupine also runs out of time
// while proving a history not linearizable, so a timeout is not a pass.
//
//	KRAFT_FAULTS_RECHECK=<file> KRAFT_FAULTS_CHECK_BUDGET=30m go test -run TestRecheckFaultHistory -v ./e2e

// savedOp is one operation of a saved history.
type savedOp struct {
	Client  int    `json:"client"`
	Kind    opKind `json:"kind"` // 0 put, 1 get, 2 cas
	Key     int    `json:"key"`
	Value   string `json:"value,omitempty"`
	Expect  string `json:"expect,omitempty"`
	Out     string `json:"out,omitempty"`
	Swapped bool   `json:"swapped,omitempty"`
	Unknown bool   `json:"unknown,omitempty"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return"`
}

// saveHistory writes ops, one JSON object per line, to a file in dir
// (kept after the test) and returns its path.
func saveHistory(dir, name string, ops []porcupine.Operation) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+"-history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	enc := json.NewEncoder(f)
	for _, o := range ops {
		in, out := o.Input.(kvIn), o.Output.(kvOut)
		if err := enc.Encode(savedOp{Client: o.ClientId, Kind: in.kind, Key: in.key, Value: in.value, Expect: in.expect,
			Out: out.value, Swapped: out.swapped, Unknown: out.unknown, Call: o.Call, Return: o.Return}); err != nil {
			f.Close()
			return "", err
		}
	}
	return path, f.Close()
}

// loadHistory reads what saveHistory wrote.
func loadHistory(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []porcupine.Operation
	dec := json.NewDecoder(f)
	for dec.More() {
		var s savedOp
		if err := dec.Decode(&s); err != nil {
			return nil, fmt.Errorf("%s: operation %d: %w", path, len(ops)+1, err)
		}
		if s.Kind > opCAS {
			return nil, fmt.Errorf("%s: operation %d: unknown kind %d", path, len(ops)+1, s.Kind)
		}
		ops = append(ops, porcupine.Operation{ClientId: s.Client, Input: kvIn{kind: s.Kind, key: s.Key, value: s.Value, expect: s.Expect},
			Output: kvOut{value: s.Out, swapped: s.Swapped, unknown: s.Unknown}, Call: s.Call, Return: s.Return})
	}
	return ops, nil
}

// checkSaved prunes ops as the test does (a history saved before prune
// learnt to follow chains of unknown writes holds writes it now drops),
// then checks each key's operations on their own within budget and
// reports per key; it returns the keys that are not linearizable and those
// whose check ran out of time.
func checkSaved(t *testing.T, ops []porcupine.Operation, budget time.Duration) (illegal, undecided []int) {
	for _, part := range kvModel.Partition(prune(ops)) {
		key := part[0].Input.(kvIn).key
		unknown := 0
		for _, o := range part {
			if o.Output.(kvOut).unknown {
				unknown++
			}
		}
		start := time.Now()
		res := porcupine.CheckOperationsTimeout(kvModel, part, budget)
		t.Logf("key k%d: %d operations (%d unknown): %v in %v", key, len(part), unknown, res, time.Since(start).Round(time.Millisecond))
		switch res {
		case porcupine.Illegal:
			illegal = append(illegal, key)
		case porcupine.Unknown:
			undecided = append(undecided, key)
		}
	}
	return illegal, undecided
}

// TestRecheckFaultHistory checks a history that TestLinearizableUnderFaults
// saved when its check ran out of time (KRAFT_FAULTS_RECHECK), key by key,
// with KRAFT_FAULTS_CHECK_BUDGET (default 10m) per key.
func TestRecheckFaultHistory(t *testing.T) {
	path := os.Getenv("KRAFT_FAULTS_RECHECK")
	if path == "" {
		t.Skip("KRAFT_FAULTS_RECHECK names no saved history")
	}
	budget := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("KRAFT_FAULTS_CHECK_BUDGET")); err == nil && d > 0 {
		budget = d
	}
	ops, err := loadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	illegal, undecided := checkSaved(t, ops, budget)
	if len(illegal) > 0 {
		t.Errorf("keys %v are NOT linearizable", illegal)
	}
	if len(undecided) > 0 {
		t.Errorf("keys %v are still undecided after %v each", undecided, budget)
	}
}

// A saved history reads back as it was, and the per-key check finds a
// stale read in it.
func TestSavedHistoryRoundTrip(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: kvIn{kind: opPut, key: 1, value: "a"}, Output: kvOut{}, Call: 0, Return: 10},
		{ClientId: 1, Input: kvIn{kind: opCAS, key: 1, value: "b", expect: "a"}, Output: kvOut{unknown: true}, Call: 20, Return: 1 << 62},
		{ClientId: 2, Input: kvIn{kind: opGet, key: 2}, Output: kvOut{value: absent}, Call: 5, Return: 6},
	}
	path, err := saveHistory(t.TempDir(), t.Name(), ops)
	if err != nil {
		t.Fatal(err)
	}
	back, err := loadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(ops) {
		t.Fatalf("read back\n%v\nwrote\n%v", back, ops)
	}
	if illegal, undecided := checkSaved(t, back, time.Minute); len(illegal)+len(undecided) != 0 {
		t.Fatalf("a linearizable history: illegal keys %v, undecided %v", illegal, undecided)
	}
	// A read of the old value after the put returned: not linearizable.
	stale := append(back, porcupine.Operation{ClientId: 3, Input: kvIn{kind: opGet, key: 1}, Output: kvOut{value: absent}, Call: 15, Return: 16})
	if illegal, _ := checkSaved(t, stale, time.Minute); len(illegal) != 1 || illegal[0] != 1 {
		t.Fatalf("a stale read of k1: illegal keys %v, want [1]", illegal)
	}
	if err := os.WriteFile(path, []byte(`{"kind":7,"key":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHistory(path); err == nil || !strings.Contains(err.Error(), "unknown kind 7") {
		t.Fatalf("a bad kind: %v", err)
	}
}
