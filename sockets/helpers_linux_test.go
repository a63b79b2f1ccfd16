package sockets_test

import (
	"errors"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The Go runtime opens its poller's descriptors (epoll, eventfd) on the
	// first use of package net or os pipes and keeps them; open them now so
	// that checkFDs sees only what a test itself opened.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = l.Close()
	}
	os.Exit(m.Run())
}

// openFDs lists the process's open descriptors (/proc/self/fd), without the
// one reading the directory uses.
func openFDs(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	self := f.Fd()
	out := names[:0]
	for _, n := range names {
		if n != strconv.Itoa(int(self)) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i])
		b, _ := strconv.Atoi(out[j])
		return a < b
	})
	return out
}

// checkFDs fails the test if, when it ends, the process does not have exactly
// the descriptors it had when checkFDs was called. Call it first, so its
// cleanup runs after every other.
func checkFDs(t *testing.T) {
	t.Helper()
	start := openFDs(t)
	t.Cleanup(func() {
		end := openFDs(t)
		if strings.Join(start, ",") != strings.Join(end, ",") {
			t.Errorf("descriptors: %d open at start %v, %d at end %v", len(start), start, len(end), end)
		}
	})
}

// waitFD waits until fd is ready for events (unix.POLLIN, unix.POLLOUT) and
// returns the events the kernel reported.
func waitFD(t *testing.T, fd *sockets.FD, events int16) int16 {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd.Fd()), Events: events}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := unix.Poll(pfd, 100)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll %v: %v", fd, err)
		}
		if n > 0 {
			return pfd[0].Revents
		}
		if time.Now().After(deadline) {
			t.Fatalf("poll %v: not ready for %#x after 5s", fd, events)
		}
	}
}

// mustClose closes fd and fails the test on error.
func mustClose(t *testing.T, fd *sockets.FD) {
	t.Helper()
	if err := fd.Close(); err != nil {
		t.Errorf("close %v: %v", fd, err)
	}
}

// readFull reads exactly len(p) bytes from fd, waiting for readability.
func readFull(t *testing.T, fd *sockets.FD, p []byte) {
	t.Helper()
	for got := 0; got < len(p); {
		n, err := fd.Read(p[got:])
		switch {
		case err == unix.EAGAIN:
			waitFD(t, fd, unix.POLLIN)
		case err != nil:
			t.Fatalf("read %v: %v", fd, err)
		case n == 0:
			t.Fatalf("read %v: EOF after %d of %d bytes", fd, got, len(p))
		default:
			got += n
		}
	}
}

// writeAll writes p to fd, waiting for writability.
func writeAll(t *testing.T, fd *sockets.FD, p []byte) {
	t.Helper()
	for len(p) > 0 {
		n, err := fd.Write(p)
		switch {
		case err == unix.EAGAIN:
			waitFD(t, fd, unix.POLLOUT)
		case err != nil:
			t.Fatalf("write %v: %v", fd, err)
		default:
			p = p[n:]
		}
	}
}

// acceptOne waits for and accepts one connection.
func acceptOne(t *testing.T, l *sockets.FD) (*sockets.FD, net.Addr) {
	t.Helper()
	for {
		c, peer, err := l.Accept()
		if err == unix.EAGAIN {
			waitFD(t, l, unix.POLLIN)
			continue
		}
		if err != nil {
			t.Fatalf("accept %v: %v", l, err)
		}
		return c, peer
	}
}

// finishConnect waits for a pending connect and returns ConnectResult.
func finishConnect(t *testing.T, c *sockets.FD, pending bool) error {
	t.Helper()
	if !pending {
		return nil
	}
	for {
		waitFD(t, c, unix.POLLOUT)
		err := c.ConnectResult()
		if err != unix.ENOTCONN {
			return err
		}
	}
}

// counting wraps real system calls and counts them, by name and, for close,
// by descriptor number. Fields set to non-nil replace a call's result.
type counting struct {
	sockets.Syscalls
	mu     sync.Mutex
	calls  map[string]int
	closes map[int]int

	closeResult       func(fd int) error // after the real close
	getsockoptResult  func(fd int, opt sockets.SockOpt) (int, error, bool)
	getpeernameResult func(fd int) (net.Addr, error, bool)
}

func newCounting() *counting {
	return &counting{Syscalls: sockets.System(), calls: map[string]int{}, closes: map[int]int{}}
}

func (c *counting) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *counting) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c *counting) options() *sockets.Options {
	o := sockets.DefaultOptions()
	o.Syscalls = c
	return o
}

func (c *counting) Socket(f sockets.Family) (int, error) {
	c.count("socket")
	return c.Syscalls.Socket(f)
}
func (c *counting) Bind(fd int, a net.Addr) error { c.count("bind"); return c.Syscalls.Bind(fd, a) }
func (c *counting) Listen(fd, b int) error        { c.count("listen"); return c.Syscalls.Listen(fd, b) }
func (c *counting) Connect(fd int, a net.Addr) error {
	c.count("connect")
	return c.Syscalls.Connect(fd, a)
}
func (c *counting) Read(fd int, p []byte) (int, error) {
	c.count("read")
	return c.Syscalls.Read(fd, p)
}
func (c *counting) Write(fd int, p []byte) (int, error) {
	c.count("write")
	return c.Syscalls.Write(fd, p)
}
func (c *counting) Unlink(path string) error { c.count("unlink"); return c.Syscalls.Unlink(path) }

func (c *counting) Accept(fd int) (int, net.Addr, error) {
	c.count("accept")
	return c.Syscalls.Accept(fd)
}

func (c *counting) Writev(fd int, bufs [][]byte) (int, error) {
	c.count("writev")
	return c.Syscalls.Writev(fd, bufs)
}

func (c *counting) Shutdown(fd int, how sockets.ShutdownHow) error {
	c.count("shutdown")
	return c.Syscalls.Shutdown(fd, how)
}

func (c *counting) GetsockoptInt(fd int, opt sockets.SockOpt) (int, error) {
	c.count("getsockopt")
	if c.getsockoptResult != nil {
		if v, err, ok := c.getsockoptResult(fd, opt); ok {
			return v, err
		}
	}
	return c.Syscalls.GetsockoptInt(fd, opt)
}

func (c *counting) Getpeername(fd int) (net.Addr, error) {
	c.count("getpeername")
	if c.getpeernameResult != nil {
		if a, err, ok := c.getpeernameResult(fd); ok {
			return a, err
		}
	}
	return c.Syscalls.Getpeername(fd)
}

func (c *counting) Close(fd int) error {
	c.count("close")
	c.mu.Lock()
	c.closes[fd]++
	c.mu.Unlock()
	err := c.Syscalls.Close(fd)
	if c.closeResult != nil {
		return c.closeResult(fd)
	}
	return err
}

// isSyscallError reports whether err is an *os.SyscallError for call wrapping
// errno.
func isSyscallError(err error, call string, errno error) bool {
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == call && errors.Is(err, errno)
}
