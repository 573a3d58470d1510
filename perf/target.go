package perf

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kraftdb/kraft/client"
)

// ClientTarget runs operations through client.Clients: workers share a
// client (one pipelined connection) in groups of WorkersPerConn. The
// clients start at different endpoints (see NewClientTarget): writes end
// up on the leader, reads on the node each client started at. It is an AsyncTarget: DoAsync is client.PutAsync or
// GetAsync, whose answer comes on the connection's reader goroutine.
type ClientTarget struct {
	conns          []*client.Client
	workersPerConn int
	read           []client.ReadOption
	async          []asyncWorker // per worker, for DoAsync
}

// asyncWorker adapts a worker's done to the client's callbacks. The
// adapters are made once per worker: one made per operation would be an
// allocation per operation. done is the operation in flight's (a worker
// has one at a time).
type asyncWorker struct {
	done func(error)
	put  func(client.WriteResult, error)
	get  func(client.GetResult, error)
}

func (w *asyncWorker) bind() {
	w.put = func(_ client.WriteResult, err error) { w.done(err) }
	w.get = func(_ client.GetResult, err error) { w.done(err) }
}

// ParseConsistency maps linearizable | lease | stale to a read option.
func ParseConsistency(s string) (client.ReadOption, error) {
	switch s {
	case "linearizable":
		return client.WithConsistency(client.Linearizable), nil
	case "lease":
		return client.WithConsistency(client.Lease), nil
	case "stale":
		return client.WithConsistency(client.Stale), nil
	}
	return nil, fmt.Errorf("kraft/perf: consistency %q: want linearizable, lease or stale", s)
}

// NewClientTarget opens ceil(workers/workersPerConn) clients (they connect
// on first use). cfg's Endpoints and ClusterID must be set; MaxInflight is
// set here.
func NewClientTarget(cfg client.Config, workers, workersPerConn int, read client.ReadOption) (*ClientTarget, error) {
	if workersPerConn <= 0 {
		workersPerConn = 32
	}
	t := &ClientTarget{workersPerConn: workersPerConn, async: make([]asyncWorker, workers)}
	for i := range t.async {
		t.async[i].bind()
	}
	if read != nil {
		t.read = []client.ReadOption{read}
	}
	// Room for every worker of a connection plus retries, within the
	// server's per-session answer cache (client.Config's advice).
	cfg.MaxInflight = min(2*workersPerConn, client.DefaultMaxInflight)
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second // one operation, retries included (see Target)
	}
	endpoints := cfg.Endpoints
	for k := range (workers + workersPerConn - 1) / workersPerConn {
		// Each connection starts at its own endpoint, as clients spread
		// over a cluster do: writes follow the redirect to the leader,
		// reads (which any node serves) stay spread over the nodes. All of
		// them starting at the first endpoint put every read on one node.
		cfg.Endpoints = rotated(endpoints, k)
		c, err := client.New(cfg)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.conns = append(t.conns, c)
	}
	return t, nil
}

// rotated returns eps starting at eps[k mod len(eps)], in a new slice.
func rotated(eps []string, k int) []string {
	if len(eps) == 0 {
		return eps
	}
	k %= len(eps)
	return append(append(make([]string, 0, len(eps)), eps[k:]...), eps[:k]...)
}

// Do implements Target.
func (t *ClientTarget) Do(ctx context.Context, worker int, read bool, key, value []byte) error {
	c := t.conns[(worker/t.workersPerConn)%len(t.conns)]
	if read {
		_, err := c.Get(ctx, key, t.read...)
		return err
	}
	_, err := c.Put(ctx, key, value)
	return err
}

// DoAsync implements AsyncTarget. Workers numbered from NewClientTarget's
// count up pay an allocation per operation.
func (t *ClientTarget) DoAsync(worker int, read bool, key, value []byte, done func(error)) {
	c := t.conns[(worker/t.workersPerConn)%len(t.conns)]
	var w *asyncWorker
	if worker >= 0 && worker < len(t.async) {
		w = &t.async[worker]
	} else {
		w = new(asyncWorker)
		w.bind()
	}
	w.done = done // read by w's adapters once the client answers
	if read {
		c.GetAsync(context.Background(), key, w.get, t.read...)
		return
	}
	c.PutAsync(context.Background(), key, value, w.put)
}

// Close closes every client.
func (t *ClientTarget) Close() error {
	for _, c := range t.conns {
		c.Close()
	}
	return nil
}

// ClusterNumber is the 64-bit cluster ID the handshake carries for a
// --cluster-id string: the number itself if it parses as one (and is not
// 0), else its xxhash64. It is server.ClusterNumber, repeated here so that
// kraftbench needs only the client side of the tree to build.
func ClusterNumber(id string) uint64 {
	if n, err := strconv.ParseUint(id, 0, 64); err == nil && n != 0 {
		return n
	}
	return xxhash.Sum64String(id)
}
