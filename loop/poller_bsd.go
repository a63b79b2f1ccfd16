//go:build darwin || freebsd

package loop

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollSyscalls is every system call the pollers make, so that the poller's
// unit tests can replace or precede any result: embed it and override the
// methods to intercept. newPoller(nil) uses pollSystem, the real calls. (Fault
// injection for users wraps the Poller instead: package looptest.)
//
// Contract for implementations: errors are the kernel's errno as a unix.Errno,
// never wrapped; Kqueue returns a close-on-exec descriptor.
type pollSyscalls interface {
	Kqueue() (fd int, err error)
	Kevent(kq int, changes, events []unix.Kevent_t, timeout *unix.Timespec) (n int, err error)
	Close(fd int) error
}

// pollSystem is the real pollSyscalls, over golang.org/x/sys/unix.
type pollSystem struct{}

// Kqueue sets close-on-exec with fcntl (kqueue(2) takes no flags), holding
// syscall.ForkLock so that a concurrent fork cannot inherit the descriptor
// before it is close-on-exec.
func (pollSystem) Kqueue() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	kq, err := unix.Kqueue()
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(kq)
	return kq, nil
}

func (pollSystem) Kevent(kq int, changes, events []unix.Kevent_t, timeout *unix.Timespec) (int, error) {
	return unix.Kevent(kq, changes, events, timeout)
}

func (pollSystem) Close(fd int) error { return unix.Close(fd) }

// pollWakeIdent is the ident of the EVFILT_USER event that wakes the poller.
// Idents are per filter, so it cannot be mistaken for descriptor 0.
const pollWakeIdent = 0

// pollWakeTrigger is wake's change list. It is only read, so every wake may
// share it.
var pollWakeTrigger = [1]unix.Kevent_t{{
	Ident:  pollWakeIdent,
	Filter: unix.EVFILT_USER,
	Fflags: unix.NOTE_TRIGGER,
}}

// kqMaxTimeout bounds wait's timeout: darwin's kevent fails with EINVAL on a
// very long one. The loop waits again when it returns early.
const kqMaxTimeout = 1e6 * time.Second

// kqPoller is the darwin and FreeBSD poller: a kqueue with a level-triggered
// read and write filter per descriptor (each enabled or disabled by interest)
// and an EVFILT_USER event for wakes.
type kqPoller struct {
	sys pollSyscalls
	// kq is the kqueue, or -1 once closed or forgotten. wake reads it under
	// wakeMu; close and forget write it under wakeMu, so that a concurrent wake
	// never triggers a number already closed (and perhaps reused).
	kq     int
	wakeMu sync.Mutex
	// wakePending coalesces wakes: only the wake that sets it calls kevent, and
	// wait clears it when it consumes the wake.
	wakePending atomic.Bool

	// tokens holds each registered descriptor's token, by descriptor. Tokens
	// are not kept in the kevent's udata: it is a pointer field, and a token
	// stored there could look like a heap pointer to the garbage collector.
	tokens []kqRegistration

	// Loop-goroutine scratch, reused so that control calls and wait do not
	// allocate.
	changes [2]unix.Kevent_t
	raw     []unix.Kevent_t
	ts      unix.Timespec
}

type kqRegistration struct {
	token      uint64
	registered bool
}

var (
	_ Poller       = (*kqPoller)(nil)
	_ pollSyscalls = pollSystem{}
)

// The poller's calls, as errors name them.
const (
	pollControlCall = "kevent"
	pollRemoveCall  = "kevent EV_DELETE"
)

// newPoller creates a close-on-exec kqueue with its wakeup event; sys nil means
// the real system calls.
func newPoller(sys pollSyscalls) (Poller, error) {
	if sys == nil {
		sys = pollSystem{}
	}
	kq, err := sys.Kqueue()
	if err != nil {
		return nil, os.NewSyscallError("kqueue", err)
	}
	// EV_CLEAR resets the user event when it is delivered, so one trigger
	// makes one wait return.
	var user [1]unix.Kevent_t
	unix.SetKevent(&user[0], pollWakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := sys.Kevent(kq, user[:], nil, nil); err != nil {
		pollClose(sys, kq)
		return nil, os.NewSyscallError("kevent", err)
	}
	return &kqPoller{sys: sys, kq: kq}, nil
}

// kqEnable is the flag that arms or disarms one filter.
func kqEnable(on bool) int {
	if on {
		return unix.EV_ENABLE
	}
	return unix.EV_DISABLE
}

// change applies flags to fd's read and write filters in one kevent. With no
// room for events, kevent stops at the first change that fails and returns its
// errno, raw, as epoll_ctl would.
func (p *kqPoller) change(fd int, readFlags, writeFlags int) error {
	p.changes = [2]unix.Kevent_t{}
	unix.SetKevent(&p.changes[0], fd, unix.EVFILT_READ, readFlags)
	unix.SetKevent(&p.changes[1], fd, unix.EVFILT_WRITE, writeFlags)
	_, err := p.sys.Kevent(p.kq, p.changes[:], nil, nil)
	return err
}

// Add adds both filters, each enabled or disabled by interest, so that Modify
// only ever enables or disables.
func (p *kqPoller) Add(fd int, token uint64, read, write bool) error {
	if fd < 0 {
		return unix.EBADF
	}
	if err := p.change(fd, unix.EV_ADD|kqEnable(read), unix.EV_ADD|kqEnable(write)); err != nil {
		return err
	}
	p.remember(fd, token)
	return nil
}

// Modify enables or disables the filters without EV_ADD, so that a descriptor
// not registered fails with ENOENT, as EPOLL_CTL_MOD does.
func (p *kqPoller) Modify(fd int, token uint64, read, write bool) error {
	if fd < 0 {
		return unix.EBADF
	}
	if err := p.change(fd, kqEnable(read), kqEnable(write)); err != nil {
		return err
	}
	p.remember(fd, token)
	return nil
}

// Remove deletes both filters. The token is forgotten whatever kevent says:
// after EBADF or ENOENT the kernel holds no filter for fd either.
func (p *kqPoller) Remove(fd int) error {
	if fd < 0 {
		return unix.EBADF
	}
	if fd < len(p.tokens) {
		p.tokens[fd] = kqRegistration{}
	}
	return p.change(fd, unix.EV_DELETE, unix.EV_DELETE)
}

func (p *kqPoller) remember(fd int, token uint64) {
	if fd >= len(p.tokens) {
		grown := make([]kqRegistration, max(fd+1, 2*len(p.tokens)))
		copy(grown, p.tokens)
		p.tokens = grown
	}
	p.tokens[fd] = kqRegistration{token: token, registered: true}
}

func (p *kqPoller) Wait(events []PollEvent, timeout time.Duration) (int, error) {
	events = events[:cap(events)]
	if len(events) == 0 {
		return 0, unix.EINVAL
	}
	if len(p.raw) < len(events) {
		p.raw = make([]unix.Kevent_t, len(events))
	}
	raw := p.raw[:len(events)]
	var ts *unix.Timespec
	if timeout >= 0 {
		p.ts = unix.NsecToTimespec(int64(min(timeout, kqMaxTimeout)))
		ts = &p.ts
	}
	n, err := p.sys.Kevent(p.kq, nil, raw, ts)
	if err != nil {
		return 0, err
	}
	ready := 0
	for i := range raw[:n] {
		ev := &raw[i]
		if ev.Filter == unix.EVFILT_USER {
			// EV_CLEAR reset the event on delivery. A wake after this store
			// triggers it again; one before it was taken by this wait.
			p.wakePending.Store(false)
			continue
		}
		fd := int(ev.Ident)
		if fd < 0 || fd >= len(p.tokens) || !p.tokens[fd].registered {
			continue // removed since: nothing to report it to
		}
		pe := PollEvent{Token: p.tokens[fd].token}
		// EV_EOF with fflags set carries the socket's error (a reset): a
		// hangup, as epoll's EPOLLERR. EV_EOF alone on the read filter is only
		// a hint (R3); on the write filter it means writes will fail, which
		// the write itself reports.
		failed := ev.Flags&unix.EV_EOF != 0 && ev.Fflags != 0
		switch {
		case ev.Flags&unix.EV_ERROR != 0:
			pe.Hangup = true
		case ev.Filter == unix.EVFILT_READ:
			pe.Readable = true
			pe.EOFHint = ev.Flags&unix.EV_EOF != 0
			pe.Hangup = failed
		case ev.Filter == unix.EVFILT_WRITE:
			pe.Writable = true
			pe.Hangup = failed
		default:
			continue
		}
		events[ready] = pe
		ready++
	}
	return ready, nil
}

// Wake triggers the user event unless a wake is already pending. Its errors
// are wrapped, like Close's: no classifier reads them.
func (p *kqPoller) Wake() error {
	if !p.wakePending.CompareAndSwap(false, true) {
		return nil
	}
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	if p.kq < 0 {
		p.wakePending.Store(false)
		return ErrPollerClosed
	}
	for {
		_, err := p.sys.Kevent(p.kq, pollWakeTrigger[:], nil, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Clear the flag, or every later wake would be dropped as pending.
			p.wakePending.Store(false)
			return os.NewSyscallError("kevent", err)
		}
		return nil
	}
}

func (p *kqPoller) Close() error {
	kq := p.release()
	if kq < 0 {
		return ErrPollerClosed
	}
	return pollClose(p.sys, kq)
}

// Forget closes nothing: the wakeup event lives inside the kqueue, whose
// number must not be closed.
func (p *kqPoller) Forget() error {
	if p.release() < 0 {
		return ErrPollerClosed
	}
	return nil
}

// release marks the poller closed and returns the kqueue it had, -1 if it was
// closed already.
func (p *kqPoller) release() int {
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	kq := p.kq
	p.kq = -1
	p.tokens, p.raw = nil, nil
	return kq
}

func (p *kqPoller) FD() int { return p.kq }

func (p *kqPoller) Probe() error {
	if p.kq < 0 {
		return ErrPollerClosed
	}
	var user [1]unix.Kevent_t
	unix.SetKevent(&user[0], pollWakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	_, err := p.sys.Kevent(p.kq, user[:], nil, nil)
	return err
}

// pollClose closes the kqueue. EINTR counts as closed (D4).
func pollClose(sys pollSyscalls, fd int) error {
	if err := sys.Close(fd); err != nil && err != unix.EINTR {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// concurrentControl reports whether p takes Add, Modify and Remove while
// another goroutine waits in it. kqPoller does not: Modify writes the token
// table that Wait reads. The Conns of its loops leave every step to the loop.
func concurrentControl(Poller) bool { return false }
