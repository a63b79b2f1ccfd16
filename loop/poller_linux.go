package loop

import (
	"encoding/binary"
	"errors"
	"math"
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
// never wrapped; EpollWait fills events as the kernel does (a fake may edit
// the entries, decoding and encoding tokens with epollToken and
// setEpollToken).
type pollSyscalls interface {
	EpollCreate1(flags int) (fd int, err error)
	// EpollCtl's event is nil for EPOLL_CTL_DEL.
	EpollCtl(epfd, op, fd int, event *unix.EpollEvent) error
	EpollWait(epfd int, events []unix.EpollEvent, msec int) (n int, err error)
	Eventfd(initval uint, flags int) (fd int, err error)
	// Read and Write are on the eventfd only.
	Read(fd int, p []byte) (n int, err error)
	Write(fd int, p []byte) (n int, err error)
	Close(fd int) error
}

// pollSystem is the real pollSyscalls, over golang.org/x/sys/unix.
type pollSystem struct{}

func (pollSystem) EpollCreate1(flags int) (int, error) { return unix.EpollCreate1(flags) }

func (pollSystem) EpollCtl(epfd, op, fd int, event *unix.EpollEvent) error {
	return unix.EpollCtl(epfd, op, fd, event)
}

func (pollSystem) EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	return unix.EpollWait(epfd, events, msec)
}

func (pollSystem) Eventfd(initval uint, flags int) (int, error) { return unix.Eventfd(initval, flags) }
func (pollSystem) Read(fd int, p []byte) (int, error)           { return unix.Read(fd, p) }
func (pollSystem) Write(fd int, p []byte) (int, error)          { return unix.Write(fd, p) }
func (pollSystem) Close(fd int) error                           { return unix.Close(fd) }

// pollWakeToken marks the eventfd's registration. add and modify refuse it
// (EINVAL), so that no registration's events are mistaken for a wake.
const pollWakeToken = math.MaxUint64

// pollWakeValue is what wake adds to the eventfd's counter: 1, in the host's
// byte order. It is only read, so every wake may share it.
var pollWakeValue = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}()

// epoller is the Linux poller: a level-triggered epoll instance and an eventfd
// registered in it for wakes.
type epoller struct {
	sys  pollSyscalls
	epfd int
	// efd is the eventfd, or -1 once closed or forgotten. wake reads it under
	// wakeMu; close and forget write it under wakeMu, so that a concurrent wake
	// never writes to a number already closed (and perhaps reused).
	efd    int
	wakeMu sync.Mutex
	// wakePending coalesces wakes: only the wake that sets it writes to the
	// eventfd, and wait clears it when it consumes the wake.
	wakePending atomic.Bool

	// Loop-goroutine scratch, reused so that add, modify and wait do not
	// allocate.
	ctlEvent unix.EpollEvent
	raw      []unix.EpollEvent
	drain    [8]byte

	// Parking (setParking): a wait that would block parks the loop's
	// goroutine in the Go runtime's poller instead, on park, a duplicate of
	// epfd that the runtime watches. Loop-goroutine state.
	parking   bool
	park      *os.File
	parkConn  syscall.RawConn
	parkTimed bool  // park has a read deadline set
	parkErr   error // setting park up failed: block as before
	// parkPoll, bound once (a closure per wait would allocate), polls into
	// parkRaw and leaves its result in parkN and parkPollErr.
	parkPoll    func(uintptr) bool
	parkRaw     []unix.EpollEvent
	parkN       int
	parkPollErr error
}

var (
	_ Poller       = (*epoller)(nil)
	_ pollSyscalls = pollSystem{}
)

// The poller's calls, as errors name them.
const (
	pollControlCall = "epoll_ctl"
	pollRemoveCall  = "epoll_ctl DEL"
)

// newPoller creates an epoll instance and its wakeup eventfd, both
// close-on-exec; sys nil means the real system calls.
func newPoller(sys pollSyscalls) (Poller, error) {
	if sys == nil {
		sys = pollSystem{}
	}
	epfd, err := sys.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	efd, err := sys.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		pollClose(sys, epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	p := &epoller{sys: sys, epfd: epfd, efd: efd}
	if err := p.control(unix.EPOLL_CTL_ADD, efd, pollWakeToken, unix.EPOLLIN); err != nil {
		pollClose(sys, efd)
		pollClose(sys, epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return p, nil
}

// epollInterest is the epoll event mask for an interest. EPOLLRDHUP comes with
// read interest only: it is the read side's EOF hint. EPOLLHUP and EPOLLERR
// need no asking; the kernel always reports them.
func epollInterest(read, write bool) uint32 {
	var events uint32
	if read {
		events |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if write {
		events |= unix.EPOLLOUT
	}
	return events
}

// epollToken returns the token an event carries in its 64-bit epoll_data.
func epollToken(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// setEpollToken stores token in an event's 64-bit epoll_data. The kernel hands
// the two halves back as it got them, so the split works in either byte order.
func setEpollToken(ev *unix.EpollEvent, token uint64) {
	ev.Fd = int32(uint32(token))
	ev.Pad = int32(uint32(token >> 32))
}

func (p *epoller) control(op, fd int, token uint64, events uint32) error {
	p.ctlEvent = unix.EpollEvent{Events: events}
	setEpollToken(&p.ctlEvent, token)
	return p.sys.EpollCtl(p.epfd, op, fd, &p.ctlEvent)
}

func (p *epoller) Add(fd int, token uint64, read, write bool) error {
	if token == pollWakeToken {
		return unix.EINVAL
	}
	return p.control(unix.EPOLL_CTL_ADD, fd, token, epollInterest(read, write))
}

func (p *epoller) Modify(fd int, token uint64, read, write bool) error {
	if token == pollWakeToken {
		return unix.EINVAL
	}
	return p.control(unix.EPOLL_CTL_MOD, fd, token, epollInterest(read, write))
}

func (p *epoller) Remove(fd int) error {
	return p.sys.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// epollTimeout converts wait's timeout to epoll_wait's milliseconds, rounding
// up: a wait that returned before its timer was due would make the loop spin.
func epollTimeout(d time.Duration) int {
	switch {
	case d < 0:
		return -1
	case d == 0:
		return 0
	case d >= math.MaxInt32*time.Millisecond:
		return math.MaxInt32
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

func (p *epoller) Wait(events []PollEvent, timeout time.Duration) (int, error) {
	events = events[:cap(events)]
	if len(events) == 0 {
		return 0, unix.EINVAL
	}
	if len(p.raw) < len(events) {
		p.raw = make([]unix.EpollEvent, len(events))
	}
	raw := p.raw[:len(events)]
	var n int
	var err error
	if p.parking && timeout != 0 && p.parkErr == nil {
		n, err = p.parkedWait(raw, timeout)
	} else {
		n, err = p.sys.EpollWait(p.epfd, raw, epollTimeout(timeout))
	}
	if err != nil {
		return 0, err
	}
	ready := 0
	for i := range raw[:n] {
		ev := &raw[i]
		token := epollToken(ev)
		if token == pollWakeToken {
			if err := p.consumeWake(); err != nil {
				// The events already taken are not lost: level-triggered epoll
				// reports them again on the next wait.
				return 0, err
			}
			continue
		}
		events[ready] = PollEvent{
			Token:    token,
			Readable: ev.Events&unix.EPOLLIN != 0,
			Writable: ev.Events&unix.EPOLLOUT != 0,
			EOFHint:  ev.Events&unix.EPOLLRDHUP != 0,
			Hangup:   ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0,
		}
		ready++
	}
	return ready, nil
}

// setParking says whether a wait that would block parks the loop's goroutine
// in the Go runtime's poller (on) or blocks its thread in epoll_wait (off). A
// thread blocked in a system call keeps its P until the runtime's monitor
// takes it away, after 20 us to 10 ms: with GOMAXPROCS=1, the goroutines the
// loop woke (a Conn's readers and writers) wait that long. A parked goroutine
// gives its P up at once, and the runtime wakes it when the epoll instance,
// which it watches edge-triggered, gets a new ready event: a registration's,
// or the eventfd's Wake. Parking costs the runtime's epoll_wait beside ours
// on each wakeup, so the loop parks only while it serves Conns.
func (p *epoller) setParking(on bool) { p.parking = on }

// parkedWait is a wait with a timeout (negative: none) that parks rather than
// blocks. It parks only after an epoll_wait of timeout 0 found nothing ready:
// the instance's ready list is then empty, so any later event is a new edge
// for the runtime's poller, which also remembers one that comes before the
// goroutine parks. A timeout that passes is a wait that returned nothing.
func (p *epoller) parkedWait(raw []unix.EpollEvent, timeout time.Duration) (int, error) {
	n, err := p.sys.EpollWait(p.epfd, raw, 0)
	if n != 0 || err != nil {
		return n, err
	}
	if p.park == nil {
		if p.parkErr = p.openPark(); p.parkErr != nil {
			return p.sys.EpollWait(p.epfd, raw, epollTimeout(timeout))
		}
	}
	var derr error
	switch {
	case timeout > 0:
		derr = p.park.SetReadDeadline(time.Now().Add(timeout))
		p.parkTimed = true
	case p.parkTimed:
		derr = p.park.SetReadDeadline(time.Time{})
		p.parkTimed = false
	}
	if derr != nil {
		// A park whose deadline cannot be set would sleep through the
		// loop's timers: stop parking and block, as when park could not be made.
		p.parkErr = derr
		return p.sys.EpollWait(p.epfd, raw, epollTimeout(timeout))
	}
	p.parkRaw = raw
	rerr := p.parkConn.Read(p.parkPoll)
	p.parkRaw = nil
	if rerr != nil {
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		return 0, rerr
	}
	return p.parkN, p.parkPollErr
}

// poll is parkPoll: an epoll_wait of timeout 0 into parkRaw; false asks the
// runtime to park until the instance is readable.
func (p *epoller) poll(uintptr) bool {
	p.parkN, p.parkPollErr = p.sys.EpollWait(p.epfd, p.parkRaw, 0)
	return p.parkN != 0 || p.parkPollErr != nil
}

// openPark makes park: a duplicate of epfd, non-blocking so that the runtime
// polls it, which watches the same epoll instance. The duplicate is the
// File's own: closing the poller closes it too; epfd stays the poller's.
func (p *epoller) openPark() error {
	fd, err := unix.FcntlInt(uintptr(p.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	p.park, p.parkConn = f, rc
	p.parkPoll = p.poll
	return nil
}

// consumeWake drains the eventfd. It clears wakePending first: a wake that
// comes after the read writes again, so the next wait returns; one that comes
// between the two is drained here, by a wait that is returning anyway. EAGAIN
// means another wait drained it already.
func (p *epoller) consumeWake() error {
	// Clear the flag after draining, not before: a wake between the two would
	// write the eventfd, have its write eaten by the drain, and leave the flag set
	// with nothing pending, so that no later wake would ever write again (a lost
	// wakeup that left the loop asleep). A wake during the drain is not lost: the
	// loop reads its inbox after wait returns.
	defer p.wakePending.Store(false)
	for {
		_, err := p.sys.Read(p.efd, p.drain[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil && err != unix.EAGAIN {
			return err
		}
		return nil
	}
}

// Wake adds to the eventfd's counter unless a wake is already pending. EAGAIN
// (the counter is full) means one is. Its errors are wrapped, like Close's: no
// classifier reads them.
func (p *epoller) Wake() error {
	if !p.wakePending.CompareAndSwap(false, true) {
		return nil
	}
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	if p.efd < 0 {
		p.wakePending.Store(false)
		return ErrPollerClosed
	}
	for {
		_, err := p.sys.Write(p.efd, pollWakeValue[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil && err != unix.EAGAIN {
			// Clear the flag, or every later wake would be dropped as pending.
			p.wakePending.Store(false)
			return os.NewSyscallError("write", err)
		}
		return nil
	}
}

func (p *epoller) Close() error {
	epfd, efd := p.release()
	if efd < 0 {
		return ErrPollerClosed
	}
	return errors.Join(pollClose(p.sys, efd), p.closePark(), pollClose(p.sys, epfd))
}

func (p *epoller) Forget() error {
	_, efd := p.release()
	if efd < 0 {
		return ErrPollerClosed
	}
	// The duplicate is ours whatever happened to epfd: it names the instance
	// the runtime watches, or nothing the runtime's poller still holds.
	return errors.Join(pollClose(p.sys, efd), p.closePark())
}

// closePark closes the parking duplicate, if any; on the loop goroutine, as
// Close and Forget are called.
func (p *epoller) closePark() error {
	if p.park == nil {
		return nil
	}
	err := p.park.Close()
	p.park, p.parkConn = nil, nil
	return err
}

// release marks the poller closed and returns the descriptors it had, -1 if it
// was closed already.
func (p *epoller) release() (epfd, efd int) {
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	epfd, efd = p.epfd, p.efd
	p.epfd, p.efd = -1, -1
	p.raw = nil
	return epfd, efd
}

func (p *epoller) FD() int { return p.epfd }

func (p *epoller) Probe() error {
	if p.epfd < 0 {
		return ErrPollerClosed
	}
	return p.control(unix.EPOLL_CTL_MOD, p.efd, pollWakeToken, unix.EPOLLIN)
}

// pollClose closes one of the poller's descriptors. EINTR counts as closed
// (D4): on Linux the descriptor is released whatever close returns.
func pollClose(sys pollSyscalls, fd int) error {
	if err := sys.Close(fd); err != nil && err != unix.EINTR {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// concurrentControl reports whether p takes Add, Modify and Remove from one
// goroutine while another waits in it, beyond the contract of Poller: the
// system's epoll over the real system calls does (epoll_ctl during epoll_wait
// is defined, and the scratch of control and of Wait are separate fields).
// Any other Poller, a wrapper's or a simulator's, is held to the contract,
// and the Conns of its loop leave every step to the loop.
func concurrentControl(p Poller) bool {
	e, ok := p.(*epoller)
	if !ok {
		return false
	}
	_, real := e.sys.(pollSystem)
	return real
}
