package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
)

// segment is one segment file and what is known about its records.
type segment struct {
	first   uint64 // index of its first record (from its name)
	path    string
	f       File
	m       []byte   // read-only mapping of the whole file
	offsets []uint32 // start of each record; record k has index first+k
	end     int64    // end of the last record: where the next one goes
	dirty   bool     // written since the writer last captured it for sync
	// hasPrior: a recycled segment, with a prior-content file (prior.go)
	// that recovery reads; its checksums are not kept in memory (1 MiB
	// per 64 MiB segment).
	hasPrior bool
	// recycle: retired by compaction, so its records all precede any the
	// log will hold again: it may be written again (Options.RecycleSegments).
	recycle bool

	// sumMu guards the sealed segment's cached sector checksums (sums.go)
	// and the file against the summer goroutine, which reads it under
	// sumMu: close sets f and m to nil under it. sumGen counts changes
	// that make checksums taken before them stale; sumsFile names the
	// cache file of the current ones ("" if none).
	sumMu    sync.Mutex
	sumGen   uint64
	sumsFile string
	// sumsKept: sumsFile came from an earlier run's Close (sums.go), so
	// a sample of it is checked against the segment before it is used.
	sumsKept bool
}

// padSector writes zeros from the end of the data to the end of its
// sector in a recycled segment on a file that does not pad its writes
// itself (pagePadder): recovery reads the rest of a sector that holds data
// as unwritten only if it is zeros (prior content is checked per whole
// sector).
func (s *segment) padSector() error {
	if !s.hasPrior || s.end%sectorBytes == 0 {
		return nil
	}
	if _, pads := s.f.(pagePadder); pads {
		return nil
	}
	n := sectorBytes - s.end%sectorBytes
	n = min(n, int64(len(s.m))-s.end)
	_, err := s.f.WriteAt(zeroChunk[:n], s.end)
	return err
}

func (s *segment) count() uint64 { return uint64(len(s.offsets)) }

// last is the index of the last record (first-1 when empty).
func (s *segment) last() uint64 { return s.first + s.count() - 1 }

// recordEnd is the end offset of record k.
func (s *segment) recordEnd(k int) int64 {
	if k+1 < len(s.offsets) {
		return int64(s.offsets[k+1])
	}
	return s.end
}

func (s *segment) termAt(k int) uint64 {
	o := s.offsets[k]
	return leUint64(s.m[o+16:])
}

func leUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func (s *segment) close() error {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	s.sumGen++
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f, s.m = nil, nil
	return err
}

// Problem is one finding of Verify.
type Problem struct {
	File   string
	Offset int64
	Detail string
	// Torn: a torn write at the tail of the newest segment, which Open
	// cuts off; not corruption.
	Torn bool
}

// dirScan is what reading a data directory found.
type dirScan struct {
	segs        []*segment
	problems    []Problem // corruption only
	torn        *Problem
	tornEnd     int64 // end of the junk the torn tail left
	stateExists bool
	stateSeq    uint64
	hs          HardState
	start       logStart
	tmpFiles    []string
	keptSums    map[string]string // segment path -> the .sums file an earlier Close kept for it (sums.go)
}

func (d *dirScan) addProblem(file string, off int64, detail string) {
	d.problems = append(d.problems, Problem{File: file, Offset: off, Detail: detail})
}

func (d *dirScan) closeAll() {
	for _, s := range d.segs {
		_ = s.close()
	}
}

// scanDir opens, maps and verifies every segment in dir. It modifies
// nothing. With rw the segment files are opened for writing.
func scanDir(fsys FS, dir string, rw bool) (*dirScan, error) {
	names, err := fsys.List(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, errorf("list %s: %w", dir, err)
	}
	d := &dirScan{}
	statePath := path.Join(dir, stateFileName)
	var serr error
	d.stateSeq, d.hs, d.start, d.stateExists, serr = readStateFile(fsys, statePath)
	var ce *CorruptionError
	if errors.As(serr, &ce) {
		d.addProblem(ce.File, ce.Offset, ce.Detail)
	} else if serr != nil {
		return nil, serr
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		if seg, ok := strings.CutSuffix(n, keptSumsSuffix); ok {
			if d.keptSums == nil {
				d.keptSums = make(map[string]string)
			}
			d.keptSums[path.Join(dir, seg)] = path.Join(dir, n)
			continue
		}
		if isTempName(n) {
			d.tmpFiles = append(d.tmpFiles, path.Join(dir, n))
			continue
		}
		if seg, ok := strings.CutSuffix(n, priorSuffix); ok {
			if _, isSeg := parseSegmentName(seg); isSeg && !have[seg] {
				// A segment removed before its prior-content file.
				d.tmpFiles = append(d.tmpFiles, path.Join(dir, n))
			}
			continue
		}
		first, ok := parseSegmentName(n)
		if !ok {
			continue
		}
		if first == 0 {
			d.addProblem(path.Join(dir, n), 0, "segment named for index 0")
			continue
		}
		sg := &segment{first: first, path: path.Join(dir, n)}
		sg.hasPrior = have[n+priorSuffix]
		d.segs = append(d.segs, sg)
	}
	var prevTerm uint64
	for i, s := range d.segs {
		if err := d.scanOne(fsys, s, i, prevTerm, rw); err != nil {
			d.closeAll()
			return nil, err
		}
		if s.count() > 0 {
			prevTerm = s.termAt(len(s.offsets) - 1)
		}
	}
	return d, nil
}

func (d *dirScan) scanOne(fsys FS, s *segment, i int, prevTerm uint64, rw bool) error {
	var err error
	if rw {
		s.f, err = fsys.OpenRW(s.path)
		if p, ok := s.f.(pagePadder); ok && err == nil {
			p.padWritesToPage()
		}
	} else {
		s.f, err = fsys.OpenRO(s.path)
	}
	if err != nil {
		return errorf("open segment: %w", err)
	}
	size, err := s.f.Size()
	if err != nil {
		return errorf("stat segment: %w", err)
	}
	newest := i == len(d.segs)-1
	if newest && size == 0 {
		return nil // cut to nothing: no records, removed by Open
	}
	if size == 0 || size > MaxSegmentSizeBytes {
		// A segment cut short is fine (its records are verified); an
		// empty one before the newest has lost its records.
		d.addProblem(s.path, 0, fmt.Sprintf("segment size %d bytes outside [1, %d]", size, MaxSegmentSizeBytes))
		return nil
	}
	if s.m, err = s.f.Map(); err != nil {
		return errorf("map segment: %w", err)
	}
	if i > 0 {
		prev := d.segs[i-1]
		switch {
		case prev.m == nil:
			// Already reported.
		case prev.count() == 0:
			d.addProblem(prev.path, 0, "empty segment before the newest")
		case s.first != prev.last()+1:
			d.addProblem(s.path, 0, fmt.Sprintf("segment starts at index %d but the previous one ends at %d", s.first, prev.last()))
		}
	}
	var prior []uint64
	if s.hasPrior {
		prior, err = readPrior(fsys, priorName(s.path), size)
		var ce *CorruptionError
		if errors.As(err, &ce) {
			d.addProblem(ce.File, ce.Offset, ce.Detail)
			return nil
		}
		if err != nil {
			return err
		}
		if p, ok := s.f.(priorPadder); ok && rw {
			p.padOverPrior()
		}
	}
	sc := scanSegment(s.m, s.first, prevTerm, newest, prior)
	s.offsets, s.end = sc.offsets, sc.end
	if sc.bad {
		d.addProblem(s.path, sc.badOffset, sc.badDetail)
	}
	if sc.junkEnd > sc.end {
		d.torn = &Problem{File: s.path, Offset: sc.end, Torn: true,
			Detail: fmt.Sprintf("torn write: %d bytes after the last valid record", sc.junkEnd-sc.end)}
		d.tornEnd = sc.junkEnd
	}
	return nil
}

// isTempName reports whether n is a file that Open does not read as part
// of the log: a segment being prepared and its prior-content file, a
// sealed segment's cached checksums (Open removes them), or a retired
// segment kept for recycling (Open takes it back into the pool, or removes
// it).
func isTempName(n string) bool {
	return (strings.HasPrefix(n, "prep-") && (strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, priorSuffix))) ||
		(strings.HasPrefix(n, sumsPrefix) && strings.HasSuffix(n, ".tmp")) ||
		(strings.HasPrefix(n, recyclePrefix) && strings.HasSuffix(n, segmentSuffix))
}

// logRange is the first and last index the segments hold (0, 0 if none).
func (d *dirScan) logRange() (first, last uint64) {
	for _, s := range d.segs {
		if s.count() == 0 {
			continue
		}
		if first == 0 {
			first = s.first
		}
		last = s.last()
	}
	return first, last
}

// termOf returns the term of index i if a segment holds it.
func (d *dirScan) termOf(i uint64) (uint64, bool) {
	for _, s := range d.segs {
		if s.count() > 0 && i >= s.first && i <= s.last() {
			return s.termAt(int(i - s.first)), true
		}
	}
	return 0, false
}

// checkStart validates the log against the compaction point and reports
// whether the whole log is obsolete (it ends before the point, or a
// snapshot install that replaced it was interrupted).
func (d *dirScan) checkStart(dir string) (discard bool) {
	first, last := d.logRange()
	if first == 0 {
		return false
	}
	if !d.stateExists {
		d.addProblem(path.Join(dir, stateFileName), 0, "hard state file missing while segments exist")
		return false
	}
	if last < d.start.index {
		return true
	}
	if first > d.start.index+1 {
		d.addProblem(d.segs[0].path, 0, fmt.Sprintf("log starts at index %d but entries after the compaction point %d are missing", first, d.start.index))
		return false
	}
	if d.start.index >= first {
		if t, _ := d.termOf(d.start.index); t != d.start.term {
			return true
		}
	}
	return false
}

// Report is the result of Verify: what a data directory holds and every
// problem found. kraft-ctl verify-data prints it.
type Report struct {
	Dir        string
	Segments   []SegmentReport
	FirstIndex uint64 // first live index (after the compaction point); 0: empty
	LastIndex  uint64
	Entries    uint64 // live entries
	Bytes      int64  // record bytes in all segments
	HardState  HardState
	// CompactedThrough is the compaction point (the snapshot index).
	CompactedThrough uint64
	Problems         []Problem
}

// SegmentReport describes one segment file.
type SegmentReport struct {
	File       string
	SizeBytes  int64 // file size (preallocated)
	FirstIndex uint64
	LastIndex  uint64 // 0 with Entries 0
	Entries    uint64
	Bytes      int64 // record bytes
}

// OK reports whether Open would accept the directory (torn tails are fine).
func (r *Report) OK() bool {
	for _, p := range r.Problems {
		if !p.Torn {
			return false
		}
	}
	return true
}

// String renders the report for people (kraft-ctl verify-data prints it;
// -w json can marshal the struct instead).
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data dir:   %s\n", r.Dir)
	fmt.Fprintf(&b, "segments:   %d\n", len(r.Segments))
	if r.Entries > 0 {
		fmt.Fprintf(&b, "entries:    %d (index %d..%d)\n", r.Entries, r.FirstIndex, r.LastIndex)
	} else {
		fmt.Fprintf(&b, "entries:    0\n")
	}
	fmt.Fprintf(&b, "bytes:      %d\n", r.Bytes)
	fmt.Fprintf(&b, "compacted:  through index %d\n", r.CompactedThrough)
	fmt.Fprintf(&b, "hard state: term %d, vote %d, commit %d\n", r.HardState.Term, r.HardState.Vote, r.HardState.Commit)
	for _, sg := range r.Segments {
		fmt.Fprintf(&b, "  %s  %d entries  %d..%d  %d bytes\n", sg.File, sg.Entries, sg.FirstIndex, sg.LastIndex, sg.Bytes)
	}
	if len(r.Problems) == 0 {
		b.WriteString("result:     OK\n")
		return b.String()
	}
	for _, p := range r.Problems {
		kind := "CORRUPT"
		if p.Torn {
			kind = "torn tail (cut off at next start)"
		}
		fmt.Fprintf(&b, "%s: %s at offset %d: %s\n", kind, p.File, p.Offset, p.Detail)
	}
	if r.OK() {
		b.WriteString("result:     OK (torn tail will be cut off)\n")
	} else {
		b.WriteString("result:     CORRUPT\n")
	}
	return b.String()
}

// Verify reads every segment and the hard state of the data directory dir
// without modifying anything and reports what it found. The error is only
// for failures to read (permissions, I/O); damage is in Report.Problems.
// It must not run while a WAL has dir open for writing.
func Verify(dir string) (*Report, error) { return VerifyFS(OSFS{}, dir) }

// VerifyFS is Verify on any FS.
func VerifyFS(fsys FS, dir string) (*Report, error) {
	if _, err := fsys.List(dir); err != nil {
		return nil, errorf("verify %s: %w", dir, err)
	}
	d, err := scanDir(fsys, dir, false)
	if err != nil {
		return nil, err
	}
	defer d.closeAll()
	d.checkStart(dir)
	r := &Report{Dir: dir, HardState: d.hs, CompactedThrough: d.start.index}
	for _, s := range d.segs {
		sr := SegmentReport{File: s.path, FirstIndex: s.first, Entries: s.count(), Bytes: s.end, SizeBytes: int64(len(s.m))}
		if s.count() > 0 {
			sr.LastIndex = s.last()
		}
		r.Segments = append(r.Segments, sr)
		r.Bytes += s.end
	}
	first, last := d.logRange()
	if last > d.start.index {
		r.FirstIndex, r.LastIndex = max(first, d.start.index+1), last
		r.Entries = r.LastIndex - r.FirstIndex + 1
	}
	r.Problems = append(r.Problems, d.problems...)
	if d.torn != nil {
		r.Problems = append(r.Problems, *d.torn)
	}
	return r, nil
}
