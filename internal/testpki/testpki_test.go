package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

func load(t *testing.T) func(certFile, keyFile string) *x509.Certificate {
	return func(certFile, keyFile string) *x509.Certificate { return loadPair(t, certFile, keyFile) }
}

func loadPair(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(t *testing.T, p *PKI) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(p.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	cp := x509.NewCertPool()
	if !cp.AppendCertsFromPEM(b) {
		t.Fatal("CA file holds no certificate")
	}
	return cp
}

func verify(c *x509.Certificate, roots *x509.CertPool, at time.Time) error {
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	return err
}

func TestNodeCertificateNamesTheNodeAndVerifies(t *testing.T) {
	dir := t.TempDir()
	a, b := New(t, dir), New(t, dir)
	c := load(t)(a.Node(3))
	if len(c.URIs) != 1 || c.URIs[0].String() != "kraft://node/3" {
		t.Fatalf("URIs = %v", c.URIs)
	}
	if len(c.DNSNames) != 2 || c.DNSNames[0] != "kraft-node3" || c.DNSNames[1] != "localhost" {
		t.Fatalf("DNS = %v", c.DNSNames)
	}
	if len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != "127.0.0.1" {
		t.Fatalf("IPs = %v", c.IPAddresses)
	}
	now := time.Now()
	if err := verify(c, pool(t, a), now); err != nil {
		t.Fatalf("a node cert does not verify against its CA: %v", err)
	}
	if err := verify(c, pool(t, b), now); err == nil {
		t.Fatal("a node cert verifies against an unrelated CA")
	}
	if err := verify(load(t)(a.Expired(3)), pool(t, a), now); err == nil {
		t.Fatal("the expired cert verifies")
	}
	anon := load(t)(a.NoIdentity("x"))
	if len(anon.URIs) != 0 || len(anon.DNSNames) != 1 {
		t.Fatalf("NoIdentity names %v %v", anon.URIs, anon.DNSNames)
	}
	if err := verify(load(t)(a.Client("ctl")), pool(t, a), now); err != nil {
		t.Fatal(err)
	}
	c1, _ := a.Node(3)
	c2, _ := a.Node(3)
	if c1 == c2 {
		t.Fatal("a second Node(3) overwrote the first files")
	}
}
