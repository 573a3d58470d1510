package core

import (
	"context"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// Every ProposeAsync and ReadAsync that returns nil gets its callback, and
// every Propose, ProposeTraced and Read returns, even when they race with
// Close: a request queued after the loop drained its queues on the way out
// must not be stranded there.
func TestNodeRequestsRacingCloseAreAnswered(t *testing.T) {
	for round := range 30 {
		c := newNodeCluster(t, 1)
		n := c.start(1, []uint64{1})
		c.leader()
		var queued, called, pq, pc atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 200; i++ {
					switch (g + i) % 5 {
					case 0:
						if n.ProposeAsync(put("k", "v"), func(sm.Result, error) { called.Add(1); pc.Add(1) }) == nil {
							queued.Add(1)
							pq.Add(1)
						}
					case 1:
						if n.ReadAsync(wire.ReadLinearizable, func(uint64, error) { called.Add(1) }) == nil {
							queued.Add(1)
						}
					case 2:
						n.Propose(context.Background(), put("k", "v"))
					case 3:
						n.ProposeTraced(context.Background(), put("k", "v"))
					case 4:
						n.Read(context.Background(), wire.ReadLinearizable)
					}
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		c.stop(1)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			t.Fatalf("round %d: a Propose, ProposeTraced or Read never returned after Close", round)
		}
		deadline := time.Now().Add(5 * time.Second)
		for called.Load() != queued.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if q, k := queued.Load(), called.Load(); q != k {
			t.Fatalf("round %d: %d async requests queued, %d callbacks (proposals: %d, %d)", round, q, k, pq.Load(), pc.Load())
		}
	}
}
