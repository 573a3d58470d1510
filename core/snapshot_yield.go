package core

import (
	"io"
	"runtime"
	"sync/atomic"
)

// A snapshot is serialized and written on a goroutine of its own, beside
// the node's loop, its network event loops and the apply goroutine. Where
// they share one Go scheduler (GOMAXPROCS=1: co-located nodes, a container
// with one CPU), the runtime preempts a busy goroutine only every 10 ms,
// and a write waits on several of those goroutines in turn: a snapshot of
// 100,000 keys held writes up for 70-110 ms (perf/results/speedups.md,
// item 60). The snapshot's readers and writers therefore step aside every
// yieldEveryBytes they move, so a waiting goroutine runs within about a
// millisecond.

// yieldEveryBytes is how much snapshot data moves between two yields.
const yieldEveryBytes = 64 << 10

// snapshotYields counts the yields, for tests.
var snapshotYields atomic.Uint64

// yielder counts bytes moved and yields every yieldEveryBytes.
type yielder struct{ n int }

func (y *yielder) moved(n int) {
	y.n += n
	if y.n >= yieldEveryBytes {
		y.n = 0
		snapshotYields.Add(1)
		runtime.Gosched()
	}
}

// yieldingWriter yields while the state machine writes its snapshot,
// passing a large write on in pieces of yieldEveryBytes.
type yieldingWriter struct {
	w io.Writer
	y yielder
}

func (w *yieldingWriter) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := w.w.Write(p[done:min(len(p), done+yieldEveryBytes)])
		done += n
		w.y.moved(n)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// yieldingReader yields while the WAL copies (and compresses) a snapshot
// into its file. It hands out at most yieldEveryBytes per Read and has no
// WriteTo, so io.Copy cannot pass the whole snapshot in one call.
type yieldingReader struct {
	r io.Reader
	y yielder
}

func (r *yieldingReader) Read(p []byte) (int, error) {
	if len(p) > yieldEveryBytes {
		p = p[:yieldEveryBytes]
	}
	n, err := r.r.Read(p)
	r.y.moved(n)
	return n, err
}
