package e2e

import (
	"context"
	"net"
	"os/exec"
	"time"

	"github.com/kraftdb/kraft/server"
)

func serverClusterNumber(name string) uint64 { return server.ClusterNumber(name) }

func runKraftd(args ...string) (string, error) {
	out, err := exec.Command(kraftdBin, args...).CombinedOutput()
	return string(out), err
}

// readAll reads until EOF, an error or a full buffer.
func readAll(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
