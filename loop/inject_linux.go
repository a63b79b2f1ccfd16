package loop

import (
	"sort"

	"golang.org/x/sys/unix"
)

func init() {
	pollInjector = func(inj *Injector) func() (Poller, error) {
		sys := &injectedPoll{inj: inj, base: pollSystem{}}
		return func() (Poller, error) { return newPoller(sys) }
	}
}

// injectedPoll is the epoll poller's system calls through an Injector. It
// watches epoll_ctl to learn each epoll instance's registrations (descriptor,
// token, interest), so that epoll_wait can report one of them falsely.
type injectedPoll struct {
	inj  *Injector
	base pollSyscalls
}

var _ pollSyscalls = (*injectedPoll)(nil)

func (p *injectedPoll) EpollCreate1(flags int) (int, error) {
	fd, err := p.base.EpollCreate1(flags)
	if err == nil {
		p.inj.mu.Lock()
		p.inj.fresh(fd)
		p.inj.eps[fd] = &epState{regs: map[int]epReg{}}
		p.inj.mu.Unlock()
	}
	return fd, err
}

func (p *injectedPoll) Eventfd(initval uint, flags int) (int, error) {
	fd, err := p.base.Eventfd(initval, flags)
	if err == nil {
		p.inj.mu.Lock()
		p.inj.fresh(fd)
		p.inj.mu.Unlock()
	}
	return fd, err
}

func (p *injectedPoll) EpollCtl(epfd, op, fd int, event *unix.EpollEvent) error {
	inj := p.inj
	wake := event != nil && epollToken(event) == pollWakeToken
	inj.mu.Lock()
	if op == unix.EPOLL_CTL_ADD {
		// Registering a descriptor says the runtime owns it, however it came.
		if s := inj.fds[fd]; s != nil && s.closed {
			delete(inj.fds, fd)
		}
	}
	if inj.misuse(epfd) || inj.misuse(fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	if !wake {
		if f := inj.fault(OpEpollCtl, fd); f == FaultEBADF {
			inj.count(f)
			// Another owner closed it: the number is gone. A DEL's EBADF too
			// makes its owner abandon the number, never close it (D2).
			inj.closeForReal(fd, p.base.Close)
			inj.mu.Unlock()
			return unix.EBADF
		}
	}
	inj.mu.Unlock()
	err := p.base.EpollCtl(epfd, op, fd, event)
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if err == unix.EBADF {
		inj.markClosed(fd)
		return err
	}
	if err != nil || wake {
		return err
	}
	ep := inj.eps[epfd]
	if ep == nil {
		ep = &epState{regs: map[int]epReg{}}
		inj.eps[epfd] = ep
	}
	st := inj.state(fd)
	switch op {
	case unix.EPOLL_CTL_ADD, unix.EPOLL_CTL_MOD:
		ep.regs[fd] = epReg{token: epollToken(event), events: event.Events}
		st.epfd = epfd
	case unix.EPOLL_CTL_DEL:
		delete(ep.regs, fd)
		st.epfd = -1
	}
	return nil
}

// fakeEvent is an event epoll_wait reports falsely.
type fakeEvent struct {
	token  uint64
	events uint32
}

func (p *injectedPoll) EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	inj := p.inj
	inj.mu.Lock()
	if inj.misuse(epfd) {
		inj.mu.Unlock()
		return 0, unix.EBADF
	}
	var fakes []fakeEvent
	// The writable a held-back connect is waiting for (FaultEINPROGRESS).
	if ep := inj.eps[epfd]; ep != nil {
		for fd, r := range ep.regs {
			if st := inj.fds[fd]; st != nil && st.connectTo != nil && !st.fakeOut && r.events&unix.EPOLLOUT != 0 {
				st.fakeOut = true
				fakes = append(fakes, fakeEvent{r.token, unix.EPOLLOUT})
			}
		}
	}
	var f Fault
	r := inj.fire(OpEpollWait, -1, func(r *Rule) bool {
		switch r.Fault {
		case FaultSpuriousReadable, FaultSpuriousEOFHint:
			fds := inj.candidates(epfd, r.Fault == FaultSpuriousEOFHint, r.FD)
			return len(fds) > 0
		}
		return true
	})
	if r != nil {
		f = r.Fault
	}
	switch f {
	case FaultEINTR:
		inj.count(f)
		inj.mu.Unlock()
		return 0, unix.EINTR
	case FaultEINVAL:
		inj.count(f)
		inj.mu.Unlock()
		return 0, unix.EINVAL
	case FaultEBADF:
		inj.count(f)
		// Another owner closed the epoll descriptor: the number is gone.
		inj.closeForReal(epfd, p.base.Close)
		inj.mu.Unlock()
		return 0, unix.EBADF
	case FaultSpuriousReadable, FaultSpuriousEOFHint:
		fds := inj.candidates(epfd, f == FaultSpuriousEOFHint, r.FD)
		target := fds[inj.rng.IntN(len(fds))]
		ev := uint32(unix.EPOLLIN)
		if f == FaultSpuriousEOFHint {
			ev |= unix.EPOLLRDHUP
		}
		fakes = append(fakes, fakeEvent{inj.eps[epfd].regs[target].token, ev})
		// The read (or accept) that follows finds nothing.
		inj.state(target).againNext = true
		inj.count(f)
	}
	inj.mu.Unlock()
	if len(fakes) > 0 {
		msec = 0 // there is something to report now
	}
	n, err := p.base.EpollWait(epfd, events, msec)
	if err != nil {
		if err == unix.EBADF {
			inj.mu.Lock()
			inj.markClosed(epfd)
			inj.mu.Unlock()
		}
		return n, err
	}
	for _, fe := range fakes {
		merged := false
		for i := range events[:n] {
			if epollToken(&events[i]) == fe.token {
				events[i].Events |= fe.events
				merged = true
				break
			}
		}
		if !merged && n < len(events) {
			events[n] = unix.EpollEvent{Events: fe.events}
			setEpollToken(&events[n], fe.token)
			n++
		}
	}
	return n, nil
}

// candidates returns the descriptors registered with epfd with read interest
// (and the EOF hint's, for eofHint), only fd if not 0, in a deterministic
// order (inj.mu is held).
func (inj *Injector) candidates(epfd int, eofHint bool, only int) []int {
	ep := inj.eps[epfd]
	if ep == nil {
		return nil
	}
	var fds []int
	for fd, r := range ep.regs {
		if only != 0 && fd != only {
			continue
		}
		if r.events&unix.EPOLLIN != 0 && (!eofHint || r.events&unix.EPOLLRDHUP != 0) {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	return fds
}

func (p *injectedPoll) Read(fd int, b []byte) (int, error)  { return p.base.Read(fd, b) }
func (p *injectedPoll) Write(fd int, b []byte) (int, error) { return p.base.Write(fd, b) }

func (p *injectedPoll) Close(fd int) error {
	inj := p.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	inj.mu.Unlock()
	err := p.base.Close(fd)
	inj.mu.Lock()
	inj.markClosed(fd)
	inj.mu.Unlock()
	return err
}
