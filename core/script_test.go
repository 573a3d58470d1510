package core

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt scripts")

// TestScripts runs the interaction scripts in testdata. Each block is a
// command line, a "----" line, and the expected output up to a blank line.
// go test ./core -run TestScripts -rewrite regenerates the expectations;
// review the diff like code.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var c *cluster
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	lineNo := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		lineNo++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := lineNo
		var want []string
		if sep, ok := next(); !ok || sep != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, cmdLine)
		}
		for {
			l, ok := next()
			if !ok || l == "" {
				break
			}
			want = append(want, l)
		}
		got := runCommand(t, &c, line)
		out.WriteString(line + "\n----\n" + got + "\n")
		if !*rewrite && strings.TrimRight(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, cmdLine, line, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		os.WriteFile(path, []byte(out.String()), 0o644)
	}
}

func runCommand(t *testing.T, cp **cluster, line string) string {
	f := strings.Fields(line)
	id := func(i int) uint64 {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			t.Fatalf("%q: bad number %q", line, f[i])
		}
		return n
	}
	errText := func(err error) string {
		if err == nil {
			return "ok\n"
		}
		return "error: " + err.Error() + "\n"
	}
	c := *cp
	switch f[0] {
	case "cluster":
		var opts []func(*Config)
		n := 3
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			iv, _ := strconv.Atoi(v)
			switch k {
			case "n":
				n = iv
			case "prevote":
				opts = append(opts, func(c *Config) { c.DisablePreVote = v == "off" })
			case "checkquorum":
				opts = append(opts, func(c *Config) { c.DisableCheckQuorum = v == "off" })
			case "chunk":
				opts = append(opts, func(c *Config) { c.MaxSnapshotChunkBytes = iv })
			}
		}
		*cp = newCluster(t, n, opts...)
		return (*cp).status()
	case "elect":
		c.elect(id(1))
		return c.status()
	case "campaign":
		c.nodes[id(1)].Campaign()
		c.processAll()
		return "ok\n"
	case "deliver":
		log := c.deliver()
		if len(log) == 0 {
			return "(no messages)\n"
		}
		return strings.Join(log, "\n") + "\n"
	case "tick":
		c.tick(id(1), int(id(2)))
		return "ok\n"
	case "tick-all":
		c.tickAll(int(id(1)))
		return "ok\n"
	case "isolate":
		c.isolate(id(1))
		return "ok\n"
	case "heal":
		c.heal()
		return "ok\n"
	case "propose":
		_, err := c.nodes[id(1)].Propose([][]byte{[]byte(strings.Join(f[2:], " "))})
		return errText(err)
	case "status":
		return c.status()
	case "transfer":
		return errText(c.nodes[id(1)].TransferLeadership(id(2)))
	case "add":
		c.add(id(1), InitialState{})
		return "ok\n"
	case "conf":
		var ccs []ConfChange
		for _, a := range f[2:] {
			op, n, _ := strings.Cut(a, ":")
			nid, _ := strconv.ParseUint(n, 10, 64)
			cc := ConfChange{NodeID: nid}
			switch op {
			case "add-voter":
				cc.Op = ConfAddVoter
			case "add-learner":
				cc.Op = ConfAddLearner
			case "remove":
				cc.Op = ConfRemoveNode
			}
			ccs = append(ccs, cc)
		}
		return errText(c.nodes[id(1)].ProposeConfChange(ccs...))
	case "snapshot":
		r := c.nodes[id(1)]
		applied := r.Status().Applied
		return errText(r.CreateSnapshot(applied, []byte(fmt.Sprintf("state@%d", applied))))
	case "read":
		return errText(c.nodes[id(1)].ReadIndex(id(2)))
	case "reads":
		var b strings.Builder
		for _, rs := range c.reads[id(1)] {
			fmt.Fprintf(&b, "ctx=%d index=%d err=%v\n", rs.Context, rs.Index, rs.Err)
		}
		c.reads[id(1)] = nil
		if b.Len() == 0 {
			return "none\n"
		}
		return b.String()
	}
	t.Fatalf("unknown command %q", line)
	return ""
}
