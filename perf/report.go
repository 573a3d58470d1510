package perf

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Env is what a report says about where and when it was measured.
type Env struct {
	Date       time.Time `json:"date"`
	Command    string    `json:"command"`
	Commit     string    `json:"commit,omitempty"` // the binary's VCS revision, "+dirty" if modified
	LoadBefore string    `json:"load_before"`      // /proc/loadavg 1/5/15 min
	LoadAfter  string    `json:"load_after,omitempty"`
	CPUs       int       `json:"cpus"`
	// THP is the host's transparent huge page mode, which moves kraftd's
	// CPU per write a lot (docs/tuning.md, mem.thp.enabled); "?" when it
	// cannot be read.
	THP     string `json:"thp"`
	DataDir string `json:"data_dir"`
	// KraftdProcs is the GOMAXPROCS of the local kraftd processes, per
	// cluster size ("3 nodes: 1 each"; LocalCluster.Procs, 0: Go's
	// default); empty when kraftbench started none.
	KraftdProcs string `json:"kraftd_gomaxprocs,omitempty"`
}

// NoteProcs records in KraftdProcs that a local cluster of n nodes ran
// with GOMAXPROCS procs each, once per cluster size.
func (env *Env) NoteProcs(n, procs int) {
	what := fmt.Sprintf("%d nodes: %d each", n, procs)
	if procs == 0 {
		what = fmt.Sprintf("%d nodes: Go's default (every CPU) each", n)
	}
	if slices.Contains(strings.Split(env.KraftdProcs, "; "), what) {
		return
	}
	if env.KraftdProcs != "" {
		env.KraftdProcs += "; "
	}
	env.KraftdProcs += what
}

// procsNote is the header's words on KraftdProcs.
func (env Env) procsNote() string {
	if env.KraftdProcs == "" {
		return ""
	}
	return ", kraftd GOMAXPROCS " + env.KraftdProcs
}

// NewEnv fills Env for this process.
func NewEnv(args []string, dataDir string) Env {
	e := Env{Date: time.Now().UTC(), Command: shellJoin(args), CPUs: runtime.NumCPU(), DataDir: dataDir,
		LoadBefore: LoadAvg(), THP: THPMode(thpEnabledPath)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				e.Commit = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && e.Commit != "" {
			e.Commit += "+dirty"
		}
	}
	if e.Commit == "" { // built with -buildvcs=false: ask git about the working directory
		e.Commit = gitCommit()
	}
	return e
}

// gitCommit is the working directory's HEAD, "+dirty" when tracked files
// differ from it; "" outside a repository.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}

// shellJoin joins args so that a POSIX shell reads them back: an argument
// with anything but safe characters goes in single quotes.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		safe := a != ""
		for _, c := range a {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./,:=+@%", c)) {
				safe = false
				break
			}
		}
		if safe {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// LoadAvg is the 1, 5 and 15 minute load averages ("?" if unreadable).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

const thpEnabledPath = "/sys/kernel/mm/transparent_hugepage/enabled"

// THPMode returns the bracketed mode of a transparent huge page switch
// ("always [madvise] never" → "madvise"), or "?".
func THPMode(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(b)) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1]
		}
	}
	return "?"
}

// header is the first line of a report for people.
func (env Env) header() string {
	return fmt.Sprintf("kraftbench %s, commit %s, load %s (before) %s (after), %d CPUs, transparent huge pages %s%s, data %s\n",
		env.Date.Format(time.RFC3339), env.Commit, env.LoadBefore, env.LoadAfter, env.CPUs, env.THP, env.procsNote(), env.DataDir)
}

// Row is one run's figures with the floor measured just before it; the
// JSON field names carry their units.
type Row struct {
	Mode         string  `json:"mode"` // closed | open
	Nodes        int     `json:"nodes,omitempty"`
	Clients      int     `json:"clients"` // closed: workers; open: most in flight
	Conns        int     `json:"conns"`   // client connections the workers share
	RatePerSec   float64 `json:"rate_per_s,omitempty"`
	PayloadBytes int     `json:"payload_bytes"`
	ReadRatio    float64 `json:"read_ratio"`
	Consistency  string  `json:"consistency,omitempty"`
	KeyDist      string  `json:"key_dist"`
	Keys         int     `json:"keys"`
	FsyncMode    string  `json:"fsync_mode,omitempty"`
	// Embedded: the nodes ran inside kraftbench (kraftbench --embedded),
	// the load proposing to the leader's Node directly; CPUSeconds is then
	// the whole process's, load included.
	Embedded bool `json:"embedded,omitempty"`
	// NullServer: the load ran against kraftbench --null-server, a server
	// that answers at once (no Raft, no disk); CPUSeconds is the whole
	// process's.
	NullServer bool    `json:"null_server,omitempty"`
	DurationS  float64 `json:"duration_s"`

	Ops        uint64  `json:"ops"`
	Reads      uint64  `json:"reads"`
	Writes     uint64  `json:"writes"`
	Errors     uint64  `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Late       uint64  `json:"late"`
	Missed     uint64  `json:"missed"`
	OpsPerSec  float64 `json:"ops_per_s"`

	// Latency: from the intended send time (open loop) or the send.
	P50us  float64 `json:"p50_us"`
	P90us  float64 `json:"p90_us"`
	P99us  float64 `json:"p99_us"`
	P999us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
	MeanUs float64 `json:"mean_us"`
	// Service time (from the actual send), which a closed-loop or
	// coordinated-omission-prone tool would report.
	ServiceP50us float64 `json:"service_p50_us"`
	ServiceP99us float64 `json:"service_p99_us"`
	// Open loop: how far behind its intended time each operation went out
	// (the load generator's own delay, part of the latency above).
	SendLagP50us float64 `json:"send_lag_p50_us,omitempty"`
	SendLagP99us float64 `json:"send_lag_p99_us,omitempty"`
	ReadP99us    float64 `json:"read_p99_us,omitempty"`
	WriteP99us   float64 `json:"write_p99_us,omitempty"`

	CPUSeconds float64 `json:"cpu_s,omitempty"`         // all kraftd processes over the window
	CPUusPerOp float64 `json:"cpu_us_per_op,omitempty"` // CPUSeconds / Ops
	// kraftbench's own CPU (load generator and clients) over the window.
	GeneratorCPUSeconds float64 `json:"generator_cpu_s,omitempty"`
	GeneratorCPUusPerOp float64 `json:"generator_cpu_us_per_op,omitempty"` // GeneratorCPUSeconds / Ops
	// The disk under the cluster's data over the window (the whole
	// device's counters, /proc/diskstats): written bytes per operation,
	// written MB/s and flushes/s.
	DiskDevice        string  `json:"disk_device,omitempty"`
	DiskBytesPerOp    float64 `json:"disk_bytes_per_op,omitempty"`
	DiskMBPerSec      float64 `json:"disk_mb_per_s,omitempty"`
	DiskFlushesPerSec float64 `json:"disk_flushes_per_s,omitempty"`
	// Servers: the nodes' own counters over the window (their /metrics),
	// when kraftbench could read them.
	Servers *ServerRow `json:"servers,omitempty"`

	FloorUs
	// Each latency over the commit floor, and throughput × floor (1.0:
	// one operation completes per floor interval, what one client at the
	// floor would do).
	P50xFloor   float64 `json:"p50_x_floor"`
	P90xFloor   float64 `json:"p90_x_floor"`
	P99xFloor   float64 `json:"p99_x_floor"`
	P999xFloor  float64 `json:"p999_x_floor"`
	MaxxFloor   float64 `json:"max_x_floor"`
	OpsPerFloor float64 `json:"ops_per_floor"`
	// p50 over the shared-disk floor (local and in-process clusters).
	P50xSharedFloor float64 `json:"p50_x_shared_floor,omitempty"`

	Timeline []TimelineJSON `json:"timeline,omitempty"`
}

// TimelineJSON is one second of the timeline.
type TimelineJSON struct {
	EndS   float64 `json:"end_s"`
	Ops    uint64  `json:"ops"`
	Errors uint64  `json:"errors"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	MaxUs  float64 `json:"max_us"`
}

// ServerRow is ServerCounters in a report, with the run's writes over the
// leader's syncs: how many writes shared one flush.
type ServerRow struct {
	ServerCounters
	WritesPerLeaderSync float64 `json:"writes_per_leader_sync,omitempty"`
}

// FloorUs is a Floor in JSON, in microseconds.
type FloorUs struct {
	FsyncP50us    float64 `json:"fsync_p50_us"`
	FsyncP99us    float64 `json:"fsync_p99_us"`
	RTTP50us      float64 `json:"rtt_p50_us"`
	CommitFloorUs float64 `json:"commit_floor_us"`
	// With the nodes on one disk (see Floor.SharedFsyncP50).
	SharedFsyncP50us    float64 `json:"fsync_shared_p50_us,omitempty"`
	SharedBy            int     `json:"fsync_shared_by,omitempty"`
	SharedCommitFloorUs float64 `json:"shared_commit_floor_us,omitempty"`
}

// Us converts f to microseconds.
func (f Floor) Us() FloorUs {
	return FloorUs{FsyncP50us: us(f.FsyncP50), FsyncP99us: us(f.FsyncP99), RTTP50us: us(f.RTTP50), CommitFloorUs: us(f.CommitFloor()),
		SharedFsyncP50us: us(f.SharedFsyncP50), SharedBy: f.SharedBy, SharedCommitFloorUs: us(f.SharedCommitFloor())}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// NewRow computes a row from a run; the caller fills the workload fields.
func NewRow(res *Result, floor Floor) Row {
	l := res.Latency
	r := Row{DurationS: res.Elapsed.Seconds(), Ops: res.Ops, Reads: res.Reads, Writes: res.Writes, Errors: res.Errors,
		FirstError: res.FirstError, Late: res.Late, Missed: res.Missed, OpsPerSec: res.Throughput(),
		P50us: us(l.Percentile(.5)), P90us: us(l.Percentile(.9)), P99us: us(l.Percentile(.99)), P999us: us(l.Percentile(.999)),
		MaxUs: us(l.Max()), MeanUs: us(l.Mean()),
		ServiceP50us: us(res.Service.Percentile(.5)), ServiceP99us: us(res.Service.Percentile(.99)), FloorUs: floor.Us()}
	if res.SendLag != nil && res.SendLag.Count() > 0 {
		r.SendLagP50us, r.SendLagP99us = us(res.SendLag.Percentile(.5)), us(res.SendLag.Percentile(.99))
	}
	if res.Reads > 0 && res.Writes > 0 {
		r.ReadP99us, r.WriteP99us = us(res.ReadLatency.Percentile(.99)), us(res.WriteLatency.Percentile(.99))
	}
	if res.CPUSeconds >= 0 && res.Ops > 0 {
		r.CPUSeconds = res.CPUSeconds
		r.CPUusPerOp = res.CPUSeconds * 1e6 / float64(res.Ops)
	}
	if res.GeneratorCPUSeconds >= 0 && res.Ops > 0 {
		r.GeneratorCPUSeconds = res.GeneratorCPUSeconds
		r.GeneratorCPUusPerOp = res.GeneratorCPUSeconds * 1e6 / float64(res.Ops)
	}
	if d := res.Disk; d.Device != "" && res.Ops > 0 && res.Elapsed > 0 {
		r.DiskDevice = d.Device
		r.DiskBytesPerOp = float64(d.BytesWritten) / float64(res.Ops)
		r.DiskMBPerSec = float64(d.BytesWritten) / 1e6 / res.Elapsed.Seconds()
		r.DiskFlushesPerSec = float64(d.Flushes) / res.Elapsed.Seconds()
	}
	if c := res.Servers; c != nil {
		r.Servers = &ServerRow{ServerCounters: *c}
		if c.LeaderWALSyncs > 0 {
			r.Servers.WritesPerLeaderSync = float64(res.Writes) / float64(c.LeaderWALSyncs)
		}
	}
	if f := us(floor.CommitFloor()); f > 0 {
		r.P50xFloor, r.P90xFloor, r.P99xFloor, r.P999xFloor, r.MaxxFloor = r.P50us/f, r.P90us/f, r.P99us/f, r.P999us/f, r.MaxUs/f
		r.OpsPerFloor = r.OpsPerSec * f / 1e6
	}
	if f := us(floor.SharedCommitFloor()); f > 0 {
		r.P50xSharedFloor = r.P50us / f
	}
	for _, iv := range res.Timeline {
		r.Timeline = append(r.Timeline, TimelineJSON{EndS: iv.End.Seconds(), Ops: iv.Ops, Errors: iv.Errors,
			P50us: us(iv.P50), P99us: us(iv.P99), MaxUs: us(iv.Max)})
	}
	return r
}

// FormatDuration prints µs below 1 ms, ms below 1 s, else s, with three
// significant figures or so.
func FormatDuration(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 10000:
		return fmt.Sprintf("%.2fms", us/1000)
	case us < 1e6:
		return fmt.Sprintf("%.1fms", us/1000)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

// Workload describes the row's load in a few words.
func (r Row) Workload() string {
	load := fmt.Sprintf("%d clients", r.Clients)
	if r.Mode == "open" {
		load = fmt.Sprintf("open %.0f/s (≤%d in flight)", r.RatePerSec, r.Clients)
	}
	if r.Conns > 0 {
		load += fmt.Sprintf(" on %d conn", r.Conns)
		if r.Conns > 1 {
			load += "s"
		}
	}
	mix := "writes"
	if r.ReadRatio > 0 {
		mix = fmt.Sprintf("%.0f%% %s reads", r.ReadRatio*100, r.Consistency)
	}
	return fmt.Sprintf("%s, %s, %d B, %s", load, mix, r.PayloadBytes, r.KeyDist)
}

var tableHeader = []string{"nodes", "load", "ops/s", "ops×floor", "p50", "p90", "p99", "p99.9", "max",
	"svc p99", "send lag p99", "errors", "late/missed", "CPU µs/op", "disk B/op (MB/s, flushes/s)", "writes/sync", "snaps/recycled/elections/leader chg", "fsync p50/p99", "RTT", "floor", "shared-disk floor"}

func (r Row) cells() []string {
	lat := func(v, x float64) string { return fmt.Sprintf("%s (%.1f×)", FormatDuration(v), x) }
	cpu := "—"
	if r.CPUusPerOp > 0 {
		cpu = fmt.Sprintf("%.1f", r.CPUusPerOp)
	}
	disk := "—"
	if r.DiskDevice != "" {
		disk = fmt.Sprintf("%.0f (%.0f, %.0f)", r.DiskBytesPerOp, r.DiskMBPerSec, r.DiskFlushesPerSec)
	}
	perSync, events := "—", "—"
	if s := r.Servers; s != nil {
		if s.WritesPerLeaderSync > 0 {
			perSync = fmt.Sprintf("%.1f", s.WritesPerLeaderSync)
		}
		events = fmt.Sprintf("%d/%d/%d/%d", s.Snapshots, s.SegmentsRecycled, s.Elections, s.LeaderChanges)
	}
	lm, lag := "—", "—"
	if r.Mode == "open" {
		lm, lag = fmt.Sprintf("%d/%d", r.Late, r.Missed), FormatDuration(r.SendLagP99us)
	}
	shared := "—"
	if r.SharedCommitFloorUs > 0 {
		shared = fmt.Sprintf("%s (p50 %.1f×)", FormatDuration(r.SharedCommitFloorUs), r.P50xSharedFloor)
	}
	nodes := "—"
	if r.Nodes > 0 {
		nodes = fmt.Sprint(r.Nodes)
	}
	if r.Embedded {
		nodes += " in-process"
	}
	if r.NullServer {
		nodes = "null server"
	}
	return []string{nodes, r.Workload(), fmt.Sprintf("%.0f", r.OpsPerSec), fmt.Sprintf("%.2f", r.OpsPerFloor),
		lat(r.P50us, r.P50xFloor), lat(r.P90us, r.P90xFloor), lat(r.P99us, r.P99xFloor), lat(r.P999us, r.P999xFloor),
		lat(r.MaxUs, r.MaxxFloor), FormatDuration(r.ServiceP99us), lag, fmt.Sprint(r.Errors), lm, cpu, disk, perSync, events,
		FormatDuration(r.FsyncP50us) + "/" + FormatDuration(r.FsyncP99us), FormatDuration(r.RTTP50us), FormatDuration(r.CommitFloorUs), shared}
}

// Legend explains the columns; both WriteTable and WriteMarkdown print it.
const Legend = `Latency is from the intended send time in open loop, from the send in closed loop; (n×) is
its ratio to the commit floor measured just before the run (fdatasync p50 of a 4 KiB write in
the data directory + 2 × loopback RTT p50). ops×floor: throughput × floor (1.00 = what one
client at the floor would do). svc p99: from the actual send (what a tool with coordinated
omission reports). send lag: open loop, actual send − intended time (the load generator's own
delay on this machine; part of the latency). late/missed: sends ≥ --late-after behind, and sends
never made (in the percentiles with their wait so far). CPU µs/op: user+system time of all
kraftd processes over the window / ops (in-process nodes, kraftbench --embedded, and
--null-server: of the whole kraftbench process, load included). disk B/op: bytes written over
the window by the disk under the data directory / ops, with its MB/s and flushes/s
(/proc/diskstats: the whole device, other writers included; local and in-process clusters).
writes/sync and snaps/recycled/elections/leader chg: from the nodes' /metrics at both ends of
the window (local clusters, or --admin-endpoints): writes over the WAL syncs of the node that
led throughout (— if the leader changed), snapshots taken and WAL segments recycled by all
nodes, and the most elections (terms begun) and leader changes any node saw; CPU µs/op of
--endpoints comes from there too.
shared-disk floor (local and in-process clusters): the floor with the fdatasync p50 measured
while one writer per node syncs at once, as nodes sharing this disk do for every write; (p50 n×)
is the p50's ratio to it.`

// WriteTable prints rows for people.
func WriteTable(w io.Writer, env Env, rows []Row) {
	io.WriteString(w, env.header())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t")+"\t")
	}
	tw.Flush()
	for _, r := range rows {
		if r.FirstError != "" {
			fmt.Fprintf(w, "first error (%s): %s\n", r.Workload(), r.FirstError)
		}
		if s := r.Servers; s != nil && len(s.Rejected) > 0 {
			fmt.Fprintf(w, "refused by the nodes (%s): %s\n", r.Workload(), s.rejectedText())
		}
	}
	fmt.Fprintln(w, Legend)
}

// WriteMarkdown prints rows as a markdown document with its provenance.
func WriteMarkdown(w io.Writer, title string, env Env, rows []Row, wall time.Duration) {
	fmt.Fprintf(w, "# %s\n\n", title)
	procs := ""
	if env.KraftdProcs != "" {
		procs = "; kraftd GOMAXPROCS " + env.KraftdProcs
	}
	fmt.Fprintf(w, "Measured %s on commit `%s`; %d CPUs; transparent huge pages `%s`%s; load average %s before, %s after; wall time %s.\n\n",
		env.Date.Format("2006-01-02 15:04 MST"), env.Commit, env.CPUs, env.THP, procs, env.LoadBefore, env.LoadAfter, wall.Round(time.Second))
	fmt.Fprintf(w, "```sh\n%s\n```\n\n", env.Command)
	fmt.Fprintln(w, "| "+strings.Join(tableHeader, " | ")+" |")
	fmt.Fprintln(w, strings.Repeat("|---", len(tableHeader))+"|")
	for _, r := range rows {
		fmt.Fprintln(w, "| "+strings.Join(r.cells(), " | ")+" |")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		if r.FirstError != "" {
			fmt.Fprintf(w, "First error (%s): `%s`\n\n", r.Workload(), r.FirstError)
		}
		if s := r.Servers; s != nil && len(s.Rejected) > 0 {
			fmt.Fprintf(w, "Refused by the nodes (%s): %s\n\n", r.Workload(), s.rejectedText())
		}
	}
	fmt.Fprintln(w, Legend)
}

// ElectionRow is a leader-kill run.
type ElectionRow struct {
	Nodes  int     `json:"nodes"`
	Kills  int     `json:"kills"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MinMs  float64 `json:"min_ms"`
	MaxMs  float64 `json:"max_ms"`
	FloorUs
	P50xFloor float64 `json:"p50_x_floor"`
	// Kill → a survivor names a new leader (the election's share).
	ElectedP50ms float64 `json:"elected_p50_ms"`
	ElectedMaxMs float64 `json:"elected_max_ms"`
	// Terms begun per kill (ElectionSamples.Terms): the median, the most,
	// and how many kills took more than one.
	TermsP50   uint64 `json:"terms_per_kill_p50"`
	TermsMax   uint64 `json:"terms_per_kill_max"`
	TermsExtra int    `json:"kills_with_extra_terms"`
	Extra      string `json:"kraftd_flags,omitempty"`
}

// NewElectionRow summarizes a run's sorted samples (Elected and Terms may
// be empty).
func NewElectionRow(nodes int, samples ElectionSamples, floor Floor) ElectionRow {
	sorted, elected, terms := samples.Commit, samples.Elected, samples.Terms
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var sum time.Duration
	for _, s := range sorted {
		sum += s
	}
	r := ElectionRow{Nodes: nodes, Kills: len(sorted), FloorUs: floor.Us()}
	if len(sorted) > 0 {
		r.P50ms, r.P99ms = ms(Percentile(sorted, .5)), ms(Percentile(sorted, .99))
		r.MinMs, r.MaxMs, r.MeanMs = ms(sorted[0]), ms(sorted[len(sorted)-1]), ms(sum/time.Duration(len(sorted)))
	}
	if len(elected) > 0 {
		r.ElectedP50ms, r.ElectedMaxMs = ms(Percentile(elected, .5)), ms(elected[len(elected)-1])
	}
	if n := len(terms); n > 0 {
		r.TermsP50, r.TermsMax = terms[(n-1)/2], terms[n-1]
		for _, t := range terms {
			if t > 1 {
				r.TermsExtra++
			}
		}
	}
	if f := us(floor.CommitFloor()); f > 0 {
		r.P50xFloor = r.P50ms * 1000 / f
	}
	return r
}

// WriteElection prints an election row for people.
func WriteElection(w io.Writer, env Env, r ElectionRow) {
	io.WriteString(w, env.header())
	fmt.Fprintf(w, "floor: fdatasync 4KiB p50 %s p99 %s, loopback RTT p50 %s, commit floor %s\n",
		FormatDuration(r.FsyncP50us), FormatDuration(r.FsyncP99us), FormatDuration(r.RTTP50us), FormatDuration(r.CommitFloorUs))
	fmt.Fprintf(w, "%d nodes, %d leader kills (kill -9 → next committed write): p50 %.0f ms (%.0f× floor), mean %.0f ms, p99 %.0f ms, max %.0f ms, min %.0f ms\n",
		r.Nodes, r.Kills, r.P50ms, r.P50xFloor, r.MeanMs, r.P99ms, r.MaxMs, r.MinMs)
	if r.ElectedP50ms > 0 {
		fmt.Fprintf(w, "of which kill → a survivor names the new leader (/status, polled every 5 ms): p50 %.0f ms, max %.0f ms\n",
			r.ElectedP50ms, r.ElectedMaxMs)
	}
	if r.TermsMax > 0 {
		fmt.Fprintf(w, "terms begun per kill (the most any survivor counted, kraft_elections_total): p50 %d, max %d; %d of %d kills took more than one\n",
			r.TermsP50, r.TermsMax, r.TermsExtra, r.Kills)
	}
}
