//go:build race

package netio

// raceEnabled: the race detector multiplies memory and CPU per goroutine,
// so tests that measure them scale down.
const raceEnabled = true
