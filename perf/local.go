package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LocalCluster is a cluster of kraftd processes on 127.0.0.1 started by
// StartLocal, each with its own data directory under Dir. Its methods are
// for one goroutine.
type LocalCluster struct {
	Dir       string
	ClusterID string
	Clients   []string // client addresses, node i+1 at index i
	Admins    []string // admin addresses
	// Procs is the GOMAXPROCS every node runs with: the caller's choice
	// (env or this process's environment) or SharedProcs; 0 when the
	// choice is not a number Go accepts (the nodes then use all CPUs).
	Procs int
	bin   string
	env   []string // added to every node's environment
	nodes []*localNode
}

type localNode struct {
	args   []string // without --bootstrap
	logFn  string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartLocal starts n kraftd processes from the binary bin as a new
// cluster and waits for a leader. env (NAME=VALUE) is added to every node's
// environment, which is otherwise this process's; extra flags go to every
// node. Unless env or this process's environment sets GOMAXPROCS, every
// node gets GOMAXPROCS=SharedProcs(n).
func StartLocal(bin string, n int, dir string, env []string, extra ...string) (*LocalCluster, error) {
	env, procs := WithSharedProcs(env, n, os.Getenv("GOMAXPROCS"))
	lc := &LocalCluster{Dir: dir, ClusterID: fmt.Sprintf("kraftbench-%d", time.Now().UnixNano()), Procs: procs, bin: bin, env: env}
	type ports struct{ raft, client, admin int }
	ps := make([]ports, n)
	var peers []string
	for i := range ps {
		ps[i] = ports{FreePort(), FreePort(), FreePort()}
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i+1, ps[i].raft))
	}
	for i, p := range ps {
		nd := filepath.Join(dir, fmt.Sprint("node", i+1))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return nil, err
		}
		args := append([]string{"--node-id", fmt.Sprint(i + 1), "--cluster-id", lc.ClusterID, "--bind-address", "127.0.0.1",
			"--raft-port", fmt.Sprint(p.raft), "--client-port", fmt.Sprint(p.client), "--admin-port", fmt.Sprint(p.admin),
			"--peers", strings.Join(peers, ","),
			"--data-dir", filepath.Join(nd, "data"), "--snapshot-dir", filepath.Join(nd, "snapshots")}, extra...)
		lc.nodes = append(lc.nodes, &localNode{args: args, logFn: filepath.Join(nd, "kraftd.log")})
		lc.Clients = append(lc.Clients, fmt.Sprintf("127.0.0.1:%d", p.client))
		lc.Admins = append(lc.Admins, fmt.Sprintf("127.0.0.1:%d", p.admin))
		if err := lc.start(i, "--bootstrap"); err != nil {
			lc.Stop()
			return nil, err
		}
	}
	if _, err := lc.WaitLeader(20 * time.Second); err != nil {
		lc.Stop()
		return nil, err
	}
	return lc, nil
}

// SharedProcs is the GOMAXPROCS for each of n kraftd processes that share
// this host's CPUs: the CPUs divided among them, at least one each. Go's
// default gives every process all of them, and n schedulers that each
// expect every CPU spend their time waking, stealing from and parking
// each other's threads: three nodes on 2 CPUs used ~25% more CPU per
// write that way than with one each, and were no faster at writes or
// linearizable reads (perf/results/speedups.md, item 40).
func SharedProcs(n int) int { return max(1, runtime.NumCPU()/max(1, n)) }

// WithSharedProcs returns the environment for n co-located nodes and the
// GOMAXPROCS they will run with: env as given when it sets GOMAXPROCS, or
// when inherited (this process's GOMAXPROCS) is not empty, else env plus
// GOMAXPROCS=SharedProcs(n). procs is 0 when the value chosen is not a
// positive number (Go then ignores it and uses every CPU).
func WithSharedProcs(env []string, n int, inherited string) (out []string, procs int) {
	chosen, set := inherited, inherited != ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			chosen, set = v, true
		}
	}
	if set {
		if p, err := strconv.Atoi(chosen); err == nil && p > 0 {
			procs = p
		}
		return env, procs
	}
	procs = SharedProcs(n)
	return append(append([]string(nil), env...), "GOMAXPROCS="+strconv.Itoa(procs)), procs
}

// start (re)starts node i (0-based) with its data directory.
func (lc *LocalCluster) start(i int, flags ...string) error {
	nd := lc.nodes[i]
	logf, err := os.OpenFile(nd.logFn, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := lc.command(i, flags...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("kraft/perf: starting %s: %w", lc.bin, err)
	}
	nd.cmd, nd.exited = cmd, make(chan struct{})
	go func(ch chan struct{}) { cmd.Wait(); logf.Close(); close(ch) }(nd.exited)
	return nil
}

// command is node i's kraftd command line and environment.
func (lc *LocalCluster) command(i int, flags ...string) *exec.Cmd {
	cmd := exec.Command(lc.bin, append(append([]string(nil), lc.nodes[i].args...), flags...)...)
	if len(lc.env) > 0 {
		cmd.Env = append(os.Environ(), lc.env...)
	}
	return cmd
}

// Nodes is the number of nodes.
func (lc *LocalCluster) Nodes() int { return len(lc.nodes) }

// WaitLeader waits until every running node reports the same leader and
// is ready (/health/ready), and returns the leader's 0-based index.
func (lc *LocalCluster) WaitLeader(within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if l, ok := lc.agreedLeader(); ok {
			return l, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("kraft/perf: no agreed leader within %v; logs under %s", within, lc.Dir)
}

var adminHTTP = &http.Client{Timeout: 2 * time.Second}

func (lc *LocalCluster) agreedLeader() (int, bool) {
	var leader uint64
	for i, nd := range lc.nodes {
		if nd.cmd == nil {
			continue
		}
		resp, err := adminHTTP.Get("http://" + lc.Admins[i] + "/health/ready")
		if err != nil {
			return 0, false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, false
		}
		var st struct {
			Leader uint64 `json:"leader_id"`
		}
		resp, err = adminHTTP.Get("http://" + lc.Admins[i] + "/status")
		if err != nil {
			return 0, false
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return 0, false
		}
		leader = st.Leader
	}
	if leader == 0 || int(leader) > len(lc.nodes) || lc.nodes[leader-1].cmd == nil {
		return 0, false
	}
	return int(leader - 1), true
}

// NewLeaderSeen reports whether a running node other than old names a
// leader other than old (both 0-based) in /status.
func (lc *LocalCluster) NewLeaderSeen(old int) bool {
	for i, nd := range lc.nodes {
		if i == old || nd.cmd == nil {
			continue
		}
		var st struct {
			Leader uint64 `json:"leader_id"`
		}
		resp, err := adminHTTP.Get("http://" + lc.Admins[i] + "/status")
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil && st.Leader != 0 && int(st.Leader-1) != old {
			return true
		}
	}
	return false
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (lc *LocalCluster) Kill(i int) {
	nd := lc.nodes[i]
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Kill()
	<-nd.exited
	nd.cmd = nil
}

// Restart starts a killed node i again on its data directory and waits
// until it is ready (knows the leader, caught up).
func (lc *LocalCluster) Restart(ctx context.Context, i int, within time.Duration) error {
	if err := lc.start(i); err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := adminHTTP.Get("http://" + lc.Admins[i] + "/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("kraft/perf: node %d not ready within %v after restart; log %s", i+1, within, lc.nodes[i].logFn)
}

// CPUSeconds is the user+system CPU time the running processes have used
// so far.
func (lc *LocalCluster) CPUSeconds() float64 {
	total := 0.0
	for _, nd := range lc.nodes {
		if nd.cmd != nil {
			total += processCPUSeconds(nd.cmd.Process.Pid)
		}
	}
	return total
}

// Stop terminates every process and waits for them.
func (lc *LocalCluster) Stop() {
	for _, nd := range lc.nodes {
		if nd.cmd != nil {
			nd.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, nd := range lc.nodes {
		if nd.cmd == nil {
			continue
		}
		select {
		case <-nd.exited:
		case <-time.After(10 * time.Second):
			nd.cmd.Process.Kill()
			<-nd.exited
		}
		nd.cmd = nil
	}
}

// SelfCPUSeconds is this process's own utime+stime (its children's not
// included), -1 if unreadable.
func SelfCPUSeconds() float64 {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return -1
	}
	return processCPUSeconds(os.Getpid())
}

// processCPUSeconds reads utime+stime of pid from /proc (0 if unreadable).
func processCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) start at ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// FreePort returns a port for a local node, taken below the kernel's
// ephemeral range: a port the kernel hands out for ":0" can be taken by any
// outbound connection (the benchmark's own clients open hundreds) between
// this check and kraftd's bind ("address already in use").
func FreePort() int {
	portOnce.Do(func() { nextPort.Store(int64(12000 + rand.IntN(max(1, ephemeralLow()-14000)))) })
	for tries := 0; tries < 1000; tries++ {
		p := int(nextPort.Add(1))
		if p >= ephemeralLow() {
			nextPort.Store(12000)
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			l.Close()
			return p
		}
	}
	return 0
}

var (
	portOnce sync.Once
	nextPort atomic.Int64
)

// ephemeralLow is the first port of ip_local_port_range.
func ephemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
}
