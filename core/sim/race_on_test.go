//go:build race

package sim

// raceBuild scales the seed counts down under the race detector, which
// slows the simulator about tenfold; the plain and invariants runs do the
// full counts.
const raceBuild = true
