package main

import (
	"bytes"
	"strings"
	"testing"
)

// kraftbench syscalls refuses bad flags with exit status 2 and says why,
// and fails with 1 when nothing runs that it could trace, before touching
// tracefs.
func TestSyscallsRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--duration", "0s"}, 2, "--duration must be in"},
		{[]string{"--duration", "2m"}, 2, "--duration must be in"},
		{[]string{"--match", "("}, 2, "missing closing )"},
		{[]string{"extra"}, 2, "unexpected arguments"},
		{[]string{"--match", "no process has this command line 7f3a9c"}, 1, "no running process matches"},
		{[]string{"--tracefs", "/nonexistent", "--match", "kraftbench-never-7f3a9c"}, 1, "no running process matches"},
	} {
		var out, errs bytes.Buffer
		code := run(append([]string{"kraftbench", "syscalls"}, c.args...), &out, &errs)
		if code != c.code || !strings.Contains(errs.String(), c.says) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d saying %q", c.args, code, errs.String(), c.code, c.says)
		}
	}
}
