package core

import (
	"fmt"
	"testing"
)

// A follower whose storage was wiped (the guide's data-corruption
// procedure restores a node from a snapshot into an empty data dir) no
// longer has entries it acknowledged. The leader must resend them, not
// take its rejections for stale ones and wait forever.
func TestWipedFollowerCatchesUp(t *testing.T) {
	for _, tc := range []struct {
		restore string
		write   bool // a write after the restart (else only heartbeats)
	}{{"empty", true}, {"snapshot", true}, {"empty", false}, {"snapshot", false}} {
		restore := tc.restore
		t.Run(fmt.Sprintf("%s/write=%v", tc.restore, tc.write), func(t *testing.T) {
			c := newCluster(t, 3)
			c.elect(1)
			for i := 0; i < 20; i++ {
				c.propose(1, fmt.Sprint("x", i))
			}
			c.deliver()
			last := c.nodes[1].log.lastIndex()
			if c.nodes[3].log.lastIndex() != last {
				t.Fatal("setup: follower not caught up")
			}
			// Node 3 comes back with its log gone.
			st := InitialState{}
			if restore == "snapshot" {
				snapIdx := last - 10
				term, _ := c.nodes[1].log.term(snapIdx)
				st.Snapshot = Snapshot{Meta: SnapshotMeta{Index: snapIdx, Term: term, Membership: c.nodes[1].members.clone()}}
				st.HardState = HardState{Term: term}
			}
			c.add(3, st)
			if tc.write {
				c.propose(1, "after")
				last++
			}
			c.deliver()
			for i := 0; i < 10 && c.nodes[3].log.lastIndex() < last; i++ {
				c.tick(1, c.nodes[1].cfg.HeartbeatIntervalTicks)
				c.deliver()
			}
			if got := c.nodes[3].log.lastIndex(); got != last {
				t.Fatalf("wiped follower stalled at index %d, leader at %d", got, last)
			}
			if c.nodes[3].log.committed != last {
				t.Fatalf("wiped follower's commit %d, want %d", c.nodes[3].log.committed, last)
			}
		})
	}
}
