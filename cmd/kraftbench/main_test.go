package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, args string) *options {
	t.Helper()
	o, err := parse(strings.Fields(args), io.Discard)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return o
}

// The flags of the first kraftbench keep working without a sub-command.
func TestParseDefaultsToThroughput(t *testing.T) {
	o := mustParse(t, "--local 3 --clients 1,256,1024 --payload 128 --duration 10s --warmup 2s --fsync-mode always --data-dir /tmp/kb1")
	if o.sub != "throughput" || o.local != 3 || len(o.clients) != 3 || o.clients[2] != 1024 || o.payloads[0] != 128 ||
		o.duration != 10*time.Second || o.dataDir != "/tmp/kb1" || len(o.rates) != 0 {
		t.Fatalf("%+v", o)
	}
}

func TestParseLatencyDefaults(t *testing.T) {
	if o := mustParse(t, "latency --local 3"); len(o.clients) != 1 || o.clients[0] != 1 {
		t.Fatalf("latency runs one client by default: %v", o.clients)
	}
	// Open loop: --inflight bounds the operations in flight, 1024 unless given.
	if o := mustParse(t, "latency --local 3 --rate 1000,5000.5"); o.inflight != 1024 || len(o.rates) != 2 || o.rates[1] != 5000.5 {
		t.Fatalf("%v %v", o.inflight, o.rates)
	}
	if o := mustParse(t, "throughput --local 3 --rate 0,1000 --clients 8 --inflight 64"); o.clients[0] != 8 || o.inflight != 64 || o.rates[0] != 0 {
		t.Fatalf("%v %v %v", o.clients, o.inflight, o.rates)
	}
}

func TestParseRateMatch(t *testing.T) {
	if o := mustParse(t, "--local 3 --clients 16 --rate 0,match"); o.rates[1] != matchRate {
		t.Fatal(o.rates)
	}
}

func TestParseSubCommands(t *testing.T) {
	if o := mustParse(t, "scalability --clients 64"); len(o.nodes) != 3 || o.nodes[2] != 7 {
		t.Fatalf("%v", o.nodes)
	}
	if o := mustParse(t, "election --local 5 --kills 3"); o.kills != 3 {
		t.Fatal(o.kills)
	}
	if o := mustParse(t, "throughput --local 3 --read-ratio 0.9 --consistency lease --key-dist zipf:0.8"); o.readRatio != 0.9 {
		t.Fatal(o.readRatio)
	}
}

func TestParseEmbedded(t *testing.T) {
	if o := mustParse(t, "throughput --embedded 3 --clients 1,1024 --fsync-mode batch"); o.embedded != 3 || o.local != 0 || o.fsync != "batch" {
		t.Fatalf("%+v", o)
	}
	if o := mustParse(t, "latency --embedded 1"); o.embedded != 1 || o.clients[0] != 1 {
		t.Fatalf("%+v", o)
	}
}

func TestParseNullServer(t *testing.T) {
	if o := mustParse(t, "throughput --null-server --clients 1,1024"); !o.nullServer || o.local != 0 || o.embedded != 0 {
		t.Fatalf("%+v", o)
	}
	if o := mustParse(t, "latency --null-server"); !o.nullServer || o.clients[0] != 1 {
		t.Fatalf("%+v", o)
	}
}

func TestParseKraftdEnv(t *testing.T) {
	o := mustParse(t, "throughput --local 3 --kraftd-env GOMAXPROCS=1 --kraftd-env GOGC=200")
	if len(o.kraftdEnv) != 1 || o.kraftdEnv[0] != "GOGC=200" {
		t.Fatalf("the last --kraftd-env wins, as with every flag: %q", o.kraftdEnv)
	}
	o = mustParse(t, "--local 3 --kraftd-env GOMAXPROCS=1")
	if len(o.kraftdEnv) != 1 || o.kraftdEnv[0] != "GOMAXPROCS=1" {
		t.Fatalf("%q", o.kraftdEnv)
	}
	if env, err := parseEnv(" GOMAXPROCS=1  GODEBUG=gctrace=1 EMPTY= "); err != nil || len(env) != 3 || env[1] != "GODEBUG=gctrace=1" || env[2] != "EMPTY=" {
		t.Fatalf("%q, %v", env, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range []string{
		"", // neither --local nor --endpoints
		"bogus --local 3",
		"--local 3 --endpoints 127.0.0.1:7002",
		"--local 3 --clients 0",
		"--local 3 --clients x",
		"--local 3 --rate -5",
		"--local 3 --rate 100 --inflight 0",
		"--local 3 --rate match",
		"--local 3 --payload 2000000",
		"--local 3 --read-ratio 1.5",
		"--local 3 --consistency strong",
		"--local 3 --key-dist zipf:2",
		"--local 3 extra",
		"election",
		"election --local 3 --kills 0",
		"scalability --endpoints 127.0.0.1:7002",
		"--embedded 3 --local 3",
		"--embedded 3 --endpoints 127.0.0.1:7002",
		"--embedded 10",
		"--embedded -1",
		"--embedded 3 --tls",
		"--embedded 3 --kraftd /bin/kraftd",
		"--embedded 3 --fsync-mode sometimes",
		"election --embedded 3",
		"scalability --embedded 3",
		"--null-server --local 3",
		"--null-server --embedded 3",
		"--null-server --endpoints 127.0.0.1:7002",
		"--null-server --tls",
		"--null-server --kraftd /bin/kraftd",
		"election --null-server",
		"scalability --null-server",
		"--local 3 --kraftd-env GOMAXPROCS",
		"--local 3 --kraftd-env =1",
		"--local 3 --kraftd-env 1X=2",
		"--local 3 --kraftd-env A-B=2",
		"--embedded 3 --kraftd-env GOMAXPROCS=1",
		"--null-server --kraftd-env GOMAXPROCS=1",
		"--endpoints 127.0.0.1:7002 --kraftd-env GOMAXPROCS=1",
		"--endpoints 127.0.0.1:7002 --kraftd-flags --lease-reads",
		"--local 3 --admin-endpoints 127.0.0.1:7003",
		"--embedded 3 --admin-endpoints 127.0.0.1:7003",
		"--endpoints 127.0.0.1:7002 --admin-endpoints 127.0.0.1:7003,",
		"--endpoints 127.0.0.1:7002 --admin-endpoints ftp://127.0.0.1:7003",
	} {
		if _, err := parse(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestParseAdminEndpoints(t *testing.T) {
	o, err := parse(strings.Fields("--endpoints 127.0.0.1:7002 --admin-endpoints 127.0.0.1:7003,https://h:7003 --admin-token t"), io.Discard)
	if err != nil || o.adminEndpoints != "127.0.0.1:7003,https://h:7003" || o.adminToken != "t" {
		t.Fatalf("%+v %v", o, err)
	}
}

func TestRunUsageErrorsExitTwo(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"kraftbench", "nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"kraftbench", "-h"}, &out, &errb); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
}

// Nodes on this host without huge pages get a note before the run; a
// remote cluster, the null server and a tuned or unknown host do not.
func TestTHPNote(t *testing.T) {
	for _, c := range []struct {
		args, mode string
		note       bool
	}{
		{"--local 3", "madvise", true},
		{"--local 3", "never", true},
		{"--embedded 3", "madvise", true},
		{"scalability --nodes 3,5", "madvise", true},
		{"--local 3", "always", false},
		{"--local 3", "?", false},
		{"--endpoints 127.0.0.1:7002", "madvise", false},
		{"--null-server", "madvise", false},
	} {
		got := thpNote(mustParse(t, c.args), c.mode)
		if (got != "") != c.note || (c.note && !strings.Contains(got, `"`+c.mode+`"`)) {
			t.Errorf("%s with THP %s: note %q, want one: %v", c.args, c.mode, got, c.note)
		}
	}
}
