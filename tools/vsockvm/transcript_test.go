package main

import (
	"strings"
	"testing"
)

// guestRun is the console of a good run of two binaries, with the escapes the
// firmware leaves before the first marker and the serial port's CR LF.
const guestRun = "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\r\n" +
	"Booting from ROM...\r\n" +
	"\x1bc\x1b[?7l\x1b[2J@@vsockvm ready 6.1.0-48-amd64\r\n" +
	"@@vsockvm run sockets.test\r\n" +
	"=== RUN   TestVsockLoopback\r\n" +
	"--- PASS: TestVsockLoopback (0.03s)\r\n" +
	"PASS\r\n" +
	"@@vsockvm exit sockets.test 0\r\n" +
	"@@vsockvm run loop.test\r\n" +
	"=== RUN   TestVsockPeerClose\r\n" +
	"=== RUN   TestVsockPeerClose/after_data\r\n" +
	"    --- PASS: TestVsockPeerClose/after_data (0.02s)\r\n" +
	"--- PASS: TestVsockPeerClose (0.10s)\r\n" +
	"PASS\r\n" +
	"@@vsockvm exit loop.test 0\r\n" +
	"@@vsockvm done\r\n" +
	"[    5.08] reboot: Power down\r\n"

var bins = []string{"sockets.test", "loop.test"}

func read(console string) *transcript {
	tr := newTranscript()
	for _, l := range strings.Split(console, "\n") {
		tr.line(l)
	}
	return tr
}

func TestTranscriptPass(t *testing.T) {
	tr := read(guestRun)
	if err := tr.verdict(bins); err != nil {
		t.Fatalf("verdict: %v", err)
	}
	want := "sockets.test: TestVsockLoopback,loop.test: TestVsockPeerClose/after_data,loop.test: TestVsockPeerClose"
	if got := strings.Join(tr.passed, ","); got != want {
		t.Errorf("passed %q, want %q", got, want)
	}
	if tr.ready != "6.1.0-48-amd64" {
		t.Errorf("kernel release %q", tr.ready)
	}
}

// TestTranscriptFailures: every way a run proves nothing fails the verdict,
// saying why.
func TestTranscriptFailures(t *testing.T) {
	for _, c := range []struct {
		name, console, want string
	}{
		{"no boot", "SeaBIOS\r\nBooting from ROM...\r\n", "never reported its modules loaded"},
		{"kernel panic", "Kernel panic - not syncing: Attempted to kill init!\r\n", "did not boot"},
		{"setup", "@@vsockvm error insmod vsock_loopback.ko\r\n", "could not set up: insmod vsock_loopback.ko failed"},
		{"exit status", strings.Replace(guestRun, "exit loop.test 0", "exit loop.test 1", 1), "loop.test: exit status 1"},
		{"test failed", strings.Replace(guestRun, "    --- PASS: TestVsockPeerClose/after_data", "    --- FAIL: TestVsockPeerClose/after_data", 1), "1 tests failed: loop.test: TestVsockPeerClose/after_data"},
		{"skipped", strings.Replace(guestRun, "--- PASS: TestVsockLoopback", "--- SKIP: TestVsockLoopback", 1), "1 tests skipped in the guest, where nothing may skip: sockets.test: TestVsockLoopback"},
		{"no exit status", strings.Replace(guestRun, "@@vsockvm exit loop.test 0\r\n", "", 1), "loop.test: the guest never reported its exit status"},
		{"cut short", guestRun[:strings.Index(guestRun, "@@vsockvm run loop.test")], "/init did not reach its end"},
		{"a binary ran nothing", strings.Replace(guestRun, "--- PASS: TestVsockLoopback (0.03s)\r\n", "testing: warning: no tests to run\r\n", 1), "sockets.test: ran no test"},
		{"nothing ran", "@@vsockvm ready 6.1\r\n@@vsockvm run sockets.test\r\n@@vsockvm exit sockets.test 0\r\n@@vsockvm run loop.test\r\n@@vsockvm exit loop.test 0\r\n@@vsockvm done\r\n", "no test passed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := read(c.console).verdict(bins)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verdict: %v, want an error saying %q", err, c.want)
			}
		})
	}
}
