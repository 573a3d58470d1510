package inproc

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/kraftdb/kraft/netio"
	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/wire"
)

// NullClusterID is the cluster ID a NullServer answers to.
const NullClusterID = "kraftbench-null"

// NullServer speaks kraftd's client protocol on 127.0.0.1 over the same
// netio transport, and answers every request at once: a write with OK at
// the next index, a read with OK and no value. No Raft, no disk, no state.
// Load run against it measures what the load generator and the loopback
// network can do on this machine (kraftbench --null-server): a ceiling no
// cluster measured with the same load can pass, and, in CPU per operation,
// what the harness itself costs.
type NullServer struct {
	tr       *netio.Transport
	addr     string
	index    atomic.Uint64
	answered atomic.Uint64
}

// StartNull starts a NullServer on a free port of 127.0.0.1.
func StartNull(logger *slog.Logger) (*NullServer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	peer, client := perf.FreePort(), perf.FreePort()
	if peer == 0 || client == 0 {
		return nil, errors.New("kraft/perf/inproc: no free port below the ephemeral range")
	}
	s := &NullServer{addr: fmt.Sprintf("127.0.0.1:%d", client)}
	var err error
	s.tr, err = netio.New(netio.Config{NodeID: 1, ClusterID: perf.ClusterNumber(NullClusterID),
		PeerAddr: fmt.Sprintf("127.0.0.1:%d", peer), ClientAddr: s.addr, Logger: logger}, s)
	if err != nil {
		return nil, err
	}
	if err := s.tr.Start(); err != nil {
		s.tr.Close()
		return nil, err
	}
	return s, nil
}

// ClientAddr is where clients connect.
func (s *NullServer) ClientAddr() string { return s.addr }

// Answered is how many requests the server has answered.
func (s *NullServer) Answered() uint64 { return s.answered.Load() }

// Close stops the server.
func (s *NullServer) Close() error { return s.tr.Close() }

// HandleRaft implements netio.Handler; a NullServer has no peers.
func (s *NullServer) HandleRaft(*wire.Message) {}

// HandleClient implements netio.Handler: every request is answered at
// once, on the event loop.
func (s *NullServer) HandleClient(c *netio.ClientConn, req *wire.ClientRequest, _ []byte) {
	resp := wire.ClientResponse{Seq: req.Seq, Status: wire.StatusOK, Term: 1, LeaderID: 1}
	if req.Op == wire.OpGet {
		resp.Index = s.index.Load()
	} else {
		resp.Index = s.index.Add(1)
	}
	s.answered.Add(1)
	_ = c.Respond(&resp)
}
