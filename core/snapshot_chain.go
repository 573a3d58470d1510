package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wal"
)

// Snapshot data (what the core keeps in Snapshot.Data and sends to
// followers in MsgSnapshot, and what follows the membership in a snapshot
// file) is either one full state-machine stream as it is (what every full
// snapshot is, readable by nodes that predate chains) or a chain of them:
//
//	magic "KRCHAIN1" | frame | frame | ...
//	frame = kind u8 (1 full, 2 delta) | length u64 | state machine stream
//
// The first frame of a self-contained chain is full (sm.StateMachine.
// Snapshot), every later one a delta on the state before it
// (sm.IncrementalStateMachine.SnapshotDelta); restoring applies them in
// order. A delta snapshot file holds only its own delta frame(s) and
// names its base in the WAL's file header; the node's in-memory chain is
// the materialized one (the base file's frames, then each delta's), so a
// follower that installs it gets exactly the leader's state whatever its
// own settings. Data without the magic is one full stream. (A node that
// predates chains can install a leader's full snapshot, not a chain:
// enable incremental snapshots once every node runs a version with them.)
const chainMagic = "KRCHAIN1"

const (
	frameFull  byte = 1
	frameDelta byte = 2

	frameHeaderBytes = 9
)

type chainFrame struct {
	kind byte
	data []byte
}

// parseChain splits snapshot data into its frames (aliasing b).
func parseChain(b []byte) ([]chainFrame, error) {
	rest, ok := bytes.CutPrefix(b, []byte(chainMagic))
	if !ok {
		return []chainFrame{{kind: frameFull, data: b}}, nil
	}
	var frames []chainFrame
	for len(rest) > 0 {
		if len(rest) < frameHeaderBytes {
			return nil, fmt.Errorf("snapshot chain: %d bytes left, short of a frame header", len(rest))
		}
		kind, n := rest[0], binary.LittleEndian.Uint64(rest[1:])
		if kind != frameFull && kind != frameDelta {
			return nil, fmt.Errorf("snapshot chain: frame %d has kind %d", len(frames), kind)
		}
		if n > uint64(len(rest)-frameHeaderBytes) {
			return nil, fmt.Errorf("snapshot chain: frame %d of %d bytes runs past the data (%d bytes left)", len(frames), n, len(rest)-frameHeaderBytes)
		}
		frames = append(frames, chainFrame{kind: kind, data: rest[frameHeaderBytes : frameHeaderBytes+n]})
		rest = rest[frameHeaderBytes+n:]
	}
	if len(frames) == 0 {
		return nil, errors.New("snapshot chain: no frames")
	}
	return frames, nil
}

// restoreFrames replaces the state machine's state with the chain's.
func restoreFrames(s sm.StateMachine, frames []chainFrame) error {
	if frames[0].kind != frameFull {
		return errors.New("snapshot chain does not start with a full snapshot")
	}
	if err := s.Restore(bytes.NewReader(frames[0].data)); err != nil {
		return err
	}
	for i, f := range frames[1:] {
		if err := restoreDelta(s, f); err != nil {
			return fmt.Errorf("delta %d of the chain: %w", i+1, err)
		}
	}
	return nil
}

func restoreDelta(s sm.StateMachine, f chainFrame) error {
	if f.kind != frameDelta {
		return errors.New("a full snapshot where a delta is expected")
	}
	inc, ok := s.(sm.IncrementalStateMachine)
	if !ok {
		return fmt.Errorf("the snapshot holds a delta, but the state machine (%T) cannot restore deltas", s)
	}
	return inc.RestoreDelta(bytes.NewReader(f.data))
}

// restoreChain restores snapshot data (a chain, or a bare full stream).
func restoreChain(s sm.StateMachine, data []byte) error {
	frames, err := parseChain(data)
	if err != nil {
		return err
	}
	return restoreFrames(s, frames)
}

// appendFrameHeader starts a frame whose length is patched in by
// finishFrame once the stream is written.
func appendFrameHeader(b []byte, kind byte) []byte {
	return append(append(b, kind), make([]byte, 8)...)
}

func finishFrame(b []byte, at int) {
	binary.LittleEndian.PutUint64(b[at+1:], uint64(len(b)-at-frameHeaderBytes))
}

// loadSnapshotChain restores the state machine from the newest snapshot
// file and the bases it needs, and returns the snapshot the core starts
// from: the newest file's index, term and membership, with the
// materialized chain as its data. wal.ErrNoSnapshot if there is none.
// Every error names the file at fault.
func (n *Node) loadSnapshotChain() (Snapshot, error) {
	if err := n.cfg.Snapshots.Validate(); err != nil {
		return Snapshot{}, err
	}
	metas, datas, err := n.wal.LoadSnapshotChain()
	if err != nil {
		return Snapshot{}, err
	}
	var m Membership
	var chain, plain []byte
	for i, d := range datas {
		mm, data, err := decodeSnapshotFile(d)
		if err != nil {
			return Snapshot{}, fmt.Errorf("kraft/core: snapshot %s: %w", metas[i].File, err)
		}
		frames, err := parseChain(data)
		if err != nil {
			return Snapshot{}, fmt.Errorf("kraft/core: snapshot %s: %w", metas[i].File, err)
		}
		if i > 0 && frames[0].kind != frameDelta {
			return Snapshot{}, fmt.Errorf("kraft/core: snapshot %s: a delta file (base %d) holds a full snapshot", metas[i].File, metas[i].Base)
		}
		if i == 0 {
			err = restoreFrames(n.sm, frames)
		} else {
			for _, f := range frames {
				if err = restoreDelta(n.sm, f); err != nil {
					break
				}
			}
		}
		if err != nil {
			return Snapshot{}, fmt.Errorf("kraft/core: restoring snapshot %s: %w", metas[i].File, err)
		}
		if len(metas) == 1 && len(frames) == 1 {
			plain = frames[0].data // a full snapshot alone stays a plain stream
		} else {
			if chain == nil {
				chain = []byte(chainMagic)
			}
			for _, f := range frames {
				chain = appendFrameHeader(chain, f.kind)
				at := len(chain) - frameHeaderBytes
				chain = append(chain, f.data...)
				finishFrame(chain, at)
			}
		}
		datas[i], m = nil, mm // let the file's bytes go once copied
	}
	if plain != nil {
		chain = plain
	}
	newest := metas[len(metas)-1]
	if len(metas) > 1 {
		n.log.Info("restored a snapshot chain", "full", metas[0].File, "deltas", len(metas)-1, "newest", newest.File)
	}
	return Snapshot{Meta: SnapshotMeta{Index: newest.Index, Term: newest.Term, Membership: m}, Data: chain}, nil
}

// saveSnapshotFile writes a snapshot file: the membership, then the chain
// data (for a delta, base != 0, only its own frames), compressed as the
// options say.
func (n *Node) saveSnapshotFile(index, term uint64, m Membership, data []byte, base uint64) error {
	enc := AppendMembership(nil, m)
	hdr := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(enc)), uint32(len(enc)))
	hdr = append(hdr, enc...)
	r := &yieldingReader{r: io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(data))}
	_, err := n.wal.SaveSnapshotFile(index, term, r, wal.SnapshotFileOptions{Codec: n.cfg.Snapshots.Compression, Base: base})
	return err
}
