package loop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// The tests of this file run the loop over AF_VSOCK for real. They need the
// vsock loopback transport, which the development machines lack; `make
// test-vsock` runs them in a throwaway guest that has it (tools/vsockvm), where
// none of them may skip. Every connection goes to CID 1 (vsock.Local): the
// dial targets are built only by vsockTarget.

// noVsockLoopback is why these tests skip on a host, as in package sockets.
const noVsockLoopback = "no vsock loopback transport on this host: a local (CID 1) bind fails with EADDRNOTAVAIL"

// requireVsockLoopback skips unless this machine has AF_VSOCK and can bind CID 1.
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

// vsockLocal is an address to listen on: CID 1, a port the kernel picks.
func vsockLocal() *vsock.Addr { return &vsock.Addr{ContextID: vsock.Local} }

// vsockPort returns the port of a listener's address, which must be a
// *vsock.Addr on CID 1.
func vsockPort(t *testing.T, a net.Addr) uint32 {
	t.Helper()
	va, ok := a.(*vsock.Addr)
	if !ok || va.ContextID != vsock.Local || va.Port == 0 || va.Port == unix.VMADDR_PORT_ANY {
		t.Fatalf("listener address %#v, want a *vsock.Addr on CID 1 with a port", a)
	}
	return va.Port
}

// vsockTarget is the address to dial for port: always CID 1.
func vsockTarget(port uint32) *vsock.Addr {
	return &vsock.Addr{ContextID: vsock.Local, Port: port}
}

// dialVsock connects to port on CID 1 with mdlayher/vsock, an implementation
// independent of the loop, and closes the connection when the test ends.
func dialVsock(t *testing.T, port uint32) *vsock.Conn {
	t.Helper()
	c, err := vsock.Dial(vsock.Local, port, nil)
	if err != nil {
		t.Fatalf("vsock.Dial CID 1 port %d: %v", port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestVsockEchoIntegrity: 16 connections at once send random-sized chunks over
// vsock through a group of two loops and get every byte back in order, with
// the clients dialing through mdlayher/vsock and through the loop itself.
func TestVsockEchoIntegrity(t *testing.T) {
	requireVsockLoopback(t)
	t.Run("vsock.Dial", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(2, nil)
		defer shutdown(t, g)
		port := vsockPort(t, serveEcho(t, g, vsockLocal()).Addr())
		echoOverMany(t, 16, func() (net.Conn, error) { return vsock.Dial(vsock.Local, port, nil) })
	})
	t.Run("DialConn", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(2, nil)
		defer shutdown(t, g)
		port := vsockPort(t, serveEcho(t, g, vsockLocal()).Addr())
		echoOverMany(t, 16, func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return g.DialConn(ctx, vsockTarget(port))
		})
	})
}

// replyAtEOF collects what it reads and, when the peer shuts down its side,
// writes it all back and then closes the channel.
type replyAtEOF struct {
	*recorder
	got      bytes.Buffer
	replied  chan error
	closeErr chan error
}

func (h *replyAtEOF) OnRead(c *Channel, p []byte) {
	h.recorder.OnRead(c, p)
	h.got.Write(p)
}

func (h *replyAtEOF) OnInputClosed(c *Channel) {
	h.recorder.OnInputClosed(c)
	c.Send(bytes.Clone(h.got.Bytes()), func(err error) {
		h.replied <- err
		h.closeErr <- c.Close()
	})
}

// TestVsockHalfClosure: the peer shuts down its write side over vsock; the
// channel, allowed half-closure, reads every byte, reports input closed, stays
// open, writes its reply after the EOF, and the peer reads the reply and then
// EOF when the channel closes.
func TestVsockHalfClosure(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	h := &replyAtEOF{recorder: newRecorder(), replied: make(chan error, 1), closeErr: make(chan error, 1)}
	ln, err := g.Serve(vsockLocal(), func(net.Addr) (Handler, *ChannelOptions) {
		return h, &ChannelOptions{HalfClosure: true}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := dialVsock(t, vsockPort(t, ln.Addr()))
	peer.SetDeadline(time.Now().Add(10 * time.Second))
	want := make([]byte, 256<<10) // several read cycles
	for i := range want {
		want[i] = byte(i * 7)
	}
	if _, err := peer.Write(want); err != nil {
		t.Fatalf("peer write: %v", err)
	}
	if err := peer.CloseWrite(); err != nil {
		t.Fatalf("peer shutdown(SHUT_WR): %v", err)
	}
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatalf("peer read of the reply: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("reply of %d bytes differs from the %d sent (first difference at %d)", len(got), len(want), firstDifference(got, want))
	}
	if err := <-h.replied; err != nil {
		t.Fatalf("the reply written after the peer's EOF failed: %v", err)
	}
	if err := <-h.closeErr; err != nil {
		t.Fatalf("close after the reply: %v", err)
	}
	wait(t, h.inactive, "OnInactive")
	h.mu.Lock()
	events := fmt.Sprint(h.events)
	h.mu.Unlock()
	if events != "[active inputClosed inactive]" {
		t.Fatalf("callbacks %s, want [active inputClosed inactive]", events)
	}
}

// TestVsockPeerClose: the peer closes its vsock connection. A channel without
// half-closure reads what was sent and closes cleanly at the EOF; a channel
// whose writes the peer never read fails them all, each reported once.
func TestVsockPeerClose(t *testing.T) {
	requireVsockLoopback(t)
	t.Run("after data", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(1, nil)
		defer shutdown(t, g)
		rec := newRecorder()
		chans := make(chan *Channel, 1)
		ln, err := g.Serve(vsockLocal(), func(net.Addr) (Handler, *ChannelOptions) {
			return activeRecorder{rec, chans}, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		peer := dialVsock(t, vsockPort(t, ln.Addr()))
		ch := <-chans
		want := bytes.Repeat([]byte("vsock "), 50_000)
		if _, err := peer.Write(want); err != nil {
			t.Fatalf("peer write: %v", err)
		}
		if err := peer.Close(); err != nil {
			t.Fatalf("peer close: %v", err)
		}
		wait(t, ch.Closed(), "the channel closing at the peer's EOF")
		if err := ch.Err(); err != nil {
			t.Errorf("channel closed with %v, want a clean close at EOF", err)
		}
		rec.mu.Lock()
		got := rec.data.Len()
		same := bytes.Equal(rec.data.Bytes(), want)
		rec.mu.Unlock()
		if !same {
			t.Errorf("the channel read %d bytes, not the %d the peer sent before closing", got, len(want))
		}
		if rec.has("inputClosed") || rec.has("error") {
			t.Errorf("callbacks %v: EOF without half-closure must close the channel, not report input closed or an error", rec.events)
		}
	})
	t.Run("pending writes", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(1, nil)
		defer shutdown(t, g)
		rec := newRecorder()
		chans := make(chan *Channel, 1)
		ln, err := g.Serve(vsockLocal(), func(net.Addr) (Handler, *ChannelOptions) {
			return activeRecorder{rec, chans}, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		peer := dialVsock(t, vsockPort(t, ln.Addr()))
		ch := <-chans
		// The peer never reads: its receive buffer (vsock's credit) fills, the
		// writes stay queued and the queue rises above the high watermark.
		const writes = 64
		var mu sync.Mutex
		completions := make([]int, writes)
		var failed []error
		var wg sync.WaitGroup
		wg.Add(writes)
		for i := 0; i < writes; i++ {
			ch.Write(make([]byte, 64<<10), func(err error) {
				mu.Lock()
				completions[i]++
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
				wg.Done()
			})
		}
		deadline := time.Now().Add(5 * time.Second)
		for !rec.has("writable=false") {
			if time.Now().After(deadline) {
				t.Fatal("4 MiB to a peer that never reads never took the queue above the high watermark")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := peer.Close(); err != nil {
			t.Fatalf("peer close: %v", err)
		}
		wait(t, ch.Closed(), "the channel closing after its peer closed")
		wg.Wait()
		for i, n := range completions {
			if n != 1 {
				t.Fatalf("write %d completed %d times", i, n)
			}
		}
		if len(failed) == 0 {
			t.Fatal("every write succeeded although the peer closed without reading")
		}
		if ch.Err() == nil {
			t.Error("the channel closed cleanly with writes failed")
		}
		t.Logf("%d of %d writes failed (first: %v); channel error: %v", len(failed), writes, failed[0], ch.Err())
	})
}

// activeRecorder is a recorder that hands its channel over once active, if
// there is room.
type activeRecorder struct {
	*recorder
	chans chan *Channel
}

func (a activeRecorder) OnActive(c *Channel) {
	a.recorder.OnActive(c)
	select {
	case a.chans <- c:
	default:
	}
}

// vsockListenerFD returns the descriptor behind l. mdlayher/vsock v1.4.0 does
// not expose it (a *vsock.Listener has no SyscallConn and no File), so it is
// found as the kernel knows it: the one listening AF_VSOCK socket of this
// process bound to l's address (a port is bound at most once per CID).
func vsockListenerFD(t *testing.T, l *vsock.Listener) int {
	t.Helper()
	want := l.Addr().(*vsock.Addr)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	found := -1
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Errors mean "not it": the directory's own descriptor is gone by now.
		if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_VSOCK {
			continue
		}
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if vm, ok := sa.(*unix.SockaddrVM); err == nil && ok && vm.CID == want.ContextID && vm.Port == want.Port {
			if found >= 0 {
				t.Fatalf("descriptors %d and %d both listen on %v", found, fd, want)
			}
			found = fd
		}
	}
	if found < 0 {
		t.Fatalf("no listening AF_VSOCK descriptor bound to %v in /proc/self/fd", want)
	}
	return found
}

// TestVsockAdoptListener: a listener made by mdlayher/vsock is adopted by dup
// (sockets.AdoptFD of its descriptor), the caller's copy is closed, and the
// loop serves the adopted copy: echo over several connections, then the
// listener closes and no descriptor is left.
func TestVsockAdoptListener(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	vl, err := vsock.ListenContextID(vsock.Local, 0, nil)
	if err != nil {
		t.Fatalf("vsock.ListenContextID CID 1: %v", err)
	}
	addr := vl.Addr().(*vsock.Addr)
	fd, err := sockets.AdoptFD(vsockListenerFD(t, vl), nil)
	if err != nil {
		vl.Close()
		t.Fatalf("adopt the *vsock.Listener's descriptor: %v", err)
	}
	if err := vl.Close(); err != nil { // the caller's copy; the loop's stays open
		t.Fatalf("closing the *vsock.Listener: %v", err)
	}
	g := NewGroup(2, nil)
	defer shutdown(t, g)
	ln, err := g.Next().Listen(fd, func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatalf("serving the adopted listener: %v", err)
	}
	if port := vsockPort(t, ln.Addr()); port != addr.Port {
		t.Fatalf("the adopted listener is on port %d, the *vsock.Listener was on %d", port, addr.Port)
	}
	echoOverMany(t, 4, func() (net.Conn, error) { return vsock.Dial(vsock.Local, addr.Port, nil) })
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, ln.Closed(), "the adopted listener closing")
	if _, err := vsock.Dial(vsock.Local, addr.Port, nil); err == nil {
		t.Fatal("dialed the adopted listener after it closed")
	}
}

// TestVsockAdoptConn: a *vsock.Conn accepted by mdlayher/vsock is adopted by
// dup, its caller's copy closed, and registered on the loop, which echoes.
func TestVsockAdoptConn(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	vl, err := vsock.ListenContextID(vsock.Local, 0, nil)
	if err != nil {
		t.Fatalf("vsock.ListenContextID CID 1: %v", err)
	}
	defer vl.Close()
	peer := dialVsock(t, vl.Addr().(*vsock.Addr).Port)
	accepted, err := vl.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	fd, err := sockets.Adopt(accepted.(*vsock.Conn), nil)
	accepted.Close()
	if err != nil {
		t.Fatalf("adopt the accepted *vsock.Conn: %v", err)
	}
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ch, err := g.Next().Register(fd, echo{}, nil)
	if err != nil {
		t.Fatalf("register the adopted connection: %v", err)
	}
	if err := echoOver(peer, 1); err != nil {
		t.Fatal(err)
	}
	if err := echoOnce(peer, "once more"); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	wait(t, ch.Closed(), "the adopted channel closing")
	peerClosed(t, peer)
}

// vsockConnPair is connPair over vsock: c1 from DialConn, c2 from ListenConn's
// Accept, on a group of two loops; stop closes everything and waits.
func vsockConnPair(t *testing.T) (c1, c2 net.Conn, stop func(), err error) {
	return connPairAt(t, vsockLocal(), func(a net.Addr) net.Addr { return vsockTarget(vsockPort(t, a)) })
}

// TestVsockConnConformance runs golang.org/x/net/nettest's net.Conn suite over
// vsock through the net.Conn adapter.
func TestVsockConnConformance(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) { return vsockConnPair(t) })
}

// TestVsockConnAddrs: the adapter's addresses over vsock are *vsock.Addr
// values that pair up: the acceptor's local address is the one dialed, and
// the dialer's local port is the acceptor's remote port. The dialer's local
// CID is what getsockname says of a socket connect bound implicitly:
// VMADDR_CID_ANY on Linux, although the peer sees CID 1; mdlayher/vsock
// reports the same, which the test checks too.
func TestVsockConnAddrs(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	c1, c2, stop, err := vsockConnPair(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addrs := map[string]net.Addr{"dialer local": c1.LocalAddr(), "dialer remote": c1.RemoteAddr(), "acceptor local": c2.LocalAddr(), "acceptor remote": c2.RemoteAddr()}
	va := map[string]*vsock.Addr{}
	for name, a := range addrs {
		v, ok := a.(*vsock.Addr)
		if !ok || a.Network() != "vsock" {
			t.Fatalf("%s address %#v, want a *vsock.Addr", name, a)
		}
		va[name] = v
	}
	if *va["dialer remote"] != *va["acceptor local"] || va["acceptor local"].ContextID != vsock.Local {
		t.Errorf("dialed %v, accepted on %v; want the same address on CID 1", va["dialer remote"], va["acceptor local"])
	}
	if va["acceptor remote"].ContextID != vsock.Local || va["acceptor remote"].Port != va["dialer local"].Port {
		t.Errorf("the acceptor's peer is %v, the dialer is bound to %v; want CID 1 and the same port", va["acceptor remote"], va["dialer local"])
	}
	// The dialer's local CID: as mdlayher/vsock sees its own dialed socket.
	ref := dialVsock(t, va["acceptor local"].Port)
	if want := ref.LocalAddr().(*vsock.Addr).ContextID; va["dialer local"].ContextID != want {
		t.Errorf("the dialer's local CID is %d, mdlayher/vsock reports %d for a socket dialed the same way", va["dialer local"].ContextID, want)
	}
	t.Logf("dialer %v -> %v; acceptor %v <- %v", c1.LocalAddr(), c1.RemoteAddr(), c2.LocalAddr(), c2.RemoteAddr())
}

// TestVsockConnHalfClosure: over the adapter, a peer's shutdown of its write
// side is io.EOF after every byte, and the Conn still writes afterwards.
func TestVsockConnHalfClosure(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ln, err := g.ListenConn(vsockLocal())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := dialVsock(t, vsockPort(t, ln.Addr()))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	peer.SetDeadline(time.Now().Add(10 * time.Second))
	want := bytes.Repeat([]byte("half "), 100_000)
	go func() {
		peer.Write(want)
		peer.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadAll: %d bytes, %v; want the %d sent, then EOF", len(got), err, len(want))
	}
	if _, err := c.Write([]byte("still open")); err != nil {
		t.Fatalf("write after the peer's EOF: %v", err)
	}
	buf := make([]byte, len("still open"))
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "still open" {
		t.Fatalf("peer read %q, %v after its shutdown(SHUT_WR)", buf, err)
	}
	c.Close()
	if n, err := peer.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("peer read after the Conn closed: %d, %v; want io.EOF", n, err)
	}
}

// TestVsockDialConnRefused: dialing a CID 1 port nobody listens on fails with
// a *net.OpError naming network vsock and the address.
func TestVsockDialConnRefused(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	// A port nobody listens on: listen, note the port, close.
	probe, err := vsock.ListenContextID(vsock.Local, 0, nil)
	if err != nil {
		t.Fatalf("vsock.ListenContextID CID 1: %v", err)
	}
	addr := vsockTarget(probe.Addr().(*vsock.Addr).Port)
	probe.Close()
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := g.DialConn(ctx, addr)
	if err == nil {
		c.Close()
		t.Fatalf("dialed %v, where nobody listens", addr)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Net != "vsock" || op.Addr != net.Addr(addr) || op.Timeout() {
		t.Fatalf("dial: %#v, want a *net.OpError dial vsock %v that is no timeout", err, addr)
	}
	if !errors.Is(err, unix.ECONNRESET) && !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("dial: %v, want the kernel's reset or refusal", err)
	}
	t.Logf("dial %v: %v", addr, err)
}
