package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kraftdb/kraft/client"
)

const securityDoc = "../../docs/security.md"

// shellBlocks returns the bodies of the ```sh fenced blocks of a Markdown
// text, in order. Other fences (```console, ```go) are examples, not run.
func shellBlocks(doc string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestSecurityDocProcedure runs the openssl procedure of docs/security.md
// as written and checks, with crypto/x509 and crypto/tls, that it makes
// what the document promises: node certificates that chain to the CA and
// carry the node's identity, usable for mutual TLS, and a kraft-ctl
// client certificate.
func TestSecurityDocProcedure(t *testing.T) {
	openssl := "/usr/bin/openssl"
	if _, err := os.Stat(openssl); err != nil {
		if openssl, err = exec.LookPath("openssl"); err != nil {
			t.Skip("openssl is not installed")
		}
	}
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(string(doc))
	script := strings.Join(blocks, "")
	if len(blocks) < 3 || !strings.Contains(script, "openssl req -x509") || !strings.Contains(script, "URI:kraft://node/$N") {
		t.Fatalf("docs/security.md: %d sh blocks, without the CA and node procedure:\n%s", len(blocks), script)
	}
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(openssl)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the procedure of docs/security.md failed: %v\n%s", err, out)
	}

	read := func(name string) *x509.Certificate {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: not PEM", name)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	ca := read("ca.crt")
	if !ca.IsCA {
		t.Fatal("ca.crt is not a CA certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	verify := func(name string, usage x509.ExtKeyUsage) *x509.Certificate {
		t.Helper()
		c := read(name)
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("%s does not chain to ca.crt for usage %v: %v", name, usage, err)
		}
		return c
	}

	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		verify("node1.crt", usage) // nodes dial each other: both uses
	}
	node1 := read("node1.crt")
	var uris []string
	for _, u := range node1.URIs {
		uris = append(uris, u.String())
	}
	if len(uris) != 1 || uris[0] != "kraft://node/1" {
		t.Errorf("node1.crt URI SANs %q, want [kraft://node/1]", uris)
	}
	if err := node1.VerifyHostname("kraft-node1.kraft.example.com"); err != nil {
		t.Errorf("node1.crt: %v", err)
	}
	if err := node1.VerifyHostname("10.0.0.11"); err != nil {
		t.Errorf("node1.crt: %v", err)
	}
	if node1.IsCA {
		t.Error("node1.crt may sign certificates")
	}
	if u := read("node3.crt").URIs; len(u) != 1 || u[0].String() != "kraft://node/3" {
		t.Errorf("node3.crt URI SANs %v", u)
	}
	kctl := verify("kraft-ctl.crt", x509.ExtKeyUsageClientAuth)
	if len(kctl.URIs) != 0 {
		t.Errorf("kraft-ctl.crt names a node: %v", kctl.URIs)
	}

	// The files as an operator gives them: node 1 serving TLS that
	// requires a client certificate, kraft-ctl's LoadTLS for the client.
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "node1.crt"), filepath.Join(dir, "node1.key"))
	if err != nil {
		t.Fatalf("node1.crt with node1.key: %v", err)
	}
	clientConf, err := client.LoadTLS(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "kraft-ctl.crt"), filepath.Join(dir, "kraft-ctl.key"))
	if err != nil {
		t.Fatal(err)
	}
	clientConf.ServerName = "kraft-node1.kraft.example.com"
	serverConf := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	cside, sside := net.Pipe()
	defer cside.Close()
	defer sside.Close()
	srv := tls.Server(sside, serverConf)
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := tls.Client(cside, clientConf).Handshake(); err != nil {
		t.Fatalf("kraft-ctl's handshake with node 1: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("node 1's handshake with kraft-ctl: %v", err)
	}
	if cn := srv.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "kraft-ctl" {
		t.Errorf("node 1 saw client %q", cn)
	}
}

// The document names every flag an operator needs.
func TestSecurityDocFlags(t *testing.T) {
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{
		"--peer-cert", "--peer-key", "--peer-ca", "--client-cert", "--client-key", "--client-ca",
		"--admin-cert", "--admin-key", "--admin-ca", "--admin-token",
		"--max-frame-size", "--max-entry-size", "--max-key-size", "--max-value-size", "--max-connections",
		"--max-inflight-requests", "--idle-timeout", "--handshake-timeout",
		"--cacert", "--cert", "--key", "--tls-key", "--insecure-skip-tls-verify", "KRAFT_CACERT", "SIGHUP", "TLS 1.2",
	} {
		want := flag
		if strings.HasPrefix(flag, "--") {
			want = "`" + flag + "`" // not merely inside another flag's name
		}
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/security.md does not mention %s", want)
		}
	}
}
