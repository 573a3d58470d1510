package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"unsafe"

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
	// padToPage (a WAL segment, see padWritesToPage): WriteAt extends each
	// write with zeros to the end of its last page.
	padToPage bool
	iov       [2][]byte // writePadded's, reused: the append path allocates nothing
	// padEnd bounds the padding: the file's size when padding began
	// (segments only grow, by Preallocate, which updates it); 0: not read.
	padEnd int64
	// overPrior: a recycled segment, whose padding covers prior content
	// rather than zeros (the invariants check does not apply).
	overPrior bool
}

// pagePadder is implemented by files that can pad writes to a page
// boundary (osFile). The WAL asks it of its segments: their zeros may have
// been written with O_DIRECT (directZeroFill) and so not be cached, and a
// buffered write that ends inside an uncached page makes the kernel read
// that page from the disk first, on the writer's goroutine. A segment is
// zeros past its data, so padding with zeros changes no byte.
type pagePadder interface{ padWritesToPage() }

func (o *osFile) padWritesToPage() { o.padToPage = true }

// priorPadder is implemented by files whose padding may overwrite a
// recycled segment's prior content (osFile): past the data such a segment
// holds zeros or that content, and recovery reads either as unwritten.
type priorPadder interface{ padOverPrior() }

func (o *osFile) padOverPrior() { o.overPrior = true }

// mappingReleaser is implemented by files whose mapped view can give back
// the pages reading through it mapped (osFile). The view stays valid: the
// next access maps the page again, from the page cache or the disk.
type mappingReleaser interface{ releaseMapping() error }

// releaseMapping unmaps the view's pages without unmapping the view
// (MADV_DONTNEED, which for a shared file mapping drops only the page
// table entries). Its caller excludes Close.
func (o *osFile) releaseMapping() error {
	if o.m == nil {
		return nil
	}
	return unix.Madvise(o.m, unix.MADV_DONTNEED)
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) {
	if !o.padToPage || len(p) == 0 {
		return o.f.WriteAt(p, off)
	}
	return o.writePadded(p, off)
}

// writePadded writes p at off followed by zeros to the end of the page it
// ends in (never past the file's end; see pagePadder). Short writes are
// finished like os.File.WriteAt does.
func (o *osFile) writePadded(p []byte, off int64) (int, error) {
	if o.padEnd == 0 {
		size, err := o.Size()
		if err != nil {
			return 0, err
		}
		o.padEnd = size
	}
	end := off + int64(len(p))
	pad := int(-end & (pageBytes - 1))
	if end+int64(pad) > o.padEnd {
		pad = int(max(0, o.padEnd-end))
	}
	if invariants && pad > 0 && !o.overPrior {
		o.checkZeros(end, pad)
	}
	for done := 0; done < len(p); {
		iov := append(o.iov[:0], p[done:])
		if pad > 0 {
			iov = append(iov, zeroChunk[:pad])
		}
		n, err := unix.Pwritev(int(o.f.Fd()), iov, off+int64(done))
		clear(o.iov[:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return done, &os.PathError{Op: "pwritev", Path: o.f.Name(), Err: err}
		case n <= 0:
			return done, &os.PathError{Op: "pwritev", Path: o.f.Name(), Err: io.ErrShortWrite}
		}
		done += n
	}
	return len(p), nil
}

// checkZeros panics unless the file holds n zeros at off: padding relies
// on a segment being zeros past its data. Costly: invariants builds only.
func (o *osFile) checkZeros(off int64, n int) {
	b := make([]byte, n)
	if _, err := o.f.ReadAt(b, off); err != nil {
		panic(fmt.Sprintf("kraft: BUG: reading %s at %d to check its padding: %v", o.f.Name(), off, err))
	}
	if !bytes.Equal(b, zeroChunk[:n]) {
		panic(fmt.Sprintf("kraft: BUG: %s holds non-zero bytes in [%d, %d), past the data a write padded", o.f.Name(), off, off+int64(n)))
	}
}

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
	if o.padEnd != 0 {
		o.padEnd = sizeBytes
	}
	if !zeroFill {
		return nil
	}
	if ok, err := o.directZeroFill(cur, sizeBytes); ok || err != nil {
		return err
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

// pageBytes is the page size that O_DIRECT offsets and lengths are aligned
// to and that writePadded pads to (4 KiB on the platforms kraftd runs on;
// a larger page only makes some padded writes partial-page again).
const pageBytes = 4096

// directZeroBuf is zeroChunk's page-aligned twin for O_DIRECT writes.
var directZeroBuf = func() []byte {
	b := make([]byte, zeroChunkBytes+pageBytes)
	a := int(uintptr(unsafe.Pointer(&b[0])) & (pageBytes - 1))
	if a != 0 {
		a = pageBytes - a
	}
	return b[a : a+zeroChunkBytes]
}()

// directZeroFill writes zeros to [from, to) through an O_DIRECT
// descriptor: the device copies them from one buffer, where buffered
// writes had every node copy a whole segment of zeros into the page cache
// and write it back (measured ~17% of a follower's CPU at 1,024 clients,
// perf/results/speedups.md). It reports false, with no error, when it does
// not apply (range not page-aligned, or a file system without O_DIRECT,
// such as tmpfs): the caller zero-fills the buffered way.
func (o *osFile) directZeroFill(from, to int64) (bool, error) {
	if from%pageBytes != 0 || to%pageBytes != 0 {
		return false, nil
	}
	fd, err := unix.Open(o.f.Name(), unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, nil
	}
	defer unix.Close(fd)
	for off := from; off < to; {
		n, err := unix.Pwrite(fd, directZeroBuf[:min(int64(zeroChunkBytes), to-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if off == from && err == unix.EINVAL {
				return false, nil // O_DIRECT refused at the first write
			}
			return true, &os.PathError{Op: "pwrite (O_DIRECT)", Path: o.f.Name(), Err: err}
		}
		if n <= 0 || n%pageBytes != 0 {
			return true, &os.PathError{Op: "pwrite (O_DIRECT)", Path: o.f.Name(), Err: io.ErrShortWrite}
		}
		off += int64(n)
	}
	return true, nil
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
