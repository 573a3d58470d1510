package perf

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	for us, want := range map[float64]string{0: "0µs", 236.4: "236µs", 1234: "1.23ms", 11700: "11.7ms", 1.5e6: "1.50s"} {
		if got := FormatDuration(us); got != want {
			t.Errorf("%v µs: %q, want %q", us, got, want)
		}
	}
}

func sampleResult() *Result {
	res := &Result{Ops: 1000, Writes: 1000, Elapsed: 2 * time.Second, CPUSeconds: 0.05, Latency: NewHistogram(),
		Service: NewHistogram(), SendLag: NewHistogram(), ReadLatency: NewHistogram(), WriteLatency: NewHistogram(),
		Timeline: []Interval{{End: time.Second, Ops: 500, P50: 200 * time.Microsecond}, {End: 2 * time.Second, Ops: 500}}}
	for range 1000 {
		res.Latency.Record(200 * time.Microsecond)
		res.Service.Record(100 * time.Microsecond)
	}
	return res
}

func TestNewRowRatiosToTheFloor(t *testing.T) {
	floor := Floor{FsyncP50: 80 * time.Microsecond, FsyncP99: 150 * time.Microsecond, RTTP50: 10 * time.Microsecond}
	r := NewRow(sampleResult(), floor)
	if r.CommitFloorUs != 100 || r.OpsPerSec != 500 {
		t.Fatalf("floor %v ops/s %v", r.CommitFloorUs, r.OpsPerSec)
	}
	// The 200 µs bucket's upper edge is within 0.8 % of 200.
	if r.P50xFloor < 2 || r.P50xFloor > 2.02 || r.MaxxFloor != 2 {
		t.Fatalf("p50 %.3f× max %.3f× floor, want 2", r.P50xFloor, r.MaxxFloor)
	}
	if r.OpsPerFloor != 0.05 { // 500/s × 100 µs
		t.Fatalf("ops per floor %v", r.OpsPerFloor)
	}
	if r.CPUusPerOp != 50 {
		t.Fatalf("CPU µs/op %v, want 0.05 s / 1000", r.CPUusPerOp)
	}
	if len(r.Timeline) != 2 || r.Timeline[0].P50us != 200 {
		t.Fatalf("timeline %+v", r.Timeline)
	}
	// The shared-disk floor: measured, its ratio; not measured, neither.
	shared := floor
	shared.SharedFsyncP50, shared.SharedBy = 180*time.Microsecond, 3
	if r := NewRow(sampleResult(), shared); r.SharedCommitFloorUs != 200 || r.SharedBy != 3 || r.P50xSharedFloor < 1 || r.P50xSharedFloor > 1.01 {
		t.Fatalf("shared floor %v by %d, p50 %.3f× of it, want 200 µs by 3, 1×", r.SharedCommitFloorUs, r.SharedBy, r.P50xSharedFloor)
	}
	if r.SharedCommitFloorUs != 0 || r.P50xSharedFloor != 0 {
		t.Fatalf("shared floor without a measurement: %v, %v×", r.SharedCommitFloorUs, r.P50xSharedFloor)
	}
	// No floor measured: no ratios, no division by zero.
	if r := NewRow(sampleResult(), Floor{}); r.P50xFloor != 0 || r.OpsPerFloor != 0 {
		t.Fatalf("ratios without a floor: %+v", r)
	}
	// No CPU measured.
	res := sampleResult()
	res.CPUSeconds = -1
	if r := NewRow(res, floor); r.CPUusPerOp != 0 {
		t.Fatal("CPU per op without CPU")
	}
}

func TestRowJSONNamesCarryUnits(t *testing.T) {
	r := NewRow(sampleResult(), Floor{FsyncP50: 80 * time.Microsecond, RTTP50: 10 * time.Microsecond})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ops_per_s", "p50_us", "p999_us", "max_us", "fsync_p50_us", "rtt_p50_us", "commit_floor_us",
		"p99_x_floor", "ops_per_floor", "cpu_us_per_op", "errors", "late", "missed", "timeline"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	var back Row
	if err := json.Unmarshal(b, &back); err != nil || back.P50us != r.P50us || back.CommitFloorUs != 100 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestTablesAndPlot(t *testing.T) {
	env := Env{Date: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Command: "kraftbench --local 3", Commit: "abc123",
		LoadBefore: "0.1 0.2 0.3", LoadAfter: "1.0 0.5 0.3", CPUs: 2, THP: "madvise"}
	r := NewRow(sampleResult(), Floor{FsyncP50: 80 * time.Microsecond, RTTP50: 10 * time.Microsecond, SharedFsyncP50: 180 * time.Microsecond, SharedBy: 3})
	r.Mode, r.Nodes, r.Clients, r.PayloadBytes, r.KeyDist = "closed", 3, 64, 128, "uniform"
	open := r
	open.Mode, open.RatePerSec, open.Late, open.Missed, open.FirstError = "open", 2000, 7, 1, "kraft/client: put: timeout"

	var tb strings.Builder
	WriteTable(&tb, env, []Row{r, open})
	for _, want := range []string{"abc123", "0.1 0.2 0.3", "transparent huge pages madvise", "64 clients, writes, 128 B, uniform", "open 2000/s (≤64 in flight)",
		"200µs (2.0×)", "7/1", "first error", "commit floor", "200µs (p50 1.0×)", "shared-disk floor"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	var md strings.Builder
	WriteMarkdown(&md, "Matrix", env, []Row{r}, 90*time.Second)
	lines := strings.Split(md.String(), "\n")
	if lines[0] != "# Matrix" || !strings.Contains(md.String(), "```sh\nkraftbench --local 3\n```") ||
		!strings.Contains(md.String(), "wall time 1m30s") || !strings.Contains(md.String(), "transparent huge pages `madvise`") {
		t.Fatalf("markdown:\n%s", md.String())
	}
	var header, sep, row string
	for i, l := range lines {
		if strings.HasPrefix(l, "| nodes") {
			header, sep, row = l, lines[i+1], lines[i+2]
		}
	}
	if n := strings.Count(header, "|"); n != strings.Count(sep, "|") || n != strings.Count(row, "|") {
		t.Fatalf("markdown table columns differ:\n%s\n%s\n%s", header, sep, row)
	}

	var pl strings.Builder
	if err := WritePlot(&pl, env, []Row{r}); err != nil {
		t.Fatal(err)
	}
	page := pl.String()
	if !strings.Contains(page, "<svg") || strings.Count(page, "<polyline") != 4 || strings.Contains(page, "<script") ||
		strings.Contains(page, "src=") {
		t.Fatalf("plot page is not a self-contained SVG page:\n%s", page)
	}
	// Each SVG is well-formed XML too, so it can be cut out and used alone.
	for rest := page; strings.Contains(rest, "<svg"); {
		i, j := strings.Index(rest, "<svg"), strings.Index(rest, "</svg>")+len("</svg>")
		d := xml.NewDecoder(strings.NewReader(rest[i:j]))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("SVG is not well-formed: %v\n%s", err, rest[i:j])
			}
		}
		rest = rest[j:]
	}
}

func TestElectionRow(t *testing.T) {
	s := []time.Duration{160 * time.Millisecond, 200 * time.Millisecond, 316 * time.Millisecond}
	e := []time.Duration{150 * time.Millisecond, 180 * time.Millisecond, 290 * time.Millisecond}
	r := NewElectionRow(5, ElectionSamples{Commit: s, Elected: e, Terms: []uint64{1, 1, 3}},
		Floor{FsyncP50: 80 * time.Microsecond, RTTP50: 10 * time.Microsecond})
	if r.Kills != 3 || r.P50ms != 200 || r.MaxMs != 316 || r.MinMs != 160 || r.MeanMs != 225.333 || r.P50xFloor != 2000 ||
		r.ElectedP50ms != 180 || r.ElectedMaxMs != 290 || r.TermsP50 != 1 || r.TermsMax != 3 || r.TermsExtra != 1 {
		t.Fatalf("%+v", r)
	}
	var b strings.Builder
	WriteElection(&b, Env{}, r)
	for _, want := range []string{"5 nodes, 3 leader kills", "terms begun per kill (the most any survivor counted, kraft_elections_total): p50 1, max 3; 1 of 3 kills took more than one"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("no %q in:\n%s", want, b.String())
		}
	}
}

func TestClusterNumber(t *testing.T) {
	if ClusterNumber("42") != 42 || ClusterNumber("0x10") != 16 {
		t.Fatal("numeric IDs are taken as numbers")
	}
	if ClusterNumber("kraft") == ClusterNumber("kraft2") || ClusterNumber("0") == 0 {
		t.Fatal("names hash")
	}
}

func TestShellJoinQuotes(t *testing.T) {
	got := shellJoin([]string{"bin/kraftbench", "--title", "Cluster matrix (make bench-cluster)", "--rate", "0,match", "it's", ""})
	want := `bin/kraftbench --title 'Cluster matrix (make bench-cluster)' --rate 0,match 'it'\''s' ''`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestTHPMode(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"always [madvise] never\n": "madvise",
		"[always] madvise never":   "always",
		"always madvise [never]\n": "never",
		"always madvise never":     "?", // no bracket: not guessed
		"[]":                       "?",
		"":                         "?",
	} {
		p := filepath.Join(dir, "enabled")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := THPMode(p); got != want {
			t.Errorf("THPMode(%q) = %q, want %q", content, got, want)
		}
	}
	if got := THPMode(filepath.Join(dir, "missing")); got != "?" {
		t.Errorf("missing file: %q", got)
	}
}

// The shared probe runs every writer's rounds, at once, each on its own
// file, and leaves no file behind.
func TestMeasureSharedFsync(t *testing.T) {
	dir := t.TempDir()
	samples, err := MeasureSharedFsync(dir, 20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 60 || !slices.IsSorted(samples) || samples[0] <= 0 {
		t.Fatalf("%d samples (want 60, sorted, positive): %v", len(samples), samples)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("probe files left behind: %v", left)
	}
	if _, err := MeasureSharedFsync(filepath.Join(dir, "missing"), 5, 2); err == nil {
		t.Fatal("no error for a directory that does not exist")
	}
}

// The report says what GOMAXPROCS the local nodes ran with, once per
// cluster size, and nothing when kraftbench started no kraftd.
func TestEnvNoteProcs(t *testing.T) {
	var env Env
	if strings.Contains(env.header(), "GOMAXPROCS") {
		t.Fatalf("no local nodes, yet the header says %q", env.header())
	}
	env.NoteProcs(3, 1)
	env.NoteProcs(3, 1)
	env.NoteProcs(5, 0)
	if want := "3 nodes: 1 each; 5 nodes: Go's default (every CPU) each"; env.KraftdProcs != want {
		t.Fatalf("KraftdProcs = %q, want %q", env.KraftdProcs, want)
	}
	if h := env.header(); !strings.Contains(h, "kraftd GOMAXPROCS 3 nodes: 1 each;") {
		t.Errorf("header %q lacks the nodes' GOMAXPROCS", h)
	}
	var md strings.Builder
	WriteMarkdown(&md, "t", env, nil, time.Second)
	if !strings.Contains(md.String(), "; kraftd GOMAXPROCS 3 nodes: 1 each;") {
		t.Errorf("markdown lacks the nodes' GOMAXPROCS:\n%s", md.String())
	}
}
