package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestKraftdIsBuiltWithItsProfile: go build picks up cmd/kraftd/default.pgo
// by itself (-pgo=auto), and the kraftd these tests run is built the way
// `make build` builds it. If the profile moved or a flag turned it off, the
// shipped binary would lose ~5% of its throughput (perf/results/speedups.md,
// item 68) and nothing else would say so.
func TestKraftdIsBuiltWithItsProfile(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", kraftdBin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^\s*build\s+-pgo=(\S+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("kraftd was built without a PGO profile; its build settings:\n%s", out)
	}
	if got := string(m[1]); filepath.Base(got) != "default.pgo" || filepath.Base(filepath.Dir(got)) != "kraftd" {
		t.Fatalf("kraftd was built with profile %s, want cmd/kraftd/default.pgo", got)
	}
}
