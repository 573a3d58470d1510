package perf

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A thread's CPU time runs from the switch onto the CPU to the switch off
// it, and a syscall's share of it is what falls between its entry and exit
// while the thread is on the CPU: a futex that sleeps counts only its
// work before and after the sleep. Other threads' events do not count.
func TestAnalyzeSyscallTrace(t *testing.T) {
	const trace = `# tracer: nop
#
       kraftd-10      [000] ..... 1.000000: sys_enter: NR 0 (3, c000, 1000, 0, 0, 0)
       kraftd-10      [000] ..... 1.000010: sys_exit: NR 0 = 512
       kraftd-20      [001] ..... 1.000020: sys_enter: NR 1 (4, c000, 10, 0, 0, 0)
       kraftd-10      [000] ..... 1.000050: sys_enter: NR 202 (c0001, 80, 0, 0, 0, 0)
       kraftd-10      [000] d..2. 1.000060: sched_switch: prev_comm=kraftd prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
       kraftd-20      [001] ..... 1.000900: sys_exit: NR 1 = 10
       <idle>-0       [000] d..2. 1.001000: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=kraftd next_pid=10 next_prio=120
       kraftd-10      [000] ..... 1.001005: sys_exit: NR 202 = 0
       kraftd-10      [000] d..2. 1.001100: sched_switch: prev_comm=kraftd prev_pid=10 prev_prio=120 prev_state=R ==> next_comm=kraftd next_pid=20 next_prio=120
       kraftd-20      [000] d..2. 1.002000: sched_switch: prev_comm=kraftd prev_pid=20 prev_prio=120 prev_state=S ==> next_comm=kraftd next_pid=10 next_prio=120
       kraftd-10      [000] ..... 1.002010: sys_enter: NR 75 (7, 0, 0, 0, 0, 0)
       kraftd-10      [000] ..... 1.002110: sys_exit: NR 75 = 0
       kraftd-10      [000] ..... 1.002150: sys_enter: NR 35 (c000, 0, 0, 0, 0, 0)
       kraftd-10      [000] d..2. 1.002200: sched_switch: prev_comm=kraftd prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
`
	p, err := AnalyzeSyscallTrace(strings.NewReader(trace), []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if p.Threads != 1 || !near(p.OnCPU, 360) || !near(p.InSyscalls, 125) || !near(p.Span, 2200) {
		t.Fatalf("threads %d, on CPU %v (want 360µs), in syscalls %v (want 125µs), span %v (want 2.2ms)", p.Threads, p.OnCPU, p.InSyscalls, p.Span)
	}
	want := []struct {
		name  string
		calls int
		on    int
	}{{"fdatasync", 1, 100}, {"futex", 1, 15}, {"read", 1, 10}} // the nanosleep never returned
	if len(p.BySyscall) != len(want) {
		t.Fatalf("%d syscalls, want %d: %+v", len(p.BySyscall), len(want), p.BySyscall)
	}
	for i, w := range want {
		if s := p.BySyscall[i]; s.Name != w.name || s.Calls != w.calls || !near(s.OnCPU, w.on) {
			t.Errorf("syscall %d: %+v, want %s × %d, %dµs", i, s, w.name, w.calls, w.on)
		}
	}
	var out bytes.Buffer
	p.WriteTable(&out)
	if !strings.Contains(out.String(), "35% in system calls") || !strings.Contains(out.String(), "fdatasync") {
		t.Errorf("table:\n%s", out.String())
	}
	if _, err := AnalyzeSyscallTrace(strings.NewReader("  kraftd-10 [000] ..... 1.0: sched_switch: garbage\n"), []int{10}); err == nil {
		t.Error("a sched_switch without pids was accepted")
	}
}

// Each traced thread's time off the CPU is filed under the state it was
// switched out in (D, S or R) until it is switched back in; a wait still
// open at the end counts nowhere. ByProcess sums threads by process and
// names the thread with the most switches.
func TestAnalyzeSyscallTraceByState(t *testing.T) {
	const trace = `
          <idle>-0       [000] d..2. 2.000000: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=kraftd next_pid=10 next_prio=120
          kraftd-10      [000] d..2. 2.000100: sched_switch: prev_comm=kraftd prev_pid=10 prev_prio=120 prev_state=D ==> next_comm=kraftd next_pid=11 next_prio=120
          kraftd-11      [000] d..2. 2.000400: sched_switch: prev_comm=kraftd prev_pid=11 prev_prio=120 prev_state=S ==> next_comm=kraftd next_pid=10 next_prio=120
          kraftd-10      [000] d..2. 2.000500: sched_switch: prev_comm=kraftd prev_pid=10 prev_prio=120 prev_state=R+ ==> next_comm=kraftd next_pid=20 next_prio=120
          kraftd-20      [000] d..2. 2.000900: sched_switch: prev_comm=kraftd prev_pid=20 prev_prio=120 prev_state=S ==> next_comm=kraftd next_pid=10 next_prio=120
          kraftd-10      [000] d..2. 2.001000: sched_switch: prev_comm=kraftd prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=kraftd next_pid=11 next_prio=120
          kraftd-11      [000] d..2. 2.001100: sched_switch: prev_comm=kraftd prev_pid=11 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
`
	pidOf := map[int]int{10: 1, 11: 1, 20: 2}
	p, err := AnalyzeSyscallTrace(strings.NewReader(trace), []int{10, 11, 20})
	if err != nil {
		t.Fatal(err)
	}
	for tid, w := range map[int]struct{ on, d, s, r, outs int }{
		10: {300, 300, 0, 400, 3}, // its last sleep is still open at the end
		11: {400, 0, 600, 0, 2},
		20: {400, 0, 0, 0, 1},
	} {
		ts := p.ByThread[tid]
		if ts == nil || !near(ts.OnCPU, w.on) || !near(ts.OffD, w.d) || !near(ts.OffS, w.s) || !near(ts.OffR, w.r) || ts.SwitchOuts != w.outs {
			t.Errorf("thread %d: %+v, want on %dµs, D %dµs, S %dµs, R %dµs, %d switches", tid, ts, w.on, w.d, w.s, w.r, w.outs)
		}
	}
	procs := p.ByProcess(pidOf)
	if len(procs) != 2 {
		t.Fatalf("%d processes, want 2: %+v", len(procs), procs)
	}
	p1, p2 := procs[0], procs[1]
	if p1.PID != 1 || p1.Threads != 2 || !near(p1.Sched.OnCPU, 700) || !near(p1.Sched.OffD, 300) || !near(p1.Sched.OffS, 600) ||
		!near(p1.Sched.OffR, 400) || p1.Sched.SwitchOuts != 5 || p1.Busiest != 10 || p1.BusiestRun.SwitchOuts != 3 {
		t.Errorf("process 1: %+v", p1)
	}
	if p2.PID != 2 || p2.Threads != 1 || !near(p2.Sched.OnCPU, 400) || p2.Busiest != 20 {
		t.Errorf("process 2: %+v", p2)
	}
	var out bytes.Buffer
	p.WriteProcessTable(&out, pidOf)
	// 1.1 ms traced: process 1's 300 µs of D is 273 ms per second.
	if !strings.Contains(out.String(), "273ms") || !strings.Contains(out.String(), "thread 10: ") {
		t.Errorf("table:\n%s", out.String())
	}
}

// near reports whether got is want microseconds, give or take the
// rounding of the trace's float seconds.
func near(got time.Duration, want int) bool {
	d := got - time.Duration(want)*time.Microsecond
	return d > -time.Microsecond/10 && d < time.Microsecond/10
}
