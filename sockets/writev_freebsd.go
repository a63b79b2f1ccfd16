package sockets

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// writev is writev(2) with the iovec array on the stack, so it does not
// allocate (golang.org/x/sys/unix has no Writev for FreeBSD). SO_NOSIGPIPE,
// set on every descriptor, turns SIGPIPE into EPIPE.
func writev(fd int, bufs [][]byte) (int, error) {
	var iov [MaxIovecs]unix.Iovec
	n := fillIovecs(&iov, bufs)
	if n == 0 {
		return 0, nil
	}
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
