package wal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Snapshot file layout (snapshot-<index>-<term>.dat, decimal), version 2:
//
//	magic "KRSNAP02" | index u64 | term u64 | base u64 | codec u8 | zero [7]u8 |
//	stored data ... | stored length u64 | xxhash64
//
// base is 0 for a self-contained snapshot, or the index of the snapshot file
// this one is a delta on (see SnapshotFileOptions). codec says how the data
// is stored (SnapshotCodecNone, SnapshotCodecZstd). The checksum covers
// every byte before it, so it is verified on the bytes as they lie on disk,
// before anything is decompressed; the stored length lets a reader reject a
// file that was cut short even if the cut happened to end on a checksum.
//
// Version 1 ("KRSNAP01", written before compression and deltas existed) is
// still read: the same layout without base, codec and padding (a 24-byte
// header), data stored as is.
const (
	snapMagic          = "KRSNAP02"
	snapMagicV1        = "KRSNAP01"
	snapHeaderBytes    = 40
	snapHeaderBytesV1  = 24
	snapTrailerBytes   = 16
	snapChunkBytes     = 1 << 20
	snapCodecOffset    = 32
	snapBaseOffset     = 24
	snapMaxChainLength = 1 << 16 // a base chain longer than this is a loop
)

// SnapshotCodec says how a snapshot file stores its data.
type SnapshotCodec uint8

const (
	// SnapshotCodecNone stores the data as given.
	SnapshotCodecNone SnapshotCodec = 0
	// SnapshotCodecZstd stores the data zstd-compressed (one zstd stream).
	SnapshotCodecZstd SnapshotCodec = 1
)

func (c SnapshotCodec) String() string {
	switch c {
	case SnapshotCodecNone:
		return "none"
	case SnapshotCodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("SnapshotCodec(%d)", uint8(c))
}

// ParseSnapshotCodec parses "none" or "zstd" (the --snapshot-compression
// values).
func ParseSnapshotCodec(s string) (SnapshotCodec, error) {
	switch s {
	case "none", "":
		return SnapshotCodecNone, nil
	case "zstd":
		return SnapshotCodecZstd, nil
	}
	return 0, errorf("unknown snapshot compression %q (want none or zstd)", s)
}

// SnapshotFileOptions say how SaveSnapshotFile writes a file.
type SnapshotFileOptions struct {
	// Codec compresses the stored data. A reader needs no setting: the
	// codec is in the file's header.
	Codec SnapshotCodec
	// Base, if not 0, marks the file as a delta on the snapshot file with
	// that index: its data means something only on top of the base's (and
	// so on down to a self-contained file). Retention keeps the bases of
	// every retained file, and LoadSnapshotChain returns the whole chain.
	Base uint64
}

// SnapshotMeta names one snapshot file.
type SnapshotMeta struct {
	Index uint64 // last log index the snapshot covers
	Term  uint64 // term of that entry
	File  string // path of the file
	// Base and Codec come from the file's header; they are filled where the
	// header was read (SaveSnapshotFile, LoadSnapshotChain, SnapshotHeaders),
	// zero otherwise (Snapshots).
	Base  uint64
	Codec SnapshotCodec
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

// snapSyncEveryBytes: a snapshot file is synced each time this much was
// written to it. Left to the final fsync, a 1 GiB file would sit in the
// page cache as dirty pages, and the kernel throttles every writer once
// dirty pages pass its threshold: the WAL's appends (commits) would stall
// for up to seconds behind the snapshot. Syncing as it goes bounds the
// dirty pages the snapshot adds.
const snapSyncEveryBytes = 32 << 20

// snapFileWriter writes the stored data after the header in snapChunkBytes
// pieces, hashing it on the way.
type snapFileWriter struct {
	f        File
	digest   *xxhash.Digest
	off      int64
	unsynced int64
	buf      []byte
	err      error
}

func (sw *snapFileWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && sw.err == nil {
		k := copy(sw.buf[len(sw.buf):cap(sw.buf)], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p = p[k:]
		if len(sw.buf) == cap(sw.buf) {
			sw.flush()
		}
	}
	if sw.err != nil {
		return 0, sw.err
	}
	return n, nil
}

func (sw *snapFileWriter) flush() {
	if sw.err != nil || len(sw.buf) == 0 {
		return
	}
	_, _ = sw.digest.Write(sw.buf)
	if _, err := sw.f.WriteAt(sw.buf, sw.off); err != nil {
		sw.err = errorf("write snapshot: %w", err)
		return
	}
	sw.off += int64(len(sw.buf))
	sw.unsynced += int64(len(sw.buf))
	sw.buf = sw.buf[:0]
	if sw.unsynced >= snapSyncEveryBytes {
		if err := sw.f.Sync(); err != nil {
			sw.err = &FatalError{Op: "snapshot fsync", Err: err}
			return
		}
		sw.unsynced = 0
	}
}

// writeSnapshot streams r into a new snapshot file: temp file, sync,
// rename, directory sync. On error the temp file is removed.
func writeSnapshot(fsys FS, dir string, index, term uint64, r io.Reader, o SnapshotFileOptions) (meta SnapshotMeta, err error) {
	if o.Codec > SnapshotCodecZstd {
		return SnapshotMeta{}, errorf("unknown snapshot codec %d", o.Codec)
	}
	if o.Base >= index {
		return SnapshotMeta{}, errorf("snapshot %d cannot be a delta on snapshot %d", index, o.Base)
	}
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
	if o.Codec == SnapshotCodecZstd {
		// Incompressible data (random or already compressed values) is
		// stored as it is: zstd would cost ~7x the write time for nothing
		// (perf/results/snapshots.md). The head of the stream decides.
		head := make([]byte, snapSampleBytes)
		n, rerr := io.ReadFull(r, head)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return SnapshotMeta{}, errorf("read snapshot data: %w", rerr)
		}
		head = head[:n]
		if !compressible(head) {
			o.Codec = SnapshotCodecNone
		}
		r = io.MultiReader(bytes.NewReader(head), r)
	}
	var hdr [snapHeaderBytes]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint64(hdr[8:], index)
	binary.LittleEndian.PutUint64(hdr[16:], term)
	binary.LittleEndian.PutUint64(hdr[snapBaseOffset:], o.Base)
	hdr[snapCodecOffset] = byte(o.Codec)
	sw := &snapFileWriter{f: f, digest: xxhash.New(), off: snapHeaderBytes, buf: make([]byte, 0, snapChunkBytes)}
	_, _ = sw.digest.Write(hdr[:])
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return SnapshotMeta{}, errorf("write snapshot: %w", err)
	}
	if err := copySnapshotData(sw, r, o.Codec); err != nil {
		return SnapshotMeta{}, err
	}
	sw.flush()
	if sw.err != nil {
		return SnapshotMeta{}, sw.err
	}
	var tr [snapTrailerBytes]byte
	binary.LittleEndian.PutUint64(tr[0:], uint64(sw.off-snapHeaderBytes))
	_, _ = sw.digest.Write(tr[:8])
	binary.LittleEndian.PutUint64(tr[8:], sw.digest.Sum64())
	if _, err := f.WriteAt(tr[:], sw.off); err != nil {
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
	return SnapshotMeta{Index: index, Term: term, File: final, Base: o.Base, Codec: o.Codec}, nil
}

// snapSampleBytes is the head of a snapshot's data that decides whether
// zstd is worth it.
const snapSampleBytes = 1 << 20

// sampleEncoder compresses samples (EncodeAll is safe for concurrent use).
var sampleEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))

// compressible reports whether zstd's fastest level shrinks sample by at
// least a tenth (a couple of milliseconds per MiB); the snapshot's real
// compression (SpeedDefault) does better still on data that passes.
func compressible(sample []byte) bool {
	if len(sample) < 4<<10 {
		return true // too little to judge, and too little to matter
	}
	return len(sampleEncoder.EncodeAll(sample, nil)) < len(sample)*9/10
}

// copySnapshotData copies r to sw, through the codec's compressor.
func copySnapshotData(sw *snapFileWriter, r io.Reader, codec SnapshotCodec) error {
	var dst io.Writer = sw
	var enc *zstd.Encoder
	if codec == SnapshotCodecZstd {
		var err error
		// Concurrency 2: compression runs beside Apply and the WAL
		// writer, so it may use a second core but not take them all.
		enc, err = zstd.NewWriter(sw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2))
		if err != nil {
			return errorf("snapshot compressor: %w", err)
		}
		dst = enc
	}
	if _, err := io.Copy(dst, r); err != nil {
		if enc != nil {
			enc.Close()
		}
		if sw.err != nil {
			return sw.err
		}
		return errorf("read snapshot data: %w", err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			if sw.err != nil {
				return sw.err
			}
			return errorf("compress snapshot: %w", err)
		}
	}
	return nil
}

// snapHeader is what a snapshot file's header says.
type snapHeader struct {
	index, term, base uint64
	codec             SnapshotCodec
	bytes             int // header length: 24 (v1) or 40
}

// parseSnapshotHeader decodes the header at the start of b (which holds
// at least snapHeaderBytesV1 bytes).
func parseSnapshotHeader(file string, b []byte) (snapHeader, error) {
	h := snapHeader{index: binary.LittleEndian.Uint64(b[8:]), term: binary.LittleEndian.Uint64(b[16:])}
	switch string(b[:8]) {
	case snapMagicV1:
		h.bytes = snapHeaderBytesV1
	case snapMagic:
		if len(b) < snapHeaderBytes {
			return h, &CorruptionError{File: file, Offset: int64(len(b)), Detail: "snapshot file is short"}
		}
		h.bytes = snapHeaderBytes
		h.base = binary.LittleEndian.Uint64(b[snapBaseOffset:])
		h.codec = SnapshotCodec(b[snapCodecOffset])
		if h.codec > SnapshotCodecZstd {
			return h, &CorruptionError{File: file, Offset: snapCodecOffset, Detail: fmt.Sprintf("unknown snapshot codec %d", h.codec)}
		}
		if h.base >= h.index {
			return h, &CorruptionError{File: file, Offset: snapBaseOffset, Detail: fmt.Sprintf("snapshot %d names base %d, which is not older", h.index, h.base)}
		}
	default:
		return h, &CorruptionError{File: file, Detail: "bad snapshot magic"}
	}
	return h, nil
}

// readSnapshotHeader reads only a file's header (no checksum: retention
// uses it to find bases; loading verifies the whole file).
func readSnapshotHeader(fsys FS, meta SnapshotMeta) (snapHeader, error) {
	f, err := fsys.OpenRO(meta.File)
	if err != nil {
		return snapHeader{}, errorf("open snapshot: %w", err)
	}
	defer f.Close()
	var b [snapHeaderBytes]byte
	n, err := f.ReadAt(b[:], 0)
	if n < snapHeaderBytesV1 {
		if err != nil && !errors.Is(err, io.EOF) {
			return snapHeader{}, errorf("read snapshot: %w", err)
		}
		return snapHeader{}, &CorruptionError{File: meta.File, Offset: int64(n), Detail: "snapshot file is short"}
	}
	return parseSnapshotHeader(meta.File, b[:n])
}

// readSnapshot reads and verifies a whole snapshot file and returns its
// data as written (decompressed), with the header's base and codec in the
// returned meta.
func readSnapshot(fsys FS, meta SnapshotMeta) ([]byte, SnapshotMeta, error) {
	f, err := fsys.OpenRO(meta.File)
	if err != nil {
		return nil, meta, errorf("open snapshot: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, meta, errorf("stat snapshot: %w", err)
	}
	if size < snapHeaderBytesV1+snapTrailerBytes {
		return nil, meta, &CorruptionError{File: meta.File, Offset: size, Detail: "snapshot file is short"}
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, meta, errorf("read snapshot: %w", err)
	}
	sumAt := len(b) - 8
	if xxhash.Sum64(b[:sumAt]) != binary.LittleEndian.Uint64(b[sumAt:]) {
		return nil, meta, &CorruptionError{File: meta.File, Offset: int64(sumAt), Detail: "snapshot checksum mismatch"}
	}
	h, err := parseSnapshotHeader(meta.File, b)
	if err != nil {
		return nil, meta, err
	}
	dataLen := binary.LittleEndian.Uint64(b[sumAt-8:])
	if dataLen != uint64(len(b)-h.bytes-snapTrailerBytes) {
		return nil, meta, &CorruptionError{File: meta.File, Offset: int64(sumAt - 8), Detail: "snapshot length mismatch"}
	}
	if h.index != meta.Index || h.term != meta.Term {
		return nil, meta, &CorruptionError{File: meta.File, Offset: 8, Detail: "snapshot header does not match its file name"}
	}
	meta.Base, meta.Codec = h.base, h.codec
	stored := b[h.bytes : uint64(h.bytes)+dataLen]
	if h.codec == SnapshotCodecNone {
		return stored, meta, nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, meta, errorf("snapshot decompressor: %w", err)
	}
	defer dec.Close()
	data, err := dec.DecodeAll(stored, nil)
	if err != nil {
		// The checksum matched: the file is as written, so the writer
		// produced bad data (or another program wrote the file).
		return nil, meta, &CorruptionError{File: meta.File, Offset: int64(h.bytes), Detail: fmt.Sprintf("snapshot data does not decompress: %v", err)}
	}
	return data, meta, nil
}

// SaveSnapshotFile durably writes a snapshot file for (index, term) with
// the data read from r (temp file, fsync, rename, directory fsync), stored
// as o says, then applies retention: the newest Options.SnapshotsRetained
// files are kept, with every base they need (transitively); older files
// are removed. It does not compact the log: call CompactPrefix after. Safe
// for concurrent use with every method; not with another SaveSnapshotFile
// of the same index.
func (w *WAL) SaveSnapshotFile(index, term uint64, r io.Reader, o SnapshotFileOptions) (SnapshotMeta, error) {
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	w.mu.RLock()
	err := w.writable()
	w.mu.RUnlock()
	if err != nil {
		return SnapshotMeta{}, err
	}
	meta, err := writeSnapshot(w.fsys, w.opts.SnapshotDir, index, term, r, o)
	if err != nil {
		if IsFatal(err) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return SnapshotMeta{}, w.setFatal(err)
		}
		return SnapshotMeta{}, err
	}
	return meta, w.retainSnapshots(index)
}

// retainSnapshots removes the snapshot files older than newest that are
// neither among the newest SnapshotsRetained nor a base of one of them. A
// header that cannot be read keeps every older file (a later load will
// report the damage; deleting on a guess could remove a needed base).
func (w *WAL) retainSnapshots(newest uint64) error {
	snaps, err := listSnapshots(w.fsys, w.opts.SnapshotDir)
	if err != nil {
		return err
	}
	keep := make(map[uint64]bool)
	byIndex := make(map[uint64]SnapshotMeta, len(snaps))
	for _, s := range snaps {
		byIndex[s.Index] = s
	}
	var pending []SnapshotMeta
	for i := len(snaps) - 1; i >= 0 && len(snaps)-i <= w.opts.SnapshotsRetained; i-- {
		pending = append(pending, snaps[i])
		keep[snaps[i].Index] = true
	}
	for len(pending) > 0 {
		s := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		h, err := readSnapshotHeader(w.fsys, s)
		if err != nil {
			w.log.Warn("kraft/wal: snapshot retention skipped: cannot read a retained snapshot's header", "file", s.File, "error", err.Error())
			return nil
		}
		if b, ok := byIndex[h.base]; ok && h.base != 0 && !keep[h.base] {
			keep[h.base] = true
			pending = append(pending, b)
		}
	}
	for _, s := range snaps {
		if s.Index >= newest || keep[s.Index] {
			continue
		}
		if err := w.fsys.Remove(s.File); err != nil {
			return errorf("remove old snapshot: %w", err)
		}
	}
	return nil
}

// LoadSnapshotChain reads and verifies the newest snapshot file and, if it
// is a delta, its bases down to a self-contained one, and returns them
// oldest first with their data (decompressed). ErrNoSnapshot if there is
// no snapshot file; a *CorruptionError naming the file if one is damaged;
// a *MissingBaseError if a base is gone.
func (w *WAL) LoadSnapshotChain() ([]SnapshotMeta, [][]byte, error) {
	snaps, err := listSnapshots(w.fsys, w.opts.SnapshotDir)
	if err != nil {
		return nil, nil, err
	}
	if len(snaps) == 0 {
		return nil, nil, ErrNoSnapshot
	}
	return loadSnapshotChain(w.fsys, snaps)
}

func loadSnapshotChain(fsys FS, snaps []SnapshotMeta) ([]SnapshotMeta, [][]byte, error) {
	byIndex := make(map[uint64]SnapshotMeta, len(snaps))
	for _, s := range snaps {
		byIndex[s.Index] = s
	}
	var metas []SnapshotMeta
	var datas [][]byte
	cur := snaps[len(snaps)-1]
	for range snapMaxChainLength {
		data, meta, err := readSnapshot(fsys, cur)
		if err != nil {
			return nil, nil, err
		}
		metas, datas = append(metas, meta), append(datas, data)
		if meta.Base == 0 {
			slices.Reverse(metas)
			slices.Reverse(datas)
			return metas, datas, nil
		}
		base, ok := byIndex[meta.Base]
		if !ok {
			return nil, nil, &MissingBaseError{File: meta.File, Base: meta.Base}
		}
		cur = base
	}
	return nil, nil, &CorruptionError{File: cur.File, Offset: snapBaseOffset, Detail: "snapshot base chain does not end"}
}

// MissingBaseError: a delta snapshot's base file is not in the snapshot
// directory (removed by hand, or never copied in a restore). The node
// cannot rebuild its state from the delta alone and refuses to start.
type MissingBaseError struct {
	File string // the delta snapshot
	Base uint64 // index of the snapshot it needs
}

func (e *MissingBaseError) Error() string {
	return fmt.Sprintf("kraft/wal: snapshot %s is a delta on the snapshot at index %d, which is missing from %s (restore needs the whole chain: copy every snapshot-<index>-<term>.dat it names, or a self-contained one)",
		e.File, e.Base, path.Dir(e.File))
}

// SnapshotHeaders lists the snapshot files like Snapshots, oldest first,
// with Base and Codec read from each file's header (not verified: see
// LoadSnapshotChain), so that tools can show which files a delta needs.
// A header that cannot be read leaves that entry's Base and Codec zero;
// the first such error is returned with the whole list.
func (w *WAL) SnapshotHeaders() ([]SnapshotMeta, error) {
	snaps, err := listSnapshots(w.fsys, w.opts.SnapshotDir)
	if err != nil {
		return nil, err
	}
	var first error
	for i := range snaps {
		h, err := readSnapshotHeader(w.fsys, snaps[i])
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		snaps[i].Base, snaps[i].Codec = h.base, h.codec
	}
	return snaps, first
}
