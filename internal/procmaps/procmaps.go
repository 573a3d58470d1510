// Package procmaps reads how much of this process's file mappings is
// resident, from /proc/self/smaps (Linux). Tests use it to see which pages
// reading through a mapping left mapped.
package procmaps

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Resident returns the bytes of the mappings of files whose path starts
// with prefix that are mapped into this process now (smaps' Rss).
func Resident(prefix string) (int64, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	return residentIn(b, prefix)
}

// residentIn sums the Rss of smaps' entries for files under prefix.
func residentIn(smaps []byte, prefix string) (int64, error) {
	var total int64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if isHeader(fields[0]) {
			// address perms offset dev inode [path]
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], prefix)
			continue
		}
		if !in || fields[0] != "Rss:" {
			continue
		}
		if len(fields) != 3 || fields[2] != "kB" {
			return 0, fmt.Errorf("smaps: unexpected line %q", line)
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("smaps: %q: %w", line, err)
		}
		total += kb << 10
	}
	return total, sc.Err()
}

// isHeader reports whether f is an address range, lo-hi in hex, which
// starts each mapping's entry.
func isHeader(f string) bool {
	lo, hi, ok := strings.Cut(f, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(lo, 16, 64)
	_, err2 := strconv.ParseUint(hi, 16, 64)
	return err1 == nil && err2 == nil
}
