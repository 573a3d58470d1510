package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/internal/testpki"
	"github.com/kraftdb/kraft/server"
	"github.com/kraftdb/kraft/wire"
)

// newTLSCluster starts n founders with mutual TLS on the peer port and TLS
// on the client port, each with its own node certificate of pki.
func newTLSCluster(t *testing.T, n int, pki *testpki.PKI) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), name: "e2e-" + t.Name(), procs: map[uint64]*proc{}}
	for i := uint64(1); i <= uint64(n); i++ {
		p := c.newProc(i)
		cert, key := pki.Node(i)
		p.extra = []string{"--peer-cert", cert, "--peer-key", key, "--peer-ca", pki.CAFile(),
			"--client-cert", cert, "--client-key", key}
		c.procs[i] = p
	}
	t.Cleanup(c.cleanup)
	for i := uint64(1); i <= uint64(n); i++ {
		c.start(i, "--bootstrap")
	}
	c.waitLeader(15 * time.Second)
	return c
}

// metric reads one series of a node's /metrics.
func (c *cluster) metric(id uint64, name string) float64 {
	c.t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + c.procs[id].adminAddr() + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? ([0-9.e+-]+)$`).FindSubmatch(b)
	if m == nil {
		c.t.Fatalf("node %d exports no %s", id, name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// peerHello dials node id's peer port with TLS and a client certificate
// (cert/key may be empty: none), sends a peer Hello claiming claimID, and
// returns what came back before the connection closed (or the error).
func (c *cluster) peerHello(id uint64, caFile, cert, key string, claimID uint64) (string, error) {
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return "", err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	conn, err := tls.Dial("tcp", c.procs[id].peerAddr(), cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	hello := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: server.ClusterNumber(c.name), NodeID: claimID,
		PeerAddr: "127.0.0.1:1", ClientAddr: "127.0.0.1:2", AdminAddr: "127.0.0.1:3"})
	if _, err := conn.Write(hello); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// A TLS cluster forms and serves; a peer without a certificate, with one
// from another CA, or with a valid certificate of another node is refused
// and logged; a plaintext client gets a clear error; a node whose own
// certificate names another node refuses to start.
func TestTLSClusterRefusesImpostors(t *testing.T) {
	dir := t.TempDir()
	pki, foreign := testpki.New(t, dir), testpki.New(t, dir)
	c := newTLSCluster(t, 3, pki)

	tlsCfg, err := client.LoadTLS(pki.CAFile(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.clientAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps, ClusterID: server.ClusterNumber(c.name), RequestTimeout: 10 * time.Second, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		if _, err := cl.Put(ctx, []byte(fmt.Sprint("tls", i)), []byte("v")); err != nil {
			t.Fatalf("put over TLS: %v", err)
		}
	}
	if r, err := cl.Get(ctx, []byte("tls49")); err != nil || string(r.Value) != "v" {
		t.Fatalf("get over TLS: %+v, %v", r, err)
	}

	// A plaintext client is told the port needs TLS.
	plain, err := client.New(client.Config{Endpoints: eps[:1], ClusterID: server.ClusterNumber(c.name), RequestTimeout: 3 * time.Second, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Put(ctx, []byte("plain"), []byte("v")); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("plaintext client against a TLS port: %v, want an error saying the port requires TLS", err)
	}

	// Impostors on the peer port of node 1.
	before := c.metric(1, "kraft_tls_handshake_failures_total")
	if out, err := c.peerHello(1, pki.CAFile(), "", "", 9); err == nil && !strings.Contains(out, "certificate") {
		t.Fatalf("a peer without a certificate got %q", out)
	}
	fcert, fkey := foreign.Node(9)
	if out, err := c.peerHello(1, pki.CAFile(), fcert, fkey, 9); err == nil && !strings.Contains(out, "certificate") {
		t.Fatalf("a peer with a foreign CA's certificate got %q", out)
	}
	waitUntil(t, "handshake failures counted", 5*time.Second, func() bool {
		return c.metric(1, "kraft_tls_handshake_failures_total") >= before+2
	})
	// Node 2's valid certificate claiming to be node 3.
	cert2, key2 := pki.Node(2)
	out, _ := c.peerHello(1, pki.CAFile(), cert2, key2, 3)
	if !strings.Contains(out, "claims node 3") {
		t.Fatalf("node 2's certificate claiming node 3 got %q, want an identity refusal", out)
	}
	waitUntil(t, "the impersonation counted", 5*time.Second, func() bool {
		return c.metric(1, "kraft_tls_identity_refused_total") >= 1
	})
	log1, _ := os.ReadFile(c.procs[1].logFn)
	if !bytes.Contains(log1, []byte("claimed_node=3")) {
		t.Fatalf("node 1 did not log the impersonation:\n%s", tail(c.procs[1].logFn, 20))
	}

	// The cluster still serves.
	if _, err := cl.Put(ctx, []byte("after"), []byte("impostors")); err != nil {
		t.Fatal(err)
	}

	// kraftd refuses to start with a peer certificate naming another node.
	p := c.newProc(4)
	args := []string{"--node-id", "4", "--cluster-id", c.name, "--bind-address", "127.0.0.1",
		"--raft-port", fmt.Sprint(p.raft), "--client-port", fmt.Sprint(p.clientP), "--admin-port", fmt.Sprint(p.adminP),
		"--data-dir", p.dataDir, "--snapshot-dir", p.snapDir, "--join", c.procs[1].peerAddr(),
		"--peer-cert", cert2, "--peer-key", key2, "--peer-ca", pki.CAFile()}
	outB, err := runKraftd(args...)
	if err == nil || !strings.Contains(outB, "not this node 4") {
		t.Fatalf("kraftd with node 2's certificate as node 4: %v\n%s", err, outB)
	}
}

// The admin port over HTTPS with required client certificates, used by
// kraft-ctl with --cacert/--cert/--key; a SIGHUP re-reads the certificates.
func TestTLSAdminWithKraftCtl(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	cert, key := pki.Node(1)
	ccert, ckey := pki.Client("operator")
	c := &cluster{t: t, dir: t.TempDir(), name: "e2e-" + t.Name(), procs: map[uint64]*proc{}}
	p := c.newProc(1)
	p.extra = []string{"--admin-cert", cert, "--admin-key", key, "--admin-ca", pki.CAFile()}
	c.procs[1] = p
	t.Cleanup(c.cleanup)
	c.start(1, "--bootstrap") // waitAdmin's plain GET gets the HTTPS port's 400: it is up
	https := "https://" + p.adminAddr()
	var out string
	waitUntil(t, "kraft-ctl status over HTTPS", 15*time.Second, func() bool {
		o, _, code := runCtl("status", "--endpoints", https, "--cacert", pki.CAFile(), "--cert", ccert, "--key", ckey, "--timeout", "5s")
		out = o
		return code == 0
	})
	if !strings.Contains(out, "Leader") && !strings.Contains(out, "leader") {
		t.Fatalf("kraft-ctl status over HTTPS printed:\n%s", out)
	}
	// Without a client certificate the admin port refuses.
	if _, errOut, code := runCtl("status", "--endpoints", https, "--cacert", pki.CAFile(), "--timeout", "5s"); code == 0 {
		t.Fatal("kraft-ctl without a client certificate was served")
	} else if !strings.Contains(errOut, "certificate") {
		t.Fatalf("kraft-ctl without a client certificate: %s", errOut)
	}
	// Plain HTTP gets nothing useful.
	if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + p.adminAddr() + "/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on an HTTPS admin port")
		}
	}
	// A SIGHUP with a broken certificate file keeps the old one and says so.
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.signal(1, syscall.SIGHUP)
	waitUntil(t, "the failed reload logged", 10*time.Second, func() bool {
		b, _ := os.ReadFile(p.logFn)
		return bytes.Contains(b, []byte("reload")) && bytes.Contains(b, []byte(filepath.Base(cert)))
	})
	if _, _, code := runCtl("status", "--endpoints", https, "--cacert", pki.CAFile(), "--cert", ccert, "--key", ckey, "--timeout", "5s"); code != 0 {
		t.Fatal("after a failed reload the admin port stopped serving with the old certificate")
	}
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
