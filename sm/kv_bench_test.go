package sm

import (
	"fmt"
	"testing"
	"time"

	"github.com/kraftdb/kraft/wire"
)

// BenchmarkKVApplyPipelined applies puts of one session with 256 requests
// in flight (FirstUnacked trails Seq by 256), as a pipelining client sends
// them: the session's response cache stays full.
func BenchmarkKVApplyPipelined(b *testing.B) {
	kv, _ := NewKV(DefaultKVConfig())
	cmds := make([]Command, 64)
	res := make([]Result, 64)
	now := time.Now().UnixNano()
	var seq uint64
	mk := func() []byte {
		seq++
		first := uint64(1)
		if seq > 256 {
			first = seq - 256
		}
		r := wire.ClientRequest{ClientID: 7, Seq: seq, FirstUnacked: first, NewSession: seq == 1, Op: wire.OpPut,
			Key: []byte(fmt.Sprint("k", seq%10000)), Value: make([]byte, 128)}
		f := wire.AppendClientRequest(nil, &r)
		return AppendCommand(nil, now, f[wire.FrameHeaderSize:])
	}
	var index uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(cmds) {
		b.StopTimer()
		for k := range cmds {
			index++
			cmds[k] = Command{Index: index, Data: mk()}
		}
		b.StartTimer()
		kv.Apply(cmds, res)
	}
}
