package sim

import (
	"testing"

	"github.com/kraftdb/kraft/core"
)

// bugSeedBudget is how many seeds the simulator gets to find each injected
// bug. Finding it proves the checks and the fault mix can see that class of
// mistake.
const bugSeedBudget = 600

// simFindableBugs are the injected bugs the simulator must find.
// BugCommitOldTerm needs the exact Figure 8 schedule, which random faults
// did not produce within 1,500 seeds; core's TestFigure8OldTermNotCommittedByCounting
// catches it instead.
var simFindableBugs = []core.Bug{
	core.BugVoteNotPersisted, core.BugKeepConflict, core.BugReadNoHeartbeat,
	core.BugSnapshotOffByOne, core.BugVoteIgnoresLog,
}

func TestSimFindsInjectedBugs(t *testing.T) {
	for _, b := range simFindableBugs {
		t.Run(b.String(), func(t *testing.T) {
			found := uint64(0)
			for seed := uint64(1); seed <= bugSeedBudget; seed++ {
				o := Profile(seed)
				o.Bug = b
				if _, err := Run(o); err != nil {
					found = seed
					t.Logf("found by seed %d: %v", seed, firstLine(err))
					break
				}
			}
			if found == 0 {
				t.Fatalf("bug %v not found within %d seeds", b, bugSeedBudget)
			}
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
