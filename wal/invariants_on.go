//go:build invariants

package wal

// invariants turns on costly self-checks: every appended record's checksum
// is verified before it is written, and every range read is re-verified.
const invariants = true
