package deploy

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kraftdb/kraft/server"
)

// exportedMetrics is every metric family kraftd exports (or is about to),
// without the _bucket/_sum/_count suffixes of histograms. Alerts and the
// dashboard may use only these; the list is cross-checked against a live
// /metrics by TestMetricNamesLive when a node is reachable.
var exportedMetrics = map[string]string{
	// gauges, label node
	"kraft_role":                  "gauge",
	"kraft_is_leader":             "gauge",
	"kraft_term":                  "gauge",
	"kraft_commit_index":          "gauge",
	"kraft_last_applied":          "gauge",
	"kraft_last_log_index":        "gauge",
	"kraft_first_log_index":       "gauge",
	"kraft_snapshot_index":        "gauge",
	"kraft_leader_id":             "gauge",
	"kraft_cluster_size":          "gauge",
	"kraft_pending_config_change": "gauge",
	// per follower, on the leader: labels node, follower
	"kraft_replication_match_index": "gauge",
	"kraft_replication_lag_entries": "gauge",
	// histograms (Prometheus buckets, label le)
	"kraft_commit_latency_seconds":    "histogram",
	"kraft_fsync_latency_seconds":     "histogram",
	"kraft_readindex_latency_seconds": "histogram",
	// counters
	"kraft_elections_total":       "counter",
	"kraft_leader_changes_total":  "counter",
	"kraft_client_requests_total": "counter", // labels node, op, status
	// snapshots, flow control, reads, transfers (server/server.go)
	"kraft_last_snapshot_time":         "gauge",
	"kraft_snapshot_size_bytes":        "gauge",
	"kraft_snapshots_total":            "counter",
	"kraft_pending_entries":            "gauge",
	"kraft_pending_bytes":              "gauge",
	"kraft_readindex_total":            "counter",
	"kraft_leadership_transfers_total": "counter",
	// process and runtime metrics (VictoriaMetrics WriteProcessMetrics)
	"process_resident_memory_bytes": "gauge",
	"process_cpu_seconds_total":     "counter",
	"process_num_threads":           "gauge",
	"go_goroutines":                 "gauge",
}

var metricRef = regexp.MustCompile(`\b((?:kraft|process|go)_[a-zA-Z0-9_]+)`)

// upRef is the one series Prometheus itself makes that the rules may use.
var upRef = regexp.MustCompile(`\bup\s*\{`)

var roleCompare = regexp.MustCompile(`kraft_role(\{[^}]*\})?\s*==`)

// checkMetricNames fails for every kraft_/process_/go_ name in expr that
// kraftd does not export.
func checkMetricNames(t *testing.T, where, expr string) {
	t.Helper()
	names := metricRef.FindAllString(expr, -1)
	if len(names) == 0 && !upRef.MatchString(expr) {
		t.Errorf("%s: expression uses no known metric: %s", where, expr)
	}
	for _, n := range names {
		base := n
		if _, ok := exportedMetrics[base]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suf); ok && exportedMetrics[b] != "" && strings.HasPrefix(exportedMetrics[b], "histogram") {
					base = b
				}
			}
		}
		kind, ok := exportedMetrics[base]
		if !ok {
			t.Errorf("%s: metric %q is not exported by kraftd: %s", where, n, expr)
			continue
		}
		if strings.HasPrefix(kind, "histogram") && base == n {
			t.Errorf("%s: histogram %q used without _bucket/_sum/_count: %s", where, n, expr)
		}
	}
	// DESIGN §6: leadership is kraft_is_leader, not a role number (whose
	// encoding the reference contradicts itself on).
	if roleCompare.MatchString(expr) {
		t.Errorf("%s: compare kraft_is_leader, not kraft_role: %s", where, expr)
	}
}

// stripLeadingComments removes the YAML comment lines before the JSON body
// of a JSON-compatible YAML file; anything else before the body is an error.
func stripLeadingComments(t *testing.T, path string, data []byte) []byte {
	t.Helper()
	rest := string(data)
	for {
		line, after, found := strings.Cut(rest, "\n")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			if !found {
				t.Fatalf("%s: no JSON body", path)
			}
			rest = after
			continue
		}
		if !strings.HasPrefix(trimmed, "{") {
			t.Fatalf("%s: expected comment lines, then a JSON object; got %q", path, line)
		}
		return []byte(rest)
	}
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ruleFile struct {
	Groups []struct {
		Name     string      `json:"name"`
		Interval string      `json:"interval,omitempty"`
		Rules    []alertRule `json:"rules"`
	} `json:"groups"`
}

const alertsPath = "prometheus/kraft-alerts.yml"

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(stripLeadingComments(t, alertsPath, data))))
	dec.DisallowUnknownFields()
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the JSON body", alertsPath)
	}
	return rf
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestAlertRulesStructure(t *testing.T) {
	rf := loadRules(t)
	if len(rf.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" {
			t.Error("a group has no name")
		}
		if len(g.Rules) == 0 {
			t.Errorf("group %q has no rules", g.Name)
		}
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if r.Alert == "" || r.Record != "" {
				t.Errorf("group %q: every rule must be an alert (got alert %q, record %q)", g.Name, r.Alert, r.Record)
			}
			if seen[r.Alert] {
				t.Errorf("%s: duplicate", where)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: empty expr", where)
			}
			if !promDuration.MatchString(r.For) {
				t.Errorf("%s: for %q is not a Prometheus duration", where, r.For)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: labels.severity %q must be critical, warning or info", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotations.%s is missing", where, a)
				}
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("%s: unbalanced parentheses: %s", where, r.Expr)
			}
			checkMetricNames(t, where, r.Expr)
		}
	}
	// The reference's alerts (§2.2), and the severities it gives them.
	want := map[string]string{
		"KraftNoLeader":           "critical",
		"KraftQuorumAtRisk":       "critical",
		"KraftReplicationStalled": "critical",
		"KraftHighCommitLatency":  "warning",
		"KraftFollowerLagging":    "warning",
		"KraftFrequentElections":  "warning",
		"KraftSnapshotOld":        "warning",
		"KraftLeadershipChange":   "info",
		"KraftMembershipChange":   "info",
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if sev, ok := want[r.Alert]; ok {
				if r.Labels["severity"] != sev {
					t.Errorf("alert %s: severity %q, want %q", r.Alert, r.Labels["severity"], sev)
				}
				delete(want, r.Alert)
			}
			if r.Alert == "KraftHighCommitLatency" && !strings.Contains(r.Expr, "histogram_quantile(0.99") {
				t.Errorf("KraftHighCommitLatency must use histogram_quantile(0.99, ...): %s", r.Expr)
			}
		}
	}
	for name := range want {
		t.Errorf("alert %s is missing", name)
	}
}

// TestAlertRulesPromtool runs `promtool check rules` when promtool is
// installed (Debian: apt-get install prometheus).
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH")
	}
	out, err := exec.Command(promtool, "check", "rules", alertsPath).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

type grafanaTarget struct {
	Expr string `json:"expr"`
}

type grafanaPanel struct {
	Type    string          `json:"type"`
	Title   string          `json:"title"`
	Targets []grafanaTarget `json:"targets"`
	Panels  []grafanaPanel  `json:"panels"`
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana/kraft-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string         `json:"title"`
		UID        string         `json:"uid"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Error("dashboard needs a title and a uid")
	}
	var exprs []string
	var walk func([]grafanaPanel)
	titles := map[string]bool{}
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			titles[p.Title] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has an empty query", p.Title)
				}
				exprs = append(exprs, tg.Expr)
				checkMetricNames(t, "panel "+p.Title, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		checkMetricNames(t, "annotation", a.Expr)
	}
	all := strings.Join(exprs, "\n")
	// What the operations issue asks the dashboard to show.
	for _, m := range []string{
		"kraft_leader_id", "kraft_term", "kraft_commit_index", "kraft_last_applied",
		"kraft_replication_lag_entries", "kraft_commit_latency_seconds_bucket",
		"kraft_fsync_latency_seconds_bucket", "kraft_elections_total", "kraft_client_requests_total",
	} {
		if !strings.Contains(all, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
	if !strings.Contains(all, "sum by (status)") {
		t.Error("no panel shows client requests by status")
	}
	if !strings.Contains(all, "histogram_quantile(0.99") {
		t.Error("no panel shows a p99")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"datasource", "job", "node"} {
		if !vars[v] {
			t.Errorf("dashboard variable $%s is missing", v)
		}
	}
}

// configSettings returns the KRAFT_* names of docs/configuration.md.
func configSettings(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("`(KRAFT_[A-Z0-9_]+)`").FindAllStringSubmatch(string(data), -1) {
		names[m[1]] = true
	}
	if len(names) < 20 {
		t.Fatalf("only %d KRAFT_* names found in docs/configuration.md", len(names))
	}
	return names
}

func TestEnvFile(t *testing.T) {
	known := configSettings(t)
	f, err := os.Open("kraft.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	active := regexp.MustCompile(`^(KRAFT_[A-Z0-9_]+)=(\S.*)$`)
	commented := regexp.MustCompile(`^#\s?(KRAFT_[A-Z0-9_]+)=`)
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			if m := commented.FindStringSubmatch(line); m != nil && !known[m[1]] {
				t.Errorf("kraft.env:%d: commented-out %s is not a kraftd setting", n, m[1])
			}
		default:
			m := active.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("kraft.env:%d: want KRAFT_NAME=value or a # comment, got %q", n, line)
				continue
			}
			if !known[m[1]] {
				t.Errorf("kraft.env:%d: %s is not a kraftd setting (docs/configuration.md)", n, m[1])
			}
			if m[1] == "KRAFT_ENV_FILE" {
				t.Errorf("kraft.env:%d: KRAFT_ENV_FILE inside the env file does nothing", n)
			}
			if set[m[1]] {
				t.Errorf("kraft.env:%d: %s set twice", n, m[1])
			}
			set[m[1]] = true
			if strings.Contains(m[2], " #") {
				t.Errorf("kraft.env:%d: a comment after the value becomes part of it: %q", n, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"KRAFT_NODE_ID", "KRAFT_CLUSTER_ID", "KRAFT_PEERS", "KRAFT_DATA_DIR", "KRAFT_SNAPSHOT_DIR", "KRAFT_FSYNC_MODE"} {
		if !set[k] {
			t.Errorf("kraft.env does not set %s", k)
		}
	}
}

// TestEnvFileLoads loads the example through kraftd's own configuration
// loader: every value parses and the whole configuration validates.
func TestEnvFileLoads(t *testing.T) {
	cfg, err := server.LoadConfig([]string{"--env-file", "kraft.env"}, nil, io.Discard)
	if err != nil {
		t.Fatalf("kraftd --env-file kraft.env: %v", err)
	}
	if cfg.NodeID != 1 || cfg.DataDir != "/var/lib/kraft/data" || cfg.SnapshotDir != "/var/lib/kraft/snapshots" || cfg.FsyncMode != "always" {
		t.Errorf("unexpected configuration from kraft.env: node %d, data %q, snapshots %q, fsync %q", cfg.NodeID, cfg.DataDir, cfg.SnapshotDir, cfg.FsyncMode)
	}
}

// parseUnit reads a systemd unit: section → key → values (keys repeat).
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := map[string]map[string][]string{}
	section := ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Errorf("%s:%d: not KEY=value inside a section: %q", path, n+1, line)
				continue
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "kraft.service")
	want := map[string]map[string]string{
		"Unit": {
			"After": "network-online.target",
			"Wants": "network-online.target",
		},
		"Service": {
			"Type":             "simple",
			"User":             "kraft",
			"Group":            "kraft",
			"ExecStart":        "/usr/bin/kraftd --env-file=/etc/kraft/kraft.env",
			"ExecReload":       "/bin/kill -HUP $MAINPID",
			"Restart":          "on-failure",
			"RestartSec":       "5",
			"LimitNOFILE":      "65536",
			"LimitNPROC":       "4096",
			"NoNewPrivileges":  "yes",
			"ProtectSystem":    "strict",
			"ProtectHome":      "yes",
			"ReadWritePaths":   "/var/lib/kraft /var/log/kraft",
			"KillSignal":       "SIGTERM",
			"SystemCallFilter": "@system-service",
		},
		"Install": {
			"WantedBy": "multi-user.target",
		},
	}
	for sec, keys := range want {
		for k, v := range keys {
			got := u[sec][k]
			if len(got) != 1 || got[0] != v {
				t.Errorf("[%s] %s = %q, want exactly %q", sec, k, got, v)
			}
		}
	}
	// kraftd gives its graceful stop (leadership transfer, then close) 10 s;
	// systemd must wait longer before SIGKILL.
	stop := u["Service"]["TimeoutStopSec"]
	if len(stop) != 1 {
		t.Fatalf("TimeoutStopSec = %q, want one value", stop)
	}
	d, err := time.ParseDuration(strings.TrimSpace(stop[0]) + "s")
	if err != nil || d <= 10*time.Second {
		t.Errorf("TimeoutStopSec = %q: want more than kraftd's 10 s shutdown bound", stop[0])
	}
	// Settings that would break the WAL (mmap'd segments, fallocate,
	// fdatasync) or the file-descriptor raise must not appear.
	for _, k := range []string{"ReadOnlyPaths", "InaccessiblePaths", "MemoryMax", "EnvironmentFile"} {
		if v, ok := u["Service"][k]; ok {
			t.Errorf("[Service] %s=%q: see the comment in kraft.service", k, v)
		}
	}
	for _, v := range u["Service"]["SystemCallFilter"] {
		if strings.Contains(v, "~") && (strings.Contains(v, "@resources") || strings.Contains(v, "@sync") || strings.Contains(v, "@file-system")) {
			t.Errorf("SystemCallFilter=%s denies what kraftd needs (setrlimit, fdatasync, fallocate)", v)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// Verify a copy whose ExecStart points at a binary that exists here.
		data, _ := os.ReadFile("kraft.service")
		tmp := filepath.Join(t.TempDir(), "kraft.service")
		os.WriteFile(tmp, []byte(strings.Replace(string(data), "/usr/bin/kraftd", "/bin/true", 1)), 0o644)
		out, err := exec.Command(sa, "verify", tmp).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

func TestCollectDiagnosticsSyntax(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	if out, err := exec.Command(bash, "-n", "collect-diagnostics.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n collect-diagnostics.sh: %v\n%s", err, out)
	}
	fi, err := os.Stat("collect-diagnostics.sh")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Error("collect-diagnostics.sh is not executable")
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command(sc, "-S", "warning", "collect-diagnostics.sh").CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
}

var diagFiles = []string{"status.txt", "nodes.txt", "state.json", "logs.txt", "system.txt", "network.txt"}

// runDiagnostics runs the script into a temporary directory and returns the
// archive's entries (base name → content).
func runDiagnostics(t *testing.T, env []string, args ...string) map[string]string {
	t.Helper()
	outDir := t.TempDir()
	cmd := exec.Command("bash", append([]string{"collect-diagnostics.sh", "--output-dir", outDir, "--timeout", "5"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("collect-diagnostics.sh: %v\n%s", err, out)
	}
	archives, _ := filepath.Glob(filepath.Join(outDir, "kraft-diagnostics-*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("want one archive in %s, got %v\n%s", outDir, archives, out)
	}
	if !regexp.MustCompile(`/kraft-diagnostics-\d{8}-\d{6}\.tar\.gz$`).MatchString(archives[0]) {
		t.Errorf("archive name %s", archives[0])
	}
	if !strings.Contains(string(out), "Diagnostics collected: "+archives[0]) {
		t.Errorf("the script does not print the archive's path:\n%s", out)
	}
	f, err := os.Open(archives[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[filepath.Base(h.Name)] = string(b)
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, want := range diagFiles {
		if _, ok := files[want]; !ok {
			t.Errorf("archive lacks %s (has %v)", want, names)
		}
	}
	var st any
	if err := json.Unmarshal([]byte(files["state.json"]), &st); err != nil {
		t.Errorf("state.json is not JSON: %v\n%s", err, files["state.json"])
	}
	return files
}

// TestCollectDiagnosticsNoCluster: with nothing listening, no kraft-ctl and
// no journal, the script still produces the six files and says why they
// are thin.
func TestCollectDiagnosticsNoCluster(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	logf := filepath.Join(t.TempDir(), "kraftd.log")
	os.WriteFile(logf, []byte("level=INFO msg=\"became leader\"\n"), 0o644)
	files := runDiagnostics(t, []string{"KRAFT_ENDPOINTS=" + dead, "KRAFT_ADMIN_TOKEN=s3cret-token"},
		"--kraft-ctl", "/nonexistent/kraft-ctl", "--log-file", logf)
	if !strings.Contains(files["logs.txt"], "became leader") {
		t.Errorf("logs.txt lacks the --log-file content:\n%s", files["logs.txt"])
	}
	if !strings.Contains(files["README.txt"], "kraft-ctl not found") {
		t.Errorf("README.txt does not note the missing kraft-ctl:\n%s", files["README.txt"])
	}
	for name, content := range files {
		if strings.Contains(content, "s3cret-token") {
			t.Errorf("%s contains the admin token", name)
		}
	}
}

// TestCollectDiagnosticsLive runs the script against a running cluster:
// KRAFT_TEST_ENDPOINTS, else 127.0.0.1:7003 (scripts/run-local.sh). It
// skips when no node answers there.
func TestCollectDiagnosticsLive(t *testing.T) {
	eps := liveEndpoints(t)
	ctl, err := filepath.Abs("../bin/kraft-ctl")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--endpoints", strings.Join(eps, ",")}
	if _, err := os.Stat(ctl); err == nil {
		args = append(args, "--kraft-ctl", ctl)
	}
	files := runDiagnostics(t, nil, args...)
	if !strings.Contains(files["status.txt"], "Leader:") && !strings.Contains(files["status.txt"], "leader") {
		t.Errorf("status.txt shows no leader:\n%s", files["status.txt"])
	}
	if !strings.Contains(files["state.json"], `"term"`) {
		t.Errorf("state.json has no term:\n%s", files["state.json"])
	}
	t.Logf("status.txt:\n%s", files["status.txt"])
}

func liveEndpoints(t *testing.T) []string {
	t.Helper()
	eps := strings.Split(os.Getenv("KRAFT_TEST_ENDPOINTS"), ",")
	if eps[0] == "" {
		eps = []string{"127.0.0.1:7003"}
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + eps[0] + "/health/live")
	if err != nil {
		t.Skipf("no kraftd at %s (set KRAFT_TEST_ENDPOINTS or run scripts/run-local.sh): %v", eps[0], err)
	}
	resp.Body.Close()
	return eps
}

// TestMetricNamesLive checks exportedMetrics against a running node's
// /metrics: every name must be there.
func TestMetricNamesLive(t *testing.T) {
	eps := liveEndpoints(t)
	req, _ := http.NewRequest("GET", "http://"+eps[0]+"/metrics", nil)
	if tok := os.Getenv("KRAFT_ADMIN_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Skip(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Skipf("/metrics: %s", resp.Status)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line+" ", "{ ")]
		have[name] = true
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok {
				have[b] = true
			}
		}
	}
	for name := range exportedMetrics {
		if name == "kraft_replication_match_index" || name == "kraft_replication_lag_entries" {
			if !have["kraft_is_leader"] {
				continue
			}
			// Only a node that has led exports them; skip on followers.
			if !have[name] {
				t.Logf("%s not exported by %s (not the leader?)", name, eps[0])
			}
			continue
		}
		if !have[name] {
			t.Errorf("%s is not in %s/metrics", name, eps[0])
		}
	}
}

// TestRunbookLinks: every alert's runbook names a section of
// docs/operations.md that exists (GitHub's heading anchors).
func TestRunbookLinks(t *testing.T) {
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		anchors[b.String()] = true
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			file, anchor, ok := strings.Cut(r.Annotations["runbook"], "#")
			if !ok || file != "docs/operations.md" {
				t.Errorf("alert %s: runbook %q: want docs/operations.md#section", r.Alert, r.Annotations["runbook"])
				continue
			}
			if !anchors[anchor] {
				t.Errorf("alert %s: docs/operations.md has no section #%s", r.Alert, anchor)
			}
		}
	}
}

// promSeries and promAlertTest are promtool's unit-test format.
type promSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type promExpAlert struct {
	ExpLabels map[string]string `json:"exp_labels"`
}

type promAlertTest struct {
	EvalTime  string         `json:"eval_time"`
	Alertname string         `json:"alertname"`
	ExpAlerts []promExpAlert `json:"exp_alerts"`
}

type promTest struct {
	Name          string          `json:"name"`
	Interval      string          `json:"interval"`
	InputSeries   []promSeries    `json:"input_series"`
	AlertRuleTest []promAlertTest `json:"alert_rule_test"`
}

// s builds a series name with the labels Prometheus and kraftd attach.
func s(metric, node string, extra ...string) string {
	l := `job="kraft",instance="n` + node + `:7003",node="` + node + `"`
	for i := 0; i+1 < len(extra); i += 2 {
		l += `,` + extra[i] + `="` + extra[i+1] + `"`
	}
	return metric + "{" + l + "}"
}

func nodeLabels(node, severity string, extra ...string) map[string]string {
	m := map[string]string{"job": "kraft", "instance": "n" + node + ":7003", "node": node, "severity": severity}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func jobLabels(severity string) map[string]string {
	return map[string]string{"job": "kraft", "severity": severity}
}

// alertBehaviour is what each alert must and must not fire on, in
// promtool's unit-test format.
func alertBehaviour() []promTest {
	none := []promExpAlert{}
	return []promTest{
		{Name: "no leader", Interval: "15s", InputSeries: []promSeries{
			{s("kraft_is_leader", "1"), "0x20"}, {s("kraft_is_leader", "2"), "0x20"}, {s("kraft_is_leader", "3"), "0x20"},
		}, AlertRuleTest: []promAlertTest{
			{"15s", "KraftNoLeader", none}, // not before 30s
			{"1m", "KraftNoLeader", []promExpAlert{{jobLabels("critical")}}},
		}},
		{Name: "one leader: quiet", Interval: "15s", InputSeries: []promSeries{
			{s("kraft_is_leader", "1"), "1x20"}, {s("kraft_is_leader", "2"), "0x20"}, {s("kraft_is_leader", "3"), "0x20"},
		}, AlertRuleTest: []promAlertTest{
			{"2m", "KraftNoLeader", none}, {"2m", "KraftMultipleLeaders", none},
		}},
		{Name: "two leaders", Interval: "15s", InputSeries: []promSeries{
			{s("kraft_is_leader", "1"), "1x20"}, {s("kraft_is_leader", "2"), "1x20"}, {s("kraft_is_leader", "3"), "0x20"},
		}, AlertRuleTest: []promAlertTest{
			{"2m", "KraftMultipleLeaders", []promExpAlert{{jobLabels("warning")}}},
		}},
		{Name: "2 of 3 up: quorum at risk, not lost", Interval: "15s", InputSeries: []promSeries{
			{`up{job="kraft",instance="n1:7003"}`, "1x20"}, {`up{job="kraft",instance="n2:7003"}`, "1x20"}, {`up{job="kraft",instance="n3:7003"}`, "0x20"},
			{s("kraft_cluster_size", "1"), "3x20"}, {s("kraft_cluster_size", "2"), "3x20"},
		}, AlertRuleTest: []promAlertTest{
			{"2m", "KraftQuorumAtRisk", []promExpAlert{{jobLabels("critical")}}},
			{"2m", "KraftQuorumLost", none},
			{"2m", "KraftNodeDown", []promExpAlert{{map[string]string{"job": "kraft", "instance": "n3:7003", "severity": "warning"}}}},
		}},
		{Name: "5 of 5 up: quiet", Interval: "15s", InputSeries: []promSeries{
			{`up{job="kraft",instance="n1:7003"}`, "1x20"}, {`up{job="kraft",instance="n2:7003"}`, "1x20"}, {`up{job="kraft",instance="n3:7003"}`, "1x20"},
			{`up{job="kraft",instance="n4:7003"}`, "1x20"}, {`up{job="kraft",instance="n5:7003"}`, "1x20"},
			{s("kraft_cluster_size", "1"), "5x20"},
		}, AlertRuleTest: []promAlertTest{
			{"2m", "KraftQuorumAtRisk", none}, {"2m", "KraftQuorumLost", none},
		}},
		{Name: "every node down: quorum lost", Interval: "15s", InputSeries: []promSeries{
			{`up{job="kraft",instance="n1:7003"}`, "0x20"}, {`up{job="kraft",instance="n2:7003"}`, "0x20"}, {`up{job="kraft",instance="n3:7003"}`, "0x20"},
		}, AlertRuleTest: []promAlertTest{
			{"2m", "KraftQuorumLost", []promExpAlert{{jobLabels("critical")}}},
		}},
		{Name: "replication stalled vs idle", Interval: "1m", InputSeries: []promSeries{
			{s("kraft_is_leader", "1"), "1x10"}, {s("kraft_last_log_index", "1"), "110x10"}, {s("kraft_commit_index", "1"), "100x10"},
			{s("kraft_is_leader", "2"), "1x10"}, {s("kraft_last_log_index", "2"), "100x10"}, {s("kraft_commit_index", "2"), "100x10"},
		}, AlertRuleTest: []promAlertTest{
			{"10m", "KraftReplicationStalled", []promExpAlert{{nodeLabels("1", "critical")}}},
		}},
		{Name: "follower lag: only the current leader's view counts", Interval: "1m", InputSeries: []promSeries{
			{s("kraft_is_leader", "1"), "1x10"}, {s("kraft_replication_lag_entries", "1", "follower", "3"), "20000x10"},
			{s("kraft_replication_lag_entries", "1", "follower", "2"), "5x10"},
			{s("kraft_is_leader", "2"), "0x10"}, {s("kraft_replication_lag_entries", "2", "follower", "3"), "50000x10"}, // stale, from an old term
		}, AlertRuleTest: []promAlertTest{
			{"10m", "KraftFollowerLagging", []promExpAlert{{nodeLabels("1", "warning", "follower", "3")}}},
		}},
		{Name: "a node's own commit index far behind", Interval: "1m", InputSeries: []promSeries{
			{s("kraft_commit_index", "1"), "20000+100x10"}, {s("kraft_commit_index", "2"), "20000+100x10"},
			{s("kraft_commit_index", "3"), "0x10"}, // wiped, not caught up
		}, AlertRuleTest: []promAlertTest{
			{"3m", "KraftNodeBehind", none},
			{"10m", "KraftNodeBehind", []promExpAlert{{nodeLabels("3", "warning")}}},
		}},
		{Name: "commit and fsync latency", Interval: "1m", InputSeries: []promSeries{
			// every observation between 0.5 s and 1 s
			{s("kraft_commit_latency_seconds_bucket", "1", "le", "0.5"), "0x15"},
			{s("kraft_commit_latency_seconds_bucket", "1", "le", "1"), "0+100x15"},
			{s("kraft_commit_latency_seconds_bucket", "1", "le", "+Inf"), "0+100x15"},
			// every observation under 1 ms
			{s("kraft_fsync_latency_seconds_bucket", "1", "le", "0.001"), "0+100x15"},
			{s("kraft_fsync_latency_seconds_bucket", "1", "le", "+Inf"), "0+100x15"},
		}, AlertRuleTest: []promAlertTest{
			{"4m", "KraftHighCommitLatency", none},
			{"12m", "KraftHighCommitLatency", []promExpAlert{{nodeLabels("1", "warning")}}},
			{"12m", "KraftHighFsyncLatency", none},
		}},
		{Name: "frequent elections", Interval: "1m", InputSeries: []promSeries{
			{s("kraft_elections_total", "1"), "0+1x60"}, {s("kraft_elections_total", "2"), "0x60"},
		}, AlertRuleTest: []promAlertTest{
			{"3m", "KraftFrequentElections", none},
			{"30m", "KraftFrequentElections", []promExpAlert{{jobLabels("warning")}}},
		}},
		{Name: "snapshot age", Interval: "1m", InputSeries: []promSeries{
			// node 1: never snapshotted, log growing
			{s("kraft_last_snapshot_time", "1"), "0x1600"}, {s("kraft_last_log_index", "1"), "10+1x1600"}, {s("kraft_snapshot_index", "1"), "0x1600"},
			// node 2: snapshots every minute
			{s("kraft_last_snapshot_time", "2"), "0+60x1600"}, {s("kraft_last_log_index", "2"), "10+1x1600"}, {s("kraft_snapshot_index", "2"), "9+1x1600"},
			// node 3: one old snapshot that still covers the whole (idle) log
			{s("kraft_last_snapshot_time", "3"), "60x1600"}, {s("kraft_last_log_index", "3"), "500x1600"}, {s("kraft_snapshot_index", "3"), "500x1600"},
		}, AlertRuleTest: []promAlertTest{
			{"50m", "KraftSnapshotOld", none},
			{"26h", "KraftSnapshotOld", []promExpAlert{{nodeLabels("1", "warning")}}},
		}},
		{Name: "leadership and membership changes", Interval: "1m", InputSeries: []promSeries{
			{s("kraft_leader_id", "1"), "2 2 2 3 3 3 3 3 3 3 3 3 3"},
			{s("kraft_cluster_size", "1"), "3 3 3 3 3 3 5 5 5 5 5 5 5"},
		}, AlertRuleTest: []promAlertTest{
			{"2m", "KraftLeadershipChange", none},
			{"4m", "KraftLeadershipChange", []promExpAlert{{jobLabels("info")}}},
			{"7m", "KraftMembershipChange", []promExpAlert{{jobLabels("info")}}},
			{"12m", "KraftMembershipChange", none},
		}},
		{Name: "pending config change on the leader", Interval: "1m", InputSeries: []promSeries{
			{s("kraft_is_leader", "1"), "1x10"}, {s("kraft_pending_config_change", "1"), "1x10"},
			{s("kraft_is_leader", "2"), "0x10"}, {s("kraft_pending_config_change", "2"), "1x10"},
		}, AlertRuleTest: []promAlertTest{
			{"3m", "KraftPendingConfigChange", none},
			{"10m", "KraftPendingConfigChange", []promExpAlert{{nodeLabels("1", "warning")}}},
		}},
	}
}

// TestAlertRulesBehaviour runs promtool's rule unit tests (when promtool is
// installed) against the rules with their annotations removed, so the tests
// pin what fires, when, and with which labels, not the wording.
func TestAlertRulesBehaviour(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH")
	}
	rf := loadRules(t)
	for gi := range rf.Groups {
		for ri := range rf.Groups[gi].Rules {
			rf.Groups[gi].Rules[ri].Annotations = nil
		}
	}
	dir := t.TempDir()
	rules, _ := json.Marshal(rf)
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, _ := json.MarshalIndent(map[string]any{
		"rule_files":          []string{"rules.yml"},
		"evaluation_interval": "15s",
		"tests":               alertBehaviour(),
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "tests.yml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "tests.yml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestDashboardQueriesParse has promtool parse every dashboard query (as a
// recording rule, Grafana's variables substituted) when promtool is
// installed.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH")
	}
	data, err := os.ReadFile("grafana/kraft-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	exprs := regexp.MustCompile(`"expr": ("(?:[^"\\]|\\.)*")`).FindAllSubmatch(data, -1)
	if len(exprs) == 0 {
		t.Fatal("no queries found")
	}
	sub := strings.NewReplacer("$__rate_interval", "1m", "$job", "kraft", "$node", ".*")
	type rec struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rec
	for i, m := range exprs {
		var e string
		if err := json.Unmarshal(m[1], &e); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rec{Record: "dashboard_query_" + strconv.Itoa(i), Expr: sub.Replace(e)})
	}
	body, _ := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (dashboard queries): %v\n%s", err, out)
	}
}
