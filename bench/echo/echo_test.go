package echo

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var servers = []struct {
	name  string
	start Start
}{
	{"fsmkernel", StartFsmkernel},
	{"fsmkernel-record", StartFsmkernelRecorded},
	{"net", StartNet},
	{"gnet", StartGnet},
}

// pingPong sends 1 KiB messages on conns connections, each waiting for its echo
// before the next, and checks every byte.
func pingPong(t testing.TB, addr string, conns, messages int) {
	t.Helper()
	msg := make([]byte, 1024)
	rand.Read(msg)
	got := make([]byte, len(msg))
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for i := range messages {
			if _, err := c.Write(msg); err != nil {
				c.Close()
				t.Fatalf("message %d: write: %v", i, err)
			}
			if _, err := io.ReadFull(c, got); err != nil {
				c.Close()
				t.Fatalf("message %d: read the echo: %v", i, err)
			}
			if !bytes.Equal(got, msg) {
				c.Close()
				t.Fatalf("message %d: the echo differs from the message", i)
			}
		}
		c.Close()
	}
}

func TestEcho(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			srv, err := s.start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if a, ok := srv.Addr().(*net.TCPAddr); !ok || a.Port == 0 {
				t.Errorf("Addr() = %v, want a TCP address with its port", srv.Addr())
			}
			pingPong(t, srv.Addr().String(), 2, 3)
			if err := srv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestEchoC builds bench/c/echo.c with gcc and echoes through it, as the
// benchmark does; it is skipped where gcc is missing.
func TestEchoC(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the C server uses epoll")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	bin := filepath.Join(t.TempDir(), "echo-c")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-o", bin, "../c/echo.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read the announcement: %v", err)
	}
	pid, addr, err := ParseAnnounce(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if pid != cmd.Process.Pid {
		t.Errorf("announced pid %d, started %d", pid, cmd.Process.Pid)
	}
	pingPong(t, addr, 2, 3)
}

func TestParseAnnounce(t *testing.T) {
	pid, addr, err := ParseAnnounce("pid 42 addr 127.0.0.1:7007")
	if err != nil || pid != 42 || addr != "127.0.0.1:7007" {
		t.Errorf("ParseAnnounce = %d, %q, %v", pid, addr, err)
	}
	if _, _, err := ParseAnnounce("listening"); err == nil {
		t.Error("ParseAnnounce accepted a line without pid and addr")
	}
}

// BenchmarkEcho is one 1 KiB ping-pong per op on one connection, client and
// server in this process: a quick check that the servers work under a
// benchmark, not the measurement (that is cmd/echobench, one core each).
func BenchmarkEcho(b *testing.B) {
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			srv, err := s.start("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			c, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 1024)
			got := make([]byte, len(msg))
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
