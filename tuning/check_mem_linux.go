package tuning

import (
	"path/filepath"
	"slices"
	"strings"
)

// thpDir is where the kernel's transparent huge page switches live, under
// SysRoot.
const thpDir = "kernel/mm/transparent_hugepage"

// Transparent huge pages. kraftd keeps its hot memory on the Go heap: the
// log cache (up to --log-cache-size, 256 MiB by default), the KV table,
// sessions and network buffers. The Go runtime does not madvise its heap
// (it stopped doing so in Go 1.21.1), so with the kernel's mode "madvise",
// common on distributions and cloud images, that heap stays on 4 KiB
// pages: a page fault for every 4 KiB it grows into and a TLB entry for
// every 4 KiB it touches. With "always" the same heap faults in and maps
// 2 MiB at a time. Measured on the 2-core test VM (perf/results/speedups.md
// item 27): 1,024 clients wrote 1.6-1.9x as many 128 B entries per second,
// at 0.6x the kraftd CPU per write. "always" is safe for a dedicated
// database host only with defrag not "always": a page fault outside
// MADV_HUGEPAGE regions then takes a huge page when one is free and falls
// back to 4 KiB pages at once, never stalling on direct compaction.
const (
	recommendedTHPEnabled = "always"
	recommendedTHPDefrag  = "madvise"
)

// thpDefragOK are the defrag modes that never make an ordinary page fault
// wait for compaction.
var thpDefragOK = []string{"defer", "defer+madvise", "madvise", "never"}

func (h Host) checkMemory() []Result {
	dir := filepath.Join(h.sysRoot(), filepath.FromSlash(thpDir))
	return []Result{h.checkTHPEnabled(filepath.Join(dir, "enabled")), h.checkTHPDefrag(filepath.Join(dir, "defrag"))}
}

func (h Host) checkTHPEnabled(path string) Result {
	res := Result{Check: "mem.thp.enabled", Target: "host", Recommended: recommendedTHPEnabled}
	active, offered, ok := readBracketed(path, &res)
	if !ok {
		return res
	}
	const why = "kraftd's heap (log cache, KV table, buffers) on 2 MiB pages: far fewer page faults and TLB misses; " +
		"the Go runtime does not madvise its heap, so 'madvise' leaves it on 4 KiB pages (measured 1.6-1.9x writes/s with 'always', docs/tuning.md)"
	if active == recommendedTHPEnabled {
		res.Status, res.Reason = StatusOK, why
		return res
	}
	res.Status, res.Reason = StatusWarn, why
	res.fix = choiceFix(path, recommendedTHPEnabled, offered)
	return res
}

func (h Host) checkTHPDefrag(path string) Result {
	res := Result{Check: "mem.thp.defrag", Target: "host", Recommended: "not always: " + strings.Join(thpDefragOK, ", ")}
	active, offered, ok := readBracketed(path, &res)
	if !ok {
		return res
	}
	const why = "with 'always' an ordinary page fault may stall on memory compaction (latency spikes); " +
		"the others take a huge page when one is free and fall back to 4 KiB pages at once"
	if slices.Contains(thpDefragOK, active) {
		res.Status, res.Reason = StatusOK, why
		return res
	}
	res.Status, res.Reason = StatusWarn, why
	res.fix = choiceFix(path, recommendedTHPDefrag, offered)
	return res
}

// choiceFix writes want, unless this kernel does not offer it: then the
// WARN stays for the operator (Apply reports it as manual).
func choiceFix(path, want string, offered []string) *fix {
	if !slices.Contains(offered, want) {
		return nil
	}
	return &fix{path: path, value: want}
}

// readBracketed reads a sysfs choice like "always [madvise] never" and
// returns the bracketed mode and every mode offered, or fills res as
// CANNOT-READ: a kernel built without transparent huge pages has no such
// file.
func readBracketed(path string, res *Result) (active string, offered []string, ok bool) {
	raw, err := readValue(path)
	if err != nil {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+path+": "+shortErr(err)
		return "", nil, false
	}
	active, offered = parseScheduler(raw)
	if active == "" || !strings.Contains(raw, "["+active+"]") {
		res.Current, res.Status, res.Reason = raw, StatusCannotRead, "unexpected format in "+path+" (want the active mode in brackets)"
		if raw == "" {
			res.Current = "-"
		}
		return "", nil, false
	}
	res.Current = active
	return active, offered, true
}
