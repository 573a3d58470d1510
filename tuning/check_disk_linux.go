package tuning

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// checkDisks reports each disk under the data and WAL directories once, with
// the roles it serves. Snapshots only matter for the layout check.
func (h Host) checkDisks(roles []role) []Result {
	var order []string
	users := map[string][]string{}
	var out []Result
	unresolved := map[string]int{} // resolved dir → index in out
	for _, ro := range roles {
		if ro.name == "snapshots" {
			continue
		}
		if ro.err != nil {
			if i, ok := unresolved[ro.resolved]; ok {
				// The WAL in the data dir: one row for both.
				out[i].Target = strings.Replace(out[i].Target, " ", ","+ro.name+" ", 1)
				continue
			}
			unresolved[ro.resolved] = len(out)
			out = append(out, Result{
				Check: "disk", Target: ro.name + " " + ro.dir, Current: "-", Recommended: "-",
				Status: StatusCannotRead, Reason: trimPrefix(ro.err),
			})
			continue
		}
		for _, d := range ro.disks {
			if _, ok := users[d]; !ok {
				order = append(order, d)
			}
			if !slices.Contains(users[d], ro.name) {
				users[d] = append(users[d], ro.name)
			}
		}
	}
	for _, dir := range order {
		d := readBlockDevice(dir)
		target := d.name + " (" + strings.Join(users[dir], ",") + ")"
		out = append(out, checkScheduler(d, target), checkNrRequests(d, target), checkWriteCache(d, target))
	}
	return out
}

func checkScheduler(d blockDevice, target string) Result {
	res := Result{Check: "disk.scheduler", Target: target, Current: d.scheduler}
	want, acceptable, why := schedulerAdvice(d.kind)
	res.Recommended = want
	if d.kind == kindSSD {
		res.Recommended = "none (mq-deadline acceptable)"
	}
	if d.kind == kindHDD {
		res.Recommended = "mq-deadline (or bfq)"
	}
	switch {
	case d.schedErr != nil:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+relQueue(d, "scheduler")+": "+shortErr(d.schedErr)
	case d.scheduler == "":
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "no active scheduler in "+relQueue(d, "scheduler")
	case d.kind == kindUnknown:
		res.Status, res.Reason = StatusCannotRead, "cannot tell NVMe, SSD or HDD apart: "+relQueue(d, "rotational")+" unreadable or not 0/1"
	case slices.Contains(acceptable, d.scheduler):
		res.Status, res.Reason = StatusOK, d.kind.String()+": "+why
		if d.kind == kindSSD && d.scheduler != "none" && d.scheduler != "noop" {
			res.Reason = d.kind.String() + ": mq-deadline is acceptable; none saves a little CPU per request"
		}
	default:
		res.Status = StatusWarn
		res.Reason = d.kind.String() + ": " + d.scheduler + " is not recommended; " + why
		if slices.Contains(d.schedulers, want) {
			res.fix = &fix{path: filepath.Join(d.sysPath, "queue", "scheduler"), value: want}
		} else {
			res.Reason += " (" + want + " not offered by this kernel)"
		}
	}
	return res
}

// schedulerAdvice returns the scheduler to set for a kind of disk, the ones
// that are fine as they are (including the legacy single-queue names), and
// why.
func schedulerAdvice(k deviceKind) (want string, acceptable []string, why string) {
	switch k {
	case kindNVMe:
		return "none", []string{"none", "noop"},
			"none sends fdatasync-heavy WAL writes straight to the device queues"
	case kindSSD:
		return "none", []string{"none", "noop", "mq-deadline", "deadline"},
			"no seek cost to hide, so no reordering is needed"
	case kindHDD:
		return "mq-deadline", []string{"mq-deadline", "deadline", "bfq"},
			"mq-deadline bounds how long a WAL write waits behind snapshot I/O"
	}
	return "none", nil, ""
}

func checkNrRequests(d blockDevice, target string) Result {
	res := Result{Check: "disk.nr_requests", Target: target, Recommended: ">= " + strconv.Itoa(recommendedNrRequests)}
	switch {
	case d.nrErr != nil:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+relQueue(d, "nr_requests")+": "+shortErr(d.nrErr)
	case d.nrRequests >= recommendedNrRequests:
		res.Current, res.Status, res.Reason = strconv.Itoa(d.nrRequests), StatusOK, "deep enough for group-commit bursts next to snapshot I/O"
	default:
		res.Current, res.Status = strconv.Itoa(d.nrRequests), StatusWarn
		res.Reason = "a shallow queue makes WAL writes wait behind snapshot and compaction I/O"
		res.fix = &fix{path: filepath.Join(d.sysPath, "queue", "nr_requests"), value: strconv.Itoa(recommendedNrRequests)}
	}
	return res
}

// checkWriteCache is informational: both answers are safe because the WAL
// syncs with fdatasync, which flushes a volatile cache. It tells the
// operator what a sync costs on this disk.
func checkWriteCache(d blockDevice, target string) Result {
	res := Result{Check: "disk.write_cache", Target: target, Current: d.writeCache, Recommended: "-", Status: StatusOK}
	switch {
	case d.wcErr != nil:
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+relQueue(d, "write_cache")+": "+shortErr(d.wcErr)
	case d.writeCache == "write back":
		res.Reason = "volatile cache: every fdatasync also flushes it (safe; costs a flush per sync)"
	case d.writeCache == "write through":
		res.Reason = "no volatile cache (or power-loss protected): fdatasync needs no flush"
	default:
		res.Status, res.Reason = StatusCannotRead, "unrecognised write cache type in "+relQueue(d, "write_cache")
		if res.Current == "" {
			res.Current = "(empty)"
		}
	}
	return res
}

func relQueue(d blockDevice, file string) string { return d.name + "/queue/" + file }
