package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/kraftdb/kraft/server"
)

// clusterView is what status and nodes report, from the leader's view.
type clusterView struct {
	Cluster     string       `json:"cluster"`
	Status      string       `json:"status"` // HEALTHY | DEGRADED | UNAVAILABLE
	LeaderID    uint64       `json:"leader_id"`
	Term        uint64       `json:"term"`
	Healthy     int          `json:"healthy_nodes"`
	Total       int          `json:"total_nodes"`
	CommitIndex uint64       `json:"commit_index"`
	Nodes       []nodeStatus `json:"nodes"`
}

type nodeStatus struct {
	ID         uint64 `json:"id"`
	Address    string `json:"address"`
	Role       string `json:"role"`
	MatchIndex uint64 `json:"match_index"`
	Lag        *int64 `json:"lag"` // nil for the leader
	Health     string `json:"health"`
}

func viewOf(st server.StatusBody) clusterView {
	v := clusterView{Cluster: st.Cluster, LeaderID: st.Leader, Term: st.Term, CommitIndex: st.CommitIndex}
	for _, m := range st.Members {
		n := nodeStatus{ID: m.ID, Address: m.Peer, MatchIndex: m.Match, Health: "DOWN"}
		switch {
		case m.ID == st.Leader:
			n.Role, n.MatchIndex = "Leader", st.LastIndex
		case m.Role == "learner":
			n.Role = "Learner"
		default:
			n.Role = "Follower"
		}
		if m.ID != st.Leader {
			lag := int64(0)
			if st.LastIndex > m.Match {
				lag = int64(st.LastIndex - m.Match)
			}
			n.Lag = &lag
		}
		if m.ID == st.NodeID || (m.Connected && (st.Role != "leader" || m.Active)) {
			n.Health = "OK"
			v.Healthy++
		}
		v.Total++
		v.Nodes = append(v.Nodes, n)
	}
	quorum := len(st.Voters)/2 + 1
	switch {
	case st.Leader == 0 || v.Healthy < quorum:
		v.Status = "UNAVAILABLE"
	case v.Healthy < v.Total:
		v.Status = "DEGRADED"
	default:
		v.Status = "HEALTHY"
	}
	return v
}

// thousands formats 1234567 as 1,234,567, as the guide shows.
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func statusCommand() command {
	return clusterCommand("status", "cluster health, leader, term and commit index", 0, func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
		a := newAdmin(f)
		defer a.cancel()
		st, _, err := a.leaderStatus()
		if err != nil {
			return err
		}
		v := viewOf(st)
		if *f.out == "json" {
			writeJSONOut(w, v)
			return nil
		}
		fmt.Fprintf(w, "Cluster: %s\n", v.Cluster)
		fmt.Fprintf(w, "Status: %s\n", v.Status)
		if v.LeaderID != 0 {
			fmt.Fprintf(w, "Leader: node%d (term %d)\n", v.LeaderID, v.Term)
		} else {
			fmt.Fprintf(w, "Leader: none (term %d)\n", v.Term)
		}
		fmt.Fprintf(w, "Nodes: %d/%d healthy\n", v.Healthy, v.Total)
		fmt.Fprintf(w, "Commit Index: %s\n", thousands(v.CommitIndex))
		return nil
	}, nil)
}

func nodesCommand() command {
	return clusterCommand("nodes", "every member with role, match index, lag and health", 0, func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
		a := newAdmin(f)
		defer a.cancel()
		st, _, err := a.leaderStatus()
		if err != nil {
			return err
		}
		v := viewOf(st)
		if *f.out == "json" {
			writeJSONOut(w, v.Nodes)
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAddress\tRole\tMatch Index\tLag\tHealth")
		for _, n := range v.Nodes {
			lag := "-"
			if n.Lag != nil {
				lag = strconv.FormatInt(*n.Lag, 10)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", n.ID, n.Address, n.Role, n.MatchIndex, lag, n.Health)
		}
		return tw.Flush()
	}, nil)
}

func termCommand() command {
	return clusterCommand("term", "this node's current term (compare across nodes to spot split brain)", 0, func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
		a := newAdmin(f)
		defer a.cancel()
		st, _, err := a.status()
		if err != nil {
			return err
		}
		if *f.out == "json" {
			writeJSONOut(w, map[string]uint64{"node_id": st.NodeID, "term": st.Term})
			return nil
		}
		fmt.Fprintln(w, st.Term)
		return nil
	}, nil)
}

func healthCommand() command {
	return clusterCommand("health", "this node's health: 'healthy' or why not (exit 1)", 0, func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
		a := newAdmin(f)
		defer a.cancel()
		var h struct {
			Healthy bool   `json:"healthy"`
			Reason  string `json:"reason"`
			Node    uint64 `json:"leader_node_id"`
		}
		ep := a.endpoints()
		if len(ep) == 0 {
			return fmt.Errorf("no --endpoints given")
		}
		err := a.call(ep[0], "GET", "/health", nil, &h)
		if ae, ok := err.(*apiError); ok && ae.Code == 503 {
			err = fmt.Errorf("%s is unhealthy: %s", ep[0], ae.Message)
		}
		if err != nil {
			return err
		}
		if *f.out == "json" {
			writeJSONOut(w, h)
			return nil
		}
		fmt.Fprintf(w, "%s is healthy\n", ep[0])
		return nil
	}, nil)
}
