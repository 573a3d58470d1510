// Package inproc runs a Kraft cluster inside the calling process, the way
// an embedder does and the way the peers' published figures were taken
// (dragonboat, etcd-io/raft, hashicorp/raft: three nodes in one process,
// real TCP on loopback between them, fsync on, no client network). Each
// node is a core.Node with its own WAL and the reference KV state machine,
// linked to the others by a netio.Transport on 127.0.0.1; the load
// (Target) proposes KV commands to the leader's Node directly.
//
// It is kept apart from package perf, which DESIGN.md limits to the client
// side of the tree: this one imports the server-side library (core, netio,
// wal, sm). kraftbench --embedded is its command line.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/netio"
	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// Config is one in-process cluster. Everything not named here takes
// kraftd's defaults (1 ms tick, 150-300 ms elections, batches of up to
// 4,096 proposals, snapshots every 100,000 entries at most once a minute,
// 64 MiB segments, a 256 MiB log cache).
type Config struct {
	Nodes  int           // 1-9
	Dir    string        // node i keeps its WAL in Dir/node<i>/wal, its snapshots in Dir/node<i>/snapshots
	Fsync  wal.FsyncMode // as kraftd --fsync-mode
	Logger *slog.Logger  // default: errors to stderr (a node's dials to peers that stop first warn at Close)
}

// Cluster is Nodes nodes of one cluster in this process.
type Cluster struct {
	members []*member
	leader  atomic.Pointer[member] // the last node found leading
}

// member is one node and its transport. The transport is made first (the
// node needs it), so Raft messages that arrive before the node exists are
// dropped; Raft retransmits them.
type member struct {
	id   uint64
	tr   *netio.Transport
	node atomic.Pointer[core.Node]
	kv   *sm.KV
}

// HandleRaft implements netio.Handler.
func (m *member) HandleRaft(msg *wire.Message) {
	if n := m.node.Load(); n != nil {
		n.Step(msg)
	}
}

// HandleClient implements netio.Handler; the transports have no client
// port, so it is never called.
func (m *member) HandleClient(*netio.ClientConn, *wire.ClientRequest, []byte) {}

// Start starts the nodes on fresh storage under cfg.Dir, as a new cluster,
// and waits up to 10 s for a leader.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Nodes < 1 || cfg.Nodes > 9 {
		return nil, fmt.Errorf("kraft/perf/inproc: nodes must be 1-9, got %d", cfg.Nodes)
	}
	if cfg.Dir == "" {
		return nil, errors.New("kraft/perf/inproc: no directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	peers := make(map[uint64]string, cfg.Nodes)
	ids := make([]uint64, cfg.Nodes)
	for i := range cfg.Nodes {
		ids[i] = uint64(i + 1)
		p := perf.FreePort()
		if p == 0 {
			return nil, errors.New("kraft/perf/inproc: no free port below the ephemeral range")
		}
		peers[ids[i]] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	// Every transport listens before any dials, then every node starts.
	c := &Cluster{}
	for _, id := range ids {
		m, err := listen(cfg, id, peers[id])
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("kraft/perf/inproc: node %d: %w", id, err)
		}
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		for id, addr := range peers {
			if id != m.id {
				m.tr.SetPeer(id, addr)
			}
		}
	}
	for _, m := range c.members {
		if err := m.start(cfg, ids); err != nil {
			c.Close()
			return nil, fmt.Errorf("kraft/perf/inproc: node %d: %w", m.id, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Leader(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("kraft/perf/inproc: no leader: %w", err)
	}
	return c, nil
}

// listen starts node id's transport on addr.
func listen(cfg Config, id uint64, addr string) (*member, error) {
	m := &member{id: id}
	var err error
	m.tr, err = netio.New(netio.Config{NodeID: id, ClusterID: 1, PeerAddr: addr,
		MaxInflightBytesPerConn: 4 * wire.DefaultMaxFrameSize, Logger: cfg.Logger.With("node", id)}, m)
	if err != nil {
		return nil, err
	}
	return m, m.tr.Start()
}

// start opens the node's storage and starts it, a founding voter with ids.
func (m *member) start(cfg Config, ids []uint64) error {
	dir := filepath.Join(cfg.Dir, fmt.Sprint("node", m.id))
	kv, err := sm.NewKV(sm.DefaultKVConfig())
	if err != nil {
		return err
	}
	m.kv = kv
	rc := core.DefaultConfig(m.id, nil)
	rc.LogCacheBytes = 256 << 20
	n, err := core.NewNode(core.NodeConfig{
		Raft:                 rc,
		WALDir:               filepath.Join(dir, "wal"),
		WAL:                  wal.Options{SegmentSizeBytes: 64 << 20, Fsync: cfg.Fsync, SnapshotDir: filepath.Join(dir, "snapshots")},
		StateMachine:         kv,
		Transport:            m.tr,
		Bootstrap:            ids,
		SnapshotEveryEntries: 100000,
		SnapshotMinInterval:  time.Minute,
		Logger:               cfg.Logger.With("node", m.id),
	})
	if err != nil {
		return err
	}
	m.node.Store(n)
	return nil
}

// Leader returns the node that leads now, waiting for one until ctx ends.
func (c *Cluster) Leader(ctx context.Context) (*core.Node, error) {
	m, err := c.findLeader(ctx)
	if err != nil {
		return nil, err
	}
	return m.node.Load(), nil
}

// findLeader asks every node until one says it leads.
func (c *Cluster) findLeader(ctx context.Context) (*member, error) {
	for {
		for _, m := range c.members {
			if n := m.node.Load(); n == nil {
				continue
			} else if st, err := n.Status(); err == nil && st.Role == core.RoleLeader {
				c.leader.Store(m)
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Nodes is the cluster's size.
func (c *Cluster) Nodes() int { return len(c.members) }

// Close stops every node, then every transport, and reports the first
// error.
func (c *Cluster) Close() error {
	var first error
	for _, m := range c.members {
		if n := m.node.Load(); n != nil {
			if err := n.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	for _, m := range c.members {
		if err := m.tr.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
