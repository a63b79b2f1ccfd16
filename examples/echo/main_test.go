package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBoth runs a server and a client in one process over each network and
// checks that every byte came back.
func TestBoth(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"-network", network, "-mode", "both", "-size", "4194304", "-conns", "4", "-timeout", "20s"}
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("echo %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, &stdout, &stderr)
			}
			if want := "16777216 bytes sent and echoed back intact over " + network; !strings.Contains(stdout.String(), want) {
				t.Fatalf("stdout %q does not report %q", &stdout, want)
			}
			t.Log(strings.TrimSpace(stdout.String()))
		})
	}
}

// TestVsockBoth runs both over vsock where the kernel has a loopback transport
// and otherwise checks that echo names what is missing.
func TestVsockBoth(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-network", "vsock", "-mode", "both", "-size", "1048576"}, &stdout, &stderr)
	if code == 0 {
		if want := "1048576 bytes sent and echoed back intact over vsock"; !strings.Contains(stdout.String(), want) {
			t.Fatalf("stdout %q does not report %q", &stdout, want)
		}
		t.Log(strings.TrimSpace(stdout.String()))
		return
	}
	if strings.Contains(stderr.String(), "no vsock loopback transport") {
		t.Skip(strings.TrimSpace(stderr.String()))
	}
	if strings.Contains(stderr.String(), "address family not supported") {
		t.Skip("AF_VSOCK is not available: " + strings.TrimSpace(stderr.String()))
	}
	t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-network", "udp"},
		{"-mode", "relay"},
		{"-network", "unix", "-mode", "server"},
		{"-network", "vsock", "-mode", "client", "-addr", "nocolon"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("echo %v: exit %d, want 2 (stderr %q)", args, code, &stderr)
		}
	}
}
