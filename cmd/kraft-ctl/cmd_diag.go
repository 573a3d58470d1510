package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kraftdb/kraft/server"
)

// dur prints milliseconds compactly, as the guide does ("2ms", "0.35ms").
func dur(msv float64) string {
	switch {
	case msv >= 10:
		return fmt.Sprintf("%.0fms", msv)
	case msv >= 1:
		return fmt.Sprintf("%.1fms", msv)
	}
	return fmt.Sprintf("%.2fms", msv)
}

// size prints bytes as the guide does ("512MB", "1GB"; powers of 1024).
func size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0fMB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0fKB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%dB", b)
}

// firstEndpoint calls the first endpoint: these commands report one node.
func firstEndpoint(a *admin) (string, error) {
	ep := a.endpoints()
	if len(ep) == 0 {
		return "", errors.New("no --endpoints given")
	}
	return ep[0], nil
}

// nodeReport GETs path from the first endpoint into out and, with -w json,
// prints it; done is then true and the caller has nothing left to print.
func nodeReport(f *clusterFlags, w io.Writer, method, path string, out any) (ep string, done bool, err error) {
	a := newAdmin(f)
	defer a.cancel()
	if ep, err = firstEndpoint(a); err != nil {
		return ep, false, err
	}
	if err = a.call(ep, method, path, nil, out); err != nil {
		return ep, false, err
	}
	if *f.out == "json" {
		writeJSONOut(w, out)
		return ep, true, nil
	}
	return ep, false, nil
}

func latencyBreakdownCommand() command {
	return clusterCommand("latency-breakdown", "commit latency by phase (P50/P95/P99): write to log, wait for ack, total", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			_, ep, err := a.leaderStatus() // the phases are measured where writes are proposed
			if err != nil {
				return err
			}
			var b server.LatencyBody
			if err := a.call(ep, "GET", "/admin/latency", nil, &b); err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, b)
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Phase\tP50\tP95\tP99")
			for _, p := range []struct {
				name string
				s    server.Summary
			}{{"Write to log", b.WriteToLog}, {"Wait for ack", b.WaitForAck}, {"Total commit", b.TotalCommit}} {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.name, dur(p.s.P50ms), dur(p.s.P95ms), dur(p.s.P99ms))
			}
			tw.Flush()
			if b.TotalCommit.Count == 0 {
				fmt.Fprintf(w, "(no writes measured on %s since it started)\n", ep)
			}
			return nil
		}, nil)
}

func diskStatsCommand() command {
	return clusterCommand("disk-stats", "fsync latency, WAL and snapshot usage, free space", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			var b server.DiskBody
			if _, done, err := nodeReport(f, w, "GET", "/admin/disk", &b); done || err != nil {
				return err
			}
			fmt.Fprintf(w, "Fsync mode: %s\n", b.FsyncMode)
			fmt.Fprintf(w, "Fsync: P50 %s  P95 %s  P99 %s  max %s  (%d batches)\n", dur(b.Fsync.P50ms), dur(b.Fsync.P95ms), dur(b.Fsync.P99ms), dur(b.Fsync.Maxms), b.Fsync.Count)
			fmt.Fprintf(w, "WAL: %s  %d files, %s\n", b.WALDir, b.WALFiles, size(b.WALBytes))
			fmt.Fprintf(w, "Snapshots: %s  %d files, %s\n", b.SnapshotDir, b.SnapshotFiles, size(b.SnapshotBytes))
			if b.TotalBytes > 0 {
				fmt.Fprintf(w, "Free: %s of %s (%.0f%%)\n", size(int64(b.FreeBytes)), size(int64(b.TotalBytes)), 100*float64(b.FreeBytes)/float64(b.TotalBytes))
			}
			return nil
		}, nil)
}

func snapshotStatusCommand() command {
	return clusterCommand("snapshot-status", "last snapshot, entries since, files", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			var b server.SnapshotsBody
			if _, done, err := nodeReport(f, w, "GET", "/admin/snapshots", &b); done || err != nil {
				return err
			}
			if n := len(b.Files); n > 0 {
				last := b.Files[n-1]
				fmt.Fprintf(w, "Last snapshot: index %d (term %d), %s, %s (%s ago)\n", last.Index, last.Term, size(last.Bytes),
					last.Time.Format(time.DateTime), time.Since(last.Time).Round(time.Second))
			} else {
				fmt.Fprintln(w, "Last snapshot: none")
			}
			fmt.Fprintf(w, "In progress: %v\n", b.InProgress)
			threshold := "manual only"
			if b.Threshold > 0 {
				threshold = "threshold " + thousands(b.Threshold)
				if b.MinInterval > 0 {
					threshold += ", at most one per " + (time.Duration(b.MinInterval) * time.Millisecond).String()
				}
			}
			fmt.Fprintf(w, "Entries since: %s (%s)\n", thousands(b.EntriesSince), threshold)
			for _, fl := range b.Files {
				fmt.Fprintf(w, "  %s  %s  %s\n", fl.File, size(fl.Bytes), fl.Time.Format(time.DateTime))
			}
			return nil
		}, nil)
}

func memoryStatsCommand() command {
	return clusterCommand("memory-stats", "memory by component (log cache, pending entries, connections, state machine)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			var comps []server.MemoryComponent
			if _, done, err := nodeReport(f, w, "GET", "/admin/memory", &comps); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Component\tUsed\tMax")
			for _, c := range comps {
				max := "-"
				if c.Max > 0 {
					max = size(c.Max)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, size(c.Used), max)
			}
			return tw.Flush()
		}, nil)
}

func pingPeersCommand() command {
	return clusterCommand("ping-peers", "round-trip time from this node to every peer ([SLOW] flags outliers)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			var peers []server.PeerRTT
			if _, done, err := nodeReport(f, w, "GET", "/admin/ping-peers", &peers); done || err != nil {
				return err
			}
			failed := 0
			for _, p := range peers {
				switch {
				case p.Error != "":
					failed++
					fmt.Fprintf(w, "node%d: unreachable (%s)\n", p.ID, p.Error)
				case p.Slow:
					fmt.Fprintf(w, "node%d: %.1fms  [SLOW]\n", p.ID, p.RTTms)
				default:
					fmt.Fprintf(w, "node%d: %.1fms\n", p.ID, p.RTTms)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d peer(s) unreachable", failed)
			}
			return nil
		}, nil)
}

func traceRequestCommand() command {
	var key, value string
	var write bool
	return clusterCommand("trace-request", "the path of one request: receiving node, redirect, log index, commit and apply times", 0,
		func(f *clusterFlags, fs *flag.FlagSet, _ []string, w io.Writer) error {
			if key == "" {
				return usageErr{"--key is required"}
			}
			fs.Visit(func(fl *flag.Flag) { write = write || fl.Name == "value" })
			a := newAdmin(f)
			defer a.cancel()
			ep, err := firstEndpoint(a)
			if err != nil {
				return err
			}
			req := server.TraceRequest{Key: key}
			if write {
				req.Value = &value
			}
			var hops []server.TraceBody
			for len(hops) < 3 {
				var b server.TraceBody
				if err := a.call(ep, "POST", "/admin/trace", req, &b); err != nil {
					return err
				}
				hops = append(hops, b)
				if b.Redirect == 0 {
					break
				}
				if b.Leader == "" {
					return fmt.Errorf("node%d is not the leader and does not know the leader's admin address", b.Node)
				}
				ep = b.Leader
			}
			if *f.out == "json" {
				writeJSONOut(w, hops)
				return nil
			}
			for _, h := range hops {
				fmt.Fprintf(w, "node%d (%s): received %s %q\n", h.Node, h.Role, h.Op, h.Key)
				for _, s := range h.Steps[1:] {
					fmt.Fprintf(w, "node%d: %s  +%s\n", s.Node, s.Event, dur(s.AfterMs))
				}
			}
			last := hops[len(hops)-1]
			if last.Op == "get" {
				fmt.Fprintf(w, "result: %s %q (read index %d)\n", last.Status, last.Value, last.Index)
			} else if last.Redirect == 0 {
				fmt.Fprintf(w, "result: %s at index %d (term %d)\n", last.Status, last.Index, last.Term)
			}
			return nil
		}, func(fs *flag.FlagSet) {
			fs.StringVar(&key, "key", "", "the key (required)")
			fs.StringVar(&value, "value", "", "trace a put of this value (default: trace a linearizable get)")
		})
}

func clearPendingRequestsCommand() command {
	return clusterCommand("clear-pending-requests", "fail the requests waiting on the node (their outcome is unknown)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			var out struct {
				Cleared int `json:"cleared"`
			}
			ep, done, err := nodeReport(f, w, "POST", "/admin/clear-pending-requests", &out)
			if done || err != nil {
				return err
			}
			fmt.Fprintf(w, "Cleared %d pending requests on %s (writes among them may still commit: outcome unknown)\n", out.Cleared, ep)
			return nil
		}, nil)
}

func stepDownCommand() command {
	var force bool
	return clusterCommand("step-down", "make the leader hand over leadership (--force: to any voter that takes it)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			a := newAdmin(f)
			defer a.cancel()
			path := "/admin/step-down"
			if force {
				path += "?force=true"
			}
			var out struct {
				LeaderID uint64 `json:"leader_id"`
			}
			if err := a.onLeader("POST", path, nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(w, "Stepped down; node%d is the leader\n", out.LeaderID)
			return nil
		}, func(fs *flag.FlagSet) {
			fs.BoolVar(&force, "force", false, "try every voter until one takes leadership")
		})
}

func forceNewClusterCommand() command {
	var id nodeIDFlag
	return clusterCommand("force-new-cluster", "make --node the only voter of a new cluster keeping its log (quorum-loss recovery)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			if err := requireNode(id, "node"); err != nil {
				return err
			}
			a := newAdmin(f)
			defer a.cancel()
			st, ep, err := a.status()
			if err != nil {
				return err
			}
			target := ""
			if st.NodeID == uint64(id) {
				target = ep
			}
			for _, m := range st.Members {
				if m.ID == uint64(id) && target == "" {
					target = m.Admin
				}
			}
			if target == "" {
				return fmt.Errorf("node%d's admin address is unknown to %s: run with --endpoints <node%d's admin address>", id, ep, id)
			}
			fmt.Fprintln(w, "WARNING: This resets cluster membership: node", id, "becomes the only voter; the other members are forgotten.")
			var after server.StatusBody
			if err := a.call(target, "POST", "/admin/force-new-cluster", nil, &after); err != nil {
				return err
			}
			if *f.out == "json" {
				writeJSONOut(w, after)
				return nil
			}
			fmt.Fprintf(w, "node%d is now %s of a one-voter cluster (term %d, commit index %s).\n", after.NodeID, after.Role, after.Term, thousands(after.CommitIndex))
			fmt.Fprintln(w, "Add members back with: kraft-ctl add-voter --node-id=N --address=HOST:PORT")
			return nil
		}, func(fs *flag.FlagSet) { fs.Var(&id, "node", "the surviving node (ID or nodeN; required)") })
}

func rejoinCommand() command {
	var cluster string
	return clusterCommand("rejoin", "connect this node (--endpoints) to the cluster at --cluster and wait until caught up", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			if cluster == "" {
				return usageErr{"--cluster is required (host:port of a member's peer port)"}
			}
			if !strings.Contains(cluster, ":") {
				cluster += ":7001"
			}
			a := newAdmin(f)
			defer a.cancel()
			ep, err := firstEndpoint(a)
			if err != nil {
				return err
			}
			var out server.RejoinBody
			if err := a.call(ep, "POST", "/admin/rejoin?cluster="+cluster, nil, &out); err != nil {
				return err
			}
			for {
				var st server.StatusBody
				if err := a.call(ep, "GET", "/status", nil, &st); err == nil && st.Leader != 0 {
					var lst server.StatusBody
					leaderAdmin := ""
					for _, m := range st.Members {
						if m.ID == st.Leader {
							leaderAdmin = m.Admin
						}
					}
					if leaderAdmin != "" && a.call(leaderAdmin, "GET", "/status", nil, &lst) == nil && st.LastApplied >= lst.CommitIndex {
						if *f.out == "json" {
							writeJSONOut(w, map[string]any{"node_id": st.NodeID, "leader_id": st.Leader, "applied": st.LastApplied, "added": out.Added})
						} else {
							verb := "rejoined"
							if out.Added {
								verb = "was added back and rejoined"
							}
							fmt.Fprintf(w, "node%d %s the cluster (leader node%d) and caught up at index %s\n", st.NodeID, verb, st.Leader, thousands(st.LastApplied))
						}
						return nil
					}
				}
				select {
				case <-a.ctx.Done():
					return fmt.Errorf("not caught up within --timeout %v; check kraft-ctl debug-state", f.timeout)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}, func(fs *flag.FlagSet) {
			fs.StringVar(&cluster, "cluster", "", "peer address host:port of any cluster member (required)")
		})
}

func configCommand() command {
	return clusterCommand("config", "the configuration in effect on a node (flag = value; the admin token masked)", 0,
		func(f *clusterFlags, _ *flag.FlagSet, _ []string, w io.Writer) error {
			var eff map[string]string
			if _, done, err := nodeReport(f, w, "GET", "/admin/config", &eff); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Setting\tValue")
			for _, k := range slices.Sorted(maps.Keys(eff)) {
				v := eff[k]
				if v == "" {
					v = `""`
				}
				fmt.Fprintf(tw, "--%s\t%s\n", k, v)
			}
			return tw.Flush()
		}, nil)
}
