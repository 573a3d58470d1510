package server

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// inFlight is how many slots the sweeper has yet to pass (answered
// requests among them until it does).
func (d *requestDeadlines) inFlight() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.blocks) == 0 {
		return 0
	}
	return (len(d.blocks)-1)*deadlineBlockSlots + d.tail - d.head
}

// The sweeper hands back exactly the unclaimed requests older than the
// timeout, in arrival order, claimed for it; claimed ones are passed over
// and a request is never handed out twice.
func TestRequestDeadlines(t *testing.T) {
	var d requestDeadlines
	t0 := time.Now()
	var ws []*pendingRequest
	for i := 0; i < 3000; i++ {
		w := &pendingRequest{seq: uint64(i), start: t0.Add(time.Duration(i) * time.Millisecond)}
		ws = append(ws, w)
		d.add(w)
		if i%3 == 0 && !d.claim(w) {
			t.Fatalf("request %d: the first claim failed", i)
		}
	}
	got := d.expired(t0.Add(2500*time.Millisecond), time.Second, nil)
	// Started before 1500 ms and unclaimed: i < 1500 with i%3 != 0 (the
	// request at exactly 1500 ms is not yet a full second old).
	want := 0
	for i := 0; i < 1500; i++ {
		if i%3 != 0 {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("%d expired, want %d", len(got), want)
	}
	for k := 1; k < len(got); k++ {
		if got[k].seq <= got[k-1].seq {
			t.Fatal("expired requests out of arrival order")
		}
	}
	for _, w := range got {
		if d.claim(w) {
			t.Fatalf("request %d: claimed by its answerer after the sweeper took it", w.seq)
		}
	}
	if again := d.expired(t0.Add(2500*time.Millisecond), time.Second, nil); len(again) != 0 {
		t.Fatalf("%d requests expired twice", len(again))
	}
	// A claimed request at the front does not hold back the ones after it.
	if d.claim(ws[1500]) {
		t.Fatal("request 1500 claimed twice")
	}
	if !d.claim(ws[1501]) {
		t.Fatal("request 1501: the first claim failed")
	}
	later := d.expired(t0.Add(10*time.Second), time.Second, nil)
	if want := 1500 - 500 - 1; len(later) != want {
		t.Fatalf("%d expired at the end, want %d", len(later), want)
	}
	if later[0].seq != 1502 {
		t.Fatalf("the first to expire at the end is %d, want 1502", later[0].seq)
	}
	if n := d.inFlight(); n != 0 {
		t.Fatalf("%d slots left after everything expired", n)
	}
}

// Swept blocks are reused, and a claim that comes after its slot was swept
// and reused for another request fails without disturbing that request.
func TestRequestDeadlinesReuseSlots(t *testing.T) {
	var d requestDeadlines
	t0 := time.Now()
	var old []*pendingRequest
	for i := 0; i < 3*deadlineBlockSlots; i++ {
		w := &pendingRequest{seq: uint64(i), start: t0}
		d.add(w)
		old = append(old, w)
	}
	blocks := append([]*deadlineBlock(nil), d.blocks...)
	if n := len(d.expired(t0.Add(2*time.Second), time.Second, nil)); n != len(old) {
		t.Fatalf("%d expired, want %d", n, len(old))
	}
	var fresh []*pendingRequest
	for i := 0; i < 3*deadlineBlockSlots; i++ {
		w := &pendingRequest{seq: uint64(10000 + i), start: t0.Add(3 * time.Second)}
		d.add(w)
		fresh = append(fresh, w)
	}
	reused := 0
	for _, b := range blocks {
		for _, nb := range d.blocks {
			if b == nb {
				reused++
			}
		}
	}
	if reused != 3 {
		t.Fatalf("%d of the 3 swept blocks reused, want all", reused)
	}
	for _, w := range old {
		if d.claim(w) {
			t.Fatalf("request %d: a late claim succeeded on a reused slot", w.seq)
		}
	}
	for _, w := range fresh {
		if w.slot.req.Load() != w {
			t.Fatalf("request %d: its slot lost it to a late claim", w.seq)
		}
	}
	if n := len(d.expired(t0.Add(5*time.Second), time.Second, nil)); n != len(fresh) {
		t.Fatalf("%d of the reused slots' requests expired, want %d", n, len(fresh))
	}
}

// Answerers and the sweeper racing: every request is answered exactly
// once, by whichever claimed it.
func TestRequestDeadlinesClaimRace(t *testing.T) {
	var d requestDeadlines
	const n = 20000
	ws := make([]*pendingRequest, n)
	answers := make([]atomic.Int32, n)
	base := time.Now()
	for i := range ws {
		ws[i] = &pendingRequest{seq: uint64(i), start: base.Add(time.Duration(i) * time.Microsecond)}
	}
	var wg sync.WaitGroup
	queued := make(chan *pendingRequest, 256)
	wg.Add(2)
	go func() { // the loop registers, the answerer claims a little later
		defer wg.Done()
		for _, w := range ws {
			d.add(w)
			queued <- w
		}
		close(queued)
	}()
	go func() {
		defer wg.Done()
		for w := range queued {
			if d.claim(w) {
				answers[w.seq].Add(1)
			}
		}
	}()
	done := make(chan struct{})
	var swept sync.WaitGroup
	swept.Add(1)
	go func() { // the sweeper, with a timeout that catches some of them
		defer swept.Done()
		var out []*pendingRequest
		for {
			select {
			case <-done:
				out = d.expired(base.Add(time.Hour), 0, out[:0])
			default:
				out = d.expired(base.Add(time.Duration(n)*time.Microsecond), 500*time.Microsecond, out[:0])
			}
			for _, w := range out {
				answers[w.seq].Add(1)
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(done)
	swept.Wait()
	for i := range answers {
		if a := answers[i].Load(); a != 1 {
			t.Fatalf("request %d answered %d times", i, a)
		}
	}
}
