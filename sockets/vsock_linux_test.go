package sockets_test

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// noLoopback is why the vsock data path is skipped on a host: a local (CID 1)
// bind or connect needs the vsock_loopback transport, which host kernels here
// lack. The throwaway qemu guest of make test-vsock (tools/vsockvm) has it.
const noLoopback = "no vsock loopback transport on this host: a local (CID 1) bind fails with EADDRNOTAVAIL"

// requireVsock skips when this machine has no AF_VSOCK at all.
func requireVsock(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("AF_VSOCK sockets unavailable: %v", err)
	}
	unix.Close(fd)
}

func TestVsockContextID(t *testing.T) {
	requireVsock(t)
	cid, err := sockets.ContextID()
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		t.Skipf("/dev/vsock unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("ContextID: %v", err)
	}
	t.Logf("local context ID %d", cid)
}

// TestVsockListenAny listens on VMADDR_CID_ANY with a port the kernel picks:
// this works without a loopback transport.
func TestVsockListenAny(t *testing.T) {
	requireVsock(t)
	checkFDs(t)
	l, err := sockets.Listen(&vsock.Addr{ContextID: sockets.VsockAnyCID}, nil)
	if err != nil {
		t.Fatalf("listen on CID_ANY: %v", err)
	}
	defer mustClose(t, l)
	assertFlags(t, l)
	a, err := l.LocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	va, ok := a.(*vsock.Addr)
	if !ok || va.ContextID != sockets.VsockAnyCID || va.Port == 0 || va.Port == 0xFFFFFFFF {
		t.Fatalf("listener address %#v, want a *vsock.Addr on CID_ANY with a port", a)
	}
	if _, _, err := l.Accept(); err != unix.EAGAIN {
		t.Errorf("accept with nothing pending: %#v, want the raw unix.EAGAIN", err)
	}
}

// listenLocal listens on CID 1 or skips with noLoopback.
func listenLocal(t *testing.T) *sockets.FD {
	t.Helper()
	l, err := sockets.Listen(&vsock.Addr{ContextID: vsock.Local}, nil)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Skip(noLoopback)
	}
	if err != nil {
		t.Fatalf("listen on CID 1: %v", err)
	}
	return l
}

// TestVsockLoopback runs the data path over CID 1 where a loopback transport
// exists; on a host it skips.
func TestVsockLoopback(t *testing.T) {
	requireVsock(t)
	checkFDs(t)
	l := listenLocal(t)
	defer mustClose(t, l)
	a, err := l.LocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	port := a.(*vsock.Addr).Port
	// Only ever CID 1.
	c, pending, err := sockets.Dial(&vsock.Addr{ContextID: vsock.Local, Port: port}, nil)
	if err != nil {
		t.Fatalf("dial CID 1: %v", err)
	}
	defer mustClose(t, c)
	if err := finishConnect(t, c, pending); err != nil {
		t.Fatalf("connect CID 1: %v", err)
	}
	s, peer := acceptOne(t, l)
	defer mustClose(t, s)
	if _, ok := peer.(*vsock.Addr); !ok {
		t.Errorf("accepted peer %#v, want a *vsock.Addr", peer)
	}
	exercise(t, c, s)
}

// TestVsockAdoptConn adopts a *vsock.Conn's descriptor.
func TestVsockAdoptConn(t *testing.T) {
	requireVsock(t)
	checkFDs(t)
	l := listenLocal(t)
	defer mustClose(t, l)
	a, _ := l.LocalAddr()
	conn, err := vsock.Dial(vsock.Local, a.(*vsock.Addr).Port, nil)
	if err != nil {
		t.Fatalf("vsock.Dial CID 1: %v", err)
	}
	fd, err := sockets.Adopt(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, fd)
	conn.Close()
	s, _ := acceptOne(t, l)
	defer mustClose(t, s)
	exercise(t, fd, s)
}

// TestVsockPeerClose: once the peer has closed, the data it sent before is
// still read, then a read says EOF (0 and no error), and a write fails with
// the raw EPIPE or ECONNRESET and raises no SIGPIPE.
func TestVsockPeerClose(t *testing.T) {
	requireVsock(t)
	checkFDs(t)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGPIPE)
	defer signal.Stop(sig)
	l := listenLocal(t)
	defer mustClose(t, l)
	a, err := l.LocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	// Only ever CID 1.
	c, pending, err := sockets.Dial(&vsock.Addr{ContextID: vsock.Local, Port: a.(*vsock.Addr).Port}, nil)
	if err != nil {
		t.Fatalf("dial CID 1: %v", err)
	}
	if err := finishConnect(t, c, pending); err != nil {
		mustClose(t, c)
		t.Fatalf("connect CID 1: %v", err)
	}
	s, _ := acceptOne(t, l)
	defer mustClose(t, s)
	writeAll(t, c, []byte("last words"))
	mustClose(t, c)

	buf := make([]byte, 64)
	readFull(t, s, buf[:10])
	if string(buf[:10]) != "last words" {
		t.Fatalf("read %q, want the bytes sent before the close", buf[:10])
	}
	waitFD(t, s, unix.POLLIN)
	if n, err := s.Read(buf); n != 0 || err != nil {
		t.Fatalf("read after the peer's close: n=%d err=%#v, want 0 and nil (EOF)", n, err)
	}
	var werr error
	for i := 0; i < 100 && werr == nil; i++ { // the first writes may still be taken
		_, werr = s.Write([]byte("anyone?"))
		if werr == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if werr != unix.EPIPE && werr != unix.ECONNRESET {
		t.Fatalf("write after the peer's close: %#v, want the raw unix.EPIPE or unix.ECONNRESET", werr)
	}
	select {
	case s := <-sig:
		t.Errorf("the write raised %v", s)
	case <-time.After(50 * time.Millisecond):
	}
	t.Logf("write after the peer's close: %v", werr)
}
