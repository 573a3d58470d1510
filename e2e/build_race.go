//go:build race

package e2e

// kraftdBuildFlags makes the processes under test match the test binary:
// race-detector builds test race-detector daemons.
var kraftdBuildFlags = []string{"-race"}
