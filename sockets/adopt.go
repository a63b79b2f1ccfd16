package sockets

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Adopt takes ownership of a duplicate of the descriptor behind c: any
// net.Conn or net.Listener of package net (*net.TCPConn, *net.UnixListener,
// ...), an *os.File, a *vsock.Conn, or anything else that implements
// syscall.Conn. The duplicate is close-on-exec (F_DUPFD_CLOEXEC) and is set
// non-blocking; the caller may close c at any time afterwards. (A
// *vsock.Listener does not expose its descriptor; Listen a *vsock.Addr
// instead.)
//
// O_NONBLOCK is shared with c (it belongs to the open file description), so c
// becomes non-blocking too if it was not: don't call (*os.File).Fd on it again.
// The descriptor must be a stream socket (SO_TYPE SOCK_STREAM).
func Adopt(c syscall.Conn, o *Options) (*FD, error) {
	o = o.resolve()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("sockets: adopt: %w", err)
	}
	var num int
	var dupErr error
	// Control holds the caller's descriptor open while the callback runs, so the
	// number cannot be closed and reused under the dup.
	if err := rc.Control(func(fd uintptr) { num, dupErr = o.Syscalls.DupCloexec(int(fd)) }); err != nil {
		return nil, fmt.Errorf("sockets: adopt: %w", err)
	}
	if dupErr != nil {
		return nil, os.NewSyscallError("fcntl", dupErr)
	}
	return adoptDup(num, o)
}

// AdoptFD takes ownership of a duplicate of the raw descriptor fd, as Adopt
// does; the caller still owns fd and may close it at any time afterwards.
func AdoptFD(fd int, o *Options) (*FD, error) {
	o = o.resolve()
	num, err := o.Syscalls.DupCloexec(fd)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return adoptDup(num, o)
}

// adoptDup finishes an adoption of the duplicate num, closing it on failure,
// except after EBADF: the number is no longer ours then, and must not be closed
// (D2).
func adoptDup(num int, o *Options) (*FD, error) {
	fd := newFD(o.Syscalls, num)
	release := func(err error) {
		if errors.Is(err, syscall.EBADF) {
			fd.Forget()
			return
		}
		_ = fd.Close()
	}
	if err := o.Syscalls.SetNonblock(num); err != nil {
		release(err)
		return nil, os.NewSyscallError("fcntl", err)
	}
	typ, err := o.Syscalls.GetsockoptInt(num, OptType)
	if err != nil {
		release(err)
		return nil, os.NewSyscallError("getsockopt", err)
	}
	if typ != sockStream {
		_ = fd.Close()
		return nil, fmt.Errorf("sockets: adopt: descriptor is not a stream socket (SO_TYPE %d)", typ)
	}
	return fd, nil
}
