//go:build !invariants

package sm

// invariants is false in normal builds; see invariants_on.go.
const invariants = false
