package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kraftdb/kraft/internal/testpki"
	"github.com/kraftdb/kraft/server"
	"github.com/kraftdb/kraft/wire"
)

// fakeAdmin is a node's admin API, over HTTPS when pki is given: /status
// answers with a one-node cluster whose client port is clientAddr.
type fakeAdmin struct {
	srv        *httptest.Server
	clientAddr string

	mu      sync.Mutex
	tokens  []string // Authorization headers received
	peerCNs []string // client certificates' CommonNames
}

func newFakeAdmin(t *testing.T, pki *testpki.PKI, requireClientCert bool) *fakeAdmin {
	t.Helper()
	fa := &fakeAdmin{clientAddr: "127.0.0.1:1"}
	fa.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fa.mu.Lock()
		fa.tokens = append(fa.tokens, r.Header.Get("Authorization"))
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			fa.peerCNs = append(fa.peerCNs, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		clientAddr := fa.clientAddr
		fa.mu.Unlock()
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(server.StatusBody{
			NodeID: 1, Cluster: "7", Role: "leader", Term: 3, Leader: 1, CommitIndex: 1234, Voters: []uint64{1},
			Members:   []server.MemberStatus{{ID: 1, Role: "voter", Client: clientAddr, Admin: fa.srv.Listener.Addr().String(), Connected: true}},
			Addresses: server.AddressesStatus{Client: clientAddr},
		})
	}))
	fa.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	t.Cleanup(fa.srv.Close)
	if pki == nil {
		fa.srv.Start()
		return fa
	}
	fa.srv.TLS = serverTLS(t, pki, requireClientCert)
	fa.srv.StartTLS()
	return fa
}

func (fa *fakeAdmin) addr() string { return fa.srv.Listener.Addr().String() }

// serverTLS is a node's TLS configuration with pki's certificate for
// node 1 (SANs localhost, 127.0.0.1).
func serverTLS(t *testing.T, pki *testpki.PKI, requireClientCert bool) *tls.Config {
	t.Helper()
	cert, key := pki.Node(1)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		pem, err := os.ReadFile(pki.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		conf.ClientCAs = x509.NewCertPool()
		conf.ClientCAs.AppendCertsFromPEM(pem)
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf
}

func wantFailure(t *testing.T, substrs []string, args ...string) string {
	t.Helper()
	code, out, errs := ctl(args...)
	if code != exitFailure || !strings.HasPrefix(errs, "Error: ") {
		t.Fatalf("kraft-ctl %q: exit %d, stdout %q, stderr %q; want exit 1 and an error", args, code, out, errs)
	}
	for _, s := range substrs {
		if !strings.Contains(errs, s) {
			t.Fatalf("kraft-ctl %q: stderr %q lacks %q", args, errs, s)
		}
	}
	t.Log(strings.TrimSpace(errs))
	return errs
}

func TestTLSFlagErrors(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Client("ops")
	missing := filepath.Join(t.TempDir(), "missing-ca.pem")
	wantUsageError(t, "--cert "+cert+" needs --key", "status", "--cert", cert)
	wantUsageError(t, "--key "+key+" needs --cert", "status", "--key", key)
	// trace-request has a --key of its own (the key to trace): its TLS key
	// flag is --tls-key.
	wantUsageError(t, "needs --tls-key", "trace-request", "--key", "k", "--cert", cert)
	wantUsageError(t, "exclude each other", "status", "--cacert", pki.CAFile(), "--insecure-skip-tls-verify")
	wantUsageError(t, "plaintext http://", "status", "--endpoints", "http://127.0.0.1:7003", "--cacert", pki.CAFile())
	wantUsageError(t, "mixes http://", "status", "--endpoints", "http://127.0.0.1:7003,https://127.0.0.1:7004")

	wantFailure(t, []string{"CA file", missing}, "status", "--cacert", missing)
	wantFailure(t, []string{"key file", missing}, "status", "--cacert", pki.CAFile(), "--cert", cert, "--key", missing)
	wantFailure(t, []string{cert, pki.CAFile()}, "status", "--cacert", pki.CAFile(), "--cert", cert, "--key", pki.CAFile())
	t.Setenv("KRAFT_CACERT", missing)
	wantFailure(t, []string{"CA file", missing}, "status")

	code, out, _ := ctl("trace-request", "--help")
	if code != exitOK || !strings.Contains(out, "-tls-key") || !strings.Contains(out, "-cacert") {
		t.Errorf("trace-request --help: %d\n%s", code, out)
	}
}

// The admin API over HTTPS: verified against --cacert, with a client
// certificate when the node requires one, the admin token still sent.
func TestAdminHTTPS(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Client("ops")

	fa := newFakeAdmin(t, pki, false)
	for _, ep := range []string{fa.addr(), "https://" + fa.addr()} {
		code, out, errs := ctl("status", "--endpoints", ep, "--cacert", pki.CAFile(), "--admin-token", "s3cret")
		if code != exitOK || !strings.Contains(out, "Commit Index: 1,234") {
			t.Fatalf("status over HTTPS at %s: exit %d\n%s%s", ep, code, out, errs)
		}
	}
	fa.mu.Lock()
	if len(fa.tokens) == 0 || fa.tokens[0] != "Bearer s3cret" {
		t.Errorf("token headers %q", fa.tokens)
	}
	fa.mu.Unlock()

	t.Setenv("KRAFT_CACERT", pki.CAFile())
	if code, _, errs := ctl("status", "--endpoints", fa.addr()); code != exitOK {
		t.Fatalf("status with KRAFT_CACERT: %d %s", code, errs)
	}
	t.Setenv("KRAFT_CACERT", "")

	// Each way of getting it wrong says what to change.
	wantFailure(t, []string{"serves HTTPS", "--cacert"}, "status", "--endpoints", fa.addr())
	wantFailure(t, []string{"not trusted", "--cacert"}, "status", "--endpoints", fa.addr(), "--cacert", testpki.New(t, t.TempDir()).CAFile())
	wantFailure(t, []string{"not trusted"}, "status", "--endpoints", "https://"+fa.addr()) // system roots
	plain := newFakeAdmin(t, nil, false)
	wantFailure(t, []string{"does not serve HTTPS"}, "status", "--endpoints", plain.addr(), "--cacert", pki.CAFile())

	code, out, errs := ctl("status", "--endpoints", fa.addr(), "--insecure-skip-tls-verify")
	if code != exitOK || !strings.Contains(out, "Commit Index") || !strings.Contains(errs, "Warning: --insecure-skip-tls-verify") {
		t.Fatalf("--insecure-skip-tls-verify: exit %d\n%s%s", code, out, errs)
	}

	mtls := newFakeAdmin(t, pki, true)
	wantFailure(t, []string{"client certificate", "--cert"}, "status", "--endpoints", mtls.addr(), "--cacert", pki.CAFile())
	if code, out, errs := ctl("status", "--endpoints", mtls.addr(), "--cacert", pki.CAFile(), "--cert", cert, "--key", key); code != exitOK {
		t.Fatalf("status with a client certificate: exit %d\n%s%s", code, out, errs)
	}
	mtls.mu.Lock()
	defer mtls.mu.Unlock()
	if len(mtls.peerCNs) == 0 || mtls.peerCNs[0] != "ops" {
		t.Errorf("the node saw client certificates %q", mtls.peerCNs)
	}
}

// put and get use the TLS flags on the client port too. The fake client
// port completes the TLS handshake and the Kraft Hello exchange, then
// refuses with a text only a TLS connection can have carried.
func TestClientPortTLS(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Client("ops")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS(t, pki, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				var hello [wire.HelloSize]byte
				if _, err := io.ReadFull(nc, hello[:]); err != nil {
					return
				}
				cn := nc.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
				_, _ = nc.Write(wire.AppendErrorFrame(nil, wire.ErrCodeBadHandshake, "over TLS from "+cn))
				_, _ = io.Copy(io.Discard, nc)
			}()
		}
	}()
	fa := newFakeAdmin(t, pki, false)
	fa.mu.Lock()
	fa.clientAddr = ln.Addr().String()
	fa.mu.Unlock()
	wantFailure(t, []string{"over TLS from ops"}, "put", "k", "v", "--endpoints", fa.addr(), "--cacert", pki.CAFile(), "--cert", cert, "--key", key, "--timeout", "2s")
}

// A plaintext kraft-ctl at a TLS-only client port is told to use --cacert.
func TestClientPortRequiresTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				var hello [wire.HelloSize]byte
				_, _ = io.ReadFull(nc, hello[:])
				_, _ = nc.Write(wire.AppendErrorFrame(nil, wire.ErrCodeTLSRequired, "this port requires TLS"))
			}()
		}
	}()
	fa := newFakeAdmin(t, nil, false)
	fa.mu.Lock()
	fa.clientAddr = ln.Addr().String()
	fa.mu.Unlock()
	wantFailure(t, []string{"endpoint " + ln.Addr().String() + " requires TLS", "--cacert"}, "get", "k", "--endpoints", fa.addr(), "--timeout", "2s")
}
