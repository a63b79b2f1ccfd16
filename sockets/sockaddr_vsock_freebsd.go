package sockets

import (
	"net"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// afVsock is -1: golang.org/x/sys/unix has no AF_VSOCK for FreeBSD, so Socket
// answers EAFNOSUPPORT without a system call.
const afVsock = -1

func vsockSockaddr(*vsock.Addr) (unix.Sockaddr, error) { return nil, unix.EAFNOSUPPORT }

func vsockAddr(unix.Sockaddr) net.Addr { return nil }
