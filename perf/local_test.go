package perf

import (
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
