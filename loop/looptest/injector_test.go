//go:build linux || darwin || freebsd

package looptest

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// TestInjectorRules: schedules are exact and rules are checked.
func TestInjectorRules(t *testing.T) {
	inj := NewInjector(9, Rule{Op: OpRead, Fault: FaultEAGAIN, Every: 2, After: 1, Count: 2})
	var got []bool
	inj.mu.Lock()
	for i := 0; i < 8; i++ {
		got = append(got, inj.fault(OpRead, 5) == FaultEAGAIN)
	}
	inj.mu.Unlock()
	want := []bool{false, false, true, false, true, false, false, false}
	if !bytes.Equal(boolBytes(got), boolBytes(want)) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a rule injecting EPIPE into accept was taken")
		}
	}()
	inj.Add(Rule{Op: OpAccept, Fault: FaultEPIPE, Every: 1})
}

func boolBytes(b []bool) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		if v {
			out[i] = 1
		}
	}
	return out
}

// reusedDuringRead is a system whose read of a closed number says EBADF after
// another loop's accept was handed the same number (through the injector, as
// it records new descriptors).
type reusedDuringRead struct {
	sockets.Syscalls
	s *injectedSyscalls
}

func (r reusedDuringRead) Read(fd int, p []byte) (int, error) {
	r.s.created(fd, nil) // the number is born again while the read is on its way
	return 0, unix.EBADF
}

// TestInjectorLateEBADFSparesTheReusedNumber: an EBADF that belongs to a
// number's old file must not mark the number's new socket closed, or the
// injector refuses that live socket's calls and counts them as misuse.
func TestInjectorLateEBADFSparesTheReusedNumber(t *testing.T) {
	inj := NewInjector(1)
	s := &injectedSyscalls{inj: inj}
	s.base = reusedDuringRead{Syscalls: sockets.System(), s: s}
	const fd = 1 << 20 // never a real descriptor here
	if _, err := s.Read(fd, make([]byte, 1)); err != unix.EBADF {
		t.Fatalf("read: %v, want the base's EBADF", err)
	}
	inj.mu.Lock()
	closed := inj.fds[fd] != nil && inj.fds[fd].closed
	inj.mu.Unlock()
	if closed {
		t.Fatal("the late EBADF of the old file marked the reborn number closed")
	}
	if n := inj.CallsOnClosed(); n != 0 {
		t.Fatalf("CallsOnClosed = %d, want 0", n)
	}
}
