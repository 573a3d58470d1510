package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/testpki"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// tlsServer starts a fake node whose client port is TLS-only, serving pki's
// certificate for node 1 (SANs localhost and 127.0.0.1). With clientCAs
// set, it requires client certificates signed by them (kraftd --client-ca).
func tlsServer(t *testing.T, pki *testpki.PKI, clientCAs *x509.CertPool) *fakeServer {
	t.Helper()
	certFile, keyFile := pki.Node(1)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		fs.tlsConfig.ClientCAs = clientCAs
		fs.tlsConfig.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return fs
}

func caPool(t *testing.T, pki *testpki.PKI) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(pki.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

func loadTLS(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	conf, err := LoadTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// wantTLSError asserts a call failed at once (one connection, no retry)
// with ErrTLS and a text naming the endpoint and the problem.
func wantTLSError(t *testing.T, fs *fakeServer, err error, texts ...string) {
	t.Helper()
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("got %v, want ErrTLS", err)
	}
	for _, text := range append(texts, "endpoint "+fs.addr) {
		if !strings.Contains(err.Error(), text) {
			t.Fatalf("got %q, want it to contain %q", err, text)
		}
	}
	if n := fs.connections(); n != 1 {
		t.Fatalf("%d connections: a TLS configuration error must not be retried", n)
	}
	t.Log(err)
}

// The node's certificate is verified against the endpoint's host: the IP
// SAN for 127.0.0.1, the DNS SAN for localhost.
func TestTLSPutGet(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	fs := tlsServer(t, pki, nil)
	_, port, _ := net.SplitHostPort(fs.addr)
	for _, ep := range []string{fs.addr, net.JoinHostPort("localhost", port)} {
		cfg := testConfig(ep)
		cfg.TLS = loadTLS(t, pki.CAFile(), "", "")
		c := newTestClient(t, cfg)
		if _, err := c.Put(testCtx(t), []byte("k"), []byte(ep)); err != nil {
			t.Fatalf("%s: put: %v", ep, err)
		}
		res, err := c.Get(testCtx(t), []byte("k"))
		if err != nil || string(res.Value) != ep {
			t.Fatalf("%s: get: %q %v", ep, res.Value, err)
		}
	}
	if cfg := loadTLS(t, pki.CAFile(), "", ""); cfg.ServerName != "" {
		t.Errorf("LoadTLS set ServerName %q: it must come from each endpoint", cfg.ServerName)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.tlsConns != 2 {
		t.Fatalf("%d TLS connections, want 2", fs.tlsConns)
	}
}

func TestTLSClientCertificate(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	t.Run("required and missing", func(t *testing.T) {
		fs := tlsServer(t, pki, caPool(t, pki))
		cfg := testConfig(fs.addr)
		cfg.TLS = loadTLS(t, pki.CAFile(), "", "")
		_, err := newTestClient(t, cfg).Put(testCtx(t), []byte("k"), []byte("v"))
		wantTLSError(t, fs, err, "refused the TLS handshake", "client certificate")
	})
	t.Run("signed by another CA", func(t *testing.T) {
		fs := tlsServer(t, pki, caPool(t, pki))
		cert, key := testpki.New(t, t.TempDir()).Client("mallory")
		cfg := testConfig(fs.addr)
		cfg.TLS = loadTLS(t, pki.CAFile(), cert, key)
		_, err := newTestClient(t, cfg).Put(testCtx(t), []byte("k"), []byte("v"))
		wantTLSError(t, fs, err, "refused the TLS handshake")
	})
	t.Run("presented", func(t *testing.T) {
		fs := tlsServer(t, pki, caPool(t, pki))
		cert, key := pki.Client("kraft-ctl")
		cfg := testConfig(fs.addr)
		cfg.TLS = loadTLS(t, pki.CAFile(), cert, key)
		if _, err := newTestClient(t, cfg).Put(testCtx(t), []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if len(fs.peerCNs) != 1 || fs.peerCNs[0] != "kraft-ctl" {
			t.Fatalf("server saw client certificates %q", fs.peerCNs)
		}
	})
}

func TestTLSServerNotTrusted(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	t.Run("another CA", func(t *testing.T) {
		fs := tlsServer(t, pki, nil)
		cfg := testConfig(fs.addr)
		cfg.TLS = loadTLS(t, testpki.New(t, t.TempDir()).CAFile(), "", "")
		_, err := newTestClient(t, cfg).Get(testCtx(t), []byte("k"))
		wantTLSError(t, fs, err, "not trusted", "unknown authority")
	})
	t.Run("names another host", func(t *testing.T) {
		fs := tlsServer(t, pki, nil)
		cert, key := pki.Issue(testpki.Spec{Name: "elsewhere", DNS: []string{"kraft-node9.example"}})
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		fs.tlsConfig.Certificates = []tls.Certificate{pair}
		cfg := testConfig(fs.addr)
		cfg.TLS = loadTLS(t, pki.CAFile(), "", "")
		_, err = newTestClient(t, cfg).Get(testCtx(t), []byte("k"))
		wantTLSError(t, fs, err, "not trusted", "127.0.0.1")
	})
}

// A plaintext client at a TLS-only port: the node's Error frame, or a TLS
// alert, becomes "requires TLS" with the fix, not a protocol error.
func TestPlaintextClientAtTLSPort(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	t.Run("error frame", func(t *testing.T) {
		fs := tlsServer(t, pki, nil)
		_, err := newTestClient(t, testConfig(fs.addr)).Put(testCtx(t), []byte("k"), []byte("v"))
		wantTLSError(t, fs, err, "requires TLS", "Config.TLS", "--cacert", "this port requires TLS")
	})
	t.Run("tls alert", func(t *testing.T) {
		fs := newFakeServer(t, sm.DefaultKVConfig())
		fs.handshakeReply = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46} // fatal protocol_version
		_, err := newTestClient(t, testConfig(fs.addr)).Get(testCtx(t), []byte("k"))
		wantTLSError(t, fs, err, "requires TLS")
	})
}

// A TLS client at a plaintext port: the node answers the ClientHello with
// an Error frame, which is no TLS record.
func TestTLSClientAtPlaintextPort(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	fs := newFakeServer(t, sm.DefaultKVConfig())
	cfg := testConfig(fs.addr)
	cfg.TLS = loadTLS(t, pki.CAFile(), "", "")
	_, err := newTestClient(t, cfg).Put(testCtx(t), []byte("k"), []byte("v"))
	wantTLSError(t, fs, err, "does not speak TLS")
}

// A node that accepts the connection and never answers the ClientHello
// costs DialTimeout, and the call then fails as unavailable, not as a TLS
// configuration error.
func TestTLSHandshakeTimeout(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- nc // held open, never answered
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for len(accepted) > 0 {
			_ = (<-accepted).Close()
		}
	})
	cfg := testConfig(ln.Addr().String())
	cfg.TLS = loadTLS(t, pki.CAFile(), "", "")
	cfg.DialTimeout, cfg.MaxRetries = 150*time.Millisecond, 1
	start := time.Now()
	_, err = newTestClient(t, cfg).Get(testCtx(t), []byte("k"))
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v with DialTimeout %v", took, cfg.DialTimeout)
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("got %v, want ErrUnavailable from the TLS handshake", err)
	}
	if len(accepted) != 2 {
		t.Fatalf("%d connections, want 2 (a timeout is retried)", len(accepted))
	}
	t.Log(err)
}

func TestLoadTLS(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cert, key := pki.Client("c")
	otherCert, _ := pki.Client("d")
	conf, err := LoadTLS(pki.CAFile(), cert, key)
	if err != nil || conf.MinVersion != tls.VersionTLS12 || len(conf.Certificates) != 1 || conf.RootCAs == nil || conf.InsecureSkipVerify {
		t.Fatalf("LoadTLS: %+v, %v", conf, err)
	}
	for _, tc := range []struct {
		name           string
		ca, cert, key  string
		wantInErrorMsg []string
	}{
		{"no CA", "", "", "", []string{"CA file is required"}},
		{"CA missing", missing, "", "", []string{"CA file", missing}},
		{"CA not PEM", notPEM, "", "", []string{"CA file " + notPEM, "no PEM certificate"}},
		{"cert without key", pki.CAFile(), cert, "", []string{"certificate file " + cert, "without a key file"}},
		{"key without cert", pki.CAFile(), "", key, []string{"key file " + key, "without a certificate file"}},
		{"cert missing", pki.CAFile(), missing, key, []string{"certificate file", missing}},
		{"key missing", pki.CAFile(), cert, missing, []string{"key file", missing}},
		{"key of another cert", pki.CAFile(), otherCert, key, []string{otherCert, key}},
		{"key not PEM", pki.CAFile(), cert, notPEM, []string{cert, notPEM}},
	} {
		_, err := LoadTLS(tc.ca, tc.cert, tc.key)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, want := range tc.wantInErrorMsg {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not contain %q", tc.name, err, want)
			}
		}
	}
	cfg := testConfig("127.0.0.1:1")
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS10}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "TLS 1.2") {
		t.Errorf("Validate accepted MinVersion TLS 1.0: %v", err)
	}
}

// A node that closes an idle connection says so with an Error frame. A
// call that raced with it is retried on a new connection, and if retries
// run out it is unavailable, not refused (which reads as a configuration
// error).
func TestIdleTimeoutFrameIsUnavailable(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actRaw, raw: wire.AppendErrorFrame(nil, wire.ErrCodeIdleTimeout, "idle for 5m0s")}
	}
	cfg := testConfig(fs.addr)
	cfg.MaxRetries = 1
	_, err := newTestClient(t, cfg).Get(testCtx(t), []byte("k"))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "idle for 5m0s") {
		t.Fatalf("got %v, want ErrUnavailable with the node's text", err)
	}
	if n := fs.connections(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
