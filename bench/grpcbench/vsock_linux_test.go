package grpcbench

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/fsmkernel/fsmkernel/loop"
)

// noVsockLoopback is why TestGRPCOverVsock skips on a host without the vsock
// loopback transport (`make test-vsock` runs such tests in a guest that has it).
const noVsockLoopback = "no vsock loopback transport on this host: a local (CID 1) bind fails with EADDRNOTAVAIL"

// requireVsockLoopback skips unless this machine has AF_VSOCK and can bind
// CID 1.
func requireVsockLoopback(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("AF_VSOCK sockets unavailable: %v", err)
	}
	defer unix.Close(fd)
	err = unix.Bind(fd, &unix.SockaddrVM{CID: vsock.Local, Port: unix.VMADDR_PORT_ANY})
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Skip(noVsockLoopback)
	}
	if err != nil {
		t.Fatalf("bind AF_VSOCK CID 1, any port: %v", err)
	}
}

// TestGRPCOverVsock: gRPC's unary and streaming calls, served over ListenConn
// on AF_VSOCK, CID 1 (local only), and dialed with mdlayher/vsock, an
// implementation independent of the loop. The one address dialed is CID 1
// (vsock.Local) and the listener's port.
func TestGRPCOverVsock(t *testing.T) {
	requireVsockLoopback(t)
	g := loop.NewGroup(1, nil)
	ln, err := g.ListenConn(&vsock.Addr{ContextID: vsock.Local})
	if err != nil {
		g.Close()
		t.Fatalf("ListenConn on vsock CID 1: %v", err)
	}
	va, ok := ln.Addr().(*vsock.Addr)
	if !ok || va.ContextID != vsock.Local || va.Port == 0 || va.Port == unix.VMADDR_PORT_ANY {
		ln.Close()
		g.Close()
		t.Fatalf("listener address %#v, want a *vsock.Addr on CID 1 with a port", ln.Addr())
	}
	port := va.Port
	serveOn(t, ln, func() { g.Close() })
	dial := func(context.Context, string) (net.Conn, error) { return vsock.Dial(vsock.Local, port, nil) }
	checkEcho(t, client(t, "passthrough:///vsock", grpc.WithContextDialer(dial)))
}
