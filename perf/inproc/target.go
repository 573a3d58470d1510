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

// Target is a perf.Target on a Cluster, driving the leader's Node the way
// kraftd does: a write is the KV command kraftd would propose for a
// client's put (the request as the Go client encodes it, stamped with the
// time), proposed with Node.ProposeAsync and done when the leader has
// applied it; a read asks Node.ReadAsync for the consistency and, once the
// leader has applied the read index, reads the leader's KV. A worker waits
// on a channel of its own: with Propose and Read, whose selects lock
// channels every worker shares, lock contention was a third of the load's
// CPU. Each worker is a client session of its own (ID worker+1, sequence
// numbers from 1, everything before the current request acknowledged), so
// the KV does the exactly-once bookkeeping it does for real clients.
//
// An operation that finds no leader (an election) looks for the new one
// and fails; the runner counts it as an error.
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
	readDone    func(uint64, error)    // the same for reads
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
		w.readDone = func(_ uint64, err error) { w.done <- outcome{err: err} }
	}
	return t
}

// Do implements perf.Target.
func (t *Target) Do(ctx context.Context, w int, read bool, key, value []byte) error {
	m := t.c.leader.Load()
	wk := &t.workers[w]
	if read {
		err := m.node.Load().ReadAsync(t.consistency, wk.readDone)
		switch {
		case err == nil: // readDone is called once the leader has applied the read index
			err = (<-wk.done).err
		case errors.Is(err, core.ErrQueueFull):
			_, err = m.node.Load().Read(ctx, t.consistency)
		}
		if err != nil {
			return t.failed(err)
		}
		m.kv.Get(key)
		return nil
	}
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
