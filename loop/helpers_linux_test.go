package loop

import (
	"errors"
	"net"
	"testing"
	"time"
)

// Helpers shared by the tests of package loop and, through export_linux_test.go,
// by those of package loop_test (the tests that drive the loop through
// looptest's injector).

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// echoClients runs n echo clients in parallel against addr.
func echoClients(t *testing.T, addr net.Addr, n int) {
	t.Helper()
	echoOverMany(t, n, func() (net.Conn, error) { return net.Dial(addr.Network(), addr.String()) })
}

// activeEcho echoes and hands each channel out when it becomes active.
type activeEcho struct {
	echo
	active chan *Channel
}

func (h activeEcho) OnActive(c *Channel) { h.active <- c }

// serveActive serves activeEcho on g; the channels arrive on the returned chan.
func serveActive(t *testing.T, g *Group) (*Listener, chan *Channel) {
	t.Helper()
	active := make(chan *Channel, 16)
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) { return activeEcho{active: active}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ln, active
}

// connect dials addr and returns the client and its server-side channel.
func connect(t *testing.T, addr net.Addr, active chan *Channel) (net.Conn, *Channel) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case ch := <-active:
		return c, ch
	case <-time.After(5 * time.Second):
		t.Fatal("the connection never became active")
	}
	return nil, nil
}

// peerClosed waits until c reads EOF or an error other than its deadline.
func peerClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server never closed the connection")
		}
		if err != nil {
			return
		}
	}
}

func waitData(t *testing.T, rec *recorder, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		got := rec.data.String()
		rec.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %q, want %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
