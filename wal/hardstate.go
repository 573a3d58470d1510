package wal

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// HardState is the Raft state that must survive a restart (Raft Figure 2):
// the current term, the vote cast in it (0: none) and the commit index.
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// logStart is the compaction point: the log holds entries from index+1; the
// entry at index (inside a snapshot) had term.
type logStart struct {
	index uint64
	term  uint64
}

const (
	stateFileName  = "state"
	stateSlotBytes = 512 // one sector: a slot is written whole or not at all
	stateFileBytes = 2 * stateSlotBytes
	stateRecBytes  = 64
	stateMagic     = 0x5348524b // "KRHS"
	stateVersion   = 1
)

// stateFile persists HardState and logStart atomically without a rename:
// saves alternate between two sector-sized slots, each with a sequence
// number and checksum, and Load takes the valid slot with the higher
// sequence. A save that a crash interrupts leaves the other slot intact.
type stateFile struct {
	mu    sync.Mutex // serialises saves; guards the fields below
	f     File
	path  string
	seq   uint64
	hs    HardState
	start logStart
	buf   [stateRecBytes]byte
}

func encodeStateSlot(b *[stateRecBytes]byte, seq uint64, hs HardState, st logStart) {
	*b = [stateRecBytes]byte{}
	binary.LittleEndian.PutUint32(b[0:], stateMagic)
	b[4] = stateVersion
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], hs.Term)
	binary.LittleEndian.PutUint64(b[24:], hs.Vote)
	binary.LittleEndian.PutUint64(b[32:], hs.Commit)
	binary.LittleEndian.PutUint64(b[40:], st.index)
	binary.LittleEndian.PutUint64(b[48:], st.term)
	binary.LittleEndian.PutUint64(b[56:], xxhash.Sum64(b[:56]))
}

// decodeStateSlot returns ok=false for an all-zero (never written) slot and
// an error for a damaged one.
func decodeStateSlot(b []byte) (seq uint64, hs HardState, st logStart, ok bool, err error) {
	if firstNonZero(b) < 0 {
		return 0, HardState{}, logStart{}, false, nil
	}
	if binary.LittleEndian.Uint32(b) != stateMagic || b[4] != stateVersion ||
		xxhash.Sum64(b[:56]) != binary.LittleEndian.Uint64(b[56:]) || firstNonZero(b[stateRecBytes:]) >= 0 {
		return 0, HardState{}, logStart{}, false, errors.New("damaged hard state slot")
	}
	seq = binary.LittleEndian.Uint64(b[8:])
	hs = HardState{
		Term:   binary.LittleEndian.Uint64(b[16:]),
		Vote:   binary.LittleEndian.Uint64(b[24:]),
		Commit: binary.LittleEndian.Uint64(b[32:]),
	}
	st = logStart{index: binary.LittleEndian.Uint64(b[40:]), term: binary.LittleEndian.Uint64(b[48:])}
	return seq, hs, st, true, nil
}

// readStateFile loads the state file at path. exists is false when there is
// none. A damaged slot is corruption: with sector-atomic writes a crash
// leaves each slot either old or new, both valid.
func readStateFile(fsys FS, path string) (seq uint64, hs HardState, st logStart, exists bool, err error) {
	f, err := fsys.OpenRO(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, HardState{}, logStart{}, false, nil
	}
	if err != nil {
		return 0, HardState{}, logStart{}, false, errorf("open hard state: %w", err)
	}
	defer f.Close()
	var b [stateFileBytes]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, HardState{}, logStart{}, true, errorf("read hard state: %w", err)
	}
	if n != stateFileBytes {
		return 0, HardState{}, logStart{}, true, &CorruptionError{File: path, Offset: int64(n), Detail: "hard state file is short"}
	}
	found := false
	for slot := 0; slot < 2; slot++ {
		s, h, l, ok, derr := decodeStateSlot(b[slot*stateSlotBytes : (slot+1)*stateSlotBytes])
		if derr != nil {
			return 0, HardState{}, logStart{}, true, &CorruptionError{File: path, Offset: int64(slot * stateSlotBytes), Detail: derr.Error()}
		}
		if ok && (!found || s > seq) {
			seq, hs, st, found = s, h, l, true
		}
	}
	return seq, hs, st, true, nil
}

// createStateFile makes a zeroed state file durably (file and directory).
func createStateFile(fsys FS, dir, path string) error {
	f, err := fsys.Create(path)
	if err != nil {
		return errorf("create hard state: %w", err)
	}
	err = f.Preallocate(stateFileBytes, true)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return errorf("create hard state: %w", err)
	}
	return nil
}

// saveHS replaces the hard state, keeping the compaction point.
func (s *stateFile) saveHS(hs HardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(hs, s.start)
}

// saveStart replaces the compaction point, keeping the hard state.
func (s *stateFile) saveStart(st logStart) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(s.hs, st)
}

// saveLocked writes hs and st to the older slot and syncs. A failure is
// fatal (the caller marks the WAL so). Holds s.mu.
func (s *stateFile) saveLocked(hs HardState, st logStart) error {
	encodeStateSlot(&s.buf, s.seq+1, hs, st)
	slot := int64((s.seq + 1) % 2)
	if _, err := s.f.WriteAt(s.buf[:], slot*stateSlotBytes); err != nil {
		return &FatalError{Op: "hard state write", Err: err}
	}
	if err := s.f.Sync(); err != nil {
		return &FatalError{Op: "hard state fsync", Err: err}
	}
	s.seq++
	s.hs, s.start = hs, st
	return nil
}
