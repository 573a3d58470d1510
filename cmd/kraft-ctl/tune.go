package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/kraftdb/kraft/tuning"
)

func printTuneUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  kraft-ctl tune check [flags]   read the host and report each setting (exit 1 when any WARN)
  kraft-ctl tune apply [flags]   write the recommended values (--dry-run: only print them)

Flags:
  --data-dir DIR       data directory (default `+tuning.DefaultDataDir+`)
  --wal-dir DIR        WAL directory (default: the data directory)
  --snapshot-dir DIR   snapshot directory (default `+tuning.DefaultSnapshotDir+`)
  --pid PID            check/raise RLIMIT_NOFILE of this process, e.g. kraftd (default: kraft-ctl itself)
  --dry-run            apply: print what would change, write nothing
  -w, --write-out FMT  table or json (default table)
  --sys-root DIR       where sysfs is mounted (default /sys; e.g. /host/sys in a container)
  --proc-root DIR      where procfs is mounted (default /proc)
`)
}

func runTune(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "tune needs a subcommand: check or apply", "kraft-ctl tune --help")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printTuneUsage(stdout)
		return exitOK
	case "check":
		return runTuneCmd("tune check", false, args[1:], stdout, stderr)
	case "apply":
		return runTuneCmd("tune apply", true, args[1:], stdout, stderr)
	}
	return usageError(stderr, fmt.Sprintf("unknown tune subcommand %q: want check or apply", args[0]), "kraft-ctl tune --help")
}

// tuneFlags are the flags check and apply share.
type tuneFlags struct {
	opts     tuning.Options
	sysRoot  string
	procRoot string
	pid      int
	dryRun   bool
	out      *outputFormat
	set      []string // flags given on the command line
}

func (f *tuneFlags) register(fs *flag.FlagSet, apply bool) {
	def := tuning.DefaultOptions()
	fs.StringVar(&f.opts.DataDir, "data-dir", def.DataDir, "data directory")
	fs.StringVar(&f.opts.WALDir, "wal-dir", "", "WAL directory (default: the data directory)")
	fs.StringVar(&f.opts.SnapshotDir, "snapshot-dir", def.SnapshotDir, "snapshot directory")
	fs.StringVar(&f.sysRoot, "sys-root", "/sys", "where sysfs is mounted")
	fs.StringVar(&f.procRoot, "proc-root", "/proc", "where procfs is mounted")
	fs.IntVar(&f.pid, "pid", 0, "process whose RLIMIT_NOFILE is checked (0: kraft-ctl)")
	if apply {
		fs.BoolVar(&f.dryRun, "dry-run", false, "print what would change, write nothing")
	}
	f.out = addOutputFlag(fs)
}

// validate checks what flag parsing cannot; an error is a usage error.
func (f *tuneFlags) validate() error {
	if f.opts.DataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	if f.pid < 0 {
		return fmt.Errorf("--pid %d: must be a process ID", f.pid)
	}
	// Only roots given explicitly are checked here: a missing default /sys
	// is reported by the checks themselves (CANNOT-READ, or "not
	// supported on this OS").
	for _, root := range []struct{ flag, dir string }{{"sys-root", f.sysRoot}, {"proc-root", f.procRoot}} {
		if !slices.Contains(f.set, root.flag) {
			continue
		}
		st, err := os.Stat(root.dir)
		if err != nil || !st.IsDir() {
			return fmt.Errorf("--%s %s: not a directory", root.flag, root.dir)
		}
	}
	return nil
}

func (f *tuneFlags) host() tuning.Host {
	h := tuning.DefaultHost()
	h.SysRoot, h.ProcRoot, h.NofilePID = f.sysRoot, f.procRoot, f.pid
	return h
}

func runTuneCmd(name string, apply bool, args []string, stdout, stderr io.Writer) int {
	var f tuneFlags
	fs := newFlagSet(name)
	f.register(fs, apply)
	if code, done := parseFlags(fs, args, stdout, stderr, printTuneUsage); done {
		return code
	}
	fs.Visit(func(fl *flag.Flag) { f.set = append(f.set, fl.Name) })
	if err := f.validate(); err != nil {
		return usageError(stderr, err.Error(), "kraft-ctl tune --help")
	}
	if apply {
		return tuneApply(f, stdout, stderr)
	}
	return tuneCheck(f, stdout, stderr)
}

func tuneCheck(f tuneFlags, stdout, stderr io.Writer) int {
	rep, err := f.host().Check(f.opts)
	if err != nil {
		return failure(stderr, err)
	}
	var werr error
	if *f.out == "json" {
		werr = writeJSON(stdout, checkJSON{Results: rep.Results, Summary: summarize(rep)})
	} else {
		werr = writeCheckTable(stdout, rep)
	}
	if werr != nil {
		return failure(stderr, werr)
	}
	if rep.HasWarnings() {
		return exitFailure
	}
	return exitOK
}

type checkJSON struct {
	Results []tuning.Result `json:"results"`
	Summary map[string]int  `json:"summary"`
}

func summarize(rep tuning.Report) map[string]int {
	s := map[string]int{string(tuning.StatusOK): 0, string(tuning.StatusWarn): 0, string(tuning.StatusCannotRead): 0}
	for _, r := range rep.Results {
		s[string(r.Status)]++
	}
	return s
}

func writeCheckTable(w io.Writer, rep tuning.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tCURRENT\tRECOMMENDED\tSTATUS\tREASON")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Check, r.Target, r.Current, r.Recommended, r.Status, r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := summarize(rep)
	_, err := fmt.Fprintf(w, "\n%d OK, %d WARN, %d CANNOT-READ\n", s["OK"], s["WARN"], s["CANNOT-READ"])
	return err
}

func tuneApply(f tuneFlags, stdout, stderr io.Writer) int {
	changes, err := f.host().Apply(f.opts, f.dryRun)
	if err != nil {
		return failure(stderr, err)
	}
	failed := 0
	for _, c := range changes {
		if c.Outcome == tuning.OutcomeFailed {
			failed++
		}
	}
	var werr error
	if *f.out == "json" {
		werr = writeJSON(stdout, applyJSON{DryRun: f.dryRun, Changes: changes})
	} else {
		werr = writeApplyTable(stdout, f, changes)
	}
	if werr != nil {
		return failure(stderr, werr)
	}
	if failed > 0 {
		return failure(stderr, fmt.Errorf("%d of %d changes failed (see the reasons above)", failed, len(changes)))
	}
	return exitOK
}

type applyJSON struct {
	DryRun  bool            `json:"dry_run"`
	Changes []tuning.Change `json:"changes"`
}

func writeApplyTable(w io.Writer, f tuneFlags, changes []tuning.Change) error {
	if f.dryRun {
		fmt.Fprintln(w, "Dry run: nothing was written.")
	}
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "Nothing to change: every check is OK or cannot be read.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tFROM\tTO\tOUTCOME\tDETAIL")
	for _, c := range changes {
		// DETAIL: where the value goes, and why it could not when it failed.
		detail := c.Path
		if c.Reason != "" {
			detail = c.Reason
			if c.Outcome == tuning.OutcomeFailed && c.Path != "" {
				detail = c.Path + ": " + c.Reason
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Check, c.Target, c.From, c.To, c.Outcome, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, c := range changes {
		if c.Check == "nofile" && f.pid == 0 {
			fmt.Fprintln(w, "Note: RLIMIT_NOFILE changes apply to kraft-ctl itself; use --pid $(pidof kraftd), or LimitNOFILE=65536 in the unit.")
			break
		}
	}
	_, err := fmt.Fprintln(w, "Sysfs and sysctl values last until reboot: persist them as docs/tuning.md shows.")
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
