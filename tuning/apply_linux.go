package tuning

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Apply brings every WARN that has a fix to its recommended value and
// reports one Change per item: applied, would-apply (dryRun), failed (with
// the reason, e.g. not root or a read-only /sys in a container), or manual
// (a WARN no write can fix: filesystem, free space, layout). A failed item
// never stops the others.
//
// Schedulers go first: switching a disk's scheduler resets its nr_requests,
// so the checks are read again before the remaining items are applied.
// Values are only raised; one already above its recommendation is left
// alone. Sysctl and sysfs writes last until reboot: persist them with
// sysctl.d and a udev rule (docs/tuning.md).
func (h Host) Apply(opts Options, dryRun bool) ([]Change, error) {
	rep, err := h.Check(opts)
	if err != nil {
		return nil, err
	}
	if dryRun {
		var out []Change
		var nofilePlanned *fix
		for _, r := range rep.Warnings() {
			if r.fix != nil && r.fix.nofile != nil {
				if r.fix == nofilePlanned {
					continue // soft and hard share one change
				}
				nofilePlanned = r.fix
			}
			out = append(out, planned(r))
		}
		return out, nil
	}

	var out []Change
	schedulersApplied := false
	for _, r := range rep.Warnings() {
		if r.Check == "disk.scheduler" && r.fix != nil {
			c := h.applyFile(r)
			schedulersApplied = schedulersApplied || c.Outcome == OutcomeApplied
			out = append(out, c)
		}
	}
	if schedulersApplied {
		if rep, err = h.Check(opts); err != nil {
			return out, err
		}
	}
	var nofileDone *fix
	for _, r := range rep.Warnings() {
		switch {
		case r.Check == "disk.scheduler" && r.fix != nil:
			// Done in the first pass; a scheduler still WARN after it
			// is reported there.
		case r.fix == nil:
			out = append(out, planned(r))
		case r.fix.nofile != nil:
			if r.fix != nofileDone {
				nofileDone = r.fix
				out = append(out, h.applyNofile(r, r.fix.nofile)...)
			}
		default:
			out = append(out, h.applyFile(r))
		}
	}
	return out, nil
}

// planned is what a dry run reports for a WARN, and what Apply reports for a
// WARN it cannot fix.
func planned(r Result) Change {
	c := Change{Check: r.Check, Target: r.Target, From: r.Current, To: r.Recommended, Outcome: OutcomeManual, Reason: r.Reason}
	if r.fix == nil {
		return c
	}
	c.Outcome, c.Reason = OutcomeDryRun, ""
	if r.fix.nofile != nil {
		n := r.fix.nofile
		c.Check, c.Path = "nofile", "RLIMIT_NOFILE"
		c.From, c.To = nofilePair(n.fromSoft, n.fromHard), nofilePair(n.soft, n.hard)
		return c
	}
	c.Path, c.To = r.fix.path, r.fix.value
	return c
}

func (h Host) applyFile(r Result) Change {
	c := Change{Check: r.Check, Target: r.Target, Path: r.fix.path, From: r.Current, To: r.fix.value, Outcome: OutcomeApplied}
	if err := h.write(r.fix.path, r.fix.value); err != nil {
		c.Outcome = OutcomeFailed
		c.Reason = explainWriteError(err, h.euid())
		if r.Check == "disk.nr_requests" && errors.Is(err, unix.EINVAL) {
			c.Reason += ": the device's hardware queue may be shallower than " + strconv.Itoa(recommendedNrRequests)
		}
	}
	return c
}

// applyNofile raises soft and hard together. Raising hard needs root
// (CAP_SYS_RESOURCE); when that is refused, the soft limit is still raised
// as far as the hard limit allows, as a second change.
func (h Host) applyNofile(r Result, n *nofileFix) []Change {
	lim := h.nofile()
	c := Change{Check: "nofile", Target: r.Target, Path: "RLIMIT_NOFILE", From: nofilePair(n.fromSoft, n.fromHard),
		To: nofilePair(n.soft, n.hard), Outcome: OutcomeApplied}
	err := lim.Set(n.soft, n.hard)
	if err == nil {
		return []Change{c}
	}
	c.Outcome = OutcomeFailed
	c.Reason = explainWriteError(err, h.euid())
	if n.hard > n.fromHard {
		c.Reason = "raising the hard limit needs root (CAP_SYS_RESOURCE): " + c.Reason + "; set LimitNOFILE=" + strconv.Itoa(RecommendedNofile) + " in the systemd unit"
	}
	out := []Change{c}
	if n.fromSoft < n.fromHard {
		s := Change{Check: "nofile.soft", Target: r.Target, Path: "RLIMIT_NOFILE", From: nofilePair(n.fromSoft, n.fromHard),
			To: nofilePair(n.fromHard, n.fromHard), Outcome: OutcomeApplied, Reason: "raised to the hard limit only"}
		if err := lim.Set(n.fromHard, n.fromHard); err != nil {
			s.Outcome, s.Reason = OutcomeFailed, explainWriteError(err, h.euid())
		}
		out = append(out, s)
	}
	return out
}

func nofilePair(soft, hard uint64) string {
	return fmt.Sprintf("soft=%s hard=%s", formatRlimit(soft), formatRlimit(hard))
}
