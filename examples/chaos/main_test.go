package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestChaos runs the workload for a second over each network with a fixed seed
// and checks the report: success, nothing lost, several kinds of faults, data.
func TestChaos(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"-network", network, "-duration", "1s", "-seed", "42", "-conns", "8", "-drain", "30s"}
			code := run(args, &stdout, &stderr)
			out := stdout.String()
			if code != 0 {
				t.Fatalf("chaos %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, &stderr)
			}
			if n := field(t, out, "lost bytes"); n != 0 {
				t.Errorf("lost bytes %d, want 0", n)
			}
			if n := field(t, out, "kinds"); n < 4 {
				t.Errorf("%d kinds of faults injected, want at least 4", n)
			}
			if n := field(t, out, "bytes echoed back"); n == 0 {
				t.Errorf("no byte echoed back on the surviving connections")
			}
			if !strings.Contains(out, "shutdown: ok\n") {
				t.Errorf("the shutdown was not clean")
			}
			t.Log("\n" + out)
		})
	}
}

// field returns the number of the report's first line "  name: n".
func field(t *testing.T, out, name string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `:\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the report has no %q line:\n%s", name, out)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-network", "udp"},
		{"-conns", "0"},
		{"-duration", "0s"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("chaos %v: exit %d, want 2 (stderr %q)", args, code, &stderr)
		}
	}
}
