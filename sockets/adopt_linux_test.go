package sockets_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

// TestAdoptConn adopts the descriptor of a connected *net.TCPConn and
// *net.UnixConn, closes the caller's copy, and uses the adopted FD against a
// peer that stays in package net.
func TestAdoptConn(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			checkFDs(t)
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			conn, err := net.Dial(network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			peer, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()

			fd, err := sockets.Adopt(conn.(syscall.Conn), nil)
			if err != nil {
				t.Fatalf("adopt %T: %v", conn, err)
			}
			defer mustClose(t, fd)
			if err := conn.Close(); err != nil {
				t.Fatalf("closing the caller's copy: %v", err)
			}
			assertFlags(t, fd)
			talkToNetPeer(t, fd, peer)
		})
	}
}

// talkToNetPeer checks fd against a peer in package net: bytes both ways, then
// shutdown(SHUT_WR) seen as io.EOF.
func talkToNetPeer(t *testing.T, fd *sockets.FD, peer net.Conn) {
	t.Helper()
	if err := peer.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	writeAll(t, fd, []byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read %q, %v; want ping", buf, err)
	}
	if _, err := peer.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	readFull(t, fd, buf)
	if string(buf) != "pong" {
		t.Fatalf("read %q, want pong", buf)
	}
	if err := fd.Shutdown(sockets.ShutWrite); err != nil {
		t.Fatal(err)
	}
	if n, err := peer.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("peer read after shutdown: %d, %v; want io.EOF", n, err)
	}
}

// TestAdoptListener adopts a *net.TCPListener and a *net.UnixListener, closes
// the caller's copy, and accepts on the adopted FD.
func TestAdoptListener(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			checkFDs(t)
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			if ul, ok := l.(*net.UnixListener); ok {
				// Keep the path for the adopted copy; it is the test's to remove.
				ul.SetUnlinkOnClose(false)
			}
			fd, err := sockets.Adopt(l.(syscall.Conn), nil)
			if err != nil {
				t.Fatalf("adopt %T: %v", l, err)
			}
			defer mustClose(t, fd)
			laddr := l.Addr()
			if err := l.Close(); err != nil {
				t.Fatalf("closing the caller's copy: %v", err)
			}
			assertFlags(t, fd)
			if got, err := fd.LocalAddr(); err != nil || got.String() != laddr.String() {
				t.Errorf("adopted listener's address %v, %v; want %v", got, err, laddr)
			}

			conn, err := net.Dial(network, laddr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			s, _ := acceptOne(t, fd)
			defer mustClose(t, s)
			talkToNetPeer(t, s, conn)
		})
	}
}

// TestAdoptFile adopts an *os.File holding one end of a socketpair; the file
// is closed right after.
func TestAdoptFile(t *testing.T) {
	checkFDs(t)
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(p[0]), "socketpair")
	peer := os.NewFile(uintptr(p[1]), "socketpair-peer")
	defer peer.Close()
	fd, err := sockets.Adopt(f, nil)
	if err != nil {
		t.Fatalf("adopt *os.File: %v", err)
	}
	defer mustClose(t, fd)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertFlags(t, fd)
	writeAll(t, fd, []byte("file"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "file" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
}

// TestAdoptRawFD adopts a raw blocking descriptor: the duplicate is made
// non-blocking and close-on-exec, and survives the caller closing the raw one.
func TestAdoptRawFD(t *testing.T) {
	checkFDs(t)
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := sockets.AdoptFD(p[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, fd)
	if fd.Fd() == p[0] {
		t.Fatal("AdoptFD did not duplicate the descriptor")
	}
	if err := unix.Close(p[0]); err != nil {
		t.Fatal(err)
	}
	other, err := sockets.AdoptFD(p[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, other)
	if err := unix.Close(p[1]); err != nil {
		t.Fatal(err)
	}
	assertFlags(t, fd)
	exercise(t, fd, other)
}

// TestAdoptRejects checks that what is not a stream socket is refused and
// that the duplicate is closed.
func TestAdoptRejects(t *testing.T) {
	checkFDs(t)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if fd, err := sockets.Adopt(udp.(syscall.Conn), nil); err == nil {
		fd.Close()
		t.Error("adopted a UDP socket")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if fd, err := sockets.Adopt(r, nil); !errors.Is(err, syscall.ENOTSOCK) {
		if fd != nil {
			fd.Close()
		}
		t.Errorf("adopt a pipe: %v, want ENOTSOCK", err)
	}
	if _, err := sockets.AdoptFD(-1, nil); !isSyscallError(err, "fcntl", syscall.EBADF) {
		t.Errorf("adopt fd -1: %v, want fcntl: EBADF", err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := sockets.Adopt(closed.(syscall.Conn), nil); err == nil {
		t.Error("adopted a closed listener")
	}
}
