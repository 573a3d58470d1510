package netio

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// Config configures a Transport. Zero durations and sizes take the defaults
// of DefaultConfig when passed through WithDefaults.
type Config struct {
	NodeID    uint64
	ClusterID uint64
	// PeerAddr and ClientAddr are the listen addresses (host:port) of the
	// peer port (7001) and the client port (7002). ClientAddr may be empty
	// for a transport that serves peers only.
	PeerAddr   string
	ClientAddr string
	// Peers maps node IDs to their peer-port addresses. It may change at
	// run time through Transport.SetPeer and RemovePeer.
	Peers map[uint64]string

	// Advertise* are the addresses other nodes and clients should use to
	// reach this node (sent in the peer handshake). Empty: the listen
	// address is used, which is right unless it is a wildcard.
	AdvertisePeer, AdvertiseClient, AdvertiseAdmin string
	// OnPeerHello, if set, is called with every peer handshake this node
	// receives (on a connection it accepted or dialled), so it can learn
	// where the sender can be reached. It runs on an event loop or a dial
	// goroutine and must not block.
	OnPeerHello func(h wire.Hello)

	// ServerLoops and DialerLoops set the gnet event-loop counts for
	// accepted and dialled connections. They are explicit because
	// runtime.NumCPU is wrong in containers and a 2-core host wants few.
	ServerLoops int
	DialerLoops int

	MaxFrameBytes int
	// MaxInflightBytesPerConn bounds the bytes queued for one connection
	// (a peer or a client): encoded and not yet handed to the kernel.
	// Beyond it Send returns ErrBusy; Raft retransmits.
	MaxInflightBytesPerConn int

	// MaxConnsPerPort caps accepted connections on each of the peer and
	// client ports; beyond it a connection gets an "overloaded" Error frame.
	MaxConnsPerPort int

	// ReplicationCompression advertises wire.CapCompressS2 and compresses
	// the Appends sent to peers that advertise it too (S2, batches of at
	// least wire.DefaultCompressMinBytes that shrink). Compressed Appends
	// are decoded whatever this is, so it can differ between nodes.
	ReplicationCompression bool

	// DialTimeout bounds an outbound dial; HandshakeTimeout bounds the
	// handshake both ways: an accepted connection that has not completed
	// its Hello by then is closed (a slowloris holds nothing for long).
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	ReconnectMin     time.Duration // first backoff after a failed dial
	ReconnectMax     time.Duration // backoff cap

	// IdleTimeout closes a client connection that has sent no frame for
	// this long and waits for no response, with an Error frame saying so.
	// Peer connections are not idled: Raft heartbeats them.
	IdleTimeout time.Duration
	// MaxInflightRequestsPerConn bounds the requests of one client
	// connection handed to HandleClient and not yet answered (Respond).
	// Beyond it a request is answered StatusTooManyRequests at once and
	// never reaches the handler.
	MaxInflightRequestsPerConn int

	// PeerTLS, if set, serves the peer port with mutual TLS (crypto/tls
	// instead of gnet) and dials peers with it: both sides present a
	// certificate that verifies against the source's CA (required) and
	// names the node (NodeIDs): the node ID of the Hello must be one the
	// certificate names.
	PeerTLS *TLSSource
	// ClientTLS, if set, serves the client port with TLS. If the source
	// has a CA, clients must present a certificate that verifies against
	// it.
	ClientTLS *TLSSource

	Logger *slog.Logger
}

// DefaultConfig returns the defaults for everything but identity and
// addresses.
func DefaultConfig() Config {
	return Config{
		ServerLoops:             1,
		DialerLoops:             1,
		MaxFrameBytes:           wire.DefaultMaxFrameSize,
		MaxInflightBytesPerConn: 64 << 20,
		MaxConnsPerPort:         10000,
		DialTimeout:             time.Second,
		HandshakeTimeout:        2 * time.Second,
		ReconnectMin:            50 * time.Millisecond,
		ReconnectMax:            2 * time.Second,

		IdleTimeout:                5 * time.Minute,
		MaxInflightRequestsPerConn: 1024,
	}
}

// WithDefaults fills zero fields from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.ServerLoops == 0 {
		c.ServerLoops = d.ServerLoops
	}
	if c.DialerLoops == 0 {
		c.DialerLoops = d.DialerLoops
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxInflightBytesPerConn == 0 {
		c.MaxInflightBytesPerConn = d.MaxInflightBytesPerConn
	}
	if c.MaxConnsPerPort == 0 {
		c.MaxConnsPerPort = d.MaxConnsPerPort
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = d.ReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = d.ReconnectMax
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxInflightRequestsPerConn == 0 {
		c.MaxInflightRequestsPerConn = d.MaxInflightRequestsPerConn
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AdvertisePeer == "" {
		c.AdvertisePeer = c.PeerAddr
	}
	if c.AdvertiseClient == "" {
		c.AdvertiseClient = c.ClientAddr
	}
	return c
}

// Validate checks fields and their relations; errors name the field.
func (c Config) Validate() error {
	switch {
	case c.NodeID == 0:
		return fmt.Errorf("kraft/netio: NodeID must be non-zero")
	case c.PeerAddr == "":
		return fmt.Errorf("kraft/netio: PeerAddr is required")
	case c.ServerLoops < 1 || c.ServerLoops > 256:
		return fmt.Errorf("kraft/netio: ServerLoops must be in [1,256], got %d", c.ServerLoops)
	case c.DialerLoops < 1 || c.DialerLoops > 256:
		return fmt.Errorf("kraft/netio: DialerLoops must be in [1,256], got %d", c.DialerLoops)
	case c.MaxFrameBytes < 1<<10:
		return fmt.Errorf("kraft/netio: MaxFrameBytes must be at least 1KiB, got %d", c.MaxFrameBytes)
	case c.MaxInflightBytesPerConn < c.MaxFrameBytes:
		return fmt.Errorf("kraft/netio: MaxInflightBytesPerConn (%d) must hold one frame of MaxFrameBytes (%d)", c.MaxInflightBytesPerConn, c.MaxFrameBytes)
	case c.MaxConnsPerPort < 1:
		return fmt.Errorf("kraft/netio: MaxConnsPerPort must be positive, got %d", c.MaxConnsPerPort)
	case c.DialTimeout <= 0 || c.HandshakeTimeout <= 0:
		return fmt.Errorf("kraft/netio: DialTimeout and HandshakeTimeout must be positive")
	case c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin:
		return fmt.Errorf("kraft/netio: need 0 < ReconnectMin (%v) <= ReconnectMax (%v)", c.ReconnectMin, c.ReconnectMax)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("kraft/netio: IdleTimeout must be positive, got %v", c.IdleTimeout)
	case c.MaxInflightRequestsPerConn < 1:
		return fmt.Errorf("kraft/netio: MaxInflightRequestsPerConn must be positive, got %d", c.MaxInflightRequestsPerConn)
	case c.PeerTLS != nil && !c.PeerTLS.HasCA():
		return fmt.Errorf("kraft/netio: PeerTLS needs a CA file: peers authenticate each other (mutual TLS)")
	}
	for _, a := range []struct{ name, addr string }{{"PeerAddr", c.PeerAddr}, {"ClientAddr", c.ClientAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("kraft/netio: %s %q: %v", a.name, a.addr, err)
		}
	}
	for _, a := range []string{c.AdvertisePeer, c.AdvertiseClient, c.AdvertiseAdmin} {
		if len(a) > 255 {
			return fmt.Errorf("kraft/netio: advertised address %q longer than 255 bytes", a)
		}
	}
	if c.ClientAddr != "" && c.ClientAddr == c.PeerAddr {
		return fmt.Errorf("kraft/netio: PeerAddr and ClientAddr are both %q", c.PeerAddr)
	}
	for id, addr := range c.Peers {
		if id == 0 {
			return fmt.Errorf("kraft/netio: Peers has node ID 0")
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("kraft/netio: Peers[%d] %q: %v", id, addr, err)
		}
	}
	return nil
}
