package sockets

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writes are sendmsg(2), or sendto(2) for one buffer, with MSG_NOSIGNAL, so
// a write to a connection the peer closed fails with EPIPE and never raises
// SIGPIPE, whatever the program's signal handling (a c-shared library, signal.Notify(SIGPIPE)). The iovec array
// and the msghdr live on the stack: no allocation. Like the writev of
// internal/poll, they tell the race detector nothing about the bytes the kernel
// reads.

// sendv sends from the first MaxIovecs buffers. One buffer goes by send,
// which spares the kernel copying in a msghdr and an iovec.
func sendv(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return send(fd, bufs[0])
	}
	var iov [MaxIovecs]unix.Iovec
	n := fillIovecs(&iov, bufs)
	if n == 0 {
		return 0, nil
	}
	return sendmsg(fd, &iov[0], n)
}

// send sends p with sendto(2) and no address.
func send(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sendmsg(fd int, iov *unix.Iovec, n int) (int, error) {
	var msg unix.Msghdr
	msg.Iov = iov
	msg.SetIovlen(n)
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
