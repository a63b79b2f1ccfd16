package sockets

import (
	"net"

	"golang.org/x/sys/unix"
)

// defaultBacklog is SOMAXCONN; the kernel caps it at net.core.somaxconn.
const defaultBacklog = unix.SOMAXCONN

// System returns the real system calls, over golang.org/x/sys/unix.
func System() Syscalls { return system{} }

// system is the real Syscalls. It keeps no state: one value serves every
// descriptor and goroutine.
type system struct{}

func (system) Socket(f Family) (int, error) {
	domain, err := familyDomain(f)
	if err != nil {
		return -1, err
	}
	return unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

func (system) Accept(fd int) (int, net.Addr, error) {
	nfd, sa, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return -1, nil, err
	}
	return nfd, fromSockaddr(sa), nil
}

func (system) SetNonblock(fd int) error { return unix.SetNonblock(fd, true) }

func (system) DupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

func (system) Read(fd int, p []byte) (int, error) { return read(fd, p) }

func (system) Write(fd int, p []byte) (int, error) { return send(fd, p) }

func (system) Writev(fd int, bufs [][]byte) (int, error) { return sendv(fd, bufs) }
