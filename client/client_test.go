package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// testConfig is fast: short backoffs and timeouts.
func testConfig(endpoints ...string) Config {
	return Config{
		Endpoints:       endpoints,
		ClusterID:       7,
		DialTimeout:     time.Second,
		RequestTimeout:  5 * time.Second,
		RetryBackoff:    time.Millisecond,
		RetryBackoffMax: 10 * time.Millisecond,
	}
}

// faultFirst is a fake-server policy that answers the first request (of
// one of ops, when given) with kind and applies every other one.
func faultFirst(kind actionKind, ops ...wire.Op) func(int, *wire.ClientRequest) action {
	var once sync.Once
	return func(_ int, req *wire.ClientRequest) action {
		act := action{kind: actApply}
		if len(ops) == 0 || slices.Contains(ops, req.Op) {
			once.Do(func() { act.kind = kind })
		}
		return act
	}
}

// faultOdds are the chances, in percent, of each fault a randomFaults
// policy answers a request with; the rest are applied.
type faultOdds struct{ applyThenDrop, drop, applyThenTimeout, tooMany int }

// randomFaults is a fake-server policy that draws each request's fault
// from rng (under mu: the server calls it from several goroutines). With
// readsApply, reads are always applied.
func randomFaults(rng *rand.Rand, mu *sync.Mutex, readsApply bool, o faultOdds) func(int, *wire.ClientRequest) action {
	return func(_ int, req *wire.ClientRequest) action {
		mu.Lock()
		defer mu.Unlock()
		if readsApply && req.Op == wire.OpGet {
			return action{kind: actApply}
		}
		p := rng.IntN(100)
		for _, f := range []struct {
			odds int
			kind actionKind
		}{{o.applyThenDrop, actApplyThenDrop}, {o.drop, actDrop}, {o.applyThenTimeout, actApplyThenTimeout}, {o.tooMany, actTooMany}} {
			if p < f.odds {
				return action{kind: f.kind}
			}
			p -= f.odds
		}
		return action{kind: actApply}
	}
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustPut(t *testing.T, c *Client, key, value string) WriteResult {
	t.Helper()
	r, err := c.Put(testCtx(t), []byte(key), []byte(value))
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return r
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "no endpoints"},
		{"endpoint without port", func(c *Config) { c.Endpoints = []string{"localhost"} }, "not host:port"},
		{"negative retries", func(c *Config) { c.MaxRetries = -1 }, "MaxRetries"},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout"},
		{"backoff above max", func(c *Config) { c.RetryBackoff, c.RetryBackoffMax = time.Second, time.Millisecond }, "RetryBackoffMax"},
		{"inflight too large", func(c *Config) { c.MaxInflight = 1 << 20 }, "MaxInflight"},
		{"tiny frames", func(c *Config) { c.MaxFrameBytes = 10 }, "MaxFrameBytes"},
		{"attempt longer than request", func(c *Config) { c.AttemptTimeout, c.RequestTimeout = time.Minute, time.Second }, "AttemptTimeout"},
		{"dial longer than request", func(c *Config) { c.DialTimeout, c.RequestTimeout = time.Minute, time.Second }, "DialTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Endpoints: []string{"127.0.0.1:7002"}}
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "kraft/client: ") {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestOperations(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	ctx := testCtx(t)

	if r, err := c.Get(ctx, []byte("k")); err != nil || r.Found || r.Value != nil {
		t.Fatalf("get missing: %+v, %v", r, err)
	}
	w := mustPut(t, c, "k", "v1")
	if w.Index == 0 || w.Term != 1 {
		t.Fatalf("put result %+v", w)
	}
	if r, err := c.Get(ctx, []byte("k"), WithConsistency(Stale)); err != nil || !r.Found || string(r.Value) != "v1" {
		t.Fatalf("get: %+v, %v", r, err)
	}
	if r, err := c.CAS(ctx, []byte("k"), []byte("nope"), []byte("v2")); err != nil || r.Swapped || !r.Found || string(r.Current) != "v1" {
		t.Fatalf("failed cas: %+v, %v", r, err)
	}
	if r, err := c.CAS(ctx, []byte("k"), []byte("v1"), []byte("v2")); err != nil || !r.Swapped || string(r.Current) != "v2" {
		t.Fatalf("cas: %+v, %v", r, err)
	}
	if r, err := c.CAS(ctx, []byte("missing"), []byte("a"), []byte("b")); err != nil || r.Swapped || r.Found {
		t.Fatalf("cas on missing key: %+v, %v", r, err)
	}
	if r, err := c.Delete(ctx, []byte("k")); err != nil || !r.Deleted {
		t.Fatalf("delete: %+v, %v", r, err)
	}
	if r, err := c.Delete(ctx, []byte("k")); err != nil || r.Deleted {
		t.Fatalf("second delete: %+v, %v", r, err)
	}
	if got := fs.connections(); got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}
}

// The session protocol as the server sees it: reads never ask for a
// session; writes carry NewSession until one was answered; FirstUnacked
// never exceeds Seq and moves up as answers arrive; seqs are unique.
func TestSessionFieldsOnTheWire(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	ctx := testCtx(t)
	if _, err := c.Get(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "a", "1")
	mustPut(t, c, "b", "2")
	if _, err := c.Get(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	reqs := fs.requests()
	want := []struct {
		op         wire.Op
		newSession bool
	}{{wire.OpGet, false}, {wire.OpPut, true}, {wire.OpPut, false}, {wire.OpGet, false}}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		if r.Op != want[i].op || r.NewSession != want[i].newSession || r.ClientID != c.ClientID() {
			t.Errorf("request %d: op %v newSession %v client %d, want %v %v %d", i, r.Op, r.NewSession, r.ClientID, want[i].op, want[i].newSession, c.ClientID())
		}
		if r.FirstUnacked > r.Seq || (i > 0 && r.Seq <= reqs[i-1].Seq) {
			t.Errorf("request %d: seq %d firstUnacked %d after seq %d", i, r.Seq, r.FirstUnacked, reqs[max(i-1, 0)].Seq)
		}
	}
	// The second put's FirstUnacked is past the first put: it was answered.
	if reqs[2].FirstUnacked <= reqs[1].Seq {
		t.Errorf("FirstUnacked %d did not move past answered seq %d", reqs[2].FirstUnacked, reqs[1].Seq)
	}
}

func TestRedirectToLeader(t *testing.T) {
	leader := newFakeServer(t, sm.DefaultKVConfig())
	follower := newFakeServer(t, sm.DefaultKVConfig())
	follower.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNotLeader, leaderAddr: leader.addr, text: "not leader, leader is node 2"}
	}
	cfg := testConfig(follower.addr)
	cfg.RetryBackoff, cfg.RetryBackoffMax = time.Hour, time.Hour // a redirect must not wait
	c := newTestClient(t, cfg)
	mustPut(t, c, "k", "v")
	if v, _ := leader.value("k"); v != "v" {
		t.Fatalf("leader has %q", v)
	}
	if c.Leader() != leader.addr {
		t.Fatalf("Leader() = %q, want %q", c.Leader(), leader.addr)
	}
	mustPut(t, c, "k2", "v") // goes straight to the remembered leader
	if n := len(follower.requests()); n != 1 {
		t.Fatalf("follower got %d requests, want 1", n)
	}
}

func TestNoLeaderKnownTriesNextEndpoint(t *testing.T) {
	leader := newFakeServer(t, sm.DefaultKVConfig())
	follower := newFakeServer(t, sm.DefaultKVConfig())
	follower.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNotLeader, text: "not leader, leader is node 0"}
	}
	c := newTestClient(t, testConfig(follower.addr, leader.addr))
	mustPut(t, c, "k", "v")
	if v, _ := leader.value("k"); v != "v" {
		t.Fatalf("leader has %q", v)
	}
}

// The remembered leader dies: the client forgets it, asks the endpoints
// again and follows the new redirect.
func TestLeaderLossFallsBackToEndpoints(t *testing.T) {
	oldLeader := newFakeServer(t, sm.DefaultKVConfig())
	newLeader := newFakeServer(t, sm.DefaultKVConfig())
	newLeader.log = oldLeader.log // one cluster
	follower := newFakeServer(t, sm.DefaultKVConfig())
	var leaderAddr atomic.Value
	leaderAddr.Store(oldLeader.addr)
	follower.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNotLeader, leaderAddr: leaderAddr.Load().(string), text: "not leader"}
	}
	c := newTestClient(t, testConfig(follower.addr))
	mustPut(t, c, "a", "1")
	oldLeader.Close()
	leaderAddr.Store(newLeader.addr)
	mustPut(t, c, "b", "2")
	if c.Leader() != newLeader.addr {
		t.Fatalf("Leader() = %q, want %q", c.Leader(), newLeader.addr)
	}
	if v, _ := newLeader.value("b"); v != "2" {
		t.Fatalf("new leader has b = %q", v)
	}
}

// silentThenGood starts a node that never answers and one that does,
// sharing one log, and a configuration that tries them in that order with
// an AttemptTimeout of 100ms.
func silentThenGood(t *testing.T) (silent, good *fakeServer, cfg Config) {
	silent = newFakeServer(t, sm.DefaultKVConfig())
	silent.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	good = newFakeServer(t, sm.DefaultKVConfig())
	good.log = silent.log
	cfg = testConfig(silent.addr, good.addr)
	cfg.AttemptTimeout = 100 * time.Millisecond
	return silent, good, cfg
}

// A node that keeps its connection open but never answers (a paused
// process): after AttemptTimeout every call on that connection is resent,
// with its seq, to another node.
func TestSilentNodeFailsOver(t *testing.T) {
	silent, good, cfg := silentThenGood(t)
	c := newTestClient(t, cfg)
	start := time.Now()
	runConcurrentPutGet(t, c, 16)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("failover took %v", d)
	}
	sent, resent := silent.requests(), good.requests()
	if len(sent) == 0 || len(resent) != 32 {
		t.Fatalf("silent node got %d requests, good node %d", len(sent), len(resent))
	}
	seqs := map[uint64]bool{}
	for _, r := range resent {
		seqs[r.Seq] = true
	}
	for _, r := range sent {
		if !seqs[r.Seq] {
			t.Errorf("seq %d was not resent with the same number", r.Seq)
		}
	}
}

func TestDeadEndpointIsSkipped(t *testing.T) {
	dead := newFakeServer(t, sm.DefaultKVConfig())
	dead.Close() // its port now refuses connections
	live := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(dead.addr, live.addr))
	mustPut(t, c, "k", "v")
}

// Two followers that point at each other: the client gives up after
// MaxRetries and says what the server said.
func TestRedirectLoopSurfacesServerText(t *testing.T) {
	a := newFakeServer(t, sm.DefaultKVConfig())
	b := newFakeServer(t, sm.DefaultKVConfig())
	a.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNotLeader, leaderAddr: b.addr, text: "not leader, leader is node 2"}
	}
	b.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNotLeader, leaderAddr: a.addr, text: "not leader, leader is node 1"}
	}
	cfg := testConfig(a.addr)
	cfg.MaxRetries = 3
	c := newTestClient(t, cfg)
	_, err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrNotLeader) || !strings.Contains(err.Error(), "not leader, leader is node") {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("refused writes reported as unknown outcome: %v", err)
	}
	if n := len(a.requests()) + len(b.requests()); n != 4 {
		t.Fatalf("%d sends, want 1+MaxRetries = 4", n)
	}
	t.Log(err)
}

// The leader applies a CAS and the connection drops before the answer; the
// retry (same client ID and seq) gets the cached answer instead of being
// applied again, which would fail the compare.
func TestRetryAfterDropIsAppliedOnce(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	mustPut(t, c, "counter", "0")
	fs.policy = faultFirst(actApplyThenDrop, wire.OpCAS)
	r, err := c.CAS(testCtx(t), []byte("counter"), []byte("0"), []byte("1"))
	if err != nil || !r.Swapped {
		t.Fatalf("cas: %+v, %v", r, err)
	}
	reqs := fs.requests()
	cas := reqs[len(reqs)-2:]
	if cas[0].Op != wire.OpCAS || cas[0].Seq != cas[1].Seq || cas[0].ClientID != cas[1].ClientID {
		t.Fatalf("retry was not the same request: %+v", cas)
	}
	if fs.connections() != 2 {
		t.Fatalf("%d connections, want 2", fs.connections())
	}
	if v, _ := fs.value("counter"); v != "1" {
		t.Fatalf("counter = %q", v)
	}
}

// Concurrent compare-and-swap increments over a connection that keeps
// breaking (answers lost, requests lost, server timeouts). A CAS applied
// twice would be seen by its retry as "compare failed" and the counter
// would run ahead of the increments the callers saw succeed.
func TestIncrementsUnderFaultsAreExact(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	var mu sync.Mutex
	fs.policy = randomFaults(rng, &mu, true, faultOdds{applyThenDrop: 8, drop: 4, applyThenTimeout: 6, tooMany: 4})
	cfg := testConfig(fs.addr)
	cfg.MaxRetries = 100
	c := newTestClient(t, cfg)
	mustPut(t, c, "n", "0")
	const workers, increments = 8, 20
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for done := 0; done < increments; {
				cur, err := c.Get(ctx, []byte("n"))
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				fmt.Sscan(string(cur.Value), &n)
				r, err := c.CAS(ctx, []byte("n"), cur.Value, []byte(fmt.Sprint(n+1)))
				if err != nil {
					t.Error(err)
					return
				}
				if r.Swapped {
					done++
				}
			}
		})
	}
	wg.Wait()
	if v, _ := fs.value("n"); v != fmt.Sprint(workers*increments) {
		t.Fatalf("counter = %s after %d successful increments", v, workers*increments)
	}
	t.Logf("%d requests over %d connections", len(fs.requests()), fs.connections())
}

// A write held up (the server times it out once, unapplied) while newer
// writes keep coming: the client lets no more than SessionWindow writes
// run ahead of it, so the server's bounded response cache never forgets
// the held-up write's seq and its retry is applied.
func TestSessionWindowKeepsRetriesAnswerable(t *testing.T) {
	const window = 4
	kvCfg := sm.DefaultKVConfig()
	kvCfg.MaxCachedResponsesPerSession = window
	fs := newFakeServer(t, kvCfg)
	var once sync.Once
	fs.policy = func(_ int, req *wire.ClientRequest) action {
		act := action{kind: actApply}
		if string(req.Key) == "slow" {
			once.Do(func() { act = action{kind: actTimeout, delay: 50 * time.Millisecond} })
		}
		return act
	}
	cfg := testConfig(fs.addr)
	cfg.SessionWindow = window
	c := newTestClient(t, cfg)
	mustPut(t, c, "first", "x") // opens the session
	ctx := testCtx(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := c.Put(ctx, []byte("slow"), []byte("v")); err != nil {
			t.Errorf("held-up write: %v", err)
		}
	})
	waitFor(t, "the held-up write", func() bool { return len(fs.requests()) >= 2 })
	for i := range 20 {
		wg.Go(func() {
			if _, err := c.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

func TestServerTimeoutRetriesSameSeq(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	mustPut(t, c, "k", "a")
	fs.policy = faultFirst(actApplyThenTimeout)
	r, err := c.CAS(testCtx(t), []byte("k"), []byte("a"), []byte("b"))
	if err != nil || !r.Swapped {
		t.Fatalf("cas: %+v, %v", r, err)
	}
	reqs := fs.requests()
	if n := len(reqs); n != 3 || reqs[1].Seq != reqs[2].Seq {
		t.Fatalf("requests %+v", reqs)
	}
	if fs.connections() != 1 {
		t.Fatal("a server timeout must not drop the connection")
	}
}

func TestTooManyRequestsBacksOffAndRetries(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(n int, _ *wire.ClientRequest) action {
		if n < 2 {
			return action{kind: actTooMany}
		}
		return action{kind: actApply}
	}
	cfg := testConfig(fs.addr)
	cfg.RetryBackoff, cfg.RetryBackoffMax = 20*time.Millisecond, 40*time.Millisecond
	c := newTestClient(t, cfg)
	start := time.Now()
	mustPut(t, c, "k", "v")
	// Two backoffs of at least half of 20ms and 40ms.
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("retried after %v: no backoff", d)
	}
	if n := len(fs.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}

	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actTooMany} }
	_, err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrTooManyRequests) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("got %v", err)
	}
}

func TestNoQuorumReturnedAtOnce(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNoQuorum, text: "quorum not reached: got 2/5, need 3"}
	}
	c := newTestClient(t, testConfig(fs.addr))
	_, err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrNoQuorum) || !strings.Contains(err.Error(), "quorum not reached: got 2/5, need 3") {
		t.Fatalf("got %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || !e.HasStatus || e.Status != wire.StatusNoQuorum || e.Attempts != 1 {
		t.Fatalf("error fields %+v", e)
	}
	if n := len(fs.requests()); n != 1 {
		t.Fatalf("%d requests, want 1 (no retry)", n)
	}
}

// A client idle past the session timeout: its next write is refused by the
// state machine before anything is applied, so the client renews its
// session and reissues the write transparently.
func TestIdleSessionExpiryIsRenewed(t *testing.T) {
	kvCfg := sm.DefaultKVConfig()
	kvCfg.SessionTimeout = time.Second
	fs := newFakeServer(t, kvCfg)
	c := newTestClient(t, testConfig(fs.addr))
	mustPut(t, c, "a", "1")
	oldID := c.ClientID()
	fs.clockOffsetNano.Store(int64(5 * time.Second))
	mustPut(t, c, "b", "2")
	if c.ClientID() == oldID {
		t.Fatal("client ID did not change")
	}
	reqs := fs.requests()
	last := reqs[len(reqs)-1]
	if last.ClientID == oldID || !last.NewSession {
		t.Fatalf("reissued write %+v", last)
	}
	if v, _ := fs.value("b"); v != "2" {
		t.Fatalf("b = %q", v)
	}
}

// A write that may have been applied (the connection dropped after it was
// sent) meets an expired session on retry: unknown outcome, new session.
func TestSessionExpiredAfterUncertainSend(t *testing.T) {
	kvCfg := sm.DefaultKVConfig()
	kvCfg.SessionTimeout = time.Second
	fs := newFakeServer(t, kvCfg)
	c := newTestClient(t, testConfig(fs.addr))
	mustPut(t, c, "a", "1")
	oldID := c.ClientID()
	var once sync.Once
	fs.policy = func(int, *wire.ClientRequest) action {
		act := action{kind: actApply}
		once.Do(func() {
			act.kind = actDrop
			fs.clockOffsetNano.Store(int64(5 * time.Second))
		})
		return act
	}
	_, err := c.Put(testCtx(t), []byte("b"), []byte("2"))
	if !errors.Is(err, ErrSessionExpired) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("got %v", err)
	}
	if c.ClientID() == oldID {
		t.Fatal("client ID did not change")
	}
	t.Log(err)
	mustPut(t, c, "c", "3") // the new session works
}

// A write whose first send may have been applied is not retried once it is
// older than half the session timeout.
func TestOldWriteIsNotRetried(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actDrop} }
	cfg := testConfig(fs.addr)
	cfg.SessionTimeout = 100 * time.Millisecond
	cfg.RetryBackoff, cfg.RetryBackoffMax = 20*time.Millisecond, 20*time.Millisecond
	cfg.MaxRetries = 100
	c := newTestClient(t, cfg)
	_, err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrUnknownOutcome) || !strings.Contains(err.Error(), "half the session timeout") {
		t.Fatalf("got %v", err)
	}
	if n := len(fs.requests()); n < 2 || n > 8 {
		t.Fatalf("%d sends", n)
	}
}

func TestConnectionDropsExhaustRetries(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actDrop} }
	cfg := testConfig(fs.addr)
	cfg.MaxRetries = 2
	c := newTestClient(t, cfg)
	_, err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("got %v", err)
	}
	_, err = c.Get(testCtx(t), []byte("k"))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("read: got %v", err)
	}
}

// Many concurrent calls share one connection, and every caller gets its
// own answer.
func TestPipeliningOnOneConnection(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c := newTestClient(t, testConfig(fs.addr))
	runConcurrentPutGet(t, c, 256)
	if got := fs.connections(); got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}
	frames, writes := c.stats.framesQueued.Load(), c.stats.writeCalls.Load()
	t.Logf("%d frames in %d write calls", frames, writes)
	if frames != 512 || writes >= frames {
		t.Fatalf("%d frames in %d write calls: no coalescing", frames, writes)
	}
}

func runConcurrentPutGet(t *testing.T, c *Client, n int) {
	t.Helper()
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)
			if _, err := c.Put(ctx, []byte(k), []byte(v)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	for i := range n {
		wg.Go(func() {
			k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)
			r, err := c.Get(ctx, []byte(k))
			if err != nil {
				errs <- err
			} else if string(r.Value) != v {
				errs <- fmt.Errorf("get %s = %q, want %q", k, r.Value, v)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReorderedResponsesPairBySeq(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.reverse = 16
	c := newTestClient(t, testConfig(fs.addr))
	runConcurrentPutGet(t, c, 128)
}

func TestDelayedResponsesPairBySeq(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	fs.policy = func(int, *wire.ClientRequest) action {
		mu.Lock()
		defer mu.Unlock()
		return action{kind: actApply, delay: time.Duration(rng.IntN(5000)) * time.Microsecond}
	}
	c := newTestClient(t, testConfig(fs.addr))
	runConcurrentPutGet(t, c, 128)
}

func TestContextEndsCallPromptly(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	c := newTestClient(t, testConfig(fs.addr))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Put(ctx, []byte("k"), []byte("v"))
	if d := time.Since(start); d > time.Second {
		t.Fatalf("put returned after %v", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("put: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err = c.Get(ctx, []byte("k"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("get: %v", err)
	}
}

func TestRequestTimeoutAppliesWithoutDeadline(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	cfg := testConfig(fs.addr)
	cfg.DialTimeout, cfg.RequestTimeout = 50*time.Millisecond, 50*time.Millisecond
	c := newTestClient(t, cfg)
	_, err := c.Get(context.Background(), []byte("k"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestMaxInflightBlocksCallers(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's cleanup: it waits for this handler
	fs.policy = func(n int, _ *wire.ClientRequest) action {
		if n == 0 {
			<-release // holds the first request (and this connection's reader)
		}
		return action{kind: actApply}
	}
	cfg := testConfig(fs.addr)
	cfg.MaxInflight = 1
	c := newTestClient(t, cfg)
	first := make(chan error, 1)
	go func() { _, err := c.Put(testCtx(t), []byte("a"), []byte("1")); first <- err }()
	waitFor(t, "the first request to arrive", func() bool { return len(fs.requests()) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, []byte("a"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "in-flight slot") {
		t.Fatalf("second call: %v", err)
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "b", "2")
}

// A node that answers with a peer-role Hello (addresses appended) is
// accepted as well as one that answers with a client-role Hello.
func TestPeerRoleHelloIsAccepted(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	hello := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 3,
		PeerAddr: "10.0.0.3:7001", ClientAddr: "10.0.0.3:7002", AdminAddr: "10.0.0.3:7003"})
	cfg := testConfig(fs.addr)
	cfg.DialTimeout = 500 * time.Millisecond
	for _, split := range []int{0, 4, wire.HelloSize, wire.HelloSize + 1, wire.HelloSize + 2, len(hello) - 1} {
		nc, peer := net.Pipe()
		go func() {
			var b [wire.HelloSize]byte
			_, _ = io.ReadFull(peer, b[:])
			_, _ = peer.Write(hello[:split]) // arrives in two pieces
			_, _ = peer.Write(hello[split:])
		}()
		err := handshake(nc, &cfg)
		_ = nc.Close()
		_ = peer.Close()
		if err != nil {
			t.Fatalf("split at %d: %v", split, err)
		}
	}
}

func TestClusterMismatchIsRefused(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	cfg := testConfig(fs.addr)
	cfg.ClusterID = 99
	c := newTestClient(t, cfg)
	_, err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrRefused) || !errors.Is(err, wire.ErrClusterMismatch) || !strings.Contains(err.Error(), "cluster 99") {
		t.Fatalf("got %v", err)
	}
	if fs.connections() != 1 {
		t.Fatalf("%d connections: a refusal must not be retried", fs.connections())
	}
	t.Log(err)
}

// Bytes no Kraft node would send: every case ends in a clear error,
// without panic or hang.
func TestBadServerBytes(t *testing.T) {
	okResp := func(seq uint64) []byte {
		return wire.AppendClientResponse(nil, &wire.ClientResponse{Seq: seq})
	}
	badStatus := okResp(1)
	badStatus[wire.FrameHeaderSize+8] = 200 // status byte
	for _, tc := range []struct {
		name      string
		handshake []byte                  // replaces the Hello
		raw       func(seq uint64) []byte // replaces the response
		kind      error
		text      string
	}{
		{name: "http on the port", handshake: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), kind: ErrProtocol, text: "wrong port"},
		{name: "hello of another version", handshake: func() []byte {
			h := wire.AppendHello(nil, wire.Hello{Role: wire.RoleClient, ClusterID: 7, NodeID: 1})
			h[4] = 9
			return h
		}(), kind: ErrProtocol, text: "version"},
		{name: "hello truncated", handshake: []byte("KRFT\x01\x00"), kind: ErrProtocol},
		{name: "peer hello with oversized extension", handshake: func() []byte {
			h := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 1})
			h[wire.HelloSize], h[wire.HelloSize+1] = 0xff, 0xff
			return h
		}(), kind: ErrProtocol, text: "exceeds"},
		{name: "peer hello cut short", handshake: func() []byte {
			h := wire.AppendHello(nil, wire.Hello{Role: wire.RolePeer, ClusterID: 7, NodeID: 1, ClientAddr: "10.0.0.1:7002"})
			return h[:len(h)-3]
		}(), kind: ErrProtocol},
		{name: "frame instead of hello", handshake: rawFrame(wire.MsgClientResponse, nil), kind: ErrProtocol, text: "instead of a Hello"},
		{name: "oversized frame", raw: func(uint64) []byte { return []byte{0xf0, 0xff, 0xff, 0xff, 33} }, kind: ErrProtocol, text: "too large"},
		{name: "zero-length frame", raw: func(uint64) []byte { return []byte{0, 0, 0, 0, 0} }, kind: ErrProtocol},
		{name: "short response body", raw: func(uint64) []byte { return rawFrame(wire.MsgClientResponse, []byte{1, 2, 3}) }, kind: ErrProtocol, text: "truncated"},
		{name: "unknown status", raw: func(uint64) []byte { return badStatus }, kind: ErrProtocol},
		{name: "raft message on the client port", raw: func(uint64) []byte { return rawFrame(wire.MsgAppend, make([]byte, 64)) }, kind: ErrProtocol, text: "unexpected"},
		{name: "error frame mid-connection", raw: func(uint64) []byte {
			return wire.AppendErrorFrame(nil, wire.ErrCodeBadFrame, "cannot decode your frame")
		}, kind: ErrRefused, text: "cannot decode your frame"},
		{name: "truncated frame then close", raw: func(seq uint64) []byte { return okResp(seq)[:20] }, kind: ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t, sm.DefaultKVConfig())
			fs.handshakeReply = tc.handshake
			if tc.raw != nil {
				fs.policy = func(_ int, req *wire.ClientRequest) action {
					return action{kind: actRaw, raw: tc.raw(req.Seq)}
				}
			}
			cfg := testConfig(fs.addr)
			cfg.MaxRetries = 1
			cfg.DialTimeout, cfg.RequestTimeout = 200*time.Millisecond, 2*time.Second
			cfg.MaxFrameBytes = 1 << 20
			c := newTestClient(t, cfg)
			ctx := testCtx(t)
			if tc.name == "truncated frame then close" {
				// The server sends half a frame and never the rest: the
				// call ends by its deadline, then the connection closes.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
			}
			start := time.Now()
			_, err := c.Get(ctx, []byte("k"))
			if err == nil {
				t.Fatal("no error")
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if tc.name != "truncated frame then close" && !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want kind %v", err, tc.kind)
			}
			if !strings.HasPrefix(err.Error(), "kraft/client: ") || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %q, want it to contain %q", err, tc.text)
			}
			t.Log(err)
		})
	}
}

// Random bytes as responses after a good handshake.
func TestRandomServerBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fs := newFakeServer(t, sm.DefaultKVConfig())
	var mu sync.Mutex
	fs.policy = func(_ int, req *wire.ClientRequest) action {
		mu.Lock()
		defer mu.Unlock()
		var b []byte
		switch rng.IntN(3) {
		case 0: // pure noise
			b = make([]byte, rng.IntN(64)+1)
		case 1: // a valid response with bytes flipped
			b = wire.AppendClientResponse(nil, &wire.ClientResponse{Seq: req.Seq, Value: []byte("v"), LeaderAddr: []byte("x:1")})
		case 2: // a plausible length with noise behind it
			b = rawFrame(wire.MsgClientResponse, make([]byte, rng.IntN(80)))
		}
		for range rng.IntN(4) + 1 {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		return action{kind: actRaw, raw: b}
	}
	cfg := testConfig(fs.addr)
	cfg.MaxRetries = 0
	cfg.MaxFrameBytes = 4096
	c := newTestClient(t, cfg)
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, _ = c.Get(ctx, []byte("k")) // any outcome but a panic or a hang
		cancel()
	}
}

// A node that accepts but never answers the handshake: Close interrupts
// the dial instead of waiting for DialTimeout.
func TestCloseInterruptsDial(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	fs.handshakeReply = []byte{} // say nothing
	cfg := testConfig(fs.addr)
	cfg.DialTimeout = 5 * time.Second
	c := newTestClient(t, cfg)
	done := make(chan error, 1)
	go func() { _, err := c.Put(context.Background(), []byte("k"), []byte("v")); done <- err }()
	waitFor(t, "the dial to connect", func() bool { return fs.connections() > 0 })
	start := time.Now()
	_ = c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("returned %v after Close", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("call still blocked in the dial after Close")
	}
}

func TestRequestTooLarge(t *testing.T) {
	fs := newFakeServer(t, sm.DefaultKVConfig())
	cfg := testConfig(fs.addr)
	cfg.MaxFrameBytes = 1024
	c := newTestClient(t, cfg)
	_, err := c.Put(testCtx(t), []byte("k"), make([]byte, 2000))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if fs.connections() != 0 {
		t.Fatal("an oversized request was sent")
	}
}

func TestCloseFailsCallsAndLeaksNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	fs := newFakeServer(t, sm.DefaultKVConfig())
	c, err := New(testConfig(fs.addr))
	if err != nil {
		t.Fatal(err)
	}
	runConcurrentPutGet(t, c, 32)
	fs.policy = func(int, *wire.ClientRequest) action { return action{kind: actSilence} }
	errs := make(chan error, 8)
	for range 8 {
		go func() { _, err := c.Put(context.Background(), []byte("k"), []byte("v")); errs <- err }()
	}
	waitFor(t, "all requests to arrive", func() bool { return len(fs.requests()) >= 64+8 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("in-flight call: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a call did not return after Close")
		}
	}
	if _, err := c.Get(context.Background(), []byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	fs.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Connections dropped by redirects, server faults and stalls all release
// their goroutines.
func TestNoGoroutineLeakAfterFaults(t *testing.T) {
	base := runtime.NumGoroutine()
	leader := newFakeServer(t, sm.DefaultKVConfig())
	follower := newFakeServer(t, sm.DefaultKVConfig())
	follower.policy = func(int, *wire.ClientRequest) action {
		return action{kind: actNotLeader, leaderAddr: leader.addr, text: "not leader, leader is node 2"}
	}
	var n atomic.Int64
	leader.policy = func(int, *wire.ClientRequest) action {
		switch n.Add(1) % 7 {
		case 3:
			return action{kind: actDrop}
		case 5:
			return action{kind: actApplyThenDrop}
		}
		return action{kind: actApply}
	}
	cfg := testConfig(follower.addr)
	cfg.MaxRetries = 50
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runConcurrentPutGet(t, c, 64)
	_ = c.Close()
	leader.Close()
	follower.Close()
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= base })
}

func TestErrorText(t *testing.T) {
	e := &Error{Op: "put", Kind: ErrNotLeader, Text: "not leader, leader is node 2", Attempts: 6, OutcomeUnknown: true}
	const want = "kraft/client: put: not leader: not leader, leader is node 2 (6 attempts; outcome unknown)"
	if e.Error() != want {
		t.Fatalf("got  %q\nwant %q", e.Error(), want)
	}
	if !errors.Is(e, ErrNotLeader) || !errors.Is(e, ErrUnknownOutcome) || errors.Is(e, ErrNoQuorum) {
		t.Fatal("classification")
	}
}
