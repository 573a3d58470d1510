package tuning

import (
	"log/slog"
)

// StartupCheck is what kraftd runs at start on the real host: see
// Host.StartupCheck.
func StartupCheck(opts Options, log *slog.Logger) StartupResult {
	return DefaultHost().StartupCheck(opts, log)
}

// StartupCheck raises this process's soft RLIMIT_NOFILE to its hard limit
// (no privilege needed; the Go runtime usually did it already, this makes it
// explicit and logged), then runs Check and logs each WARN once at warn
// level with its check, target, current and recommended values and reason.
// It never fails startup: a host that cannot be checked is logged and the
// node runs anyway.
func (h Host) StartupCheck(opts Options, log *slog.Logger) StartupResult {
	var res StartupResult
	lim := h.nofile()
	if soft, hard, err := lim.Get(); err != nil {
		res.Err = err
		log.Warn("cannot read RLIMIT_NOFILE", "err", err)
	} else {
		res.NofileSoftBefore, res.NofileSoftAfter, res.NofileHard = soft, soft, hard
		if soft < hard {
			if err := lim.Set(hard, hard); err != nil {
				res.Err = err
				log.Warn("cannot raise soft RLIMIT_NOFILE to the hard limit", "soft", soft, "hard", hard, "err", err)
			} else {
				res.NofileSoftAfter = hard
				log.Info("raised soft RLIMIT_NOFILE to the hard limit", "from", soft, "to", hard)
			}
		}
	}

	rep, err := h.Check(opts)
	if err != nil {
		res.Err = err
		log.Warn("host tuning checks skipped", "err", err)
		return res
	}
	res.Report = rep
	logged := map[string]bool{}
	for _, r := range rep.Warnings() {
		key := r.Check + "\x00" + r.Target
		if logged[key] {
			continue
		}
		logged[key] = true
		res.Warned = append(res.Warned, r)
		log.Warn("host tuning: "+r.Reason, "check", r.Check, "target", r.Target,
			"current", r.Current, "recommended", r.Recommended, "fix", "kraft-ctl tune apply")
	}
	return res
}
