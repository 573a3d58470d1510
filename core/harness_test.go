package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kraftdb/kraft/wire"
)

// cluster is an in-memory test network: persistence completes at once,
// messages wait in a queue until delivered.
type cluster struct {
	t       testing.TB
	nodes   map[uint64]*Raft
	ids     []uint64
	queue   []wire.Message
	cut     map[[2]uint64]bool // cut[{from,to}]: dropped
	applied map[uint64][]wire.Entry
	reads   map[uint64][]ReadState
	errs    []string
	cfg     func(*Config)
	// dropType: messages of this type are dropped (0: none).
	dropType wire.MsgType
}

func testConfig(id uint64) Config {
	c := DefaultConfig(id, rand.NewPCG(id, 7))
	c.ElectionTimeoutMinTicks, c.ElectionTimeoutMaxTicks, c.HeartbeatIntervalTicks = 10, 20, 2
	c.LeaseMarginTicks = 1
	return c
}

func newCluster(t testing.TB, n int, opts ...func(*Config)) *cluster {
	c := &cluster{t: t, nodes: map[uint64]*Raft{}, cut: map[[2]uint64]bool{},
		applied: map[uint64][]wire.Entry{}, reads: map[uint64][]ReadState{}}
	c.cfg = func(cfg *Config) {
		for _, o := range opts {
			o(cfg)
		}
	}
	var voters []uint64
	for i := 1; i <= n; i++ {
		voters = append(voters, uint64(i))
	}
	for _, id := range voters {
		c.add(id, Bootstrap(voters))
	}
	return c
}

func (c *cluster) add(id uint64, st InitialState) *Raft {
	cfg := testConfig(id)
	c.cfg(&cfg)
	r, err := New(cfg, st)
	if err != nil {
		c.t.Fatal(err)
	}
	r.startupQuiet = false // tests start from a settled cluster, not a fresh boot
	c.nodes[id] = r
	if !slices.Contains(c.ids, id) {
		c.ids = append(c.ids, id)
		slices.Sort(c.ids)
	}
	c.process(r)
	return r
}

// process drains r's Readys, persisting at once.
func (c *cluster) process(r *Raft) {
	for r.HasReady() {
		rd := r.Ready()
		it := wire.NewEntryIter(rd.CommittedEntries)
		for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
			c.applied[r.id] = append(c.applied[r.id], e)
		}
		c.reads[r.id] = append(c.reads[r.id], rd.ReadStates...)
		c.queue = append(c.queue, rd.Messages...)
		if rd.LastIndex > 0 {
			r.Persisted(rd.LastIndex, rd.LastTerm)
		}
		c.queue = append(c.queue, rd.MessagesAfterPersist...)
		r.Advance(rd)
	}
}

func (c *cluster) processAll() {
	for _, id := range c.ids {
		c.process(c.nodes[id])
	}
}

// deliver delivers queued messages (and those they cause) until none are
// left; it returns them in order, dropped ones marked.
func (c *cluster) deliver() []string {
	var log []string
	c.processAll()
	for steps := 0; len(c.queue) > 0; steps++ {
		if steps > 100000 {
			c.t.Fatal("messages never settle")
		}
		m := c.queue[0]
		c.queue = c.queue[1:]
		to := c.nodes[m.To]
		if to == nil || c.cut[[2]uint64{m.From, m.To}] || m.Type == c.dropType {
			log = append(log, describe(&m)+" DROPPED")
			continue
		}
		log = append(log, describe(&m))
		if err := to.Step(&m); err != nil {
			c.errs = append(c.errs, fmt.Sprintf("%d: %v", m.To, err))
			log = append(log, fmt.Sprintf("  %d: %v", m.To, err))
		}
		c.process(to)
	}
	return log
}

func (c *cluster) tick(id uint64, n int) {
	for i := 0; i < n; i++ {
		c.nodes[id].Tick()
		c.process(c.nodes[id])
	}
}

func (c *cluster) tickAll(n int) {
	for i := 0; i < n; i++ {
		for _, id := range c.ids {
			c.tick(id, 1)
		}
	}
}

// isolate cuts id off from everyone (both directions).
func (c *cluster) isolate(id uint64) {
	for _, o := range c.ids {
		if o != id {
			c.cut[[2]uint64{id, o}], c.cut[[2]uint64{o, id}] = true, true
		}
	}
}

func (c *cluster) heal() { clear(c.cut) }

// elect makes id campaign as if it had received TimeoutNow (so that the
// followers' leader stickiness does not stand in the way).
func (c *cluster) elect(id uint64) {
	c.nodes[id].campaign(false, true)
	c.deliver()
	if c.nodes[id].Role() != RoleLeader {
		c.t.Fatalf("node %d did not become leader: %+v", id, c.nodes[id].Status())
	}
}

func (c *cluster) propose(id uint64, data string) uint64 {
	i, err := c.nodes[id].Propose([][]byte{[]byte(data)})
	if err != nil {
		c.t.Fatalf("propose on %d: %v", id, err)
	}
	return i
}

func describe(m *wire.Message) string {
	s := fmt.Sprintf("%d→%d %v term=%d", m.From, m.To, m.Type, m.Term)
	switch m.Type {
	case wire.MsgAppend:
		s += fmt.Sprintf(" prev=%d/%d commit=%d entries=%d", m.Index, m.LogTerm, m.Commit, m.EntryCount)
	case wire.MsgAppendResp:
		s += fmt.Sprintf(" index=%d", m.Index)
		if m.Reject {
			s += fmt.Sprintf(" REJECT hint=%d/%d", m.Hint, m.LogTerm)
		}
	case wire.MsgVote, wire.MsgPreVote:
		s += fmt.Sprintf(" last=%d/%d", m.Index, m.LogTerm)
		if m.Transfer {
			s += " transfer"
		}
	case wire.MsgVoteResp, wire.MsgPreVoteResp:
		if m.Reject {
			s += " REJECT"
		}
	case wire.MsgSnapshot:
		s += fmt.Sprintf(" snap=%d/%d chunk=[%d,+%d) of %d", m.Index, m.LogTerm, m.Offset, len(m.Data), m.Size)
		if m.Done {
			s += " done"
		}
	case wire.MsgSnapshotResp:
		s += fmt.Sprintf(" snap=%d have=%d", m.Index, m.Offset)
	case wire.MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d ctx=%d", m.Commit, m.Context)
	case wire.MsgHeartbeatResp, wire.MsgReadIndex:
		s += fmt.Sprintf(" ctx=%d", m.Context)
	case wire.MsgReadIndexResp:
		s += fmt.Sprintf(" index=%d ctx=%d", m.Index, m.Context)
	}
	return s
}

func statusLine(r *Raft) string {
	st := r.Status()
	s := fmt.Sprintf("%d: %v term=%d leader=%d commit=%d applied=%d last=%d/%d", st.ID, st.Role, st.Term, st.Leader,
		st.Commit, st.Applied, st.LastIndex, st.LastTerm)
	if st.SnapshotIndex > 0 {
		s += fmt.Sprintf(" snap=%d", st.SnapshotIndex)
	}
	s += fmt.Sprintf(" voters=%v", st.Membership.Voters)
	if len(st.Membership.Outgoing) > 0 {
		s += fmt.Sprintf(" outgoing=%v", st.Membership.Outgoing)
	}
	if len(st.Membership.Learners) > 0 {
		s += fmt.Sprintf(" learners=%v", st.Membership.Learners)
	}
	if st.Transferee != 0 {
		s += fmt.Sprintf(" transferee=%d", st.Transferee)
	}
	return s
}

func (c *cluster) status() string {
	var b strings.Builder
	for _, id := range c.ids {
		b.WriteString(statusLine(c.nodes[id]) + "\n")
	}
	return b.String()
}
