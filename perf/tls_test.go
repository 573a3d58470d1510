package perf

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"slices"
	"testing"

	"github.com/kraftdb/kraft/netio"
)

// The benchmark PKI's certificate names every node, chains to its CA, and
// serves both ends of a link.
func TestGenerateTLS(t *testing.T) {
	f, err := GenerateTLS(t.TempDir(), 5)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(kp.Certificate[0])
	if ids := netio.NodeIDs(leaf); !slices.Equal(ids, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("certificate names nodes %v", ids)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(f.CA)
	pool.AppendCertsFromPEM(pem)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatal(err)
		}
	}
	if flags := f.KraftdFlags(); len(flags) != 10 {
		t.Fatalf("kraftd flags %v", flags)
	}
}
