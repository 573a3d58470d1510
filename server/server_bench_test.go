package server

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/perf"
)

// BenchmarkServerWrites drives a one-node kraftd (server.New and Start, in
// this process, --fsync-mode none) over loopback with the client library:
// 128 B puts to 100,000 keys, 256 in flight on 8 connections. It measures
// the leader's request path end to end (read, decode, propose, log, apply,
// answer) without replication or the disk, and without the machine-wide
// noise of a three-process cluster; ns/op and allocs/op include the
// client's share and the benchmark's own key (one allocation per op, kept
// because an async put may be retried from it until it is answered). At
// c2fb995 the other three were the server's: the pending write, the
// node's proposal and the KV entry.
//
//	go test ./server -run '^$' -bench ServerWrites -benchmem -count 8
func BenchmarkServerWrites(b *testing.B) {
	s := startOneNode(b, nil)
	const conns, inflight, keys = 8, 256, 100_000
	var cs []*client.Client
	for range conns {
		c, err := client.New(client.Config{Endpoints: []string{s.cfg.AdvertisedClientAddr()}, ClusterID: s.cfg.NumericClusterID(), MaxInflight: 2 * inflight / conns})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	ctx := context.Background()
	value := make([]byte, 128)
	// The first write of each connection opens its session.
	for _, c := range cs {
		if _, err := c.Put(ctx, []byte("warm"), value); err != nil {
			b.Fatal(err)
		}
	}
	slots := make(chan struct{}, inflight)
	errs := make(chan error, 1)
	done := func(_ client.WriteResult, err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
		<-slots
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		slots <- struct{}{}
		key := binary.BigEndian.AppendUint64(make([]byte, 0, 8), rng.Uint64N(keys))
		cs[i%conns].PutAsync(ctx, key, value, done)
	}
	for range inflight {
		slots <- struct{}{}
	}
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// startOneNode starts a one-node cluster (--fsync-mode none) on free
// loopback ports with its data in a temporary directory, and waits until it
// leads; tweak, if not nil, adjusts the configuration first.
func startOneNode(b testing.TB, tweak func(*Config)) *Server {
	b.Helper()
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Bootstrap = 1, true
	cfg.BindAddress, cfg.AdvertiseHost = "127.0.0.1", "127.0.0.1"
	cfg.RaftPort, cfg.ClientPort, cfg.AdminPort = perf.FreePort(), perf.FreePort(), perf.FreePort()
	if cfg.RaftPort == 0 || cfg.ClientPort == 0 || cfg.AdminPort == 0 {
		b.Fatal("no free loopback port")
	}
	cfg.Peers = "1=127.0.0.1:" + strconv.Itoa(cfg.RaftPort)
	cfg.DataDir, cfg.SnapshotDir = dir+"/data", dir+"/snapshots"
	cfg.FsyncMode = "none"
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for deadline := time.Now().Add(10 * time.Second); !s.leads(); {
		if time.Now().After(deadline) {
			b.Fatal("the one-node cluster elected no leader in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

func (s *Server) leads() bool {
	st, err := s.n().Status()
	return err == nil && st.Leader == 1
}
