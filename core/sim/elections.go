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

// LeaderReplacementTime reproduces one trial of the Raft paper's Figure 16:
// five servers with election timeouts uniform in [minMs, maxMs] (1 ms
// ticks, heartbeats every minMs/3), pre-vote and check-quorum as given. Once
// a leader has been stable for a random 0.5–1.5 s it crashes, at a random
// moment between heartbeats; the result is the time until another server
// is leader.
func LeaderReplacementTime(seed uint64, minMs, maxMs int, preVote, checkQuorum bool) (Time, error) {
	o := Options{Seed: seed, Voters: 5, Duration: 1 << 40, Tick: Millisecond,
		ElectionMinTicks: minMs, ElectionMaxTicks: maxMs, HeartbeatTicks: max(1, minMs/3),
		PreVote: preVote, CheckQuorum: checkQuorum,
		LatencyMin: ElectionNetwork.LatencyMin, LatencyMax: ElectionNetwork.LatencyMax,
		DiskMin: ElectionNetwork.DiskMin, DiskMax: ElectionNetwork.DiskMax}
	s := newSim(o)
	var crashAt Time
	var old *node
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(*event)
		s.now = e.at
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
		case old != nil && l != nil && l != old:
			return s.now - crashAt, nil
		}
		if s.now > 600*Second {
			return 0, fmt.Errorf("seed %d: no leader after 600 s", seed)
		}
	}
	return 0, fmt.Errorf("seed %d: simulation ran dry", seed)
}
