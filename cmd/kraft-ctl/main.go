// Command kraft-ctl operates Kraft: today the host tuning checks
// (`kraft-ctl tune check|apply`) and `kraft-ctl version`; the cluster
// commands join as further files, one per command group, each adding an
// entry to commands.
//
// Conventions, as in etcdctl: `-w table|json` selects the output; exit 0 on
// success, 1 on failure (or, for checks, on a finding) with a one-line
// `Error: ...` on stderr, 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitFailure = 1 // an error, or a check that found something (tune check)
	exitUsage   = 2 // bad command, flag or argument
)

// command is one top-level subcommand. run gets the arguments after the
// command's name and returns the exit code; it writes only to the writers it
// is given, so tests drive it without a process.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		statusCommand(),
		nodesCommand(),
		termCommand(),
		healthCommand(),
		putCommand(),
		getCommand(),
		dumpStateCommand(),
		debugStateCommand(),
		replicationStatusCommand(),
		connectivityTestCommand(),
		addVoterCommand(),
		removeVoterCommand(),
		transferCommand(),
		waitSyncCommand(),
		snapshotCommand(),
		clearPendingConfigChangeCommand(),
		setLogLevelCommand(),
		verifyDataCommand(),
		latencyBreakdownCommand(),
		diskStatsCommand(),
		snapshotStatusCommand(),
		memoryStatsCommand(),
		configCommand(),
		pingPeersCommand(),
		traceRequestCommand(),
		clearPendingRequestsCommand(),
		stepDownCommand(),
		forceNewClusterCommand(),
		rejoinCommand(),
		{"tune", "check and apply host tuning (disk queues, sysctls, file limits)", runTune},
		{"version", "print the kraft-ctl version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printUsage(stdout)
		return exitOK
	case "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	return usageError(stderr, fmt.Sprintf("unknown command %q", args[0]), "kraft-ctl --help")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: kraft-ctl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-28s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'kraft-ctl <command> --help' for a command's flags.")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		return usageError(stderr, "version takes no arguments", "kraft-ctl --help")
	}
	fmt.Fprintf(stdout, "kraft-ctl version %s\n", version)
	return exitOK
}

// failure prints the one-line error of a failed command.
func failure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "Error: %s\n", oneLine(err.Error()))
	return exitFailure
}

// usageError prints the one-line error and where to find the usage.
func usageError(stderr io.Writer, msg, helpCmd string) int {
	fmt.Fprintf(stderr, "Error: %s\nRun '%s' for usage.\n", oneLine(msg), helpCmd)
	return exitUsage
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// newFlagSet returns a flag set that reports errors through usageError
// rather than printing its own.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args and rejects positional arguments. done is true
// when the caller must return code (help was printed, or a usage error).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, usage func(io.Writer)) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK, true
		}
		return usageError(stderr, err.Error(), "kraft-ctl "+fs.Name()+" --help"), true
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "kraft-ctl "+fs.Name()+" --help"), true
	}
	return exitOK, false
}

// outputFormat is the -w / --write-out flag every command shares.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }

func (o *outputFormat) Set(s string) error {
	switch s {
	case "table", "json":
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("output format %q: want table or json", s)
}

func addOutputFlag(fs *flag.FlagSet) *outputFormat {
	o := outputFormat("table")
	fs.Var(&o, "w", "output format: table or json")
	fs.Var(&o, "write-out", "output format: table or json (same as -w)")
	return &o
}
