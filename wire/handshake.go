package wire

import (
	"encoding/binary"
	"fmt"
)

// Handshake constants. Every connection, peer or client, starts with each
// side sending a Hello; the acceptor checks the dialer's before answering
// with its own, or writes an MsgError frame and closes.
const (
	HelloSize = 32
	// Magic is "KRFT" read as a little-endian u32.
	Magic uint32 = 'K' | 'R'<<8 | 'F'<<16 | 'T'<<24
	// ProtocolVersion is bumped on any incompatible change of this package's
	// formats. Peers of different versions refuse each other.
	ProtocolVersion uint16 = 1
)

// Role says what the dialer is.
type Role uint8

const (
	RolePeer   Role = 1 // another node of the cluster, on the peer port
	RoleClient Role = 2 // a client, on the client port
)

// Hello is the fixed-size handshake.
type Hello struct {
	Version   uint16
	Role      Role
	ClusterID uint64
	NodeID    uint64 // the sender's node ID; 0 for clients
	// Capabilities is a bit set of optional features the sender supports
	// (e.g. compression); both sides use the intersection.
	Capabilities uint64
}

// AppendHello appends the handshake bytes for h (its Version is ignored:
// this build always sends ProtocolVersion).
func AppendHello(dst []byte, h Hello) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, Magic)
	dst = binary.LittleEndian.AppendUint16(dst, ProtocolVersion)
	dst = append(dst, byte(h.Role), 0)
	dst = binary.LittleEndian.AppendUint64(dst, h.Capabilities)
	dst = binary.LittleEndian.AppendUint64(dst, h.ClusterID)
	return binary.LittleEndian.AppendUint64(dst, h.NodeID)
}

// DecodeHello parses the first HelloSize bytes of a connection. Anything
// that is not a Kraft handshake of this version is refused with an error an
// operator can act on.
func DecodeHello(b []byte) (Hello, error) {
	if len(b) < HelloSize {
		return Hello{}, errorf(ErrTruncated, 0, "handshake needs %d bytes, have %d", HelloSize, len(b))
	}
	if m := binary.LittleEndian.Uint32(b); m != Magic {
		return Hello{}, errorf(ErrBadMagic, 0, "got %q, want \"KRFT\": not a Kraft node or client (wrong port?)", printable(b[:4]))
	}
	h := Hello{
		Version:      binary.LittleEndian.Uint16(b[4:]),
		Role:         Role(b[6]),
		Capabilities: binary.LittleEndian.Uint64(b[8:]),
		ClusterID:    binary.LittleEndian.Uint64(b[16:]),
		NodeID:       binary.LittleEndian.Uint64(b[24:]),
	}
	if h.Version != ProtocolVersion {
		return Hello{}, errorf(ErrVersion, 4, "peer speaks version %d, this node %d", h.Version, ProtocolVersion)
	}
	if h.Role != RolePeer && h.Role != RoleClient {
		return Hello{}, errorf(ErrMalformed, 6, "unknown role %d", b[6])
	}
	if b[7] != 0 {
		return Hello{}, errorf(ErrMalformed, 7, "reserved byte is not zero")
	}
	if h.Role == RolePeer && h.NodeID == 0 {
		return Hello{}, errorf(ErrMalformed, 24, "peer handshake with node ID 0")
	}
	return h, nil
}

// Check verifies that h comes from the expected cluster and role. The
// errors name both sides' values, since they end up in both nodes' logs.
func (h Hello) Check(clusterID uint64, role Role) error {
	if h.ClusterID != clusterID {
		return fmt.Errorf("%w: remote is in cluster %d, this node in cluster %d", ErrClusterMismatch, h.ClusterID, clusterID)
	}
	if h.Role != role {
		return fmt.Errorf("%w: a %s connected to the %s port", ErrMalformed, h.Role, role)
	}
	return nil
}

func (r Role) String() string {
	switch r {
	case RolePeer:
		return "peer"
	case RoleClient:
		return "client"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}
