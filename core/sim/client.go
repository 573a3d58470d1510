package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/kraftdb/kraft/core"
)

// client issues one operation at a time against some node, retrying
// elsewhere on NotLeaderError and giving up (outcome unknown) on timeout.
type client struct {
	id     int
	target int
	cur    int // index into Sim.ops of the outstanding op; -1: none
	busy   bool
}

type op struct {
	client    int
	put       bool
	key       int
	val       uint64
	call, ret Time
	done      bool
	unknown   bool
	node      int
	readCtx   uint64
	gaveUp    bool
}

const clientTimeout = 600 * Millisecond

// clientStep starts the client's next operation; timeoutOp > 0 marks the
// timeout of operation timeoutOp-1.
func (s *Sim) clientStep(c *client, timeoutOp int) {
	if timeoutOp > 0 && (!c.busy || c.cur != timeoutOp-1) {
		return // that operation already finished
	}
	if timeoutOp == 0 && c.busy {
		return
	}
	if c.busy {
		o := &s.ops[c.cur]
		if !o.done {
			// Timed out: a write's outcome is unknown, a read is dropped.
			o.gaveUp = true
			if o.put {
				o.unknown = true
			}
		}
		c.busy = false
	}
	if s.now >= s.o.Duration+s.o.Quiet-clientTimeout {
		return
	}
	n := s.nodes[c.target]
	if !n.up {
		c.target = s.rng.IntN(len(s.nodes))
		s.push(&event{at: s.now + 5*Millisecond, kind: evClient, arg: c.id})
		return
	}
	s.opSeq++
	o := op{client: c.id, put: s.rng.IntN(5) < 3, key: s.rng.IntN(numKeys), call: s.now, node: c.target}
	var err error
	if o.put {
		o.val = uint64(s.opSeq)
		_, err = n.r.Propose([][]byte{encodeCmd(c.id, len(s.ops), o.key, o.val)})
	} else {
		o.readCtx = uint64(len(s.ops)) + 1
		err = n.r.ReadIndex(o.readCtx)
	}
	if err != nil {
		if nl, ok := err.(*core.NotLeaderError); ok && nl.Leader != 0 {
			c.target = int(nl.Leader) - 1
		} else {
			c.target = s.rng.IntN(len(s.nodes))
		}
		s.push(&event{at: s.now + 3*Millisecond, kind: evClient, arg: c.id})
		return
	}
	s.ops = append(s.ops, o)
	c.cur, c.busy = len(s.ops)-1, true
	s.drain(n)
	if c.busy {
		s.push(&event{at: s.now + clientTimeout, kind: evClient, arg: c.id, inc: c.cur + 1})
	}
}

// writeApplied completes a put the first time any node applies it.
func (s *Sim) writeApplied(client, opIdx int) {
	if opIdx >= len(s.ops) {
		s.fail("applied unknown op %d", opIdx)
		return
	}
	o := &s.ops[opIdx]
	if o.client != client || !o.put {
		s.fail("applied op %d does not match client %d", opIdx, client)
		return
	}
	if o.done || o.gaveUp {
		return
	}
	o.done, o.ret = true, s.now
	s.Stats.OpsOK++
	s.finish(client, opIdx)
}

func (s *Sim) finish(client, opIdx int) {
	c := s.clients[client]
	if c.busy && c.cur == opIdx {
		c.busy = false
		s.push(&event{at: s.now + Time(s.rng.IntN(20))*Millisecond, kind: evClient, arg: client})
	}
}

func (s *Sim) readState(n *node, rs core.ReadState) {
	opIdx := int(rs.Context) - 1
	if opIdx < 0 || opIdx >= len(s.ops) || s.ops[opIdx].put || s.ops[opIdx].node != n.idx {
		return
	}
	o := &s.ops[opIdx]
	if o.done || o.gaveUp || rs.Err != nil {
		return
	}
	n.reads = append(n.reads, pendingRead{op: opIdx, index: rs.Index})
	s.serveReads(n)
}

func (s *Sim) serveReads(n *node) {
	keep := n.reads[:0]
	for _, pr := range n.reads {
		o := &s.ops[pr.op]
		if o.done || o.gaveUp {
			continue
		}
		if n.kv.applied < pr.index {
			keep = append(keep, pr)
			continue
		}
		o.val, o.done, o.ret = n.kv.vals[o.key], true, s.now
		s.Stats.Reads++
		s.finish(o.client, pr.op)
	}
	n.reads = keep
}

type kvInput struct {
	put bool
	key int
	val uint64
}

// checkLinearizable checks the client history against a register per key.
func (s *Sim) checkLinearizable() error {
	var hist []porcupine.Operation
	for _, o := range s.ops {
		switch {
		case o.done:
			hist = append(hist, porcupine.Operation{ClientId: o.client, Input: kvInput{o.put, o.key, o.val},
				Call: int64(o.call), Output: o.val, Return: int64(o.ret)})
		case o.put:
			// Unknown outcome: it may take effect at any time after its call.
			s.Stats.OpsUnknown++
			hist = append(hist, porcupine.Operation{ClientId: o.client, Input: kvInput{o.put, o.key, o.val},
				Call: int64(o.call), Output: o.val, Return: math.MaxInt64 / 2})
		}
	}
	model := porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			parts := make([][]porcupine.Operation, numKeys)
			for _, o := range h {
				k := o.Input.(kvInput).key
				parts[k] = append(parts[k], o)
			}
			return parts
		},
		Init: func() any { return uint64(0) },
		Step: func(state, input, output any) (bool, any) {
			in := input.(kvInput)
			if in.put {
				return true, in.val
			}
			return output.(uint64) == state.(uint64), state
		},
		DescribeOperation: func(input, output any) string {
			in := input.(kvInput)
			if in.put {
				return fmt.Sprintf("put(k%d, %d)", in.key, in.val)
			}
			return fmt.Sprintf("get(k%d) → %d", in.key, output.(uint64))
		},
	}
	res := porcupine.CheckOperationsTimeout(model, hist, 20*time.Second)
	if res == porcupine.Illegal {
		return s.fail("linearizability: the client history of %d operations is not linearizable", len(hist))
	}
	return nil
}
