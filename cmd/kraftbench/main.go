// Command kraftbench measures a Kraft cluster next to the machine's
// physical floor (fdatasync of a 4 KiB write in the data directory and
// loopback RTT, measured in the same run, just before each measurement).
//
//	kraftbench [throughput] --local 3 --clients 1,256 --payload 128 --duration 10s
//	kraftbench latency --local 3                       # one closed-loop client
//	kraftbench latency --local 3 --rate 2000           # open loop, 2,000 ops/s
//	kraftbench throughput --local 3 --read-ratio 0.9 --consistency lease --key-dist zipf
//	kraftbench election --local 5 --kills 20           # kill -9 the leader, time the next commit (and count the terms it took)
//	kraftbench scalability --nodes 3,5,7 --clients 64
//	kraftbench --endpoints 10.0.0.1:7002,10.0.0.2:7002 --cluster-id kraft-prod \
//	    --admin-endpoints 10.0.0.1:7003,10.0.0.2:7003   # and the nodes' counters
//
// Sub-commands: throughput (the default; closed loop over --clients, or
// open loop over --rate with at most --inflight operations in flight;
// "--rate 0,5000" does both), latency (the same with one closed-loop client
// unless --clients or --rate say otherwise), election, scalability (the
// throughput runs on fresh local clusters of each --nodes size), and
// syscalls (where running kraftd processes' CPU goes by system call, and
// each one's time off the CPU by why, from the kernel's trace events; root).
//
// With --local (and always for scalability and election) it starts real
// kraftd processes (--kraftd, default: next to this binary) on 127.0.0.1
// with data in --data-dir or a temporary directory, one cluster per
// payload size. Reports: a table (default), JSON lines (--json), a
// markdown file (--markdown), a latency-over-time HTML page (--plot).
// Each run also reads the nodes' /metrics at both ends of its window (the
// local nodes', or --admin-endpoints'): writes per leader WAL sync,
// snapshots, recycled WAL segments, elections, leader changes and the
// requests the nodes refused, and for --endpoints the nodes' CPU.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/perf"
	"github.com/kraftdb/kraft/perf/inproc"
	"github.com/kraftdb/kraft/wal"
	"github.com/kraftdb/kraft/wire"
)

func main() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) }

const usage = `usage: kraftbench [throughput|latency|election|scalability] [flags]
  (no sub-command: throughput)
       kraftbench syscalls [flags]   (where running kraftds' CPU goes by system call, and their waits)`

// options are the parsed flags of every sub-command.
type options struct {
	sub                   string
	local                 int
	embedded              int
	nullServer            bool
	nodes                 []int
	kraftd, kraftdFlags   string
	kraftdEnv             []string
	endpoints, clusterID  string
	adminEndpoints        string // --endpoints: the nodes' admin addresses, for their /metrics
	adminToken            string
	clients               []int
	rates                 []float64
	inflight              int
	poisson               bool
	payloads              []int
	keys                  int
	keyDist               string
	readRatio             float64
	consistency           string
	preload               bool
	duration, warmup      time.Duration
	lateAfter             time.Duration
	perConn               int
	fsync, dataDir        string
	kills                 int
	asJSON, quiet         bool
	markdown, plot, title string
	seed                  uint64
	cpuProfile            string
	tls                   bool   // local clusters: TLS on every link
	cacert                string // --endpoints: the cluster's CA (TLS client port)
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{sub: "throughput"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.sub, args = args[0], args[1:]
	}
	switch o.sub {
	case "throughput", "latency", "election", "scalability":
	default:
		return nil, fmt.Errorf("unknown sub-command %q\n%s", o.sub, usage)
	}
	fs := flag.NewFlagSet("kraftbench "+o.sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	fs.IntVar(&o.local, "local", 0, "start a local cluster of this many kraftd processes (3, 5, 7)")
	fs.IntVar(&o.embedded, "embedded", 0, "run a cluster of this many nodes inside kraftbench, as an embedder does (core.Node, netio on loopback, WAL, KV; the load proposes to the leader's Node directly: no client network)")
	fs.BoolVar(&o.nullServer, "null-server", false, "run the load against a server inside kraftbench that answers every request at once (kraftd's client protocol over netio; no Raft, no disk): the most this load generator and the loopback network can do here, a ceiling no cluster measured with the same load can pass")
	nodes := fs.String("nodes", "3,5,7", "scalability: cluster sizes, comma-separated")
	fs.StringVar(&o.kraftd, "kraftd", "", "kraftd binary for local clusters (default: kraftd next to kraftbench)")
	fs.StringVar(&o.kraftdFlags, "kraftd-flags", "", "extra flags for every local kraftd, space-separated (e.g. \"--election-timeout-min 150ms\")")
	kraftdEnv := fs.String("kraftd-env", "", "extra environment for every local kraftd, space-separated NAME=VALUE (e.g. \"GOGC=200\"); without GOMAXPROCS here or in kraftbench's own environment, each node gets GOMAXPROCS = CPUs / nodes, at least 1 (the nodes share this host)")
	fs.StringVar(&o.endpoints, "endpoints", "", "client addresses of a running cluster, comma-separated")
	fs.StringVar(&o.clusterID, "cluster-id", "kraft", "cluster ID of --endpoints")
	fs.StringVar(&o.adminEndpoints, "admin-endpoints", "", "admin addresses of --endpoints' nodes, comma-separated (host:port, or https://host:port with --cacert): their /metrics at both ends of each run give CPU per op, writes per leader sync, snapshots, recycled WAL segments, elections, leader changes and refused requests")
	fs.StringVar(&o.adminToken, "admin-token", os.Getenv("KRAFT_ADMIN_TOKEN"), "bearer token for --admin-endpoints, when kraftd runs with --admin-token (env KRAFT_ADMIN_TOKEN)")
	clients := fs.String("clients", "1,256", "closed loop: concurrent clients, comma-separated (one run each; latency default 1)")
	rates := fs.String("rate", "", "open loop: operations per second, comma-separated (one run each); latency is from the intended send time; "+
		"0 in the list: also the closed-loop runs of --clients; \"match\": the throughput the last closed-loop run measured (e.g. --clients 16 --rate 0,match)")
	fs.IntVar(&o.inflight, "inflight", 1024, "open loop: most operations in flight (workers); when all are busy the next send waits and counts from its intended time")
	fs.BoolVar(&o.poisson, "poisson", false, "open loop: Poisson arrivals instead of evenly spaced ones")
	payloads := fs.String("payload", "128", "value size in bytes, comma-separated (one local cluster each)")
	fs.IntVar(&o.keys, "keys", 100000, "key space")
	fs.StringVar(&o.keyDist, "key-dist", "uniform", "key distribution: uniform | zipf | zipf:θ (0<θ<1, default 0.99)")
	fs.Float64Var(&o.readRatio, "read-ratio", 0, "share of operations that are reads (0: writes only, 1: reads only)")
	fs.StringVar(&o.consistency, "consistency", "linearizable", "reads: linearizable | lease (a lease read only when kraftd runs with --lease-reads, else ReadIndex) | stale (served by the leader: the client talks to the leader only)")
	fs.BoolVar(&o.preload, "preload", true, "with reads: write every key once before the first run on a cluster")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each run")
	fs.DurationVar(&o.lateAfter, "late-after", time.Millisecond, "open loop: a send this far behind its intended time counts as late")
	fs.IntVar(&o.perConn, "clients-per-conn", 32, "closed-loop clients or open-loop workers sharing one pipelined connection (open loop: sends spread over --inflight/this many connections)")
	fs.StringVar(&o.fsync, "fsync-mode", "always", "local clusters: kraftd --fsync-mode")
	fs.StringVar(&o.dataDir, "data-dir", "", "where local nodes keep their data and the fdatasync floor is measured (default: a temporary directory)")
	fs.IntVar(&o.kills, "kills", 10, "election: leader kills")
	fs.BoolVar(&o.tls, "tls", false, "local clusters: TLS on every link (mutual TLS between peers, TLS from the clients), with a throwaway CA")
	fs.StringVar(&o.cacert, "cacert", "", "--endpoints: CA file of a cluster whose client port speaks TLS")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON lines instead of a table")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&o.markdown, "markdown", "", "also write the report as markdown to this file")
	fs.StringVar(&o.title, "title", "", "title of the markdown report (default: kraftbench <sub-command>)")
	fs.StringVar(&o.plot, "plot", "", "also write latency and throughput over time to this self-contained HTML file")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of keys, values, read/write choice and Poisson gaps")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write kraftbench's own CPU profile (the load generator, not kraftd) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if o.rates, err = parseList(*rates, parseRate); err != nil {
		return nil, fmt.Errorf("--rate: %v", err)
	}
	switch {
	case set["clients"]:
	case o.sub == "latency":
		*clients = "1"
	}
	if o.clients, err = parseList(*clients, strconv.Atoi); err != nil {
		return nil, fmt.Errorf("--clients: %v", err)
	}
	if o.payloads, err = parseList(*payloads, strconv.Atoi); err != nil {
		return nil, fmt.Errorf("--payload: %v", err)
	}
	if o.nodes, err = parseList(*nodes, strconv.Atoi); err != nil {
		return nil, fmt.Errorf("--nodes: %v", err)
	}
	if o.kraftdEnv, err = parseEnv(*kraftdEnv); err != nil {
		return nil, fmt.Errorf("--kraftd-env: %v", err)
	}
	if o.title == "" {
		o.title = "kraftbench " + o.sub
	}
	return o, o.check()
}

func (o *options) check() error {
	for _, p := range o.payloads {
		if p < 0 || p > 1<<20 {
			return fmt.Errorf("--payload must be 0..1MiB, got %d", p)
		}
	}
	for _, c := range o.clients {
		if c < 1 {
			return fmt.Errorf("--clients must be positive")
		}
	}
	for _, r := range o.rates {
		if r < 0 && r != matchRate {
			return fmt.Errorf("--rate must not be negative")
		}
		if r == matchRate && !slices.Contains(o.rates, 0) {
			return fmt.Errorf("--rate match needs a closed-loop run first: --rate 0,match")
		}
	}
	if o.inflight < 1 {
		return fmt.Errorf("--inflight must be positive")
	}
	switch o.sub {
	case "scalability":
		if o.endpoints != "" {
			return fmt.Errorf("scalability starts its own clusters: --endpoints does not apply")
		}
		for _, n := range o.nodes {
			if n < 1 {
				return fmt.Errorf("--nodes must be positive")
			}
		}
	case "election":
		if o.local < 3 || o.endpoints != "" {
			return fmt.Errorf("election kills local processes: give --local N (N ≥ 3)")
		}
		if o.kills < 1 {
			return fmt.Errorf("--kills must be positive")
		}
	default:
		given := 0
		for _, set := range []bool{o.local != 0, o.endpoints != "", o.embedded != 0, o.nullServer} {
			if set {
				given++
			}
		}
		if given != 1 {
			return fmt.Errorf("give one of --local N, --embedded N, --null-server or --endpoints")
		}
	}
	if o.nullServer {
		if o.sub != "throughput" && o.sub != "latency" {
			return fmt.Errorf("--null-server applies to throughput and latency")
		}
		if o.tls || o.kraftdFlags != "" || o.kraftd != "" || len(o.kraftdEnv) > 0 {
			return fmt.Errorf("--null-server runs no kraftd: --tls, --kraftd, --kraftd-flags and --kraftd-env do not apply")
		}
	}
	if o.adminEndpoints != "" {
		if o.endpoints == "" {
			return fmt.Errorf("--admin-endpoints goes with --endpoints (kraftbench reads the nodes it starts without it)")
		}
		if _, err := perf.NewScraper(strings.Split(o.adminEndpoints, ","), "", nil); err != nil {
			return fmt.Errorf("--admin-endpoints: %v", err)
		}
	}
	if o.endpoints != "" && (o.kraftdFlags != "" || o.kraftd != "" || len(o.kraftdEnv) > 0) {
		return fmt.Errorf("--endpoints: the cluster is already running; --kraftd, --kraftd-flags and --kraftd-env apply to local clusters")
	}
	if o.embedded != 0 {
		if o.sub != "throughput" && o.sub != "latency" {
			return fmt.Errorf("--embedded applies to throughput and latency")
		}
		if o.embedded < 1 || o.embedded > 9 {
			return fmt.Errorf("--embedded must be 1-9, got %d", o.embedded)
		}
		if o.tls || o.kraftdFlags != "" || o.kraftd != "" || len(o.kraftdEnv) > 0 {
			return fmt.Errorf("--embedded runs no kraftd: --tls, --kraftd, --kraftd-flags and --kraftd-env do not apply")
		}
		if _, err := wal.ParseFsyncMode(o.fsync); err != nil {
			return fmt.Errorf("--fsync-mode: %v", err)
		}
	}
	if o.keys < 1 || o.duration <= 0 || o.warmup < 0 || !(o.readRatio >= 0 && o.readRatio <= 1) {
		return fmt.Errorf("--keys and --duration must be positive, --warmup not negative, --read-ratio in [0, 1]")
	}
	if _, err := perf.ParseConsistency(o.consistency); err != nil {
		return err
	}
	_, err := perf.ParseKeyDist(o.keyDist, o.keys)
	return err
}

// matchRate in --rate stands for the last closed-loop run's throughput.
const matchRate = -1

// parseEnv splits space-separated NAME=VALUE pairs.
func parseEnv(s string) ([]string, error) {
	var env []string
	for _, kv := range strings.Fields(s) {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !validEnvName(name) {
			return nil, fmt.Errorf("%q is not NAME=VALUE", kv)
		}
		env = append(env, kv)
	}
	return env, nil
}

// validEnvName: a letter or underscore, then letters, digits, underscores.
func validEnvName(name string) bool {
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

func parseRate(s string) (float64, error) {
	if s == "match" {
		return matchRate, nil
	}
	return strconv.ParseFloat(s, 64)
}

func parseList[T any](s string, conv func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := conv(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func run(argv []string, stdout, stderr io.Writer) int {
	if len(argv) > 1 && argv[1] == "syscalls" {
		return runSyscalls(argv[2:], stdout, stderr)
	}
	o, err := parse(argv[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "kraftbench: --cpuprofile:", err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	b, err := newBench(o, argv, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench:", err)
		return 1
	}
	defer b.cleanup()
	if o.sub == "election" {
		err = b.election(ctx)
	} else {
		err = b.workloads(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench:", err)
		return 1
	}
	return 0
}

// bench is one invocation.
type bench struct {
	o              *options
	dir            string
	removeDir      bool
	env            perf.Env
	started        time.Time
	stdout, stderr io.Writer
	tlsConfig      *tls.Config // clients' TLS (--tls, --cacert); nil: plaintext
}

func newBench(o *options, argv []string, stdout, stderr io.Writer) (*bench, error) {
	b := &bench{o: o, dir: o.dataDir, stdout: stdout, stderr: stderr, started: time.Now()}
	if o.cacert != "" {
		cfg, err := client.LoadTLS(o.cacert, "", "")
		if err != nil {
			return nil, err
		}
		b.tlsConfig = cfg
	}
	if b.dir == "" {
		d, err := os.MkdirTemp("", "kraftbench-")
		if err != nil {
			return nil, err
		}
		b.dir, b.removeDir = d, true
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, err
	}
	b.env = perf.NewEnv(argv, b.dir)
	if note := thpNote(o, b.env.THP); note != "" {
		b.progressf("%s", note)
	}
	return b, nil
}

// thpNote is what kraftbench says before a run whose nodes live on this
// host when its transparent huge pages are not "always": kraftd's heap
// then stays on 4 KiB pages, which on the test VM cost up to half of the
// write throughput (docs/tuning.md, mem.thp.enabled). "" when it does not
// apply: a remote cluster (--endpoints), the null server, an unknown mode.
func thpNote(o *options, mode string) string {
	if o.endpoints != "" || o.nullServer || mode == "always" || mode == "?" || mode == "" {
		return ""
	}
	return fmt.Sprintf("kraftbench: note: transparent huge pages are %q on this host, so the nodes' heaps stay on 4 KiB pages "+
		"(kraft-ctl tune check / tune apply; docs/tuning.md)", mode)
}

func (b *bench) cleanup() {
	if b.removeDir {
		os.RemoveAll(b.dir)
	}
}

func (b *bench) progressf(format string, a ...any) {
	if !b.o.quiet {
		fmt.Fprintf(b.stderr, format+"\n", a...)
	}
}

// startLocal starts n nodes in a fresh directory under b.dir.
func (b *bench) startLocal(n int, name string) (*perf.LocalCluster, error) {
	bin := b.o.kraftd
	if bin == "" {
		self, _ := os.Executable()
		bin = filepath.Join(filepath.Dir(self), "kraftd")
	}
	dir := filepath.Join(b.dir, name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	// Local nodes run kraftd's defaults (snapshots every 100,000 entries
	// included: a log that is never compacted grows its index without bound
	// and no operator runs that way) but for --fsync-mode and --kraftd-flags.
	extra := append([]string{"--fsync-mode", b.o.fsync, "--log-level", "warn"}, strings.Fields(b.o.kraftdFlags)...)
	if b.o.tls {
		files, err := perf.GenerateTLS(dir+"-pki", n)
		if err != nil {
			return nil, err
		}
		if b.tlsConfig, err = client.LoadTLS(files.CA, "", ""); err != nil {
			return nil, err
		}
		extra = append(extra, files.KraftdFlags()...)
	}
	b.progressf("starting %d kraftd processes in %s", n, dir)
	lc, err := perf.StartLocal(bin, n, dir, b.o.kraftdEnv, extra...)
	if err != nil {
		return nil, err
	}
	b.env.NoteProcs(n, lc.Procs)
	return lc, nil
}

// workloads runs throughput, latency and scalability: for each cluster
// size, for each payload (a fresh local cluster each), every clients ×
// rate combination.
func (b *bench) workloads(ctx context.Context) error {
	sizes := []int{b.o.local}
	if b.o.embedded > 0 {
		sizes = []int{b.o.embedded}
	}
	if b.o.sub == "scalability" {
		sizes = b.o.nodes
	}
	var rows []perf.Row
	var failed error
	for _, n := range sizes {
		for _, payload := range b.o.payloads {
			rs, err := b.onCluster(ctx, n, payload)
			rows = append(rows, rs...)
			if err != nil {
				failed = err
				break
			}
		}
		if failed != nil {
			break
		}
	}
	b.env.LoadAfter = perf.LoadAvg()
	if err := b.report(rows); err != nil {
		return err
	}
	return failed
}

func (b *bench) onCluster(ctx context.Context, nodes, payload int) ([]perf.Row, error) {
	if b.o.embedded > 0 {
		return b.onEmbedded(ctx, nodes, payload)
	}
	if b.o.nullServer {
		return b.onNullServer(ctx, payload)
	}
	eps, cid := strings.Split(b.o.endpoints, ","), perf.ClusterNumber(b.o.clusterID)
	var pr probes
	if b.o.adminEndpoints != "" {
		sc, err := perf.NewScraper(strings.Split(b.o.adminEndpoints, ","), b.o.adminToken, b.tlsConfig)
		if err != nil {
			return nil, fmt.Errorf("--admin-endpoints: %w", err)
		}
		pr.servers = sc
	}
	if nodes > 0 {
		lc, err := b.startLocal(nodes, fmt.Sprintf("n%d-p%d", nodes, payload))
		if err != nil {
			return nil, err
		}
		defer lc.Stop()
		eps, cid, pr.cpu = lc.Clients, perf.ClusterNumber(lc.ClusterID), lc.CPUSeconds
		if pr.servers, err = perf.NewScraper(lc.Admins, "", nil); err != nil {
			return nil, err
		}
	}
	read, _ := perf.ParseConsistency(b.o.consistency)
	target, err := perf.NewClientTarget(client.Config{Endpoints: eps, ClusterID: cid, TLS: b.tlsConfig}, b.maxWorkers(), b.o.perConn, read)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	return b.runAll(ctx, target, pr, nodes, payload)
}

// onEmbedded runs the workloads on a cluster inside this process; CPU per
// operation is then the whole process's (nodes and load together), as in
// the peers' published figures.
func (b *bench) onEmbedded(ctx context.Context, nodes, payload int) ([]perf.Row, error) {
	fsync, _ := wal.ParseFsyncMode(b.o.fsync)
	dir := filepath.Join(b.dir, fmt.Sprintf("embedded-n%d-p%d", nodes, payload))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	b.progressf("starting %d nodes in this process in %s", nodes, dir)
	c, err := inproc.Start(inproc.Config{Nodes: nodes, Dir: dir, Fsync: fsync})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	consistency := map[string]wire.Consistency{"linearizable": wire.ReadLinearizable, "lease": wire.ReadLease, "stale": wire.ReadStale}[b.o.consistency]
	return b.runAll(ctx, inproc.NewTarget(c, b.maxWorkers(), consistency), probes{cpu: perf.SelfCPUSeconds}, nodes, payload)
}

// onNullServer runs the workloads against an in-process NullServer with
// the Go client, as against a cluster; CPU per operation is the whole
// process's (load and server together).
func (b *bench) onNullServer(ctx context.Context, payload int) ([]perf.Row, error) {
	s, err := inproc.StartNull(nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	b.progressf("null server on %s: every request answered at once, no Raft, no disk", s.ClientAddr())
	read, _ := perf.ParseConsistency(b.o.consistency)
	target, err := perf.NewClientTarget(client.Config{Endpoints: []string{s.ClientAddr()}, ClusterID: perf.ClusterNumber(inproc.NullClusterID)}, b.maxWorkers(), b.o.perConn, read)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	return b.runAll(ctx, target, probes{cpu: perf.SelfCPUSeconds}, 0, payload)
}

// maxWorkers is the most workers any run of this invocation uses (the
// preload's 64 included).
func (b *bench) maxWorkers() int {
	n := max(b.o.inflight, 64)
	for _, c := range b.o.clients {
		n = max(n, c)
	}
	return n
}

// probes are what a run reads at both ends of its window besides the
// load's own figures.
type probes struct {
	cpu     func() float64 // the nodes' CPU seconds (nil: from servers, if any)
	servers *perf.Scraper  // the nodes' /metrics (nil: not read)
}

// runAll preloads the keys when reads are asked for, then runs every
// clients × rate combination on one cluster.
func (b *bench) runAll(ctx context.Context, target perf.Target, pr probes, nodes, payload int) ([]perf.Row, error) {
	dist, _ := perf.ParseKeyDist(b.o.keyDist, b.o.keys)
	if b.o.readRatio > 0 && b.o.preload {
		t0 := time.Now()
		if err := perf.Preload(ctx, target, b.o.keys, payload, 64); err != nil {
			return nil, err
		}
		b.progressf("preloaded %d keys of %d B in %v", b.o.keys, payload, time.Since(t0).Round(time.Millisecond))
	}
	// Closed-loop runs (one per --clients) unless only rates were asked
	// for, then open-loop runs (one per rate).
	type shape struct {
		workers int
		rate    float64
	}
	var shapes []shape
	if len(b.o.rates) == 0 || slices.Contains(b.o.rates, 0) {
		for _, c := range b.o.clients {
			shapes = append(shapes, shape{c, 0})
		}
	}
	for _, r := range b.o.rates {
		if r != 0 {
			shapes = append(shapes, shape{b.o.inflight, r})
		}
	}
	var rows []perf.Row
	lastClosed := 0.0
	for _, s := range shapes {
		if s.rate == matchRate {
			s.rate = math.Round(lastClosed)
		}
		row, err := b.one(ctx, target, pr, nodes, s.workers, s.rate, payload, dist)
		if err != nil {
			return rows, err
		}
		if s.rate == 0 {
			lastClosed = row.OpsPerSec
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// one measures the floor, then runs one workload.
func (b *bench) one(ctx context.Context, t perf.Target, pr probes, nodes, clients int, rate float64, payload int, dist perf.KeyDist) (perf.Row, error) {
	floor, err := perf.MeasureFloor(b.dir, nodes)
	if err != nil {
		return perf.Row{}, err
	}
	cfg := perf.LoadConfig{Workload: perf.Workload{ReadRatio: b.o.readRatio, PayloadBytes: payload, Keys: dist},
		Clients: clients, RatePerSec: rate, Poisson: b.o.poisson, Warmup: b.o.warmup, Duration: b.o.duration,
		LateAfter: b.o.lateAfter, Seed: b.o.seed, CPUSeconds: pr.cpu}
	if pr.servers != nil {
		cfg.Servers = func() (perf.ServerSample, error) { return pr.servers.Scrape(ctx) }
	}
	if nodes > 0 { // the cluster's data is under b.dir, on this machine
		if disk, err := perf.DiskOf(b.dir); err == nil {
			cfg.Disk = disk
		}
	}
	row := perf.Row{Mode: "closed", Nodes: nodes, Clients: clients, Conns: (clients + b.o.perConn - 1) / b.o.perConn, RatePerSec: rate, PayloadBytes: payload,
		ReadRatio: b.o.readRatio, KeyDist: dist.String(), Keys: b.o.keys}
	if rate > 0 {
		row.Mode = "open"
	}
	if row.ReadRatio > 0 {
		row.Consistency = b.o.consistency
	}
	if b.o.embedded > 0 {
		row.Conns, row.Embedded = 0, true
	}
	row.NullServer = b.o.nullServer
	if nodes > 0 {
		row.FsyncMode = b.o.fsync
	}
	what := row.Workload()
	shared := ""
	if floor.SharedBy > 1 {
		shared = fmt.Sprintf(" (%d at once: p50 %v)", floor.SharedBy, floor.SharedFsyncP50.Round(time.Microsecond))
	}
	b.progressf("%s: floor fdatasync p50 %v p99 %v%s, RTT p50 %v; warm-up %v", what, floor.FsyncP50.Round(time.Microsecond),
		floor.FsyncP99.Round(time.Microsecond), shared, floor.RTTP50.Round(time.Microsecond), b.o.warmup)
	cfg.Progress = func(p perf.Progress) {
		late := ""
		if rate > 0 {
			late = fmt.Sprintf(", late %d", p.Late)
		}
		b.progressf("  %4.0fs %8.0f ops/s  so far: p50 %s p99 %s p99.9 %s, errors %d%s", p.Elapsed.Seconds(), p.OpsPerSec,
			perf.FormatDuration(float64(p.P50.Microseconds())), perf.FormatDuration(float64(p.P99.Microseconds())),
			perf.FormatDuration(float64(p.P999.Microseconds())), p.Errors, late)
	}
	res, err := perf.Run(ctx, t, cfg)
	if err != nil {
		return perf.Row{}, fmt.Errorf("%s: %w", what, err)
	}
	if res.ServersErr != nil {
		fmt.Fprintf(b.stderr, "kraftbench: %s: the nodes' counters are not in this row: %v\n", what, res.ServersErr)
	}
	full := perf.NewRow(res, floor)
	full.Mode, full.Nodes, full.Clients, full.Conns, full.RatePerSec, full.PayloadBytes = row.Mode, row.Nodes, row.Clients, row.Conns, row.RatePerSec, row.PayloadBytes
	full.ReadRatio, full.Consistency, full.KeyDist, full.Keys, full.FsyncMode = row.ReadRatio, row.Consistency, row.KeyDist, row.Keys, row.FsyncMode
	full.Embedded, full.NullServer = row.Embedded, row.NullServer
	return full, nil
}

func (b *bench) report(rows []perf.Row) error {
	if b.o.asJSON {
		enc := json.NewEncoder(b.stdout)
		for _, r := range rows {
			if err := enc.Encode(struct {
				perf.Env
				perf.Row
			}{b.env, r}); err != nil {
				return err
			}
		}
	} else {
		perf.WriteTable(b.stdout, b.env, rows)
	}
	if b.o.markdown != "" {
		var sb strings.Builder
		perf.WriteMarkdown(&sb, b.o.title, b.env, rows, time.Since(b.started))
		if err := os.WriteFile(b.o.markdown, []byte(sb.String()), 0o644); err != nil {
			return err
		}
		b.progressf("wrote %s", b.o.markdown)
	}
	if b.o.plot != "" {
		f, err := os.Create(b.o.plot)
		if err != nil {
			return err
		}
		if err := perf.WritePlot(f, b.env, rows); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		b.progressf("wrote %s", b.o.plot)
	}
	return nil
}

func (b *bench) election(ctx context.Context) error {
	lc, err := b.startLocal(b.o.local, fmt.Sprintf("election-n%d", b.o.local))
	if err != nil {
		return err
	}
	defer lc.Stop()
	floor, err := perf.MeasureFloor(b.dir, b.o.local)
	if err != nil {
		return err
	}
	samples, err := perf.MeasureElections(ctx, lc, perf.ElectionConfig{Kills: b.o.kills, ClusterID: perf.ClusterNumber(lc.ClusterID), TLS: b.tlsConfig,
		Progress: func(i int, d time.Duration) {
			b.progressf("  kill %d: next write committed after %v", i, d.Round(time.Millisecond))
		}})
	if err != nil {
		return err
	}
	b.env.LoadAfter = perf.LoadAvg()
	row := perf.NewElectionRow(b.o.local, samples, floor)
	row.Extra = b.o.kraftdFlags
	if b.o.asJSON {
		return json.NewEncoder(b.stdout).Encode(struct {
			perf.Env
			perf.ElectionRow
		}{b.env, row})
	}
	perf.WriteElection(b.stdout, b.env, row)
	if b.o.markdown != "" {
		var sb strings.Builder
		fmt.Fprintf(&sb, "# %s\n\n```sh\n%s\n```\n\n```\n", b.o.title, b.env.Command)
		perf.WriteElection(&sb, b.env, row)
		sb.WriteString("```\n")
		return os.WriteFile(b.o.markdown, []byte(sb.String()), 0o644)
	}
	return nil
}
