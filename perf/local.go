package perf

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LocalCluster is a cluster of kraftd processes on 127.0.0.1 started by
// StartLocal, each with its own data directory under Dir.
type LocalCluster struct {
	Dir       string
	ClusterID string
	Clients   []string // client addresses
	Admins    []string // admin addresses
	procs     []*exec.Cmd
}

// StartLocal starts n kraftd processes from the binary bin as a new
// cluster and waits for a leader. extra flags go to every node.
func StartLocal(bin string, n int, dir string, extra ...string) (*LocalCluster, error) {
	lc := &LocalCluster{Dir: dir, ClusterID: fmt.Sprintf("kraftbench-%d", time.Now().UnixNano())}
	type ports struct{ raft, client, admin int }
	ps := make([]ports, n)
	var peers []string
	for i := range ps {
		ps[i] = ports{freePort(), freePort(), freePort()}
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i+1, ps[i].raft))
	}
	for i, p := range ps {
		nd := filepath.Join(dir, fmt.Sprint("node", i+1))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return nil, err
		}
		logf, err := os.Create(filepath.Join(nd, "kraftd.log"))
		if err != nil {
			return nil, err
		}
		args := append([]string{"--node-id", fmt.Sprint(i + 1), "--cluster-id", lc.ClusterID, "--bind-address", "127.0.0.1",
			"--raft-port", fmt.Sprint(p.raft), "--client-port", fmt.Sprint(p.client), "--admin-port", fmt.Sprint(p.admin),
			"--peers", strings.Join(peers, ","), "--bootstrap",
			"--data-dir", filepath.Join(nd, "data"), "--snapshot-dir", filepath.Join(nd, "snapshots")}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			lc.Stop()
			return nil, fmt.Errorf("kraft/perf: starting %s: %w", bin, err)
		}
		lc.procs = append(lc.procs, cmd)
		lc.Clients = append(lc.Clients, fmt.Sprintf("127.0.0.1:%d", p.client))
		lc.Admins = append(lc.Admins, fmt.Sprintf("127.0.0.1:%d", p.admin))
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if lc.leaderKnown() {
			return lc, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	lc.Stop()
	return nil, fmt.Errorf("kraft/perf: no leader within 20s; logs under %s", dir)
}

func (lc *LocalCluster) leaderKnown() bool {
	for _, a := range lc.Admins {
		resp, err := http.Get("http://" + a + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// CPUSeconds is the user+system CPU time the processes have used so far.
func (lc *LocalCluster) CPUSeconds() float64 {
	total := 0.0
	for _, c := range lc.procs {
		if c.Process != nil {
			total += processCPUSeconds(c.Process.Pid)
		}
	}
	return total
}

// Stop terminates every process and waits for them.
func (lc *LocalCluster) Stop() {
	for _, c := range lc.procs {
		if c.Process != nil {
			c.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range lc.procs {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
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

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
