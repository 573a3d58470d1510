package sim

import (
	"container/heap"
	"fmt"
)

// ElectionNetwork is the network model of the leader-replacement
// experiment: one-way delay uniform in [1 ms, 5 ms], so a broadcast (send to
// all, hear back from all) takes about 6 ms on average and at most 10 ms;
// disk writes take 0.1–0.5 ms.
var ElectionNetwork = struct{ LatencyMin, LatencyMax, DiskMin, DiskMax Time }{
	1 * Millisecond, 5 * Millisecond, 100 * Microsecond, 500 * Microsecond}

// ElectionTrial describes one leader-replacement trial.
type ElectionTrial struct {
	Seed uint64
	// Voters: the cluster size; 0 means 5, the paper's.
	Voters int
	// MinMs, MaxMs: the election timeout range (1 ms ticks).
	MinMs, MaxMs         int
	PreVote, CheckQuorum bool
	// SlowClock > 1: from the crash on, the first surviving voter gets
	// only every SlowClock-th tick, as a driver whose clock loses ticks
	// would deliver them. kraftd's did (1 ms ticks on a time.Ticker that
	// the Go runtime delivered up to 10 ms late, dropping the rest): the
	// survivor that the retrying client kept busy counted about one tick
	// in seven, see perf/results/elections.md.
	SlowClock int
}

// LeaderReplacementTime reproduces one trial of the Raft paper's Figure 16:
// t.Voters servers with election timeouts uniform in [t.MinMs, t.MaxMs]
// (1 ms ticks, heartbeats every MinMs/3), pre-vote and check-quorum as
// given. Once a leader has been stable for a random 0.5–1.5 s it crashes,
// at a random moment between heartbeats; the result is the time until
// another server is leader.
func LeaderReplacementTime(t ElectionTrial) (Time, error) {
	voters := t.Voters
	if voters == 0 {
		voters = 5
	}
	o := Options{Seed: t.Seed, Voters: voters, Duration: 1 << 40, Tick: Millisecond,
		ElectionMinTicks: t.MinMs, ElectionMaxTicks: t.MaxMs, HeartbeatTicks: max(1, t.MinMs/3),
		PreVote: t.PreVote, CheckQuorum: t.CheckQuorum,
		LatencyMin: ElectionNetwork.LatencyMin, LatencyMax: ElectionNetwork.LatencyMax,
		DiskMin: ElectionNetwork.DiskMin, DiskMax: ElectionNetwork.DiskMax}
	s := newSim(o)
	var crashAt Time
	var old, slow *node
	slowTicks := 0
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(*event)
		s.now = e.at
		if slow != nil && e.kind == evTick && e.node == slow.idx && e.inc == slow.inc {
			if slowTicks++; slowTicks%t.SlowClock != 0 {
				s.push(&event{at: s.now + s.o.Tick, kind: evTick, node: e.node, inc: e.inc})
				continue // a tick the driver lost
			}
		}
		s.handle(e)
		if s.err == nil {
			s.checkSafety()
		}
		if s.err != nil {
			return 0, s.err
		}
		l := s.leader()
		switch {
		case old == nil && l != nil && crashAt == 0:
			crashAt = s.now + 500*Millisecond + Time(s.rng.IntN(1000))*Millisecond
		case old == nil && crashAt != 0 && s.now >= crashAt:
			if l == nil {
				crashAt = 0 // leadership changed on its own; wait for stability
				continue
			}
			old, crashAt = l, s.now
			s.crash(l, 1<<40)
			if t.SlowClock > 1 {
				slow = s.firstUpVoter()
			}
		case old != nil && l != nil && l != old:
			return s.now - crashAt, nil
		}
		if s.now > 600*Second {
			return 0, fmt.Errorf("seed %d: no leader after 600 s", t.Seed)
		}
	}
	return 0, fmt.Errorf("seed %d: simulation ran dry", t.Seed)
}

// firstUpVoter is the running node with the lowest index.
func (s *Sim) firstUpVoter() *node {
	for _, n := range s.nodes {
		if n.up {
			return n
		}
	}
	return nil
}
