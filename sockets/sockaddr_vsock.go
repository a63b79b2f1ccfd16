//go:build linux || darwin

package sockets

import (
	"net"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

const afVsock = unix.AF_VSOCK

func vsockSockaddr(a *vsock.Addr) (unix.Sockaddr, error) {
	return &unix.SockaddrVM{CID: a.ContextID, Port: a.Port}, nil
}

func vsockAddr(sa unix.Sockaddr) net.Addr {
	if sa, ok := sa.(*unix.SockaddrVM); ok {
		return &vsock.Addr{ContextID: sa.CID, Port: sa.Port}
	}
	return nil
}
