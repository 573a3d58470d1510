//go:build race

package core

// raceBuild scales down single-goroutine model tests under the race
// detector, which slows them about tenfold and has nothing to check in
// them; the plain and invariants runs do the full counts.
const raceBuild = true
