//go:build linux || darwin || freebsd

package sockets

import (
	"net"

	"golang.org/x/sys/unix"
)

// The system calls whose form is the same on Linux, darwin and FreeBSD. The
// ones that differ (Socket, Accept, SetNonblock, DupCloexec, Read, Write, Writev) are in
// syscalls_linux.go and syscalls_bsd.go.

func (system) Bind(fd int, addr net.Addr) error {
	sa, err := toSockaddr(addr)
	if err != nil {
		return err
	}
	return unix.Bind(fd, sa)
}

func (system) Listen(fd, backlog int) error { return unix.Listen(fd, backlog) }

func (system) Connect(fd int, addr net.Addr) error {
	sa, err := toSockaddr(addr)
	if err != nil {
		return err
	}
	return unix.Connect(fd, sa)
}

func (system) Shutdown(fd int, how ShutdownHow) error {
	h, err := shutdownHow(how)
	if err != nil {
		return err
	}
	return unix.Shutdown(fd, h)
}

func (system) Close(fd int) error { return unix.Close(fd) }

func (system) GetsockoptInt(fd int, opt SockOpt) (int, error) {
	level, name, err := optLevelName(opt)
	if err != nil {
		return 0, err
	}
	return unix.GetsockoptInt(fd, level, name)
}

func (system) SetsockoptInt(fd int, opt SockOpt, value int) error {
	level, name, err := optLevelName(opt)
	if err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, level, name, value)
}

func (system) Getsockname(fd int) (net.Addr, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	return fromSockaddr(sa), nil
}

func (system) Getpeername(fd int) (net.Addr, error) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil, err
	}
	return fromSockaddr(sa), nil
}

func (system) Unlink(path string) error { return unix.Unlink(path) }
