package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/wire"
)

func (s *Server) registerDiag(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/latency", s.guard(s.handleLatency))
	mux.HandleFunc("GET /admin/disk", s.guard(s.handleDisk))
	mux.HandleFunc("GET /admin/snapshots", s.guard(s.handleSnapshots))
	mux.HandleFunc("GET /admin/memory", s.guard(s.handleMemory))
	mux.HandleFunc("GET /admin/ping-peers", s.guard(s.handlePingPeers))
	mux.HandleFunc("POST /admin/trace", s.guard(s.handleTrace))
	mux.HandleFunc("POST /admin/clear-pending-requests", s.guard(s.handleClearPending))
	mux.HandleFunc("POST /admin/step-down", s.guard(s.handleStepDown))
	mux.HandleFunc("POST /admin/force-new-cluster", s.guard(s.handleForceNewCluster))
	mux.HandleFunc("POST /admin/rejoin", s.guard(s.handleRejoin))
}

// LatencyBody is GET /admin/latency: the commit path's phases.
type LatencyBody struct {
	WriteToLog  Summary `json:"write_to_log"` // WAL append until durable (the group commit's fdatasync)
	WaitForAck  Summary `json:"wait_for_ack"` // local durability until a quorum has it (commit)
	TotalCommit Summary `json:"total_commit"` // client write received until applied
	ReadIndex   Summary `json:"read_index"`   // linearizable read received until servable
}

func (s *Server) handleLatency(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, LatencyBody{WriteToLog: summarize(&s.writeToLog), WaitForAck: summarize(&s.waitForAck),
		TotalCommit: summarize(&s.totalCommit), ReadIndex: summarize(&s.readIndex)})
}

// DiskBody is GET /admin/disk.
type DiskBody struct {
	FsyncMode     string  `json:"fsync_mode"`
	Fsync         Summary `json:"fsync"`
	WALDir        string  `json:"wal_dir"`
	WALFiles      int     `json:"wal_files"`
	WALBytes      int64   `json:"wal_bytes"`
	SnapshotDir   string  `json:"snapshot_dir"`
	SnapshotFiles int     `json:"snapshot_files"`
	SnapshotBytes int64   `json:"snapshot_bytes"`
	FreeBytes     uint64  `json:"free_bytes"`  // on the WAL's filesystem
	TotalBytes    uint64  `json:"total_bytes"` // of the WAL's filesystem
}

func dirUsage(dir string) (files int, bytes int64) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			files++
			bytes += info.Size()
		}
	}
	return files, bytes
}

func (s *Server) handleDisk(w http.ResponseWriter, r *http.Request) {
	n := s.n()
	b := DiskBody{FsyncMode: s.cfg.FsyncMode, Fsync: summarize(&s.writeToLog), WALDir: n.WALDir(), SnapshotDir: s.cfg.SnapshotDir}
	b.WALFiles, b.WALBytes = dirUsage(b.WALDir)
	b.SnapshotFiles, b.SnapshotBytes = dirUsage(b.SnapshotDir)
	var st unix.Statfs_t
	if unix.Statfs(b.WALDir, &st) == nil {
		b.FreeBytes, b.TotalBytes = st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	}
	writeJSON(w, http.StatusOK, b)
}

// SnapshotFile is one snapshot file.
type SnapshotFile struct {
	Index uint64    `json:"index"`
	Term  uint64    `json:"term"`
	File  string    `json:"file"`
	Bytes int64     `json:"bytes"`
	Time  time.Time `json:"time"`
}

// SnapshotsBody is GET /admin/snapshots.
type SnapshotsBody struct {
	LastIndex    uint64         `json:"last_index"`
	InProgress   bool           `json:"in_progress"`
	Threshold    uint64         `json:"threshold_entries"`
	MinInterval  int64          `json:"min_interval_ms"`
	EntriesSince uint64         `json:"entries_since"`
	Files        []SnapshotFile `json:"files"`
}

func (s *Server) snapshots() SnapshotsBody {
	n := s.n()
	b := SnapshotsBody{LastIndex: n.LastSnapshotIndex(), InProgress: n.SnapshotInProgress(), Threshold: s.cfg.SnapshotThreshold,
		MinInterval: s.cfg.SnapshotMinInterval.Milliseconds(), Files: []SnapshotFile{}}
	if a := n.Applied(); a > b.LastIndex {
		b.EntriesSince = a - b.LastIndex
	}
	metas, _ := n.SnapshotFiles()
	for _, m := range metas {
		f := SnapshotFile{Index: m.Index, Term: m.Term, File: m.File}
		if info, err := os.Stat(m.File); err == nil {
			f.Bytes, f.Time = info.Size(), info.ModTime()
		}
		b.Files = append(b.Files, f)
	}
	return b
}

func (s *Server) handleSnapshots(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshots())
}

// MemoryComponent is one line of kraft-ctl memory-stats. Max 0: no limit.
type MemoryComponent struct {
	Name  string `json:"name"`
	Used  int64  `json:"used_bytes"`
	Max   int64  `json:"max_bytes"`
	Notes string `json:"notes,omitempty"`
}

func (s *Server) handleMemory(w http.ResponseWriter, r *http.Request) {
	n := s.n()
	st, err := n.Status()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	lc, err := n.LogCache()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	pending := int64(0)
	if st.LastIndex > st.Commit {
		pending, _ = n.LogBytes(st.Commit+1, st.LastIndex)
	}
	queued, conns := s.tr.QueuedBytes()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	comps := []MemoryComponent{
		{Name: "Log cache", Used: int64(lc.Bytes), Max: int64(s.cfg.LogCacheSize), Notes: fmt.Sprintf("entries %d..%d in memory (buffer %d bytes); %d..%d are read from the WAL when needed; bounded by --log-cache-size", max(lc.FirstIndex, st.FirstIndex), st.LastIndex, lc.Capacity, st.FirstIndex, max(lc.FirstIndex, st.FirstIndex)-1)},
		{Name: "Pending entries", Used: pending, Max: int64(s.cfg.MaxPendingBytes), Notes: fmt.Sprintf("%d uncommitted entries (max %d)", st.LastIndex-min(st.LastIndex, st.Commit), s.cfg.MaxPendingEntries)},
		{Name: "Connections", Used: queued, Max: int64(conns) * 4 * int64(s.cfg.MaxFrameSize), Notes: fmt.Sprintf("bytes queued on %d connections", conns)},
		{Name: "State machine", Used: s.kv().SizeBytes(), Notes: fmt.Sprintf("%d keys, %d sessions", s.kv().Len(), s.kv().Sessions())},
		{Name: "Go heap", Used: int64(ms.HeapAlloc), Notes: fmt.Sprintf("process RSS-relevant heap; %d goroutines", runtime.NumGoroutine())},
	}
	writeJSON(w, http.StatusOK, comps)
}

// PeerRTT is one line of kraft-ctl ping-peers.
type PeerRTT struct {
	ID      uint64  `json:"id"`
	Address string  `json:"address"`
	RTTms   float64 `json:"rtt_ms"`
	Slow    bool    `json:"slow"`
	Error   string  `json:"error,omitempty"`
}

// slowPeerRTT flags a peer whose round trip exceeds this and 5× the median.
const slowPeerRTT = 10 * time.Millisecond

// handlePingPeers times a round trip to every member's admin port (best of
// three HTTP requests on a fresh connection each: TCP handshake included).
func (s *Server) handlePingPeers(w http.ResponseWriter, r *http.Request) {
	st, err := s.n().Status()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	var out []PeerRTT
	var rtts []time.Duration
	for _, id := range st.Membership.Members() {
		if id == s.cfg.NodeID {
			continue
		}
		a := s.book.get(id)
		p := PeerRTT{ID: id, Address: a.Admin}
		if a.Admin == "" {
			p.Error = "admin address unknown"
			out = append(out, p)
			continue
		}
		best := time.Duration(-1)
		for i := 0; i < 3; i++ {
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			start := time.Now()
			resp, err := c.Get("http://" + a.Admin + "/health/live")
			if err != nil {
				p.Error = err.Error()
				continue
			}
			resp.Body.Close()
			if d := time.Since(start); best < 0 || d < best {
				best = d
			}
		}
		if best >= 0 {
			p.Error = ""
			p.RTTms = ms(best)
			rtts = append(rtts, best)
		}
		out = append(out, p)
	}
	if len(rtts) > 0 {
		sorted := slices.Clone(rtts)
		slices.Sort(sorted)
		median := sorted[len(sorted)/2]
		for i := range out {
			d := time.Duration(out[i].RTTms * 1e6)
			out[i].Slow = out[i].Error == "" && d > slowPeerRTT && d > 5*median
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// TraceRequest is POST /admin/trace: a read (no value) or a put.
type TraceRequest struct {
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
}

// TraceStep is one hop or stage of a traced request.
type TraceStep struct {
	Node    uint64  `json:"node"`
	Event   string  `json:"event"`
	AfterMs float64 `json:"after_ms"` // since the node received it
}

// TraceBody is the answer of POST /admin/trace.
type TraceBody struct {
	Key      string      `json:"key"`
	Op       string      `json:"op"`
	Node     uint64      `json:"node"`
	Role     string      `json:"role"`
	Redirect uint64      `json:"redirect_to,omitempty"` // not the leader: retry there
	Leader   string      `json:"leader_admin,omitempty"`
	Index    uint64      `json:"index,omitempty"`
	Term     uint64      `json:"term,omitempty"`
	Status   string      `json:"status,omitempty"`
	Value    string      `json:"value,omitempty"`
	Steps    []TraceStep `json:"steps"`
}

// handleTrace serves one request with timestamps of each stage. Writes need
// the leader; a follower answers where to go (kraft-ctl follows).
func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	var req TraceRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.Key == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "body must be {\"key\": ..., \"value\": optional}"})
		return
	}
	received := time.Now()
	after := func() float64 { return ms(time.Since(received)) }
	n, kv := s.n(), s.kv()
	st, err := n.Status()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	b := TraceBody{Key: req.Key, Op: "get", Node: s.cfg.NodeID, Role: st.Role.String()}
	b.Steps = append(b.Steps, TraceStep{Node: s.cfg.NodeID, Event: "received by node as " + st.Role.String(), AfterMs: 0})
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	if req.Value == nil {
		idx, err := n.Read(ctx, wire.ReadLinearizable)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		b.Index = idx
		b.Steps = append(b.Steps, TraceStep{s.cfg.NodeID, fmt.Sprintf("read index %d confirmed by the leader (node %d) and applied here", idx, st.Leader), after()})
		v, ok := kv.Get([]byte(req.Key))
		b.Status, b.Value = "OK", string(v)
		if !ok {
			b.Status = "NotFound"
		}
		writeJSON(w, http.StatusOK, b)
		return
	}
	b.Op = "put"
	if st.Role != core.RoleLeader {
		b.Redirect, b.Leader = st.Leader, s.book.get(st.Leader).Admin
		b.Steps = append(b.Steps, TraceStep{s.cfg.NodeID, fmt.Sprintf("not leader: redirect to node %d", st.Leader), after()})
		writeJSON(w, http.StatusOK, b)
		return
	}
	if isReservedKey([]byte(req.Key)) {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "reserved key"})
		return
	}
	res, tr, err := n.ProposeTraced(ctx, s.selfPut([]byte(req.Key), []byte(*req.Value)))
	if err != nil {
		s.writeErr(w, err)
		return
	}
	since := func(t time.Time) float64 { return ms(t.Sub(received)) }
	b.Index, b.Term, b.Status = tr.Index, tr.Term, wire.Status(res.Value).String()
	b.Steps = append(b.Steps,
		TraceStep{s.cfg.NodeID, fmt.Sprintf("appended to the leader's log at index %d (term %d), sent to followers", tr.Index, tr.Term), since(tr.Appended)},
		TraceStep{s.cfg.NodeID, "committed (a quorum has it durably)", since(tr.Committed)},
		TraceStep{s.cfg.NodeID, "applied to the state machine", since(tr.Applied)})
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handleClearPending(w http.ResponseWriter, r *http.Request) {
	n, err := s.n().ClearPending()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	s.log.Warn("pending requests cleared by an operator", "count", n)
	writeJSON(w, http.StatusOK, map[string]any{"cleared": n})
}

// handleStepDown makes the leader give up leadership: to the most
// up-to-date voter, or with force=true to any voter that takes it.
func (s *Server) handleStepDown(w http.ResponseWriter, r *http.Request) {
	n := s.n()
	st, err := s.leaderStatus()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	targets := []uint64{bestTransferTarget(st)}
	if r.URL.Query().Get("force") == "true" {
		for _, id := range st.Membership.Voters {
			if id != s.cfg.NodeID && !slices.Contains(targets, id) {
				targets = append(targets, id)
			}
		}
	}
	var errs []string
	for _, t := range targets {
		if t == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		s.metrics.transfers.Inc()
		err := n.TransferLeadership(ctx, t)
		cancel()
		if err == nil {
			s.log.Warn("stepped down by operator request", "new_leader", t)
			writeJSON(w, http.StatusOK, map[string]any{"leader_id": t})
			return
		}
		errs = append(errs, fmt.Sprintf("node %d: %v", t, err))
	}
	if len(errs) == 0 {
		errs = append(errs, "no other voter")
	}
	writeJSON(w, http.StatusConflict, errorBody{Error: "could not step down: " + strings.Join(errs, "; ")})
}

// handleForceNewCluster reopens this node as the only voter of a new
// cluster that keeps its log (quorum-loss recovery). Irreversible: the
// other members are forgotten; add replacements with add-voter.
func (s *Server) handleForceNewCluster(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("force-new-cluster: this node becomes the only voter of a new cluster, keeping its log")
	if err := s.reopenNode(true); err != nil {
		s.log.Error("force-new-cluster failed", "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "force-new-cluster: " + err.Error()})
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := s.n().Status(); err == nil && st.Role == core.RoleLeader {
			b, _ := s.statusBody()
			writeJSON(w, http.StatusOK, b)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := s.statusBody()
	writeJSON(w, http.StatusOK, b)
}

// RejoinBody is the answer of POST /admin/rejoin.
type RejoinBody struct {
	Contacted uint64 `json:"contacted_node"`
	Leader    uint64 `json:"leader_id"`
	Member    bool   `json:"member"`
	Added     bool   `json:"added"`
}

// handleRejoin connects this node to the cluster member at ?cluster=host:port
// (its peer address) and, if this node is no longer a member, asks the
// leader to add it back (as a learner, promoted once caught up).
func (s *Server) handleRejoin(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("cluster")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("cluster=%q: want host:port of a member's peer port", addr)})
		return
	}
	h, err := s.tr.Probe(addr)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, errorBody{Error: fmt.Sprintf("cannot reach %s: %v", addr, err)})
		return
	}
	s.onPeerHello(h)
	body := RejoinBody{Contacted: h.NodeID}
	var remote StatusBody
	if err := adminGet(r.Context(), h.AdminAddr, "/status", s.cfg.AdminToken, &remote); err != nil {
		writeJSON(w, http.StatusBadGateway, errorBody{Error: fmt.Sprintf("node %d's admin API at %s: %v", h.NodeID, h.AdminAddr, err)})
		return
	}
	body.Leader = remote.Leader
	for _, m := range remote.Members {
		if m.ID == s.cfg.NodeID {
			body.Member = true
		}
	}
	if !body.Member {
		leaderAdmin := h.AdminAddr
		for _, m := range remote.Members {
			if m.ID == remote.Leader && m.Admin != "" {
				leaderAdmin = m.Admin
			}
		}
		req := AddMemberRequest{ID: s.cfg.NodeID, Address: s.cfg.AdvertisedPeerAddr()}
		if err := adminPost(r.Context(), leaderAdmin, "/admin/members", s.cfg.AdminToken, req); err != nil {
			writeJSON(w, http.StatusBadGateway, errorBody{Error: fmt.Sprintf("asking the leader to add node %d: %v", s.cfg.NodeID, err)})
			return
		}
		body.Added, body.Member = true, true
	}
	writeJSON(w, http.StatusOK, body)
}

func adminGet(ctx context.Context, addr, path, token string, out any) error {
	return adminDo(ctx, "GET", addr, path, token, nil, out)
}

func adminPost(ctx context.Context, addr, path, token string, in any) error {
	return adminDo(ctx, "POST", addr, path, token, in, nil)
}

func adminDo(ctx context.Context, method, addr, path, token string, in, out any) error {
	var body *strings.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e errorBody
		json.NewDecoder(resp.Body).Decode(&e)
		return errors.New(e.Error)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// snapshotDirs is used by metrics: the newest snapshot's time and size.
func (s *Server) newestSnapshot() (time.Time, int64, bool) {
	files, _ := filepath.Glob(filepath.Join(s.cfg.SnapshotDir, "snapshot-*.dat"))
	var newest time.Time
	var size int64
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && info.ModTime().After(newest) {
			newest, size = info.ModTime(), info.Size()
		}
	}
	return newest, size, !newest.IsZero()
}
