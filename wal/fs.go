package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// FS is the file-system seam. The WAL touches storage only through it, so
// tests can substitute a crashable in-memory FS (MemFS) or one that injects
// errors. Paths are slash-separated and include the directory.
//
// Contract: a name created, renamed or removed is durable only after SyncDir
// of its directory; file contents are durable only after File.Sync.
type FS interface {
	// Create makes a new empty file, failing if it exists.
	Create(name string) (File, error)
	// OpenRW opens an existing file for reading and writing.
	OpenRW(name string) (File, error)
	// OpenRO opens an existing file read-only.
	OpenRO(name string) (File, error)
	Remove(name string) error
	Rename(oldName, newName string) error
	// List returns the names (not paths) in dir, sorted; a missing dir is
	// reported with an error satisfying errors.Is(err, fs.ErrNotExist).
	List(dir string) ([]string, error)
	MkdirAll(dir string) error
	SyncDir(dir string) error
}

// File is an open file. Methods other than Map'd reads are not safe for
// concurrent use with Close; WriteAt and Sync may run concurrently.
type File interface {
	io.ReaderAt
	io.WriterAt
	Size() (int64, error)
	// Preallocate grows the file to sizeBytes, allocating the blocks of
	// the new part (a no-op if the file is already that long). With
	// zeroFill the new blocks are written with zeros (so later data syncs
	// do not convert unwritten extents); without it they are only
	// reserved. It need not make anything durable (the caller syncs).
	// Callers grow a file in steps to stay interruptible.
	Preallocate(sizeBytes int64, zeroFill bool) error
	// Sync makes the file's written data durable (fdatasync).
	Sync() error
	// Map returns a read-only shared view of the whole file as it is now
	// sized. It reflects later WriteAt calls. The view is valid until
	// Close; the file must not shrink while mapped.
	Map() ([]byte, error)
	Close() error
}

// OSFS is the real file system.
type OSFS struct{}

var _ FS = OSFS{}

func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) OpenRW(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) OpenRO(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f, readOnly: true}, nil
}

func (OSFS) Remove(name string) error             { return os.Remove(name) }
func (OSFS) Rename(oldName, newName string) error { return os.Rename(oldName, newName) }
func (OSFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }

func (OSFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct {
	f        *os.File
	readOnly bool
	m        mmap.MMap
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }

func (o *osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// zeroChunkBytes bounds the buffer used to zero-fill a segment.
const zeroChunkBytes = 1 << 20

var zeroChunk [zeroChunkBytes]byte

func (o *osFile) Preallocate(sizeBytes int64, zeroFill bool) error {
	cur, err := o.Size()
	if err != nil {
		return err
	}
	if sizeBytes <= cur {
		return nil
	}
	// fallocate first in both modes: it reserves every block up front, so
	// a full disk fails here with ENOSPC instead of half way through.
	if err := unix.Fallocate(int(o.f.Fd()), 0, cur, sizeBytes-cur); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
		}
		if err := o.f.Truncate(sizeBytes); err != nil {
			return err
		}
		zeroFill = true // no reservation: writing the zeros allocates
	}
	if !zeroFill {
		return nil
	}
	for off := cur; off < sizeBytes; off += zeroChunkBytes {
		n := min(int64(zeroChunkBytes), sizeBytes-off)
		if _, err := o.f.WriteAt(zeroChunk[:n], off); err != nil {
			return err
		}
	}
	// Start writeback now and wait for it: a burst of dirty zeros would
	// otherwise be flushed by a journal commit that the WAL's own
	// fdatasync waits on. The caller still syncs.
	if err := unix.SyncFileRange(int(o.f.Fd()), cur, sizeBytes-cur,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: o.f.Name(), Err: err}
	}
	return nil
}

func (o *osFile) Sync() error {
	if err := unix.Fdatasync(int(o.f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
	}
	return nil
}

func (o *osFile) Map() ([]byte, error) {
	if o.m != nil {
		return o.m, nil
	}
	size, err := o.Size()
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("map %s: empty file", o.f.Name())
	}
	m, err := mmap.MapRegion(o.f, int(size), mmap.RDONLY, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", o.f.Name(), err)
	}
	o.m = m
	return m, nil
}

func (o *osFile) Close() error {
	var err error
	if o.m != nil {
		err = o.m.Unmap()
		o.m = nil
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	return err
}
