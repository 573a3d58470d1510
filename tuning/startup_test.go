//go:build linux

package tuning

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestStartupCheck(t *testing.T) {
	nofile := &fakeNofile{soft: 1024, hard: 4096}
	h := fakeHost(testTree("nvme-mq-deadline"), nofile)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))

	res := h.StartupCheck(kraftOpts(), log)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.NofileSoftBefore != 1024 || res.NofileSoftAfter != 4096 || nofile.soft != 4096 || nofile.hard != 4096 {
		t.Errorf("soft limit not raised to hard: %+v, limiter %+v", res, nofile)
	}
	// Each WARN is logged exactly once, after the raise: soft 4096 is still
	// under the floor, so nofile.soft is among them.
	if len(res.Warned) != len(res.Report.Warnings()) || len(res.Warned) != 12 {
		t.Errorf("warned %d of %d:\n%s", len(res.Warned), len(res.Report.Warnings()), dump(res.Report))
	}
	out := buf.String()
	for _, r := range res.Warned {
		if n := strings.Count(out, "check="+r.Check+" "); n != 1 {
			t.Errorf("%s logged %d times:\n%s", r.Check, n, out)
		}
	}
	if strings.Count(out, "level=WARN") != 12 || !strings.Contains(out, "raised soft RLIMIT_NOFILE") {
		t.Errorf("log:\n%s", out)
	}
}

func TestStartupCheckKeepsGoing(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))

	// Soft already at hard: nothing to raise, nothing logged about it.
	h := fakeHost(testTree("sata-ssd"), &fakeNofile{soft: 65536, hard: 65536})
	res := h.StartupCheck(kraftOpts(), log)
	if res.Err != nil || len(res.Warned) != 0 || buf.Len() != 0 {
		t.Errorf("tuned host: %+v, log %q", res, buf.String())
	}

	// Unreadable limit and no data dir: logged, returned, no panic.
	buf.Reset()
	h = fakeHost(testTree("sata-ssd"), &fakeNofile{getErr: errString("kraft/tuning: no")})
	res = h.StartupCheck(Options{}, log)
	if res.Err == nil || !strings.Contains(buf.String(), "host tuning checks skipped") {
		t.Errorf("bad options: %+v, log %q", res, buf.String())
	}

	// A refused raise is logged and the checks still run.
	buf.Reset()
	h = fakeHost(testTree("sata-ssd"), &refusingNofile{soft: 1024, hard: 65536})
	res = h.StartupCheck(kraftOpts(), log)
	if res.Err == nil || res.NofileSoftAfter != 1024 || len(res.Report.Results) == 0 ||
		!strings.Contains(buf.String(), "cannot raise soft RLIMIT_NOFILE") {
		t.Errorf("refused raise: %+v, log %q", res, buf.String())
	}
}

type refusingNofile struct{ soft, hard uint64 }

func (r *refusingNofile) Get() (uint64, uint64, error) { return r.soft, r.hard, nil }
func (r *refusingNofile) Set(uint64, uint64) error     { return errString("kraft/tuning: refused") }
