package core_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kraftdb/kraft/core"
	"github.com/kraftdb/kraft/sm"
	"github.com/kraftdb/kraft/wire"
)

// counter is an embedder's state machine: commands are numbers to add.
type counter struct{ total uint64 }

func (c *counter) Apply(cmds []sm.Command, results []sm.Result) {
	for i, cmd := range cmds {
		c.total += binary.LittleEndian.Uint64(cmd.Data)
		results[i].Value = c.total
	}
}

func (c *counter) Snapshot() (sm.Snapshot, error) { return counterSnap(c.total), nil }

func (c *counter) Restore(r io.Reader) error { return binary.Read(r, binary.LittleEndian, &c.total) }

type counterSnap uint64

func (s counterSnap) WriteTo(w io.Writer) (int64, error) {
	return 8, binary.Write(w, binary.LittleEndian, uint64(s))
}
func (counterSnap) Release() {}

// alone is the transport of a one-node cluster: there is no one to send to.
type alone struct{}

func (alone) Send(*wire.Message) error { return nil }

// Embed a Raft node with your own state machine. A real cluster passes a
// netio.Transport and lists its peers in Bootstrap.
func ExampleNode() {
	dir, _ := os.MkdirTemp("", "kraft-example-")
	defer os.RemoveAll(dir)
	n, err := core.NewNode(core.NodeConfig{
		Raft:         core.DefaultConfig(1, nil),
		WALDir:       dir,
		StateMachine: &counter{},
		Transport:    alone{},
		Bootstrap:    []uint64{1},
	})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, add := range []uint64{40, 2} {
		cmd := binary.LittleEndian.AppendUint64(nil, add)
		res, err := n.Propose(ctx, cmd)
		for err != nil && ctx.Err() == nil { // not leader yet: the first election takes 150-300ms
			time.Sleep(10 * time.Millisecond)
			res, err = n.Propose(ctx, cmd)
		}
		fmt.Println("total:", res.Value)
	}
	// Output:
	// total: 40
	// total: 42
}
