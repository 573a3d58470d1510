package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// A recycled segment (Options.RecycleSegments) is not zero-filled again:
// past its data it holds what it held in its previous life. Recovery still
// has to tell a sector the device never wrote from damage, and such a
// sector now reads as that prior content instead of zeros. So before a
// retired segment is written again, the preparer records a checksum of each
// of its 512-byte sectors in a prior-content file, synced before the
// segment takes its new name. A sector is "unwritten" when it is all zeros
// or matches its prior checksum; with no prior file, when it is all zeros.
//
//	<segment name>.prior:
//	magic "KRPRIOR1" | sector bytes u32 (512) | sectors u32 |
//	xxh64 of each sector, in order (u64 each) | xxh64 of all bytes before

const (
	priorSuffix     = ".prior"
	priorMagic      = "KRPRIOR1"
	priorHeaderSize = 16
)

// priorName is the prior-content file of the segment at segPath.
func priorName(segPath string) string { return segPath + priorSuffix }

// sumStepSectors is how many sectors readSums checksums between two
// yields: 256 KiB, tens of microseconds. A 64 MiB segment takes ~10-20 ms
// of CPU, and under one Go scheduler per node (GOMAXPROCS=1) a goroutine
// that does not yield holds writes up for whole 10 ms preemption slices
// (perf/results/speedups.md, items 60 and 61).
const sumStepSectors = 512

// sumYields counts readSums' yields (tests).
var sumYields atomic.Uint64

// readSums returns the xxh64 of every sectorBytes sector of a file of size
// bytes (the last one may be short), reading it with readAt a step of
// sumStepSectors at a time, yielding the processor between steps and
// stopping early with errStopped when stop closes. It reads with pread,
// not through the segment's mapping: pages read through a mapping stay
// mapped into the process, and a node whose every log page is mapped
// makes the kernel's page reclaim unmap each one it takes back
// (perf/results/speedups.md, item 64).
func readSums(readAt func(b []byte, off int64) error, size int64, stop <-chan struct{}) ([]uint64, error) {
	n := int((size + sectorBytes - 1) / sectorBytes)
	sums := make([]uint64, n)
	buf := make([]byte, min(int64(sumStepSectors*sectorBytes), size))
	for k := 0; k < n; k += sumStepSectors {
		if k > 0 {
			select {
			case <-stop:
				return nil, errStopped
			default:
			}
			sumYields.Add(1)
			runtime.Gosched()
		}
		hi := min(k+sumStepSectors, n)
		b := buf[:min(int64(hi)*sectorBytes, size)-int64(k)*sectorBytes]
		if err := readAt(b, int64(k)*sectorBytes); err != nil {
			return nil, err
		}
		sumRange(b, sums[k:hi], 0, hi-k)
	}
	return sums, nil
}

// fileReader reads f whole at each call (readSums' readAt).
func fileReader(f File) func(b []byte, off int64) error {
	return func(b []byte, off int64) error {
		_, err := f.ReadAt(b, off)
		return err
	}
}

// sectorSums returns the xxh64 of every sectorBytes sector of m, in one
// go (invariants checks and tests).
func sectorSums(m []byte) []uint64 {
	sums := make([]uint64, (len(m)+sectorBytes-1)/sectorBytes)
	sumRange(m, sums, 0, len(sums))
	return sums
}

// sumRange sets sums[from:to] to the xxh64 of those sectors of m.
func sumRange(m []byte, sums []uint64, from, to int) {
	for k := from; k < to; k++ {
		sums[k] = xxhash.Sum64(m[k*sectorBytes : min((k+1)*sectorBytes, len(m))])
	}
}

func encodePrior(sums []uint64) []byte {
	b := make([]byte, priorHeaderSize+8*len(sums)+8)
	copy(b, priorMagic)
	binary.LittleEndian.PutUint32(b[8:], sectorBytes)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(sums)))
	for k, s := range sums {
		binary.LittleEndian.PutUint64(b[priorHeaderSize+8*k:], s)
	}
	end := len(b) - 8
	binary.LittleEndian.PutUint64(b[end:], xxhash.Sum64(b[:end]))
	return b
}

// decodePrior parses a prior-content file for a segment of segBytes.
func decodePrior(b []byte, segBytes int64) ([]uint64, error) {
	want := (segBytes + sectorBytes - 1) / sectorBytes
	switch {
	case len(b) < priorHeaderSize+8 || !bytes.Equal(b[:8], []byte(priorMagic)):
		return nil, fmt.Errorf("not a prior-content file (%d bytes)", len(b))
	case binary.LittleEndian.Uint32(b[8:]) != sectorBytes:
		return nil, fmt.Errorf("sector size %d, want %d", binary.LittleEndian.Uint32(b[8:]), sectorBytes)
	case int64(binary.LittleEndian.Uint32(b[12:])) != want:
		return nil, fmt.Errorf("%d sectors for a segment of %d bytes (%d sectors)", binary.LittleEndian.Uint32(b[12:]), segBytes, want)
	case int64(len(b)) != priorHeaderSize+8*want+8:
		return nil, fmt.Errorf("%d bytes, want %d", len(b), priorHeaderSize+8*want+8)
	}
	end := len(b) - 8
	if xxhash.Sum64(b[:end]) != binary.LittleEndian.Uint64(b[end:]) {
		return nil, fmt.Errorf("checksum mismatch")
	}
	sums := make([]uint64, want)
	for k := range sums {
		sums[k] = binary.LittleEndian.Uint64(b[priorHeaderSize+8*k:])
	}
	return sums, nil
}

// writePrior creates name holding sums, and syncs it if sync is set (a
// cache file of the summer's is not: sums.go).
func writePrior(fsys FS, name string, sums []uint64, sync bool) error {
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	b := encodePrior(sums)
	if _, err := f.WriteAt(b, 0); err != nil {
		_ = f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

// readPrior reads and checks the prior-content file name for a segment of
// segBytes. Damage is returned as a *CorruptionError.
func readPrior(fsys FS, name string, segBytes int64) ([]uint64, error) {
	f, err := fsys.OpenRO(name)
	if err != nil {
		return nil, errorf("open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, errorf("stat %s: %w", name, err)
	}
	if size > priorHeaderSize+8*(MaxSegmentSizeBytes/sectorBytes)+8 {
		return nil, &CorruptionError{File: name, Detail: fmt.Sprintf("prior-content file of %d bytes", size)}
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, errorf("read %s: %w", name, err)
	}
	sums, err := decodePrior(b, segBytes)
	if err != nil {
		return nil, &CorruptionError{File: name, Detail: "prior-content file: " + err.Error()}
	}
	return sums, nil
}

// unwrittenSector reports whether sector k of m reads as never written in
// this life: all zeros, or exactly its prior content.
func unwrittenSector(m []byte, k int, prior []uint64) bool {
	b := m[k*sectorBytes : min((k+1)*sectorBytes, len(m))]
	if firstNonZero(b) < 0 {
		return true
	}
	return prior != nil && xxhash.Sum64(b) == prior[k]
}

// unwrittenPiece reports whether m[from:to) (inside one sector) reads as
// never written: all zeros, or its whole sector is prior content.
func unwrittenPiece(m []byte, from, to int, prior []uint64) bool {
	if firstNonZero(m[from:to]) < 0 {
		return true
	}
	return prior != nil && unwrittenSector(m, from/sectorBytes, prior)
}

// writtenEnd returns the end of the written bytes in m[from:]: the offset
// just past the last byte that is not in an unwritten piece (from when
// every piece from there on is unwritten). Without prior content that is
// the last non-zero byte; with it, the end of the last written sector.
func writtenEnd(m []byte, from int, prior []uint64) int {
	if prior == nil {
		if firstNonZero(m[from:]) < 0 {
			return from // the usual case: a fast scan of the zeros
		}
		last := len(m) - 1
		for last >= from && m[last] == 0 {
			last--
		}
		return max(last+1, from)
	}
	for k := (len(m) - 1) / sectorBytes; k >= 0; k-- {
		lo := max(k*sectorBytes, from)
		hi := min((k+1)*sectorBytes, len(m))
		if hi <= from {
			break
		}
		if !unwrittenPiece(m, lo, hi, prior) {
			return hi
		}
	}
	return from
}
