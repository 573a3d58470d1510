package wire

import "encoding/binary"

// Message is one Raft peer message. Which fields travel depends on Type (the
// layouts table below and doc.go); the rest are zero after decoding.
//
// Entries, Meta and Data alias the frame they were decoded from: a receiver
// that keeps them past the connection callback must copy them. A compressed
// Append is the exception: its Entries alias a buffer m keeps for inflating
// (see DecodeMessageLimit), valid until the next decode into m.
type Message struct {
	Type MsgType
	From uint64
	To   uint64
	Term uint64

	// Index: Append prev log index; AppendResp match index (or, rejected,
	// the prev index that did not match); Vote/PreVote last log index;
	// Snapshot and SnapshotResp snapshot index; HeartbeatResp the
	// follower's last log index; ReadIndexResp the read index.
	Index uint64
	// LogTerm: Append prev log term; AppendResp conflict term; Vote/PreVote
	// last log term; Snapshot snapshot term.
	LogTerm uint64
	// Commit: the leader's commit index (Append, Heartbeat).
	Commit uint64
	// Hint: rejected AppendResp, for fast backtracking (Raft §5.3): the
	// follower's last index whose term is at most the Append's prev log
	// term (LogTerm holds that term).
	Hint uint64
	// Context: an opaque read-index context echoed by the receiver
	// (Heartbeat, HeartbeatResp, ReadIndex, ReadIndexResp).
	Context uint64
	// Offset: Snapshot byte offset of Data; SnapshotResp bytes stored.
	Offset uint64
	// Size: Snapshot total size in bytes.
	Size uint64

	Reject   bool // responses: the request was refused
	Transfer bool // Vote/PreVote: campaign started by TimeoutNow (ignores leases)
	Done     bool // Snapshot: this is the last chunk
	// Compressed: set by the decoder when an Append arrived with its
	// records S2-compressed (AppendMessageCompressed). Encoders ignore it.
	Compressed bool

	// EntryCount and Entries: Append's records, verified on decode.
	EntryCount int
	Entries    []byte
	// Meta: Snapshot's membership at the snapshot index (encoded by core).
	Meta []byte
	// Data: Snapshot chunk bytes.
	Data []byte

	// inflated is where a compressed Append's records are decompressed.
	// It survives decodes into the same Message, so a connection that
	// decodes into one Message reaches a steady state with no allocation.
	inflated []byte
}

const (
	flagReject   = 1 << 0
	flagTransfer = 1 << 1
	flagDone     = 1 << 2
	// flagCompressed: Append only; the records after the count are one S2
	// block (compress.go).
	flagCompressed = 1 << 3
	knownFlags     = flagReject | flagTransfer | flagDone | flagCompressed

	// raftHeaderSize: from u64, to u64, term u64, flags u8.
	raftHeaderSize = 25
)

type field uint8

const (
	fIndex field = iota
	fLogTerm
	fCommit
	fHint
	fContext
	fOffset
	fSize
)

// layouts lists, per message type, the u64 fields that follow the common
// header, in wire order. Append and Snapshot have a variable tail after them.
var layouts = [maxRaftMsgType + 1][]field{
	MsgAppend:        {fIndex, fLogTerm, fCommit},
	MsgAppendResp:    {fIndex, fHint, fLogTerm},
	MsgVote:          {fIndex, fLogTerm},
	MsgVoteResp:      {},
	MsgPreVote:       {fIndex, fLogTerm},
	MsgPreVoteResp:   {},
	MsgSnapshot:      {fIndex, fLogTerm, fOffset, fSize},
	MsgSnapshotResp:  {fIndex, fOffset},
	MsgTimeoutNow:    {},
	MsgHeartbeat:     {fCommit, fContext},
	MsgHeartbeatResp: {fIndex, fContext},
	MsgReadIndex:     {fContext},
	MsgReadIndexResp: {fIndex, fContext},
}

func (m *Message) field(f field) *uint64 {
	switch f {
	case fIndex:
		return &m.Index
	case fLogTerm:
		return &m.LogTerm
	case fCommit:
		return &m.Commit
	case fHint:
		return &m.Hint
	case fContext:
		return &m.Context
	case fOffset:
		return &m.Offset
	default:
		return &m.Size
	}
}

// AppendMessage appends m as one complete frame.
func AppendMessage(dst []byte, m *Message) []byte {
	dst, start := appendMessageHead(dst, m, 0)
	switch m.Type {
	case MsgAppend:
		dst = append(dst, m.Entries...)
	case MsgSnapshot:
		dst = append(dst, m.Data...)
	}
	return endFrame(dst, start)
}

// AppendMessageHead appends everything of m's frame except its bulk tail
// (Append's Entries, Snapshot's Data), with a length prefix that counts the
// tail. Writing the result followed by the tail (writev) sends the frame
// without copying the entries, e.g. straight from the WAL mapping.
func AppendMessageHead(dst []byte, m *Message) []byte {
	dst, start := appendMessageHead(dst, m, 0)
	tail := 0
	switch m.Type {
	case MsgAppend:
		tail = len(m.Entries)
	case MsgSnapshot:
		tail = len(m.Data)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4+tail))
	return dst
}

// appendMessageHead writes the frame header, the common header with m's
// flags plus extraFlags, the layout's fields and the fixed part of the tail.
func appendMessageHead(dst []byte, m *Message, extraFlags byte) ([]byte, int) {
	if !m.Type.IsRaft() {
		panic("kraft: BUG: AppendMessage with non-raft type " + m.Type.String())
	}
	dst, start := beginFrame(dst, m.Type)
	dst = binary.LittleEndian.AppendUint64(dst, m.From)
	dst = binary.LittleEndian.AppendUint64(dst, m.To)
	dst = binary.LittleEndian.AppendUint64(dst, m.Term)
	flags := extraFlags
	if m.Reject {
		flags |= flagReject
	}
	if m.Transfer {
		flags |= flagTransfer
	}
	if m.Done {
		flags |= flagDone
	}
	dst = append(dst, flags)
	for _, f := range layouts[m.Type] {
		dst = binary.LittleEndian.AppendUint64(dst, *m.field(f))
	}
	switch m.Type {
	case MsgAppend:
		dst = binary.LittleEndian.AppendUint32(dst, uint32(m.EntryCount))
	case MsgSnapshot:
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(m.Meta)))
		dst = append(dst, m.Meta...)
	}
	return dst, start
}

// DecodeMessage decodes a Raft frame into m without allocating. For Append
// it verifies every entry record (structure, checksum, consecutive indexes
// from Index+1) and that EntryCount matches. On error m is left partially
// filled and must not be used. A compressed Append is inflated within
// DefaultMaxFrameSize; a reader configured with another maximum frame size
// uses DecodeMessageLimit.
func DecodeMessage(f Frame, m *Message) error {
	return DecodeMessageLimit(f, m, 0)
}

// DecodeMessageLimit is DecodeMessage for a reader whose maximum frame size
// is maxFrame (<= 0: DefaultMaxFrameSize). A compressed Append must inflate
// to what would have been a frame of at most maxFrame as plain Append; that
// is checked from the block's header before anything is allocated. The
// records are inflated into a buffer kept in m and reused by later decodes
// into m (it only grows, to at most maxFrame), so steady state does not
// allocate.
func DecodeMessageLimit(f Frame, m *Message, maxFrame int) error {
	if !f.Type.IsRaft() {
		return errorf(ErrUnknownType, 4, "raft message type %d", uint8(f.Type))
	}
	b := f.Body
	fields := layouts[f.Type]
	fixed := raftHeaderSize + 8*len(fields)
	if len(b) < fixed {
		return errorf(ErrTruncated, 0, "%v needs %d bytes, have %d", f.Type, fixed, len(b))
	}
	// The inflate buffer outlives the reset. Reading it first keeps *m out
	// of the literal, which would otherwise be built in a temporary.
	inflated := m.inflated
	*m = Message{
		Type: f.Type,
		From: binary.LittleEndian.Uint64(b[0:]),
		To:   binary.LittleEndian.Uint64(b[8:]),
		Term: binary.LittleEndian.Uint64(b[16:]),
	}
	m.inflated = inflated
	flags := b[24]
	if flags&^knownFlags != 0 {
		return errorf(ErrMalformed, 24, "unknown flag bits %#02x", flags)
	}
	if flags&flagCompressed != 0 && f.Type != MsgAppend {
		return errorf(ErrMalformed, 24, "compressed flag on %v", f.Type)
	}
	m.Reject = flags&flagReject != 0
	m.Transfer = flags&flagTransfer != 0
	m.Done = flags&flagDone != 0
	off := raftHeaderSize
	for _, fl := range fields {
		*m.field(fl) = binary.LittleEndian.Uint64(b[off:])
		off += 8
	}
	switch {
	case flags&flagCompressed != 0:
		return decodeCompressedAppendTail(b, off, m, maxFrame)
	case f.Type == MsgAppend:
		return decodeAppendTail(b, off, m)
	case f.Type == MsgSnapshot:
		return decodeSnapshotTail(b, off, m)
	}
	if off != len(b) {
		return errorf(ErrMalformed, off, "%d trailing bytes after %v", len(b)-off, f.Type)
	}
	return nil
}

func decodeAppendTail(b []byte, off int, m *Message) error {
	if len(b)-off < 4 {
		return errorf(ErrTruncated, off, "Append entry count")
	}
	count := binary.LittleEndian.Uint32(b[off:])
	off += 4
	m.Entries = b[off:]
	n, err := VerifyEntries(m.Entries, m.Index+1)
	if err != nil {
		we := err.(*Error)
		we.Offset += off
		return we
	}
	if uint32(n) != count {
		return errorf(ErrMalformed, off-4, "Append says %d entries, carries %d", count, n)
	}
	m.EntryCount = n
	return nil
}

func decodeSnapshotTail(b []byte, off int, m *Message) error {
	if len(b)-off < 4 {
		return errorf(ErrTruncated, off, "Snapshot meta length")
	}
	metaLen := binary.LittleEndian.Uint32(b[off:])
	off += 4
	if uint64(metaLen) > uint64(len(b)-off) {
		return errorf(ErrMalformed, off-4, "Snapshot meta length %d past end (%d left)", metaLen, len(b)-off)
	}
	m.Meta = b[off : off+int(metaLen)]
	m.Data = b[off+int(metaLen):]
	if m.Offset+uint64(len(m.Data)) > m.Size || m.Offset+uint64(len(m.Data)) < m.Offset {
		return errorf(ErrMalformed, off, "Snapshot chunk [%d,+%d) beyond size %d", m.Offset, len(m.Data), m.Size)
	}
	if m.Done && m.Offset+uint64(len(m.Data)) != m.Size {
		return errorf(ErrMalformed, off, "last Snapshot chunk ends at %d, size %d", m.Offset+uint64(len(m.Data)), m.Size)
	}
	return nil
}
