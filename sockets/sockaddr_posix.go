//go:build linux || darwin || freebsd

package sockets

import (
	"net"
	"strconv"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// sockStream is SOCK_STREAM, for the SO_TYPE check of Adopt.
const sockStream = unix.SOCK_STREAM

// toSockaddr converts an address in the form the Syscalls contract describes.
func toSockaddr(a net.Addr) (unix.Sockaddr, error) {
	switch a := a.(type) {
	case *net.TCPAddr:
		switch len(a.IP) {
		case net.IPv4len:
			sa := &unix.SockaddrInet4{Port: a.Port}
			copy(sa.Addr[:], a.IP)
			return sa, nil
		case net.IPv6len:
			sa := &unix.SockaddrInet6{Port: a.Port, ZoneId: zoneIndex(a.Zone)}
			copy(sa.Addr[:], a.IP)
			return sa, nil
		}
		return nil, unix.EINVAL
	case *net.UnixAddr:
		return &unix.SockaddrUnix{Name: a.Name}, nil
	case *vsock.Addr:
		return vsockSockaddr(a)
	}
	return nil, unix.EAFNOSUPPORT
}

// fromSockaddr converts a kernel address; nil for an address of no family this
// package handles.
func fromSockaddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port, Zone: zoneName(sa.ZoneId)}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return vsockAddr(sa)
}

// zoneIndex resolves an IPv6 zone, an interface name or number, to its index;
// 0 when empty or unknown.
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// zoneName gives a zone index as a number: looking the interface name up would
// cost a netlink round trip on every accepted connection.
func zoneName(index uint32) string {
	if index == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(index), 10)
}

// optLevelName maps a SockOpt to its level and name.
func optLevelName(o SockOpt) (level, name int, err error) {
	switch o {
	case OptReuseAddr:
		return unix.SOL_SOCKET, unix.SO_REUSEADDR, nil
	case OptKeepAlive:
		return unix.SOL_SOCKET, unix.SO_KEEPALIVE, nil
	case OptNoDelay:
		return unix.IPPROTO_TCP, unix.TCP_NODELAY, nil
	case OptV6Only:
		return unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, nil
	case OptError:
		return unix.SOL_SOCKET, unix.SO_ERROR, nil
	case OptType:
		return unix.SOL_SOCKET, unix.SO_TYPE, nil
	}
	return 0, 0, unix.ENOPROTOOPT
}

// familyDomain maps a Family to its AF_ constant.
func familyDomain(f Family) (int, error) {
	switch f {
	case FamilyInet4:
		return unix.AF_INET, nil
	case FamilyInet6:
		return unix.AF_INET6, nil
	case FamilyUnix:
		return unix.AF_UNIX, nil
	case FamilyVsock:
		if afVsock < 0 {
			return 0, unix.EAFNOSUPPORT
		}
		return afVsock, nil
	}
	return 0, unix.EAFNOSUPPORT
}

// shutdownHow maps a ShutdownHow to its SHUT_ constant.
func shutdownHow(h ShutdownHow) (int, error) {
	switch h {
	case ShutRead:
		return unix.SHUT_RD, nil
	case ShutWrite:
		return unix.SHUT_WR, nil
	case ShutBoth:
		return unix.SHUT_RDWR, nil
	}
	return 0, unix.EINVAL
}
