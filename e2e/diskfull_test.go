package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/wire"
)

// A follower's disk fills up: it must stop cleanly (no corruption: its WAL
// verifies), the others keep serving, and once space is added it restarts
// and catches up with every acknowledged write. The data dir is a small
// tmpfs, so this needs root (mount); it skips otherwise.
func TestFollowerDiskFull(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir(), name: "e2e-" + t.Name(), procs: map[uint64]*proc{},
		extra: []string{"--segment-size", "1MiB", "--max-entry-size", "256KiB", "--snapshot-threshold", "0"}}
	for i := uint64(1); i <= 3; i++ {
		c.procs[i] = c.newProc(i)
	}
	victim := c.procs[3]
	if err := os.MkdirAll(victim.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", victim.dataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", victim.dataDir).Run() }) // runs after the processes stop
	t.Cleanup(c.cleanup)
	for i := uint64(1); i <= 3; i++ {
		c.start(i, "--bootstrap")
	}
	c.waitLeader(10 * time.Second)
	if l := c.waitLeader(5 * time.Second); l == 3 {
		code, body := c.adminCall(3, "POST", "/admin/transfer-leadership?target=1", nil)
		if code != 200 {
			t.Fatalf("moving leadership off the small disk: %d %v", code, body)
		}
	}
	cl := c.client()
	value := strings.Repeat("x", 4096)
	acked := map[string]string{}
	for i := 0; i < 3000; i++ {
		k := fmt.Sprintf("big%05d", i)
		ctx, cancel := ctxTimeout(10 * time.Second)
		_, err := cl.Put(ctx, []byte(k), []byte(value))
		cancel()
		if err != nil {
			t.Fatalf("write %d with one follower out of space: %v", i, err)
		}
		acked[k] = value
	}
	select {
	case <-victim.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the node with a full disk did not stop")
	}
	code := victim.cmd.ProcessState.ExitCode()
	log := tail(victim.logFn, 400)
	if code == 0 || !strings.Contains(log, "no space left on device") {
		t.Fatalf("exit %d; log does not say the disk is full:\n%s", code, tail(victim.logFn, 15))
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "no space left") {
			t.Logf("exit %d: %s", code, line)
			break
		}
	}
	victim.cmd = nil
	out, errOut, vcode := runCtl("verify-data", victim.dataDir)
	if vcode != 0 {
		t.Fatalf("the full disk left a corrupt WAL: exit %d\n%s%s", vcode, out, errOut)
	}
	// The operator adds space and restarts the node.
	if out, err := exec.Command("mount", "-o", "remount,size=256m", victim.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs: %v %s", err, out)
	}
	c.start(3)
	c.waitApplied(3)
	only, err := client.New(client.Config{Endpoints: []string{victim.clientAddr()}, ClusterID: c.clientCluster()})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	checkAllReadable(t, only, acked, wire.ReadStale)
}
