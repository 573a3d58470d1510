package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/kraftdb/kraft/client"
)

// tlsFlags are etcdctl's TLS flags. One setting serves both ports
// kraft-ctl talks to: the client port (put, get) and the admin HTTP API,
// which becomes HTTPS.
type tlsFlags struct {
	cacert   string
	cert     string
	key      string
	insecure bool
	keyFlag  string // "key", or "tls-key" where the command has a --key of its own
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cacert, "cacert", os.Getenv("KRAFT_CACERT"), "CA certificate (PEM) that signed the nodes' certificates; turns on TLS for the client port and HTTPS for the admin API (env KRAFT_CACERT)")
	fs.StringVar(&t.cert, "cert", os.Getenv("KRAFT_CERT"), "client certificate (PEM), for nodes that require one (env KRAFT_CERT)")
	t.keyFlag = "key"
	if fs.Lookup("key") != nil {
		t.keyFlag = "tls-key"
	}
	fs.StringVar(&t.key, t.keyFlag, os.Getenv("KRAFT_KEY"), "key (PEM) of --cert (env KRAFT_KEY)")
	fs.BoolVar(&t.insecure, "insecure-skip-tls-verify", false, "TLS without verifying the nodes' certificates: anyone on the path can pose as a node (tests only; prints a warning)")
}

// given reports whether any TLS flag (or its environment variable) is set.
func (t *tlsFlags) given() bool {
	return t.cacert != "" || t.cert != "" || t.key != "" || t.insecure
}

// config builds the TLS configuration: the nodes' certificates verified
// against --cacert (the system's roots without it), the client certificate
// when given, TLS 1.2 at least. Errors name the flag and the file.
func (t *tlsFlags) config(stderr io.Writer) (*tls.Config, error) {
	switch {
	case t.cert != "" && t.key == "":
		return nil, usageErr{fmt.Sprintf("--cert %s needs --%s", t.cert, t.keyFlag)}
	case t.key != "" && t.cert == "":
		return nil, usageErr{fmt.Sprintf("--%s %s needs --cert", t.keyFlag, t.key)}
	case t.insecure && t.cacert != "":
		return nil, usageErr{"--insecure-skip-tls-verify and --cacert exclude each other: verify with the CA, or not at all"}
	}
	var conf *tls.Config
	if t.cacert != "" {
		c, err := client.LoadTLS(t.cacert, t.cert, t.key)
		if err != nil {
			return nil, tlsFileError(err)
		}
		conf = c
	} else {
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
		if t.cert != "" {
			pair, err := client.LoadKeyPair(t.cert, t.key)
			if err != nil {
				return nil, tlsFileError(err)
			}
			conf.Certificates = []tls.Certificate{pair}
		}
	}
	if t.insecure {
		conf.InsecureSkipVerify = true
		fmt.Fprintln(stderr, "Warning: --insecure-skip-tls-verify: the nodes' certificates are not verified; anyone on the network path can pose as a node and read the admin token")
	}
	return conf, nil
}

func tlsFileError(err error) error {
	return fmt.Errorf("TLS: %s", strings.TrimPrefix(err.Error(), "kraft/client: "))
}

// adminTLSError turns a failed admin request (doErr from http.Client.Do)
// into a line that says what to change when the cause is TLS (scheme, CA,
// client certificate). The line carries the innermost cause, without the
// URL http.Client wraps it in.
func adminTLSError(endpoint string, doErr error) error {
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var op *net.OpError
	err := unwrapURLError(doErr)
	switch {
	case strings.Contains(doErr.Error(), "server gave HTTP response to HTTPS client"), errors.As(doErr, &rh):
		return fmt.Errorf("%s does not serve HTTPS (a plaintext admin port: drop --cacert and https://): %v", endpoint, err)
	case errors.As(doErr, &cv):
		return fmt.Errorf("%s: its certificate is not trusted (check --cacert and the certificate's names): %v", endpoint, err)
	case errors.As(doErr, &op) && op.Op == "remote error":
		return fmt.Errorf("%s refused the TLS handshake (does it require a client certificate? --cert, --key): %v", endpoint, err)
	}
	return fmt.Errorf("%s: %v", endpoint, err)
}
