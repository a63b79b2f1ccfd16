package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strconv"
	"testing"
)

// reportLine matches the line a mode prints; its groups are the echoed size
// and unit.
var reportLine = regexp.MustCompile(`^mode sendcopy peers 4 300ms: peak RSS [0-9.]+ [KMGT]?i?B \(VmHWM [0-9.]+ [KMGT]?i?B\), peak heap [0-9.]+ [KMGT]?i?B, echoed ([0-9.]+) ([KMGT]?i?B)\n$`)

func TestFloodEchoes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-mode", "sendcopy", "-peers", "4", "-t", "300ms"}, &out, &errOut); code != 0 {
		t.Fatalf("exit status %d, stderr %q, stdout %q", code, errOut.String(), out.String())
	}
	m := reportLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("report %q does not match %v", out.String(), reportLine)
	}
	if n, err := strconv.ParseFloat(m[1], 64); err != nil || n == 0 || m[2] == "B" {
		t.Errorf("echoed %s %s: want at least a KiB", m[1], m[2])
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "flush"},
		{"-modes", "write,flush"},
		{"-peers", "0"},
		{"-bogus"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0.0 B", 1536: "1.5 KiB", 41 << 20: "41.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
