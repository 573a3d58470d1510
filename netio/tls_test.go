package netio

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kraftdb/kraft/internal/testpki"
	"github.com/kraftdb/kraft/wire"
)

func mustSource(t *testing.T, cert, key, ca string) *TLSSource {
	t.Helper()
	s, err := NewTLSSource(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startTLSNode starts node id with mutual TLS on the peer port and TLS
// (no client certificates) on the client port, both from pki.
func startTLSNode(t *testing.T, pki *testpki.PKI, id uint64, tweak func(*Config)) *node {
	t.Helper()
	cert, key := pki.Node(id)
	peer, client := mustSource(t, cert, key, pki.CAFile()), mustSource(t, cert, key, "")
	return startNode(t, id, 7, func(c *Config) {
		c.PeerTLS, c.ClientTLS = peer, client
		if tweak != nil {
			tweak(c)
		}
	})
}

func caPool(t *testing.T, pki *testpki.PKI) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(pki.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// tlsDial connects with TLS, presenting certFile/keyFile if given, and
// verifying the server against pki's CA as localhost.
func tlsDial(t *testing.T, addr string, pki *testpki.PKI, certFile, keyFile string) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: caPool(t, pki), ServerName: "localhost"}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Always present it: Go's client would leave out a certificate
		// that the server's list of acceptable CAs does not cover, and an
		// attacker would not.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// tlsClient is a client connection over TLS with its handshake done.
func tlsClient(t *testing.T, n *node, pki *testpki.PKI) net.Conn {
	t.Helper()
	c, err := tlsDial(t, n.client, pki, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := handshakeDialer(c, wire.Hello{Role: wire.RoleClient, ClusterID: 7}, 0); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// roundTrip sends one request and reads one response.
func roundTrip(t *testing.T, c net.Conn, seq uint64, key string) wire.ClientResponse {
	t.Helper()
	if _, err := c.Write(wire.AppendClientRequest(nil, &wire.ClientRequest{ClientID: 1, Seq: seq, Op: wire.OpGet, Key: []byte(key)})); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, c)
}

func readResponse(t *testing.T, c net.Conn) wire.ClientResponse {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	head := make([]byte, 4)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	size, err := wire.FrameSize(head, 0)
	if err != nil {
		t.Fatal(err)
	}
	frame := append(head, make([]byte, size-4)...)
	if _, err := io.ReadFull(c, frame[4:]); err != nil {
		t.Fatal(err)
	}
	f, _, _ := wire.ParseFrame(frame, 0)
	if f.Type != wire.MsgClientResponse {
		_, text, _ := wire.DecodeErrorFrame(f.Body)
		t.Fatalf("got a %v frame (%q), want a response", f.Type, text)
	}
	var r wire.ClientResponse
	if err := wire.DecodeClientResponse(f.Body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTLSClusterExchangesRaftAndClientTraffic(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	nodes := []*node{startTLSNode(t, pki, 1, nil), startTLSNode(t, pki, 2, nil), startTLSNode(t, pki, 3, nil)}
	for i, a := range nodes {
		for j, b := range nodes {
			if i != j {
				a.t.SetPeer(uint64(j+1), b.peer)
			}
		}
	}
	waitFor(t, "full mesh over TLS", func() bool {
		for i, a := range nodes {
			for j := range nodes {
				if i != j && !a.t.Connected(uint64(j+1)) {
					return false
				}
			}
		}
		return true
	})
	var entries []byte
	entries = wire.AppendEntry(entries, wire.EntryNormal, 5, 2, []byte("over tls"))
	for i, a := range nodes {
		for j := range nodes {
			if i == j {
				continue
			}
			m := wire.Message{Type: wire.MsgAppend, From: uint64(i + 1), To: uint64(j + 1), Term: 2, Index: 4, LogTerm: 2, Entries: entries, EntryCount: 1}
			if err := a.t.Send(&m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, n := range nodes {
		n.rec.wait(t, 2)
		for _, m := range n.rec.msgs {
			if m.To != uint64(i+1) || string(m.Entries) != string(entries) {
				t.Fatalf("node %d got %+v", i+1, m)
			}
		}
	}
	nodes[0].rec.respond.Store(true)
	c := tlsClient(t, nodes[0], pki)
	if r := roundTrip(t, c, 1, "hello"); r.Status != wire.StatusOK || string(r.Value) != "hello" {
		t.Fatalf("response over TLS: %+v", r)
	}
	if peers, clients := nodes[0].t.Conns(); peers != 2 || clients != 1 {
		t.Fatalf("Conns() = %d peers, %d clients", peers, clients)
	}
	// Probe works over mutual TLS too.
	if h, err := nodes[0].t.Probe(nodes[1].peer); err != nil || h.NodeID != 2 {
		t.Fatalf("Probe over TLS = %+v, %v", h, err)
	}
}

// peerRefused dials the peer port of n with the given certificate (none if
// certFile is empty), claims node claim, and returns what ended the
// attempt: a TLS error, or the refusal text.
func peerRefused(t *testing.T, n *node, pki *testpki.PKI, certFile, keyFile string, claim uint64) string {
	t.Helper()
	c, err := tlsDial(t, n.peer, pki, certFile, keyFile)
	if err != nil {
		return err.Error()
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = handshakeDialer(c, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: claim, PeerAddr: "x:1"}, 0)
	if err == nil {
		t.Fatalf("peer port accepted certificate %s claiming node %d", certFile, claim)
	}
	return err.Error()
}

func TestTLSPeerPortRefusals(t *testing.T) {
	dir := t.TempDir()
	pki, other := testpki.New(t, dir), testpki.New(t, dir)
	n := startTLSNode(t, pki, 1, nil)
	stats := n.t.Stats()
	expired, expiredKey := pki.Expired(2)
	otherCert, otherKey := other.Node(2)
	node2, node2Key := pki.Node(2)
	anon, anonKey := pki.NoIdentity("anon")

	check := func(name string, got string, want string, counter func() uint64, before uint64, logText string) {
		t.Helper()
		if want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: dialler saw %q, want %q", name, got, want)
		}
		waitFor(t, name+" counted", func() bool { return counter() > before })
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(n.logs.String(), logText) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the log does not say %q:\n%s", name, logText, n.logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	hs := func() uint64 { return stats.TLSHandshakeFailures.Load() }
	id := func() uint64 { return stats.TLSIdentityRefused.Load() }

	before := hs()
	check("no certificate", peerRefused(t, n, pki, "", "", 2), "", hs, before, "TLS handshake failed")
	before = hs()
	check("another CA", peerRefused(t, n, pki, otherCert, otherKey, 2), "", hs, before, "unknown authority")
	before = hs()
	check("expired", peerRefused(t, n, pki, expired, expiredKey, 2), "", hs, before, "expired")
	before = id()
	check("impersonation", peerRefused(t, n, pki, node2, node2Key, 3), `the handshake claims node 3, but the TLS certificate "CN=node2" names nodes [2]`, id, before, "claimed_node=3")
	if !strings.Contains(n.logs.String(), "cert_nodes=[2]") {
		t.Errorf("the refusal log does not name the certificate's identities:\n%s", n.logs.String())
	}
	before = id()
	check("no node identity", peerRefused(t, n, pki, anon, anonKey, 2), `the handshake claims node 2, but the TLS certificate "CN=anon" names nodes []`, id, before, "claimed_node=2")
	if len(n.rec.msgs) != 0 {
		t.Fatalf("a refused peer reached the handler: %d messages", len(n.rec.msgs))
	}
	// The real node 2 is accepted.
	if got := peerRefusedOrOK(t, n, pki, node2, node2Key, 2); got != "" {
		t.Fatalf("node 2 with its own certificate was refused: %s", got)
	}
}

func peerRefusedOrOK(t *testing.T, n *node, pki *testpki.PKI, cert, key string, claim uint64) string {
	c, err := tlsDial(t, n.peer, pki, cert, key)
	if err != nil {
		return err.Error()
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := handshakeDialer(c, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: claim, PeerAddr: "x:1"}, 0); err != nil {
		return err.Error()
	}
	return ""
}

// Dialling checks the server's certificate: a node that answers at node
// 3's address with node 2's certificate is not node 3, whatever its Hello
// says.
func TestTLSDialerChecksServerIdentity(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	a := startTLSNode(t, pki, 1, nil)
	cert, key := pki.Node(2)
	src := mustSource(t, cert, key, pki.CAFile())
	liar := startNode(t, 3, 7, func(c *Config) { c.PeerTLS = src }) // node 3 holding node 2's certificate
	a.t.SetPeer(3, liar.peer)
	waitFor(t, "the dialler to refuse", func() bool { return a.t.Stats().TLSIdentityRefused.Load() > 0 })
	waitFor(t, "the refusal logged", func() bool {
		return strings.Contains(a.logs.String(), `dialled node 3, but the server's TLS certificate \"CN=node2\" names nodes [2]`)
	})
	if a.t.Connected(3) {
		t.Fatal("connected to a node whose certificate does not name it")
	}
}

// A plaintext node or client reaching a TLS port is told so in plaintext.
func TestPlaintextOnTLSPortIsToldTLSIsRequired(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	n := startTLSNode(t, pki, 1, nil)
	for _, tc := range []struct {
		addr string
		self uint64
	}{{n.client, 0}, {n.peer, 2}} {
		c, err := net.Dial("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		role := wire.RoleClient
		if tc.self != 0 {
			role = wire.RolePeer
		}
		_, err = handshakeDialer(c, wire.Hello{Role: role, ClusterID: 7, NodeID: tc.self, PeerAddr: "x:1"}, 0)
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "this port requires TLS") {
			t.Fatalf("plaintext %s on a TLS port: %v", role, err)
		}
	}
	if got := n.t.Stats().TLSRequired.Load(); got != 2 {
		t.Fatalf("TLSRequired = %d, want 2", got)
	}
	// A plaintext transport dialling a TLS peer logs why it cannot connect.
	plain := startNode(t, 2, 7, nil)
	plain.t.SetPeer(1, n.peer)
	waitFor(t, "the dialler to log the refusal", func() bool { return strings.Contains(plain.logs.String(), "this port requires TLS") })
}

func TestTLSReloadTakesEffectForNewConnections(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	dir := t.TempDir()
	certPath, keyPath := dir+"/client.pem", dir+"/client-key.pem"
	install := func(cert, key string) {
		for _, f := range [][2]string{{cert, certPath}, {key, keyPath}} {
			b, err := os.ReadFile(f[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f[1], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(pki.Node(1))
	src := mustSource(t, certPath, keyPath, "")
	n := startNode(t, 1, 7, func(c *Config) { c.ClientTLS = src })
	served := func() string {
		c, err := tlsDial(t, n.client, pki, "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := served()
	old := tlsClient(t, n, pki) // an established connection survives a reload
	install(pki.Node(1))
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	second := served()
	if second == first {
		t.Fatalf("still serving certificate %s after Reload", first)
	}
	if err := os.WriteFile(certPath, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := src.Reload()
	if err == nil || !strings.Contains(err.Error(), certPath) {
		t.Fatalf("Reload of a broken file = %v, want an error naming %s", err, certPath)
	}
	if got := served(); got != second {
		t.Fatalf("a failed Reload changed the certificate: %s, want %s", got, second)
	}
	n.rec.respond.Store(true)
	if r := roundTrip(t, old, 1, "k"); r.Status != wire.StatusOK {
		t.Fatalf("the connection from before the reload: %+v", r)
	}
	// A CA file that does not exist is named too.
	if _, err := NewTLSSource(certPath+".missing", keyPath, ""); err == nil || !strings.Contains(err.Error(), ".missing") {
		t.Fatalf("NewTLSSource with a missing file: %v", err)
	}
	cert, key := pki.Node(1)
	if _, err := NewTLSSource(cert, key, dir+"/nope-ca.pem"); err == nil || !strings.Contains(err.Error(), "nope-ca.pem") {
		t.Fatalf("NewTLSSource with a missing CA: %v", err)
	}
}

// With a CA on the client port's source, clients must present a
// certificate from it.
func TestTLSClientPortWithCARequiresClientCertificates(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Node(1)
	n := startNode(t, 1, 7, func(c *Config) { c.ClientTLS = mustSource(t, cert, key, pki.CAFile()) })
	n.rec.respond.Store(true)
	ccert, ckey := pki.Client("kraft-ctl")
	c, err := tlsDial(t, n.client, pki, ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := handshakeDialer(c, wire.Hello{Role: wire.RoleClient, ClusterID: 7}, 0); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	if r := roundTrip(t, c, 1, "k"); r.Status != wire.StatusOK {
		t.Fatalf("%+v", r)
	}
	before := n.t.Stats().TLSHandshakeFailures.Load()
	anon, err := tlsDial(t, n.client, pki, "", "")
	if err == nil {
		anon.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = handshakeDialer(anon, wire.Hello{Role: wire.RoleClient, ClusterID: 7}, 0)
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	waitFor(t, "the failed handshake counted", func() bool { return n.t.Stats().TLSHandshakeFailures.Load() > before })
}

func TestTLSSourceConfigs(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Node(4)
	src := mustSource(t, cert, key, pki.CAFile())
	if got := NodeIDs(src.Certificate()); len(got) != 1 || got[0] != 4 {
		t.Fatalf("NodeIDs = %v", got)
	}
	// ClientConfig does standard hostname verification (kraft-ctl, admin).
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.ServerConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	for name, wantOK := range map[string]bool{"localhost": true, "kraft-node4": true, "elsewhere.example": false} {
		c, err := tls.Dial("tcp", ln.Addr().String(), src.ClientConfig(name))
		if err == nil {
			c.Close()
		}
		if (err == nil) != wantOK {
			t.Errorf("ClientConfig(%q): %v", name, err)
		}
	}
	for want, wantOK := range map[uint64]bool{4: true, 0: true, 5: false} {
		c, err := tls.Dial("tcp", ln.Addr().String(), src.PeerConfig(want))
		if err == nil {
			c.Close()
		}
		if (err == nil) != wantOK {
			t.Errorf("PeerConfig(%d): %v", want, err)
		}
		if err != nil && !errors.Is(err, wire.ErrNodeMismatch) {
			t.Errorf("PeerConfig(%d): %v is not a node mismatch", want, err)
		}
	}
	if ServerConfigMin := src.ServerConfig(true).MinVersion; ServerConfigMin < tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", ServerConfigMin)
	}
	if _, err := New(Config{NodeID: 1, PeerAddr: "127.0.0.1:7001", PeerTLS: mustSource(t, cert, key, "")}, newRecorder()); err == nil ||
		!strings.Contains(err.Error(), "PeerTLS needs a CA") {
		t.Fatalf("PeerTLS without a CA: %v", err)
	}
}

// ServerConfig serves net/http (the admin port) as it is, h2 included, and
// follows Reload there too.
func TestTLSSourceServesHTTPS(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cert, key := pki.Node(1)
	src := mustSource(t, cert, key, pki.CAFile())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: src.ServerConfig(true), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d", r.Proto, len(r.TLS.PeerCertificates))
	})}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	ccert, ckey := pki.Client("kraft-ctl")
	ctl := mustSource(t, ccert, ckey, pki.CAFile())
	get := func(cfg *tls.Config) (string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get(ctl.ClientConfig("localhost")); err != nil || body != "HTTP/2.0 1" {
		t.Fatalf("GET with a client certificate: %q, %v", body, err)
	}
	if _, err := get(&tls.Config{RootCAs: caPool(t, pki), ServerName: "localhost"}); err == nil {
		t.Fatal("GET without a client certificate succeeded")
	}
}

func TestNodeIDs(t *testing.T) {
	pki := testpki.New(t, t.TempDir())
	cases := []struct {
		spec testpki.Spec
		want []uint64
	}{
		{testpki.NodeSpec(3), []uint64{3}},
		{testpki.Spec{Name: "a", DNS: []string{"kraft-node7.internal.example.com"}}, []uint64{7}},
		{testpki.Spec{Name: "b", DNS: []string{"KRAFT-NODE8.example.com", "kraft-node9"}}, []uint64{8, 9}},
		{testpki.Spec{Name: "c", DNS: []string{"kraft-node07", "x.kraft-node5", "kraft-node", "kraft-node0", "kraft-node1x"}}, nil},
		{testpki.Spec{Name: "d", URIs: []string{"kraft://node/12", "kraft://other/13", "https://node/14", "kraft://node/15?x"}}, []uint64{12}},
	}
	for _, tc := range cases {
		certFile, keyFile := pki.Issue(tc.spec)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		got := NodeIDs(leaf)
		if len(got) != len(tc.want) {
			t.Errorf("%s: NodeIDs = %v, want %v", tc.spec.Name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: NodeIDs = %v, want %v", tc.spec.Name, got, tc.want)
			}
		}
	}
	if u := NodeURI(3).String(); u != "kraft://node/3" {
		t.Fatalf("NodeURI = %s", u)
	}
}
