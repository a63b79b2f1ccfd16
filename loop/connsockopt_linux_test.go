package loop

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// sockopt reads an int socket option of descriptor fd.
func sockopt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d, %d): %v", fd, level, opt, err)
	}
	return v
}

// netSockopt reads an int socket option of a socket of package net.
func netSockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	if err := rc.Control(func(fd uintptr) { v = sockopt(t, int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestConnTCPOptionsAsNet: the adapter's TCP sockets have the options package
// net gives its own, which code written against net.Conn and net.Listener
// counts on: TCP_NODELAY on a dialed and on an accepted connection (without
// it, a request written in more than one segment waits out the peer's
// delayed ACK: 40ms a request), and SO_REUSEADDR on a listener (without it a
// server cannot listen again on its port while a connection it closed first
// is in TIME_WAIT). Package sockets' DefaultOptions has both on.
func TestConnTCPOptionsAsNet(t *testing.T) {
	noLeaks(t)
	checkFDs(t)
	ref := newEndPair(t, "tcp", viaNet, viaNet)
	want := map[string]int{
		"dialed TCP_NODELAY":    netSockopt(t, ref.client.(*net.TCPConn), unix.IPPROTO_TCP, unix.TCP_NODELAY),
		"accepted TCP_NODELAY":  netSockopt(t, ref.server.(*net.TCPConn), unix.IPPROTO_TCP, unix.TCP_NODELAY),
		"listener SO_REUSEADDR": netSockopt(t, ref.listener.(*net.TCPListener), unix.SOL_SOCKET, unix.SO_REUSEADDR),
	}
	p := newEndPair(t, "tcp", viaLoop, viaLoop)
	got := map[string]int{
		"dialed TCP_NODELAY":    sockopt(t, ChannelFD(p.client.(*Conn).Channel()), unix.IPPROTO_TCP, unix.TCP_NODELAY),
		"accepted TCP_NODELAY":  sockopt(t, ChannelFD(p.server.(*Conn).Channel()), unix.IPPROTO_TCP, unix.TCP_NODELAY),
		"listener SO_REUSEADDR": sockopt(t, p.listener.(*ConnListener).Listener().reg.fd.Fd(), unix.SOL_SOCKET, unix.SO_REUSEADDR),
	}
	for _, name := range []string{"dialed TCP_NODELAY", "accepted TCP_NODELAY", "listener SO_REUSEADDR"} {
		if w := want[name]; w == 0 {
			t.Fatalf("package net's %s is off", name)
		}
		if got[name] == 0 {
			t.Errorf("%s is off; package net's is on", name)
		}
	}
}
