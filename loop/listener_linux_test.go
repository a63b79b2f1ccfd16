package loop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAcceptedPanicFailsThatConnectionOnly: a panic in the Accepted callback
// fails the connection it was called for (the server closes it, counted as a
// contained panic) and nothing else: the listener keeps accepting, and the
// next dial is served.
func TestAcceptedPanicFailsThatConnectionOnly(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	var calls atomic.Int32
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) {
		if calls.Add(1) == 1 {
			panic("accept callback bug")
		}
		return echo{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	peerClosed(t, first)
	if n := g.Loops()[0].Counters().PanicsContained.Load(); n != 1 {
		t.Errorf("PanicsContained = %d, want 1", n)
	}
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the second dial: %v", err)
	}
	defer second.Close()
	if err := echoOnce(second, "after the panic"); err != nil {
		t.Fatalf("the listener stopped serving after a panic in Accepted: %v", err)
	}
	select {
	case <-ln.Closed():
		t.Fatalf("the listener closed: %v", ln.Err())
	default:
	}
}

// reuseNumber takes descriptor number num for a new file with open, which must
// return the lowest free number as open(2) and socket(2) do; the file is closed
// when the test ends. Another goroutine of the process may take a lower number
// first, so it tries a few times, keeping the numbers it got meanwhile open
// until it has num.
func reuseNumber(t *testing.T, num int, open func() (int, error)) {
	t.Helper()
	var extra []int
	defer func() {
		for _, fd := range extra {
			unix.Close(fd)
		}
	}()
	for i := 0; i < 64; i++ {
		fd, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if fd == num {
			t.Cleanup(func() { unix.Close(fd) })
			return
		}
		extra = append(extra, fd)
		if fd > num+64 {
			break
		}
	}
	t.Fatalf("descriptor number %d was not reused", num)
}

// TestListenerCloseSparesAReusedNumber: the listening descriptor is closed
// behind the loop's back and its number goes to another file. Listener.Close
// must not close that file: the removal from epoll fails (EPERM for a regular
// file, ENOENT for a socket), which says the number is no longer ours, and the
// listener is abandoned (D2): counted, and its error names the number.
func TestListenerCloseSparesAReusedNumber(t *testing.T) {
	for _, tc := range []struct {
		name  string
		errno unix.Errno
		open  func(t *testing.T) func() (int, error)
		alive func(fd int) error
	}{
		{
			name: "regular file", errno: unix.EPERM,
			open: func(t *testing.T) func() (int, error) {
				path := filepath.Join(t.TempDir(), "other")
				if err := os.WriteFile(path, []byte("someone else's"), 0o600); err != nil {
					t.Fatal(err)
				}
				return func() (int, error) { return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0) }
			},
			alive: func(fd int) error {
				buf := make([]byte, 64)
				n, err := unix.Pread(fd, buf, 0)
				if err == nil && string(buf[:n]) != "someone else's" {
					err = fmt.Errorf("read %q", buf[:n])
				}
				return err
			},
		},
		{
			name: "socket", errno: unix.ENOENT,
			open: func(*testing.T) func() (int, error) {
				return func() (int, error) { return unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0) }
			},
			alive: func(fd int) error {
				_, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
				return err
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFDs(t)
			g := NewGroup(1, nil)
			defer shutdown(t, g)
			ln := serveEcho(t, g, loopback)
			l := g.Loops()[0]
			// Registration is asynchronous: one echo proves the listener is in
			// the poller, so the close below is behind its back, not before it.
			if err := echoClient(ln.Addr(), 1); err != nil {
				t.Fatal(err)
			}
			num := ln.reg.fd.Fd()
			open := tc.open(t)
			if err := unix.Close(num); err != nil { // the out-of-band close
				t.Fatal(err)
			}
			reuseNumber(t, num, open)
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			wait(t, ln.Closed(), "the listener closing")
			if err := tc.alive(num); err != nil {
				t.Fatalf("the file that took number %d was touched: %v", num, err)
			}
			if n := l.Counters().DescriptorsContained.Load(); n != 1 {
				t.Errorf("DescriptorsContained = %d, want 1", n)
			}
			if n := l.Counters().Rejected.Load(); n != 0 {
				t.Errorf("Rejected = %d, want 0", n)
			}
			err := ln.Err()
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("fd %d", num)) || !strings.Contains(err.Error(), "epoll_ctl") {
				t.Fatalf("Err() = %v, want the number %d and epoll_ctl named", err, num)
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("Err() = %v, want %v", err, tc.errno)
			}
			t.Logf("Err(): %v", err)
			// A second Close asks nothing: not a rejection.
			ln.Close()
			if err := l.Submit(func() error { return nil }); <-err != nil {
				t.Fatal(<-err)
			}
			if n := l.Counters().Rejected.Load(); n != 0 {
				t.Errorf("Rejected = %d after a second Close, want 0", n)
			}
		})
	}
}
