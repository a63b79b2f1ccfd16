//go:build !race

package sockets_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestDataPathDoesNotAllocate: Read (data and EAGAIN), Write and Writev of
// MaxIovecs buffers make no allocation. (The race detector allocates on its
// own, so this file is not built under -race.)
func TestDataPathDoesNotAllocate(t *testing.T) {
	checkFDs(t)
	a, b := socketpair(t, nil)
	defer mustClose(t, a)
	defer mustClose(t, b)
	one := []byte{1}
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = one
	}
	p := make([]byte, 256)
	for name, f := range map[string]func(){
		"read EAGAIN": func() {
			if _, err := a.Read(p); err != unix.EAGAIN {
				t.Fatal(err)
			}
		},
		"write and read": func() {
			if _, err := a.Write(one); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Read(p); err != nil {
				t.Fatal(err)
			}
		},
		"writev and read": func() {
			if _, err := a.Writev(bufs); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Read(p); err != nil {
				t.Fatal(err)
			}
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
}
