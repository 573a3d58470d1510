package wire

import (
	"encoding/binary"
	"strconv"
)

// FrameHeaderSize is the length prefix (u32) plus the type byte.
const FrameHeaderSize = 5

// DefaultMaxFrameSize bounds a frame's length field unless configured
// otherwise. It must hold the largest AppendEntries batch and snapshot chunk
// a node sends.
const DefaultMaxFrameSize = 16 << 20

// MsgType identifies a frame's message. Zero is never valid, so a zeroed
// buffer cannot be mistaken for a message.
type MsgType uint8

const (
	MsgInvalid MsgType = 0

	// Raft peer messages (port 7001).
	MsgAppend         MsgType = 1  // AppendEntries
	MsgAppendResp     MsgType = 2  // AppendEntries response
	MsgVote           MsgType = 3  // RequestVote
	MsgVoteResp       MsgType = 4  // RequestVote response
	MsgPreVote        MsgType = 5  // PreVote
	MsgPreVoteResp    MsgType = 6  // PreVote response
	MsgSnapshot       MsgType = 7  // InstallSnapshot chunk
	MsgSnapshotResp   MsgType = 8  // InstallSnapshot response
	MsgTimeoutNow     MsgType = 9  // leadership transfer: campaign now
	MsgHeartbeat      MsgType = 10 // heartbeat with commit index and read context
	MsgHeartbeatResp  MsgType = 11 // heartbeat response echoing the read context
	MsgReadIndex      MsgType = 12 // follower asks the leader for a read index
	MsgReadIndexResp  MsgType = 13 // leader's answer to MsgReadIndex
	maxRaftMsgType    MsgType = 13
	MsgClientRequest  MsgType = 32 // client → node (port 7002)
	MsgClientResponse MsgType = 33 // node → client
	MsgError          MsgType = 63 // either direction: error text, then the sender closes
)

var msgTypeNames = [...]string{
	MsgInvalid: "Invalid", MsgAppend: "Append", MsgAppendResp: "AppendResp",
	MsgVote: "Vote", MsgVoteResp: "VoteResp", MsgPreVote: "PreVote",
	MsgPreVoteResp: "PreVoteResp", MsgSnapshot: "Snapshot",
	MsgSnapshotResp: "SnapshotResp", MsgTimeoutNow: "TimeoutNow",
	MsgHeartbeat: "Heartbeat", MsgHeartbeatResp: "HeartbeatResp",
	MsgReadIndex: "ReadIndex", MsgReadIndexResp: "ReadIndexResp",
	MsgClientRequest: "ClientRequest", MsgClientResponse: "ClientResponse",
	MsgError: "Error",
}

func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) && msgTypeNames[t] != "" {
		return msgTypeNames[t]
	}
	return "MsgType(" + strconv.Itoa(int(t)) + ")"
}

// IsRaft reports whether t is a peer-to-peer Raft message.
func (t MsgType) IsRaft() bool { return t >= MsgAppend && t <= maxRaftMsgType }

// Frame is a decoded frame header with a view of its body. Body aliases the
// input of ParseFrame and is valid only as long as that input is.
type Frame struct {
	Type MsgType
	Body []byte
}

// ParseFrame reads one frame from the start of b. It returns the frame and
// the number of bytes it occupies. When b does not yet hold a whole frame it
// returns n == 0 and a nil error: the caller should read more and call again.
// A length above maxFrame is rejected before the caller allocates or waits
// for the body; maxFrame <= 0 means DefaultMaxFrameSize.
func ParseFrame(b []byte, maxFrame int) (f Frame, n int, err error) {
	if len(b) < 4 {
		return Frame{}, 0, nil
	}
	size, err := frameSize(b, maxFrame)
	if err != nil {
		return Frame{}, 0, err
	}
	if len(b) < size {
		return Frame{}, 0, nil
	}
	return Frame{Type: MsgType(b[4]), Body: b[FrameHeaderSize:size]}, size, nil
}

// FrameSize returns the total size (prefix included) of the frame starting at
// b once its 4-byte length prefix is available, so a reader can size one
// buffer for it. It returns 0 and a nil error when fewer than 4 bytes are
// present.
func FrameSize(b []byte, maxFrame int) (int, error) {
	if len(b) < 4 {
		return 0, nil
	}
	return frameSize(b, maxFrame)
}

func frameSize(b []byte, maxFrame int) (int, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 {
		return 0, errorf(ErrMalformed, 0, "frame length 0 (no type byte)")
	}
	if uint64(l) > uint64(maxFrame) {
		return 0, errorf(ErrFrameTooLarge, 0, "length %d > max %d", l, maxFrame)
	}
	return int(l) + 4, nil
}

// beginFrame appends a frame header with a placeholder length and returns
// the extended buffer and the header's offset for endFrame.
func beginFrame(dst []byte, t MsgType) ([]byte, int) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(t))
	return dst, start
}

// endFrame patches the length prefix of the frame begun at start.
func endFrame(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendErrorFrame appends an MsgError frame carrying code and text. A
// sender writes it before closing a connection it refuses, so the other side
// can log why.
func AppendErrorFrame(dst []byte, code ErrorCode, text string) []byte {
	dst, start := beginFrame(dst, MsgError)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, text...)
	return endFrame(dst, start)
}

// ErrorCode classifies an MsgError frame.
type ErrorCode uint16

const (
	ErrCodeUnknown         ErrorCode = 0
	ErrCodeBadHandshake    ErrorCode = 1 // magic, version or role refused
	ErrCodeClusterMismatch ErrorCode = 2
	ErrCodeNodeMismatch    ErrorCode = 3 // unknown or duplicate node ID
	ErrCodeBadFrame        ErrorCode = 4 // a frame failed to decode; the connection closes
	ErrCodeOverloaded      ErrorCode = 5 // connection or in-flight limit reached
	// ErrCodeIdentity: mutual TLS: the handshake claims a node ID that the
	// certificate does not name.
	ErrCodeIdentity ErrorCode = 6
	// ErrCodeTLSRequired: a plaintext connection reached a TLS port; this
	// frame is the one thing sent in plaintext there.
	ErrCodeTLSRequired ErrorCode = 7
	// ErrCodeIdleTimeout: the connection sent nothing for the server's
	// idle timeout and is closed.
	ErrCodeIdleTimeout ErrorCode = 8
)

// DecodeErrorFrame decodes the body of an MsgError frame. text aliases body.
func DecodeErrorFrame(body []byte) (code ErrorCode, text []byte, err error) {
	if len(body) < 2 {
		return 0, nil, errorf(ErrTruncated, 0, "error frame body %d bytes, need 2", len(body))
	}
	return ErrorCode(binary.LittleEndian.Uint16(body)), body[2:], nil
}
