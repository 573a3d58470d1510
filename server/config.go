package server

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kraftdb/kraft/wal"
)

// Config is everything a kraftd node is configured with. Each field is
// settable by a flag, a KRAFT_* environment variable and a line of the env
// file (see settings); precedence: flag, then environment, then env file,
// then the default.
type Config struct {
	NodeID    uint64
	ClusterID string // a name ("kraft-prod") or a number ("0xCAFEBABE")

	BindAddress   string
	AdvertiseHost string // how other nodes and clients reach this one
	RaftPort      int
	ClientPort    int
	AdminPort     int
	Peers         string // "1=host:7001,2=host:7001": founding or known members' peer addresses

	// PeerDial overrides, per peer, the address this node dials ("2=host:port,...")
	// whatever the peer advertises: NAT, port forwarding, or a test's proxies.
	PeerDial string

	Bootstrap bool   // found a new cluster with the members of Peers (and this node)
	Join      string // peer address of a member of an existing cluster to contact

	DataDir     string
	WALDir      string // default: DataDir
	SnapshotDir string

	ElectionTimeoutMin time.Duration
	ElectionTimeoutMax time.Duration
	HeartbeatInterval  time.Duration
	PreVote            bool
	CheckQuorum        bool
	LeaseReads         bool

	FsyncMode          string // always | batch | none
	BatchFsyncInterval time.Duration
	SegmentSize        Size
	// WALRecycleSegments: segments retired by compaction kept to be
	// written again instead of zero-filling fresh ones (0: none).
	WALRecycleSegments int

	SnapshotThreshold   uint64
	SnapshotMinInterval time.Duration // automatic snapshots at most this often
	SnapshotRetain      int
	SnapshotCompression bool // zstd in the snapshot file
	SnapshotIncremental bool // delta snapshots of what changed (the KV supports it)
	SnapshotAsync       bool // serialize the snapshot off the apply goroutine

	// Batching: proposals gathered into one WAL append and one Append per
	// follower. BatchTimeout 0: never wait for a batch to fill.
	BatchSize    int
	BatchTimeout time.Duration
	// LogCacheSize bounds the memory of applied, stable log entries; older
	// ones are read back from the WAL for lagging followers.
	LogCacheSize Size
	// ReplicationCompression compresses large AppendEntries batches (S2)
	// to peers that also enable it (negotiated in the handshake).
	ReplicationCompression bool

	MaxPendingEntries int
	MaxPendingBytes   Size
	MaxEntrySize      Size
	MaxFrameSize      Size
	PipelineWindow    int
	RequestTimeout    time.Duration
	MaxConnections    int // per port

	MaxKeySize          Size
	MaxValueSize        Size
	MaxInflightRequests int           // per client connection
	IdleTimeout         time.Duration // client connections
	HandshakeTimeout    time.Duration

	// TLS: certificate, key and CA files per port. Peer: mutual TLS
	// (all three required together). Client and admin: TLS with cert and
	// key; with a CA, client certificates are required.
	PeerCert, PeerKey, PeerCA       string
	ClientCert, ClientKey, ClientCA string
	AdminCert, AdminKey, AdminCA    string

	// UnsafeLocalReads serves linearizable reads from the local state machine
	// without ReadIndex: wrong on purpose, for the fault tests' canary.
	UnsafeLocalReads bool

	AdminToken string
	LogLevel   string // debug | info | warn | error
	LogFormat  string // text | json
	EnvFile    string
}

// DefaultConfig holds the defaults of reference/original-kraft-spec.md §3.
func DefaultConfig() Config {
	return Config{
		ClusterID:           "kraft",
		BindAddress:         "0.0.0.0",
		RaftPort:            7001,
		ClientPort:          7002,
		AdminPort:           7003,
		DataDir:             "/var/lib/kraft/data",
		SnapshotDir:         "/var/lib/kraft/snapshots",
		ElectionTimeoutMin:  150 * time.Millisecond,
		ElectionTimeoutMax:  300 * time.Millisecond,
		HeartbeatInterval:   50 * time.Millisecond,
		PreVote:             true,
		CheckQuorum:         true,
		FsyncMode:           "always",
		BatchFsyncInterval:  10 * time.Millisecond,
		SegmentSize:         64 << 20,
		WALRecycleSegments:  wal.DefaultRecycleSegments,
		SnapshotThreshold:   100000,
		SnapshotMinInterval: time.Minute,
		SnapshotRetain:      3,
		SnapshotCompression: true,
		SnapshotAsync:       true,
		BatchSize:           4096,
		LogCacheSize:        256 << 20,
		MaxKeySize:          64 << 10,
		MaxValueSize:        1 << 20,
		MaxInflightRequests: 1024,
		IdleTimeout:         5 * time.Minute,
		HandshakeTimeout:    2 * time.Second,
		MaxPendingEntries:   100000,
		MaxPendingBytes:     256 << 20,
		MaxEntrySize:        1 << 20,
		MaxFrameSize:        16 << 20,
		PipelineWindow:      10,
		RequestTimeout:      5 * time.Second,
		MaxConnections:      10000,
		LogLevel:            "info",
		LogFormat:           "text",
	}
}

// Size is a byte count that parses units: 512, 64KiB, 256MiB, 1GiB (and
// KB/MB/GB as the same powers of two, as operators write them).
type Size int64

func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// ParseSize parses a size with an optional unit.
func ParseSize(v string) (Size, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 4096, 64KiB, 256MiB, 1GiB)", v)
	}
	return Size(n * mult), nil
}

// accessor reads and parses one Config field as text.
type accessor struct {
	get    func(c *Config) string
	set    func(c *Config, v string) error
	isBool bool // a bare --flag means true
}

// setting binds one Config field to its flag and environment variable.
type setting struct {
	name string // flag name; env var is KRAFT_ + upper snake case
	help string
	accessor
}

// Env is the environment variable of a setting.
func (s setting) Env() string {
	return "KRAFT_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func str(p func(c *Config) *string) accessor {
	return accessor{func(c *Config) string { return *p(c) }, func(c *Config, v string) error { *p(c) = v; return nil }, false}
}

func integer(p func(c *Config) *int) accessor {
	return accessor{func(c *Config) string { return strconv.Itoa(*p(c)) }, func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(c) = n
		return nil
	}, false}
}

func uinteger(p func(c *Config) *uint64) accessor {
	return accessor{func(c *Config) string { return strconv.FormatUint(*p(c), 10) }, func(c *Config, v string) error {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*p(c) = n
		return nil
	}, false}
}

func boolean(p func(c *Config) *bool) accessor {
	return accessor{func(c *Config) string { return strconv.FormatBool(*p(c)) }, func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true/false)", v)
		}
		*p(c) = b
		return nil
	}, true}
}

func duration(p func(c *Config) *time.Duration) accessor {
	return accessor{func(c *Config) string { return p(c).String() }, func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			// Bare numbers are milliseconds, as in the reference's config.
			if n, e := strconv.ParseInt(strings.TrimSpace(v), 10, 64); e == nil {
				d, err = time.Duration(n)*time.Millisecond, nil
			}
		}
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 150ms, 5s; a bare number is milliseconds)", v)
		}
		*p(c) = d
		return nil
	}, false}
}

func size(p func(c *Config) *Size) accessor {
	return accessor{func(c *Config) string { return p(c).String() }, func(c *Config, v string) error {
		s, err := ParseSize(v)
		if err != nil {
			return err
		}
		*p(c) = s
		return nil
	}, false}
}

// settings lists every configurable field. The docs test checks that
// docs/configuration.md names each one.
func settings() []setting {
	return []setting{
		mk("node-id", "this node's ID (required, non-zero, unique in the cluster)", uinteger(func(c *Config) *uint64 { return &c.NodeID })),
		mk("cluster-id", "cluster name or number; nodes of other clusters are refused", str(func(c *Config) *string { return &c.ClusterID })),
		mk("bind-address", "address to listen on", str(func(c *Config) *string { return &c.BindAddress })),
		mk("advertise-host", "host other nodes and clients use to reach this node (default: bind address, or 127.0.0.1 for a wildcard)", str(func(c *Config) *string { return &c.AdvertiseHost })),
		mk("raft-port", "peer (Raft) port", integer(func(c *Config) *int { return &c.RaftPort })),
		mk("client-port", "client port", integer(func(c *Config) *int { return &c.ClientPort })),
		mk("admin-port", "admin HTTP port (metrics, health, admin API)", integer(func(c *Config) *int { return &c.AdminPort })),
		mk("peers", "members' peer addresses: 1=host:7001,2=host:7001", str(func(c *Config) *string { return &c.Peers })),
		mk("peer-dial", "dial these addresses for these peers instead of what they advertise: 2=host:port,3=host:port (NAT, port forwarding)", str(func(c *Config) *string { return &c.PeerDial })),
		mk("bootstrap", "found a new cluster whose voters are this node and --peers (only with empty storage)", boolean(func(c *Config) *bool { return &c.Bootstrap })),
		mk("join", "peer address of a member of the existing cluster this node joins (then: kraft-ctl add-voter)", str(func(c *Config) *string { return &c.Join })),
		mk("data-dir", "WAL and hard state", str(func(c *Config) *string { return &c.DataDir })),
		mk("wal-dir", "WAL directory, e.g. on a faster disk (default: --data-dir)", str(func(c *Config) *string { return &c.WALDir })),
		mk("snapshot-dir", "snapshot files snapshot-<index>-<term>.dat", str(func(c *Config) *string { return &c.SnapshotDir })),
		mk("election-timeout-min", "lower bound of the randomized election timeout", duration(func(c *Config) *time.Duration { return &c.ElectionTimeoutMin })),
		mk("election-timeout-max", "upper bound of the randomized election timeout", duration(func(c *Config) *time.Duration { return &c.ElectionTimeoutMax })),
		mk("heartbeat-interval", "leader heartbeat interval", duration(func(c *Config) *time.Duration { return &c.HeartbeatInterval })),
		mk("pre-vote", "pre-vote before elections (stops term inflation by partitioned nodes)", boolean(func(c *Config) *bool { return &c.PreVote })),
		mk("check-quorum", "a leader that cannot hear a majority steps down", boolean(func(c *Config) *bool { return &c.CheckQuorum })),
		mk("lease-reads", "serve linearizable reads from the leader lease without a heartbeat round (needs check-quorum, bounded clock drift)", boolean(func(c *Config) *bool { return &c.LeaseReads })),
		mk("fsync-mode", "always (every batch synced before it counts) | batch (every --batch-fsync-interval) | none", str(func(c *Config) *string { return &c.FsyncMode })),
		mk("batch-fsync-interval", "sync interval of --fsync-mode=batch", duration(func(c *Config) *time.Duration { return &c.BatchFsyncInterval })),
		mk("segment-size", "WAL segment file size", size(func(c *Config) *Size { return &c.SegmentSize })),
		mk("wal-recycle-segments", "WAL segments retired by snapshots that are kept and written again instead of zero-filling new ones (0: delete them)", integer(func(c *Config) *int { return &c.WALRecycleSegments })),
		mk("snapshot-threshold", "entries applied between automatic snapshots (0: manual only)", uinteger(func(c *Config) *uint64 { return &c.SnapshotThreshold })),
		mk("snapshot-min-interval", "least time between the starts of automatic snapshots; under heavy writes the log grows meanwhile instead (0: no minimum)", duration(func(c *Config) *time.Duration { return &c.SnapshotMinInterval })),
		mk("snapshot-retain", "snapshot files kept (plus the bases of kept incremental snapshots); older WAL segments are released", integer(func(c *Config) *int { return &c.SnapshotRetain })),
		mk("snapshot-compression", "compress snapshot files with zstd", boolean(func(c *Config) *bool { return &c.SnapshotCompression })),
		mk("snapshot-incremental", "snapshots store only what changed since the previous one (a full one every few)", boolean(func(c *Config) *bool { return &c.SnapshotIncremental })),
		mk("snapshot-async", "write snapshots off the apply path (applies and commits continue meanwhile)", boolean(func(c *Config) *bool { return &c.SnapshotAsync })),
		mk("batch-size", "most proposals in one batch (one WAL append, one AppendEntries per follower)", integer(func(c *Config) *int { return &c.BatchSize })),
		mk("batch-timeout", "how long a partial batch may wait for more proposals (0: never; batching happens anyway while the disk syncs)", duration(func(c *Config) *time.Duration { return &c.BatchTimeout })),
		mk("log-cache-size", "memory for applied log entries; older ones are read from the WAL when a follower needs them", size(func(c *Config) *Size { return &c.LogCacheSize })),
		mk("replication-compression", "compress large AppendEntries batches (S2) to peers that enable it too", boolean(func(c *Config) *bool { return &c.ReplicationCompression })),
		mk("max-pending-entries", "uncommitted entries beyond which writes get 'too many pending requests'", integer(func(c *Config) *int { return &c.MaxPendingEntries })),
		mk("max-pending-bytes", "uncommitted bytes beyond which writes get 'too many pending requests'", size(func(c *Config) *Size { return &c.MaxPendingBytes })),
		mk("max-entry-size", "largest single command", size(func(c *Config) *Size { return &c.MaxEntrySize })),
		mk("max-frame-size", "largest frame accepted on any port", size(func(c *Config) *Size { return &c.MaxFrameSize })),
		mk("pipeline-window", "AppendEntries messages in flight per follower", integer(func(c *Config) *int { return &c.PipelineWindow })),
		mk("max-connections", "accepted connections per port (peer, client) before new ones are refused as overloaded", integer(func(c *Config) *int { return &c.MaxConnections })),
		mk("request-timeout", "how long a client request may wait for commit", duration(func(c *Config) *time.Duration { return &c.RequestTimeout })),
		mk("max-key-size", "largest key a client may write (capped by --max-entry-size)", size(func(c *Config) *Size { return &c.MaxKeySize })),
		mk("max-value-size", "largest value a client may write (capped by --max-entry-size)", size(func(c *Config) *Size { return &c.MaxValueSize })),
		mk("max-inflight-requests", "unanswered requests per client connection beyond which requests get 'too many in-flight requests'", integer(func(c *Config) *int { return &c.MaxInflightRequests })),
		mk("idle-timeout", "a client connection silent this long is closed (peers heartbeat)", duration(func(c *Config) *time.Duration { return &c.IdleTimeout })),
		mk("handshake-timeout", "an accepted connection must finish its handshake within this", duration(func(c *Config) *time.Duration { return &c.HandshakeTimeout })),
		mk("peer-cert", "certificate for mutual TLS on the peer port (names this node: URI SAN kraft://node/<id> or DNS kraft-node<id>...)", str(func(c *Config) *string { return &c.PeerCert })),
		mk("peer-key", "private key of --peer-cert", str(func(c *Config) *string { return &c.PeerKey })),
		mk("peer-ca", "CA that peer certificates must chain to (required with --peer-cert)", str(func(c *Config) *string { return &c.PeerCA })),
		mk("client-cert", "certificate for TLS on the client port", str(func(c *Config) *string { return &c.ClientCert })),
		mk("client-key", "private key of --client-cert", str(func(c *Config) *string { return &c.ClientKey })),
		mk("client-ca", "CA for client certificates; when set, clients must present one", str(func(c *Config) *string { return &c.ClientCA })),
		mk("admin-cert", "certificate for HTTPS on the admin port", str(func(c *Config) *string { return &c.AdminCert })),
		mk("admin-key", "private key of --admin-cert", str(func(c *Config) *string { return &c.AdminKey })),
		mk("admin-ca", "CA for admin client certificates; when set, admin clients must present one", str(func(c *Config) *string { return &c.AdminCA })),
		mk("unsafe-local-reads", "TESTING ONLY: answer linearizable reads locally without ReadIndex (stale reads; the fault tests' canary)", boolean(func(c *Config) *bool { return &c.UnsafeLocalReads })),
		mk("admin-token", "bearer token required by mutating admin calls and /metrics (empty: none)", str(func(c *Config) *string { return &c.AdminToken })),
		mk("log-level", "debug | info | warn | error", str(func(c *Config) *string { return &c.LogLevel })),
		mk("log-format", "text | json", str(func(c *Config) *string { return &c.LogFormat })),
		mk("env-file", "file of KRAFT_*=value lines (e.g. /etc/kraft/kraft.env)", str(func(c *Config) *string { return &c.EnvFile })),
	}
}

func mk(name, help string, a accessor) setting { return setting{name: name, help: help, accessor: a} }

// Settings returns (name, env, help, default) for every setting, for docs
// and for `kraftd --help`.
func Settings() [][4]string {
	d := DefaultConfig()
	var out [][4]string
	for _, s := range settings() {
		out = append(out, [4]string{s.name, s.Env(), s.help, s.get(&d)})
	}
	return out
}

// Effective returns every setting's value in c (the admin token masked).
func (c *Config) Effective() map[string]string {
	out := map[string]string{}
	for _, s := range settings() {
		v := s.get(c)
		if s.name == "admin-token" && v != "" {
			v = "(set)"
		}
		out[s.name] = v
	}
	return out
}

// ErrHelp is returned by LoadConfig when -h/--help was asked for.
var ErrHelp = flag.ErrHelp

// LoadConfig builds the configuration from command-line args, the
// environment (environ: "KEY=value" strings) and the env file, and
// validates it. Errors name the flag and where the bad value came from.
func LoadConfig(args, environ []string, usage io.Writer) (Config, error) {
	c := DefaultConfig()
	all := settings()
	fs := flag.NewFlagSet("kraftd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; -h prints below
	fromFlags := map[string]string{}
	for _, s := range all {
		s := s
		help := s.help + " (" + s.Env() + ", default " + quoteEmpty(s.get(&c)) + ")"
		record := func(v string) error {
			if err := s.set(&Config{}, v); err != nil { // check the syntax now, naming the flag
				return err
			}
			fromFlags[s.name] = v
			return nil
		}
		if s.isBool {
			fs.BoolFunc(s.name, help, record)
		} else {
			fs.Func(s.name, help, record)
		}
	}
	fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usage, "Usage: kraftd [flags]   (every flag also reads KRAFT_<NAME> and --env-file)")
			fs.SetOutput(usage)
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "KRAFT_") {
			env[k] = v
		}
	}
	// The env file's location may itself come from a flag or the environment.
	envFile := env["KRAFT_ENV_FILE"]
	if v, ok := fromFlags["env-file"]; ok {
		envFile = v
	}
	fileVals := map[string]string{}
	if envFile != "" {
		var err error
		if fileVals, err = readEnvFile(envFile); err != nil {
			return c, err
		}
	}
	known := map[string]bool{}
	for _, s := range all {
		known[s.Env()] = true
		val, src, ok := "", "", false
		if v, set := fromFlags[s.name]; set {
			val, src, ok = v, "--"+s.name, true
		} else if v, set := env[s.Env()]; set {
			val, src, ok = v, "environment variable "+s.Env(), true
		} else if v, set := fileVals[s.Env()]; set {
			val, src, ok = v, s.Env()+" in "+envFile, true
		}
		if ok {
			if err := s.set(&c, val); err != nil {
				return c, fmt.Errorf("invalid --%s (from %s): %v", s.name, src, err)
			}
		}
	}
	for k := range fileVals {
		if !known[k] {
			return c, fmt.Errorf("%s: unknown setting %s", envFile, k)
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// readEnvFile reads KEY=value lines; blank lines and # comments are
// skipped, and values may be quoted, as systemd's EnvironmentFile allows.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(t, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected KEY=value, got %q", path, line, t)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	return out, nil
}

// Validate checks every field and the relations between them; each error
// names the flag to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.NodeID == 0 {
		bad("--node-id is required and must be non-zero")
	}
	if strings.TrimSpace(c.ClusterID) == "" {
		bad("--cluster-id must not be empty")
	}
	if net.ParseIP(c.BindAddress) == nil && c.BindAddress != "localhost" {
		bad("--bind-address %q is not an IP address", c.BindAddress)
	}
	ports := map[int]string{}
	for _, p := range []struct {
		name string
		v    int
	}{{"raft-port", c.RaftPort}, {"client-port", c.ClientPort}, {"admin-port", c.AdminPort}} {
		if p.v < 1 || p.v > 65535 {
			bad("--%s %d is not a port (1-65535)", p.name, p.v)
		} else if other, dup := ports[p.v]; dup {
			bad("--%s and --%s are both %d", other, p.name, p.v)
		}
		ports[p.v] = p.name
	}
	peers, err := ParsePeers(c.Peers)
	if err != nil {
		bad("--peers: %v", err)
	}
	if addr, ok := peers[c.NodeID]; ok && c.NodeID != 0 && addr != c.AdvertisedPeerAddr() {
		bad("--peers gives node %d the address %s, but it advertises %s: set --advertise-host or --raft-port to match", c.NodeID, addr, c.AdvertisedPeerAddr())
	}
	if _, err := ParsePeers(c.PeerDial); err != nil {
		bad("--peer-dial: %v", err)
	}
	if c.Bootstrap && c.Join != "" {
		bad("--bootstrap and --join exclude each other: found a new cluster, or join an existing one")
	}
	if c.Join != "" {
		if _, _, err := net.SplitHostPort(c.Join); err != nil {
			bad("--join %q: %v", c.Join, err)
		}
	}
	if c.DataDir == "" {
		bad("--data-dir must not be empty")
	}
	if c.SnapshotDir == "" {
		bad("--snapshot-dir must not be empty")
	}
	if c.HeartbeatInterval < time.Millisecond {
		bad("--heartbeat-interval %v must be at least 1ms", c.HeartbeatInterval)
	}
	if c.ElectionTimeoutMin <= c.HeartbeatInterval {
		bad("--election-timeout-min (%v) must be greater than --heartbeat-interval (%v)", c.ElectionTimeoutMin, c.HeartbeatInterval)
	}
	if c.ElectionTimeoutMax <= c.ElectionTimeoutMin {
		bad("--election-timeout-max (%v) must be greater than --election-timeout-min (%v)", c.ElectionTimeoutMax, c.ElectionTimeoutMin)
	}
	if c.LeaseReads && !c.CheckQuorum {
		bad("--lease-reads needs --check-quorum")
	}
	if !slices.Contains([]string{"always", "batch", "none"}, c.FsyncMode) {
		bad("--fsync-mode %q must be always, batch or none", c.FsyncMode)
	}
	if c.FsyncMode == "batch" && (c.BatchFsyncInterval <= 0 || c.BatchFsyncInterval >= c.ElectionTimeoutMin) {
		bad("--batch-fsync-interval (%v) must be positive and below --election-timeout-min (%v)", c.BatchFsyncInterval, c.ElectionTimeoutMin)
	}
	if c.WALRecycleSegments < 0 || c.WALRecycleSegments > maxRecycleSegments {
		bad("--wal-recycle-segments %d must be between 0 and %d", c.WALRecycleSegments, maxRecycleSegments)
	}
	if c.SegmentSize < 1<<20 {
		bad("--segment-size %v must be at least 1MiB", c.SegmentSize)
	}
	if c.MaxEntrySize < 1<<10 || c.MaxEntrySize > c.SegmentSize/2 {
		bad("--max-entry-size %v must be between 1KiB and half of --segment-size (%v)", c.MaxEntrySize, c.SegmentSize)
	}
	if c.MaxFrameSize < c.MaxEntrySize+64<<10 {
		bad("--max-frame-size %v must exceed --max-entry-size (%v) by at least 64KiB", c.MaxFrameSize, c.MaxEntrySize)
	}
	if c.SnapshotMinInterval < 0 {
		bad("--snapshot-min-interval %v must not be negative", c.SnapshotMinInterval)
	}
	if c.SnapshotRetain < 1 {
		bad("--snapshot-retain %d must be at least 1", c.SnapshotRetain)
	}
	if c.MaxPendingEntries < 1 || c.MaxPendingBytes < c.MaxEntrySize {
		bad("--max-pending-entries must be positive and --max-pending-bytes (%v) at least --max-entry-size (%v)", c.MaxPendingBytes, c.MaxEntrySize)
	}
	if c.PipelineWindow < 1 || c.PipelineWindow > 1024 {
		bad("--pipeline-window %d must be in [1,1024]", c.PipelineWindow)
	}
	if c.MaxConnections < 1 {
		bad("--max-connections %d must be positive", c.MaxConnections)
	}
	if c.BatchSize < 1 || c.BatchSize > 65536 {
		bad("--batch-size %d must be in [1,65536]", c.BatchSize)
	}
	if c.BatchTimeout < 0 || c.BatchTimeout >= c.ElectionTimeoutMin {
		bad("--batch-timeout (%v) must be at least 0 and below --election-timeout-min (%v)", c.BatchTimeout, c.ElectionTimeoutMin)
	}
	if c.LogCacheSize < 1<<20 {
		bad("--log-cache-size %v must be at least 1MiB", c.LogCacheSize)
	}
	// Key and value limits above --max-entry-size are capped by it (a
	// smaller entry size need not be repeated in them).
	if c.MaxKeySize < 1 {
		bad("--max-key-size %v must be positive", c.MaxKeySize)
	}
	if c.MaxValueSize < 1 {
		bad("--max-value-size %v must be positive", c.MaxValueSize)
	}
	if c.MaxInflightRequests < 1 {
		bad("--max-inflight-requests %d must be positive", c.MaxInflightRequests)
	}
	if c.IdleTimeout < time.Second {
		bad("--idle-timeout %v must be at least 1s", c.IdleTimeout)
	}
	if c.HandshakeTimeout < 10*time.Millisecond || c.HandshakeTimeout > time.Minute {
		bad("--handshake-timeout %v must be between 10ms and 1m", c.HandshakeTimeout)
	}
	for _, t := range []struct {
		port, cert, key, ca string
		caRequired          bool
	}{{"peer", c.PeerCert, c.PeerKey, c.PeerCA, true}, {"client", c.ClientCert, c.ClientKey, c.ClientCA, false}, {"admin", c.AdminCert, c.AdminKey, c.AdminCA, false}} {
		switch {
		case (t.cert == "") != (t.key == ""):
			bad("--%s-cert and --%s-key go together: set both or neither", t.port, t.port)
		case t.cert == "" && t.ca != "":
			bad("--%s-ca needs --%s-cert and --%s-key", t.port, t.port, t.port)
		case t.cert != "" && t.caRequired && t.ca == "":
			bad("--%s-cert needs --%s-ca: peers authenticate each other (mutual TLS)", t.port, t.port)
		}
		for _, f := range []struct{ flag, path string }{{t.port + "-cert", t.cert}, {t.port + "-key", t.key}, {t.port + "-ca", t.ca}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				bad("--%s: %v", f.flag, err)
			}
		}
	}
	if c.RequestTimeout < 10*time.Millisecond {
		bad("--request-timeout %v must be at least 10ms", c.RequestTimeout)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("--log-level %q must be debug, info, warn or error", c.LogLevel)
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		bad("--log-format %q must be text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// ParsePeers parses "1=host:port,2=host:port".
func ParsePeers(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		idS, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not ID=host:port", item)
		}
		id, err := strconv.ParseUint(idS, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q: node ID must be a positive integer", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("node %d listed twice", id)
		}
		out[id] = addr
	}
	return out, nil
}

// NumericClusterID is the cluster ID carried in handshakes: the number
// itself if ClusterID is one, else a hash of the name.
func (c *Config) NumericClusterID() uint64 { return ClusterNumber(c.ClusterID) }

// ClusterNumber maps a --cluster-id (a number, or a name that is hashed)
// to the number handshakes carry.
func ClusterNumber(id string) uint64 {
	if n, err := strconv.ParseUint(id, 0, 64); err == nil && n != 0 {
		return n
	}
	return xxhash.Sum64String(id)
}

func (c *Config) advertiseHost() string {
	if c.AdvertiseHost != "" {
		return c.AdvertiseHost
	}
	if ip := net.ParseIP(c.BindAddress); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return c.BindAddress
}

// AdvertisedPeerAddr, AdvertisedClientAddr and AdvertisedAdminAddr are
// where others reach this node.
func (c *Config) AdvertisedPeerAddr() string {
	return net.JoinHostPort(c.advertiseHost(), strconv.Itoa(c.RaftPort))
}

func (c *Config) AdvertisedClientAddr() string {
	return net.JoinHostPort(c.advertiseHost(), strconv.Itoa(c.ClientPort))
}

func (c *Config) AdvertisedAdminAddr() string {
	return net.JoinHostPort(c.advertiseHost(), strconv.Itoa(c.AdminPort))
}

func (c *Config) listen(port int) string {
	return net.JoinHostPort(c.BindAddress, strconv.Itoa(port))
}

// maxRecycleSegments bounds --wal-recycle-segments: 4,096 segments of the
// default size are 256 GiB, beyond any disk the pool should pin.
const maxRecycleSegments = 4096

// recycleSegments maps --wal-recycle-segments to wal.Options (where 0
// means the default and a negative count none).
func recycleSegments(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
