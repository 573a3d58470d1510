package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ctl runs kraft-ctl in-process and returns its exit code and output.
func ctl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// wantUsageError asserts exit 2 with a one-line "Error: " first line.
func wantUsageError(t *testing.T, substr string, args ...string) {
	t.Helper()
	code, out, errs := ctl(args...)
	if code != exitUsage || out != "" || !strings.HasPrefix(errs, "Error: ") || !strings.Contains(errs, substr) {
		t.Errorf("kraft-ctl %q: exit %d, stdout %q, stderr %q; want exit 2 and an error containing %q", args, code, out, errs, substr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := ctl(args...)
		if code != exitOK || out != "kraft-ctl version dev\n" || errs != "" {
			t.Errorf("%q: %d %q %q", args, code, out, errs)
		}
	}
	wantUsageError(t, "no arguments", "version", "extra")
}

func TestUsageErrors(t *testing.T) {
	wantUsageError(t, "unknown command", "frobnicate")
	wantUsageError(t, "needs a subcommand", "tune")
	wantUsageError(t, "unknown tune subcommand", "tune", "fix")
	wantUsageError(t, "flag provided but not defined", "tune", "check", "--bogus")
	wantUsageError(t, "want table or json", "tune", "check", "-w", "yaml")
	wantUsageError(t, "unexpected argument", "tune", "check", "/var/lib/kraft")
	wantUsageError(t, "--data-dir must not be empty", "tune", "check", "--data-dir", "")
	wantUsageError(t, "--pid", "tune", "check", "--pid", "-3")
	wantUsageError(t, "invalid value", "tune", "check", "--pid", "abc")
	wantUsageError(t, "--sys-root /nonexistent-kraft: not a directory", "tune", "check", "--sys-root", "/nonexistent-kraft")
	wantUsageError(t, "--proc-root", "tune", "check", "--proc-root", "main.go") // a file
	wantUsageError(t, "flag provided but not defined: -dry-run", "tune", "check", "--dry-run")
	wantUsageError(t, "flag needs an argument", "tune", "apply", "--data-dir")

	code, _, errs := ctl()
	if code != exitUsage || !strings.Contains(errs, "Usage: kraft-ctl") {
		t.Errorf("no args: %d %q", code, errs)
	}
	for _, args := range [][]string{{"--help"}, {"tune", "--help"}, {"tune", "check", "-h"}, {"tune", "apply", "--help"}} {
		if code, out, _ := ctl(args...); code != exitOK || !strings.Contains(out, "Usage") {
			t.Errorf("%q: %d %q", args, code, out)
		}
	}
}

// fakeTreeArgs points kraft-ctl at one of the tuning package's trees.
func fakeTreeArgs(tree string) []string {
	root := filepath.Join("..", "..", "tuning", "testdata", tree)
	return []string{"--sys-root", filepath.Join(root, "sys"), "--proc-root", filepath.Join(root, "proc"),
		"--data-dir", "/var/lib/kraft/data", "--snapshot-dir", "/var/lib/kraft/snapshots"}
}

func TestTuneCheckTable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tuning is Linux-only")
	}
	code, out, errs := ctl(append([]string{"tune", "check"}, fakeTreeArgs("nvme-mq-deadline")...)...)
	if code != exitFailure || errs != "" {
		t.Fatalf("exit %d (want 1: WARNs), stderr %q", code, errs)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "CHECK") || !strings.Contains(lines[0], "RECOMMENDED") || !strings.Contains(lines[0], "REASON") {
		t.Errorf("header %q", lines[0])
	}
	wantRow := func(fields ...string) {
		t.Helper()
		for _, l := range lines {
			l = strings.Join(strings.Fields(l), " ")
			found := strings.HasPrefix(l, fields[0]+" ")
			for _, f := range fields[1:] {
				found = found && strings.Contains(l, " "+f)
			}
			if found {
				return
			}
		}
		t.Errorf("no row with %q in:\n%s", fields, out)
	}
	wantRow("disk.scheduler", "nvme0n1 (data,wal)", "mq-deadline", "none", "WARN")
	wantRow("disk.nr_requests", "nvme0n1 (data,wal)", "64", ">= 256", "WARN")
	wantRow("net.ipv4.tcp_fastopen", "host", "1", "3", "WARN")
	wantRow("fs.type", "ext4", "OK")
	wantRow("layout.wal-snapshots", "shared: nvme0n1", "WARN")
	if !strings.Contains(out, "WARN, 0 CANNOT-READ") {
		t.Errorf("summary missing:\n%s", out)
	}
}

func TestTuneCheckJSON(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tuning is Linux-only")
	}
	code, out, _ := ctl(append([]string{"tune", "check", "-w", "json"}, fakeTreeArgs("sata-ssd")...)...)
	var got struct {
		Results []struct{ Check, Target, Current, Recommended, Status, Reason string }
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	// The tree is tuned; only the real process's nofile and the real
	// filesystem's free space can WARN here.
	for _, r := range got.Results {
		if r.Status == "WARN" && !strings.HasPrefix(r.Check, "nofile") && r.Check != "fs.free" {
			t.Errorf("unexpected WARN %+v", r)
		}
		if r.Check == "disk.scheduler" && (r.Status != "OK" || !strings.Contains(r.Reason, "acceptable")) {
			t.Errorf("SATA SSD scheduler %+v", r)
		}
	}
	if (got.Summary["WARN"] > 0) != (code == exitFailure) || len(got.Results) == 0 {
		t.Errorf("exit %d with summary %v", code, got.Summary)
	}
}

func TestTuneApplyDryRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tuning is Linux-only")
	}
	// A dry run writes nothing, so it may point at the committed tree.
	code, out, errs := ctl(append([]string{"tune", "apply", "--dry-run"}, fakeTreeArgs("nvme-mq-deadline")...)...)
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"Dry run: nothing was written.", "disk.scheduler", "would-apply", "4096 131072 16777216", "manual"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = ctl(append([]string{"tune", "apply", "--dry-run", "-w", "json"}, fakeTreeArgs("nvme-mq-deadline")...)...)
	var got struct {
		DryRun  bool `json:"dry_run"`
		Changes []struct{ Check, Outcome string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK || !got.DryRun || len(got.Changes) < 8 {
		t.Errorf("json dry run: exit %d, %v, %+v", code, err, got)
	}
}

// TestBinary builds kraft-ctl and runs it as a process: exit codes and
// streams as a script sees them, and the -ldflags version.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "kraft-ctl")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exe := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String(), errb.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errb.String()
	}
	if code, out, _ := exe("version"); code != 0 || out != "kraft-ctl version v9.9.9-test\n" {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := exe("tune", "check", "--nope"); code != 2 || !strings.HasPrefix(errs, "Error: ") {
		t.Errorf("bad flag: %d %q", code, errs)
	}
	if runtime.GOOS == "linux" {
		code, out, _ := exe(append([]string{"tune", "check"}, fakeTreeArgs("nvme-mq-deadline")...)...)
		if code != 1 || !strings.Contains(out, "disk.scheduler") {
			t.Errorf("check on the NVMe tree: %d\n%s", code, out)
		}
	}
}
