package tuning

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// nofileTarget names whose RLIMIT_NOFILE the nofile rows describe.
func (h Host) nofileTarget() string {
	if h.Nofile == nil && h.NofilePID != 0 {
		return "pid " + strconv.Itoa(h.NofilePID)
	}
	return "process"
}

func (h Host) checkNofile() []Result {
	target := h.nofileTarget()
	want := ">= " + strconv.Itoa(RecommendedNofile)
	soft, hard, err := h.nofile().Get()
	if err != nil {
		r := Result{Target: target, Current: "-", Recommended: want, Status: StatusCannotRead, Reason: trimPrefix(err)}
		rs, rh := r, r
		rs.Check, rh.Check = "nofile.soft", "nofile.hard"
		return []Result{rs, rh}
	}
	f := &fix{nofile: &nofileFix{fromSoft: soft, fromHard: hard, soft: max(soft, RecommendedNofile), hard: max(hard, RecommendedNofile)}}
	mk := func(name string, v uint64, why string) Result {
		r := Result{Check: name, Target: target, Current: formatRlimit(v), Recommended: want, Status: StatusOK, Reason: why}
		if v < RecommendedNofile {
			r.Status, r.fix = StatusWarn, f
		}
		return r
	}
	return []Result{
		mk("nofile.soft", soft, "each peer and client connection, WAL segment and snapshot holds a descriptor"),
		mk("nofile.hard", hard, "the ceiling the soft limit can be raised to without root (systemd: LimitNOFILE)"),
	}
}

func formatRlimit(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
