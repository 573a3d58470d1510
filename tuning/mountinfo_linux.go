package tuning

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxMountinfoBytes bounds what is read of /proc/self/mountinfo; hosts with
// tens of thousands of mounts (Kubernetes nodes) stay far below it.
const maxMountinfoBytes = 64 << 20

// mount is one line of /proc/self/mountinfo, the fields this package uses.
type mount struct {
	majMin     string // "259:1"; "0:NN" for filesystems without a block device
	mountPoint string
	fsType     string
	source     string // "/dev/nvme0n1p1", "overlay", "tmpfs", ...
}

// parseMountinfo parses proc(5)'s mountinfo format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)  (8) (9)    (10)         (11)
//
// Field 7 is zero or more optional fields ended by "-". Lines that do not
// have this shape are an error: a wrong tree is better reported than guessed.
func parseMountinfo(data []byte) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 6 || sep < 0 || sep+2 >= len(fields) || !strings.Contains(fields[2], ":") {
			return nil, fmt.Errorf("kraft/tuning: mountinfo line %d malformed: %q", lineNo, line)
		}
		mounts = append(mounts, mount{
			majMin:     fields[2],
			mountPoint: unescapeMountinfo(fields[4]),
			fsType:     fields[sep+1],
			source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kraft/tuning: reading mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 space, \011 tab,
// \012 newline, \134 backslash).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// readMounts reads ProcRoot/self/mountinfo.
func (h Host) readMounts() ([]mount, error) {
	path := filepath.Join(h.procRoot(), "self", "mountinfo")
	data, err := readFileLimited(path, maxMountinfoBytes)
	if err != nil {
		return nil, fmt.Errorf("kraft/tuning: %w", err)
	}
	return parseMountinfo(data)
}

// mountFor returns the mount that holds dir: the longest mount point that is
// a prefix of dir's resolved path; among equal mount points the last one,
// which is the one on top.
func mountFor(mounts []mount, dir string) (mount, bool) {
	best, found := mount{}, false
	for _, m := range mounts {
		if !pathHasPrefix(dir, m.mountPoint) {
			continue
		}
		if !found || len(m.mountPoint) >= len(best.mountPoint) {
			best, found = m, true
		}
	}
	return best, found
}

func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// resolveDir makes dir absolute and resolves symlinks in its longest existing
// prefix, so a data dir reached through a symlink is matched against the
// mount it really lives on. A directory that does not exist yet (kraftd
// creates it) keeps its missing tail. existing is the deepest existing
// ancestor, the place where statfs can be asked.
func resolveDir(dir string) (resolved, existing string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("kraft/tuning: %w", err)
	}
	tail := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, tail), r, nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, "", fmt.Errorf("kraft/tuning: no existing ancestor of %s", abs)
		}
		tail = filepath.Join(filepath.Base(cur), tail)
		cur = parent
	}
}

// readFileLimited reads at most limit bytes; more is an error rather than a
// silent truncation.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
