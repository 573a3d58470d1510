//go:build invariants

package tuning

import "fmt"

// assertResults checks what every Result promises: a known status, a name,
// a reason, and a fix only on a WARN. Compiled in under -tags invariants.
func assertResults(rs []Result) {
	for _, r := range rs {
		switch r.Status {
		case StatusOK, StatusWarn, StatusCannotRead:
		default:
			panic(fmt.Sprintf("kraft: BUG: tuning result %q has status %q", r.Check, r.Status))
		}
		if r.Check == "" || r.Reason == "" || r.Current == "" || r.Recommended == "" {
			panic(fmt.Sprintf("kraft: BUG: tuning result has an empty field: %+v", r))
		}
		if r.fix != nil && r.Status != StatusWarn {
			panic(fmt.Sprintf("kraft: BUG: tuning result %q has a fix but status %s", r.Check, r.Status))
		}
	}
}
