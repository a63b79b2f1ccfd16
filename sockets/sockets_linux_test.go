package sockets_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

// socketpair returns two adopted ends of a Unix stream socketpair; the raw
// originals are closed.
func socketpair(t testing.TB, o *sockets.Options) (*sockets.FD, *sockets.FD) {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fds [2]*sockets.FD
	for i, raw := range p {
		fds[i], err = sockets.AdoptFD(raw, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Close(raw); err != nil {
			t.Fatal(err)
		}
	}
	return fds[0], fds[1]
}

// exercise runs the data path between two connected descriptors: a round trip
// each way with Write and Writev, a raw EAGAIN on an empty read, and
// shutdown(SHUT_WR) read by the peer as EOF.
func exercise(t *testing.T, a, b *sockets.FD) {
	t.Helper()
	buf := make([]byte, 64)
	if n, err := a.Read(buf); err != unix.EAGAIN || n != 0 {
		t.Fatalf("read of an empty socket: n=%d err=%#v, want 0 and the raw unix.EAGAIN", n, err)
	}
	if _, ok := func() (error, bool) { _, err := a.Read(buf); e, ok := err.(unix.Errno); return e, ok }(); !ok {
		t.Fatal("EAGAIN is not a bare unix.Errno")
	}
	writeAll(t, a, []byte("hello"))
	readFull(t, b, buf[:5])
	if string(buf[:5]) != "hello" {
		t.Fatalf("read %q, want hello", buf[:5])
	}
	n, err := b.Writev([][]byte{[]byte("one "), nil, []byte("two "), []byte("three")})
	if err != nil || n != 13 {
		t.Fatalf("writev: n=%d err=%v, want 13", n, err)
	}
	readFull(t, a, buf[:13])
	if string(buf[:13]) != "one two three" {
		t.Fatalf("read %q, want %q", buf[:13], "one two three")
	}
	if err := a.Shutdown(sockets.ShutWrite); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	waitFD(t, b, unix.POLLIN)
	if n, err := b.Read(buf); n != 0 || err != nil {
		t.Fatalf("read after the peer's shutdown: n=%d err=%v, want 0 and nil (EOF)", n, err)
	}
	// The other direction still works after a half-close.
	writeAll(t, b, []byte("after"))
	readFull(t, a, buf[:5])
	if string(buf[:5]) != "after" {
		t.Fatalf("read %q after half-close, want after", buf[:5])
	}
}

// assertFlags checks that fd is non-blocking and close-on-exec.
func assertFlags(t *testing.T, fd *sockets.FD) {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd.Fd()), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		t.Errorf("%v is blocking", fd)
	}
	fdfl, err := unix.FcntlInt(uintptr(fd.Fd()), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fdfl&unix.FD_CLOEXEC == 0 {
		t.Errorf("%v is not close-on-exec", fd)
	}
}

func TestSocketpair(t *testing.T) {
	checkFDs(t)
	a, b := socketpair(t, nil)
	defer mustClose(t, a)
	defer mustClose(t, b)
	assertFlags(t, a)
	assertFlags(t, b)
	exercise(t, a, b)
}

// connected returns a listener and both ends of one connection to laddr.
func connected(t *testing.T, laddr net.Addr, o *sockets.Options) (l, client, server *sockets.FD) {
	t.Helper()
	l, err := sockets.Listen(laddr, o)
	if err != nil {
		t.Fatalf("listen %v: %v", laddr, err)
	}
	addr, err := l.LocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	client, pending, err := sockets.Dial(addr, o)
	if err != nil {
		t.Fatalf("dial %v: %v", addr, err)
	}
	if err := finishConnect(t, client, pending); err != nil {
		t.Fatalf("connect %v: %v", addr, err)
	}
	server, peer := acceptOne(t, l)
	local, err := client.LocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	if _, isTCP := laddr.(*net.TCPAddr); isTCP && peer.String() != local.String() {
		t.Errorf("accepted peer %v, the client is bound to %v", peer, local)
	}
	remote, err := client.RemoteAddr()
	if err != nil {
		t.Fatal(err)
	}
	if remote.String() != addr.String() {
		t.Errorf("client's remote %v, listener's address %v", remote, addr)
	}
	for _, fd := range []*sockets.FD{l, client, server} {
		assertFlags(t, fd)
	}
	return l, client, server
}

func TestTCP(t *testing.T) {
	for _, tc := range []struct {
		name string
		ip   net.IP
	}{
		{"v4", net.IPv4(127, 0, 0, 1)},
		{"v6", net.IPv6loopback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFDs(t)
			l, c, s := connected(t, &net.TCPAddr{IP: tc.ip}, nil)
			defer mustClose(t, l)
			defer mustClose(t, c)
			defer mustClose(t, s)
			la, _ := l.LocalAddr()
			if got := la.(*net.TCPAddr); !got.IP.Equal(tc.ip) || got.Port == 0 {
				t.Errorf("listener bound to %v, want %v and a port", got, tc.ip)
			}
			// The accepted socket inherited TCP_NODELAY from the listener.
			if v, err := unix.GetsockoptInt(s.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
				t.Errorf("accepted socket TCP_NODELAY = %d, %v; want on", v, err)
			}
			if v, err := unix.GetsockoptInt(l.Fd(), unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v == 0 {
				t.Errorf("listener SO_REUSEADDR = %d, %v; want on", v, err)
			}
			exercise(t, c, s)
		})
	}
}

func TestTCPDualStack(t *testing.T) {
	checkFDs(t)
	l, err := sockets.Listen(&net.TCPAddr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, l)
	la, _ := l.LocalAddr()
	port := la.(*net.TCPAddr).Port
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		c, pending, err := sockets.Dial(&net.TCPAddr{IP: ip, Port: port}, nil)
		if err != nil {
			t.Fatalf("dial %v: %v", ip, err)
		}
		if err := finishConnect(t, c, pending); err != nil {
			t.Fatalf("connect %v: %v", ip, err)
		}
		s, _ := acceptOne(t, l)
		exercise(t, c, s)
		mustClose(t, c)
		mustClose(t, s)
	}
}

func TestTCPKeepAlive(t *testing.T) {
	checkFDs(t)
	o := &sockets.Options{KeepAlive: true}
	l, c, s := connected(t, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, o)
	defer mustClose(t, l)
	defer mustClose(t, c)
	defer mustClose(t, s)
	for _, fd := range []*sockets.FD{c, s} {
		if v, err := unix.GetsockoptInt(fd.Fd(), unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || v == 0 {
			t.Errorf("%v SO_KEEPALIVE = %d, %v; want on", fd, v, err)
		}
		if v, err := unix.GetsockoptInt(fd.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v != 0 {
			t.Errorf("%v TCP_NODELAY = %d, %v; want off (not asked for)", fd, v, err)
		}
	}
	if err := c.SetNoDelay(true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKeepAlive(false); err != nil {
		t.Fatal(err)
	}
	if v, _ := unix.GetsockoptInt(c.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY); v == 0 {
		t.Error("SetNoDelay(true) did not set TCP_NODELAY")
	}
	if v, _ := unix.GetsockoptInt(c.Fd(), unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 0 {
		t.Error("SetKeepAlive(false) did not clear SO_KEEPALIVE")
	}
}

func TestTCPConnectRefused(t *testing.T) {
	checkFDs(t)
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		// A port that was free a moment ago: listen, note it, close.
		l, err := sockets.Listen(&net.TCPAddr{IP: ip}, nil)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := l.LocalAddr()
		mustClose(t, l)

		c, pending, err := sockets.Dial(addr, nil)
		if err != nil {
			// Refused at once: the error names connect and carries the errno.
			if !isSyscallError(err, "connect", syscall.ECONNREFUSED) {
				t.Fatalf("dial %v: %v, want connect: ECONNREFUSED", addr, err)
			}
			t.Logf("dial %v: refused at once", addr)
			continue
		}
		if !pending {
			t.Fatalf("dial %v: connected to a closed port", addr)
		}
		t.Logf("dial %v: pending", addr)
		if err := finishConnect(t, c, pending); err != unix.ECONNREFUSED {
			t.Errorf("ConnectResult from %v = %#v, want the raw unix.ECONNREFUSED", addr, err)
		}
		mustClose(t, c)
	}
}

func TestUnix(t *testing.T) {
	checkFDs(t)
	path := filepath.Join(t.TempDir(), "s")
	l, c, s := connected(t, &net.UnixAddr{Name: path, Net: "unix"}, nil)
	defer mustClose(t, c)
	defer mustClose(t, s)
	exercise(t, c, s)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("listener's path: %v", err)
	}
	mustClose(t, l)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close the listener's path still exists (stat: %v)", err)
	}
}

func TestUnixAbstract(t *testing.T) {
	checkFDs(t)
	name := "@fsmkernel-sockets-test-" + t.Name()
	l, c, s := connected(t, &net.UnixAddr{Name: name, Net: "unix"}, nil)
	defer mustClose(t, l)
	defer mustClose(t, c)
	defer mustClose(t, s)
	exercise(t, c, s)
}

func TestUnixPathInUse(t *testing.T) {
	checkFDs(t)
	path := filepath.Join(t.TempDir(), "taken")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCounting()
	_, err := sockets.Listen(&net.UnixAddr{Name: path, Net: "unix"}, c.options())
	if !isSyscallError(err, "bind", syscall.EADDRINUSE) {
		t.Fatalf("listen on an existing path: %v, want bind: EADDRINUSE", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("a failed Listen removed a file it did not create: %v", err)
	}
	if c.calls["unlink"] != 0 {
		t.Errorf("unlink called %d times, want 0", c.calls["unlink"])
	}
}

func TestUnixConnectErrors(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	_, _, err := sockets.Dial(&net.UnixAddr{Name: filepath.Join(dir, "none"), Net: "unix"}, nil)
	if !isSyscallError(err, "connect", syscall.ENOENT) {
		t.Errorf("dial a missing path: %v, want connect: ENOENT", err)
	}
	// A socket file with no listener behind it: bind without listen.
	path := filepath.Join(dir, "bound")
	raw, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(raw)
	if err := unix.Bind(raw, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	_, _, err = sockets.Dial(&net.UnixAddr{Name: path, Net: "unix"}, nil)
	if !isSyscallError(err, "connect", syscall.ECONNREFUSED) {
		t.Errorf("dial a path with no listener: %v, want connect: ECONNREFUSED", err)
	}
}

func TestListenAddressInUse(t *testing.T) {
	checkFDs(t)
	l, err := sockets.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, l)
	addr, _ := l.LocalAddr()
	_, err = sockets.Listen(addr, nil)
	if !isSyscallError(err, "bind", syscall.EADDRINUSE) {
		t.Errorf("second listen on %v: %v, want bind: EADDRINUSE", addr, err)
	}
}

func TestUnsupportedAddress(t *testing.T) {
	checkFDs(t)
	if _, err := sockets.Listen(&net.UDPAddr{}, nil); err == nil {
		t.Error("Listen accepted a UDP address")
	}
	if _, _, err := sockets.Dial(&net.UnixAddr{Name: "x", Net: "unixgram"}, nil); err == nil {
		t.Error("Dial accepted a unixgram address")
	}
	if _, _, err := sockets.Dial(&net.TCPAddr{Port: 1}, nil); err == nil {
		t.Error("Dial accepted a TCP address without an IP")
	}
}

func TestCloseOnce(t *testing.T) {
	checkFDs(t)
	c := newCounting()
	a, b := socketpair(t, c.options())
	defer mustClose(t, b)
	num := a.Fd()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	before := c.total()
	err := a.Close()
	if !errors.Is(err, sockets.ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed (and net.ErrClosed)", err)
	}
	if !a.Closed() || a.String() != "fd "+strconv.Itoa(num)+" (closed)" {
		t.Errorf("after Close: Closed()=%v String()=%q", a.Closed(), a.String())
	}
	// Every operation is refused without a system call.
	buf := make([]byte, 1)
	if _, err := a.Read(buf); err != sockets.ErrClosed {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := a.Write(buf); err != sockets.ErrClosed {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := a.Writev([][]byte{buf}); err != sockets.ErrClosed {
		t.Errorf("Writev after Close: %v", err)
	}
	if _, _, err := a.Accept(); err != sockets.ErrClosed {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := a.ConnectResult(); err != sockets.ErrClosed {
		t.Errorf("ConnectResult after Close: %v", err)
	}
	if err := a.Shutdown(sockets.ShutBoth); err != sockets.ErrClosed {
		t.Errorf("Shutdown after Close: %v", err)
	}
	if _, err := a.LocalAddr(); err != sockets.ErrClosed {
		t.Errorf("LocalAddr after Close: %v", err)
	}
	if _, err := a.RemoteAddr(); err != sockets.ErrClosed {
		t.Errorf("RemoteAddr after Close: %v", err)
	}
	if err := a.SetNoDelay(true); err != sockets.ErrClosed {
		t.Errorf("SetNoDelay after Close: %v", err)
	}
	if a.Forget() {
		t.Error("Forget after Close reported the FD open")
	}
	if after := c.total(); after != before {
		t.Errorf("%d system calls after Close, want none: %v", after-before, c.calls)
	}
	if c.closes[num] != 1 {
		t.Errorf("close(%d) called %d times, want 1", num, c.closes[num])
	}
}

func TestCloseEINTRCountsAsClosed(t *testing.T) {
	checkFDs(t)
	c := newCounting()
	a, b := socketpair(t, c.options())
	c.closeResult = func(int) error { return unix.EINTR }
	num := a.Fd()
	if err := a.Close(); err != nil {
		t.Errorf("Close with EINTR: %v, want nil (closed)", err)
	}
	if err := a.Close(); !errors.Is(err, sockets.ErrClosed) {
		t.Errorf("Close after EINTR: %v, want ErrClosed", err)
	}
	if c.closes[num] != 1 {
		t.Errorf("close(%d) called %d times, want 1", num, c.closes[num])
	}
	c.closeResult = nil
	mustClose(t, b)
}

func TestCloseErrorStillClosed(t *testing.T) {
	checkFDs(t)
	c := newCounting()
	a, b := socketpair(t, c.options())
	defer mustClose(t, b)
	c.closeResult = func(int) error { return unix.EIO }
	err := a.Close()
	c.closeResult = nil
	if !isSyscallError(err, "close", syscall.EIO) {
		t.Errorf("Close: %v, want close: EIO", err)
	}
	if err := a.Close(); !errors.Is(err, sockets.ErrClosed) {
		t.Errorf("Close after a failed close: %v, want ErrClosed", err)
	}
	if c.closes[a.Fd()] != 1 {
		t.Errorf("close called %d times, want 1", c.closes[a.Fd()])
	}
}

// TestForgetAfterEBADF closes the number behind an FD's back, as a VMM
// revoking a descriptor or a second owner would: the next read reports the
// raw EBADF, and Forget ends the FD without closing the number again.
func TestForgetAfterEBADF(t *testing.T) {
	checkFDs(t)
	c := newCounting()
	a, b := socketpair(t, c.options())
	defer mustClose(t, b)
	if err := unix.Close(a.Fd()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(make([]byte, 1)); err != unix.EBADF {
		t.Fatalf("read of an invalidated descriptor: %#v, want the raw unix.EBADF", err)
	}
	if !a.Forget() {
		t.Error("Forget reported the FD already closed")
	}
	if a.Forget() {
		t.Error("second Forget reported the FD open")
	}
	if err := a.Close(); !errors.Is(err, sockets.ErrClosed) {
		t.Errorf("Close after Forget: %v, want ErrClosed", err)
	}
	if c.closes[a.Fd()] != 0 {
		t.Errorf("close(%d) called %d times after Forget, want 0", a.Fd(), c.closes[a.Fd()])
	}
}

// TestConnectResultSpurious injects SO_ERROR 0 with no peer yet: writable
// readiness while the connect is still in progress.
func TestConnectResultSpurious(t *testing.T) {
	checkFDs(t)
	c := newCounting()
	a, b := socketpair(t, c.options())
	defer mustClose(t, a)
	defer mustClose(t, b)
	c.getsockoptResult = func(int, sockets.SockOpt) (int, error, bool) { return 0, nil, true }
	c.getpeernameResult = func(int) (net.Addr, error, bool) { return nil, unix.ENOTCONN, true }
	if err := a.ConnectResult(); err != unix.ENOTCONN {
		t.Errorf("ConnectResult with SO_ERROR 0 and no peer: %#v, want the raw unix.ENOTCONN", err)
	}
	c.getsockoptResult = func(int, sockets.SockOpt) (int, error, bool) { return int(unix.ETIMEDOUT), nil, true }
	if err := a.ConnectResult(); err != unix.ETIMEDOUT {
		t.Errorf("ConnectResult with SO_ERROR ETIMEDOUT: %#v, want the raw unix.ETIMEDOUT", err)
	}
	c.getsockoptResult = func(int, sockets.SockOpt) (int, error, bool) { return 0, unix.EBADF, true }
	if err := a.ConnectResult(); err != unix.EBADF {
		t.Errorf("ConnectResult whose getsockopt fails: %#v, want the raw unix.EBADF", err)
	}
	c.getsockoptResult, c.getpeernameResult = nil, nil
	if err := a.ConnectResult(); err != nil {
		t.Errorf("ConnectResult of a connected socketpair: %v", err)
	}
}

func TestOptionsSyscallsUsed(t *testing.T) {
	checkFDs(t)
	c := newCounting()
	l, cl, s := connected(t, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, c.options())
	for _, fd := range []*sockets.FD{l, cl, s} {
		mustClose(t, fd)
	}
	for _, call := range []string{"socket", "bind", "listen", "connect", "accept", "close"} {
		if c.calls[call] == 0 {
			t.Errorf("%s did not go through Options.Syscalls: %v", call, c.calls)
		}
	}
	if c.calls["close"] != 3 {
		t.Errorf("close called %d times for 3 descriptors", c.calls["close"])
	}
}

// TestFailedSetupClosesSocket injects a bind failure: the socket Listen opened
// is closed, once.
func TestFailedSetupClosesSocket(t *testing.T) {
	checkFDs(t)
	c := failBind{newCounting()}
	o := sockets.DefaultOptions()
	o.Syscalls = c
	_, err := sockets.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, o)
	if !isSyscallError(err, "bind", syscall.EADDRNOTAVAIL) {
		t.Fatalf("listen with an injected bind failure: %v", err)
	}
	if c.calls["socket"] != 1 || c.calls["close"] != 1 {
		t.Errorf("socket %d, close %d; want 1 each", c.calls["socket"], c.calls["close"])
	}
}

type failBind struct{ *counting }

func (failBind) Bind(int, net.Addr) error { return unix.EADDRNOTAVAIL }

func TestWritevMaxIovecs(t *testing.T) {
	checkFDs(t)
	a, b := socketpair(t, nil)
	defer mustClose(t, a)
	defer mustClose(t, b)
	bufs := make([][]byte, sockets.MaxIovecs+10)
	for i := range bufs {
		bufs[i] = []byte{byte(i)}
	}
	n, err := a.Writev(bufs)
	if err != nil || n != sockets.MaxIovecs {
		t.Fatalf("writev of %d one-byte buffers: n=%d err=%v, want %d", len(bufs), n, err, sockets.MaxIovecs)
	}
	got := make([]byte, n)
	readFull(t, b, got)
	for i, c := range got {
		if c != byte(i) {
			t.Fatalf("byte %d = %d, want %d", i, c, i)
		}
	}
	if n, err := a.Writev(nil); n != 0 || err != nil {
		t.Errorf("writev of nothing: n=%d err=%v", n, err)
	}
}
