package server

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env ...string) (Config, error) {
	t.Helper()
	return LoadConfig(args, env, io.Discard)
}

func TestConfigDefaultsNeedOnlyANodeID(t *testing.T) {
	c, err := load(t, []string{"--node-id", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RaftPort != 7001 || c.ClientPort != 7002 || c.AdminPort != 7003 || c.ElectionTimeoutMin != 150*time.Millisecond ||
		c.ElectionTimeoutMax != 300*time.Millisecond || c.HeartbeatInterval != 50*time.Millisecond || !c.PreVote ||
		c.FsyncMode != "always" || c.DataDir != "/var/lib/kraft/data" || c.SnapshotDir != "/var/lib/kraft/snapshots" {
		t.Fatalf("defaults: %+v", c)
	}
	if _, err := load(t, nil); err == nil || !strings.Contains(err.Error(), "--node-id is required") {
		t.Fatalf("no node ID: %v", err)
	}
}

func TestConfigPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kraft.env")
	os.WriteFile(file, []byte(`# kraft.env
KRAFT_NODE_ID=3
export KRAFT_RAFT_PORT=8001
KRAFT_CLIENT_PORT="8002"
KRAFT_ADMIN_PORT='8003'

KRAFT_LOG_LEVEL=warn
`), 0o644)
	c, err := load(t, []string{"--env-file", file, "--admin-port", "9003"}, "KRAFT_CLIENT_PORT=9002", "UNRELATED=1")
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 3 || c.RaftPort != 8001 || c.ClientPort != 9002 || c.AdminPort != 9003 || c.LogLevel != "warn" {
		t.Fatalf("precedence: node %d raft %d client %d admin %d level %s", c.NodeID, c.RaftPort, c.ClientPort, c.AdminPort, c.LogLevel)
	}
	// The env file may also be named by the environment.
	c, err = load(t, nil, "KRAFT_ENV_FILE="+file)
	if err != nil || c.NodeID != 3 {
		t.Fatalf("KRAFT_ENV_FILE: %+v %v", c, err)
	}
}

func TestConfigUnitsAndBareBooleans(t *testing.T) {
	c, err := load(t, []string{"--node-id=1", "--max-pending-bytes", "128MiB", "--segment-size=1GiB", "--heartbeat-interval", "20",
		"--election-timeout-min", "0.5s", "--election-timeout-max=1s", "--lease-reads", "--bootstrap", "--pre-vote=false"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPendingBytes != 128<<20 || c.SegmentSize != 1<<30 || c.HeartbeatInterval != 20*time.Millisecond ||
		c.ElectionTimeoutMin != 500*time.Millisecond || !c.LeaseReads || !c.Bootstrap || c.PreVote {
		t.Fatalf("parsed: %+v", c)
	}
	if s := Size(256 << 20).String(); s != "256MiB" {
		t.Fatalf("Size.String = %s", s)
	}
	for _, bad := range []string{"12XB", "-1", "1.5MiB", ""} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// Every refusal names the flag and, when it matters, where the value came from.
func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--node-id", "x"}, nil, `invalid value "x" for flag -node-id`},
		{[]string{"--node-id=1"}, []string{"KRAFT_ELECTION_TIMEOUT_MIN=fast"}, "invalid --election-timeout-min (from environment variable KRAFT_ELECTION_TIMEOUT_MIN)"},
		{[]string{"--node-id=1", "--heartbeat-interval=200ms"}, nil, "--election-timeout-min (150ms) must be greater than --heartbeat-interval (200ms)"},
		{[]string{"--node-id=1", "--election-timeout-max=100ms"}, nil, "--election-timeout-max (100ms) must be greater than --election-timeout-min"},
		{[]string{"--node-id=1", "--lease-reads", "--check-quorum=false"}, nil, "--lease-reads needs --check-quorum"},
		{[]string{"--node-id=1", "--fsync-mode=batch", "--batch-fsync-interval=1s"}, nil, "--batch-fsync-interval (1s) must be positive and below --election-timeout-min"},
		{[]string{"--node-id=1", "--client-port=7001"}, nil, "--raft-port and --client-port are both 7001"},
		{[]string{"--node-id=1", "--peers", "1=10.0.0.1:7001"}, nil, "--peers gives node 1 the address 10.0.0.1:7001, but it advertises 127.0.0.1:7001"},
		{[]string{"--node-id=1", "--peers", "2=a:1,2=b:1"}, nil, "--peers: node 2 listed twice"},
		{[]string{"--node-id=1", "--bootstrap", "--join", "a:7001"}, nil, "--bootstrap and --join exclude each other"},
		{[]string{"--node-id=1", "--max-entry-size=64MiB"}, nil, "--max-entry-size 64MiB must be between 1KiB and half of --segment-size"},
		{[]string{"--node-id=1", "--snapshot-min-interval=-1s"}, nil, "--snapshot-min-interval -1s must not be negative"},
		{[]string{"--node-id=1", "--wal-recycle-segments=-1"}, nil, "--wal-recycle-segments -1 must be between 0 and 4096"},
		{[]string{"--node-id=1"}, []string{"KRAFT_WAL_RECYCLE_SEGMENTS=5000"}, "--wal-recycle-segments 5000 must be between 0 and 4096"},
		{[]string{"--node-id=1", "--wal-recycle-segments=many"}, nil, `invalid value "many" for flag -wal-recycle-segments`},
		{[]string{"--node-id=1", "--log-format=xml"}, nil, `--log-format "xml" must be text or json`},
		{[]string{"--node-id=1", "stray"}, nil, `unexpected argument "stray"`},
		{[]string{"--node-id=1", "--env-file", "/nonexistent/kraft.env"}, nil, "env file: open /nonexistent/kraft.env"},
	}
	for _, c := range cases {
		_, err := load(t, c.args, c.env...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want %q", c.args, c.env, err, c.want)
		}
	}
}

func TestConfigEnvFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.env")
	os.WriteFile(bad, []byte("KRAFT_NODE_ID=1\nnot a setting\n"), 0o644)
	if _, err := load(t, []string{"--env-file", bad}); err == nil || !strings.Contains(err.Error(), "bad.env:2: expected KEY=value") {
		t.Fatalf("malformed line: %v", err)
	}
	typo := filepath.Join(dir, "typo.env")
	os.WriteFile(typo, []byte("KRAFT_NODE_ID=1\nKRAFT_ELECTON_TIMEOUT_MIN=500ms\n"), 0o644)
	if _, err := load(t, []string{"--env-file", typo}); err == nil || !strings.Contains(err.Error(), "unknown setting KRAFT_ELECTON_TIMEOUT_MIN") {
		t.Fatalf("misspelt setting: %v", err)
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	var out strings.Builder
	_, err := LoadConfig([]string{"--help"}, nil, &out)
	if !errors.Is(err, ErrHelp) || !strings.Contains(out.String(), "-election-timeout-min") || !strings.Contains(out.String(), "KRAFT_ELECTION_TIMEOUT_MIN") {
		t.Fatalf("help: %v\n%s", err, out.String())
	}
}

func TestEffectiveMasksTheToken(t *testing.T) {
	c, err := load(t, []string{"--node-id=1", "--admin-token=s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	eff := c.Effective()
	if eff["admin-token"] != "(set)" || eff["node-id"] != "1" || eff["max-pending-bytes"] != "256MiB" {
		t.Fatalf("effective: %v", eff)
	}
}

func TestClusterNumber(t *testing.T) {
	if ClusterNumber("0xCAFEBABE") != 0xCAFEBABE || ClusterNumber("42") != 42 {
		t.Fatal("numeric cluster IDs")
	}
	if a, b := ClusterNumber("kraft-prod"), ClusterNumber("kraft-dev"); a == b || a == 0 {
		t.Fatal("named cluster IDs must differ")
	}
}

// docs/configuration.md documents every setting: adding a flag without
// documenting it fails here.
func TestEverySettingIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		if !strings.Contains(string(doc), "`--"+s[0]+"`") || !strings.Contains(string(doc), s[1]) {
			t.Errorf("docs/configuration.md does not document --%s (%s)", s[0], s[1])
		}
	}
}

// --wal-recycle-segments 0 turns recycling off, where wal.Options reads 0
// as its default: the mapping must not hand the WAL a 0.
func TestRecycleSegmentsZeroMeansNone(t *testing.T) {
	for in, want := range map[int]int{0: -1, 1: 1, 32: 32} {
		if got := recycleSegments(in); got != want {
			t.Errorf("recycleSegments(%d) = %d, want %d", in, got, want)
		}
	}
}
