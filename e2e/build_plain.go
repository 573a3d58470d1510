//go:build !race && !invariants

package e2e

var kraftdBuildFlags []string
