//go:build darwin || freebsd

package sockets

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// defaultBacklog is SOMAXCONN; the kernel caps it at kern.ipc.somaxconn.
const defaultBacklog = unix.SOMAXCONN

// System returns the real system calls, over golang.org/x/sys/unix.
func System() Syscalls { return system{} }

// system is the real Syscalls. It keeps no state: one value serves every
// descriptor and goroutine.
type system struct{}

// Socket sets close-on-exec and non-blocking with fcntl (darwin has no
// SOCK_CLOEXEC; FreeBSD takes the same path for one code path), holding
// syscall.ForkLock so a concurrent fork cannot inherit the descriptor before it
// is close-on-exec, and sets SO_NOSIGPIPE, so that a write to a connection the
// peer closed fails with EPIPE instead of raising SIGPIPE.
func (system) Socket(f Family) (int, error) {
	domain, err := familyDomain(f)
	if err != nil {
		return -1, err
	}
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(domain, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	return finishDescriptor(fd)
}

// Accept is accept(2) followed by fcntl, as Socket.
func (system) Accept(fd int) (int, net.Addr, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	nfd, sa, err := unix.Accept(fd)
	if err != nil {
		return -1, nil, err
	}
	nfd, err = finishDescriptor(nfd)
	if err != nil {
		return -1, nil, err
	}
	return nfd, fromSockaddr(sa), nil
}

// finishDescriptor makes a new descriptor close-on-exec, non-blocking and
// SIGPIPE-free, or closes it.
func finishDescriptor(fd int) (int, error) {
	unix.CloseOnExec(fd)
	if err := nonblockNoSigpipe(fd); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// SetNonblock also sets SO_NOSIGPIPE, which an adopted socket needs as much as
// a created one.
func (system) SetNonblock(fd int) error { return nonblockNoSigpipe(fd) }

func nonblockNoSigpipe(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NOSIGPIPE, 1)
}

func (system) DupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

func (system) Read(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (system) Write(fd int, p []byte) (int, error) {
	n, err := unix.Write(fd, p)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (system) Writev(fd int, bufs [][]byte) (int, error) { return writev(fd, bufs) }
