package sockets

import (
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// FD owns one non-blocking, close-on-exec descriptor. Close calls close(2) at
// most once; every operation after Close or Forget returns ErrClosed and makes
// no system call.
type FD struct {
	sys    Syscalls
	num    int
	closed atomic.Bool
	// invalid: the kernel answered EBADF for the number (Invalidate); no
	// further system call is made on it, close included.
	invalid atomic.Bool
	// unlink is the Unix socket path Listen bound, removed by Close; empty for
	// every other descriptor.
	unlink string
}

// newFD takes ownership of num.
func newFD(sys Syscalls, num int) *FD { return &FD{sys: sys, num: num} }

// Fd returns the descriptor number, for registering with a poller. The FD
// still owns it: never close it through the number.
func (fd *FD) Fd() int { return fd.num }

// Closed reports whether Close or Forget has run.
func (fd *FD) Closed() bool { return fd.closed.Load() }

// Invalidate records that the kernel answered EBADF for the number through a
// call FD does not make itself (a poller change): from then on every operation,
// Close included, returns ErrClosed and makes no system call (D2). The owner
// still decides, with Forget, when the FD is done.
func (fd *FD) Invalidate() { fd.invalid.Store(true) }

// gone reports whether no system call may be made on the number any more.
func (fd *FD) gone() bool { return fd.closed.Load() || fd.invalid.Load() }

// Gone reports whether no system call may be made on the number any more:
// Close or Forget ran, or Invalidate. The calls others make with the number
// (a poller's changes) must be refused then too.
func (fd *FD) Gone() bool { return fd.gone() }

// String names the descriptor for diagnostics: "fd 7" or "fd 7 (closed)".
func (fd *FD) String() string {
	s := "fd " + strconv.Itoa(fd.num)
	if fd.gone() {
		s += " (closed)"
	}
	return s
}

// Read reads into p, which must not be empty. n == 0 with a nil error is the
// peer's EOF; err is the raw errno (unix.EAGAIN when nothing is buffered).
func (fd *FD) Read(p []byte) (n int, err error) {
	if fd.gone() {
		return 0, ErrClosed
	}
	return fd.sys.Read(fd.num, p)
}

// Write writes p; n may be short. err is the raw errno.
func (fd *FD) Write(p []byte) (n int, err error) {
	if fd.gone() {
		return 0, ErrClosed
	}
	return fd.sys.Write(fd.num, p)
}

// Writev writes the buffers in order, from at most the first MaxIovecs of
// them, with one writev(2); n may be short. err is the raw errno.
func (fd *FD) Writev(bufs [][]byte) (n int, err error) {
	if fd.gone() {
		return 0, ErrClosed
	}
	return fd.sys.Writev(fd.num, bufs)
}

// Accept takes one pending connection from a listening descriptor. The new FD
// is non-blocking and close-on-exec and uses the listener's Syscalls; on a TCP
// listener it inherits the listener's TCP_NODELAY and SO_KEEPALIVE (Linux and
// the BSDs copy them). err is the raw errno (unix.EAGAIN when none is pending).
func (fd *FD) Accept() (*FD, net.Addr, error) {
	if fd.gone() {
		return nil, nil, ErrClosed
	}
	nfd, peer, err := fd.sys.Accept(fd.num)
	if err != nil {
		return nil, nil, err
	}
	return newFD(fd.sys, nfd), peer, nil
}

// Connect starts a non-blocking connect to addr (the address Open was given)
// and returns the raw errno: nil when connected at once (Unix sockets usually
// are), unix.EINPROGRESS when the connect goes on (a normal outcome: wait for
// writability, then call ConnectResult), or the failure (ECONNREFUSED, ENOENT,
// EAGAIN for a Unix listener whose backlog is full, ...). The descriptor stays
// open whatever the result.
func (fd *FD) Connect(addr net.Addr) error {
	if fd.gone() {
		return ErrClosed
	}
	return fd.sys.Connect(fd.num, normalizeAddr(addr))
}

// ConnectResult reports how a pending connect ended, once the descriptor is
// writable, as raw errnos for the connect classifier: nil when connected; the
// connect's errno when SO_ERROR holds one; unix.ENOTCONN from getpeername when
// SO_ERROR is 0 but there is no peer yet (the writable readiness was spurious:
// the connect is still in progress); or the errno of getsockopt itself.
// Reading SO_ERROR clears it: call once per writable readiness.
func (fd *FD) ConnectResult() error {
	if fd.gone() {
		return ErrClosed
	}
	v, err := fd.sys.GetsockoptInt(fd.num, OptError)
	if err != nil {
		return err
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	// SO_ERROR is 0 both when the connect succeeded and while it is still in
	// progress; only a connected socket has a peer.
	_, err = fd.sys.Getpeername(fd.num)
	return err
}

// Shutdown closes one or both directions; after ShutWrite the peer reads EOF.
// err is the raw errno.
func (fd *FD) Shutdown(how ShutdownHow) error {
	if fd.gone() {
		return ErrClosed
	}
	return fd.sys.Shutdown(fd.num, how)
}

// LocalAddr returns the address the descriptor is bound to.
func (fd *FD) LocalAddr() (net.Addr, error) {
	if fd.gone() {
		return nil, ErrClosed
	}
	a, err := fd.sys.Getsockname(fd.num)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	return a, nil
}

// RemoteAddr returns the peer's address of a connected descriptor.
func (fd *FD) RemoteAddr() (net.Addr, error) {
	if fd.gone() {
		return nil, ErrClosed
	}
	a, err := fd.sys.Getpeername(fd.num)
	if err != nil {
		return nil, os.NewSyscallError("getpeername", err)
	}
	return a, nil
}

// SetNoDelay sets TCP_NODELAY (TCP only).
func (fd *FD) SetNoDelay(on bool) error { return fd.setBool(OptNoDelay, on) }

// SetKeepAlive sets SO_KEEPALIVE (the system's default timers).
func (fd *FD) SetKeepAlive(on bool) error { return fd.setBool(OptKeepAlive, on) }

func (fd *FD) setBool(opt SockOpt, on bool) error {
	if fd.gone() {
		return ErrClosed
	}
	v := 0
	if on {
		v = 1
	}
	if err := fd.sys.SetsockoptInt(fd.num, opt, v); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// Close closes the descriptor: close(2) runs at most once, and EINTR from it
// counts as closed (the kernel released the number). Whatever close returns,
// the FD is closed afterwards and its number is never used again. A listener
// made by Listen on a Unix path first removes that path. A second Close returns
// an error wrapping ErrClosed and makes no system call.
func (fd *FD) Close() error {
	if !fd.closed.CompareAndSwap(false, true) || fd.invalid.Load() {
		return &os.SyscallError{Syscall: "close", Err: ErrClosed}
	}
	var unlinkErr error
	if fd.unlink != "" {
		if err := fd.sys.Unlink(fd.unlink); err != nil && err != syscall.ENOENT {
			unlinkErr = os.NewSyscallError("unlink", err)
		}
	}
	if err := fd.sys.Close(fd.num); err != nil && err != syscall.EINTR {
		return os.NewSyscallError("close", err)
	}
	return unlinkErr
}

// Forget marks the FD closed without calling close(2) (the tables' forgetFD
// action), and reports whether it was open. It is for a number the kernel
// answered EBADF on: the descriptor was invalidated outside its owner (closed
// or revoked), and the number may already name another open file, so closing
// it would close that one. A listener's Unix path is left in place.
func (fd *FD) Forget() bool {
	return fd.closed.CompareAndSwap(false, true)
}
