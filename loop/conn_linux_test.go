package loop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// connAddr is a fresh address to listen on for network "tcp" or "unix".
func connAddr(t *testing.T, network string) net.Addr {
	if network == "unix" {
		return &net.UnixAddr{Net: "unix", Name: filepath.Join(t.TempDir(), "conn.sock")}
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
}

// connPair returns a connected pair on a group of two loops: c1 dialed with
// DialConn, c2 accepted from ListenConn. stop closes both, the listener and the
// group, and waits for every descriptor to be closed.
func connPair(t *testing.T, network string) (c1, c2 net.Conn, stop func(), err error) {
	return connPairAt(t, connAddr(t, network), func(a net.Addr) net.Addr { return a })
}

// connPairAt is connPair listening on laddr and dialing target(the listener's
// address).
func connPairAt(t *testing.T, laddr net.Addr, target func(net.Addr) net.Addr) (c1, c2 net.Conn, stop func(), err error) {
	g := NewGroup(2, nil)
	fail := func(err error) (net.Conn, net.Conn, func(), error) {
		g.Close()
		return nil, nil, nil, err
	}
	ln, err := g.ListenConn(laddr)
	if err != nil {
		return fail(err)
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	res := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		res <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err = g.DialConn(ctx, target(ln.Addr()))
	if err != nil {
		ln.Close()
		<-res
		return fail(err)
	}
	a := <-res
	if a.err != nil {
		c1.Close()
		ln.Close()
		return fail(a.err)
	}
	c2 = a.c
	stop = func() {
		c1.Close()
		c2.Close()
		ln.Close()
		for _, ch := range []<-chan struct{}{c1.(*Conn).Channel().Closed(), c2.(*Conn).Channel().Closed(), ln.(*ConnListener).Listener().Closed()} {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Error("a channel or the listener did not close within 5s")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	return c1, c2, stop, nil
}

// TestConnConformance runs golang.org/x/net/nettest's net.Conn suite.
func TestConnConformance(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			checkFDs(t)
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) { return connPair(t, network) })
		})
	}
}

// withPair runs f on a fresh connected pair over TCP and Unix.
func withPair(t *testing.T, f func(t *testing.T, c1, c2 net.Conn)) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			checkFDs(t)
			c1, c2, stop, err := connPair(t, network)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			f(t, c1, c2)
		})
	}
}

func wantTimeout(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || !oe.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) || oe.Op != op {
		t.Fatalf("%s: %v (%T), want a *net.OpError %q wrapping os.ErrDeadlineExceeded", op, err, err, op)
	}
}

func wantClosed(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, net.ErrClosed) || oe.Op != op {
		t.Fatalf("%s: %v (%T), want a *net.OpError %q wrapping net.ErrClosed", op, err, err, op)
	}
}

// TestConnDeadlineMovedWhileBlocked: a Read already waiting obeys a deadline
// extended, cleared and then moved into the past.
func TestConnDeadlineMovedWhileBlocked(t *testing.T) {
	withPair(t, func(t *testing.T, c1, c2 net.Conn) {
		c1.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		res := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := c1.Read(make([]byte, 8))
			res <- err
		}()
		time.Sleep(10 * time.Millisecond)
		c1.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // extend
		time.Sleep(100 * time.Millisecond)
		select {
		case err := <-res:
			t.Fatalf("Read returned %v before the extended deadline", err)
		default:
		}
		c1.SetReadDeadline(time.Time{}) // clear
		time.Sleep(400 * time.Millisecond)
		select {
		case err := <-res:
			t.Fatalf("Read returned %v after its deadline was cleared", err)
		default:
		}
		c1.SetReadDeadline(time.Now().Add(-time.Second)) // past: now
		select {
		case err := <-res:
			wantTimeout(t, err, "read")
		case <-time.After(5 * time.Second):
			t.Fatal("a past deadline did not end the waiting Read")
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Fatalf("Read ended after %v", d)
		}
		// After a timeout the deadline can be refreshed and the Conn still works.
		c1.SetReadDeadline(time.Time{})
		c2.Write([]byte("after"))
		got := make([]byte, 5)
		if _, err := io.ReadFull(c1, got); err != nil || string(got) != "after" {
			t.Fatalf("read after a timeout: %q, %v", got, err)
		}
	})
}

// TestConnCloseUnblocks: Close ends a waiting Read and a waiting Write with
// net.ErrClosed, and later calls fail the same way.
func TestConnCloseUnblocks(t *testing.T) {
	withPair(t, func(t *testing.T, c1, c2 net.Conn) {
		rres := make(chan error, 1)
		go func() {
			_, err := c1.Read(make([]byte, 8))
			rres <- err
		}()
		wres := make(chan error, 1)
		go func() {
			// Nobody reads c2: the kernel buffers fill and a Write waits.
			p := make([]byte, 1<<20)
			for {
				if _, err := c1.Write(p); err != nil {
					wres <- err
					return
				}
			}
		}()
		time.Sleep(100 * time.Millisecond)
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			ch chan error
			op string
		}{{rres, "read"}, {wres, "write"}} {
			select {
			case err := <-r.ch:
				wantClosed(t, err, r.op)
			case <-time.After(5 * time.Second):
				t.Fatalf("Close did not end the waiting %s", r.op)
			}
		}
		_, err := c1.Read(make([]byte, 1))
		wantClosed(t, err, "read")
		_, err = c1.Write([]byte{1})
		wantClosed(t, err, "write")
		if err := c1.Close(); err == nil {
			t.Fatal("a second Close succeeded")
		}
	})
}

// TestConnEOFAfterData: the peer's close is io.EOF after every byte it sent,
// over several read cycles.
func TestConnEOFAfterData(t *testing.T) {
	withPair(t, func(t *testing.T, c1, c2 net.Conn) {
		want := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB: several read cycles
		go func() {
			c1.Write(want)
			c1.Close()
		}()
		got, err := io.ReadAll(c2)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, want the %d sent", len(got), len(want))
		}
		if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read after EOF: %v, want io.EOF", err)
		}
	})
}

func TestConnAddrs(t *testing.T) {
	withPair(t, func(t *testing.T, c1, c2 net.Conn) {
		if c1.LocalAddr() == nil || c1.RemoteAddr() == nil || c2.LocalAddr() == nil || c2.RemoteAddr() == nil {
			t.Fatalf("addresses: %v %v %v %v", c1.LocalAddr(), c1.RemoteAddr(), c2.LocalAddr(), c2.RemoteAddr())
		}
		if c1.RemoteAddr().String() != c2.LocalAddr().String() {
			t.Fatalf("dialed %v, accepted on %v", c1.RemoteAddr(), c2.LocalAddr())
		}
		if c1.LocalAddr().Network() != c2.RemoteAddr().Network() {
			t.Fatalf("networks %v and %v", c1.LocalAddr().Network(), c2.RemoteAddr().Network())
		}
	})
}

func TestConnListenerClose(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ln, err := g.ListenConn(connAddr(t, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		res <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-res:
		wantClosed(t, err, "accept")
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the waiting Accept")
	}
	wait(t, ln.(*ConnListener).Listener().Closed(), "listener closed")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := g.DialConn(ctx, ln.Addr()); err == nil {
		t.Fatal("dialed a closed listener")
	} else if _, ok := err.(*net.OpError); !ok {
		t.Fatalf("dial error %T, want *net.OpError", err)
	}
}

// TestDialConnErrors: a refused and a timed-out dial are *net.OpError values
// that name the network and the address; the timeout says Timeout().
func TestDialConnErrors(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run("refused/"+network, func(t *testing.T) {
			checkFDs(t)
			g := NewGroup(1, nil)
			defer shutdown(t, g)
			var addr net.Addr = &net.UnixAddr{Net: "unix", Name: filepath.Join(t.TempDir(), "nobody.sock")}
			if network == "tcp" {
				probe, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr = probe.Addr()
				probe.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := g.DialConn(ctx, addr)
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" || op.Net != network || op.Addr != addr || op.Timeout() {
				t.Fatalf("dial: %#v, want a *net.OpError dial %s %v", err, network, addr)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(1, &Options{Syscalls: neverConnects{sockets.System()}})
		defer shutdown(t, g)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := g.DialConn(ctx, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
		wantTimeout(t, err, "dial")
	})
}
