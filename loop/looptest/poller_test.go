//go:build linux || darwin || freebsd

package looptest

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/sockets"
)

// fakePoller is a loop.Poller that makes no system call: it records the calls
// and reports the events it is given.
type fakePoller struct {
	calls    []string
	events   []loop.PollEvent // what the next Wait reports
	timeouts []time.Duration
}

const fakePollerFD = 1 << 20 // never a real descriptor here

func (p *fakePoller) Add(fd int, token uint64, read, write bool) error {
	p.calls = append(p.calls, "add")
	return nil
}

func (p *fakePoller) Modify(fd int, token uint64, read, write bool) error {
	p.calls = append(p.calls, "modify")
	return nil
}

func (p *fakePoller) Remove(fd int) error { p.calls = append(p.calls, "remove"); return nil }

func (p *fakePoller) Wait(events []loop.PollEvent, timeout time.Duration) (int, error) {
	p.timeouts = append(p.timeouts, timeout)
	n := copy(events[:cap(events)], p.events)
	p.events = nil
	return n, nil
}

func (p *fakePoller) Wake() error   { return nil }
func (p *fakePoller) Close() error  { p.calls = append(p.calls, "close"); return nil }
func (p *fakePoller) Forget() error { p.calls = append(p.calls, "forget"); return nil }
func (p *fakePoller) FD() int       { return fakePollerFD }
func (p *fakePoller) Probe() error  { return nil }

// fakeSockets answers every read with one byte and records the numbers it
// was asked to close.
type fakeSockets struct {
	sockets.Syscalls
	closed []int
}

func (s *fakeSockets) Read(fd int, p []byte) (int, error) { return 1, nil }
func (s *fakeSockets) Close(fd int) error                 { s.closed = append(s.closed, fd); return nil }

// injectedFakes returns a poller and syscalls through inj over fakes.
func injectedFakes(t *testing.T, inj *Injector) (*fakePoller, *fakeSockets, loop.Poller, sockets.Syscalls) {
	t.Helper()
	base, sys := &fakePoller{}, &fakeSockets{}
	o := inj.Options(&loop.Options{Syscalls: sys, NewPoller: func() (loop.Poller, error) { return base, nil }})
	p, err := o.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	return base, sys, p, o.Syscalls
}

// TestInjectedPollerSpuriousEvents: a spurious readable or EOF hint goes only
// to a registered descriptor with read interest, is added or merged into the
// real event of its token, makes the wait a poll, and the read that follows
// says EAGAIN without reaching the system.
func TestInjectedPollerSpuriousEvents(t *testing.T) {
	inj := NewInjector(1)
	base, _, p, sys := injectedFakes(t, inj)
	const reader, writer = 100, 101
	if err := p.Add(reader, 7, true, false); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(writer, 8, false, true); err != nil {
		t.Fatal(err)
	}
	events := make([]loop.PollEvent, 0, 8)

	inj.Add(Rule{Op: OpPollerWait, Fault: FaultSpuriousReadable, Every: 1, Count: 1})
	n, err := p.Wait(events, time.Second)
	if err != nil || !slices.Equal(events[:n], []loop.PollEvent{{Token: 7, Readable: true}}) {
		t.Fatalf("Wait: %d, %v, %+v; want the reader's spurious readable alone", n, err, events[:n])
	}
	if base.timeouts[0] != 0 {
		t.Errorf("the wait with a spurious event to report waited %v, want a poll", base.timeouts[0])
	}
	if n, err := sys.Read(reader, make([]byte, 4)); n != 0 || err != unix.EAGAIN {
		t.Errorf("the read after the spurious readable: %d, %v; want EAGAIN", n, err)
	}
	if n, err := sys.Read(reader, make([]byte, 4)); n != 1 || err != nil {
		t.Errorf("the next read: %d, %v; want the system's", n, err)
	}

	inj.Add(Rule{Op: OpPollerWait, Fault: FaultSpuriousEOFHint, Every: 1, Count: 1})
	base.events = []loop.PollEvent{{Token: 8, Writable: true}, {Token: 7, Writable: true}}
	n, err = p.Wait(events, time.Second)
	want := []loop.PollEvent{{Token: 8, Writable: true}, {Token: 7, Readable: true, Writable: true, EOFHint: true}}
	if err != nil || !slices.Equal(events[:n], want) {
		t.Fatalf("Wait: %+v, %v; want %+v (the EOF hint merged into the reader's event)", events[:n], err, want)
	}
	if got := inj.Counts(); got[FaultSpuriousReadable] != 1 || got[FaultSpuriousEOFHint] != 1 {
		t.Errorf("Counts = %v", got)
	}

	// With no descriptor of read interest left, a spurious rule has no call to
	// fire on.
	if err := p.Remove(reader); err != nil {
		t.Fatal(err)
	}
	inj.Clear()
	inj.Add(Rule{Op: OpPollerWait, Fault: FaultSpuriousReadable, Every: 1})
	if n, err := p.Wait(events, time.Second); n != 0 || err != nil {
		t.Errorf("Wait with only write interest: %d, %v; want nothing", n, err)
	}
	if n := inj.CallsOnClosed(); n != 0 {
		t.Errorf("CallsOnClosed = %d", n)
	}
}

// TestInjectedPollerEBADF: an injected EBADF of Add closes the descriptor for
// real and of Wait the poller's own; each number is then closed, so a later
// call on it is refused and counted, and a Close of the poller becomes a
// Forget (its number is not closed again).
func TestInjectedPollerEBADF(t *testing.T) {
	inj := NewInjector(1, Rule{Op: OpPollerControl, Fault: FaultEBADF, Every: 1, Count: 1})
	base, sys, p, _ := injectedFakes(t, inj)
	const fd = 100
	if err := p.Add(fd, 7, true, false); err != unix.EBADF {
		t.Fatalf("Add: %v, want EBADF", err)
	}
	if !slices.Equal(sys.closed, []int{fd}) || len(base.calls) != 0 {
		t.Fatalf("closed %v, poller calls %v; want %d closed and no poller call", sys.closed, base.calls, fd)
	}
	if err := p.Modify(fd, 7, true, false); err != unix.EBADF || inj.CallsOnClosed() != 1 {
		t.Fatalf("Modify of the closed number: %v, CallsOnClosed %d; want EBADF, 1", err, inj.CallsOnClosed())
	}

	inj.Add(Rule{Op: OpPollerWait, Fault: FaultEBADF, Every: 1, Count: 1})
	if _, err := p.Wait(make([]loop.PollEvent, 0, 4), time.Second); err != unix.EBADF {
		t.Fatalf("Wait: %v, want EBADF", err)
	}
	if !slices.Equal(sys.closed, []int{fd, fakePollerFD}) {
		t.Fatalf("closed %v, want the poller's number closed too", sys.closed)
	}
	if err := p.Close(); err != unix.EBADF {
		t.Errorf("Close after the poller's number was closed: %v, want EBADF", err)
	}
	if !slices.Equal(base.calls, []string{"forget"}) || inj.CallsOnClosed() != 2 {
		t.Errorf("poller calls %v, CallsOnClosed %d; want only a forget, 2", base.calls, inj.CallsOnClosed())
	}
	if inj.Injected(FaultEBADF) != 2 {
		t.Errorf("Counts = %v", inj.Counts())
	}
}
