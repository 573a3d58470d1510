package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/server"
)

// kraftdBin and ctlBin are built once per test binary, with the same
// race/invariants setting as the tests.
var kraftdBin, ctlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kraft-e2e-bin")
	if err != nil {
		panic(err)
	}
	kraftdBin, ctlBin = filepath.Join(dir, "kraftd"), filepath.Join(dir, "kraft-ctl")
	for bin, pkg := range map[string]string{kraftdBin: "../cmd/kraftd", ctlBin: "../cmd/kraft-ctl"} {
		args := append([]string{"build", "-o", bin}, kraftdBuildFlags...)
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one kraftd process.
type proc struct {
	extra                   []string // flags for every start of this node
	spare                   bool     // not a founder: left out of --peers, joins later
	id                      uint64
	raft, clientP, adminP   int
	dataDir, snapDir, logFn string
	cmd                     *exec.Cmd
	exited                  chan struct{}
}

func (p *proc) peerAddr() string   { return fmt.Sprintf("127.0.0.1:%d", p.raft) }
func (p *proc) clientAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.clientP) }
func (p *proc) adminAddr() string  { return fmt.Sprintf("127.0.0.1:%d", p.adminP) }

// cluster is a set of kraftd processes on 127.0.0.1.
type cluster struct {
	t       *testing.T
	dir     string
	name    string
	mu      sync.Mutex
	procs   map[uint64]*proc
	extra   []string // flags for every node
	clients []*client.Client
}

// freePort returns a port for a node to listen on. It is taken below the
// kernel's ephemeral range (ip_local_port_range), so no outbound connection
// of a parallel test can land on it between this check and kraftd's bind;
// within this process ports are handed out once.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		p := int(nextPort.Add(1))
		if p >= ephemeralLow() {
			t.Fatal("ran out of test ports below the ephemeral range")
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
}

// nextPort starts at a random point so that test binaries run one after
// the other do not reuse each other's ports while sockets linger.
var nextPort atomic.Int64

func init() { nextPort.Store(int64(10000 + rand.IntN(8000))) }

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
}

// newCluster starts n founding members.
func newCluster(t *testing.T, n int, extra ...string) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), name: "e2e-" + t.Name(), procs: map[uint64]*proc{}, extra: extra}
	for i := uint64(1); i <= uint64(n); i++ {
		c.procs[i] = c.newProc(i)
	}
	t.Cleanup(c.cleanup)
	for i := uint64(1); i <= uint64(n); i++ {
		c.start(i, "--bootstrap")
	}
	c.waitLeader(10 * time.Second)
	return c
}

func (c *cluster) newProc(id uint64) *proc {
	d := filepath.Join(c.dir, fmt.Sprint("node", id))
	return &proc{id: id, raft: freePort(c.t), clientP: freePort(c.t), adminP: freePort(c.t),
		dataDir: filepath.Join(d, "data"), snapDir: filepath.Join(d, "snapshots"), logFn: filepath.Join(d, "kraftd.log")}
}

func (c *cluster) peersFlag() string {
	var parts []string
	for id, p := range c.procs {
		if !p.spare {
			parts = append(parts, fmt.Sprintf("%d=%s", id, p.peerAddr()))
		}
	}
	return strings.Join(parts, ",")
}

// start (re)starts node id with its data dir.
func (c *cluster) start(id uint64, flags ...string) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	os.MkdirAll(filepath.Dir(p.logFn), 0o755)
	logf, err := os.OpenFile(p.logFn, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	args := []string{"--node-id", fmt.Sprint(id), "--cluster-id", c.name, "--bind-address", "127.0.0.1",
		"--raft-port", fmt.Sprint(p.raft), "--client-port", fmt.Sprint(p.clientP), "--admin-port", fmt.Sprint(p.adminP),
		"--peers", c.peersFlag(), "--data-dir", p.dataDir, "--snapshot-dir", p.snapDir, "--log-level", "debug"}
	args = append(append(append(args, c.extra...), p.extra...), flags...)
	cmd := exec.Command(kraftdBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(ch chan struct{}) { cmd.Wait(); logf.Close(); close(ch) }(p.exited)
	c.waitAdmin(p)
}

func (c *cluster) waitAdmin(p *proc) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.adminAddr() + "/health/live"); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-p.exited:
			c.t.Fatalf("node %d exited at start:\n%s", p.id, tail(p.logFn, 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.t.Fatalf("node %d admin port never came up:\n%s", p.id, tail(p.logFn, 20))
}

// kill sends sig (SIGKILL, SIGTERM, SIGSTOP, SIGCONT) to node id; for the
// ending signals it waits for the exit.
func (c *cluster) signal(id uint64, sig syscall.Signal) {
	c.t.Helper()
	p := c.procs[id]
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			c.t.Fatalf("node %d did not exit on %v", id, sig)
		}
		p.cmd = nil
	}
}

func (c *cluster) cleanup() {
	for _, cl := range c.clients {
		cl.Close()
	}
	for _, p := range c.procs {
		if p.cmd != nil && p.cmd.Process != nil {
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if c.t.Failed() {
		for id, p := range c.procs {
			c.t.Logf("---- node %d log (tail) ----\n%s", id, tail(p.logFn, 40))
		}
	}
}

func tail(fn string, n int) string {
	b, _ := os.ReadFile(fn)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *cluster) status(id uint64) (server.StatusBody, error) {
	var st server.StatusBody
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + c.procs[id].adminAddr() + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// follower returns a node other than leader (the lowest ID among them).
func (c *cluster) follower(leader uint64) uint64 {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var f uint64
	for id := range c.procs {
		if id != leader && (f == 0 || id < f) {
			f = id
		}
	}
	if f == 0 {
		c.t.Fatalf("no node besides leader %d", leader)
	}
	return f
}

// waitLeader waits until the running nodes agree on a leader, and returns it.
func (c *cluster) waitLeader(within time.Duration) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var leader uint64
		agreed := true
		for id, p := range c.procs {
			if p.cmd == nil {
				continue
			}
			st, err := c.status(id)
			if err == nil && !isMember(st) {
				continue // a joining node knows no leader until it is added
			}
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				agreed = false
				break
			}
			leader = st.Leader
		}
		if agreed && leader != 0 && c.procs[leader].cmd != nil {
			return leader
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no agreed leader within %v", within)
	return 0
}

func isMember(st server.StatusBody) bool {
	for _, m := range st.Members {
		if m.ID == st.NodeID {
			return true
		}
	}
	return false
}

// client returns a Go client over every node's client port.
func (c *cluster) client() *client.Client {
	c.t.Helper()
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.clientAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps, ClusterID: server.ClusterNumber(c.name), RequestTimeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	c.clients = append(c.clients, cl)
	return cl
}

// adminCall sends a JSON admin call and decodes the answer.
func (c *cluster) adminCall(id uint64, method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+c.procs[id].adminAddr()+path, rd)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on node %d: %v", method, path, id, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
