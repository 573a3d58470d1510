package tuning

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// sysctl is one procfs value of the network checks.
type sysctl struct {
	name    string // "net.core.rmem_max"
	minimum int64  // for the value, or for the third field of a triple
	triple  bool   // tcp_rmem/tcp_wmem: "min default max"
	why     string
}

var networkSysctls = []sysctl{
	{"net.core.rmem_max", recommendedRmemMaxBytes, false, "caps SO_RCVBUF: a small cap throttles AppendEntries and snapshot streams"},
	{"net.core.wmem_max", recommendedWmemMaxBytes, false, "caps SO_SNDBUF: a small cap throttles AppendEntries and snapshot streams"},
	{"net.ipv4.tcp_rmem", recommendedTCPRmemMaxBytes, true, "autotuning ceiling of receive buffers; replication pipelines need a full window"},
	{"net.ipv4.tcp_wmem", recommendedTCPWmemMaxBytes, true, "autotuning ceiling of send buffers; replication pipelines need a full window"},
}

func (h Host) sysctlPath(name string) string {
	return filepath.Join(h.procRoot(), "sys", filepath.FromSlash(strings.ReplaceAll(name, ".", "/")))
}

func (h Host) checkNetwork() []Result {
	var out []Result
	for _, s := range networkSysctls {
		out = append(out, h.checkSysctl(s))
	}
	return append(out, h.checkFastOpen())
}

func (h Host) checkSysctl(s sysctl) Result {
	path := h.sysctlPath(s.name)
	res := Result{Check: s.name, Target: "host", Recommended: ">= " + strconv.FormatInt(s.minimum, 10) + " (" + formatBytes(uint64(s.minimum)) + ")"}
	if s.triple {
		res.Recommended = "max >= " + strconv.FormatInt(s.minimum, 10) + " (" + formatBytes(uint64(s.minimum)) + ")"
	}
	raw, err := readValue(path)
	if err != nil {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+path+": "+shortErr(err)
		return res
	}
	res.Current = strings.Join(strings.Fields(raw), " ")
	fields, err := parseInts(raw)
	if err != nil || (s.triple && len(fields) != 3) || (!s.triple && len(fields) != 1) {
		res.Status, res.Reason = StatusCannotRead, "unexpected format in "+path
		return res
	}
	got := fields[len(fields)-1]
	if got >= s.minimum {
		res.Status, res.Reason = StatusOK, s.why
		return res
	}
	res.Status, res.Reason = StatusWarn, s.why
	value := strconv.FormatInt(s.minimum, 10)
	if s.triple {
		value = fmt.Sprintf("%d %d %d", fields[0], fields[1], s.minimum)
	}
	res.fix = &fix{path: path, value: value}
	return res
}

func (h Host) checkFastOpen() Result {
	path := h.sysctlPath("net.ipv4.tcp_fastopen")
	res := Result{Check: "net.ipv4.tcp_fastopen", Target: "host", Recommended: strconv.Itoa(recommendedTCPFastOpen)}
	raw, err := readValue(path)
	if err != nil {
		res.Current, res.Status, res.Reason = "-", StatusCannotRead, "cannot read "+path+": "+shortErr(err)
		return res
	}
	res.Current = raw
	v, err := strconv.ParseInt(raw, 0, 64)
	if err != nil {
		res.Status, res.Reason = StatusCannotRead, "unexpected format in "+path
		return res
	}
	const why = "client and server fast open save a round trip when a peer reconnects after a partition"
	if v&recommendedTCPFastOpen == recommendedTCPFastOpen {
		res.Status, res.Reason = StatusOK, why
		return res
	}
	res.Status, res.Reason = StatusWarn, why
	res.fix = &fix{path: path, value: strconv.FormatInt(v|recommendedTCPFastOpen, 10)}
	return res
}

func parseInts(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
