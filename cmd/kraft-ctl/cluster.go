package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kraftdb/kraft/server"
)

// clusterFlags are the flags every cluster command shares (etcdctl's).
type clusterFlags struct {
	endpoints string
	timeout   time.Duration
	token     string
	out       *outputFormat
	tlsFlags

	// Set by setup from the flags above.
	scheme string      // of every admin URL: "http" or "https"
	tls    *tls.Config // client port and HTTPS; nil: plaintext
}

func (f *clusterFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("KRAFT_ENDPOINTS")
	if def == "" {
		def = "127.0.0.1:7003"
	}
	fs.StringVar(&f.endpoints, "endpoints", def, "admin addresses of cluster nodes, comma-separated; https://host:port for HTTPS (env KRAFT_ENDPOINTS)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long the command may take")
	fs.StringVar(&f.token, "admin-token", os.Getenv("KRAFT_ADMIN_TOKEN"), "bearer token for mutating calls (env KRAFT_ADMIN_TOKEN)")
	f.out = addOutputFlag(fs)
	f.tlsFlags.register(fs)
}

// setup checks the flags against each other and loads the TLS files; a
// warning (--insecure-skip-tls-verify) goes to stderr.
func (f *clusterFlags) setup(stderr io.Writer) error {
	var https, http []string
	for _, e := range strings.Split(f.endpoints, ",") {
		switch e = strings.TrimSpace(e); {
		case strings.HasPrefix(e, "https://"):
			https = append(https, e)
		case strings.HasPrefix(e, "http://"):
			http = append(http, e)
		}
	}
	switch {
	case len(http) > 0 && len(https) > 0:
		return usageErr{fmt.Sprintf("--endpoints mixes http:// (%s) and https:// (%s): one cluster, one scheme", http[0], https[0])}
	case len(http) > 0 && f.tlsFlags.given():
		return usageErr{fmt.Sprintf("--endpoints %s is plaintext http:// but TLS flags are given: use https:// or no scheme", http[0])}
	}
	f.scheme = "http"
	if len(https) == 0 && !f.tlsFlags.given() {
		return nil
	}
	f.scheme = "https"
	conf, err := f.tlsFlags.config(stderr)
	if err != nil {
		return err
	}
	f.tls = conf
	return nil
}

// admin talks to the nodes' admin HTTP APIs.
type admin struct {
	f      *clusterFlags
	http   *http.Client
	ctx    context.Context
	cancel context.CancelFunc
}

func newAdmin(f *clusterFlags) *admin {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	hc := &http.Client{}
	if f.tls != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = f.tls
		// HTTP/1.1: a few short calls gain nothing from HTTP/2, and its
		// client hides a refused handshake (a missing client certificate)
		// behind "http2: client conn could not be established".
		tr.ForceAttemptHTTP2 = false
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		hc.Transport = tr
	}
	return &admin{f: f, http: hc, ctx: ctx, cancel: cancel}
}

// url is path on endpoint (host:port, any scheme stripped): https when
// the cluster speaks TLS, as the members' admin addresses that /status
// reports carry no scheme.
func (a *admin) url(endpoint, path string) string {
	scheme := a.f.scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + endpoint + path
}

func (a *admin) endpoints() []string {
	var out []string
	for _, e := range strings.Split(a.f.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://"))
		}
	}
	return out
}

// apiError is an admin API error response.
type apiError struct {
	Code     int
	Message  string
	LeaderID uint64
	Leader   string
}

func (e *apiError) Error() string { return e.Message }

// call sends one request to one endpoint and decodes the JSON answer.
func (a *admin) call(endpoint, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(a.ctx, method, a.url(endpoint, path), rd)
	if err != nil {
		return err
	}
	if a.f.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.f.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer within --timeout %v", endpoint, a.f.timeout)
		}
		return adminTLSError(endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: %v", endpoint, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error    string `json:"error"`
			Reason   string `json:"reason"` // /health, /health/ready
			Status   string `json:"status"`
			LeaderID uint64 `json:"leader_id"`
			Leader   string `json:"leader_admin"`
		}
		json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = e.Reason
		}
		if e.Error == "" {
			e.Error = e.Status
		}
		if e.Error == "" && resp.StatusCode == http.StatusBadRequest && bytes.Contains(data, []byte("HTTPS server")) {
			e.Error = fmt.Sprintf("%s serves HTTPS: give --cacert (or an https:// endpoint)", endpoint)
		}
		if e.Error == "" {
			e.Error = fmt.Sprintf("%s: HTTP %d: %s", endpoint, resp.StatusCode, strings.TrimSpace(string(data)))
		}
		return &apiError{Code: resp.StatusCode, Message: e.Error, LeaderID: e.LeaderID, Leader: e.Leader}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: unexpected answer: %v", endpoint, err)
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	for errors.As(err, &ue) {
		inner := ue.Unwrap()
		if inner == nil {
			break
		}
		err = inner
		if _, ok := err.(interface{ Unwrap() error }); !ok {
			break
		}
	}
	return err
}

// status returns the first answering endpoint's status.
func (a *admin) status() (server.StatusBody, string, error) {
	var errs []string
	for _, e := range a.endpoints() {
		var st server.StatusBody
		if err := a.call(e, "GET", "/status", nil, &st); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return st, e, nil
	}
	if len(errs) == 0 {
		return server.StatusBody{}, "", errors.New("no --endpoints given")
	}
	return server.StatusBody{}, "", fmt.Errorf("no node answered: %s", strings.Join(errs, "; "))
}

// leaderStatus returns the leader's status (which has replication progress),
// finding the leader through any node's view.
func (a *admin) leaderStatus() (server.StatusBody, string, error) {
	st, ep, err := a.status()
	if err != nil {
		return st, ep, err
	}
	if st.Role == "leader" || st.Leader == 0 {
		return st, ep, nil
	}
	for _, m := range st.Members {
		if m.ID == st.Leader && m.Admin != "" {
			var ls server.StatusBody
			if err := a.call(m.Admin, "GET", "/status", nil, &ls); err == nil {
				return ls, m.Admin, nil
			}
		}
	}
	return st, ep, nil
}

// onLeader sends a mutating call to the leader, following one redirect.
func (a *admin) onLeader(method, path string, body, out any) error {
	st, ep, err := a.leaderStatus()
	if err != nil {
		return err
	}
	if st.Role != "leader" {
		return fmt.Errorf("no leader: %s has none (term %d); is a quorum up?", ep, st.Term)
	}
	err = a.call(ep, method, path, body, out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == http.StatusMisdirectedRequest && ae.Leader != "" {
		return a.call(ae.Leader, method, path, body, out)
	}
	return err
}

func writeJSONOut(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// parseInterleaved parses flags wherever they appear among the positional
// arguments (kraft-ctl put k v --timeout 3s); after "--" everything is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil // the flag package ate the "--"
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// clusterCommand wraps a cluster command's flag parsing: flags come before
// positional arguments; nargs is the number of positional arguments
// required (-1: any).
func clusterCommand(name, usage string, nargs int, run func(f *clusterFlags, fs *flag.FlagSet, args []string, stdout io.Writer) error, extra func(fs *flag.FlagSet)) command {
	return command{name: name, summary: usage, run: func(args []string, stdout, stderr io.Writer) int {
		fs := newFlagSet(name)
		f := &clusterFlags{}
		if extra != nil {
			extra(fs) // first: a command's own flag keeps its name (trace-request --key)
		}
		f.register(fs)
		positional, err := parseInterleaved(fs, args)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "Usage: kraft-ctl %s [flags]\n  %s\n\nFlags:\n", name, usage)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return exitOK
			}
			return usageError(stderr, err.Error(), "kraft-ctl "+name+" --help")
		}
		if nargs >= 0 && len(positional) != nargs {
			return usageError(stderr, fmt.Sprintf("%s takes %d argument(s), got %d", name, nargs, len(positional)), "kraft-ctl "+name+" --help")
		}
		err = f.setup(stderr)
		if err == nil {
			err = run(f, fs, positional, stdout)
		}
		if err != nil {
			var u usageErr
			if errors.As(err, &u) {
				return usageError(stderr, u.msg, "kraft-ctl "+name+" --help")
			}
			return failure(stderr, err)
		}
		return exitOK
	}}
}
