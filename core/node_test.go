package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/procmaps"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// memNet delivers messages between in-process nodes; a node marked down
// neither sends nor receives.
type memNet struct {
	mu    sync.RWMutex
	nodes map[uint64]*Node
	down  map[uint64]bool
}

type memTransport struct {
	net  *memNet
	from uint64
}

func (t memTransport) Send(m *wire.Message) error {
	t.net.mu.RLock()
	dst, ok := t.net.nodes[m.To]
	blocked := t.net.down[m.To] || t.net.down[t.from]
	t.net.mu.RUnlock()
	if ok && !blocked {
		dst.Step(m)
	}
	return nil
}

type nodeCluster struct {
	t   *testing.T
	net *memNet
	dir string
	kvs map[uint64]*sm.KV
	ids []uint64
	// snapshotEvery is passed to new nodes; tweak, if set, edits their config.
	snapshotEvery uint64
	tweak         func(*NodeConfig)
}

// startThree starts nodes 1, 2 and 3 of a new cluster, all voters, and
// returns it with their IDs.
func startThree(t *testing.T) (*nodeCluster, []uint64) {
	c := newNodeCluster(t)
	voters := []uint64{1, 2, 3}
	for _, id := range voters {
		c.start(id, voters)
	}
	return c, voters
}

func newNodeCluster(t *testing.T, ids ...uint64) *nodeCluster {
	c := &nodeCluster{t: t, net: &memNet{nodes: map[uint64]*Node{}, down: map[uint64]bool{}}, dir: t.TempDir(), kvs: map[uint64]*sm.KV{}, ids: ids}
	t.Cleanup(func() {
		for _, n := range c.net.nodes {
			n.Close()
		}
	})
	return c
}

func (c *nodeCluster) start(id uint64, bootstrap []uint64) *Node {
	c.t.Helper()
	kv, _ := sm.NewKV(sm.DefaultKVConfig())
	rc := DefaultConfig(id, rand.NewPCG(id, 42))
	cfg := NodeConfig{
		Raft: rc, TickInterval: time.Millisecond,
		WALDir:               filepath.Join(c.dir, fmt.Sprint(id)),
		WAL:                  wal.Options{SegmentSizeBytes: 1 << 20, Fsync: wal.FsyncNone},
		StateMachine:         kv,
		Transport:            memTransport{net: c.net, from: id},
		Bootstrap:            bootstrap,
		SnapshotEveryEntries: c.snapshotEvery,
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.net.mu.Lock()
	c.net.nodes[id] = n
	c.net.mu.Unlock()
	c.kvs[id] = kv
	return n
}

func (c *nodeCluster) stop(id uint64) {
	c.net.mu.Lock()
	n := c.net.nodes[id]
	delete(c.net.nodes, id)
	c.net.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

func (c *nodeCluster) leader() *Node {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.net.mu.RLock()
		nodes := make([]*Node, 0, len(c.net.nodes))
		for id, n := range c.net.nodes {
			if !c.net.down[id] {
				nodes = append(nodes, n)
			}
		}
		c.net.mu.RUnlock()
		for _, n := range nodes {
			if st, err := n.Status(); err == nil && st.Role == RoleLeader {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader within 10s")
	return nil
}

var clientSeq atomic.Uint64

func put(key, value string) []byte {
	seq := clientSeq.Add(1)
	r := wire.ClientRequest{ClientID: 1, Seq: seq, FirstUnacked: seq, NewSession: true, Op: wire.OpPut, Key: []byte(key), Value: []byte(value)}
	f := wire.AppendClientRequest(nil, &r)
	return sm.AppendCommand(nil, time.Now().UnixNano(), f[wire.FrameHeaderSize:])
}

// write proposes through whichever node leads, retrying across elections.
func (c *nodeCluster) write(key, value string) {
	c.t.Helper()
	cmd := put(key, value)
	for attempt := 0; attempt < 50; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := c.leader().Propose(ctx, cmd)
		cancel()
		if err == nil {
			if wire.Status(res.Value) != wire.StatusOK {
				c.t.Fatalf("put %s: status %v %s", key, wire.Status(res.Value), res.Data)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("put %s never succeeded", key)
}

func (c *nodeCluster) waitConverged(ids []uint64, key, want string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			v, _ := c.kvs[id].Get([]byte(key))
			if string(v) == want {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d: %s = %q, want %q", id, key, v, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestNodeReplicatesAndSurvivesRestarts(t *testing.T) {
	c, voters := startThree(t)
	for i := 0; i < 300; i++ {
		c.write(fmt.Sprint("k", i), fmt.Sprint("v", i))
	}
	c.waitConverged(voters, "k299", "v299")

	// Every node's KV holds everything.
	for _, id := range voters {
		if c.kvs[id].Len() != 300 {
			t.Fatalf("node %d has %d keys", id, c.kvs[id].Len())
		}
	}
	// Stop the leader; the others elect a new one and keep writing.
	old := c.leader()
	oldID := old.cfg.Raft.ID
	c.stop(oldID)
	c.write("after", "leader change")
	// Restart it from its data dir: it recovers and catches up.
	c.start(oldID, voters)
	c.waitConverged(voters, "after", "leader change")
	if c.kvs[oldID].Len() != 301 {
		t.Fatalf("restarted node has %d keys", c.kvs[oldID].Len())
	}
}

// TestNodeRecoveryReleasesMappedLog: a restarted node copies its log out
// of the WAL's mapping and gives the mapped pages back; none of the log
// stays mapped into the process (node 1 restarts alone, so it appends
// nothing that invariants builds would read back).
func TestNodeRecoveryReleasesMappedLog(t *testing.T) {
	c, voters := startThree(t)
	value := strings.Repeat("v", 1000)
	for i := 0; i < 1500; i++ { // ~1.5 MB: two 1 MiB segments
		c.write(fmt.Sprint("k", i), value)
	}
	c.waitConverged(voters, "k1499", value)
	for _, id := range voters {
		c.stop(id)
	}
	n := c.start(1, voters)
	if last := n.wal.LastIndex(); last < 1500 {
		t.Fatalf("restarted node's log ends at %d", last)
	}
	dir := filepath.Join(c.dir, "1") + "/"
	mapped, err := procmaps.Resident(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mapped != 0 {
		t.Fatalf("%d bytes of the log still mapped after recovery", mapped)
	}
}

func TestNodeLinearizableReadOnFollower(t *testing.T) {
	c, _ := startThree(t)
	c.write("x", "1")
	lead := c.leader()
	var follower *Node
	for id, n := range c.net.nodes {
		if id != lead.cfg.Raft.ID {
			follower = n
			break
		}
	}
	c.write("x", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := follower.Read(ctx, wire.ReadLinearizable)
	var nl *NotLeaderError
	for errors.As(err, &nl) && nl.Leader == 0 && ctx.Err() == nil {
		// Between elections (a loaded machine can delay heartbeats past the
		// timeout) the follower knows no leader to ask; a client retries.
		time.Sleep(10 * time.Millisecond)
		idx, err = follower.Read(ctx, wire.ReadLinearizable)
	}
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.kvs[follower.cfg.Raft.ID].Get([]byte("x")); string(v) != "2" || follower.Applied() < idx {
		t.Fatalf("linearizable read on a follower saw %q (applied %d, read index %d)", v, follower.Applied(), idx)
	}
}

func TestNodeSnapshotCatchesUpNewNode(t *testing.T) {
	c := newNodeCluster(t)
	c.snapshotEvery = 100
	voters := []uint64{1, 2, 3}
	for _, id := range voters {
		c.start(id, voters)
	}
	for i := 0; i < 450; i++ {
		c.write(fmt.Sprint("k", i), "v")
	}
	// Automatic snapshots (every 100 entries) land at batch boundaries;
	// one taken now makes sure the log before 450 is compacted away.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	var snapIdx uint64
	for snapIdx < 450 {
		idx, err := c.leader().Snapshot(sctx)
		if err != nil {
			t.Fatal(err)
		}
		snapIdx = idx
		if sctx.Err() != nil {
			t.Fatal("no snapshot at or after index 450")
		}
	}
	// A new node joins as a learner: the log it needs is compacted, so it
	// gets the snapshot, then is promoted.
	c.start(4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.leader().AddLearner(ctx, 4); err != nil {
		t.Fatal(err)
	}
	c.write("joined", "yes")
	c.waitConverged([]uint64{4}, "joined", "yes")
	if c.kvs[4].Len() != 451 {
		t.Fatalf("new node has %d keys after catching up", c.kvs[4].Len())
	}
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		if err = c.leader().AddVoter(ctx, 4); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.leader().Status()
	if !st.Membership.IsVoter(4) {
		t.Fatalf("membership after promotion: %+v", st.Membership)
	}
	// Restart node 4: it recovers from its own snapshot file plus log.
	c.stop(4)
	c.start(4, nil)
	c.write("after-restart", "yes")
	c.waitConverged([]uint64{4}, "after-restart", "yes")
}

// SnapshotMinInterval: a snapshot due by the entry threshold waits until
// the interval has passed since the previous one started, then is taken
// even though no entry is applied meanwhile; a requested snapshot is never
// delayed.
func TestNodeSnapshotMinInterval(t *testing.T) {
	const interval = 600 * time.Millisecond
	c := newNodeCluster(t)
	c.snapshotEvery = 10
	c.tweak = func(cfg *NodeConfig) { cfg.SnapshotMinInterval = interval }
	n := c.start(1, []uint64{1})
	waitSnap := func(atLeast uint64, within time.Duration) time.Time {
		t.Helper()
		deadline := time.Now().Add(within)
		for n.LastSnapshotIndex() < atLeast {
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot at or after index %d within %v (last %d, applied %d)", atLeast, within, n.LastSnapshotIndex(), n.Applied())
			}
			time.Sleep(time.Millisecond)
		}
		return time.Now()
	}
	for i := 0; i < 10; i++ {
		c.write(fmt.Sprint("a", i), "v")
	}
	firstSeen := waitSnap(10, 5*time.Second) // the first one is not held back
	first := n.LastSnapshotIndex()
	for i := 0; i < 25; i++ { // past the threshold twice over, then idle
		c.write(fmt.Sprint("b", i), "v")
	}
	last := n.Applied()
	for time.Since(firstSeen) < interval/2 {
		if got := n.LastSnapshotIndex(); got != first {
			t.Fatalf("a second automatic snapshot (index %d) %v after the first (%d), inside the %v minimum", got, time.Since(firstSeen), first, interval)
		}
		time.Sleep(time.Millisecond)
	}
	secondSeen := waitSnap(last, 5*time.Second)
	if gap := secondSeen.Sub(firstSeen); gap < interval/2 {
		t.Fatalf("second snapshot %v after the first; minimum %v", gap, interval)
	}
	// A requested snapshot right after an automatic one is taken at once.
	c.write("c", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	idx, err := n.Snapshot(ctx)
	if err != nil || idx != n.Applied() {
		t.Fatalf("requested snapshot: index %d (applied %d), %v", idx, n.Applied(), err)
	}
	if d := time.Since(start); d > interval/2 {
		t.Fatalf("requested snapshot took %v: held back by the minimum interval", d)
	}
}

// gatedSM holds each snapshot's writing until the test lets it go.
type gatedSM struct {
	sm.StateMachine
	writing chan uint64   // a snapshot's WriteTo started (the SM's applied count then)
	gate    chan struct{} // each WriteTo waits for one
	applied atomic.Uint64
}

func (g *gatedSM) Apply(cmds []sm.Command, res []sm.Result) {
	g.StateMachine.Apply(cmds, res)
	g.applied.Add(uint64(len(cmds)))
}

func (g *gatedSM) Snapshot() (sm.Snapshot, error) {
	s, err := g.StateMachine.Snapshot()
	if err != nil {
		return nil, err
	}
	return gatedSnapshot{s, g}, nil
}

type gatedSnapshot struct {
	sm.Snapshot
	g *gatedSM
}

func (s gatedSnapshot) WriteTo(w io.Writer) (int64, error) {
	s.g.writing <- s.g.applied.Load()
	<-s.g.gate
	return s.Snapshot.WriteTo(w)
}

// A Snapshot call while an automatic snapshot is being written waits for
// it, then gets one of its own covering what was applied when it was made;
// it is not refused.
func TestNodeSnapshotWaitsForOneInProgress(t *testing.T) {
	g := &gatedSM{writing: make(chan uint64, 4), gate: make(chan struct{})}
	c := newNodeCluster(t)
	t.Cleanup(func() { close(g.gate) }) // before the nodes close: a held writer must finish
	c.snapshotEvery = 10
	c.tweak = func(cfg *NodeConfig) {
		g.StateMachine = cfg.StateMachine
		cfg.StateMachine = g
	}
	n := c.start(1, []uint64{1})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := 0; i < 15; i++ {
			c.write(fmt.Sprint("k", i), "v")
		}
	}()
	recv := func(what string) {
		t.Helper()
		select {
		case <-g.writing:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s snapshot started", what)
		}
	}
	recv("automatic")
	<-wrote // applied: the writes go on while the snapshot is held
	want := n.Applied()

	type result struct {
		idx uint64
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			idx, err := n.Snapshot(ctx)
			results <- result{idx, err}
		}()
	}
	select {
	case r := <-results:
		t.Fatalf("Snapshot returned (%d, %v) while another was still being written", r.idx, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	g.gate <- struct{}{} // the automatic one completes
	recv("requested")
	g.gate <- struct{}{}
	for range 2 {
		r := <-results
		if r.err != nil || r.idx < want {
			t.Fatalf("requested snapshot: index %d, error %v; want index >= %d (applied when asked)", r.idx, r.err, want)
		}
	}
	if got := n.LastSnapshotIndex(); got < want {
		t.Fatalf("LastSnapshotIndex %d, want >= %d", got, want)
	}
}

// AfterReads follows every batch of successful ReadAsync callbacks, on
// the goroutine that ran them: a batch gathered in the callbacks can be
// served there, and none is left behind.
func TestNodeAfterReadsFollowsReadCallbacks(t *testing.T) {
	var mu sync.Mutex
	var called, served int // callbacks run; callbacks seen by an AfterReads
	c := newNodeCluster(t)
	c.tweak = func(cfg *NodeConfig) {
		cfg.AfterReads = func() {
			mu.Lock()
			served = called
			mu.Unlock()
		}
	}
	voters := []uint64{1, 2, 3}
	for _, id := range voters {
		c.start(id, voters)
	}
	c.write("k", "v")
	const reads = 200
	done := make(chan error, reads)
	for i := 0; i < reads; i++ {
		retryQueueFull(t, func() error {
			return c.leader().ReadAsync(wire.ReadLinearizable, func(_ uint64, err error) {
				mu.Lock()
				called++
				mu.Unlock()
				done <- err
			})
		})
	}
	for i := 0; i < reads; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, "read callbacks seen by AfterReads", &mu, &served, reads)
}

// retryQueueFull calls submit until it is not refused with ErrQueueFull.
func retryQueueFull(t *testing.T, submit func() error) {
	t.Helper()
	for {
		err := submit()
		if err == nil {
			return
		}
		if !errors.Is(err, ErrQueueFull) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitCount waits up to 5 s for *n (under mu) to reach want.
func waitCount(t *testing.T, what string, mu *sync.Mutex, n *int, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := *n
		mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d", what, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// AfterApply follows every batch of successful ProposeAsync callbacks, on
// the goroutine that ran them (the apply goroutine): answers held in the
// callbacks can be sent there, and none is left behind.
func TestNodeAfterApplyFollowsWriteCallbacks(t *testing.T) {
	var mu sync.Mutex
	var called, flushed int // successful callbacks run; those seen by an AfterApply
	c := newNodeCluster(t)
	c.tweak = func(cfg *NodeConfig) {
		cfg.AfterApply = func() {
			mu.Lock()
			flushed = called
			mu.Unlock()
		}
	}
	voters := []uint64{1, 2, 3}
	for _, id := range voters {
		c.start(id, voters)
	}
	c.write("k", "v")
	const writes = 300
	done := make(chan error, writes)
	for i := 0; i < writes; i++ {
		retryQueueFull(t, func() error {
			return c.leader().ProposeAsync(put(fmt.Sprint("k", i), "v"), func(_ sm.Result, err error) {
				if err == nil {
					mu.Lock()
					called++
					mu.Unlock()
				}
				done <- err
			})
		})
	}
	ok := 0
	for i := 0; i < writes; i++ {
		if err := <-done; err == nil {
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("no write succeeded")
	}
	waitCount(t, "successful write callbacks seen by AfterApply", &mu, &flushed, ok)
}

// completer is a Completer that passes the outcome on.
type completer chan error

func (c completer) Complete(_ sm.Result, err error) { c <- err }

// ProposeTo reports each outcome to its Completer exactly once: applied
// writes on the leader, the typed error on a follower, ErrStopped once the
// node is closed.
func TestNodeProposeToReportsToTheCompleter(t *testing.T) {
	c, voters := startThree(t)
	c.write("warm", "up")
	lead := c.leader()
	const writes = 50
	done := make(completer, writes)
	for i := range writes {
		if err := lead.ProposeTo(put(fmt.Sprint("to", i), "v"), done); err != nil {
			t.Fatal(err)
		}
	}
	for range writes {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged(voters, "to49", "v")
	var follower *Node
	for _, n := range c.net.nodes {
		if n != lead {
			follower = n
			break
		}
	}
	if err := follower.ProposeTo(put("f", "v"), done); err != nil {
		t.Fatal(err)
	}
	var nl *NotLeaderError
	if err := <-done; !errors.As(err, &nl) {
		t.Fatalf("a follower's ProposeTo: %v, want *NotLeaderError", err)
	}
	follower.Close()
	if err := follower.ProposeTo(put("g", "v"), done); err != nil {
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("ProposeTo on a closed node: %v", err)
		}
	} else if err := <-done; !errors.Is(err, ErrStopped) {
		t.Fatalf("ProposeTo on a closed node reported %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("an extra outcome: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// ProposeIn keeps the node's record of a proposal in the caller's
// Proposal, which serves again once Complete has returned: one Proposal
// carries a run of writes, each applied in turn.
func TestNodeProposeInReusesOneProposal(t *testing.T) {
	c, voters := startThree(t)
	c.write("warm", "up")
	lead := c.leader()
	var p Proposal
	done := make(completer, 1)
	for i := range 20 {
		cmd := put("in", fmt.Sprint(i))
		if err := lead.ProposeIn(&p, cmd, done); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if p.p.index == 0 || string(p.p.data) != string(cmd) {
			t.Fatalf("write %d: the Proposal holds index %d, command %q", i, p.p.index, p.p.data)
		}
	}
	c.waitConverged(voters, "in", "19")
}

// readCompleter is a ReadCompleter that passes the outcome on.
type readCompleter chan readOutcome

type readOutcome struct {
	index uint64
	err   error
}

func (c readCompleter) ReadDone(index uint64, err error) { c <- readOutcome{index, err} }

// ReadTo reports each read to its ReadCompleter exactly once: a
// linearizable read at an index covering the writes acknowledged before
// it, once applied; a stale read at once; ErrStopped after Close.
func TestNodeReadToReportsToTheCompleter(t *testing.T) {
	c, _ := startThree(t)
	c.write("k", "v")
	lead := c.leader()
	written := lead.Applied()
	done := make(readCompleter, 8)
	for _, cons := range []wire.Consistency{wire.ReadLinearizable, wire.ReadStale} {
		if err := lead.ReadTo(cons, done); err != nil {
			t.Fatal(err)
		}
		o := <-done
		if o.err != nil || o.index < written || lead.Applied() < o.index {
			t.Fatalf("%v read: index %d, err %v (written through %d, applied %d)", cons, o.index, o.err, written, lead.Applied())
		}
	}
	lead.Close()
	if err := lead.ReadTo(wire.ReadLinearizable, done); err != nil {
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("ReadTo on a closed node: %v", err)
		}
	} else if o := <-done; !errors.Is(o.err, ErrStopped) {
		t.Fatalf("ReadTo on a closed node reported %v", o.err)
	}
	select {
	case o := <-done:
		t.Fatalf("an extra outcome: %+v", o)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestNodeProposeOnFollowerNamesTheLeader(t *testing.T) {
	c, _ := startThree(t)
	lead := c.leader()
	for id, n := range c.net.nodes {
		if id == lead.cfg.Raft.ID {
			continue
		}
		waitFor(t, "follower to hear from the leader", func() bool {
			st, err := n.Status()
			return err == nil && st.Leader == lead.cfg.Raft.ID
		})
		_, err := n.Propose(context.Background(), put("k", "v"))
		var nl *NotLeaderError
		if !errors.As(err, &nl) || nl.Leader != lead.cfg.Raft.ID {
			t.Fatalf("follower propose: %v", err)
		}
		want := fmt.Sprintf("not leader, leader is node %d", lead.cfg.Raft.ID)
		if err.Error() != want {
			t.Fatalf("error text %q, want %q", err.Error(), want)
		}
	}
}

func TestNodeCloseFailsOutstandingCalls(t *testing.T) {
	c := newNodeCluster(t)
	n := c.start(1, []uint64{1, 2, 3}) // no quorum: proposals cannot commit
	done := make(chan error, 1)
	go func() {
		_, err := n.Read(context.Background(), wire.ReadLinearizable)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.stop(1)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read on a closed node succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left a call hanging")
	}
	if _, err := n.Propose(context.Background(), put("k", "v")); !errors.Is(err, ErrStopped) {
		t.Fatalf("propose after close: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
