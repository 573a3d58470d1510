//go:build invariants

package core

// invariantsOn enables the costly self-checks (whole-log scans after every
// mutation). The test suite runs with -tags invariants.
const invariantsOn = true
