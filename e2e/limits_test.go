package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Key, value and entry limits answer with an error naming the flag and are
// counted; the WAL, the hard state and the snapshots go to the three
// directories they are configured to, and a restart reads them back there.
func TestLimitsAndSeparateDirectories(t *testing.T) {
	walDir := filepath.Join(t.TempDir(), "fast-disk", "wal")
	c := newCluster(t, 1, "--max-key-size", "100", "--max-value-size", "1000", "--wal-dir", walDir)
	cl := c.client()
	put := func(k string, v int) error {
		ctx, cancel := ctxTimeout(10 * time.Second)
		defer cancel()
		_, err := cl.Put(ctx, []byte(k), make([]byte, v))
		return err
	}
	if err := put(strings.Repeat("k", 101), 10); err == nil || !strings.Contains(err.Error(), "--max-key-size") {
		t.Fatalf("101-byte key: %v", err)
	}
	if err := put("big", 1001); err == nil || !strings.Contains(err.Error(), "--max-value-size") {
		t.Fatalf("1001-byte value: %v", err)
	}
	if err := put(strings.Repeat("k", 100), 1000); err != nil {
		t.Fatalf("a write at both limits: %v", err)
	}
	if n := c.metric(1, "kraft_requests_oversized_total"); n != 2 {
		t.Fatalf("kraft_requests_oversized_total = %v, want 2", n)
	}
	c.mustCtl("snapshot")
	p := c.procs[1]
	segs, _ := filepath.Glob(filepath.Join(walDir, "*.seg"))
	inData, _ := filepath.Glob(filepath.Join(p.dataDir, "*.seg"))
	snaps, _ := filepath.Glob(filepath.Join(p.snapDir, "snapshot-*.dat"))
	if len(segs) == 0 || len(inData) != 0 || len(snaps) == 0 {
		t.Fatalf("segments in --wal-dir %d, in --data-dir %d, snapshots in --snapshot-dir %d", len(segs), len(inData), len(snaps))
	}
	if _, err := os.Stat(walDir); err != nil {
		t.Fatal(err)
	}
	c.signal(1, syscall.SIGTERM)
	c.start(1)
	c.waitLeader(15 * time.Second)
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	if r, err := c.client().Get(ctx, []byte(strings.Repeat("k", 100))); err != nil || len(r.Value) != 1000 {
		t.Fatalf("after a restart from the separate directories: %d bytes, %v", len(r.Value), err)
	}
}

// Garbage on the admin port (random bytes, an oversized header, a
// half-sent request) is refused by the HTTP server and leaves the node
// serving: the peer and client ports have their own test (TestBadInputIsRefused).
func TestAdminPortHostileInput(t *testing.T) {
	c := newCluster(t, 1)
	addr := c.procs[1].adminAddr()
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(i*7919 + i>>8)
	}
	send := func(b []byte) string {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write(b)
		reply := make([]byte, 256)
		n, _ := conn.Read(reply)
		return string(reply[:n])
	}
	if r := send(junk); strings.Contains(r, "200 OK") {
		t.Fatalf("random bytes got %q", r)
	}
	huge := "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
	if r := send([]byte(huge)); strings.Contains(r, "200 OK") {
		t.Fatalf("a 2 MiB header got %q", r)
	}
	// A request that never finishes its header is dropped by the server's
	// header timeout; meanwhile everything else is served.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET /status HTTP/1.1\r\nHost: x\r\n"))
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	if _, err := c.client().Put(ctx, []byte("still"), []byte("serving")); err != nil {
		t.Fatal(err)
	}
	if st, err := c.status(1); err != nil || st.Leader != 1 {
		t.Fatalf("status after hostile input on the admin port: %+v, %v", st, err)
	}
	slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 256)
	n, err := slow.Read(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a half-sent admin request was still held open after 15 s")
	}
	if strings.Contains(string(buf[:n]), "200 OK") {
		t.Fatalf("a half-sent request was answered %q", buf[:n])
	}
}
