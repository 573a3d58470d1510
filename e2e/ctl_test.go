package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctl runs kraft-ctl against the cluster's admin endpoints.
func (c *cluster) ctl(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	for _, a := range args {
		if a == "--endpoints" || strings.HasPrefix(a, "--endpoints=") {
			return runCtl(append(args, "--timeout", "20s")...)
		}
	}
	var eps []string
	for _, id := range slices.Sorted(maps.Keys(c.procs)) {
		if p := c.procs[id]; p.cmd != nil {
			eps = append(eps, p.adminAddr())
		}
	}
	return runCtl(append(args, "--endpoints", strings.Join(eps, ","), "--timeout", "20s")...)
}

func runCtl(args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(ctlBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return o.String(), e.String(), code
}

func (c *cluster) mustCtl(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.ctl(args...)
	if code != 0 {
		c.t.Fatalf("kraft-ctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func mustMatch(t *testing.T, what, out, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: output does not match %q:\n%s", what, pattern, out)
	}
	return m
}

// Every kraft-ctl command of the troubleshooting guide against a live
// 3-node cluster, with its output checked against the cluster's state.
func TestCtlCommandsOnLiveCluster(t *testing.T) {
	c := newCluster(t, 3)
	for i := 0; i < 50; i++ {
		c.mustCtl("put", fmt.Sprint("user:", i), fmt.Sprint("v", i))
	}
	leader := c.waitLeader(5 * time.Second)
	lst, _ := c.status(leader)

	out := c.mustCtl("status")
	mustMatch(t, "status", out, `(?m)^Cluster: `+regexp.QuoteMeta(c.name)+`$`)
	mustMatch(t, "status", out, `(?m)^Status: HEALTHY$`)
	mustMatch(t, "status", out, fmt.Sprintf(`(?m)^Leader: node%d \(term %d\)$`, leader, lst.Term))
	mustMatch(t, "status", out, `(?m)^Nodes: 3/3 healthy$`)
	commit := mustMatch(t, "status", out, `(?m)^Commit Index: ([0-9,]+)$`)[1]
	if n, _ := strconv.Atoi(strings.ReplaceAll(commit, ",", "")); n < 50 {
		t.Fatalf("commit index %s after 50 writes", commit)
	}

	out = c.mustCtl("nodes")
	mustMatch(t, "nodes", out, `(?m)^ID\s+Address\s+Role\s+Match Index\s+Lag\s+Health$`)
	rows := regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+(Leader|Follower|Learner)\s+(\d+)\s+(-|\d+)\s+(OK|DOWN)$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 3 {
		t.Fatalf("nodes: %d rows:\n%s", len(rows), out)
	}
	var leaderMatch int
	for _, r := range rows {
		if r[3] == "Leader" {
			if r[1] != fmt.Sprint(leader) || r[5] != "-" {
				t.Fatalf("leader row %v, leader is %d", r, leader)
			}
			leaderMatch, _ = strconv.Atoi(r[4])
		}
	}
	for _, r := range rows {
		if r[3] == "Follower" {
			match, _ := strconv.Atoi(r[4])
			lag, _ := strconv.Atoi(r[5])
			if lag != leaderMatch-match || r[6] != "OK" {
				t.Fatalf("row %v: lag %d != leader %d - match %d", r, lag, leaderMatch, match)
			}
		}
	}
	if got := strings.TrimSpace(c.mustCtl("term")); got != fmt.Sprint(lst.Term) {
		t.Fatalf("term = %s, want %d", got, lst.Term)
	}
	mustMatch(t, "health", c.mustCtl("health"), `is healthy`)
	if got := strings.TrimSpace(c.mustCtl("get", "user:7")); got != "v7" {
		t.Fatalf("get = %q", got)
	}

	var dump map[string]any
	if err := json.Unmarshal([]byte(c.mustCtl("dump-state")), &dump); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"node_id", "term", "role", "commit_index", "last_applied", "voted_for", "log", "peers"} {
		if _, ok := dump[k]; !ok {
			t.Fatalf("dump-state lacks %q: %v", k, dump)
		}
	}
	if lg := dump["log"].(map[string]any); lg["entries_count"].(float64) < 50 || len(dump["peers"].([]any)) != 2 {
		t.Fatalf("dump-state log/peers: %v", dump)
	}
	mustMatch(t, "debug-state", c.mustCtl("debug-state"), `(?m)^Blocking: nothing found$`)
	rs := c.mustCtl("replication-status")
	if n := len(regexp.MustCompile(`(?m)^node\d+\s+voter\s+\d+`).FindAllString(rs, -1)); n != 2 {
		t.Fatalf("replication-status: %d follower rows:\n%s", n, rs)
	}
	if n := strings.Count(c.mustCtl("connectivity-test"), ": OK"); n != 6 {
		t.Fatalf("connectivity-test: %d OK links of 6", n)
	}
	lb := c.mustCtl("latency-breakdown", "--endpoints", c.procs[leader].adminAddr())
	mustMatch(t, "latency-breakdown", lb, `(?m)^Phase\s+P50\s+P95\s+P99$`)
	for _, phase := range []string{"Write to log", "Wait for ack", "Total commit"} {
		mustMatch(t, "latency-breakdown", lb, `(?m)^`+phase+`\s+[0-9.]+ms\s+[0-9.]+ms\s+[0-9.]+ms$`)
	}
	mustMatch(t, "disk-stats", c.mustCtl("disk-stats"), `(?m)^Fsync mode: always$`)
	one := c.procs[leader].adminAddr()
	snap := mustMatch(t, "snapshot", c.mustCtl("snapshot", "--endpoints", one), `Snapshot taken at index (\d+)`)[1]
	ss := c.mustCtl("snapshot-status", "--endpoints", one)
	mustMatch(t, "snapshot-status", ss, `(?m)^Last snapshot: index `+snap+` \(term \d+\)`)
	mustMatch(t, "snapshot-status", ss, `(?m)^Entries since: [\d,]+ \(threshold 100,000, at most one per 1m0s\)$`)
	mem := c.mustCtl("memory-stats")
	mustMatch(t, "memory-stats", mem, `(?m)^Component\s+Used\s+Max$`)
	for _, comp := range []string{"Log cache", "Pending entries", "Connections", "State machine"} {
		mustMatch(t, "memory-stats", mem, `(?m)^`+comp+`\s+\d+(\.\d)?(B|KB|MB|GB)\s+(-|\d+(\.\d)?(B|KB|MB|GB))$`)
	}
	if n := len(regexp.MustCompile(`(?m)^node\d+: [0-9.]+ms(  \[SLOW\])?$`).FindAllString(c.mustCtl("ping-peers"), -1)); n != 2 {
		t.Fatal("ping-peers: want a line per peer")
	}
	follower := c.follower(leader)
	tr, _, code := runCtl("trace-request", "--key", "user:1", "--value", "traced", "--endpoints", c.procs[follower].adminAddr())
	if code != 0 {
		t.Fatalf("trace-request exit %d: %s", code, tr)
	}
	mustMatch(t, "trace-request", tr, fmt.Sprintf(`not leader: redirect to node %d`, leader))
	mustMatch(t, "trace-request", tr, `committed .*\+[0-9.]+ms`)
	mustMatch(t, "trace-request", tr, `result: OK at index \d+`)
	if got := strings.TrimSpace(c.mustCtl("get", "user:1")); got != "traced" {
		t.Fatalf("traced put not applied: %q", got)
	}
	c.mustCtl("set-log-level", "debug")
	mustMatch(t, "clear-pending-requests", c.mustCtl("clear-pending-requests"), `Cleared \d+ pending requests`)
	c.mustCtl("clear-pending-config-change")
	c.mustCtl("wait-sync", "--node", fmt.Sprint(follower))
	c.mustCtl("transfer-leadership", "--target", fmt.Sprint(follower))
	if l := c.waitLeader(5 * time.Second); l != follower {
		t.Fatalf("leader after transfer-leadership: %d, want %d", l, follower)
	}
	mustMatch(t, "step-down", c.mustCtl("step-down"), `Stepped down; node\d+ is the leader`)
	if l := c.waitLeader(5 * time.Second); l == follower {
		t.Fatal("leader did not change on step-down")
	}
	if out, _, code := runCtl("version"); code != 0 || !strings.HasPrefix(out, "kraft-ctl version ") {
		t.Fatalf("version: exit %d %q", code, out)
	}
	// -w json works everywhere it is offered.
	for _, cmd := range [][]string{{"status"}, {"nodes"}, {"term"}, {"health"}, {"replication-status"}, {"latency-breakdown"}, {"disk-stats"}, {"snapshot-status"}, {"memory-stats"}, {"ping-peers"}, {"debug-state"}} {
		out := c.mustCtl(append(cmd, "-w", "json")...)
		if !json.Valid([]byte(out)) {
			t.Fatalf("%v -w json is not JSON:\n%s", cmd, out)
		}
	}
	// verify-data on a stopped node's data directory.
	c.signal(follower, syscall.SIGTERM)
	out, errOut, code := runCtl("verify-data", c.procs[follower].dataDir)
	if code != 0 || strings.Contains(out+errOut, "corrupt") {
		t.Fatalf("verify-data on a healthy WAL: exit %d\n%s%s", code, out, errOut)
	}
}

// Bad arguments to every command: a usage error (exit 2, one Error line),
// never a panic.
func TestCtlBadArguments(t *testing.T) {
	cases := [][]string{
		{"no-such-command"}, {"status", "extra"}, {"status", "--bogus"}, {"nodes", "-w", "yaml"},
		{"put", "only-key"}, {"get"}, {"get", "k", "--consistency", "eventual"}, {"add-voter"},
		{"add-voter", "--node-id", "6"}, {"add-voter", "--node-id", "x", "--address", "h:1"},
		{"remove-voter"}, {"remove-voter", "--node-id", "0"}, {"transfer-leadership", "--target", "-1"},
		{"wait-sync"}, {"force-new-cluster"}, {"rejoin"}, {"set-log-level"}, {"set-log-level", "loud"},
		{"trace-request"}, {"verify-data"}, {"step-down", "--force=maybe"}, {"term", "--timeout", "soon"},
		{"snapshot", "now"}, {"tune"}, {"version", "x"},
	}
	for _, args := range cases {
		out, errOut, code := runCtl(args...)
		if code != 2 || !strings.HasPrefix(errOut, "Error: ") || strings.Contains(out+errOut, "goroutine ") {
			t.Errorf("kraft-ctl %v: exit %d (want 2)\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	if _, errOut, code := runCtl(); code != 2 || !strings.Contains(errOut, "Usage: kraft-ctl") {
		t.Errorf("kraft-ctl without a command: exit %d\n%s", code, errOut)
	}
	// A cluster that is not there: a one-line error, exit 1.
	_, errOut, code := runCtl("status", "--endpoints", "127.0.0.1:1", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "connection refused") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("status against nothing: exit %d %q", code, errOut)
	}
}

// The guide's quorum-loss procedure, scripted: two of three nodes are lost
// for good; force-new-cluster on the survivor, add two new voters, and the
// cluster is healthy with every committed write.
func TestCtlQuorumLossRecovery(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	acked := writeMany(t, cl, "q", 300, 8)
	survivor := c.waitLeader(5 * time.Second)
	for id := range c.procs {
		if id != survivor {
			c.signal(id, syscall.SIGKILL)
		}
	}
	time.Sleep(500 * time.Millisecond) // the leader's check-quorum notices
	_, errOut, code := c.ctl("put", "lost", "quorum", "--timeout", "5s")
	if code == 0 || !strings.Contains(errOut, "quorum not reached: got 1/3, need 2") {
		t.Fatalf("put without quorum: exit %d %q", code, errOut)
	}
	mustMatch(t, "status", c.mustCtl("status"), `(?m)^Status: UNAVAILABLE$`)
	out := c.mustCtl("force-new-cluster", fmt.Sprintf("--node=node%d", survivor))
	mustMatch(t, "force-new-cluster", out, `WARNING: This resets cluster membership`)
	for _, id := range []uint64{6, 7} {
		c.mu.Lock()
		c.procs[id] = c.newProc(id)
		c.mu.Unlock()
		c.start(id, "--join", c.procs[survivor].peerAddr())
		c.mustCtl("add-voter", fmt.Sprintf("--node-id=%d", id), "--address="+c.procs[id].peerAddr())
	}
	out = c.mustCtl("status")
	mustMatch(t, "status", out, `(?m)^Status: HEALTHY$`)
	mustMatch(t, "status", out, `(?m)^Nodes: 3/3 healthy$`)
	checkAllReadable(t, cl, acked, 0)
}

// The guide's data-corruption procedure: a follower's WAL is damaged;
// verify-data names file and offset, kraftd refuses to start, the data dir
// is wiped and a snapshot restored, and rejoin brings the node back.
func TestCtlCorruptFollowerRecovery(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	acked := writeMany(t, cl, "c", 500, 8)
	leader := c.waitLeader(5 * time.Second)
	snap := mustMatch(t, "snapshot", c.mustCtl("snapshot", "--endpoints", c.procs[leader].adminAddr()), `index (\d+)`)[1]
	victim := c.follower(leader)
	v := c.procs[victim]
	c.signal(victim, syscall.SIGTERM)
	segs, _ := filepath.Glob(filepath.Join(v.dataDir, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no WAL segment")
	}
	b, _ := os.ReadFile(segs[0])
	b[3000] ^= 0x40 // inside an early record: corruption, not a torn tail
	os.WriteFile(segs[0], b, 0o644)

	out, errOut, code := runCtl("verify-data", v.dataDir)
	if code != 1 || !strings.Contains(out+errOut, filepath.Base(segs[0])) || !regexp.MustCompile(`offset \d+`).MatchString(out+errOut) {
		t.Fatalf("verify-data on a corrupt WAL: exit %d\n%s%s", code, out, errOut)
	}
	startOut, err := runKraftdWithTimeout(c, victim)
	if err == nil || !strings.Contains(startOut, filepath.Base(segs[0])) {
		t.Fatalf("kraftd started on a corrupt WAL (%v):\n%s", err, startOut)
	}
	// Wipe, restore the leader's snapshot, start, rejoin.
	os.RemoveAll(v.dataDir)
	os.RemoveAll(v.snapDir)
	os.MkdirAll(v.snapDir, 0o755)
	files, _ := filepath.Glob(filepath.Join(c.procs[leader].snapDir, "snapshot-"+snap+"-*.dat"))
	data, _ := os.ReadFile(files[0])
	os.WriteFile(filepath.Join(v.snapDir, filepath.Base(files[0])), data, 0o644)
	c.start(victim)
	out, errOut, code = runCtl("rejoin", "--cluster="+c.procs[leader].peerAddr(), "--endpoints", v.adminAddr(), "--timeout", "20s")
	if code != 0 {
		t.Fatalf("rejoin: exit %d\n%s%s", code, out, errOut)
	}
	mustMatch(t, "rejoin", out, `rejoined the cluster .* caught up at index`)
	checkAllReadable(t, cl, acked, 0)
}

// runKraftdWithTimeout starts node id's kraftd directly and returns its
// output if it exits within a few seconds (it should, on corruption).
func runKraftdWithTimeout(c *cluster, id uint64) (string, error) {
	p := c.procs[id]
	cmd := exec.Command(kraftdBin, "--node-id", fmt.Sprint(id), "--cluster-id", c.name, "--bind-address", "127.0.0.1",
		"--raft-port", fmt.Sprint(p.raft), "--client-port", fmt.Sprint(p.clientP), "--admin-port", fmt.Sprint(p.adminP),
		"--peers", c.peersFlag(), "--data-dir", p.dataDir, "--snapshot-dir", p.snapDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String(), nil
	}
}

// A stuck leader is made to step down with --force; the cluster elects
// another and keeps serving.
func TestCtlStepDownForce(t *testing.T) {
	c := newCluster(t, 3)
	old := c.waitLeader(5 * time.Second)
	out := c.mustCtl("step-down", "--force")
	mustMatch(t, "step-down --force", out, `Stepped down; node\d+ is the leader`)
	if l := c.waitLeader(5 * time.Second); l == old {
		t.Fatalf("leader is still node %d", old)
	}
	c.mustCtl("put", "after", "step-down")
}

// The seed's "not leader" text reaches an operator who sends a mutating
// admin call to a follower.
func TestNotLeaderTextOnFollower(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader(5 * time.Second)
	for id := range c.procs {
		if id == leader {
			continue
		}
		code, body := c.adminCall(id, "POST", "/admin/members", map[string]any{"id": 9, "address": "127.0.0.1:1"})
		if code != 421 || body["error"] != fmt.Sprintf("not leader, leader is node %d", leader) {
			t.Fatalf("add member on follower %d: HTTP %d %v", id, code, body)
		}
	}
}
