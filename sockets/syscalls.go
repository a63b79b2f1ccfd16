package sockets

import (
	"errors"
	"fmt"
	"net"
)

// Syscalls is every system call the package makes. System returns the real
// one; a test or a fault injector wraps it (embed the interface and override
// the methods to intercept) and passes the wrapper in Options.Syscalls.
//
// Contract for implementations:
//   - Errors are the kernel's errno as a unix.Errno (syscall.Errno), never
//     wrapped: classification compares them by value.
//   - A count is 0, not -1, when err is non-nil.
//   - Socket and Accept return descriptors that are already non-blocking and
//     close-on-exec, atomically where the system allows (SOCK_NONBLOCK and
//     SOCK_CLOEXEC on Linux; fcntl under syscall.ForkLock on darwin and
//     FreeBSD).
//   - A write to a connection the peer closed fails with EPIPE and never
//     raises SIGPIPE: Write and Writev are sendmsg(MSG_NOSIGNAL) on Linux;
//     on darwin and FreeBSD, Socket, Accept and SetNonblock set SO_NOSIGPIPE.
//   - Addresses are *net.TCPAddr, *net.UnixAddr or *vsock.Addr. A TCP address
//     handed to Bind or Connect has an IP of length 4 for a FamilyInet4 socket
//     and 16 for FamilyInet6, so the implementation can tell the family apart.
//   - Read, Write and Writev do not allocate (darwin's Writev does beyond eight
//     buffers: it must go through libc, by unix.Writev).
type Syscalls interface {
	// Socket creates a stream socket of the family.
	Socket(f Family) (fd int, err error)
	Bind(fd int, addr net.Addr) error
	Listen(fd, backlog int) error
	// Accept is accept4(SOCK_NONBLOCK|SOCK_CLOEXEC); peer is the remote address.
	Accept(fd int) (nfd int, peer net.Addr, err error)
	Connect(fd int, addr net.Addr) error
	Read(fd int, p []byte) (n int, err error)
	Write(fd int, p []byte) (n int, err error)
	// Writev writes from at most the first MaxIovecs buffers.
	Writev(fd int, bufs [][]byte) (n int, err error)
	Shutdown(fd int, how ShutdownHow) error
	Close(fd int) error
	GetsockoptInt(fd int, opt SockOpt) (int, error)
	SetsockoptInt(fd int, opt SockOpt, value int) error
	Getsockname(fd int) (net.Addr, error)
	Getpeername(fd int) (net.Addr, error)
	// SetNonblock sets O_NONBLOCK (fcntl F_SETFL) on an adopted descriptor
	// (and SO_NOSIGPIPE on darwin and FreeBSD).
	SetNonblock(fd int) error
	// DupCloexec is fcntl(fd, F_DUPFD_CLOEXEC, 0).
	DupCloexec(fd int) (nfd int, err error)
	// Unlink removes a Unix socket's path.
	Unlink(path string) error
}

// MaxIovecs is the most buffers one Writev passes to the kernel. The iovec
// array lives on the stack, so Writev does not allocate; 64 buffers of even a
// few kilobytes fill a socket's send buffer, so a larger batch gains nothing.
const MaxIovecs = 64

// Family is the address family of a stream socket.
type Family uint8

const (
	FamilyInet4 Family = iota + 1 // AF_INET
	FamilyInet6                   // AF_INET6
	FamilyUnix                    // AF_UNIX
	FamilyVsock                   // AF_VSOCK
)

func (f Family) String() string {
	switch f {
	case FamilyInet4:
		return "inet4"
	case FamilyInet6:
		return "inet6"
	case FamilyUnix:
		return "unix"
	case FamilyVsock:
		return "vsock"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// SockOpt names the socket options the package reads or sets.
type SockOpt uint8

const (
	OptReuseAddr SockOpt = iota + 1 // SOL_SOCKET SO_REUSEADDR
	OptKeepAlive                    // SOL_SOCKET SO_KEEPALIVE
	OptNoDelay                      // IPPROTO_TCP TCP_NODELAY
	OptV6Only                       // IPPROTO_IPV6 IPV6_V6ONLY
	OptError                        // SOL_SOCKET SO_ERROR (read only; reading clears it)
	OptType                         // SOL_SOCKET SO_TYPE (read only)
)

func (o SockOpt) String() string {
	switch o {
	case OptReuseAddr:
		return "SO_REUSEADDR"
	case OptKeepAlive:
		return "SO_KEEPALIVE"
	case OptNoDelay:
		return "TCP_NODELAY"
	case OptV6Only:
		return "IPV6_V6ONLY"
	case OptError:
		return "SO_ERROR"
	case OptType:
		return "SO_TYPE"
	}
	return fmt.Sprintf("SockOpt(%d)", uint8(o))
}

// ShutdownHow selects the side Shutdown closes.
type ShutdownHow uint8

const (
	ShutRead  ShutdownHow = iota + 1 // SHUT_RD
	ShutWrite                        // SHUT_WR: the peer reads EOF
	ShutBoth                         // SHUT_RDWR
)

func (h ShutdownHow) String() string {
	switch h {
	case ShutRead:
		return "SHUT_RD"
	case ShutWrite:
		return "SHUT_WR"
	case ShutBoth:
		return "SHUT_RDWR"
	}
	return fmt.Sprintf("ShutdownHow(%d)", uint8(h))
}

// ErrClosed is returned by an operation on an FD that was closed or abandoned;
// errors.Is(err, net.ErrClosed) holds for it. The generated classifiers see no
// errno in it and give their default outcome.
var ErrClosed = fmt.Errorf("sockets: descriptor already closed: %w", net.ErrClosed)

// errUnsupportedAddr is returned for an address of a type this package does not
// handle.
var errUnsupportedAddr = errors.New("sockets: unsupported address type")

var _ Syscalls = system{}
