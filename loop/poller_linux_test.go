package loop

import (
	"errors"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// pollerPatience bounds every wait that should return at once: long enough for
// a loaded machine, short enough that a lost wake fails the test quickly.
const pollerPatience = 5 * time.Second

// newTestPoller returns a poller over sys (nil: the real calls), closed when
// the test ends.
func newTestPoller(t *testing.T, sys pollSyscalls) Poller {
	t.Helper()
	p, err := newPoller(sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil && err != ErrPollerClosed {
			t.Error(err)
		}
	})
	return p
}

// pollerPair is a non-blocking Unix socketpair; closePeer closes one end early.
type pollerPair struct{ fds [2]int }

func newPollerPair(t *testing.T) *pollerPair {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &pollerPair{fds: fds}
	t.Cleanup(func() {
		for i := range s.fds {
			if s.fds[i] >= 0 {
				unix.Close(s.fds[i])
			}
		}
	})
	return s
}

func (s *pollerPair) local() int { return s.fds[0] }

func (s *pollerPair) send(t *testing.T, p string) {
	t.Helper()
	if _, err := unix.Write(s.fds[1], []byte(p)); err != nil {
		t.Fatal(err)
	}
}

func (s *pollerPair) closePeer(t *testing.T) {
	t.Helper()
	if err := unix.Close(s.fds[1]); err != nil {
		t.Fatal(err)
	}
	s.fds[1] = -1
}

// pollerWait waits like the loop does: EINTR (a signal to the thread) waits
// again, for the time left.
func pollerWait(t *testing.T, p Poller, timeout time.Duration) []PollEvent {
	t.Helper()
	events := make([]PollEvent, 8)
	deadline := time.Now().Add(timeout)
	for {
		n, err := p.Wait(events, timeout)
		if err == unix.EINTR {
			if timeout > 0 {
				timeout = max(time.Until(deadline), 0)
			}
			continue
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return events[:n]
	}
}

// pollerWaitOne waits for exactly one event.
func pollerWaitOne(t *testing.T, p Poller) PollEvent {
	t.Helper()
	events := pollerWait(t, p, pollerPatience)
	if len(events) != 1 {
		t.Fatalf("wait: %d events %+v, want 1", len(events), events)
	}
	return events[0]
}

// pollerWaitNone checks that a short wait reports nothing.
func pollerWaitNone(t *testing.T, p Poller) {
	t.Helper()
	if events := pollerWait(t, p, 20*time.Millisecond); len(events) != 0 {
		t.Fatalf("wait: %+v, want no event", events)
	}
}

// pollerOpenFDs counts this process's open descriptors.
func pollerOpenFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// pollerIsOpen reports whether fd is an open descriptor, checking that it is
// close-on-exec.
func pollerIsOpen(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err == unix.EBADF {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor %d is not close-on-exec", fd)
	}
	return true
}

func TestPollerReadable(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	const token = 3<<32 | 7
	if err := p.Add(s.local(), token, true, false); err != nil {
		t.Fatal(err)
	}
	pollerWaitNone(t, p)
	s.send(t, "x")
	want := PollEvent{Token: token, Readable: true}
	if ev := pollerWaitOne(t, p); ev != want {
		t.Fatalf("got %+v, want %+v", ev, want)
	}
	// Level-triggered: unread data is reported again.
	if ev := pollerWaitOne(t, p); ev != want {
		t.Fatalf("second wait: got %+v, want %+v", ev, want)
	}
}

func TestPollerWritable(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 1, false, true); err != nil {
		t.Fatal(err)
	}
	want := PollEvent{Token: 1, Writable: true}
	if ev := pollerWaitOne(t, p); ev != want {
		t.Fatalf("got %+v, want %+v", ev, want)
	}
}

// TestPollerEOFHint: the peer's shutdown(SHUT_WR) is reported as readable with
// EPOLLRDHUP, and is not a hangup: the local side may still write.
func TestPollerEOFHint(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 2, true, false); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(s.fds[1], unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	want := PollEvent{Token: 2, Readable: true, EOFHint: true}
	if ev := pollerWaitOne(t, p); ev != want {
		t.Fatalf("got %+v, want %+v", ev, want)
	}
}

// TestPollerHangup: the peer's close is a hangup, reported even with no
// interest (epoll always reports EPOLLHUP and EPOLLERR).
func TestPollerHangup(t *testing.T) {
	for _, tc := range []struct {
		name string
		read bool
		want PollEvent
	}{
		{"no interest", false, PollEvent{Token: 4, Hangup: true}},
		{"read interest", true, PollEvent{Token: 4, Readable: true, EOFHint: true, Hangup: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPoller(t, nil)
			s := newPollerPair(t)
			if err := p.Add(s.local(), 4, tc.read, false); err != nil {
				t.Fatal(err)
			}
			pollerWaitNone(t, p)
			s.closePeer(t)
			if ev := pollerWaitOne(t, p); ev != tc.want {
				t.Fatalf("got %+v, want %+v", ev, tc.want)
			}
		})
	}
}

func TestPollerRemove(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 5, true, true); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(s.local()); err != nil {
		t.Fatal(err)
	}
	s.send(t, "x")
	pollerWaitNone(t, p)
	s.closePeer(t)
	pollerWaitNone(t, p)
	if err := p.Remove(s.local()); err != unix.ENOENT {
		t.Fatalf("second remove: %v, want ENOENT", err)
	}
}

func TestPollerModify(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 6, true, false); err != nil {
		t.Fatal(err)
	}
	pollerWaitNone(t, p) // writable, but not asked
	if err := p.Modify(s.local(), 6, false, true); err != nil {
		t.Fatal(err)
	}
	if ev, want := pollerWaitOne(t, p), (PollEvent{Token: 6, Writable: true}); ev != want {
		t.Fatalf("write interest: got %+v, want %+v", ev, want)
	}
	if err := p.Modify(s.local(), 6, false, false); err != nil {
		t.Fatal(err)
	}
	s.send(t, "x")
	pollerWaitNone(t, p) // readable and writable, neither asked
	// A new token takes effect with the interest.
	if err := p.Modify(s.local(), 7<<32|6, true, false); err != nil {
		t.Fatal(err)
	}
	if ev, want := pollerWaitOne(t, p), (PollEvent{Token: 7<<32 | 6, Readable: true}); ev != want {
		t.Fatalf("read interest: got %+v, want %+v", ev, want)
	}
	if err := p.Modify(s.local(), 6, true, true); err != nil {
		t.Fatal(err)
	}
	if ev, want := pollerWaitOne(t, p), (PollEvent{Token: 6, Readable: true, Writable: true}); ev != want {
		t.Fatalf("both: got %+v, want %+v", ev, want)
	}
}

// TestPollerTokens: tokens come back whole, their high half included, and
// each with its own descriptor.
func TestPollerTokens(t *testing.T) {
	p := newTestPoller(t, nil)
	tokens := []uint64{0, 1, 0xdeadbeef<<32 | 0xfeedface, math.MaxUint64 - 1}
	want := map[uint64]bool{}
	for _, token := range tokens {
		s := newPollerPair(t)
		if err := p.Add(s.local(), token, false, true); err != nil {
			t.Fatal(err)
		}
		want[token] = true
	}
	events := pollerWait(t, p, pollerPatience)
	if len(events) != len(tokens) {
		t.Fatalf("%d events %+v, want %d", len(events), events, len(tokens))
	}
	for _, ev := range events {
		if !want[ev.Token] {
			t.Errorf("unexpected or repeated token %#x", ev.Token)
		}
		delete(want, ev.Token)
	}
}

// TestPollerControlErrors: the kernel's errno comes back raw, for
// ClassifyPollerControl.
func TestPollerControlErrors(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 1, true, false); err != nil {
		t.Fatal(err)
	}
	closed := newPollerPair(t)
	closedFD := closed.fds[0]
	unix.Close(closedFD)
	closed.fds[0] = -1
	for _, tc := range []struct {
		name string
		err  error
		want sm.PollerControlResult
	}{
		{"add twice", p.Add(s.local(), 1, true, false), sm.PollerControlResultAlreadyRegistered},
		{"modify unregistered", p.Modify(s.fds[1], 1, true, false), sm.PollerControlResultNotRegistered},
		{"remove unregistered", p.Remove(s.fds[1]), sm.PollerControlResultNotRegistered},
		{"add closed", p.Add(closedFD, 1, true, false), sm.PollerControlResultDescriptorInvalid},
		{"add wake token", p.Add(s.fds[1], pollWakeToken, true, false), sm.PollerControlResultOtherError},
	} {
		if _, raw := tc.err.(unix.Errno); !raw {
			t.Errorf("%s: %#v is not a raw unix.Errno", tc.name, tc.err)
		}
		if got := sockets.ClassifyPollerControl(tc.err); got != tc.want {
			t.Errorf("%s: %v classified %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// pollerFaults injects errors in front of the real calls.
type pollerFaults struct {
	pollSyscalls
	mu                             sync.Mutex
	createErr, eventfdErr, ctlErr  error
	waitErr, readErr, writeErr     error
	reads, writes, closes, creates int
}

func (f *pollerFaults) EpollCreate1(flags int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return -1, f.createErr
	}
	f.creates++
	return f.pollSyscalls.EpollCreate1(flags)
}

func (f *pollerFaults) Eventfd(initval uint, flags int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.eventfdErr != nil {
		return -1, f.eventfdErr
	}
	f.creates++
	return f.pollSyscalls.Eventfd(initval, flags)
}

func (f *pollerFaults) EpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	f.mu.Lock()
	err := f.ctlErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.pollSyscalls.EpollCtl(epfd, op, fd, ev)
}

func (f *pollerFaults) EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	f.mu.Lock()
	err := f.waitErr
	f.mu.Unlock()
	if err != nil {
		return -1, err // as the kernel's wrapper does
	}
	return f.pollSyscalls.EpollWait(epfd, events, msec)
}

func (f *pollerFaults) Read(fd int, p []byte) (int, error) {
	f.mu.Lock()
	f.reads++
	err := f.readErr
	f.mu.Unlock()
	if err != nil {
		return -1, err
	}
	return f.pollSyscalls.Read(fd, p)
}

func (f *pollerFaults) Write(fd int, p []byte) (int, error) {
	f.mu.Lock()
	f.writes++
	err := f.writeErr
	f.writeErr = nil // once
	f.mu.Unlock()
	if err != nil {
		return -1, err
	}
	return f.pollSyscalls.Write(fd, p)
}

func (f *pollerFaults) Close(fd int) error {
	f.mu.Lock()
	f.closes++
	f.mu.Unlock()
	return f.pollSyscalls.Close(fd)
}

func (f *pollerFaults) set(fn func(f *pollerFaults)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *pollerFaults) count(n *int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *n
}

func newPollerFaults() *pollerFaults { return &pollerFaults{pollSyscalls: pollSystem{}} }

// TestPollerInjectedWaitErrors: EINTR and EBADF from epoll_wait come back raw,
// count 0, and are classified as the table expects; the poller works on after.
func TestPollerInjectedWaitErrors(t *testing.T) {
	f := newPollerFaults()
	p := newTestPoller(t, f)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 9, false, true); err != nil {
		t.Fatal(err)
	}
	events := make([]PollEvent, 4)
	for _, tc := range []struct {
		errno unix.Errno
		want  sm.PollerWaitResult
	}{
		{unix.EINTR, sm.PollerWaitResultInterrupted},
		{unix.EBADF, sm.PollerWaitResultDescriptorInvalid},
		{unix.EINVAL, sm.PollerWaitResultOtherError},
	} {
		f.set(func(f *pollerFaults) { f.waitErr = tc.errno })
		n, err := p.Wait(events, -1)
		if n != 0 || err != tc.errno {
			t.Errorf("wait with %v injected: (%d, %#v), want (0, the raw errno)", tc.errno, n, err)
		}
		if got := sockets.ClassifyPollerWait(n, err); got != tc.want {
			t.Errorf("%v classified %v, want %v", tc.errno, got, tc.want)
		}
	}
	f.set(func(f *pollerFaults) { f.waitErr = nil })
	if ev, want := pollerWaitOne(t, p), (PollEvent{Token: 9, Writable: true}); ev != want {
		t.Fatalf("after the faults: got %+v, want %+v", ev, want)
	}
	n, err := p.Wait(events, -1)
	if got := sockets.ClassifyPollerWait(n, err); got != sm.PollerWaitResultReady {
		t.Fatalf("(%d, %v) classified %v, want ready", n, err, got)
	}
	if got := sockets.ClassifyPollerWait(p.Wait(events, 0)); got != sm.PollerWaitResultReady {
		t.Fatalf("classified %v, want ready", got)
	}
	if err := p.Remove(s.local()); err != nil {
		t.Fatal(err)
	}
	if got := sockets.ClassifyPollerWait(p.Wait(events, 0)); got != sm.PollerWaitResultTimeout {
		t.Fatalf("classified %v, want timeout", got)
	}
}

// TestPollerInjectedControlErrors: EBADF (and others) from epoll_ctl come back
// raw from add, modify and remove.
func TestPollerInjectedControlErrors(t *testing.T) {
	f := newPollerFaults()
	p := newTestPoller(t, f)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 1, true, false); err != nil {
		t.Fatal(err)
	}
	for _, errno := range []unix.Errno{unix.EBADF, unix.ENOMEM, unix.EINTR} {
		f.set(func(f *pollerFaults) { f.ctlErr = errno })
		for name, err := range map[string]error{
			"add":    p.Add(s.fds[1], 2, true, false),
			"modify": p.Modify(s.local(), 1, true, true),
			"remove": p.Remove(s.local()),
		} {
			if err != errno {
				t.Errorf("%s with %v injected: %#v, want the raw errno", name, errno, err)
			}
		}
	}
	f.set(func(f *pollerFaults) { f.ctlErr = nil })
	if err := p.Modify(s.local(), 1, false, true); err != nil {
		t.Fatal(err)
	}
}

// TestPollerSetupErrors: newPoller wraps its errors with the call's name,
// closes what it had opened, and still lets the classifier see the errno.
func TestPollerSetupErrors(t *testing.T) {
	for _, tc := range []struct {
		name, call string
		inject     func(f *pollerFaults)
	}{
		{"epoll_create1", "epoll_create1", func(f *pollerFaults) { f.createErr = unix.EMFILE }},
		{"eventfd", "eventfd", func(f *pollerFaults) { f.eventfdErr = unix.EMFILE }},
		{"epoll_ctl", "epoll_ctl", func(f *pollerFaults) { f.ctlErr = unix.EMFILE }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := pollerOpenFDs(t)
			f := newPollerFaults()
			f.set(tc.inject)
			p, err := newPoller(f)
			if p != nil {
				t.Fatalf("newPoller returned a poller %v with %v", p, err)
			}
			var se *os.SyscallError
			if !errors.As(err, &se) || se.Syscall != tc.call || !errors.Is(err, unix.EMFILE) {
				t.Fatalf("newPoller: %#v, want an os.SyscallError for %s wrapping EMFILE", err, tc.call)
			}
			if got := sockets.ClassifyPollerControl(err); got != sm.PollerControlResultExhausted {
				t.Errorf("%v classified %v, want exhausted", err, got)
			}
			if c, n := f.count(&f.closes), f.count(&f.creates); c != n {
				t.Errorf("%d descriptors created, %d closed", n, c)
			}
			if after := pollerOpenFDs(t); after != before {
				t.Errorf("descriptors: %d before, %d after", before, after)
			}
		})
	}
}

// TestPollerWakeFromAnotherGoroutine: a wake from another goroutine ends a
// wait with no timeout promptly; the wake is not reported as an event.
func TestPollerWakeFromAnotherGoroutine(t *testing.T) {
	p := newTestPoller(t, nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		if err := p.Wake(); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	done := make(chan []PollEvent, 1)
	go func() {
		events := make([]PollEvent, 4)
		for {
			n, err := p.Wait(events, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Error(err)
			}
			done <- events[:n]
			return
		}
	}()
	select {
	case events := <-done:
		if len(events) != 0 {
			t.Errorf("woken wait reported %+v, want no event", events)
		}
		t.Logf("woken after %v", time.Since(start))
	case <-time.After(pollerPatience):
		p.Wake() // let the waiting goroutine end
		<-done
		t.Fatalf("wait(-1) not woken after %v", pollerPatience)
	}
}

// TestPollerWakesCoalesce: many wakes before a wait make one eventfd write,
// one wait return and one drain; the next wait is not woken.
func TestPollerWakesCoalesce(t *testing.T) {
	f := newPollerFaults()
	p := newTestPoller(t, f)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if err := p.Wake(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if w := f.count(&f.writes); w != 1 {
		t.Errorf("800 wakes made %d eventfd writes, want 1", w)
	}
	start := time.Now()
	if events := pollerWait(t, p, -1); len(events) != 0 {
		t.Fatalf("woken wait reported %+v", events)
	}
	if d := time.Since(start); d > pollerPatience {
		t.Fatalf("wait took %v", d)
	}
	if r := f.count(&f.reads); r != 1 {
		t.Errorf("%d eventfd reads, want 1", r)
	}
	start = time.Now()
	pollerWaitNone(t, p)
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Errorf("second wait returned after %v: a wake was still pending", d)
	}
	// The next wake writes again.
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if w := f.count(&f.writes); w != 2 {
		t.Errorf("%d eventfd writes, want 2", w)
	}
}

// TestPollerWakeWithEvents: a wake beside real readiness reports only the
// readiness.
func TestPollerWakeWithEvents(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 8, false, true); err != nil {
		t.Fatal(err)
	}
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if ev, want := pollerWaitOne(t, p), (PollEvent{Token: 8, Writable: true}); ev != want {
		t.Fatalf("got %+v, want %+v", ev, want)
	}
}

// TestPollerWakeFailure: a failed eventfd write is reported, wrapped, and does
// not leave the wake flag set: the next wake writes again.
func TestPollerWakeFailure(t *testing.T) {
	f := newPollerFaults()
	p := newTestPoller(t, f)
	f.set(func(f *pollerFaults) { f.writeErr = unix.EBADF })
	err := p.Wake()
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "write" || !errors.Is(err, unix.EBADF) {
		t.Fatalf("wake: %#v, want an os.SyscallError for write wrapping EBADF", err)
	}
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if w := f.count(&f.writes); w != 2 {
		t.Fatalf("%d eventfd writes, want 2", w)
	}
	if events := pollerWait(t, p, pollerPatience); len(events) != 0 {
		t.Fatalf("woken wait reported %+v", events)
	}
}

func TestPollerTimeout(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 1, true, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if events := pollerWait(t, p, 0); len(events) != 0 {
		t.Fatalf("wait(0): %+v", events)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("wait(0) took %v", d)
	}
	for _, timeout := range []time.Duration{time.Microsecond, 30 * time.Millisecond} {
		start = time.Now()
		if events := pollerWait(t, p, timeout); len(events) != 0 {
			t.Fatalf("wait(%v): %+v", timeout, events)
		}
		if d := time.Since(start); d < timeout {
			t.Errorf("wait(%v) returned after %v", timeout, d)
		}
	}
	if n, err := p.Wait(nil, 0); n != 0 || err != unix.EINVAL {
		t.Errorf("wait with no room: (%d, %v), want (0, EINVAL)", n, err)
	}
}

func TestEpollTimeout(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{-1, -1},
		{-time.Hour, -1},
		{0, 0},
		{1, 1},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 2},
		{time.Second, 1000},
		{math.MaxInt64, math.MaxInt32},
	} {
		if got := epollTimeout(tc.d); got != tc.want {
			t.Errorf("epollTimeout(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestPollerCloseReleasesDescriptors: close releases the epoll instance and the
// eventfd, exactly once.
func TestPollerCloseReleasesDescriptors(t *testing.T) {
	before := pollerOpenFDs(t)
	f := newPollerFaults()
	p, err := newPoller(f)
	if err != nil {
		t.Fatal(err)
	}
	epfd, efd := p.FD(), p.(*epoller).efd
	if !pollerIsOpen(t, epfd) || !pollerIsOpen(t, efd) {
		t.Fatal("the poller's descriptors are not open")
	}
	if n := pollerOpenFDs(t); n != before+2 {
		t.Errorf("descriptors: %d before newPoller, %d after, want 2 more", before, n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := pollerOpenFDs(t); n != before {
		t.Errorf("descriptors: %d before newPoller, %d after close", before, n)
	}
	if pollerIsOpen(t, epfd) || pollerIsOpen(t, efd) {
		t.Error("a descriptor is still open after close")
	}
	if p.FD() != -1 {
		t.Errorf("FD() = %d after Close, want -1", p.FD())
	}
	for name, fn := range map[string]func() error{"Close": p.Close, "Forget": p.Forget, "Wake": p.Wake} {
		if err := fn(); err != ErrPollerClosed {
			t.Errorf("%s after close: %v, want ErrPollerClosed", name, err)
		}
	}
	if c := f.count(&f.closes); c != 2 {
		t.Errorf("%d close calls, want 2", c)
	}
}

// TestPollerForgetKeepsPollerNumber: forget releases the eventfd only; the
// epoll descriptor stays open (here, until the test closes it).
func TestPollerForgetKeepsPollerNumber(t *testing.T) {
	before := pollerOpenFDs(t)
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	epfd, efd := p.FD(), p.(*epoller).efd
	if err := p.Forget(); err != nil {
		t.Fatal(err)
	}
	if n := pollerOpenFDs(t); n != before+1 {
		t.Errorf("descriptors: %d before newPoller, %d after forget, want 1 more", before, n)
	}
	if !pollerIsOpen(t, epfd) {
		t.Error("forget closed the epoll descriptor")
	}
	if pollerIsOpen(t, efd) {
		t.Error("forget left the eventfd open")
	}
	for name, fn := range map[string]func() error{"Close": p.Close, "Forget": p.Forget, "Wake": p.Wake} {
		if err := fn(); err != ErrPollerClosed {
			t.Errorf("%s after forget: %v, want ErrPollerClosed", name, err)
		}
	}
	if err := unix.Close(epfd); err != nil {
		t.Fatal(err)
	}
	if n := pollerOpenFDs(t); n != before {
		t.Errorf("descriptors: %d before newPoller, %d at the end", before, n)
	}
}

// TestPollerWakeRacesClose: wakes from other goroutines while the poller
// closes either succeed or say ErrPollerClosed (run with -race).
func TestPollerWakeRacesClose(t *testing.T) {
	for range 20 {
		p, err := newPoller(nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					if err := p.Wake(); err != nil && err != ErrPollerClosed {
						t.Error(err)
					}
				}
			}()
		}
		pollerWait(t, p, 0)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

// pollerRaceEnabled reports whether the test binary was built with -race.
func pollerRaceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// TestPollerWaitDoesNotAllocate: wait with readiness, with a wake and with
// nothing to report makes no allocation once its buffer is sized.
func TestPollerWaitDoesNotAllocate(t *testing.T) {
	p := newTestPoller(t, nil)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 1, true, false); err != nil {
		t.Fatal(err)
	}
	events := make([]PollEvent, 64)
	var failed atomic.Value
	check := func(want int) {
		n, err := p.Wait(events, 0)
		if err != nil && err != unix.EINTR {
			failed.Store(err)
		} else if err == nil && n != want {
			failed.Store(errors.New("wrong event count"))
		}
	}
	allocs := map[string]float64{
		"nothing": testing.AllocsPerRun(100, func() { check(0) }),
		"wake":    testing.AllocsPerRun(100, func() { p.Wake(); check(0) }),
	}
	s.send(t, "x")
	allocs["readable and wake"] = testing.AllocsPerRun(100, func() { p.Wake(); check(1) })
	allocs["readable"] = testing.AllocsPerRun(100, func() { check(1) })
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	for name, n := range allocs {
		if n == 0 {
			continue
		}
		if pollerRaceEnabled() {
			t.Skipf("%s: %v allocations per wait under the race detector, which allocates on its own; run without -race", name, n)
		}
		t.Errorf("%s: %v allocations per wait, want 0", name, n)
	}
}

// TestPollerNoLostWakeup: wakes racing with the wait that consumes an earlier one
// must never leave the poller unable to be woken (the flag set, nothing in the
// eventfd). Every wait return is counted; after each pair of wakes the count must
// grow within a second.
func TestPollerNoLostWakeup(t *testing.T) {
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	wakesAreNeverLost(t, p, 20000)
}

// wakesAreNeverLost runs a goroutine that waits in p without a timeout, over
// and over, and checks n times that two wakes back to back (the second often
// lands while the first is being consumed) make a wait return.
func wakesAreNeverLost(t *testing.T, p Poller, n int) {
	t.Helper()
	var returns atomic.Int64
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		events := make([]PollEvent, 8)
		for !stop.Load() {
			p.Wait(events, -1)
			returns.Add(1)
		}
	}()
	for i := range n {
		before := returns.Load()
		p.Wake()
		p.Wake()
		deadline := time.Now().Add(time.Second)
		for returns.Load() == before {
			if time.Now().After(deadline) {
				t.Fatalf("iteration %d: no wait returned after a wake (lost wakeup)", i)
			}
			runtime.Gosched()
		}
	}
	stop.Store(true)
	for {
		p.Wake()
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestPollerParkedWait: with parking on, a wait that would block parks its
// goroutine in the runtime's poller (the goroutine dump says "IO wait", where
// a thread blocked in epoll_wait says "syscall"), and still returns for what
// a blocking wait returns for: readiness (again, level-triggered), a Wake
// from another goroutine, its timeout. Closing the poller closes the
// duplicate the runtime watched.
func TestPollerParkedWait(t *testing.T) {
	before := pollerOpenFDs(t)
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := p.(*epoller)
	e.setParking(true)
	s := newPollerPair(t)
	if err := p.Add(s.local(), 5, true, false); err != nil {
		t.Fatal(err)
	}

	type result struct {
		events []PollEvent
		err    error
	}
	waitIn := func(timeout time.Duration) chan result {
		done := make(chan result, 1)
		go func() {
			events := make([]PollEvent, 4)
			n, err := p.Wait(events, timeout)
			done <- result{events[:n], err}
		}()
		return done
	}
	parked := func() {
		t.Helper()
		awaitGoroutine(t, "parked in the wait", isParkedWait)
	}
	get := func(done chan result) result {
		t.Helper()
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r
		case <-time.After(pollerPatience):
			p.Wake()
			t.Fatal("the parked wait did not return")
			return result{}
		}
	}

	done := waitIn(-1)
	parked()
	s.send(t, "x")
	if r := get(done); len(r.events) != 1 || r.events[0] != (PollEvent{Token: 5, Readable: true}) {
		t.Fatalf("after a send: %+v", r.events)
	}
	// Unread, the byte is reported again without parking.
	if r := get(waitIn(-1)); len(r.events) != 1 {
		t.Fatalf("level-triggered: %+v", r.events)
	}
	var b [1]byte
	if _, err := unix.Read(s.local(), b[:]); err != nil {
		t.Fatal(err)
	}

	done = waitIn(-1)
	parked()
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if r := get(done); len(r.events) != 0 {
		t.Fatalf("woken: %+v, want no event", r.events)
	}

	start := time.Now()
	if r := get(waitIn(30 * time.Millisecond)); len(r.events) != 0 {
		t.Fatalf("timed out: %+v", r.events)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("a 30ms wait returned after %v", d)
	}
	// A wait without a timeout after one with it is not cut short by the old deadline.
	done = waitIn(-1)
	parked()
	time.Sleep(50 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("a wait without a timeout returned %+v, %v", r.events, r.err)
	default:
	}
	p.Wake()
	get(done)

	if e.park == nil {
		t.Fatal("no parking descriptor after parked waits")
	}
	dup := int(e.park.Fd())
	if n := pollerOpenFDs(t); n != before+3+2 {
		t.Errorf("descriptors: %d before, %d while parking (want epoll, eventfd, duplicate, and the pair)", before, n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if pollerIsOpen(t, dup) {
		t.Error("the parking duplicate is open after Close")
	}
}

// TestPollerParkedNoLostWakeup: wakes racing a parked wait are never lost.
func TestPollerParkedNoLostWakeup(t *testing.T) {
	p := newTestPoller(t, nil)
	p.(*epoller).setParking(true)
	wakesAreNeverLost(t, p, 5000)
}

// awaitGoroutine returns once the goroutine dump shows a goroutine for which
// match holds, and fails the test, with the dump, if none does within
// pollerPatience.
func awaitGoroutine(t *testing.T, what string, match func(g string) bool) {
	t.Helper()
	deadline := time.Now().Add(pollerPatience)
	for {
		buf := make([]byte, 1<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(dump, "\n\n") {
			if match(g) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine %s:\n%s", what, dump)
		}
		time.Sleep(time.Millisecond)
	}
}

// isParkedWait: the goroutine is parked in the runtime's poller inside a
// parked wait; one blocked in epoll_wait shows "syscall" instead.
func isParkedWait(g string) bool {
	return strings.Contains(g, "parkedWait") && strings.Contains(g, "[IO wait")
}

// TestPollerParkedDeadlineFailureBlocks: a parked wait whose deadline cannot
// be set (here the runtime's file was closed behind the poller) does not
// park without it, which would sleep through the loop's timers: it waits
// blocked, with its timeout, and the poller parks no more.
func TestPollerParkedDeadlineFailureBlocks(t *testing.T) {
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := p.(*epoller)
	e.setParking(true)
	if n, err := p.Wait(make([]PollEvent, 4), time.Millisecond); n != 0 || err != nil { // makes the duplicate
		t.Fatalf("Wait(1ms) = %d, %v", n, err)
	}
	park := e.park
	done := make(chan error, 1)
	go func() {
		_, err := p.Wait(make([]PollEvent, 4), -1)
		done <- err
	}()
	awaitGoroutine(t, "parked in the wait", isParkedWait)
	if err := park.Close(); err != nil { // the duplicate, closed behind the poller
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the wait parked on a closed file returned no error")
	}
	start := time.Now()
	n, err := p.Wait(make([]PollEvent, 4), 30*time.Millisecond)
	if n != 0 || err != nil {
		t.Fatalf("Wait(30ms) = %d, %v; want a wait that timed out", n, err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("a 30ms wait returned after %v", d)
	}
	if e.parkErr == nil {
		t.Error("the poller still parks after its deadline could not be set")
	}
	if err := p.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Close = %v, want the duplicate's os.ErrClosed joined", err)
	}
}
