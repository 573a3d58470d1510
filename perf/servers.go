package perf

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// NodeCounters is one node's counters at one moment, read from its admin
// /metrics.
type NodeCounters struct {
	Addr   string
	Leader bool // kraft_is_leader
	// CPUSeconds: process_cpu_seconds_total (user+system of the kraftd
	// process; the kernel's clock ticks, 10 ms).
	CPUSeconds       float64
	WALSyncs         uint64 // kraft_wal_syncs_total
	Snapshots        uint64 // kraft_snapshots_total
	LeaderChanges    uint64 // kraft_leader_changes_total
	Elections        uint64 // kraft_elections_total (terms begun)
	SegmentsRecycled uint64 // kraft_wal_segments_recycled_total
	// Requests: kraft_client_requests_total by status, summed over ops.
	Requests map[string]uint64
}

// ServerCounters is what the nodes counted over a window: the difference
// of two scrapes (Since).
type ServerCounters struct {
	Nodes      int     `json:"nodes"` // nodes scraped at both ends
	CPUSeconds float64 `json:"cpu_s"` // all of them
	// LeaderWALSyncs: the WAL sync rounds of the node that led at both
	// ends; 0 when none did (a leader change in the window, or no leader).
	LeaderWALSyncs   uint64 `json:"leader_wal_syncs"`
	Snapshots        uint64 `json:"snapshots"`             // taken, all nodes
	SegmentsRecycled uint64 `json:"wal_segments_recycled"` // all nodes
	LeaderChanges    uint64 `json:"leader_changes"`        // the most any node saw
	// Elections: the most terms any node saw begin. A leader that steps
	// down and wins again is an election without a leader change.
	Elections uint64 `json:"elections"`
	// Rejected: answers that refused a request (not leader, timeout, no
	// quorum, too many requests, error, session expired), by status, all
	// nodes. NotFound and CompareFailed are answers, not refusals.
	Rejected map[string]uint64 `json:"rejected,omitempty"`
}

// answered are the statuses that are not refusals.
var answered = map[string]bool{"OK": true, "NotFound": true, "CompareFailed": true}

// Since is c minus an earlier scrape of the same nodes. A counter that
// went backwards (the node restarted in between) counts from zero.
func (c ServerSample) Since(before ServerSample) ServerCounters {
	delta := func(now, then uint64) uint64 {
		if now < then {
			return now
		}
		return now - then
	}
	var out ServerCounters
	prev := map[string]NodeCounters{}
	for _, n := range before {
		prev[n.Addr] = n
	}
	for _, n := range c {
		p, ok := prev[n.Addr]
		if !ok {
			continue
		}
		out.Nodes++
		if cpu := n.CPUSeconds - p.CPUSeconds; cpu >= 0 {
			out.CPUSeconds += cpu
		} else {
			out.CPUSeconds += n.CPUSeconds
		}
		if n.Leader && p.Leader {
			out.LeaderWALSyncs = delta(n.WALSyncs, p.WALSyncs)
		}
		out.Snapshots += delta(n.Snapshots, p.Snapshots)
		out.SegmentsRecycled += delta(n.SegmentsRecycled, p.SegmentsRecycled)
		out.LeaderChanges = max(out.LeaderChanges, delta(n.LeaderChanges, p.LeaderChanges))
		out.Elections = max(out.Elections, delta(n.Elections, p.Elections))
		for status, v := range n.Requests {
			if answered[status] {
				continue
			}
			if d := delta(v, p.Requests[status]); d > 0 {
				if out.Rejected == nil {
					out.Rejected = map[string]uint64{}
				}
				out.Rejected[status] += d
			}
		}
	}
	return out
}

// rejectedText is Rejected as "NotLeader 12, Timeout 3" (sorted by
// status), or "" when there were none.
func (c ServerRow) rejectedText() string {
	var parts []string
	for status, n := range c.Rejected {
		parts = append(parts, fmt.Sprintf("%s %d", status, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// ServerSample is one scrape of every node.
type ServerSample []NodeCounters

// Scraper reads the counters of a cluster's nodes from their admin ports.
type Scraper struct {
	urls  []string
	token string
	http  *http.Client
}

// NewScraper returns a scraper of the nodes whose admin addresses are
// admins: host:port (HTTP) or http(s)://host:port. token, if set, is sent
// as the bearer token kraftd's --admin-token asks for; tlsConfig (may be
// nil) is used for https addresses.
func NewScraper(admins []string, token string, tlsConfig *tls.Config) (*Scraper, error) {
	s := &Scraper{token: token, http: &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 1}}}
	for _, a := range admins {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			return nil, fmt.Errorf("kraft/perf: an empty admin address")
		case strings.HasPrefix(a, "http://"), strings.HasPrefix(a, "https://"):
		case strings.Contains(a, "://"):
			return nil, fmt.Errorf("kraft/perf: admin address %q: only http:// and https:// are spoken", a)
		default:
			a = "http://" + a
		}
		s.urls = append(s.urls, strings.TrimSuffix(a, "/")+"/metrics")
	}
	if len(s.urls) == 0 {
		return nil, fmt.Errorf("kraft/perf: no admin addresses")
	}
	return s, nil
}

// Close drops the scraper's idle connections to the nodes.
func (s *Scraper) Close() { s.http.CloseIdleConnections() }

// Scrape reads every node's counters now. Any node that does not answer
// is an error: a window's figures over some of the nodes would mislead.
func (s *Scraper) Scrape(ctx context.Context) (ServerSample, error) {
	out := make(ServerSample, 0, len(s.urls))
	for _, u := range s.urls {
		n, err := s.one(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func (s *Scraper) one(ctx context.Context, url string) (NodeCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return NodeCounters{}, fmt.Errorf("kraft/perf: %s: %w", url, err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return NodeCounters{}, fmt.Errorf("kraft/perf: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return NodeCounters{}, fmt.Errorf("kraft/perf: %s: %s", url, resp.Status)
	}
	n, err := parseMetrics(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return NodeCounters{}, fmt.Errorf("kraft/perf: %s: %w", url, err)
	}
	n.Addr = url
	return n, nil
}

// parseMetrics reads the counters NodeCounters names from Prometheus text.
// Other lines are skipped; a named metric whose value is not a number is
// an error, and so is text without process_cpu_seconds_total (not a
// kraftd's /metrics).
func parseMetrics(r io.Reader) (NodeCounters, error) {
	n := NodeCounters{Requests: map[string]uint64{}}
	sawCPU := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(text, ' ')
		if sp < 0 {
			continue
		}
		series, value := text[:sp], text[sp+1:]
		name, labels, _ := strings.Cut(series, "{")
		num := func() (float64, error) {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("line %d: %s: value %q is not a count", line, name, value)
			}
			return v, nil
		}
		var dst *uint64
		switch name {
		case "process_cpu_seconds_total":
			v, err := num()
			if err != nil {
				return n, err
			}
			n.CPUSeconds, sawCPU = v, true
			continue
		case "kraft_is_leader":
			v, err := num()
			if err != nil {
				return n, err
			}
			n.Leader = v == 1
			continue
		case "kraft_client_requests_total":
			v, err := num()
			if err != nil {
				return n, err
			}
			status := label(labels, "status")
			if status == "" {
				return n, fmt.Errorf("line %d: %s without a status label", line, name)
			}
			n.Requests[status] += uint64(v)
			continue
		case "kraft_wal_syncs_total":
			dst = &n.WALSyncs
		case "kraft_snapshots_total":
			dst = &n.Snapshots
		case "kraft_leader_changes_total":
			dst = &n.LeaderChanges
		case "kraft_elections_total":
			dst = &n.Elections
		case "kraft_wal_segments_recycled_total":
			dst = &n.SegmentsRecycled
		default:
			continue
		}
		v, err := num()
		if err != nil {
			return n, err
		}
		*dst = uint64(v)
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	if !sawCPU {
		return n, fmt.Errorf("no process_cpu_seconds_total: not a kraftd's /metrics")
	}
	return n, nil
}

// label returns the value of label key in a series' label text (what
// follows the '{'), or "".
func label(labels, key string) string {
	i := strings.Index(labels, key+`="`)
	for i > 0 && labels[i-1] != ',' && labels[i-1] != '{' {
		j := strings.Index(labels[i+1:], key+`="`)
		if j < 0 {
			return ""
		}
		i += 1 + j
	}
	if i < 0 {
		return ""
	}
	rest := labels[i+len(key)+2:]
	end := strings.IndexByte(rest, '"')
	if end < 0 {
		return ""
	}
	return rest[:end]
}
