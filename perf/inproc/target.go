package inproc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// Target is a perf.Target on a Cluster: a write is the KV command kraftd
// would propose for a client's put (the request as the Go client encodes
// it, stamped with the time), proposed on the leader with
// Node.ProposeAsync, kraftd's own way (a worker waits on a channel of its
// own; Propose's selects on channels every worker shares made a third of
// the load's CPU lock contention), and done when the leader has applied
// it; a read asks the leader's Node.Read
// for the consistency, then reads the leader's KV. Each worker is a client
// session of its own (ID worker+1, sequence numbers from 1, everything
// before the current request acknowledged), so the KV does the
// exactly-once bookkeeping it does for real clients.
//
// A proposal that finds no leader (an election) looks for the new one and
// fails; the runner counts it as an error.
type Target struct {
	c           *Cluster
	consistency wire.Consistency
	workers     []worker
}

type worker struct {
	seq         uint64
	established bool
	frame       []byte // encoding scratch
	done        chan outcome
	finish      func(sm.Result, error) // sends to done; made once
}

type outcome struct {
	res sm.Result
	err error
}

// NewTarget returns a target for up to workers concurrent workers, reading
// with consistency.
func NewTarget(c *Cluster, workers int, consistency wire.Consistency) *Target {
	t := &Target{c: c, consistency: consistency, workers: make([]worker, workers)}
	for i := range t.workers {
		w := &t.workers[i]
		w.done = make(chan outcome, 1)
		w.finish = func(res sm.Result, err error) { w.done <- outcome{res, err} }
	}
	return t
}

// Do implements perf.Target.
func (t *Target) Do(ctx context.Context, w int, read bool, key, value []byte) error {
	m := t.c.leader.Load()
	if read {
		if _, err := m.node.Load().Read(ctx, t.consistency); err != nil {
			return t.failed(err)
		}
		m.kv.Get(key)
		return nil
	}
	wk := &t.workers[w]
	wk.seq++
	req := wire.ClientRequest{Op: wire.OpPut, ClientID: uint64(w) + 1, Seq: wk.seq, FirstUnacked: wk.seq,
		NewSession: !wk.established, Key: key, Value: value}
	wk.frame = wire.AppendClientRequest(wk.frame[:0], &req)
	body := wk.frame[wire.FrameHeaderSize:]
	cmd := sm.AppendCommand(make([]byte, 0, 8+len(body)), time.Now().UnixNano(), body)
	var res sm.Result
	err := m.node.Load().ProposeAsync(cmd, wk.finish)
	switch {
	case err == nil: // finish is called exactly once, also when the node stops
		out := <-wk.done
		res, err = out.res, out.err
	case errors.Is(err, core.ErrQueueFull): // more workers than the queue holds
		res, err = m.node.Load().Propose(ctx, cmd)
	}
	if err != nil {
		return t.failed(err)
	}
	if st := wire.Status(res.Value); st != wire.StatusOK {
		wk.established = wk.established && st != wire.StatusSessionExpired
		return fmt.Errorf("kraft/perf/inproc: put answered %v: %s", st, res.Data)
	}
	wk.established = true
	return nil
}

// failed looks for the new leader after a NotLeaderError, then returns err.
func (t *Target) failed(err error) error {
	var nl *core.NotLeaderError
	if errors.As(err, &nl) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		t.c.findLeader(ctx)
	}
	return err
}
