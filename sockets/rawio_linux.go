package sockets

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reads and writes on a socket are raw system calls: the descriptors this
// package owns are non-blocking, so these calls never wait, and the scheduler's
// bookkeeping around a call that might block (entersyscall and exitsyscall,
// which let another thread take the P) is pure cost on the hot path of every
// echo. gVisor's netstack treats its non-blocking writes the same way.
//
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
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sendmsg(fd int, iov *unix.Iovec, n int) (int, error) {
	var msg unix.Msghdr
	msg.Iov = iov
	msg.SetIovlen(n)
	r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// read reads into p with read(2).
func read(fd int, p []byte) (int, error) {
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(base), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
