package sm

import (
	"encoding/binary"
	"fmt"

	"github.com/kraftdb/kraft/wire"
)

// A KV command is the log payload of one client write:
//
//	0            8
//	+------------+-----------------------------------------+
//	| leader ns  | ClientRequest body, as the client sent it |
//	+------------+-----------------------------------------+
//	  u64 (unix nanoseconds on the leader when proposed)
//
// The request body is proposed exactly as it arrived, so the leader never
// re-encodes it. The leader's clock reading is the only notion of time the
// KV store has: session expiry compares these stamps, which are the same on
// every replica, so it is deterministic.
const commandHeaderSize = 8

// AppendCommand appends the KV command for a client request body (as
// decoded from an MsgClientRequest frame) stamped with the leader's time.
func AppendCommand(dst []byte, leaderUnixNano int64, requestBody []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(leaderUnixNano))
	return append(dst, requestBody...)
}

// decodeCommand splits a command into its stamp and decoded request.
func decodeCommand(data []byte, req *wire.ClientRequest) (int64, error) {
	if len(data) < commandHeaderSize {
		return 0, fmt.Errorf("kraft/sm: command of %d bytes is shorter than its header", len(data))
	}
	if err := wire.DecodeClientRequest(data[commandHeaderSize:], req); err != nil {
		return 0, fmt.Errorf("kraft/sm: command: %w", err)
	}
	return int64(binary.LittleEndian.Uint64(data)), nil
}
