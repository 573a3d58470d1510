package wal

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"sync"
)

// MemFS is an in-memory FS that models what a crash keeps: file contents as
// of their last Sync, and of the namespace changes (create, rename, remove)
// those made durable by a SyncDir plus, at random, any prefix of the later
// ones, as a journaling file system commits them in order at times of its
// own choosing (a SyncDir commits every earlier change, as on ext4). Crash
// returns the file system a machine would see after losing power. It is
// meant for tests and simulators (it is not fast).
type MemFS struct {
	mu      sync.Mutex
	live    map[string]*memInode // current namespace
	durable map[string]*memInode // namespace as of the last SyncDir
	pending []memNsOp            // namespace changes since then, in order
}

// memNsOp is one namespace change not yet known durable.
type memNsOp struct {
	name string    // created, removed, or renamed from
	to   string    // renamed to ("" otherwise)
	ino  *memInode // nil: remove
}

func (m *MemFS) applyOp(ns map[string]*memInode, op memNsOp) {
	switch {
	case op.to != "":
		if ino, ok := ns[op.name]; ok {
			delete(ns, op.name)
			ns[op.to] = ino
		}
	case op.ino == nil:
		delete(ns, op.name)
	default:
		ns[op.name] = op.ino
	}
}

type memInode struct {
	data   []byte // what reads see (the page cache)
	synced []byte // what survives a crash
	mapped bool   // a Map view aliases data: data must not be reallocated
}

// memSectorBytes is the unit in which Crash may tear unsynced writes.
const memSectorBytes = 512

// NewMemFS returns an empty in-memory file system.
func NewMemFS() *MemFS {
	return &MemFS{live: map[string]*memInode{}, durable: map[string]*memInode{}}
}

var _ FS = (*MemFS)(nil)

// Crash returns the file system as it would be found after a power loss now:
// only synced names and synced bytes survive. With rng non-nil, a random
// prefix of the unsynced namespace changes survives too, and each 512-byte
// sector that differs from its synced content independently keeps either
// its new or its old bytes (a torn write); with rng nil only synced names
// and bytes survive. The receiver is left untouched.
func (m *MemFS) Crash(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := NewMemFS()
	cloned := map[*memInode]*memInode{}
	names := map[string]*memInode{}
	for name, ino := range m.durable {
		names[name] = ino
	}
	if rng != nil && len(m.pending) > 0 {
		for _, op := range m.pending[:rng.IntN(len(m.pending)+1)] {
			m.applyOp(names, op)
		}
	}
	for name, ino := range names {
		c, ok := cloned[ino]
		if !ok {
			c = &memInode{synced: crashImage(ino, rng)}
			c.data = append([]byte(nil), c.synced...)
			cloned[ino] = c
		}
		out.live[name] = c
		out.durable[name] = c
	}
	return out
}

func crashImage(ino *memInode, rng *rand.Rand) []byte {
	img := append([]byte(nil), ino.synced...)
	if rng == nil || len(ino.data) != len(ino.synced) {
		return img
	}
	for off := 0; off < len(img); off += memSectorBytes {
		end := min(off+memSectorBytes, len(img))
		if string(img[off:end]) != string(ino.data[off:end]) && rng.IntN(2) == 0 {
			copy(img[off:end], ino.data[off:end])
		}
	}
	return img
}

// FlipBit flips one bit of a file's live and synced contents (tests use it
// to inject corruption). It reports whether the file and offset exist.
func (m *MemFS) FlipBit(name string, off int64, bit uint) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.live[name]
	if !ok || off >= int64(len(ino.data)) {
		return false
	}
	ino.data[off] ^= 1 << (bit & 7)
	if off < int64(len(ino.synced)) {
		ino.synced[off] ^= 1 << (bit & 7)
	}
	return true
}

// Truncate cuts a file's live and synced contents to sizeBytes (tests use
// it to simulate a shortened file).
func (m *MemFS) Truncate(name string, sizeBytes int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.live[name]
	if !ok || sizeBytes > int64(len(ino.data)) {
		return false
	}
	ino.data = ino.data[:sizeBytes:sizeBytes]
	if sizeBytes < int64(len(ino.synced)) {
		ino.synced = ino.synced[:sizeBytes:sizeBytes]
	}
	return true
}

// ReadFile returns a copy of a file's live contents.
func (m *MemFS) ReadFile(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.live[name]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), ino.data...), true
}

func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (m *MemFS) Create(name string) (File, error) {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live[name]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	ino := &memInode{}
	m.live[name] = ino
	m.pending = append(m.pending, memNsOp{name: name, ino: ino})
	return &memFile{fs: m, ino: ino, name: name}, nil
}

func (m *MemFS) open(op, name string, ro bool) (File, error) {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.live[name]
	if !ok {
		return nil, notExist(op, name)
	}
	return &memFile{fs: m, ino: ino, name: name, readOnly: ro}, nil
}

func (m *MemFS) OpenRW(name string) (File, error) { return m.open("open", name, false) }
func (m *MemFS) OpenRO(name string) (File, error) { return m.open("open", name, true) }

func (m *MemFS) Remove(name string) error {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live[name]; !ok {
		return notExist("remove", name)
	}
	delete(m.live, name)
	m.pending = append(m.pending, memNsOp{name: name})
	return nil
}

func (m *MemFS) Rename(oldName, newName string) error {
	oldName, newName = path.Clean(oldName), path.Clean(newName)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.live[oldName]
	if !ok {
		return notExist("rename", oldName)
	}
	delete(m.live, oldName)
	m.live[newName] = ino
	m.pending = append(m.pending, memNsOp{name: oldName, to: newName})
	return nil
}

func (m *MemFS) MkdirAll(string) error { return nil }

func inDir(dir, name string) bool {
	return path.Dir(name) == path.Clean(dir)
}

func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name := range m.live {
		if inDir(dir, name) {
			names = append(names, path.Base(name))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir commits every namespace change made so far (in any directory,
// like a journal commit).
func (m *MemFS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range m.pending {
		m.applyOp(m.durable, op)
	}
	clear(m.pending)
	m.pending = m.pending[:0]
	return nil
}

type memFile struct {
	fs       *MemFS
	ino      *memInode
	name     string
	readOnly bool
	closed   bool
}

var errMemClosed = errors.New("file already closed")

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, errMemClosed
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, errMemClosed
	}
	if f.readOnly {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
	}
	end := off + int64(len(p))
	if end > int64(len(f.ino.data)) {
		if f.ino.mapped {
			// A real mapping would not see bytes past its length either;
			// the WAL never writes past a preallocated segment.
			panic("kraft: BUG: memfs write past the end of a mapped file " + f.name)
		}
		f.ino.data = append(f.ino.data, make([]byte, end-int64(len(f.ino.data)))...)
	}
	copy(f.ino.data[off:], p)
	return len(p), nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Preallocate(sizeBytes int64, _ bool) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if n := sizeBytes - int64(len(f.ino.data)); n > 0 {
		if f.ino.mapped {
			panic("kraft: BUG: memfs preallocate of a mapped file " + f.name)
		}
		f.ino.data = append(f.ino.data, make([]byte, n)...)
	}
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return errMemClosed
	}
	if len(f.ino.synced) != len(f.ino.data) {
		f.ino.synced = make([]byte, len(f.ino.data))
	}
	copy(f.ino.synced, f.ino.data)
	return nil
}

func (f *memFile) Map() ([]byte, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if len(f.ino.data) == 0 {
		return nil, errors.New("map " + f.name + ": empty file")
	}
	f.ino.mapped = true
	return f.ino.data, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return errMemClosed
	}
	f.closed = true
	return nil
}
