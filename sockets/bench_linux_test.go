package sockets_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkReadEAGAIN compares a read through FD and the Syscalls interface
// with a direct unix.Read, on an empty socket: the cost the interface adds to
// the cheapest system call there is.
func BenchmarkReadEAGAIN(b *testing.B) {
	x, y := socketpair(b, nil)
	defer x.Close()
	defer y.Close()
	p := make([]byte, 64)
	b.Run("FD", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := x.Read(p); err != unix.EAGAIN {
				b.Fatal(err)
			}
		}
	})
	b.Run("unix.Read", func(b *testing.B) {
		b.ReportAllocs()
		fd := x.Fd()
		for b.Loop() {
			if _, err := unix.Read(fd, p); err != unix.EAGAIN {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWritev writes MaxIovecs small buffers and drains them.
func BenchmarkWritev(b *testing.B) {
	x, y := socketpair(b, nil)
	defer x.Close()
	defer y.Close()
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	p := make([]byte, 64*16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Writev(bufs); err != nil {
			b.Fatal(err)
		}
		if _, err := y.Read(p); err != nil {
			b.Fatal(err)
		}
	}
}
