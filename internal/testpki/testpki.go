// Package testpki makes throwaway certificate authorities and leaf
// certificates for tests: an ECDSA P-256 CA per PKI, leaves written as PEM
// files that the code under test loads like an operator's files.
//
//	pki := testpki.New(t, t.TempDir())
//	cert, key := pki.Node(2)        // kraft://node/2, kraft-node2, localhost, 127.0.0.1
//	ca := pki.CAFile()
//	other := testpki.New(t, dir)    // an unrelated CA: its leaves do not verify against ca
//
// Node certificates carry the identities Kraft checks on peer connections
// (a URI SAN kraft://node/<id> and a DNS SAN kraft-node<id>), plus
// localhost and 127.0.0.1 so that standard hostname verification works in
// tests too. Every leaf may serve and authenticate as a client.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PKI is one certificate authority and the leaves it issued, all under one
// directory of its own.
type PKI struct {
	t      testing.TB
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey

	mu     sync.Mutex
	serial int64
}

// New creates a CA in a new subdirectory of dir and writes its certificate
// there (CAFile). Each call makes an unrelated CA, so two PKIs in one
// directory do not trust each other's leaves.
func New(t testing.TB, dir string) *PKI {
	t.Helper()
	sub, err := os.MkdirTemp(dir, "pki-")
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kraft test CA " + filepath.Base(sub)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{t: t, dir: sub, ca: ca, caKey: key, serial: 1}
	p.caFile = filepath.Join(sub, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

// CAFile is the PEM file of the CA certificate.
func (p *PKI) CAFile() string { return p.caFile }

// Dir is the directory holding this PKI's files.
func (p *PKI) Dir() string { return p.dir }

// Node issues a certificate naming node id (URI SAN kraft://node/<id>, DNS
// SANs kraft-node<id> and localhost, IP SAN 127.0.0.1).
func (p *PKI) Node(id uint64) (certFile, keyFile string) {
	return p.Issue(NodeSpec(id))
}

// Client issues a client certificate with CommonName name and no node
// identity.
func (p *PKI) Client(name string) (certFile, keyFile string) {
	return p.Issue(Spec{Name: name})
}

// NoIdentity issues a certificate that is valid for localhost and
// 127.0.0.1 but names no node: accepted by TLS, refused as a peer.
func (p *PKI) NoIdentity(name string) (certFile, keyFile string) {
	return p.Issue(Spec{Name: name, DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// Expired issues a node certificate for id that expired an hour ago.
func (p *PKI) Expired(id uint64) (certFile, keyFile string) {
	s := NodeSpec(id)
	s.Name = fmt.Sprintf("node%d-expired", id)
	s.NotBefore, s.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	return p.Issue(s)
}

// Spec describes a leaf certificate. Name is its CommonName and the base of
// its file names; zero NotBefore/NotAfter mean "valid from an hour ago for
// a day".
type Spec struct {
	Name                string
	DNS                 []string
	IPs                 []net.IP
	URIs                []string
	NotBefore, NotAfter time.Time
}

// NodeSpec is the Spec that Node uses for id.
func NodeSpec(id uint64) Spec {
	return Spec{
		Name: fmt.Sprintf("node%d", id),
		DNS:  []string{fmt.Sprintf("kraft-node%d", id), "localhost"},
		IPs:  []net.IP{net.IPv4(127, 0, 0, 1)},
		URIs: []string{fmt.Sprintf("kraft://node/%d", id)},
	}
}

// Issue signs a leaf described by s with the CA and writes
// <Name>-<serial>.pem and <Name>-<serial>-key.pem (a fresh pair per call,
// so a test can issue a replacement certificate for the same name).
func (p *PKI) Issue(s Spec) (certFile, keyFile string) {
	p.t.Helper()
	p.mu.Lock()
	p.serial++
	serial := p.serial
	p.mu.Unlock()
	if s.NotBefore.IsZero() {
		s.NotBefore = time.Now().Add(-time.Hour)
	}
	if s.NotAfter.IsZero() {
		s.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: s.Name},
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     s.DNS,
		IPAddresses:  s.IPs,
	}
	for _, u := range s.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			p.t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	key := newKey(p.t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	base := filepath.Join(p.dir, fmt.Sprintf("%s-%d", s.Name, serial))
	certFile, keyFile = base+".pem", base+"-key.pem"
	writePEM(p.t, certFile, "CERTIFICATE", der)
	writePEM(p.t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
