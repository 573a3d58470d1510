package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/kraftdb/kraft/core"
)

// catchingUpLagEntries: /health/ready says catching_up while the state
// machine trails the commit index by more than this (reference §1.6).
const catchingUpLagEntries = 100

func (s *Server) startAdmin() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /health/ready", s.handleReady)
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /metrics", s.guard(s.handleMetrics))
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.HandleFunc("POST /admin/members", s.guard(s.handleAddMember))
	mux.HandleFunc("DELETE /admin/members/{id}", s.guard(s.handleRemoveMember))
	mux.HandleFunc("POST /admin/transfer-leadership", s.guard(s.handleTransfer))
	mux.HandleFunc("POST /admin/snapshot", s.guard(s.handleSnapshot))
	mux.HandleFunc("POST /admin/clear-pending-config-change", s.guard(s.handleClearPendingConfChange))
	mux.HandleFunc("POST /admin/log-level", s.guard(s.handleLogLevel))
	mux.HandleFunc("GET /admin/config", s.guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.live.Load().Effective())
	}))
	s.registerDiag(mux)
	mux.HandleFunc("GET /debug/pprof/", s.guard(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/profile", s.guard(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/trace", s.guard(pprof.Trace))
	mux.HandleFunc("GET /debug/pprof/symbol", s.guard(pprof.Symbol))
	ln, err := net.Listen("tcp", s.cfg.listen(s.cfg.AdminPort))
	if err != nil {
		return fmt.Errorf("kraft/server: admin port: %w", err)
	}
	s.adminLn = ln
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	if src := s.tls.admin; src != nil {
		// HTTPS; with --admin-ca, clients must present a certificate.
		s.admin.TLSConfig = src.ServerConfig(src.HasCA())
		go s.admin.ServeTLS(ln, "", "")
		return nil
	}
	go s.admin.Serve(ln)
	return nil
}

// guard enforces the admin token, when one is configured, on the admin API,
// /metrics and /debug/pprof (health stays open for load balancers and
// probes). The comparison takes constant time.
func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tok := s.cfg.AdminToken; tok != "" {
			got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kraft"`)
				writeJSON(w, http.StatusUnauthorized, errorBody{Error: "Unauthorized: this node requires --admin-token (Authorization: Bearer ...)"})
				return
			}
		}
		h(w, r)
	}
}

type errorBody struct {
	Error    string `json:"error"`
	LeaderID uint64 `json:"leader_id,omitempty"`
	Leader   string `json:"leader_admin,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeErr answers an admin call that failed, with the leader to retry at
// when the node is not the leader (HTTP 421 Misdirected Request).
func (s *Server) writeErr(w http.ResponseWriter, err error) {
	var nl *core.NotLeaderError
	var q *core.QuorumError
	switch {
	case errors.As(err, &nl):
		writeJSON(w, http.StatusMisdirectedRequest, errorBody{Error: err.Error(), LeaderID: nl.Leader, Leader: s.book.get(nl.Leader).Admin})
	case errors.As(err, &q):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
	case errors.Is(err, context.DeadlineExceeded):
		if qe := s.quorumError(); qe != nil {
			err = qe
		}
		writeJSON(w, http.StatusGatewayTimeout, errorBody{Error: err.Error()})
	default:
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
	}
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	st, err := s.n().Status()
	switch {
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "stopped", "error": err.Error()})
	case st.Commit > catchingUpLagEntries && st.Applied < st.Commit-catchingUpLagEntries:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "catching_up", "lag": st.Commit - st.Applied})
	case st.Leader == 0:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "no_leader"})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	}
}

// healthBody is /health, the reference's detailed health.
type healthBody struct {
	Healthy      bool   `json:"healthy"`
	IsLeader     bool   `json:"is_leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	LastApplied  uint64 `json:"last_applied"`
	LagEntries   uint64 `json:"lag_entries"`
	LeaderNodeID uint64 `json:"leader_node_id"`
	ClusterSize  int    `json:"cluster_size"`
	HealthyPeers int    `json:"healthy_peers"`
	Reason       string `json:"reason,omitempty"`
}

func (s *Server) health() (healthBody, error) {
	st, err := s.n().Status()
	if err != nil {
		return healthBody{Reason: err.Error()}, err
	}
	h := healthBody{IsLeader: st.Role == core.RoleLeader, Term: st.Term, CommitIndex: st.Commit, LastApplied: st.Applied,
		LeaderNodeID: st.Leader, ClusterSize: len(st.Membership.Voters)}
	if st.Commit > st.Applied {
		h.LagEntries = st.Commit - st.Applied
	}
	for _, id := range st.Membership.Voters {
		if id != s.cfg.NodeID && s.tr.Connected(id) {
			h.HealthyPeers++
		}
	}
	switch {
	case st.Leader == 0:
		h.Reason = "no leader"
	case h.LagEntries > catchingUpLagEntries:
		h.Reason = "catching up"
	case h.HealthyPeers+1 < h.ClusterSize/2+1:
		h.Reason = (&core.QuorumError{Got: h.HealthyPeers + 1, Total: h.ClusterSize, Need: h.ClusterSize/2 + 1}).Error()
	default:
		h.Healthy = true
	}
	return h, nil
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	h, _ := s.health()
	code := http.StatusOK
	if !h.Healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if st, err := s.n().Status(); err == nil {
		s.metrics.observe(st)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	s.metrics.write(w)
}

// StatusBody is GET /status: everything kraft-ctl shows about a node.
type StatusBody struct {
	NodeID        uint64          `json:"node_id"`
	Cluster       string          `json:"cluster"`
	Role          string          `json:"role"`
	Term          uint64          `json:"term"`
	VotedFor      uint64          `json:"voted_for"`
	Leader        uint64          `json:"leader_id"`
	CommitIndex   uint64          `json:"commit_index"`
	LastApplied   uint64          `json:"last_applied"`
	FirstIndex    uint64          `json:"first_log_index"`
	LastIndex     uint64          `json:"last_log_index"`
	SnapshotIndex uint64          `json:"snapshot_index"`
	Voters        []uint64        `json:"voters"`
	Outgoing      []uint64        `json:"outgoing_voters,omitempty"`
	Learners      []uint64        `json:"learners,omitempty"`
	PendingConfig uint64          `json:"pending_config_index,omitempty"`
	Transferee    uint64          `json:"transfer_target,omitempty"`
	Members       []MemberStatus  `json:"members"`
	Addresses     AddressesStatus `json:"addresses"`
	UptimeSeconds float64         `json:"uptime_seconds"`
}

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	ID        uint64 `json:"id"`
	Role      string `json:"role"` // voter | learner
	Peer      string `json:"peer_address"`
	Client    string `json:"client_address"`
	Admin     string `json:"admin_address"`
	Connected bool   `json:"connected"`
	// Leader only:
	Match    uint64 `json:"match_index,omitempty"`
	Next     uint64 `json:"next_index,omitempty"`
	Progress string `json:"progress,omitempty"`
	Active   bool   `json:"recent_active,omitempty"`
}

// AddressesStatus is where this node listens.
type AddressesStatus struct {
	Peer, Client, Admin string
}

func (s *Server) statusBody() (StatusBody, error) {
	st, err := s.n().Status()
	if err != nil {
		return StatusBody{}, err
	}
	b := StatusBody{NodeID: st.ID, Cluster: s.cfg.ClusterID, Role: st.Role.String(), Term: st.Term, VotedFor: st.Vote,
		Leader: st.Leader, CommitIndex: st.Commit, LastApplied: st.Applied, FirstIndex: st.FirstIndex, LastIndex: st.LastIndex,
		SnapshotIndex: st.SnapshotIndex, Voters: st.Membership.Voters, Outgoing: st.Membership.Outgoing, Learners: st.Membership.Learners,
		PendingConfig: st.PendingConfIndex, Transferee: st.Transferee,
		Addresses:     AddressesStatus{Peer: s.cfg.AdvertisedPeerAddr(), Client: s.cfg.AdvertisedClientAddr(), Admin: s.cfg.AdvertisedAdminAddr()},
		UptimeSeconds: time.Since(s.started).Seconds()}
	peers := map[uint64]core.PeerStatus{}
	for _, p := range st.Peers {
		peers[p.ID] = p
	}
	for _, id := range st.Membership.Members() {
		a := s.book.get(id)
		if id == s.cfg.NodeID {
			a = Addresses{Peer: s.cfg.AdvertisedPeerAddr(), Client: s.cfg.AdvertisedClientAddr(), Admin: s.cfg.AdvertisedAdminAddr()}
		}
		m := MemberStatus{ID: id, Role: "voter", Peer: a.Peer, Client: a.Client, Admin: a.Admin,
			Connected: id == s.cfg.NodeID || s.tr.Connected(id)}
		if st.Membership.IsLearner(id) {
			m.Role = "learner"
		}
		if p, ok := peers[id]; ok {
			m.Match, m.Next, m.Progress, m.Active = p.Match, p.Next, p.State.String(), p.RecentActive
		}
		b.Members = append(b.Members, m)
	}
	return b, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	b, err := s.statusBody()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// AddMemberRequest is POST /admin/members.
type AddMemberRequest struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"` // peer address host:port
	Learner bool   `json:"learner"` // stay a learner (no promotion)
	// WaitSeconds bounds the wait for a learner to catch up before its
	// promotion (default 30).
	WaitSeconds float64 `json:"wait_seconds"`
}

func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request) {
	var req AddMemberRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad request body: " + err.Error()})
		return
	}
	if req.ID == 0 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "id must be a non-zero node ID"})
		return
	}
	if _, _, err := net.SplitHostPort(req.Address); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("address %q: %v (want host:port of the node's peer port)", req.Address, err)})
		return
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	if wait <= 0 {
		wait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	if err := s.addMember(ctx, req.ID, req.Address, req.Learner); err != nil {
		s.writeErr(w, err)
		return
	}
	b, _ := s.statusBody()
	writeJSON(w, http.StatusOK, b)
}

// addMember records the new node's address, adds it as a learner, waits
// until it has caught up, and (unless learner) promotes it to voter: the
// cluster's fault tolerance never drops while a new node copies the log.
func (s *Server) addMember(ctx context.Context, id uint64, addr string, learner bool) error {
	st, err := s.leaderStatus()
	if err != nil {
		return err
	}
	s.book.learn(id, Addresses{Peer: addr}.merge(s.book.get(id)))
	s.tr.SetPeer(id, s.dialAddr(id, addr))
	if err := s.writeMemberRecord(id, s.book.get(id)); err != nil {
		return fmt.Errorf("recording the address of node %d: %w", id, err)
	}
	if st.Membership.IsVoter(id) {
		return nil
	}
	if !st.Membership.IsLearner(id) {
		if err := s.n().AddLearner(ctx, id); err != nil {
			return err
		}
	}
	if learner {
		return nil
	}
	for {
		err := s.n().AddVoter(ctx, id)
		if !errors.Is(err, core.ErrLearnerBehind) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d did not catch up in time to be promoted (it stays a learner): %w", id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("node ID %q is not a positive integer", r.PathValue("id"))})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.n().RemoveServer(ctx, id); err != nil {
		s.writeErr(w, err)
		return
	}
	b, _ := s.statusBody()
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	st, err := s.leaderStatus()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	target := uint64(0)
	if v := r.URL.Query().Get("target"); v != "" {
		if target, err = strconv.ParseUint(v, 10, 64); err != nil || target == 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("target %q is not a node ID", v)})
			return
		}
	} else if target = bestTransferTarget(st); target == 0 {
		writeJSON(w, http.StatusConflict, errorBody{Error: "no other voter to transfer leadership to"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	s.metrics.transfers.Inc()
	if err := s.n().TransferLeadership(ctx, target); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader_id": target})
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	idx, err := s.n().Snapshot(ctx)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx})
}

func (s *Server) handleClearPendingConfChange(w http.ResponseWriter, r *http.Request) {
	if err := s.n().ClearPendingConfChange(); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cleared": true})
}

func (s *Server) handleLogLevel(w http.ResponseWriter, r *http.Request) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(r.URL.Query().Get("level"))); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("level %q: want debug, info, warn or error", r.URL.Query().Get("level"))})
		return
	}
	s.logLevel.Set(l)
	s.log.Info("log level changed", "level", l.String())
	writeJSON(w, http.StatusOK, map[string]any{"level": strings.ToLower(l.String())})
}
