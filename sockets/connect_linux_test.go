package sockets_test

import (
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

// TestOpenThenConnect follows the channel table's order: open, (register,)
// connect, and hands back Connect's raw result: EINPROGRESS for TCP, nil for
// a Unix socket, and the raw errno of a refused Unix connect, leaving the
// descriptor open for the caller's closeFD.
func TestOpenThenConnect(t *testing.T) {
	checkFDs(t)
	l, err := sockets.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, l)
	addr, _ := l.LocalAddr()
	c, err := sockets.Open(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	assertFlags(t, c)
	err = c.Connect(addr)
	if err != nil && err != unix.EINPROGRESS {
		t.Fatalf("connect: %#v, want nil or the raw unix.EINPROGRESS", err)
	}
	if err := finishConnect(t, c, err != nil); err != nil {
		t.Fatal(err)
	}
	s, _ := acceptOne(t, l)
	mustClose(t, s)

	path := filepath.Join(t.TempDir(), "s")
	ul, err := sockets.Listen(&net.UnixAddr{Name: path, Net: "unix"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	uaddr := &net.UnixAddr{Name: path, Net: "unix"}
	uc, err := sockets.Open(uaddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.Connect(uaddr); err != nil {
		t.Errorf("unix connect: %v, want nil (at once)", err)
	}
	mustClose(t, uc)
	mustClose(t, ul)

	// The listener is gone (its path too): ENOENT, raw, the socket still open.
	uc, err = sockets.Open(uaddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.Connect(uaddr); err != unix.ENOENT {
		t.Errorf("connect to a removed path: %#v, want the raw unix.ENOENT", err)
	}
	if uc.Closed() {
		t.Error("a failed Connect closed the descriptor")
	}
	mustClose(t, uc)
}

// TestWriteToClosedPeerNoSIGPIPE writes to a connection whose peer is gone
// while the program listens for SIGPIPE: the write fails with the raw EPIPE
// and no SIGPIPE is raised (sendto and sendmsg with MSG_NOSIGNAL).
func TestWriteToClosedPeerNoSIGPIPE(t *testing.T) {
	checkFDs(t)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGPIPE)
	defer signal.Stop(sig)
	for _, write := range []struct {
		name string
		f    func(*sockets.FD) (int, error)
	}{
		{"write", func(fd *sockets.FD) (int, error) { return fd.Write([]byte("x")) }},
		{"writev of one buffer (sendto)", func(fd *sockets.FD) (int, error) { return fd.Writev([][]byte{[]byte("x")}) }},
		{"writev of two (sendmsg)", func(fd *sockets.FD) (int, error) { return fd.Writev([][]byte{[]byte("x"), []byte("y")}) }},
	} {
		a, b := socketpair(t, nil)
		mustClose(t, b)
		if _, err := write.f(a); err != unix.EPIPE {
			t.Errorf("%s to a closed peer: %#v, want the raw unix.EPIPE", write.name, err)
		}
		mustClose(t, a)
	}
	select {
	case s := <-sig:
		t.Errorf("a write raised %v", s)
	case <-time.After(50 * time.Millisecond):
	}
}
