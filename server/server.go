package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/internal/hist"
	"github.com/kraftdb/kraft/netio"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

// Server is one kraftd node: the Raft node with its WAL, the KV state
// machine, the network transport and the admin HTTP server.
type Server struct {
	cfg  Config
	live atomic.Pointer[Config] // cfg with the reloaded settings (SIGHUP)
	tls  tlsSources

	deadlines requestDeadlines // requests in flight, for --request-timeout
	// readsReady: reads whose index the node confirmed, for answerReads.
	readsMu    sync.Mutex
	readsReady []*readRequest
	log        *slog.Logger
	logLevel   *slog.LevelVar

	// The node and its state machine, replaced together when the node is
	// reopened (force-new-cluster): a reopened node replays the log into a
	// fresh state machine.
	kvP     atomic.Pointer[sm.KV]
	nodeP   atomic.Pointer[core.Node]
	tr      *netio.Transport
	book    *addressBook
	metrics *nodeMetrics
	admin   *http.Server
	adminLn net.Listener

	// dial overrides the address dialled per peer (--peer-dial).
	dial map[uint64]string

	// The server's own client session, for member records it writes.
	selfClientID uint64
	selfSeq      atomic.Uint64

	// Answers held until a batch is done (netio.ResponseBatch): writes
	// answered on the apply goroutine, reads answered together.
	writeAnswers, readAnswers netio.ResponseBatch

	// Latency of the phases kraft-ctl latency-breakdown prints.
	writeToLog, waitForAck, totalCommit, readIndex hist.Histogram
	answerClock                                    answerClock // the apply goroutine's (answerWrite)

	afterApplyForTest atomic.Pointer[func()] // tests: runs on the apply goroutine after each batch's answers

	restartMu sync.Mutex // serializes reopening the node
	fatalOnce sync.Once
	fatalC    chan struct{}
	fatalErr  error

	started  time.Time
	stopOnce sync.Once
	stopC    chan struct{}
	wg       sync.WaitGroup
}

// n is the current Raft node, kv its state machine.
func (s *Server) n() *core.Node { return s.nodeP.Load() }
func (s *Server) kv() *sm.KV    { return s.kvP.Load() }

// New builds a node from cfg (already validated by LoadConfig). level is
// the logger's level, changed by Reload; it may be nil.
func New(cfg Config, log *slog.Logger, level *slog.LevelVar) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if level == nil {
		level = new(slog.LevelVar)
	}
	static, _ := ParsePeers(cfg.Peers)
	dial, _ := ParsePeers(cfg.PeerDial)
	s := &Server{dial: dial, cfg: cfg, log: log, logLevel: level, metrics: newNodeMetrics(cfg.NodeID), stopC: make(chan struct{}), fatalC: make(chan struct{}), started: time.Now()}
	live := cfg
	s.live.Store(&live)
	ts, err := loadTLS(&cfg)
	if err != nil {
		return nil, err
	}
	s.tls = ts
	s.book = newAddressBook(static, s.replicatedAddresses)
	s.metrics.gauge("kraft_last_snapshot_time", func() float64 {
		t, _, ok := s.newestSnapshot()
		if !ok {
			return 0
		}
		return float64(t.Unix())
	})
	s.metrics.gauge("kraft_peer_connections", func() float64 {
		if s.tr == nil {
			return 0
		}
		p, _ := s.tr.Conns()
		return float64(p)
	})
	s.metrics.gauge("kraft_client_connections", func() float64 {
		if s.tr == nil {
			return 0
		}
		_, c := s.tr.Conns()
		return float64(c)
	})
	s.metrics.counterFunc("kraft_connections_refused_total", func() uint64 {
		if s.tr == nil {
			return 0
		}
		return s.tr.Stats().ConnsRefused.Load()
	})
	s.metrics.counterFunc("kraft_handshake_timeouts_total", func() uint64 {
		if s.tr == nil {
			return 0
		}
		return s.tr.Stats().HandshakeTimeouts.Load()
	})
	s.metrics.counterFunc("kraft_bad_frames_total", func() uint64 {
		if s.tr == nil {
			return 0
		}
		return s.tr.Stats().BadFrames.Load() + s.tr.Stats().HandshakesFailed.Load()
	})
	for name, f := range map[string]func(st *netio.Stats) uint64{
		"kraft_tls_handshake_failures_total":         func(st *netio.Stats) uint64 { return st.TLSHandshakeFailures.Load() },
		"kraft_tls_identity_refused_total":           func(st *netio.Stats) uint64 { return st.TLSIdentityRefused.Load() },
		"kraft_tls_required_refused_total":           func(st *netio.Stats) uint64 { return st.TLSRequired.Load() },
		"kraft_idle_timeouts_total":                  func(st *netio.Stats) uint64 { return st.IdleTimeouts.Load() },
		"kraft_inflight_refused_total":               func(st *netio.Stats) uint64 { return st.InflightRefused.Load() },
		"kraft_replication_bytes_raw_total":          func(st *netio.Stats) uint64 { return st.ReplicationBytesRaw.Load() },
		"kraft_replication_bytes_wire_total":         func(st *netio.Stats) uint64 { return st.ReplicationBytesWire.Load() },
		"kraft_replication_appends_compressed_total": func(st *netio.Stats) uint64 { return st.AppendsCompressed.Load() },
		"kraft_net_frames_out_total":                 func(st *netio.Stats) uint64 { return st.FramesOut.Load() },
		"kraft_net_writes_total":                     func(st *netio.Stats) uint64 { return st.Writes.Load() },
		"kraft_net_direct_writes_total":              func(st *netio.Stats) uint64 { return st.DirectWrites.Load() },
		"kraft_net_bytes_out_total":                  func(st *netio.Stats) uint64 { return st.BytesOut.Load() },
		"kraft_net_frames_in_total":                  func(st *netio.Stats) uint64 { return st.FramesIn.Load() },
	} {
		s.metrics.counterFunc(name, func() uint64 {
			if s.tr == nil {
				return 0
			}
			return f(s.tr.Stats())
		})
	}
	for name, f := range map[string]func(n *core.Node) uint64{
		"kraft_proposal_batches_total":       func(n *core.Node) uint64 { return n.Batches().Batches },
		"kraft_proposals_batched_total":      func(n *core.Node) uint64 { return n.Batches().Proposals },
		"kraft_wal_syncs_total":              func(n *core.Node) uint64 { return n.WALStats().Syncs },
		"kraft_wal_segments_recycled_total":  func(n *core.Node) uint64 { return n.WALStats().SegmentsRecycled },
		"kraft_wal_segments_read_back_total": func(n *core.Node) uint64 { return n.WALStats().SegmentsReadBack },
	} {
		s.metrics.counterFunc(name, func() uint64 {
			if n := s.n(); n != nil {
				return f(n)
			}
			return 0
		})
	}
	s.metrics.gauge("kraft_log_cache_bytes", func() float64 {
		if n := s.n(); n != nil {
			if lc, err := n.LogCache(); err == nil {
				return float64(lc.Bytes)
			}
		}
		return 0
	})
	s.metrics.gauge("kraft_snapshot_size_bytes", func() float64 { _, size, _ := s.newestSnapshot(); return float64(size) })
	s.metrics.gauge("kraft_pending_bytes", func() float64 {
		st := s.metrics.status.Load()
		if st == nil || st.LastIndex <= st.Commit || s.n() == nil {
			return 0
		}
		b, _ := s.n().LogBytes(st.Commit+1, st.LastIndex)
		return float64(b)
	})
	var b [8]byte
	rand.Read(b[:])
	s.selfClientID = binary.LittleEndian.Uint64(b[:]) | 1
	return s, nil
}

func (s *Server) replicatedAddresses(id uint64) (Addresses, bool) {
	kv := s.kv()
	if kv == nil {
		return Addresses{}, false
	}
	v, ok := kv.Get(memberKey(id))
	if !ok {
		return Addresses{}, false
	}
	a, err := decodeAddresses(v)
	return a, err == nil
}

// Start opens the storage, recovers, and starts serving the three ports.
func (s *Server) Start() error {
	cfg := &s.cfg
	static, _ := ParsePeers(cfg.Peers)
	tr, err := netio.New(netio.Config{
		NodeID: cfg.NodeID, ClusterID: cfg.NumericClusterID(),
		PeerAddr: cfg.listen(cfg.RaftPort), ClientAddr: cfg.listen(cfg.ClientPort),
		AdvertisePeer: cfg.AdvertisedPeerAddr(), AdvertiseClient: cfg.AdvertisedClientAddr(), AdvertiseAdmin: cfg.AdvertisedAdminAddr(),
		MaxFrameBytes: int(cfg.MaxFrameSize), MaxInflightBytesPerConn: 4 * int(cfg.MaxFrameSize),
		MaxConnsPerPort:            cfg.MaxConnections,
		HandshakeTimeout:           cfg.HandshakeTimeout,
		IdleTimeout:                cfg.IdleTimeout,
		MaxInflightRequestsPerConn: cfg.MaxInflightRequests,
		PeerTLS:                    s.tls.peer,
		ClientTLS:                  s.tls.client,
		ReplicationCompression:     cfg.ReplicationCompression,
		OnPeerHello:                s.onPeerHello,
		Logger:                     s.log,
	}, (*handler)(s))
	if err != nil {
		return err
	}
	s.tr = tr

	n, kv, err := s.openNode(false)
	if err != nil {
		return err
	}
	s.kvP.Store(kv)
	s.nodeP.Store(n)
	for id, addr := range static {
		tr.SetPeer(id, s.dialAddr(id, addr))
	}
	if err := tr.Start(); err != nil {
		n.Close()
		return err
	}
	s.watchNode(n)
	if cfg.Join != "" {
		s.log.Info("joining an existing cluster: add this node with kraft-ctl add-voter (or add-learner) on any member",
			"node_id", cfg.NodeID, "address", cfg.AdvertisedPeerAddr(), "contact", cfg.Join)
	}
	if err := s.startAdmin(); err != nil {
		tr.Close()
		n.Close()
		return err
	}
	s.wg.Add(2)
	go s.maintain()
	go s.sweepRequests()
	s.log.Info("kraftd started", "node", cfg.NodeID, "cluster", cfg.ClusterID,
		"raft", cfg.listen(cfg.RaftPort), "client", cfg.listen(cfg.ClientPort), "admin", cfg.listen(cfg.AdminPort),
		"data_dir", cfg.DataDir, "fsync", cfg.FsyncMode,
		"peer_tls", s.tls.peer != nil, "client_tls", s.tls.client != nil, "admin_tls", s.tls.admin != nil)
	return nil
}

// openNode opens the storage and starts a Raft node on it; with
// forceNewCluster the node becomes the only voter of a new cluster, keeping
// its log (quorum-loss recovery).
func (s *Server) openNode(forceNewCluster bool) (*core.Node, *sm.KV, error) {
	cfg := &s.cfg
	static, _ := ParsePeers(cfg.Peers)
	fsync, err := wal.ParseFsyncMode(cfg.FsyncMode)
	if err != nil {
		return nil, nil, err
	}
	kv, err := sm.NewKV(sm.DefaultKVConfig())
	if err != nil {
		return nil, nil, err
	}
	if fsync == wal.FsyncNone && !forceNewCluster {
		s.log.Warn("--fsync-mode=none: acknowledged writes are lost if the machine loses power; use it for tests and benchmarks only")
	}
	walDir := cfg.WALDir
	if walDir == "" {
		walDir = cfg.DataDir
	}
	rc := core.DefaultConfig(cfg.NodeID, nil)
	tick := time.Millisecond
	rc.ElectionTimeoutMinTicks = int(cfg.ElectionTimeoutMin / tick)
	rc.ElectionTimeoutMaxTicks = int(cfg.ElectionTimeoutMax / tick)
	rc.HeartbeatIntervalTicks = int(cfg.HeartbeatInterval / tick)
	rc.DisablePreVote = !cfg.PreVote
	rc.DisableCheckQuorum = !cfg.CheckQuorum
	rc.LeaseReads = cfg.LeaseReads
	rc.MaxEntryBytes = int(cfg.MaxEntrySize)
	rc.MaxUncommittedEntries = cfg.MaxPendingEntries
	rc.MaxUncommittedBytes = int(cfg.MaxPendingBytes)
	rc.MaxInflightMsgs = cfg.PipelineWindow
	rc.LogCacheBytes = int(cfg.LogCacheSize)
	rc.MaxMsgBytes = min(rc.MaxMsgBytes, int(cfg.MaxFrameSize)/2)
	rc.MaxSnapshotChunkBytes = min(rc.MaxSnapshotChunkBytes, int(cfg.MaxFrameSize)/2)
	rc.ForceNewCluster = forceNewCluster
	var bootstrap []uint64
	if cfg.Bootstrap {
		bootstrap = append(bootstrap, cfg.NodeID)
		for id := range static {
			if id != cfg.NodeID {
				bootstrap = append(bootstrap, id)
			}
		}
		slices.Sort(bootstrap)
	}
	n, err := core.NewNode(core.NodeConfig{
		Raft: rc, TickInterval: tick,
		WALDir: walDir,
		WAL: wal.Options{SegmentSizeBytes: int64(cfg.SegmentSize), Fsync: fsync, SyncInterval: cfg.BatchFsyncInterval,
			RecycleSegments: recycleSegments(cfg.WALRecycleSegments), SnapshotDir: cfg.SnapshotDir, SnapshotsRetained: cfg.SnapshotRetain},
		StateMachine:         kv,
		Transport:            s.tr,
		Bootstrap:            bootstrap,
		SnapshotEveryEntries: cfg.SnapshotThreshold,
		SnapshotMinInterval:  cfg.SnapshotMinInterval,
		BatchSize:            cfg.BatchSize,
		BatchTimeout:         cfg.BatchTimeout,
		Snapshots:            snapshotOptions(cfg),
		OnMembership:         s.onMembership,
		AfterReads:           s.answerReads,
		AfterApply:           s.flushWrites,
		OnPersistLatency: func(d time.Duration) {
			s.metrics.persistLatency.Update(d.Seconds())
			s.writeToLog.Record(d)
		},
		OnCommitLatency: func(_, durableToCommit time.Duration) { s.waitForAck.Record(durableToCommit) },
		Logger:          s.log,
	})
	return n, kv, err
}

// onPeerHello learns where a peer listens; a node that contacts us but is
// not yet in our transport (e.g. the leader of a cluster we are joining)
// becomes dialable at once.
func (s *Server) onPeerHello(h wire.Hello) {
	s.book.learn(h.NodeID, Addresses{Peer: h.PeerAddr, Client: h.ClientAddr, Admin: h.AdminAddr})
	if h.PeerAddr != "" {
		s.tr.SetPeer(h.NodeID, s.dialAddr(h.NodeID, h.PeerAddr))
	}
}

// dialAddr is where to dial peer id: the --peer-dial override, else addr.
func (s *Server) dialAddr(id uint64, addr string) string {
	if d, ok := s.dial[id]; ok {
		return d
	}
	return addr
}

// onMembership keeps the transport's peers equal to the members with a
// known address. It runs on the Raft loop: SetPeer only starts dialling.
func (s *Server) onMembership(m core.Membership) {
	members := m.Members()
	for _, id := range members {
		if id == s.cfg.NodeID {
			continue
		}
		if a := s.book.get(id); a.Peer != "" {
			s.tr.SetPeer(id, s.dialAddr(id, a.Peer))
		}
	}
	if len(members) > 0 && slices.Contains(members, s.cfg.NodeID) {
		for id := range s.book.static {
			if !slices.Contains(members, id) {
				s.tr.RemovePeer(id)
			}
		}
	}
}

// maintain refreshes the status the metrics read, and on the leader
// publishes member addresses that changed. It also keeps peers dialled as
// replicated records arrive.
func (s *Server) maintain() {
	defer s.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stopC:
			return
		case <-s.fatalC:
			return
		case <-t.C:
		}
		st, err := s.n().Status()
		if err != nil {
			continue
		}
		s.metrics.observe(st)
		s.onMembership(st.Membership)
		if st.Role != core.RoleLeader {
			continue
		}
		s.book.learn(s.cfg.NodeID, Addresses{Peer: s.cfg.AdvertisedPeerAddr(), Client: s.cfg.AdvertisedClientAddr(), Admin: s.cfg.AdvertisedAdminAddr()})
		for _, id := range st.Membership.Members() {
			if a, differs := s.book.learnedDiffers(id); differs {
				if err := s.writeMemberRecord(id, a); err != nil {
					s.log.Debug("publishing member addresses", "member", id, "error", err.Error())
				}
			}
		}
	}
}

// writeMemberRecord replicates a member's addresses as a KV put in the
// server's own session.
func (s *Server) writeMemberRecord(id uint64, a Addresses) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	_, err := s.n().Propose(ctx, s.selfPut(memberKey(id), a.encode()))
	return err
}

// selfPut is the log command of a put in the server's own client session
// (member records, traced requests), encoded as a client's would be.
func (s *Server) selfPut(key, value []byte) []byte {
	seq := s.selfSeq.Add(1)
	r := wire.ClientRequest{ClientID: s.selfClientID, Seq: seq, FirstUnacked: seq, NewSession: true,
		Op: wire.OpPut, Key: key, Value: value}
	frame := wire.AppendClientRequest(nil, &r)
	return sm.AppendCommand(nil, time.Now().UnixNano(), frame[wire.FrameHeaderSize:])
}

// leaderStatus is the node's status, or the NotLeaderError that admin calls
// needing the leader answer with.
func (s *Server) leaderStatus() (core.Status, error) {
	st, err := s.n().Status()
	if err == nil && st.Role != core.RoleLeader {
		err = &core.NotLeaderError{Leader: st.Leader}
	}
	return st, err
}

// watchNode reports n stopping by itself (a fatal storage error) as the
// server's failure, unless n was replaced on purpose meanwhile.
func (s *Server) watchNode(n *core.Node) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.stopC:
		case <-n.Done():
			if err := n.Err(); err != nil && s.n() == n {
				s.fatalOnce.Do(func() { s.fatalErr = err; close(s.fatalC) })
			}
		}
	}()
}

// Done is closed when the node stops by itself (a fatal storage error).
func (s *Server) Done() <-chan struct{} { return s.fatalC }

// Err is the fatal error that stopped the node, if any.
func (s *Server) Err() error {
	select {
	case <-s.fatalC:
		return s.fatalErr
	default:
		return nil
	}
}

// reopenNode closes the Raft node and opens it again on the same storage,
// with forceNewCluster as given. The transport and admin server stay up;
// messages arriving meanwhile are dropped (Raft retransmits).
func (s *Server) reopenNode(forceNewCluster bool) error {
	s.restartMu.Lock()
	defer s.restartMu.Unlock()
	old := s.n()
	if err := old.Close(); err != nil {
		s.log.Warn("closing the node for a restart", "error", err.Error())
	}
	n, kv, err := s.openNode(forceNewCluster)
	if err != nil {
		return err
	}
	s.kvP.Store(kv)
	s.nodeP.Store(n)
	s.watchNode(n)
	return nil
}

// snapshotOptions maps --snapshot-compression, --snapshot-incremental and
// --snapshot-async to the node's snapshot options.
func snapshotOptions(cfg *Config) core.SnapshotOptions {
	o := core.SnapshotOptions{Incremental: cfg.SnapshotIncremental, Sync: !cfg.SnapshotAsync}
	if cfg.SnapshotCompression {
		o.Compression = wal.SnapshotCodecZstd
	}
	return o
}

// Reload applies the reloadable settings of cfg (SIGHUP): the log level,
// batching, the pending limits, the key and value size limits, and the TLS
// certificates (re-read from the configured files; a file that fails to
// load keeps the old certificate). Other settings need a restart; a change
// to one is logged and ignored.
func (s *Server) Reload(cfg Config) error {
	var errs []error
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.LogLevel)); err == nil {
		s.logLevel.Set(l)
	}
	next := *s.live.Load()
	next.LogLevel = cfg.LogLevel
	if n := s.n(); n != nil {
		if err := n.SetBatching(cfg.BatchSize, cfg.BatchTimeout); err != nil {
			errs = append(errs, err)
		} else {
			next.BatchSize, next.BatchTimeout = cfg.BatchSize, cfg.BatchTimeout
		}
		if err := n.SetPendingLimits(cfg.MaxPendingEntries, int(cfg.MaxPendingBytes)); err != nil {
			errs = append(errs, err)
		} else {
			next.MaxPendingEntries, next.MaxPendingBytes = cfg.MaxPendingEntries, cfg.MaxPendingBytes
		}
	}
	next.MaxKeySize, next.MaxValueSize = cfg.MaxKeySize, cfg.MaxValueSize
	if err := s.tls.reload(); err != nil {
		errs = append(errs, err)
	}
	s.live.Store(&next)
	var ignored []string
	now, want := next.Effective(), cfg.Effective()
	for _, st := range settings() {
		if now[st.name] != want[st.name] {
			ignored = append(ignored, "--"+st.name)
		}
	}
	if len(ignored) > 0 {
		s.log.Warn("configuration reload: these settings change only with a restart", "settings", strings.Join(ignored, " "))
	}
	err := errors.Join(errs...)
	if err != nil {
		s.log.Error("configuration reload: some settings were not applied", "error", err.Error())
	}
	s.log.Info("configuration reloaded", "log_level", next.LogLevel, "batch_size", next.BatchSize, "batch_timeout", next.BatchTimeout.String(),
		"max_pending_entries", next.MaxPendingEntries, "max_pending_bytes", next.MaxPendingBytes.String(), "tls_reloaded", s.tls != (tlsSources{}))
	return err
}

// Shutdown stops the node gracefully: a leader first hands leadership to
// the most up-to-date voter, then everything closes.
func (s *Server) Shutdown(ctx context.Context) error {
	if st, err := s.n().Status(); err == nil && st.Role == core.RoleLeader && len(st.Membership.Voters) > 1 {
		if target := bestTransferTarget(st); target != 0 {
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := s.n().TransferLeadership(tctx, target)
			cancel()
			s.metrics.transfers.Inc()
			if err != nil {
				s.log.Warn("leadership transfer before shutdown failed", "target", target, "error", err.Error())
			} else {
				s.log.Info("transferred leadership before shutdown", "to", target)
			}
		}
	}
	return s.Close()
}

// bestTransferTarget is the voter with the highest match index.
func bestTransferTarget(st core.Status) uint64 {
	var best uint64
	var bestMatch uint64
	for _, p := range st.Peers {
		if p.ID == st.ID || p.Learner || !st.Membership.IsVoter(p.ID) {
			continue
		}
		if best == 0 || p.Match > bestMatch {
			best, bestMatch = p.ID, p.Match
		}
	}
	return best
}

// Close stops serving and closes the storage.
func (s *Server) Close() error {
	var err error
	s.stopOnce.Do(func() {
		close(s.stopC)
		if s.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.admin.Shutdown(ctx)
			cancel()
		}
		if s.tr != nil {
			err = errors.Join(err, s.tr.Close())
		}
		s.wg.Wait()
		if n := s.n(); n != nil {
			err = errors.Join(err, n.Close())
		}
	})
	return err
}

// ---- client requests ----

// handler adapts the server to netio.Handler.
type handler Server

func (h *handler) HandleRaft(m *wire.Message) { (*Server)(h).n().Step(m) }

// HandleClient runs on an event loop and never waits there: a write is
// proposed with ProposeAsync and answered from the node's callback when it
// applies; a read asks for a read index with ReadAsync and is answered once
// the apply reaches it (see requests.go).
func (h *handler) HandleClient(c *netio.ClientConn, req *wire.ClientRequest, body []byte) {
	s := (*Server)(h)
	refuse := func(err string) {
		s.metrics.request(req.Op, wire.StatusError)
		c.Respond(&wire.ClientResponse{Seq: req.Seq, Status: wire.StatusError, Error: []byte(err)})
	}
	switch {
	case req.Op == wire.OpGet:
		consistency := req.Consistency
		if s.cfg.UnsafeLocalReads {
			consistency = wire.ReadStale // the canary: deliberately not linearizable
		}
		s.serveRead(c, req, consistency)
	case isReservedKey(req.Key):
		refuse(`kraft/server: keys beginning with "\x00kraft/" are reserved`)
	default:
		if err := s.checkSizes(req); err != nil {
			s.metrics.oversized.Inc()
			refuse(err.Error())
			return
		}
		if len(body)+8 > int(s.cfg.MaxEntrySize) {
			s.metrics.oversized.Inc()
			refuse(fmt.Sprintf("kraft/server: request of %d bytes exceeds --max-entry-size (%v)", len(body)+8, s.cfg.MaxEntrySize))
			return
		}
		now := c.ReceivedAt() // the command's stamp and the request's start
		w, buf := s.newWrite(c, req, now, 8+len(body))
		s.serveWrite(w, sm.AppendCommand(buf, now.UnixNano(), body))
	}
}

// checkSizes enforces --max-key-size and --max-value-size on a write.
func (s *Server) checkSizes(req *wire.ClientRequest) error {
	live := s.live.Load()
	keyMax, valueMax := min(live.MaxKeySize, live.MaxEntrySize), min(live.MaxValueSize, live.MaxEntrySize)
	if len(req.Key) > int(keyMax) {
		return fmt.Errorf("kraft/server: key of %d bytes exceeds --max-key-size (%v)", len(req.Key), keyMax)
	}
	if len(req.Value) > int(valueMax) {
		return fmt.Errorf("kraft/server: value of %d bytes exceeds --max-value-size (%v)", len(req.Value), valueMax)
	}
	if len(req.Expect) > int(valueMax) {
		return fmt.Errorf("kraft/server: expected value of %d bytes exceeds --max-value-size (%v)", len(req.Expect), valueMax)
	}
	return nil
}

// fillError maps a node error to the status a client acts on, with the
// seed's error texts.
func (s *Server) fillError(resp *wire.ClientResponse, err error) {
	var nl *core.NotLeaderError
	switch {
	case errors.As(err, &nl) && nl.Leader != 0:
		resp.Status, resp.LeaderID = wire.StatusNotLeader, nl.Leader
		resp.LeaderAddr = []byte(s.book.get(nl.Leader).Client)
		resp.Error = []byte(err.Error())
		return
	case errors.Is(err, core.ErrTooManyPending):
		resp.Status, resp.Error = wire.StatusTooManyRequests, []byte(err.Error())
		return
	case errors.Is(err, core.ErrStopped):
		resp.Status, resp.Error = wire.StatusError, []byte(err.Error())
		return
	}
	// No leader, a timeout, or a proposal lost to a leadership change: if a
	// quorum is out of reach, say so; else the outcome is unknown and the
	// client retries with the same sequence number.
	if q := s.quorumError(); q != nil {
		resp.Status, resp.Error = wire.StatusNoQuorum, []byte(q.Error())
		return
	}
	if errors.As(err, &nl) {
		resp.Status, resp.Error = wire.StatusNotLeader, []byte("no leader elected yet (election in progress); retry")
		return
	}
	resp.Status, resp.Error = wire.StatusTimeout, []byte(err.Error())
}

// quorumError reports the seed's "quorum not reached" when this node cannot
// reach a majority of the voters (counting itself).
func (s *Server) quorumError() error {
	st, err := s.n().Status()
	if err != nil || len(st.Membership.Voters) == 0 {
		return nil
	}
	got := 0
	for _, id := range st.Membership.Voters {
		if id == s.cfg.NodeID || s.tr.Connected(id) {
			got++
		}
	}
	total := len(st.Membership.Voters)
	if need := total/2 + 1; got < need {
		return &core.QuorumError{Got: got, Total: total, Need: need}
	}
	return nil
}
