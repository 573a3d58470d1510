package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kraftdb/kraft/server"
	"github.com/kraftdb/kraft/wal"
)

// dumpState is the JSON of the guide's "Dump Internal State".
type dumpState struct {
	NodeID      uint64      `json:"node_id"`
	Term        uint64      `json:"term"`
	Role        string      `json:"role"`
	CommitIndex uint64      `json:"commit_index"`
	LastApplied uint64      `json:"last_applied"`
	VotedFor    uint64      `json:"voted_for"`
	Log         dumpLog     `json:"log"`
	Peers       []dumpPeer  `json:"peers"`
	Membership  dumpMembers `json:"membership"`
	Snapshot    uint64      `json:"snapshot_index"`
}

type dumpLog struct {
	FirstIndex   uint64 `json:"first_index"`
	LastIndex    uint64 `json:"last_index"`
	EntriesCount uint64 `json:"entries_count"`
}

type dumpPeer struct {
	ID         uint64 `json:"id"`
	Address    string `json:"address"`
	Role       string `json:"role"`
	Connected  bool   `json:"connected"`
	MatchIndex uint64 `json:"match_index,omitempty"`
	NextIndex  uint64 `json:"next_index,omitempty"`
	Progress   string `json:"progress,omitempty"`
}

type dumpMembers struct {
	Voters   []uint64 `json:"voters"`
	Outgoing []uint64 `json:"outgoing_voters,omitempty"`
	Learners []uint64 `json:"learners,omitempty"`
	Pending  uint64   `json:"pending_config_index,omitempty"`
}

func toDump(st server.StatusBody) dumpState {
	d := dumpState{NodeID: st.NodeID, Term: st.Term, Role: st.Role, CommitIndex: st.CommitIndex, LastApplied: st.LastApplied,
		VotedFor: st.VotedFor, Snapshot: st.SnapshotIndex, Peers: []dumpPeer{},
		Membership: dumpMembers{Voters: st.Voters, Outgoing: st.Outgoing, Learners: st.Learners, Pending: st.PendingConfig}}
	d.Log = dumpLog{FirstIndex: st.FirstIndex, LastIndex: st.LastIndex}
	if st.LastIndex >= st.FirstIndex && st.FirstIndex > 0 {
		d.Log.EntriesCount = st.LastIndex - st.FirstIndex + 1
	}
	for _, m := range st.Members {
		if m.ID == st.NodeID {
			continue
		}
		d.Peers = append(d.Peers, dumpPeer{ID: m.ID, Address: m.Peer, Role: m.Role, Connected: m.Connected,
			MatchIndex: m.Match, NextIndex: m.Next, Progress: m.Progress})
	}
	return d
}

func dumpStateCommand() command {
	return clusterCommand("dump-state", "this node's Raft state as JSON (node_id, term, role, log, peers)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			st, _, err := a.status()
			if err != nil {
				return err
			}
			writeJSONOut(w, toDump(st)) // JSON whatever -w says: the guide redirects it to state.json
			return nil
		}, nil)
}

func debugStateCommand() command {
	return clusterCommand("debug-state", "what a node is doing and what may block it", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			st, ep, err := a.status()
			if err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, st)
				return nil
			}
			fmt.Fprintf(w, "Node: node%d (%s)  role %s  term %d  voted for %d  leader %d\n", st.NodeID, ep, st.Role, st.Term, st.VotedFor, st.Leader)
			fmt.Fprintf(w, "Log: first %d  last %d  commit %d  applied %d  snapshot %d\n", st.FirstIndex, st.LastIndex, st.CommitIndex, st.LastApplied, st.SnapshotIndex)
			fmt.Fprintf(w, "Membership: voters %v", st.Voters)
			if len(st.Outgoing) > 0 {
				fmt.Fprintf(w, "  outgoing %v (joint consensus)", st.Outgoing)
			}
			if len(st.Learners) > 0 {
				fmt.Fprintf(w, "  learners %v", st.Learners)
			}
			fmt.Fprintln(w)
			var blockers []string
			if st.Leader == 0 {
				blockers = append(blockers, "no leader known: elections not converging (check connectivity-test, quorum)")
			}
			if st.PendingConfig != 0 {
				blockers = append(blockers, fmt.Sprintf("membership change pending at index %d (clear-pending-config-change if stuck)", st.PendingConfig))
			}
			if st.Transferee != 0 {
				blockers = append(blockers, fmt.Sprintf("leadership transfer to node%d in progress: writes are refused until it ends", st.Transferee))
			}
			if st.CommitIndex > st.LastApplied+100 {
				blockers = append(blockers, fmt.Sprintf("state machine %d entries behind the commit index", st.CommitIndex-st.LastApplied))
			}
			for _, m := range st.Members {
				if !m.Connected {
					blockers = append(blockers, fmt.Sprintf("no connection to node%d (%s)", m.ID, m.Peer))
				}
				if st.Role == "leader" && m.ID != st.NodeID && m.Progress == "snapshot" {
					blockers = append(blockers, fmt.Sprintf("node%d is being sent a snapshot", m.ID))
				}
			}
			if len(blockers) == 0 {
				fmt.Fprintln(w, "Blocking: nothing found")
			}
			for _, b := range blockers {
				fmt.Fprintln(w, "Blocking:", b)
			}
			return nil
		}, nil)
}

func replicationStatusCommand() command {
	return clusterCommand("replication-status", "per-follower replication progress and lag, from the leader", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			st, _, err := a.leaderStatus()
			if err != nil {
				return err
			}
			if st.Role != "leader" {
				return fmt.Errorf("no leader to report replication (node%d sees none, term %d)", st.NodeID, st.Term)
			}
			type row struct {
				ID       uint64 `json:"id"`
				Role     string `json:"role"`
				Match    uint64 `json:"match_index"`
				Next     uint64 `json:"next_index"`
				Lag      uint64 `json:"lag_entries"`
				Progress string `json:"progress"`
				Active   bool   `json:"recent_active"`
			}
			var rows []row
			for _, m := range st.Members {
				if m.ID == st.NodeID {
					continue
				}
				lag := uint64(0)
				if st.LastIndex > m.Match {
					lag = st.LastIndex - m.Match
				}
				rows = append(rows, row{m.ID, m.Role, m.Match, m.Next, lag, m.Progress, m.Active})
			}
			if *f.out == "json" {
				writeJSONOut(w, map[string]any{"leader_id": st.NodeID, "last_index": st.LastIndex, "commit_index": st.CommitIndex, "followers": rows})
				return nil
			}
			fmt.Fprintf(w, "Leader: node%d  last index %d  commit index %d\n", st.NodeID, st.LastIndex, st.CommitIndex)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Follower\tRole\tMatch Index\tNext Index\tLag\tState\tActive")
			for _, r := range rows {
				fmt.Fprintf(tw, "node%d\t%s\t%d\t%d\t%d\t%s\t%v\n", r.ID, r.Role, r.Match, r.Next, r.Lag, r.Progress, r.Active)
			}
			return tw.Flush()
		}, nil)
}

func connectivityTestCommand() command {
	return clusterCommand("connectivity-test", "which nodes reach which (asks every node; one-way failures show)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			st, _, err := a.status()
			if err != nil {
				return err
			}
			type link struct {
				From, To uint64
				OK       bool
				Detail   string
			}
			var links []link
			failed := 0
			for _, src := range st.Members {
				var view server.StatusBody
				err := a.call(src.Admin, "GET", "/status", nil, &view)
				for _, dst := range st.Members {
					if dst.ID == src.ID {
						continue
					}
					l := link{From: src.ID, To: dst.ID}
					if err != nil {
						l.Detail = "node unreachable: " + err.Error()
					} else {
						for _, m := range view.Members {
							if m.ID == dst.ID {
								l.OK = m.Connected
							}
						}
						if !l.OK {
							l.Detail = "no peer connection"
						}
					}
					if !l.OK {
						failed++
					}
					links = append(links, l)
				}
			}
			if *f.out == "json" {
				writeJSONOut(w, links)
			} else {
				for _, l := range links {
					status := "OK"
					if !l.OK {
						status = "FAIL (" + l.Detail + ")"
					}
					fmt.Fprintf(w, "node%d -> node%d: %s\n", l.From, l.To, status)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d links down", failed, len(links))
			}
			return nil
		}, nil)
}

func verifyDataCommand() command {
	return command{name: "verify-data", summary: "verify-data DIR: check a stopped node's WAL (every record, checksum, order)", run: func(args []string, stdout, stderr io.Writer) int {
		fs := newFlagSet("verify-data")
		out := addOutputFlag(fs)
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fmt.Fprintln(stdout, "Usage: kraft-ctl verify-data [-w table|json] DIR   (run while the node is stopped)")
				return exitOK
			}
			return usageError(stderr, err.Error(), "kraft-ctl verify-data --help")
		}
		if fs.NArg() != 1 {
			return usageError(stderr, "verify-data takes the data directory", "kraft-ctl verify-data --help")
		}
		rep, err := wal.Verify(fs.Arg(0))
		if err != nil {
			return failure(stderr, err)
		}
		if *out == "json" {
			writeJSONOut(stdout, rep)
		} else {
			fmt.Fprint(stdout, rep.String())
		}
		if !rep.OK() {
			fmt.Fprintf(stderr, "Error: %s is corrupt: restore it from a snapshot (docs/operations.md, data corruption)\n", fs.Arg(0))
			return exitFailure
		}
		return exitOK
	}}
}
