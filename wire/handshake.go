package wire

import (
	"encoding/binary"
	"fmt"
)

// Handshake constants. Every connection, peer or client, starts with each
// side sending a Hello; the acceptor checks the dialer's before answering
// with its own, or writes an MsgError frame and closes. A client Hello is
// HelloSize bytes; a peer Hello adds the sender's advertised addresses
// (HelloLen tells a reader how much to wait for).
const (
	HelloSize = 32
	// MaxHelloSize bounds a peer Hello: the fixed part, a u16 length and
	// three addresses of at most 255 bytes with a length byte each.
	MaxHelloSize = HelloSize + 2 + 3*256
	// Magic is "KRFT" read as a little-endian u32.
	Magic uint32 = 'K' | 'R'<<8 | 'F'<<16 | 'T'<<24
	// ProtocolVersion is bumped on any incompatible change of this package's
	// formats. Peers of different versions refuse each other.
	ProtocolVersion uint16 = 1
)

// Capability bits of Hello.Capabilities. A sender uses an optional feature
// on a connection only when both Hellos carry its bit; bits this build does
// not know are ignored, so a newer peer is not refused for having them.
const (
	// CapCompressS2: the sender's operator enabled replication compression.
	// A node compresses the Appends it sends to a peer (see
	// AppendMessageCompressed) only when its own Hello and the peer's both
	// carry the bit. Every build that knows the bit decodes compressed
	// Appends whether or not it advertised it, so a cluster with mixed
	// settings interoperates; a build that does not know the bit never
	// advertises it and so is never sent one.
	CapCompressS2 uint64 = 1 << 0
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
	// Peer hellos only: where the sender can be reached (host:port of its
	// peer, client and admin ports), so nodes learn each other's addresses
	// from the connections they accept.
	PeerAddr, ClientAddr, AdminAddr string
}

// AppendHello appends the handshake bytes for h (its Version is ignored:
// this build always sends ProtocolVersion).
func AppendHello(dst []byte, h Hello) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, Magic)
	dst = binary.LittleEndian.AppendUint16(dst, ProtocolVersion)
	dst = append(dst, byte(h.Role), 0)
	dst = binary.LittleEndian.AppendUint64(dst, h.Capabilities)
	dst = binary.LittleEndian.AppendUint64(dst, h.ClusterID)
	dst = binary.LittleEndian.AppendUint64(dst, h.NodeID)
	if h.Role != RolePeer {
		return dst
	}
	addrs := [3]string{h.PeerAddr, h.ClientAddr, h.AdminAddr}
	ext := 0
	for _, a := range addrs {
		if len(a) > 255 {
			panic("kraft: BUG: advertised address longer than 255 bytes: " + a)
		}
		ext += 1 + len(a)
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(ext))
	for _, a := range addrs {
		dst = append(dst, byte(len(a)))
		dst = append(dst, a...)
	}
	return dst
}

// HelloLen returns the size of the Hello at the start of b once enough of
// it has arrived to tell (0 and nil before that), so a reader knows how
// many bytes to wait for. It checks the magic first, so a stray protocol
// is refused after 4 bytes.
func HelloLen(b []byte) (int, error) {
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) != Magic {
		return 0, errorf(ErrBadMagic, 0, "got %q, want \"KRFT\": not a Kraft node or client (wrong port?)", printable(b[:4]))
	}
	if len(b) < HelloSize {
		return 0, nil
	}
	if Role(b[6]) != RolePeer {
		return HelloSize, nil
	}
	if len(b) < HelloSize+2 {
		return 0, nil
	}
	n := HelloSize + 2 + int(binary.LittleEndian.Uint16(b[HelloSize:]))
	if n > MaxHelloSize {
		return 0, errorf(ErrMalformed, HelloSize, "peer hello of %d bytes exceeds %d", n, MaxHelloSize)
	}
	return n, nil
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
	if h.Role != RolePeer {
		return h, nil
	}
	if h.NodeID == 0 {
		return Hello{}, errorf(ErrMalformed, 24, "peer handshake with node ID 0")
	}
	n, err := HelloLen(b)
	if err != nil {
		return Hello{}, err
	}
	if n == 0 || len(b) < n {
		return Hello{}, errorf(ErrTruncated, HelloSize, "peer handshake needs %d bytes, have %d", max(n, HelloSize+2), len(b))
	}
	ext := b[HelloSize+2 : n]
	var addrs [3]string
	for i := range addrs {
		if len(ext) < 1 || len(ext) < 1+int(ext[0]) {
			return Hello{}, errorf(ErrMalformed, n-len(ext), "peer handshake address %d runs past its section", i)
		}
		addrs[i] = string(ext[1 : 1+ext[0]])
		ext = ext[1+ext[0]:]
	}
	if len(ext) != 0 {
		return Hello{}, errorf(ErrMalformed, n-len(ext), "%d trailing bytes in the peer handshake", len(ext))
	}
	h.PeerAddr, h.ClientAddr, h.AdminAddr = addrs[0], addrs[1], addrs[2]
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
