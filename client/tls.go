package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// LoadTLS returns a TLS configuration for Config.TLS from PEM files: caFile
// holds the CA certificate(s) the nodes' certificates must chain to
// (required: a client that does not verify the node could be talking to
// anyone); certFile and keyFile hold this client's certificate and key,
// for nodes that require client certificates (kraftd --client-ca). Give
// both or neither. Every error names the file at fault.
//
// The configuration accepts TLS 1.2 and later. It leaves ServerName empty:
// each connection verifies the node's certificate against the host of the
// endpoint it dials (a DNS name or an IP address, e.g. 127.0.0.1 matches an
// IP SAN).
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, errors.New("kraft/client: LoadTLS: a CA file is required to verify the nodes' certificates")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("kraft/client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kraft/client: CA file %s: no PEM certificate in it", caFile)
	}
	conf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile == "" && keyFile == "" {
		return conf, nil
	}
	pair, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	conf.Certificates = []tls.Certificate{pair}
	return conf, nil
}

// LoadKeyPair loads a client certificate and its key from PEM files; both
// are required. Errors name the file at fault. LoadTLS uses it; it is
// exported for callers that build their own tls.Config (kraft-ctl's
// --insecure-skip-tls-verify, which has no CA file).
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	switch {
	case certFile == "":
		return tls.Certificate{}, fmt.Errorf("kraft/client: key file %s given without a certificate file", keyFile)
	case keyFile == "":
		return tls.Certificate{}, fmt.Errorf("kraft/client: certificate file %s given without a key file", certFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kraft/client: certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kraft/client: key file: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kraft/client: certificate file %s with key file %s: %w", certFile, keyFile, err)
	}
	return pair, nil
}

// tlsFor returns conf for a connection to addr: a clone whose ServerName is
// addr's host when conf names none, so the node's certificate is verified
// against the address dialled (a redirect to the leader included).
func tlsFor(conf *tls.Config, addr string) *tls.Config {
	if conf.ServerName != "" {
		return conf
	}
	c := conf.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		c.ServerName = host
	}
	return c
}

// The texts of TLS failures, which the tests and kraft-ctl's messages
// rely on.
const (
	textRequiresTLS = "requires TLS (this client has no TLS configuration: set Config.TLS, kraft-ctl --cacert)"
	textNotTLS      = "does not speak TLS (a plaintext port, or not a Kraft client port)"
)

// errRequiresTLS is the error of a plaintext client at a TLS-only port.
func errRequiresTLS(addr string, cause error) *Error {
	return &Error{Kind: ErrTLS, Text: fmt.Sprintf("endpoint %s %s", addr, textRequiresTLS), Err: cause}
}

// tlsHandshakeError classifies a failed TLS handshake with addr: a
// configuration problem (ErrTLS, not retried) or a transport failure
// (ErrUnavailable, retried elsewhere).
func tlsHandshakeError(addr string, err error) *Error {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &rh):
		return &Error{Kind: ErrTLS, Text: fmt.Sprintf("endpoint %s %s", addr, textNotTLS), Err: err}
	case errors.As(err, &cv):
		return &Error{Kind: ErrTLS, Text: fmt.Sprintf("endpoint %s: its certificate is not trusted (check the CA file and the certificate's names)", addr), Err: err}
	case isRemoteAlert(err):
		return tlsRefusedError(addr, err)
	}
	return &Error{Kind: ErrUnavailable, Err: fmt.Errorf("TLS handshake with %s: %w", addr, err)}
}

// isRemoteAlert reports whether err is a TLS alert the node sent: it
// refused the handshake (client certificate missing or not trusted, no
// common version). With TLS 1.3 the client learns it only on its first
// read, after its own side of the handshake has completed.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && strings.HasPrefix(op.Err.Error(), "tls: ")
}

func tlsRefusedError(addr string, err error) *Error {
	text := fmt.Sprintf("endpoint %s refused the TLS handshake", addr)
	if msg := err.Error(); strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority") {
		text += " (it requires a client certificate its CA signed: LoadTLS's certFile and keyFile, kraft-ctl --cert and --key)"
	}
	return &Error{Kind: ErrTLS, Text: text, Err: err}
}

// looksLikeTLSRecord reports whether b (at least 3 bytes) starts like a
// TLS record (content type 20-23, version 3.x): what a TLS-only port sends
// back to a plaintext Hello when it answers with an alert instead of an
// Error frame.
func looksLikeTLSRecord(b []byte) bool {
	return len(b) >= 3 && b[0] >= 20 && b[0] <= 23 && b[1] == 3 && b[2] <= 4
}
