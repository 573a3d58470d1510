package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Snapshot file layout (snapshot-<index>-<term>.dat, decimal):
//
//	magic "KRSNAP01" | index u64 | term u64 | data ... | dataLen u64 | xxhash64
//
// The checksum covers every byte before it; dataLen lets a reader reject a
// file that was cut short even if the cut happened to end on a checksum.
const (
	snapMagic        = "KRSNAP01"
	snapHeaderBytes  = 24
	snapTrailerBytes = 16
	snapChunkBytes   = 1 << 20
)

// SnapshotMeta names one snapshot file.
type SnapshotMeta struct {
	Index uint64 // last log index the snapshot covers
	Term  uint64 // term of that entry
	File  string // path of the file
}

func snapshotName(index, term uint64) string {
	return fmt.Sprintf("snapshot-%d-%d.dat", index, term)
}

func parseSnapshotName(name string) (index, term uint64, ok bool) {
	rest, ok1 := strings.CutPrefix(name, "snapshot-")
	rest, ok2 := strings.CutSuffix(rest, ".dat")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(rest, "%d-%d", &index, &term); err != nil || snapshotName(index, term) != name {
		return 0, 0, false
	}
	return index, term, true
}

// listSnapshots returns the snapshot files in dir, oldest index first. A
// missing dir holds none.
func listSnapshots(fsys FS, dir string) ([]SnapshotMeta, error) {
	names, err := fsys.List(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf("list snapshots: %w", err)
	}
	var metas []SnapshotMeta
	for _, n := range names {
		if i, t, ok := parseSnapshotName(n); ok {
			metas = append(metas, SnapshotMeta{Index: i, Term: t, File: path.Join(dir, n)})
		}
	}
	sort.Slice(metas, func(a, b int) bool { return metas[a].Index < metas[b].Index })
	return metas, nil
}

// writeSnapshot streams r into a new snapshot file: temp file, sync,
// rename, directory sync. On error the temp file is removed.
func writeSnapshot(fsys FS, dir string, index, term uint64, r io.Reader) (meta SnapshotMeta, err error) {
	if err := fsys.MkdirAll(dir); err != nil {
		return SnapshotMeta{}, errorf("snapshot dir: %w", err)
	}
	final := path.Join(dir, snapshotName(index, term))
	tmp := final + ".tmp"
	_ = fsys.Remove(tmp) // a leftover of an interrupted save
	f, err := fsys.Create(tmp)
	if err != nil {
		return SnapshotMeta{}, errorf("create snapshot: %w", err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	var hdr [snapHeaderBytes]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint64(hdr[8:], index)
	binary.LittleEndian.PutUint64(hdr[16:], term)
	d := xxhash.New()
	_, _ = d.Write(hdr[:])
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return SnapshotMeta{}, errorf("write snapshot: %w", err)
	}
	off := int64(snapHeaderBytes)
	buf := make([]byte, snapChunkBytes)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			_, _ = d.Write(buf[:n])
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return SnapshotMeta{}, errorf("write snapshot: %w", err)
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return SnapshotMeta{}, errorf("read snapshot data: %w", rerr)
		}
	}
	var tr [snapTrailerBytes]byte
	binary.LittleEndian.PutUint64(tr[0:], uint64(off-snapHeaderBytes))
	_, _ = d.Write(tr[:8])
	binary.LittleEndian.PutUint64(tr[8:], d.Sum64())
	if _, err := f.WriteAt(tr[:], off); err != nil {
		return SnapshotMeta{}, errorf("write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return SnapshotMeta{}, &FatalError{Op: "snapshot fsync", Err: err}
	}
	if err := f.Close(); err != nil {
		f = nil
		return SnapshotMeta{}, errorf("close snapshot: %w", err)
	}
	f = nil
	if err := fsys.Rename(tmp, final); err != nil {
		return SnapshotMeta{}, errorf("rename snapshot: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return SnapshotMeta{}, &FatalError{Op: "snapshot directory fsync", Err: err}
	}
	return SnapshotMeta{Index: index, Term: term, File: final}, nil
}

// readSnapshot reads and verifies a whole snapshot file.
func readSnapshot(fsys FS, meta SnapshotMeta) ([]byte, error) {
	f, err := fsys.OpenRO(meta.File)
	if err != nil {
		return nil, errorf("open snapshot: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, errorf("stat snapshot: %w", err)
	}
	if size < snapHeaderBytes+snapTrailerBytes {
		return nil, &CorruptionError{File: meta.File, Offset: size, Detail: "snapshot file is short"}
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, errorf("read snapshot: %w", err)
	}
	sumAt := len(b) - 8
	if xxhash.Sum64(b[:sumAt]) != binary.LittleEndian.Uint64(b[sumAt:]) {
		return nil, &CorruptionError{File: meta.File, Offset: int64(sumAt), Detail: "snapshot checksum mismatch"}
	}
	if string(b[:8]) != snapMagic {
		return nil, &CorruptionError{File: meta.File, Detail: "bad snapshot magic"}
	}
	dataLen := binary.LittleEndian.Uint64(b[sumAt-8:])
	if dataLen != uint64(len(b)-snapHeaderBytes-snapTrailerBytes) {
		return nil, &CorruptionError{File: meta.File, Offset: int64(sumAt - 8), Detail: "snapshot length mismatch"}
	}
	if binary.LittleEndian.Uint64(b[8:]) != meta.Index || binary.LittleEndian.Uint64(b[16:]) != meta.Term {
		return nil, &CorruptionError{File: meta.File, Offset: 8, Detail: "snapshot header does not match its file name"}
	}
	return b[snapHeaderBytes : snapHeaderBytes+dataLen], nil
}
