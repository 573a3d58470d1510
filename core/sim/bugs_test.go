package sim

import (
	"testing"

	"github.com/kraftdb/kraft/core"
)

// bugSeedBudget is how many seeds the simulator gets to find each injected
// bug. Finding it proves the checks and the fault mix can see that class of
// mistake.
const bugSeedBudget = 600

// simFindableBugs are the injected bugs the simulator must find. Each one
// breaks a different check: election safety (vote not persisted), state
// machine safety or log matching (conflict kept, snapshot off by one),
// leader completeness (old-term commit, vote ignoring the log) and
// linearizability (read without a heartbeat round); acknowledging before
// the disk write breaks whichever a crash that loses the write reaches. BugCommitOldTerm needs a
// Figure 8 schedule and is the rarest; core's
// TestFigure8OldTermNotCommittedByCounting also catches it directly.
var simFindableBugs = []core.Bug{
	core.BugVoteNotPersisted, core.BugCommitOldTerm, core.BugKeepConflict,
	core.BugReadNoHeartbeat, core.BugSnapshotOffByOne, core.BugVoteIgnoresLog,
	core.BugAckBeforePersist,
}

func TestSimFindsInjectedBugs(t *testing.T) {
	if raceBuild {
		// It proves the checks' power, not the code's thread safety (the
		// simulator is single-threaded); the plain and invariants builds
		// run it, the race build would take minutes.
		t.Skip("skipped under the race detector")
	}
	for _, b := range simFindableBugs {
		t.Run(b.String(), func(t *testing.T) {
			errs := runSeeds(t, 1, bugSeedBudget, func(seed uint64) Options {
				o := Profile(seed)
				o.Bug = b
				return o
			})
			if len(errs) == 0 {
				t.Fatalf("bug %v not found within %d seeds", b, bugSeedBudget)
			}
			t.Logf("found: %v", firstLine(errs[0]))
		})
	}
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
