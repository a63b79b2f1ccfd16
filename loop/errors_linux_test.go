package loop

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// sameError fails the test unless got is a *net.OpError whose string is
// net's, want's, for the same failure.
func sameError(t *testing.T, what string, got, want error) {
	t.Helper()
	if want == nil {
		t.Fatalf("%s: net did not fail", what)
	}
	var op *net.OpError
	if !errors.As(got, &op) || got != error(op) {
		t.Errorf("%s: %#v, want a *net.OpError", what, got)
		return
	}
	if got.Error() != want.Error() {
		t.Errorf("%s:\n got %q\nwant %q (net's)", what, got, want)
	}
}

// TestServeErrorLikeNet: a listen on a busy address fails with net.Listen's
// error, "listen tcp 127.0.0.1:PORT: bind: address already in use", which is
// still syscall.EADDRINUSE.
func TestServeErrorLikeNet(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	accept := func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	_, netErr := net.Listen("tcp", addr)
	_, err = g.Serve(busy.Addr(), accept, nil)
	sameError(t, "Serve", err, netErr)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Serve: %v is not EADDRINUSE", err)
	}
	for _, network := range []string{"tcp", "tcp4"} {
		_, netErr := net.Listen(network, addr)
		_, err := g.ServeAddress(network, addr, accept, nil)
		sameError(t, "ServeAddress "+network, err, netErr)
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("ServeAddress %s: %v is not EADDRINUSE", network, err)
		}
		_, err = g.Listen(network, addr)
		sameError(t, "Listen "+network, err, netErr)
	}

	path := filepath.Join(t.TempDir(), "busy.sock")
	ub, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Close()
	_, netErr = net.Listen("unix", path)
	_, err = g.ServeAddress("unix", path, accept, nil)
	sameError(t, "ServeAddress unix", err, netErr)
	_, err = g.Serve(&net.UnixAddr{Net: "unix", Name: path}, accept, nil)
	sameError(t, "Serve unix", err, netErr)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Serve unix: %v is not EADDRINUSE", err)
	}
}

// TestDialErrorLikeNet: a refused dial fails with net.Dial's error, "dial tcp
// 127.0.0.1:PORT: connect: connection refused", a Unix one to no file with
// "connect: no such file or directory", each still its errno.
func TestDialErrorLikeNet(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := probe.Addr()
	probe.Close()
	_, netErr := net.Dial("tcp", closed.String())
	_, err = g.Dial(ctx, closed, NopHandler{}, nil)
	sameError(t, "Dial", err, netErr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial: %v is not ECONNREFUSED", err)
	}
	_, err = g.DialAddress(ctx, "tcp", closed.String(), NopHandler{}, nil)
	sameError(t, "DialAddress", err, netErr)
	_, err = g.DialContext(ctx, "tcp", closed.String())
	sameError(t, "DialContext", err, netErr)
	_, netErr = net.Dial("tcp4", closed.String())
	_, err = g.DialAddress(ctx, "tcp4", closed.String(), NopHandler{}, nil)
	sameError(t, "DialAddress tcp4", err, netErr)

	path := filepath.Join(t.TempDir(), "nobody.sock")
	_, netErr = net.Dial("unix", path)
	_, err = g.DialAddress(ctx, "unix", path, NopHandler{}, nil)
	sameError(t, "DialAddress unix", err, netErr)
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("DialAddress unix: %v is not ENOENT", err)
	}
	_, err = g.DialContext(ctx, "unix", path)
	sameError(t, "DialContext unix", err, netErr)
}

// TestDialContextEnds: a dial whose ctx has ended opens nothing and says so
// as a *net.OpError; a deadline is a timeout, as net's is.
func TestDialContextEnds(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, &Options{Syscalls: neverConnects{sockets.System()}})
	defer shutdown(t, g)
	target := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.Dial(canceled, target, NopHandler{}, nil)
	if !errors.Is(err, context.Canceled) || err.Error() != "dial tcp 127.0.0.1:9: context canceled" {
		t.Errorf("canceled: %v, want dial tcp 127.0.0.1:9: context canceled", err)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = g.Dial(expired, target, NopHandler{}, nil)
	wantDialTimeout(t, err)
	// A connect that never completes: the ConnectTimeout, then ctx's deadline.
	_, err = g.Dial(context.Background(), target, NopHandler{}, &ChannelOptions{ConnectTimeout: 50 * time.Millisecond})
	wantDialTimeout(t, err)
	if !errors.Is(err, errConnectTimeout) {
		t.Errorf("ConnectTimeout: %v does not say the connect deadline passed", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = g.Dial(short, target, NopHandler{}, nil)
	wantDialTimeout(t, err)
}

func wantDialTimeout(t *testing.T, err error) {
	t.Helper()
	var op *net.OpError
	if !errors.As(err, &op) || !op.Timeout() || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) ||
		err.Error() != "dial tcp 127.0.0.1:9: i/o timeout" {
		t.Errorf("dial past its deadline: %v, want dial tcp 127.0.0.1:9: i/o timeout, a timeout", err)
	}
}

// TestServeDialErrorsAreOpErrors: failures other than the kernel's are
// *net.OpError too: a stopped group, an address of a type no socket takes.
func TestServeDialErrorsAreOpErrors(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	shutdown(t, g)
	accept := func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }
	_, err := g.Serve(loopback, accept, nil)
	if !errors.Is(err, ErrClosed) || err.Error() != "listen tcp 127.0.0.1:0: loop: closed" {
		t.Errorf("Serve on a stopped group: %v", err)
	}
	_, err = g.Dial(context.Background(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, NopHandler{}, nil)
	if !errors.Is(err, ErrClosed) || err.Error() != "dial tcp 127.0.0.1:9: loop: closed" {
		t.Errorf("Dial on a stopped group: %v", err)
	}
	udp := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	_, err = g.Serve(udp, accept, nil)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "listen" || op.Net != "udp" || op.Addr != udp {
		t.Errorf("Serve a UDP address: %#v", err)
	}
	_, err = g.Dial(context.Background(), udp, NopHandler{}, nil)
	if !errors.As(err, &op) || op.Op != "dial" || op.Net != "udp" || op.Addr != udp {
		t.Errorf("Dial a UDP address: %#v", err)
	}
}
