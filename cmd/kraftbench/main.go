// Command kraftbench measures a Kraft cluster's write throughput and
// latency next to the machine's physical floor (fdatasync and loopback RTT
// measured in the same run).
//
//	kraftbench --local 3 --clients 1,256 --payload 128 --duration 10s
//	kraftbench --endpoints 10.0.0.1:7002,10.0.0.2:7002 --cluster-id kraft-prod
//
// With --local it starts real kraftd processes (--kraftd, default: next to
// this binary) on 127.0.0.1 with data in a temporary directory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/server"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type row struct {
	Clients        int     `json:"clients"`
	PayloadBytes   int     `json:"payload_bytes"`
	Ops            uint64  `json:"ops"`
	Errors         uint64  `json:"errors"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	P50us          float64 `json:"p50_us"`
	P90us          float64 `json:"p90_us"`
	P99us          float64 `json:"p99_us"`
	P999us         float64 `json:"p999_us"`
	Maxus          float64 `json:"max_us"`
	CPUusPerOp     float64 `json:"cpu_us_per_op,omitempty"`
	P50OverFloor   float64 `json:"p50_over_floor"`
	FsyncP50us     float64 `json:"fsync_p50_us"`
	FsyncP99us     float64 `json:"fsync_p99_us"`
	RTTP50us       float64 `json:"rtt_p50_us"`
	CommitFloorUs  float64 `json:"commit_floor_us"`
	FsyncMode      string  `json:"fsync_mode,omitempty"`
	Nodes          int     `json:"nodes,omitempty"`
	DurationSecond float64 `json:"duration_s"`
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kraftbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	local := fs.Int("local", 0, "start a local cluster of this many kraftd processes (3, 5, 7)")
	kraftd := fs.String("kraftd", "", "kraftd binary for --local (default: kraftd next to kraftbench)")
	endpoints := fs.String("endpoints", "", "client addresses of a running cluster, comma-separated")
	clusterID := fs.String("cluster-id", "kraft", "cluster ID of --endpoints")
	clientsFlag := fs.String("clients", "1,256", "concurrent closed-loop clients, comma-separated list (one run each)")
	payload := fs.Int("payload", 128, "value size in bytes")
	keys := fs.Int("keys", 100000, "key space")
	duration := fs.Duration("duration", 10*time.Second, "measured time per run")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured time before each run")
	fsync := fs.String("fsync-mode", "always", "--local: kraftd --fsync-mode")
	dataDir := fs.String("data-dir", "", "--local: where the nodes' data goes, and where the fdatasync floor is measured (default: a temp dir)")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var clients []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "kraftbench: --clients %q: want positive integers\n", *clientsFlag)
			return 2
		}
		clients = append(clients, n)
	}
	if (*local == 0) == (*endpoints == "") {
		fmt.Fprintln(stderr, "kraftbench: give either --local N or --endpoints")
		return 2
	}
	if *payload < 0 || *payload > 1<<20 || *keys < 1 || *duration <= 0 {
		fmt.Fprintln(stderr, "kraftbench: --payload must be 0..1MiB, --keys and --duration positive")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	dir := *dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "kraftbench-")
		if err != nil {
			fmt.Fprintln(stderr, "kraftbench:", err)
			return 1
		}
		defer os.RemoveAll(d)
		dir = d
	}
	eps := strings.Split(*endpoints, ",")
	cid := server.ClusterNumber(*clusterID)
	var lc *perf.LocalCluster
	if *local > 0 {
		bin := *kraftd
		if bin == "" {
			self, _ := os.Executable()
			bin = filepath.Join(filepath.Dir(self), "kraftd")
		}
		var err error
		lc, err = perf.StartLocal(bin, *local, dir, "--fsync-mode", *fsync, "--log-level", "warn", "--snapshot-threshold", "0")
		if err != nil {
			fmt.Fprintln(stderr, "kraftbench:", err)
			return 1
		}
		defer lc.Stop()
		eps, cid = lc.Clients, server.ClusterNumber(lc.ClusterID)
	}
	floor, err := perf.MeasureFloor(dir)
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench:", err)
		return 1
	}
	var rows []row
	for _, n := range clients {
		cpu0 := 0.0
		if lc != nil {
			cpu0 = lc.CPUSeconds()
		}
		res, err := perf.RunWrites(ctx, eps, cid, perf.LoadConfig{Clients: n, PayloadBytes: *payload, Keys: *keys,
			Warmup: *warmup, Duration: *duration, Progress: func(ops uint64, el time.Duration) {
				if !*asJSON {
					fmt.Fprintf(stderr, "\r  clients %d: %d ops, %.0f ops/s   ", n, ops, float64(ops)/el.Seconds())
				}
			}})
		if !*asJSON {
			fmt.Fprintln(stderr)
		}
		if err != nil {
			fmt.Fprintln(stderr, "kraftbench:", err)
			return 1
		}
		l := res.Latencies
		r := row{Clients: n, PayloadBytes: *payload, Ops: res.Ops, Errors: res.Errors, OpsPerSec: res.Throughput(),
			P50us: us(perf.Percentile(l, .5)), P90us: us(perf.Percentile(l, .9)), P99us: us(perf.Percentile(l, .99)),
			P999us: us(perf.Percentile(l, .999)), Maxus: us(l[len(l)-1]),
			FsyncP50us: us(floor.FsyncP50), FsyncP99us: us(floor.FsyncP99), RTTP50us: us(floor.RTTP50),
			CommitFloorUs: us(floor.CommitFloor()), Nodes: *local, FsyncMode: *fsync, DurationSecond: res.Elapsed.Seconds()}
		r.P50OverFloor = r.P50us / r.CommitFloorUs
		if lc != nil && res.Ops > 0 {
			// Includes warm-up and cool-down CPU: an upper bound.
			r.CPUusPerOp = (lc.CPUSeconds() - cpu0) * 1e6 / float64(res.Ops)
		}
		rows = append(rows, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			enc.Encode(r)
		}
		return 0
	}
	fmt.Fprintf(stdout, "floor (same run, %s): fdatasync 4KiB p50 %.0fµs p99 %.0fµs, loopback RTT p50 %.0fµs, commit floor (fsync + 2×RTT) %.0fµs\n",
		dir, us(floor.FsyncP50), us(floor.FsyncP99), us(floor.RTTP50), us(floor.CommitFloor()))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tpayload\tops/s\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tmax µs\terrors\tp50/floor\tCPU µs/op\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%.2f\t%.1f\t\n", r.Clients, r.PayloadBytes, r.OpsPerSec,
			r.P50us, r.P90us, r.P99us, r.P999us, r.Maxus, r.Errors, r.P50OverFloor, r.CPUusPerOp)
	}
	tw.Flush()
	return 0
}
