package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestREADMEShowsThisProgram fails when the README's runtime snippet is not
// this directory's main.go, which this package's tests build and run.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// The README shows the program from its package clause on.
	body := string(src[bytes.Index(src, []byte("package main")):])
	if !strings.Contains(string(readme), "```go\n"+body+"```\n") {
		t.Fatalf("README.md does not show examples/readme/main.go from its package clause on, in a ```go block")
	}
}

// TestEchoUnderHalfClosure runs the README's handler with clients that send,
// shut down their write side (as `nc -N` does) and read to EOF: every byte
// comes back, small and large.
func TestEchoUnderHalfClosure(t *testing.T) {
	g := loop.NewGroup(2, nil)
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{6, 300 << 10} {
		for i := 0; i < 10; i++ {
			want := make([]byte, size)
			rand.Read(want)
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			errc := make(chan error, 1)
			go func() {
				_, err := conn.Write(want)
				if err == nil {
					err = conn.(*net.TCPConn).CloseWrite()
				}
				errc <- err
			}()
			got, err := io.ReadAll(conn)
			if werr := <-errc; werr != nil {
				t.Fatalf("client %d (%d bytes): write: %v", i, size, werr)
			}
			conn.Close()
			if err != nil {
				t.Fatalf("client %d (%d bytes): read: %v", i, size, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("client %d: sent %d bytes, got %d back (or different bytes)", i, size, len(got))
			}
		}
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
