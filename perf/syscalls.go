package perf

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Where a process's CPU goes by system call, from the kernel's own trace
// events (tracefs: raw_syscalls:sys_enter/sys_exit and sched:sched_switch
// of the chosen threads). A thread is on the CPU from the switch that puts
// it there to the switch that takes it off; the part of that between a
// syscall's entry and exit is the syscall's. Sampling profilers can be far
// off on a virtual machine whose timer interrupt waits until interrupts
// are enabled again: on the development VM, at 1 KiB payloads, pprof put
// 25-42% of every node's CPU in pwritev, which this trace measures at
// 7.5%; and the Go runtime's sysmon sleeps (nanosleep, 6-8% here) do not
// show in pprof at all.

// SyscallStat is the CPU spent in one system call.
type SyscallStat struct {
	Nr    int
	Name  string
	Calls int
	OnCPU time.Duration
}

// SyscallProfile is a trace's summary.
type SyscallProfile struct {
	Span       time.Duration // first to last event
	Threads    int           // threads traced
	OnCPU      time.Duration // all the threads' CPU time
	InSyscalls time.Duration // the part of it between a syscall's entry and exit
	BySyscall  []SyscallStat // most CPU first
	// ByThread: each traced thread's time on and off the CPU, by the
	// state the kernel switched it out in.
	ByThread map[int]*ThreadSched
}

// ThreadSched is one thread's scheduling in a trace. Off-CPU time runs
// from the switch that takes the thread off the CPU to the one that puts it
// back, and is filed under the state it left in: D, an uninterruptible wait
// (on a disk: a thread blocked in fdatasync waits here, and in a process
// with one Go scheduler so does every goroutine); S, a sleep it chose
// (epoll_wait, futex, nanosleep); R, preempted while runnable.
type ThreadSched struct {
	OnCPU      time.Duration
	OffD       time.Duration
	OffS       time.Duration
	OffR       time.Duration
	SwitchOuts int
}

// ProcessSched sums a process's threads; Busiest is its thread with the
// most switches (in a Go process, usually the runtime's sysmon).
type ProcessSched struct {
	PID        int
	Threads    int // threads that ran
	Sched      ThreadSched
	Busiest    int
	BusiestRun ThreadSched
}

// syscallNames names the x86-64 system calls a Go server makes most.
var syscallNames = map[int]string{
	0: "read", 1: "write", 3: "close", 7: "poll", 9: "mmap", 11: "munmap", 13: "rt_sigaction",
	14: "rt_sigprocmask", 15: "rt_sigreturn", 17: "pread64", 18: "pwrite64", 19: "readv", 20: "writev",
	24: "sched_yield", 28: "madvise", 35: "nanosleep", 39: "getpid", 44: "sendto", 45: "recvfrom",
	46: "sendmsg", 47: "recvmsg", 74: "fsync", 75: "fdatasync", 186: "gettid", 202: "futex",
	221: "fadvise64", 228: "clock_gettime", 230: "clock_nanosleep", 232: "epoll_wait", 234: "tgkill",
	257: "openat", 281: "epoll_pwait", 285: "fallocate", 295: "preadv", 296: "pwritev",
}

// TraceSyscalls records the system calls and context switches of the
// threads tids for d through tracefs (mounted at dir, usually
// /sys/kernel/tracing; root only) and returns the trace's text. It leaves
// the tracer as it found it: off, no events, no pid filter.
func TraceSyscalls(dir string, tids []int, d time.Duration) ([]byte, error) {
	if len(tids) == 0 {
		return nil, errors.New("kraft/perf: no threads to trace")
	}
	set := func(name, value string) error {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
			return fmt.Errorf("kraft/perf: tracefs: %w", err)
		}
		return nil
	}
	ids := make([]string, len(tids))
	for i, t := range tids {
		ids[i] = strconv.Itoa(t)
	}
	steps := []struct{ name, value string }{
		{"tracing_on", "0"}, {"trace", ""}, {"buffer_size_kb", "65536"},
		{"set_event_pid", strings.Join(ids, " ")},
		{"set_event", "raw_syscalls:sys_enter raw_syscalls:sys_exit sched:sched_switch"},
	}
	defer func() {
		_ = set("tracing_on", "0")
		_ = set("set_event", "")
		_ = set("set_event_pid", "")
		_ = set("trace", "")
	}()
	for i, s := range steps {
		if err := set(s.name, s.value); err != nil {
			if i == 0 {
				err = fmt.Errorf("%w (tracing needs root and tracefs mounted at %s: mount -t tracefs nodev %[2]s)", err, dir)
			}
			return nil, err
		}
	}
	if err := set("tracing_on", "1"); err != nil {
		return nil, err
	}
	time.Sleep(d)
	if err := set("tracing_on", "0"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "trace"))
	if err != nil {
		return nil, fmt.Errorf("kraft/perf: tracefs: %w", err)
	}
	if bytes.Contains(b, []byte("LOST")) {
		return b, errors.New("kraft/perf: the trace lost events (a busier machine than the buffer allows): trace for less time")
	}
	return b, nil
}

// traceLine is one event line of the tracefs text format:
//
//	<comm>-<tid> [cpu] <flags> <seconds>: <event>: <fields>
var traceLine = regexp.MustCompile(`^\s*.+?-(\d+)\s+\[\d+\]\s+\S+\s+(\d+\.\d+):\s+(\w+):\s+(.*)$`)

var (
	fieldNr        = regexp.MustCompile(`NR (-?\d+)`)
	fieldPrev      = regexp.MustCompile(`prev_pid=(\d+)`)
	fieldNext      = regexp.MustCompile(`next_pid=(\d+)`)
	fieldPrevState = regexp.MustCompile(`prev_state=(\S+)`)
)

// AnalyzeSyscallTrace summarizes a trace of TraceSyscalls for the threads
// in tids. A thread seen first inside a syscall or on the CPU is counted
// from that event; a syscall still open at the end is not counted.
func AnalyzeSyscallTrace(r io.Reader, tids []int) (SyscallProfile, error) {
	traced := make(map[int]bool, len(tids))
	for _, t := range tids {
		traced[t] = true
	}
	type open struct {
		nr    int
		since float64 // entry, or the switch back onto the CPU
		on    float64 // on-CPU time inside the syscall so far
	}
	onSince := map[int]float64{} // threads on the CPU, since when
	type offAt struct {
		t     float64
		state byte
	}
	offSince := map[int]offAt{} // threads switched out, since when and how
	sched := map[int]*ThreadSched{}
	schedOf := func(tid int) *ThreadSched {
		ts := sched[tid]
		if ts == nil {
			ts = &ThreadSched{}
			sched[tid] = ts
		}
		return ts
	}
	inSys := map[int]*open{}
	onCPU := map[int]float64{}
	bySys := map[int]*SyscallStat{}
	var first, last float64
	var inSyscalls float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := traceLine.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		tid, _ := strconv.Atoi(string(m[1]))
		t, _ := strconv.ParseFloat(string(m[2]), 64)
		if first == 0 {
			first = t
		}
		last = t
		event, fields := string(m[3]), m[4]
		if event == "sched_switch" {
			pm, nm := fieldPrev.FindSubmatch(fields), fieldNext.FindSubmatch(fields)
			if pm == nil || nm == nil {
				return SyscallProfile{}, fmt.Errorf("kraft/perf: a sched_switch without its pids: %q", sc.Text())
			}
			prev, _ := strconv.Atoi(string(pm[1]))
			next, _ := strconv.Atoi(string(nm[1]))
			if since, ok := onSince[prev]; ok && traced[prev] {
				onCPU[prev] += t - since
				delete(onSince, prev)
				if o := inSys[prev]; o != nil {
					o.on += t - o.since
				}
			}
			if traced[prev] {
				state := byte('?')
				if sm := fieldPrevState.FindSubmatch(fields); sm != nil {
					state = sm[1][0]
				}
				offSince[prev] = offAt{t, state}
				schedOf(prev).SwitchOuts++
			}
			if traced[next] {
				onSince[next] = t
				if o := inSys[next]; o != nil {
					o.since = t
				}
				if off, ok := offSince[next]; ok {
					delete(offSince, next)
					ts, d := schedOf(next), seconds(t-off.t)
					switch off.state {
					case 'D':
						ts.OffD += d
					case 'S':
						ts.OffS += d
					case 'R':
						ts.OffR += d
					}
				}
			}
			continue
		}
		if !traced[tid] || (event != "sys_enter" && event != "sys_exit") {
			continue
		}
		if _, ok := onSince[tid]; !ok {
			onSince[tid] = t // running since before the trace began
		}
		nm := fieldNr.FindSubmatch(fields)
		if nm == nil {
			return SyscallProfile{}, fmt.Errorf("kraft/perf: a %s without its number: %q", event, sc.Text())
		}
		nr, _ := strconv.Atoi(string(nm[1]))
		if event == "sys_enter" {
			inSys[tid] = &open{nr: nr, since: t}
			continue
		}
		o := inSys[tid]
		if o == nil {
			continue // entered before the trace began
		}
		delete(inSys, tid)
		on := o.on + t - o.since
		s := bySys[o.nr]
		if s == nil {
			name := syscallNames[o.nr]
			if name == "" {
				name = "#" + strconv.Itoa(o.nr)
			}
			s = &SyscallStat{Nr: o.nr, Name: name}
			bySys[o.nr] = s
		}
		s.Calls++
		s.OnCPU += seconds(on)
		inSyscalls += on
	}
	if err := sc.Err(); err != nil {
		return SyscallProfile{}, err
	}
	for tid, since := range onSince {
		onCPU[tid] += last - since
	}
	p := SyscallProfile{Span: seconds(last - first), InSyscalls: seconds(inSyscalls)}
	for tid, v := range onCPU {
		p.OnCPU += seconds(v)
		schedOf(tid).OnCPU = seconds(v)
	}
	p.Threads = len(onCPU)
	p.ByThread = sched
	for _, s := range bySys {
		p.BySyscall = append(p.BySyscall, *s)
	}
	slices.SortFunc(p.BySyscall, func(a, b SyscallStat) int { return cmp.Compare(b.OnCPU, a.OnCPU) })
	return p, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// WriteTable prints the profile for people: the CPU split, then the
// syscalls taking at least 0.5% of the CPU.
func (p SyscallProfile) WriteTable(w io.Writer) {
	pct := func(d time.Duration) float64 {
		if p.OnCPU == 0 {
			return 0
		}
		return 100 * float64(d) / float64(p.OnCPU)
	}
	cpus := 0.0
	if p.Span > 0 {
		cpus = float64(p.OnCPU) / float64(p.Span)
	}
	fmt.Fprintf(w, "%d threads over %v: %v on the CPU (%.2f CPUs): %.0f%% in system calls, %.0f%% outside them\n",
		p.Threads, p.Span.Round(time.Millisecond), p.OnCPU.Round(time.Millisecond), cpus, pct(p.InSyscalls), pct(p.OnCPU-p.InSyscalls))
	fmt.Fprintf(w, "%-14s %9s %10s %7s %12s\n", "syscall", "calls/s", "CPU", "share", "CPU per call")
	for _, s := range p.BySyscall {
		if pct(s.OnCPU) < 0.5 {
			continue
		}
		rate := 0.0
		if p.Span > 0 {
			rate = float64(s.Calls) / p.Span.Seconds()
		}
		fmt.Fprintf(w, "%-14s %9.0f %10v %6.1f%% %10.1fµs\n", s.Name, rate, s.OnCPU.Round(time.Millisecond), pct(s.OnCPU),
			float64(s.OnCPU.Microseconds())/float64(s.Calls))
	}
}

// ByProcess sums ByThread by process (pidOf: thread ID to process ID),
// in process ID order.
func (p SyscallProfile) ByProcess(pidOf map[int]int) []ProcessSched {
	byPID := map[int]*ProcessSched{}
	for tid, ts := range p.ByThread {
		pid, ok := pidOf[tid]
		if !ok {
			continue
		}
		ps := byPID[pid]
		if ps == nil {
			ps = &ProcessSched{PID: pid}
			byPID[pid] = ps
		}
		if ts.OnCPU > 0 {
			ps.Threads++
		}
		ps.Sched.OnCPU += ts.OnCPU
		ps.Sched.OffD += ts.OffD
		ps.Sched.OffS += ts.OffS
		ps.Sched.OffR += ts.OffR
		ps.Sched.SwitchOuts += ts.SwitchOuts
		if ps.Busiest == 0 || ts.SwitchOuts > ps.BusiestRun.SwitchOuts || ts.SwitchOuts == ps.BusiestRun.SwitchOuts && tid < ps.Busiest {
			ps.Busiest, ps.BusiestRun = tid, *ts
		}
	}
	out := make([]ProcessSched, 0, len(byPID))
	for _, ps := range byPID {
		out = append(out, *ps)
	}
	slices.SortFunc(out, func(a, b ProcessSched) int { return cmp.Compare(a.PID, b.PID) })
	return out
}

// WriteProcessTable prints ByProcess for people, per second of the trace.
func (p SyscallProfile) WriteProcessTable(w io.Writer, pidOf map[int]int) {
	per := func(d time.Duration) string {
		if p.Span <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0fms", float64(d.Microseconds())/1000/p.Span.Seconds())
	}
	rate := func(n int) float64 {
		if p.Span <= 0 {
			return 0
		}
		return float64(n) / p.Span.Seconds()
	}
	fmt.Fprintln(w, "per process, per second: on the CPU; off it waiting uninterruptibly (D: the disk, e.g. fdatasync),")
	fmt.Fprintln(w, "asleep (S) or runnable but not running (R); switches off the CPU; the thread with the most (a Go runtime's sysmon, when it polls)")
	fmt.Fprintf(w, "%-8s %7s %8s %8s %8s %8s %10s  %s\n", "pid", "threads", "on CPU", "D", "S", "R", "switches/s", "most switches")
	for _, ps := range p.ByProcess(pidOf) {
		fmt.Fprintf(w, "%-8d %7d %8s %8s %8s %8s %10.0f  thread %d: %.0f/s, %s on the CPU\n", ps.PID, ps.Threads,
			per(ps.Sched.OnCPU), per(ps.Sched.OffD), per(ps.Sched.OffS), per(ps.Sched.OffR), rate(ps.Sched.SwitchOuts),
			ps.Busiest, rate(ps.BusiestRun.SwitchOuts), per(ps.BusiestRun.OnCPU))
	}
}

// ThreadsOf maps the thread IDs of the processes whose command line
// matches re (not this process's) to their process IDs.
func ThreadsOf(re *regexp.Regexp) (map[int]int, error) {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	tids := map[int]int{}
	for _, f := range procs {
		cmd, err := os.ReadFile(f)
		if err != nil || !re.Match(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})) {
			continue
		}
		dir := filepath.Dir(f)
		pid, _ := strconv.Atoi(filepath.Base(dir))
		if pid == self {
			continue
		}
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			continue // gone meanwhile
		}
		for _, t := range tasks {
			if id, err := strconv.Atoi(t.Name()); err == nil {
				tids[id] = pid
			}
		}
	}
	return tids, nil
}
