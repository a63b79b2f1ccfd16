package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/mdlayher/vsock"
)

// Options configure the descriptors Listen, Dial and Adopt create. A nil
// *Options means DefaultOptions().
type Options struct {
	// Syscalls performs every system call; nil means System().
	Syscalls Syscalls
	// Backlog is the listen(2) backlog; 0 means the system's SOMAXCONN.
	Backlog int
	// ReuseAddr sets SO_REUSEADDR on TCP listeners, so a restarted server can
	// bind while old connections are in TIME_WAIT.
	ReuseAddr bool
	// NoDelay sets TCP_NODELAY on dialed TCP sockets and on TCP listeners, whose
	// accepted sockets inherit it.
	NoDelay bool
	// KeepAlive sets SO_KEEPALIVE likewise.
	KeepAlive bool
}

// DefaultOptions returns the options used for nil: the real system calls,
// SO_REUSEADDR and TCP_NODELAY on, keep-alive off.
func DefaultOptions() *Options {
	return &Options{ReuseAddr: true, NoDelay: true}
}

func (o *Options) resolve() *Options {
	if o == nil {
		o = DefaultOptions()
	}
	if o.Syscalls == nil {
		c := *o
		c.Syscalls = System()
		o = &c
	}
	return o
}

// VsockAnyCID is VMADDR_CID_ANY: listen on every context ID of this machine.
// vsock.Local (1) is the loopback context ID.
const VsockAnyCID uint32 = 0xFFFFFFFF

// vsockAnyPort is VMADDR_PORT_ANY: bind picks a free port.
const vsockAnyPort uint32 = 0xFFFFFFFF

// ContextID returns this machine's local AF_VSOCK context ID (the
// IOCTL_VM_SOCKETS_GET_LOCAL_CID of /dev/vsock). It fails where vsock is not
// available.
func ContextID() (uint32, error) { return vsock.ContextID() }

// Listen creates a listening stream socket bound to laddr: a *net.TCPAddr, a
// *net.UnixAddr (Net "unix") or a *vsock.Addr.
//
// TCP: a nil or unspecified IPv6 IP ("::") listens on both IPv6 and IPv4
// (IPV6_V6ONLY off), falling back to IPv4 where IPv6 is unavailable; an IPv4
// IP (including 0.0.0.0) listens on IPv4 only; any other IPv6 IP on IPv6.
// Port 0 picks a free port (see LocalAddr).
//
// Unix: the path must not exist (EADDRINUSE otherwise); Close removes it. A
// Linux abstract name (a leading '@') creates no file.
//
// vsock: ContextID VsockAnyCID listens on every context ID; Port 0 picks a free
// port.
//
// On error no descriptor is left open.
func Listen(laddr net.Addr, o *Options) (*FD, error) {
	o = o.resolve()
	switch a := laddr.(type) {
	case *net.TCPAddr:
		return listenTCP(a, o)
	case *net.UnixAddr:
		if a.Net != "unix" && a.Net != "" {
			return nil, fmt.Errorf("sockets: listen: %q is not a Unix stream network", a.Net)
		}
		fd, err := listenOn(FamilyUnix, a, o)
		if err != nil {
			return nil, err
		}
		if a.Name != "" && a.Name[0] != '@' {
			fd.unlink = a.Name
		}
		return fd, nil
	case *vsock.Addr:
		if a.Port == 0 {
			a = &vsock.Addr{ContextID: a.ContextID, Port: vsockAnyPort}
		}
		return listenOn(FamilyVsock, a, o)
	}
	return nil, fmt.Errorf("%w %T", errUnsupportedAddr, laddr)
}

func listenTCP(a *net.TCPAddr, o *Options) (*FD, error) {
	dual := a.IP == nil || a.IP.Equal(net.IPv6unspecified)
	if !dual {
		fam, ip := tcpFamily(a.IP)
		return listenOn(fam, &net.TCPAddr{IP: ip, Port: a.Port, Zone: a.Zone}, o)
	}
	fd, err := listenOn(FamilyInet6, &net.TCPAddr{IP: net.IPv6unspecified, Port: a.Port}, o)
	if errors.Is(err, syscall.EAFNOSUPPORT) {
		return listenOn(FamilyInet4, &net.TCPAddr{IP: net.IPv4zero.To4(), Port: a.Port}, o)
	}
	return fd, err
}

// tcpFamily returns the family of ip and ip in the length the Syscalls
// contract asks for.
func tcpFamily(ip net.IP) (Family, net.IP) {
	if ip4 := ip.To4(); ip4 != nil {
		return FamilyInet4, ip4
	}
	return FamilyInet6, ip.To16()
}

// listenOn creates, configures, binds and listens, closing the socket on any
// failure.
func listenOn(fam Family, addr net.Addr, o *Options) (*FD, error) {
	fd, err := open(fam, o.Syscalls)
	if err != nil {
		return nil, err
	}
	if err := listenSetup(fd, fam, addr, o); err != nil {
		_ = fd.Close()
		return nil, err
	}
	return fd, nil
}

func listenSetup(fd *FD, fam Family, addr net.Addr, o *Options) error {
	sys := fd.sys
	if fam == FamilyInet4 || fam == FamilyInet6 {
		if err := setTCPOptions(fd, o); err != nil {
			return err
		}
		if o.ReuseAddr {
			if err := sys.SetsockoptInt(fd.num, OptReuseAddr, 1); err != nil {
				return os.NewSyscallError("setsockopt", err)
			}
		}
		if fam == FamilyInet6 && addr.(*net.TCPAddr).IP.Equal(net.IPv6unspecified) {
			if err := sys.SetsockoptInt(fd.num, OptV6Only, 0); err != nil {
				return os.NewSyscallError("setsockopt", err)
			}
		}
	}
	if err := sys.Bind(fd.num, addr); err != nil {
		return os.NewSyscallError("bind", err)
	}
	backlog := o.Backlog
	if backlog <= 0 {
		backlog = defaultBacklog
	}
	if err := sys.Listen(fd.num, backlog); err != nil {
		if ua, ok := addr.(*net.UnixAddr); ok && ua.Name != "" && ua.Name[0] != '@' {
			// bind created the path; it is ours to remove.
			_ = sys.Unlink(ua.Name)
		}
		return os.NewSyscallError("listen", err)
	}
	return nil
}

func setTCPOptions(fd *FD, o *Options) error {
	if o.NoDelay {
		if err := fd.sys.SetsockoptInt(fd.num, OptNoDelay, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if o.KeepAlive {
		if err := fd.sys.SetsockoptInt(fd.num, OptKeepAlive, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// open creates a non-blocking, close-on-exec stream socket.
func open(fam Family, sys Syscalls) (*FD, error) {
	num, err := sys.Socket(fam)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return newFD(sys, num), nil
}

// Open creates an unconnected, non-blocking, close-on-exec stream socket of
// the family of addr (a *net.TCPAddr with an IP, a *net.UnixAddr with Net
// "unix", or a *vsock.Addr), with the TCP options of o set, for Connect to
// addr. Open, register, then Connect is the order the channel table follows;
// Dial does all three but registering.
func Open(addr net.Addr, o *Options) (*FD, error) {
	o = o.resolve()
	var fam Family
	switch a := addr.(type) {
	case *net.TCPAddr:
		if a.IP == nil {
			return nil, errors.New("sockets: TCP address has no IP")
		}
		fam, _ = tcpFamily(a.IP)
	case *net.UnixAddr:
		if a.Net != "unix" && a.Net != "" {
			return nil, fmt.Errorf("sockets: %q is not a Unix stream network", a.Net)
		}
		fam = FamilyUnix
	case *vsock.Addr:
		fam = FamilyVsock
	default:
		return nil, fmt.Errorf("%w %T", errUnsupportedAddr, addr)
	}
	fd, err := open(fam, o.Syscalls)
	if err != nil {
		return nil, err
	}
	if fam == FamilyInet4 || fam == FamilyInet6 {
		if err := setTCPOptions(fd, o); err != nil {
			_ = fd.Close()
			return nil, err
		}
	}
	return fd, nil
}

// normalizeAddr gives a TCP address's IP the length the Syscalls contract asks
// for; other addresses pass unchanged.
func normalizeAddr(addr net.Addr) net.Addr {
	if a, ok := addr.(*net.TCPAddr); ok {
		_, ip := tcpFamily(a.IP)
		return &net.TCPAddr{IP: ip, Port: a.Port, Zone: a.Zone}
	}
	return addr
}

// Dial is Open then Connect, for callers that need no registration in
// between. pending reports EINPROGRESS (or EINTR, after which a non-blocking
// connect also goes on): wait for writability, then call ConnectResult. A
// connect that failed at once returns its error wrapped with
// os.NewSyscallError("connect"), and no descriptor is left open.
func Dial(raddr net.Addr, o *Options) (fd *FD, pending bool, err error) {
	fd, err = Open(raddr, o)
	if err != nil {
		return nil, false, err
	}
	switch err := fd.Connect(raddr); err {
	case nil:
		return fd, false, nil
	case syscall.EINPROGRESS, syscall.EINTR:
		return fd, true, nil
	default:
		_ = fd.Close()
		return nil, false, os.NewSyscallError("connect", err)
	}
}
