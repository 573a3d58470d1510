package server

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/wire"
)

// latencyBucketsSeconds are Prometheus-style upper bounds, so that
// histogram_quantile works on the _bucket series (VictoriaMetrics' own
// vmrange histograms would not).
var latencyBucketsSeconds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// nodeMetrics is the metrics.Set of one node. Gauges read the status
// captured at the start of each scrape (one round trip to the Raft loop per
// scrape, not one per gauge).
type nodeMetrics struct {
	set  *metrics.Set
	node string

	status atomic.Pointer[core.Status]

	commitLatency  *metrics.PrometheusHistogram // proposal accepted → applied (what a client waits)
	persistLatency *metrics.PrometheusHistogram // WAL append → durable (the fsync)
	readLatency    *metrics.PrometheusHistogram // linearizable read: ReadIndex → applied
	elections      *metrics.Counter
	leaderChanges  *metrics.Counter
	snapshots      *metrics.Counter
	readIndexes    *metrics.Counter
	transfers      *metrics.Counter
	oversized      *metrics.Counter // writes refused by --max-key-size / --max-value-size

	mu          sync.Mutex
	reqCounters [8][16]atomic.Pointer[metrics.Counter] // by op and status (request)
	lastTerm    uint64
	lastLead    uint64
	lastSnap    uint64
	// followerGauges are the per-follower series this node exports while it
	// leads; they are removed when it stops leading or a follower leaves,
	// so no stale lag outlives the leadership it described.
	followerGauges map[string]bool
	sources        []counterSource
}

func newNodeMetrics(nodeID uint64) *nodeMetrics {
	m := &nodeMetrics{set: metrics.NewSet(), node: strconv.FormatUint(nodeID, 10)}
	l := `{node="` + m.node + `"}`
	g := func(name string, f func(s *core.Status) float64) {
		m.set.NewGauge(name+l, func() float64 {
			if s := m.status.Load(); s != nil {
				return f(s)
			}
			return 0
		})
	}
	g("kraft_role", func(s *core.Status) float64 { return float64(s.Role) })
	g("kraft_is_leader", func(s *core.Status) float64 { return b2f(s.Role == core.RoleLeader) })
	g("kraft_term", func(s *core.Status) float64 { return float64(s.Term) })
	g("kraft_commit_index", func(s *core.Status) float64 { return float64(s.Commit) })
	g("kraft_last_applied", func(s *core.Status) float64 { return float64(s.Applied) })
	g("kraft_last_log_index", func(s *core.Status) float64 { return float64(s.LastIndex) })
	g("kraft_first_log_index", func(s *core.Status) float64 { return float64(s.FirstIndex) })
	g("kraft_snapshot_index", func(s *core.Status) float64 { return float64(s.SnapshotIndex) })
	g("kraft_leader_id", func(s *core.Status) float64 { return float64(s.Leader) })
	g("kraft_cluster_size", func(s *core.Status) float64 { return float64(len(s.Membership.Voters)) })
	g("kraft_pending_config_change", func(s *core.Status) float64 { return b2f(s.PendingConfIndex != 0) })
	m.commitLatency = m.set.NewPrometheusHistogramExt("kraft_commit_latency_seconds"+l, latencyBucketsSeconds)
	m.persistLatency = m.set.NewPrometheusHistogramExt("kraft_fsync_latency_seconds"+l, latencyBucketsSeconds)
	m.readLatency = m.set.NewPrometheusHistogramExt("kraft_readindex_latency_seconds"+l, latencyBucketsSeconds)
	g("kraft_pending_entries", func(s *core.Status) float64 { return float64(s.LastIndex - min(s.LastIndex, s.Commit)) })
	g("kraft_log_entries_since_snapshot", func(s *core.Status) float64 { return float64(s.LastIndex - min(s.LastIndex, s.SnapshotIndex)) })
	m.elections = m.set.NewCounter("kraft_elections_total" + l)
	m.leaderChanges = m.set.NewCounter("kraft_leader_changes_total" + l)
	m.snapshots = m.set.NewCounter("kraft_snapshots_total" + l)
	m.readIndexes = m.set.NewCounter("kraft_readindex_total" + l)
	m.transfers = m.set.NewCounter("kraft_leadership_transfers_total" + l)
	m.oversized = m.set.NewCounter("kraft_requests_oversized_total" + l)
	return m
}

// counterFunc registers a counter of this node whose value is read at
// scrape time from a monotonic source (the transport's counters).
func (m *nodeMetrics) counterFunc(name string, f func() uint64) {
	c := m.set.NewCounter(name + `{node="` + m.node + `"}`)
	m.mu.Lock()
	m.sources = append(m.sources, counterSource{c, f})
	m.mu.Unlock()
}

type counterSource struct {
	c *metrics.Counter
	f func() uint64
}

// gauge registers a gauge of this node computed at scrape time.
func (m *nodeMetrics) gauge(name string, f func() float64) {
	m.set.NewGauge(name+`{node="`+m.node+`"}`, f)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observe records a status: the gauges' source, and term and leader
// changes for the counters. Every term a node sees begins with an election.
func (m *nodeMetrics) observe(s core.Status) {
	m.status.Store(&s)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastTerm != 0 && s.Term > m.lastTerm {
		m.elections.Add(int(s.Term - m.lastTerm))
	}
	if s.Leader != 0 && s.Leader != m.lastLead {
		if m.lastLead != 0 {
			m.leaderChanges.Inc()
		}
		m.lastLead = s.Leader
	}
	m.lastTerm = s.Term
	if s.SnapshotIndex > m.lastSnap {
		if m.lastSnap != 0 || s.SnapshotIndex > 0 {
			m.snapshots.Inc()
		}
		m.lastSnap = s.SnapshotIndex
	}
	current := map[string]bool{}
	if s.Role == core.RoleLeader {
		for _, p := range s.Peers {
			if p.ID == s.ID {
				continue
			}
			f := `{node="` + m.node + `",follower="` + strconv.FormatUint(p.ID, 10) + `"}`
			match, lag := float64(p.Match), float64(0)
			if s.LastIndex > p.Match {
				lag = float64(s.LastIndex - p.Match)
			}
			m.set.GetOrCreateGauge("kraft_replication_match_index"+f, nil).Set(match)
			m.set.GetOrCreateGauge("kraft_replication_lag_entries"+f, nil).Set(lag)
			current[f] = true
		}
	}
	for f := range m.followerGauges {
		if !current[f] {
			m.set.UnregisterMetric("kraft_replication_match_index" + f)
			m.set.UnregisterMetric("kraft_replication_lag_entries" + f)
		}
	}
	m.followerGauges = current
}

// request counts one client request by operation and outcome. The
// counters are created on first use and found again without a lock or an
// allocation (this runs once per request).
func (m *nodeMetrics) request(op wire.Op, status wire.Status) {
	if int(op) >= len(m.reqCounters) || int(status) >= len(m.reqCounters[0]) {
		m.requestSlow(op, status)
		return
	}
	slot := &m.reqCounters[op][status]
	c := slot.Load()
	if c == nil {
		c = m.set.GetOrCreateCounter(fmt.Sprintf(`kraft_client_requests_total{node=%q,op=%q,status=%q}`, m.node, op.String(), status.String()))
		slot.Store(c)
	}
	c.Inc()
}

// requestSlow counts a request whose op or status has no slot (codes
// added to wire after the table was sized).
func (m *nodeMetrics) requestSlow(op wire.Op, status wire.Status) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`kraft_client_requests_total{node=%q,op=%q,status=%q}`, m.node, op.String(), status.String())).Inc()
}

func (m *nodeMetrics) since(h *metrics.PrometheusHistogram, start time.Time) {
	h.Update(time.Since(start).Seconds())
}

// write renders the Prometheus text: this node's set and the process's.
func (m *nodeMetrics) write(w io.Writer) {
	m.mu.Lock()
	for _, src := range m.sources {
		src.c.Set(src.f())
	}
	m.mu.Unlock()
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
	metrics.WriteFDMetrics(w)
}
