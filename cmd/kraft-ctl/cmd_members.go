package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kraftdb/kraft/server"
)

// nodeIDFlag accepts "6" or "node6", as the guide writes both.
type nodeIDFlag uint64

func (n *nodeIDFlag) String() string { return strconv.FormatUint(uint64(*n), 10) }

func (n *nodeIDFlag) Set(s string) error {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "node"), 10, 64)
	if err != nil || v == 0 {
		return fmt.Errorf("%q is not a node ID (6 or node6)", s)
	}
	*n = nodeIDFlag(v)
	return nil
}

func requireNode(n nodeIDFlag, flagName string) error {
	if n == 0 {
		return usageErr{fmt.Sprintf("--%s is required", flagName)}
	}
	return nil
}

// usageErr marks an error as a usage error (exit 2).
type usageErr struct{ msg string }

func (u usageErr) Error() string { return u.msg }

func addVoterCommand() command {
	var id nodeIDFlag
	var address string
	var port int
	var learner bool
	var wait time.Duration
	return clusterCommand("add-voter", "add a node: as a learner, then promoted once caught up (--learner: stay a learner)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			if err := requireNode(id, "node-id"); err != nil {
				return err
			}
			addr := address
			if _, _, err := net.SplitHostPort(addr); err != nil {
				if addr == "" {
					return usageErr{"--address is required (host or host:port of the new node's peer port)"}
				}
				addr = net.JoinHostPort(addr, strconv.Itoa(port))
			}
			f.timeout = max(f.timeout, wait+5*time.Second)
			a := newAdmin(f)
			defer a.cancel()
			var st server.StatusBody
			err := a.onLeader("POST", "/admin/members", server.AddMemberRequest{ID: uint64(id), Address: addr, Learner: learner, WaitSeconds: wait.Seconds()}, &st)
			if err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, st)
				return nil
			}
			role := "voter"
			if learner {
				role = "learner"
			}
			fmt.Fprintf(w, "Added node %d (%s) as a %s. Voters: %v", id, addr, role, st.Voters)
			if len(st.Learners) > 0 {
				fmt.Fprintf(w, ", learners: %v", st.Learners)
			}
			fmt.Fprintln(w)
			return nil
		}, func(fs *flag.FlagSet) {
			fs.Var(&id, "node-id", "ID of the node to add (required)")
			fs.StringVar(&address, "address", "", "the new node's peer address, host or host:port (required)")
			fs.IntVar(&port, "port", 7001, "peer port, when --address has none")
			fs.BoolVar(&learner, "learner", false, "add as a non-voting learner only")
			fs.DurationVar(&wait, "wait", 30*time.Second, "how long the learner may take to catch up before promotion")
		})
}

func removeVoterCommand() command {
	var id nodeIDFlag
	return clusterCommand("remove-voter", "remove a member (transfer leadership away first if it leads)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			if err := requireNode(id, "node-id"); err != nil {
				return err
			}
			a := newAdmin(f)
			defer a.cancel()
			var st server.StatusBody
			if err := a.onLeader("DELETE", fmt.Sprintf("/admin/members/%d", id), nil, &st); err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, st)
				return nil
			}
			fmt.Fprintf(w, "Removed node %d. Voters: %v\n", id, st.Voters)
			return nil
		}, func(fs *flag.FlagSet) { fs.Var(&id, "node-id", "ID of the node to remove (required)") })
}

func transferCommand() command {
	var target nodeIDFlag
	return clusterCommand("transfer-leadership", "hand leadership to --target (default: the most up-to-date voter)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			path := "/admin/transfer-leadership"
			if target != 0 {
				path += "?target=" + target.String()
			}
			var out struct {
				LeaderID uint64 `json:"leader_id"`
			}
			if err := a.onLeader("POST", path, nil, &out); err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, out)
				return nil
			}
			fmt.Fprintf(w, "Leadership transferred to node%d\n", out.LeaderID)
			return nil
		}, func(fs *flag.FlagSet) { fs.Var(&target, "target", "node ID to transfer to") })
}

func waitSyncCommand() command {
	var id nodeIDFlag
	var maxLag uint64
	return clusterCommand("wait-sync", "wait until --node has caught up with the leader (before add-voter)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			if err := requireNode(id, "node-id"); err != nil {
				return err
			}
			a := newAdmin(f)
			defer a.cancel()
			for {
				st, _, err := a.leaderStatus()
				if err == nil && st.Role == "leader" {
					for _, m := range st.Members {
						if m.ID == uint64(id) && m.Match+maxLag >= st.CommitIndex {
							if *f.out == "json" {
								writeJSONOut(w, map[string]uint64{"node_id": m.ID, "match_index": m.Match, "commit_index": st.CommitIndex})
							} else {
								fmt.Fprintf(w, "node%d is in sync: match index %d, commit index %d\n", m.ID, m.Match, st.CommitIndex)
							}
							return nil
						}
					}
				}
				select {
				case <-a.ctx.Done():
					return fmt.Errorf("node%d did not catch up within --timeout %v (is it a learner or voter of this cluster? kraft-ctl add-voter --learner adds one)", id, f.timeout)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}, func(fs *flag.FlagSet) {
			fs.Var(&id, "node", "node ID to wait for (required)")
			fs.Uint64Var(&maxLag, "max-lag", 0, "entries behind the commit index that still count as in sync")
		})
}

func snapshotCommand() command {
	return clusterCommand("snapshot", "take a snapshot on the node now (then back up snapshot-*.dat)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			var out struct {
				Index uint64 `json:"index"`
			}
			ep := a.endpoints()
			if len(ep) == 0 {
				return errors.New("no --endpoints given")
			}
			if err := a.call(ep[0], "POST", "/admin/snapshot", nil, &out); err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, out)
				return nil
			}
			fmt.Fprintf(w, "Snapshot taken at index %d on %s\n", out.Index, ep[0])
			return nil
		}, nil)
}

func clearPendingConfigChangeCommand() command {
	return clusterCommand("clear-pending-config-change", "lift a stuck membership change so it can be retried", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			if err := a.onLeader("POST", "/admin/clear-pending-config-change", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(w, "Pending configuration change cleared")
			return nil
		}, nil)
}

func setLogLevelCommand() command {
	return clusterCommand("set-log-level", "set-log-level LEVEL: debug, info, warn or error, at run time", 1,
		func(f *clusterFlags, _ *flag.FlagSet, args []string, w io.Writer) error {
			switch args[0] {
			case "debug", "info", "warn", "error":
			default:
				return usageErr{fmt.Sprintf("level %q: want debug, info, warn or error", args[0])}
			}
			a := newAdmin(f)
			defer a.cancel()
			for _, ep := range a.endpoints() {
				if err := a.call(ep, "POST", "/admin/log-level?level="+args[0], nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(w, "%s: log level %s\n", ep, args[0])
			}
			return nil
		}, nil)
}
