package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/wire"
)

// writeMany writes n keys through cl with `workers` concurrent writers and
// returns the keys whose writes were acknowledged.
func writeMany(t *testing.T, cl *client.Client, prefix string, n, workers int) map[string]string {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]string{}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				k, v := fmt.Sprintf("%s%06d", prefix, i), fmt.Sprint("v", i)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := cl.Put(ctx, []byte(k), []byte(v))
				cancel()
				if err != nil {
					failures.Add(1)
					continue
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d writes acknowledged (%d failed or unknown)", len(acked), n, failures.Load())
	return acked
}

func checkAllReadable(t *testing.T, cl *client.Client, acked map[string]string, c wire.Consistency) {
	t.Helper()
	for k, v := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := cl.Get(ctx, []byte(k), client.WithConsistency(c))
		cancel()
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		if !res.Found || string(res.Value) != v {
			t.Fatalf("acknowledged write lost: %s = %q (found %v), want %q", k, res.Value, res.Found, v)
		}
	}
}

// A 3-node cluster takes 10,000 writes through the client, and each is
// readable linearizably through every node (followers redirect or serve
// after ReadIndex).
func TestThreeNodeClusterServesWrites(t *testing.T) {
	c := newCluster(t, 3)
	acked := writeMany(t, c.client(), "k", 10000, 64)
	if len(acked) != 10000 {
		t.Fatalf("only %d of 10000 writes acknowledged on a healthy cluster", len(acked))
	}
	for id, p := range c.procs {
		cl, err := client.New(client.Config{Endpoints: []string{p.clientAddr()}, ClusterID: c.clientCluster()})
		if err != nil {
			t.Fatal(err)
		}
		sample := map[string]string{}
		for k, v := range acked {
			if len(sample) == 300 {
				break
			}
			sample[k] = v
		}
		checkAllReadable(t, cl, sample, wire.ReadLinearizable)
		cl.Close()
		t.Logf("node %d: 300 sampled keys read linearizably", id)
	}
}

// kill -9 the leader under load: a new leader within a second, no
// acknowledged write lost, and the killed node catches up after restart,
// by log, and after compaction by snapshot.
func TestLeaderKillUnderLoad(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-threshold", "2000", "--snapshot-min-interval", "0")
	cl := c.client()
	first := writeMany(t, cl, "a", 3000, 32)

	var acked map[string]string
	done := make(chan struct{})
	go func() { acked = writeMany(t, cl, "b", 6000, 32); close(done) }()
	time.Sleep(300 * time.Millisecond)
	old := c.waitLeader(5 * time.Second)
	killedAt := time.Now()
	c.signal(old, syscall.SIGKILL)
	var newLeader uint64
	deadline := time.Now().Add(5 * time.Second)
	for newLeader == 0 || newLeader == old {
		if time.Now().After(deadline) {
			t.Fatal("no new leader within 5s of killing the leader")
		}
		for id := range c.procs {
			if id == old {
				continue
			}
			if st, err := c.status(id); err == nil && st.Leader != 0 && st.Leader != old {
				newLeader = st.Leader
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	elected := time.Since(killedAt)
	t.Logf("node %d killed; node %d leads after %v", old, newLeader, elected)
	if elected > time.Second {
		t.Errorf("new leader after %v, want within 1s (election timeout 150-300ms)", elected)
	}
	<-done
	for k, v := range first {
		acked[k] = v
	}
	checkAllReadable(t, cl, acked, wire.ReadLinearizable)

	// The killed node restarts from its data and catches up: the others have
	// compacted past what it has, so it needs a snapshot.
	for id := range c.procs {
		if id != old {
			c.adminCall(id, "POST", "/admin/snapshot", nil)
		}
	}
	c.start(old)
	deadline = time.Now().Add(20 * time.Second)
	for {
		st, err := c.status(old)
		lst, lerr := c.status(newLeader)
		if err == nil && lerr == nil && st.LastApplied >= lst.CommitIndex && lst.CommitIndex > 0 {
			t.Logf("restarted node %d caught up to %d (its snapshot index %d, first log index %d)", old, st.LastApplied, st.SnapshotIndex, st.FirstIndex)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node did not catch up: %+v vs leader %+v (%v %v)", st, lst, err, lerr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It serves stale reads of everything acknowledged, from its own state.
	only, err := client.New(client.Config{Endpoints: []string{c.procs[old].clientAddr()}, ClusterID: c.clientCluster()})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	checkAllReadable(t, only, acked, wire.ReadStale)
}

func (c *cluster) clientCluster() uint64 {
	return serverClusterNumber(c.name)
}

// A 5-node cluster survives two kills; with three down a write fails fast
// with the seed's "quorum not reached" text instead of hanging.
func TestFiveNodesQuorum(t *testing.T) {
	c := newCluster(t, 5)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, []byte("before"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	leader := c.waitLeader(5 * time.Second)
	var down []uint64
	for id := range c.procs {
		if id != leader && len(down) < 2 {
			down = append(down, id)
		}
	}
	for _, id := range down {
		c.signal(id, syscall.SIGKILL)
	}
	if _, err := cl.Put(ctx, []byte("two down"), []byte("ok")); err != nil {
		t.Fatalf("write with 2 of 5 down: %v", err)
	}
	// A third node goes: no majority. The client must get an answer.
	for id := range c.procs {
		if id != leader && c.procs[id].cmd != nil {
			c.signal(id, syscall.SIGKILL)
			break
		}
	}
	start := time.Now()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	_, err := cl.Put(wctx, []byte("three down"), []byte("no"))
	took := time.Since(start)
	if err == nil {
		t.Fatal("write with 3 of 5 down succeeded")
	}
	if !errors.Is(err, client.ErrNoQuorum) || !strings.Contains(err.Error(), "quorum not reached: got 2/5, need 3") {
		t.Fatalf("write with 3 of 5 down: %v (after %v); want the seed's 'quorum not reached: got 2/5, need 3'", err, took)
	}
	t.Logf("refused after %v: %v", took, err)
}

// Add a node (learner, catch-up, promotion), transfer leadership to it,
// then remove another member.
func TestMembershipChangesOnRealProcesses(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	acked := writeMany(t, cl, "m", 500, 8)

	c.mu.Lock()
	c.procs[4] = c.newProc(4)
	c.mu.Unlock()
	c.start(4, "--join", c.procs[1].peerAddr())
	leader := c.waitLeader(5 * time.Second)
	code, body := c.adminCall(leader, "POST", "/admin/members", map[string]any{"id": 4, "address": c.procs[4].peerAddr()})
	if code != 200 {
		t.Fatalf("add-voter: HTTP %d %v", code, body)
	}
	st, _ := c.status(leader)
	if fmt.Sprint(st.Voters) != "[1 2 3 4]" {
		t.Fatalf("voters after add: %v", st.Voters)
	}
	// Transfer leadership to the new node.
	code, body = c.adminCall(leader, "POST", "/admin/transfer-leadership?target=4", nil)
	if code != 200 {
		t.Fatalf("transfer: HTTP %d %v", code, body)
	}
	if l := c.waitLeader(5 * time.Second); l != 4 {
		t.Fatalf("leader after transfer: %d, want 4", l)
	}
	// Remove node 1 through the new leader.
	code, body = c.adminCall(4, "DELETE", "/admin/members/1", nil)
	if code != 200 {
		t.Fatalf("remove-voter: HTTP %d %v", code, body)
	}
	st, _ = c.status(4)
	if fmt.Sprint(st.Voters) != "[2 3 4]" {
		t.Fatalf("voters after remove: %v", st.Voters)
	}
	c.signal(1, syscall.SIGTERM)
	more := writeMany(t, cl, "n", 200, 8)
	for k, v := range more {
		acked[k] = v
	}
	checkAllReadable(t, cl, acked, wire.ReadLinearizable)
	// The new node holds everything.
	only, _ := client.New(client.Config{Endpoints: []string{c.procs[4].clientAddr()}, ClusterID: c.clientCluster()})
	defer only.Close()
	checkAllReadable(t, only, acked, wire.ReadStale)
}

// Bad input on every port, a node of another cluster, and invalid flags:
// each gets a clear error and the cluster keeps serving.
func TestBadInputIsRefused(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{c.procs[1].peerAddr(), c.procs[1].clientAddr()} {
		for _, payload := range [][]byte{
			[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789012345678901234567890123"),
			append(wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: c.clientCluster()}), 0xff, 0xff, 0xff, 0x7f, 32),
		} {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write(payload)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			n, _ := readAll(conn, buf)
			conn.Close()
			if !strings.Contains(string(buf[:n]), "kraft/wire") {
				t.Fatalf("%s answered %q to bad input, want an error frame", addr, buf[:n])
			}
		}
	}
	// A node of another cluster is refused, and both logs say why.
	stranger := &cluster{t: t, dir: t.TempDir(), name: "other-cluster", procs: map[uint64]*proc{}}
	stranger.procs[9] = stranger.newProc(9)
	stranger.procs[1] = &proc{id: 1, raft: c.procs[1].raft} // lists our node 1 as its peer
	t.Cleanup(stranger.cleanup)
	stranger.start(9, "--bootstrap")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tail(c.procs[1].logFn, 400), "cluster ID mismatch") || !strings.Contains(tail(stranger.procs[9].logFn, 400), "refused by the remote") {
		if time.Now().After(deadline) {
			t.Fatalf("cluster mismatch not logged on both sides:\nours:\n%s\ntheirs:\n%s", tail(c.procs[1].logFn, 10), tail(stranger.procs[9].logFn, 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Invalid flags: refused at start with the field named, exit code 2.
	out, err := runKraftd("--node-id", "0", "--raft-port", "70000", "--fsync-mode", "maybe")
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, "--node-id") || !strings.Contains(out, "--raft-port 70000") || !strings.Contains(out, "--fsync-mode") {
		t.Fatalf("invalid flags: exit %v, output:\n%s", err, out)
	}
	// Through all of it the cluster serves.
	if _, err := cl.Put(ctx, []byte("still"), []byte("serving")); err != nil {
		t.Fatalf("cluster stopped serving after bad input: %v", err)
	}
}

// The guide's data-corruption procedure: stop a node, empty its data dir,
// put a snapshot file from another node in its snapshot dir, start it: it
// rejoins and catches up with nothing lost.
func TestRestoreFromSnapshotIntoEmptyDataDir(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	acked := writeMany(t, cl, "r", 2000, 16)
	leader := c.waitLeader(5 * time.Second)
	if code, body := c.adminCall(leader, "POST", "/admin/snapshot", nil); code != 200 {
		t.Fatalf("snapshot: %d %v", code, body)
	}
	victim := c.follower(leader)
	c.signal(victim, syscall.SIGTERM)
	v := c.procs[victim]
	if err := os.RemoveAll(v.dataDir); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(v.snapDir)
	os.MkdirAll(v.snapDir, 0o755)
	snaps, _ := filepath.Glob(filepath.Join(c.procs[leader].snapDir, "snapshot-*.dat"))
	if len(snaps) == 0 {
		t.Fatal("leader has no snapshot file")
	}
	data, _ := os.ReadFile(snaps[len(snaps)-1])
	os.WriteFile(filepath.Join(v.snapDir, filepath.Base(snaps[len(snaps)-1])), data, 0o644)
	more := writeMany(t, cl, "s", 500, 8) // written while the node was away
	for k, val := range more {
		acked[k] = val
	}
	c.start(victim)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.status(victim)
		lst, _ := c.status(leader)
		if err == nil && st.LastApplied >= lst.CommitIndex && st.Leader == leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored node did not catch up: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	only, _ := client.New(client.Config{Endpoints: []string{v.clientAddr()}, ClusterID: c.clientCluster()})
	defer only.Close()
	checkAllReadable(t, only, acked, wire.ReadStale)
}

// A follower wiped without any snapshot to restore (its data and snapshot
// dirs emptied) restarts empty: the leader must send it everything again,
// though it once acknowledged it all.
func TestWipedFollowerWithoutSnapshotCatchesUp(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	acked := writeMany(t, cl, "w", 1000, 16)
	leader := c.waitLeader(5 * time.Second)
	victim := c.follower(leader)
	c.signal(victim, syscall.SIGTERM)
	os.RemoveAll(c.procs[victim].dataDir)
	os.RemoveAll(c.procs[victim].snapDir)
	c.start(victim)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.status(victim)
		lst, _ := c.status(leader)
		if err == nil && lst.CommitIndex > 0 && st.LastApplied >= lst.CommitIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wiped follower stuck: %+v (leader commit %d)", st, lst.CommitIndex)
		}
		time.Sleep(20 * time.Millisecond)
	}
	only, _ := client.New(client.Config{Endpoints: []string{c.procs[victim].clientAddr()}, ClusterID: c.clientCluster()})
	defer only.Close()
	checkAllReadable(t, only, acked, wire.ReadStale)
}
