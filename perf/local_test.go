package perf

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A local node's process gets the extra environment on top of this
// process's (kraftbench --kraftd-env), and only its own when none is given.
func TestLocalNodeEnvironment(t *testing.T) {
	t.Setenv("KRAFT_TEST_INHERITED", "yes")
	for _, tc := range []struct {
		env  []string
		want []string
		not  []string
	}{
		{env: []string{"GOMAXPROCS=1", "KRAFT_TEST_EXTRA=a b"}, want: []string{"GOMAXPROCS=1", "KRAFT_TEST_EXTRA=a b", "KRAFT_TEST_INHERITED=yes"}},
		{want: []string{"KRAFT_TEST_INHERITED=yes"}, not: []string{"KRAFT_TEST_EXTRA="}},
	} {
		lc := &LocalCluster{bin: "/usr/bin/env", env: tc.env, nodes: []*localNode{{}}}
		out, err := lc.command(0).Output()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(out), "\n")
		has := func(s string) bool {
			for _, l := range lines {
				if strings.HasPrefix(l, s) {
					return true
				}
			}
			return false
		}
		for _, w := range tc.want {
			if !has(w) {
				t.Errorf("env %q: the process lacks %q", tc.env, w)
			}
		}
		for _, n := range tc.not {
			if has(n) {
				t.Errorf("env %q: the process has %q", tc.env, n)
			}
		}
	}
}

// Co-located nodes share the host's CPUs unless somebody chose a
// GOMAXPROCS: in --kraftd-env (env) or in kraftbench's own environment.
func TestWithSharedProcs(t *testing.T) {
	share := SharedProcs(3)
	if share < 1 || share > max(1, runtime.NumCPU()/3) {
		t.Fatalf("SharedProcs(3) = %d on %d CPUs", share, runtime.NumCPU())
	}
	if got := SharedProcs(4 * runtime.NumCPU()); got != 1 {
		t.Errorf("more nodes than CPUs: SharedProcs = %d, want 1", got)
	}
	if got := SharedProcs(1); got != runtime.NumCPU() {
		t.Errorf("one node: SharedProcs = %d, want every CPU (%d)", got, runtime.NumCPU())
	}
	for _, tc := range []struct {
		env       []string
		inherited string
		want      []string
		procs     int
	}{
		{env: nil, want: []string{"GOMAXPROCS=" + strconv.Itoa(share)}, procs: share},
		{env: []string{"GOGC=200"}, want: []string{"GOGC=200", "GOMAXPROCS=" + strconv.Itoa(share)}, procs: share},
		{env: []string{"GOMAXPROCS=2", "GOGC=200"}, want: []string{"GOMAXPROCS=2", "GOGC=200"}, procs: 2},
		{env: []string{"GOMAXPROCS=2"}, inherited: "4", want: []string{"GOMAXPROCS=2"}, procs: 2},
		{env: nil, inherited: "4", want: nil, procs: 4},
		{env: []string{"GOGC=off"}, inherited: "x", want: []string{"GOGC=off"}, procs: 0},
		{env: []string{"GOMAXPROCS=0"}, want: []string{"GOMAXPROCS=0"}, procs: 0},
	} {
		out, procs := WithSharedProcs(tc.env, 3, tc.inherited)
		if !slices.Equal(out, tc.want) || procs != tc.procs {
			t.Errorf("WithSharedProcs(%q, 3, %q) = %q, %d; want %q, %d", tc.env, tc.inherited, out, procs, tc.want, tc.procs)
		}
	}
	// The caller's slice is not written through.
	env := make([]string, 1, 4)
	env[0] = "GOGC=200"
	if out, _ := WithSharedProcs(env, 3, ""); &out[0] == &env[0] {
		t.Error("the result shares the caller's backing array")
	}
}
