package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const sampleMetrics = `kraft_is_leader{node="1"} 1
kraft_wal_syncs_total{node="1"} 1200
kraft_snapshots_total{node="1"} 3
kraft_leader_changes_total{node="1"} 1
kraft_elections_total{node="1"} 5
kraft_wal_segments_recycled_total{node="1"} 2
kraft_client_requests_total{node="1",op="put",status="OK"} 90000
kraft_client_requests_total{node="1",op="get",status="OK"} 500
kraft_client_requests_total{node="1",op="get",status="NotFound"} 7
kraft_client_requests_total{node="1",op="put",status="NotLeader"} 4
kraft_fsync_latency_seconds_bucket{node="1",le="0.001"} 99
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_cpu_seconds_user_total 9
`

func TestParseMetrics(t *testing.T) {
	n, err := parseMetrics(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	if !n.Leader || n.CPUSeconds != 12.5 || n.WALSyncs != 1200 || n.Snapshots != 3 || n.LeaderChanges != 1 || n.Elections != 5 || n.SegmentsRecycled != 2 {
		t.Fatalf("%+v", n)
	}
	if n.Requests["OK"] != 90500 || n.Requests["NotFound"] != 7 || n.Requests["NotLeader"] != 4 || len(n.Requests) != 3 {
		t.Fatalf("requests %v", n.Requests)
	}
	for _, bad := range []struct{ text, want string }{
		{"kraft_wal_syncs_total{node=\"1\"} many\nprocess_cpu_seconds_total 1\n", `value "many" is not a count`},
		{"kraft_snapshots_total -1\nprocess_cpu_seconds_total 1\n", `value "-1" is not a count`},
		{"kraft_client_requests_total{node=\"1\",op=\"put\"} 3\nprocess_cpu_seconds_total 1\n", "without a status label"},
		{"kraft_wal_syncs_total 3\n", "not a kraftd's /metrics"},
		{"<html>not found</html>\n", "not a kraftd's /metrics"},
	} {
		if _, err := parseMetrics(strings.NewReader(bad.text)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.text, err, bad.want)
		}
	}
}

func TestLabel(t *testing.T) {
	for _, c := range []struct{ labels, key, want string }{
		{`node="1",op="put",status="OK"}`, "status", "OK"},
		{`status="Timeout",node="2"}`, "status", "Timeout"},
		{`xstatus="no",status="yes"}`, "status", "yes"},
		{`node="1"}`, "status", ""},
		{`status="unterminated`, "status", ""},
	} {
		if got := label(c.labels, c.key); got != c.want {
			t.Errorf("label(%q, %q) = %q, want %q", c.labels, c.key, got, c.want)
		}
	}
}

func TestServerSampleSince(t *testing.T) {
	before := ServerSample{
		{Addr: "a", Leader: true, CPUSeconds: 10, WALSyncs: 100, Snapshots: 1, LeaderChanges: 2, Requests: map[string]uint64{"OK": 50, "NotLeader": 1}},
		{Addr: "b", CPUSeconds: 5, WALSyncs: 90, SegmentsRecycled: 4, Requests: map[string]uint64{"OK": 3}},
		{Addr: "c", CPUSeconds: 50, WALSyncs: 1000, Snapshots: 9, Elections: 7},
	}
	after := ServerSample{
		{Addr: "a", Leader: true, CPUSeconds: 13, WALSyncs: 160, Snapshots: 2, LeaderChanges: 2, Requests: map[string]uint64{"OK": 90, "NotLeader": 1, "CompareFailed": 5}},
		{Addr: "b", CPUSeconds: 7, WALSyncs: 150, SegmentsRecycled: 6, Requests: map[string]uint64{"OK": 3, "Timeout": 2, "NotFound": 8}},
		// c restarted: its counters start again from zero.
		{Addr: "c", CPUSeconds: 1, WALSyncs: 20, Snapshots: 1, LeaderChanges: 1, Elections: 3, Requests: map[string]uint64{"NotLeader": 3}},
		{Addr: "d", CPUSeconds: 99}, // not in the first scrape
	}
	got := after.Since(before)
	if got.Nodes != 3 || got.CPUSeconds != 3+2+1 || got.LeaderWALSyncs != 60 || got.Snapshots != 2 || got.SegmentsRecycled != 2 || got.LeaderChanges != 1 || got.Elections != 3 {
		t.Fatalf("%+v", got)
	}
	if len(got.Rejected) != 2 || got.Rejected["NotLeader"] != 3 || got.Rejected["Timeout"] != 2 {
		t.Fatalf("rejected %v", got.Rejected)
	}
	// A leader change in between: no node led at both ends.
	after[0].Leader, after[1].Leader = false, true
	if got := after.Since(before); got.LeaderWALSyncs != 0 {
		t.Fatalf("leader syncs across a leader change: %d", got.LeaderWALSyncs)
	}
}

func TestNewScraperAddresses(t *testing.T) {
	s, err := NewScraper([]string{"127.0.0.1:7003", " https://h:7003/ ", "http://h2:1"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://127.0.0.1:7003/metrics", "https://h:7003/metrics", "http://h2:1/metrics"}
	if strings.Join(s.urls, " ") != strings.Join(want, " ") {
		t.Fatalf("%v", s.urls)
	}
	for _, bad := range [][]string{nil, {""}, {"a:1", ""}, {"ftp://h:1"}} {
		if _, err := NewScraper(bad, "", nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestScraperSendsTokenAndRefusesOthers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/metrics":
			http.NotFound(w, r)
		case r.Header.Get("Authorization") != "Bearer sesame":
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		default:
			w.Write([]byte(sampleMetrics))
		}
	}))
	defer srv.Close()
	ok, _ := NewScraper([]string{srv.URL}, "sesame", nil)
	got, err := ok.Scrape(context.Background())
	if err != nil || len(got) != 1 || got[0].WALSyncs != 1200 || got[0].Addr != srv.URL+"/metrics" {
		t.Fatalf("%+v, %v", got, err)
	}
	bad, _ := NewScraper([]string{srv.URL}, "", nil)
	if _, err := bad.Scrape(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the token: %v", err)
	}
	// One node of two down: the scrape fails as a whole.
	half, _ := NewScraper([]string{srv.URL, "127.0.0.1:1"}, "sesame", nil)
	if _, err := half.Scrape(context.Background()); err == nil {
		t.Fatal("a scrape with a node down succeeded")
	}
}

// A row with the nodes' counters shows writes per leader sync, the events
// and the refusals; without them, dashes.
func TestRowWithServerCounters(t *testing.T) {
	res := sampleResult()
	res.Servers = &ServerCounters{Nodes: 3, CPUSeconds: 2, LeaderWALSyncs: 40, Snapshots: 2, SegmentsRecycled: 5, Elections: 1, LeaderChanges: 0,
		Rejected: map[string]uint64{"Timeout": 1, "NotLeader": 12}}
	r := NewRow(res, Floor{})
	r.Mode, r.Nodes, r.Clients, r.PayloadBytes, r.KeyDist = "closed", 3, 64, 128, "uniform"
	if r.Servers == nil || r.Servers.WritesPerLeaderSync != float64(res.Writes)/40 {
		t.Fatalf("%+v", r.Servers)
	}
	var tb strings.Builder
	WriteTable(&tb, Env{}, []Row{r})
	for _, want := range []string{"writes/sync", fmt.Sprintf("%.1f", float64(res.Writes)/40), "2/5/1/0",
		"refused by the nodes (64 clients, writes, 128 B, uniform): NotLeader 12, Timeout 1"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	b, _ := json.Marshal(r)
	for _, want := range []string{`"servers":{`, `"writes_per_leader_sync":`, `"wal_segments_recycled":5`, `"rejected":{"NotLeader":12,"Timeout":1}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	res.Servers = nil
	r = NewRow(res, Floor{})
	if b, _ := json.Marshal(r); strings.Contains(string(b), `"servers"`) {
		t.Errorf("JSON without counters: %s", b)
	}
}
