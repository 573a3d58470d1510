package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kraftdb/kraft/core"
)

func scrape(m *nodeMetrics) string {
	var b bytes.Buffer
	m.write(&b)
	return b.String()
}

func TestMetricsFollowLeadership(t *testing.T) {
	m := newNodeMetrics(1)
	var refused uint64 = 4
	m.counterFunc("kraft_connections_refused_total", func() uint64 { return refused })
	leader := core.Status{ID: 1, Term: 3, Leader: 1, Role: core.RoleLeader, Commit: 10, LastIndex: 12,
		Membership: core.Membership{Voters: []uint64{1, 2, 3}},
		Peers:      []core.PeerStatus{{ID: 1, Match: 12}, {ID: 2, Match: 12}, {ID: 3, Match: 7}}}
	m.observe(leader)
	out := scrape(m)
	for _, want := range []string{
		`kraft_role{node="1"} 3`, `kraft_is_leader{node="1"} 1`, `kraft_term{node="1"} 3`, `kraft_cluster_size{node="1"} 3`,
		`kraft_replication_lag_entries{node="1",follower="3"} 5`, `kraft_replication_match_index{node="1",follower="2"} 12`,
		`kraft_pending_entries{node="1"} 2`, `process_open_fds`, `kraft_connections_refused_total{node="1"} 4`, `kraft_commit_latency_seconds_bucket{node="1",le="0.001"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// It steps down: the per-follower series go, and the term change counts
	// as an election.
	m.observe(core.Status{ID: 1, Term: 5, Leader: 2, Role: core.RoleFollower, Membership: leader.Membership})
	out = scrape(m)
	if strings.Contains(out, "kraft_replication_lag_entries") || strings.Contains(out, "kraft_replication_match_index") {
		t.Fatal("a follower still exports the replication series of its past leadership")
	}
	if !strings.Contains(out, `kraft_elections_total{node="1"} 2`) || !strings.Contains(out, `kraft_leader_changes_total{node="1"} 1`) {
		t.Fatalf("election and leader-change counters:\n%s", out)
	}
}
