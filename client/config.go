package client

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// Config configures a Client. A zero field takes the default named on it;
// a negative one is an error.
type Config struct {
	// Endpoints are host:port addresses of nodes' client ports (7002 by
	// default). The client starts with the first and moves on when one is
	// unreachable or knows no leader; redirects may take it elsewhere.
	Endpoints []string
	// ClusterID must match the cluster's; a node of another cluster refuses
	// the handshake and the call fails with ErrRefused.
	ClusterID uint64

	// TLS, when set, makes every connection TLS (crypto/tls over the
	// standard net package); nil is plaintext. LoadTLS builds one from PEM
	// files. With ServerName empty, each node's certificate is verified
	// against the host of the address dialled (endpoint or redirect
	// target): a DNS SAN for a name, an IP SAN for an address. MinVersion
	// must be TLS 1.2 or later (zero means crypto/tls's default, 1.2).
	TLS *tls.Config

	// DialTimeout bounds one TCP dial plus handshakes (TLS and Kraft's
	// Hello). Default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds a call, retries included, when its context has
	// no deadline of its own. Default 30s.
	RequestTimeout time.Duration
	// AttemptTimeout bounds the wait for one answer. A node silent for
	// that long (paused, cut off, wedged) has its connection dropped, and
	// every call on it is resent elsewhere with its seq. Default 2s.
	AttemptTimeout time.Duration
	// MaxRetries bounds the attempts after the first one (redirects, dial
	// failures and retryable answers all count). Default 5.
	MaxRetries int
	// RetryBackoff is the first wait before a retry that is not a redirect
	// to a known leader; each further wait doubles, up to RetryBackoffMax,
	// with jitter. Defaults 50ms and 1s.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// MaxInflight bounds the calls in progress at once; further calls block
	// until one finishes or their context ends. Keep it at or below the
	// server's per-session response cache (sm: 1024) so every pipelined
	// write stays retryable. Default 1024.
	MaxInflight int
	// SessionWindow bounds how far a session's writes may run ahead of its
	// oldest write in progress, counted in writes. It must not exceed the
	// server's per-session response cache (sm.KVConfig's
	// MaxCachedResponsesPerSession), or a write delayed behind that many
	// newer ones could find its answer forgotten and be refused. Default
	// 1024, sm's default.
	SessionWindow int
	// MaxFrameBytes bounds a frame in either direction. A response whose
	// length prefix exceeds it is refused before anything is allocated.
	// Default wire.DefaultMaxFrameSize.
	MaxFrameBytes int
	// SessionTimeout is the server's session timeout (sm.KVConfig). A write
	// first sent more than SessionTimeout/2 ago is never retried: its
	// session may have expired and a retry could reopen it (see sm's doc).
	// Default 60s.
	SessionTimeout time.Duration
}

// Default values of Config fields left zero.
const (
	DefaultDialTimeout     = 5 * time.Second
	DefaultRequestTimeout  = 30 * time.Second
	DefaultAttemptTimeout  = 2 * time.Second
	DefaultMaxRetries      = 5
	DefaultRetryBackoff    = 50 * time.Millisecond
	DefaultRetryBackoffMax = time.Second
	DefaultMaxInflight     = 1024
	DefaultSessionWindow   = 1024
	DefaultSessionTimeout  = 60 * time.Second

	// maxInflightLimit keeps MaxInflight a sane queue bound.
	maxInflightLimit = 1 << 16
	// minFrameBytes fits a response with empty sections.
	minFrameBytes = 64
)

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.DialTimeout, DefaultDialTimeout)
	set(&c.RequestTimeout, DefaultRequestTimeout)
	set(&c.AttemptTimeout, min(DefaultAttemptTimeout, c.RequestTimeout))
	set(&c.RetryBackoff, DefaultRetryBackoff)
	set(&c.RetryBackoffMax, DefaultRetryBackoffMax)
	set(&c.SessionTimeout, DefaultSessionTimeout)
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.SessionWindow == 0 {
		c.SessionWindow = DefaultSessionWindow
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = wire.DefaultMaxFrameSize
	}
	c.Endpoints = append([]string(nil), c.Endpoints...)
	return c
}

// Validate checks the configuration as New would use it (zero fields
// defaulted), including the relations between fields.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Endpoints) == 0 {
		return fmt.Errorf("kraft/client: no endpoints configured")
	}
	for _, ep := range c.Endpoints {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return fmt.Errorf("kraft/client: endpoint %q is not host:port: %v", ep, err)
		}
	}
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("kraft/client: DialTimeout must be positive, got %v", c.DialTimeout)
	case c.RequestTimeout < 0:
		return fmt.Errorf("kraft/client: RequestTimeout must be positive, got %v", c.RequestTimeout)
	case c.MaxRetries < 0:
		return fmt.Errorf("kraft/client: MaxRetries must not be negative, got %d", c.MaxRetries)
	case c.RetryBackoff < 0:
		return fmt.Errorf("kraft/client: RetryBackoff must be positive, got %v", c.RetryBackoff)
	case c.RetryBackoffMax < c.RetryBackoff:
		return fmt.Errorf("kraft/client: RetryBackoffMax (%v) must be at least RetryBackoff (%v)", c.RetryBackoffMax, c.RetryBackoff)
	case c.MaxInflight < 0 || c.MaxInflight > maxInflightLimit:
		return fmt.Errorf("kraft/client: MaxInflight must be in [1, %d], got %d", maxInflightLimit, c.MaxInflight)
	case c.SessionWindow < 0:
		return fmt.Errorf("kraft/client: SessionWindow must be positive, got %d", c.SessionWindow)
	case c.MaxFrameBytes < minFrameBytes:
		return fmt.Errorf("kraft/client: MaxFrameBytes must be at least %d, got %d", minFrameBytes, c.MaxFrameBytes)
	case c.SessionTimeout < 0:
		return fmt.Errorf("kraft/client: SessionTimeout must be positive, got %v", c.SessionTimeout)
	case c.AttemptTimeout < 0:
		return fmt.Errorf("kraft/client: AttemptTimeout must be positive, got %v", c.AttemptTimeout)
	case c.AttemptTimeout > c.RequestTimeout:
		return fmt.Errorf("kraft/client: AttemptTimeout (%v) must not exceed RequestTimeout (%v)", c.AttemptTimeout, c.RequestTimeout)
	case c.TLS != nil && c.TLS.MinVersion != 0 && c.TLS.MinVersion < tls.VersionTLS12:
		return fmt.Errorf("kraft/client: TLS.MinVersion must be TLS 1.2 or later, got %s", tls.VersionName(c.TLS.MinVersion))
	case c.DialTimeout > c.RequestTimeout:
		return fmt.Errorf("kraft/client: DialTimeout (%v) must not exceed RequestTimeout (%v)", c.DialTimeout, c.RequestTimeout)
	}
	return nil
}
