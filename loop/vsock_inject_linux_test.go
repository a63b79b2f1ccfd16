package loop_test

import (
	"net"
	"testing"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// The vsock tests that invalidate descriptors through looptest's injector; the
// others are in vsock_linux_test.go, and `make test-vsock` runs both.

// TestVsockOutOfBandClose: a vsock channel's descriptor is invalidated outside
// the loop, as a VMM revoking vsock descriptors or a second owner would. Closed
// behind its back, the next write finds EBADF and, under the contain policy,
// the channel fails with EBADF, the number is never touched again (no second
// close: it may be someone else's now), and the loop serves on. Replaced by
// /dev/null (dup2), the number stays valid: the channel reads EOF and closes
// it once.
func TestVsockOutOfBandClose(t *testing.T) {
	loop.RequireVsockLoopback(t)
	t.Run("closed", func(t *testing.T) {
		loop.CheckFDs(t)
		inj, g, port, peer, ch := vsockInjectedChannel(t, 8)
		if err := inj.CloseBehind(loop.ChannelFD(ch)); err != nil {
			t.Fatal(err)
		}
		// The write finds EBADF, unless a readiness event the loop took before
		// the close found it first; either way the write fails.
		loop.WantContainedEBADF(t, g.Loops()[0], ch)
		noMisuse(t, inj)
		loop.PeerClosed(t, peer) // the close behind the loop was the socket's last
		loop.EchoOverMany(t, 2, func() (net.Conn, error) { return vsock.Dial(vsock.Local, port, nil) })
		noMisuse(t, inj)
	})
	t.Run("dup2 /dev/null", func(t *testing.T) {
		loop.CheckFDs(t)
		inj, _, port, peer, ch := vsockInjectedChannel(t, 9)
		nullNum := loop.ChannelFD(ch)
		if err := inj.Dup2DevNull(nullNum); err != nil {
			t.Fatal(err)
		}
		ch.Write([]byte("into the void"), nil)
		peer.Write([]byte("x"))
		loop.WaitFor(t, ch.Closed(), "the channel whose number was dup2'd over closing")
		loop.PeerClosed(t, peer) // dup2 closed the socket's last descriptor
		// The DEL before close(2) answered EPERM: the number names /dev/null,
		// not the socket registered, so the channel abandoned it (D2).
		if _, err := unix.FcntlInt(uintptr(nullNum), unix.F_GETFD, 0); err != nil {
			t.Errorf("the /dev/null put at fd %d was closed by the channel: %v", nullNum, err)
		}
		unix.Close(nullNum) // the test put it there
		noMisuse(t, inj)
		loop.EchoOverMany(t, 2, func() (net.Conn, error) { return vsock.Dial(vsock.Local, port, nil) })
	})
}

// vsockInjectedChannel serves echo over vsock on a one-loop group whose system
// calls go through an injector seeded with seed, dials it once, and returns
// the injector, the group (shut down when the test ends), the port, the
// dialing peer and the server's channel of that connection.
func vsockInjectedChannel(t *testing.T, seed uint64) (*looptest.Injector, *loop.Group, uint32, net.Conn, *loop.Channel) {
	t.Helper()
	inj := looptest.NewInjector(seed)
	g := loop.NewGroup(1, inj.Options(nil))
	t.Cleanup(func() { loop.ShutdownGroup(t, g) })
	chans := make(chan *loop.Channel, 16)
	ln, err := g.Serve(loop.VsockLocal(), func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return loop.NewActiveEcho(chans), nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	port := loop.VsockPort(t, ln.Addr())
	peer := loop.DialVsock(t, port)
	return inj, g, port, peer, <-chans
}
