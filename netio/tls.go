package netio

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kraftdb/kraft/wire"
)

// TLSSource is a certificate, its key and optionally a CA bundle, loaded
// from PEM files and reloadable at run time (SIGHUP). The tls.Configs it
// hands out read the current material on every handshake, so a Reload
// affects new connections only; established ones keep their session.
//
// One source serves one port: the peer port (mutual TLS, the CA verifies
// both directions), the client port (the CA, when given, verifies client
// certificates), or the admin HTTPS port (ServerConfig as
// http.Server.TLSConfig).
type TLSSource struct {
	certFile, keyFile, caFile string

	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[tlsMaterial]
}

type tlsMaterial struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil: no CA configured
}

// NewTLSSource loads certFile and keyFile and, if caFile is not empty, the
// CA bundle that verifies the other side. Errors name the file.
func NewTLSSource(certFile, keyFile, caFile string) (*TLSSource, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("kraft/netio: TLS needs both a certificate and a key file")
	}
	s := &TLSSource{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files. On failure the source keeps what it had and
// the error names the file; on success new handshakes use the new
// certificate and CA.
func (s *TLSSource) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("kraft/netio: loading certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("kraft/netio: parsing certificate %s: %w", s.certFile, err)
		}
	}
	m := &tlsMaterial{cert: &cert}
	if s.caFile != "" {
		b, err := os.ReadFile(s.caFile)
		if err != nil {
			return fmt.Errorf("kraft/netio: reading CA file: %w", err)
		}
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("kraft/netio: CA file %s holds no PEM certificate", s.caFile)
		}
	}
	s.cur.Store(m)
	return nil
}

// HasCA reports whether the source verifies the other side against a CA.
func (s *TLSSource) HasCA() bool { return s.cur.Load().pool != nil }

// Certificate is the certificate currently served.
func (s *TLSSource) Certificate() *x509.Certificate { return s.cur.Load().cert.Leaf }

// ServerConfig returns a config for a listener (a netio port, or the admin
// HTTPS server as http.Server.TLSConfig with ServeTLS(ln, "", "")). With
// requireClientCert, clients must present a certificate that verifies
// against the CA (the source must have one) for client authentication.
// Certificate and CA are those current at each handshake.
//
// The client certificate is verified in VerifyConnection rather than by
// RequireAndVerifyClientCert with ClientCAs: a static ClientCAs could not
// follow Reload, and GetConfigForClient (which could) hides the
// NextProtos that net/http sets on its clone of the config.
func (s *TLSSource) ServerConfig(requireClientCert bool) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		},
	}
	if requireClientCert {
		c.ClientAuth = tls.RequireAnyClientCert
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			return s.verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, "client")
		}
	}
	return c
}

// ClientConfig returns a config for dialling a server whose certificate
// verifies against the source's CA (or the system roots without one) and
// names serverName (standard hostname verification). The source's
// certificate is presented when the server asks for one.
func (s *TLSSource) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// Verification happens in VerifyConnection with the CA current at
		// this handshake, which a static RootCAs could not give.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyChain(cs, func(c *x509.Certificate) error { return c.VerifyHostname(serverName) })
		},
		GetClientCertificate: s.clientCert,
	}
}

// PeerConfig returns a config for dialling node want on its peer port: the
// chain must verify against the CA and the certificate must name want
// (NodeIDs). Host names are not checked, since peer addresses may be IP
// addresses or go through NAT. want 0 accepts any node's certificate
// (Probe, which learns the node ID from the handshake).
func (s *TLSSource) PeerConfig(want uint64) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection, see ClientConfig
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyChain(cs, func(c *x509.Certificate) error {
				ids := NodeIDs(c)
				if want == 0 && len(ids) > 0 {
					return nil
				}
				for _, id := range ids {
					if id == want {
						return nil
					}
				}
				return &identityError{want: want, names: ids, subject: c.Subject.String(), dialled: true}
			})
		},
		GetClientCertificate: s.clientCert,
	}
}

func (s *TLSSource) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return s.cur.Load().cert, nil
}

// verifyChain checks the server's chain against the current CA, then
// check on the leaf.
func (s *TLSSource) verifyChain(cs tls.ConnectionState, check func(*x509.Certificate) error) error {
	if err := s.verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, "server"); err != nil {
		return err
	}
	return check(cs.PeerCertificates[0])
}

// verify checks a presented chain against the current CA (the system
// roots without one) for the given use.
func (s *TLSSource) verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, side string) error {
	if len(chain) == 0 {
		return fmt.Errorf("kraft/netio: the %s presented no certificate", side)
	}
	pool := s.cur.Load().pool
	if pool == nil && side == "client" {
		return errors.New("kraft/netio: client certificates required but no CA configured")
	}
	leaf := chain[0]
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("kraft/netio: %s certificate %q: %w", side, leaf.Subject.String(), err)
	}
	return nil
}

// identityError: a verified certificate that does not name the node the
// connection is for: the node we dialled, or the node the remote's Hello
// claims.
type identityError struct {
	want    uint64
	names   []uint64
	subject string
	dialled bool
}

func (e *identityError) Error() string {
	if e.dialled {
		return fmt.Sprintf("kraft/netio: dialled node %d, but the server's TLS certificate %q names nodes %v", e.want, e.subject, e.names)
	}
	return fmt.Sprintf("kraft/netio: the handshake claims node %d, but the TLS certificate %q names nodes %v", e.want, e.subject, e.names)
}

// Unwrap classifies it with the handshake's node ID mismatches.
func (e *identityError) Unwrap() error { return wire.ErrNodeMismatch }

// NodeIDs returns the node IDs a certificate names: a URI SAN
// kraft://node/<id>, or a DNS SAN whose first label is kraft-node<id>
// (kraft-node3.internal.example.com names node 3).
func NodeIDs(c *x509.Certificate) []uint64 {
	var ids []uint64
	add := func(s string) {
		if id, err := strconv.ParseUint(s, 10, 64); err == nil && id != 0 && strconv.FormatUint(id, 10) == s {
			for _, have := range ids {
				if have == id {
					return
				}
			}
			ids = append(ids, id)
		}
	}
	for _, u := range c.URIs {
		if u.Scheme == "kraft" && u.Host == "node" && u.RawQuery == "" && u.Fragment == "" {
			add(strings.TrimPrefix(u.Path, "/"))
		}
	}
	for _, d := range c.DNSNames {
		label, _, _ := strings.Cut(d, ".")
		if rest, ok := strings.CutPrefix(strings.ToLower(label), "kraft-node"); ok {
			add(rest)
		}
	}
	return ids
}

// NodeURI is the URI SAN that names node id in a certificate.
func NodeURI(id uint64) *url.URL {
	return &url.URL{Scheme: "kraft", Host: "node", Path: "/" + strconv.FormatUint(id, 10)}
}
