//go:build !invariants

package wal

// invariants is false in normal builds; see invariants_on.go.
const invariants = false
