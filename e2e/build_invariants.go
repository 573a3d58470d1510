//go:build invariants && !race

package e2e

var kraftdBuildFlags = []string{"-tags", "invariants"}
