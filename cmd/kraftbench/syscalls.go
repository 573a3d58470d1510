package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/kraftdb/kraft/perf"
)

const syscallsUsage = `usage: kraftbench syscalls [--duration 2s] [--match kraftd] [--tracefs /sys/kernel/tracing]
  where running processes' CPU goes by system call, and how long each
  process waits off the CPU (on the disk, asleep, preempted), from the
  kernel's trace events (root; it takes over tracefs while it runs; run it
  beside a load, e.g. a kraftbench throughput run)`

// runSyscalls traces the threads of the processes matching --match and
// prints where their CPU went (perf.AnalyzeSyscallTrace), then each
// process's time on and off the CPU (perf.SyscallProfile.ByProcess).
func runSyscalls(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kraftbench syscalls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, syscallsUsage); fs.PrintDefaults() }
	traceFor := fs.Duration("duration", 2*time.Second, "how long to trace (the kernel buffer holds a few seconds of a busy cluster)")
	match := fs.String("match", `kraftd.* --admin-port`, "regular expression on the processes' command lines")
	tracefs := fs.String("tracefs", "/sys/kernel/tracing", "where tracefs is mounted")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err == nil && (*traceFor <= 0 || *traceFor > time.Minute) {
		err = fmt.Errorf("--duration must be in (0, 1m], got %v", *traceFor)
	}
	var re *regexp.Regexp
	if err == nil {
		re, err = regexp.Compile(*match)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench syscalls:", err)
		return 2
	}
	pidOf, err := perf.ThreadsOf(re)
	tids := make([]int, 0, len(pidOf))
	for tid := range pidOf {
		tids = append(tids, tid)
	}
	if err == nil && len(tids) == 0 {
		err = fmt.Errorf("no running process matches %q", *match)
	}
	var trace []byte
	if err == nil {
		trace, err = perf.TraceSyscalls(*tracefs, tids, *traceFor)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench syscalls:", err)
		return 1
	}
	p, err := perf.AnalyzeSyscallTrace(bytes.NewReader(trace), tids)
	if err != nil {
		fmt.Fprintln(stderr, "kraftbench syscalls:", err)
		return 1
	}
	p.WriteTable(stdout)
	fmt.Fprintln(stdout)
	p.WriteProcessTable(stdout, pidOf)
	return 0
}
