//go:build linux || darwin || freebsd

package looptest

import (
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
)

// injectedPoller is a loop.Poller through an Injector. It watches Add, Modify
// and Remove to learn the poller's registrations (descriptor, token,
// interest), so that Wait can report one of them falsely. It works on the
// Poller's contract alone, so it wraps epoll, kqueue or a simulator's poller
// alike.
type injectedPoller struct {
	inj  *Injector
	base loop.Poller
	// fd is the base's descriptor when it was created: the key of its
	// registrations, and the number an injected EBADF of Wait closes.
	fd int
	// closeFD closes a number for real, as its other owner would.
	closeFD func(int) error
	// done: Close or Forget was called; later calls pass through, as the base
	// makes no system call then (inj.mu is held).
	done bool
}

var _ loop.Poller = (*injectedPoller)(nil)

// newPoller creates a poller with newBase and wraps it; closeFD closes a
// descriptor for real.
func (inj *Injector) newPoller(newBase func() (loop.Poller, error), closeFD func(int) error) (loop.Poller, error) {
	base, err := newBase()
	if err != nil {
		return nil, err
	}
	p := &injectedPoller{inj: inj, base: base, fd: base.FD(), closeFD: closeFD}
	if p.fd >= 0 {
		inj.mu.Lock()
		inj.fresh(p.fd)
		inj.eps[p.fd] = &epState{regs: map[int]epReg{}}
		inj.mu.Unlock()
	}
	return p, nil
}

func (p *injectedPoller) Add(fd int, token uint64, read, write bool) error {
	inj := p.inj
	inj.mu.Lock()
	// Registering a descriptor says the runtime owns it, however it came.
	if s := inj.fds[fd]; s != nil && s.closed {
		delete(inj.fds, fd)
	}
	inj.mu.Unlock()
	return p.control(fd, token, read, write, true, p.base.Add)
}

func (p *injectedPoller) Modify(fd int, token uint64, read, write bool) error {
	return p.control(fd, token, read, write, true, p.base.Modify)
}

func (p *injectedPoller) Remove(fd int) error {
	return p.control(fd, 0, false, false, false, func(fd int, _ uint64, _, _ bool) error { return p.base.Remove(fd) })
}

// control makes an Add, Modify (register) or Remove (!register) through call,
// with its faults and bookkeeping.
func (p *injectedPoller) control(fd int, token uint64, read, write, register bool, call func(int, uint64, bool, bool) error) error {
	inj := p.inj
	inj.mu.Lock()
	if inj.misuse(p.fd) || inj.misuse(fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	if f := inj.fault(OpPollerControl, fd); f == FaultEBADF {
		inj.count(f)
		// Another owner closed it: the number is gone. A Remove's EBADF too
		// makes its owner abandon the number, never close it (D2).
		inj.closeForReal(fd, p.closeFD)
		inj.mu.Unlock()
		return unix.EBADF
	}
	inj.mu.Unlock()
	err := call(fd, token, read, write)
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if err == unix.EBADF {
		inj.markClosed(fd)
		return err
	}
	if err != nil {
		return err
	}
	ep := inj.eps[p.fd]
	if ep == nil {
		ep = &epState{regs: map[int]epReg{}}
		inj.eps[p.fd] = ep
	}
	st := inj.state(fd)
	if register {
		ep.regs[fd] = epReg{token: token, read: read, write: write}
		st.epfd = p.fd
	} else {
		delete(ep.regs, fd)
		st.epfd = -1
	}
	return nil
}

func (p *injectedPoller) Wait(events []loop.PollEvent, timeout time.Duration) (int, error) {
	inj := p.inj
	inj.mu.Lock()
	if inj.misuse(p.fd) {
		inj.mu.Unlock()
		return 0, unix.EBADF
	}
	var fakes []loop.PollEvent
	// The writable a held-back connect is waiting for (FaultEINPROGRESS).
	if ep := inj.eps[p.fd]; ep != nil {
		for _, fd := range sortedFDs(ep.regs) {
			r := ep.regs[fd]
			if st := inj.fds[fd]; st != nil && st.connectTo != nil && !st.fakeOut && r.write {
				st.fakeOut = true
				fakes = append(fakes, loop.PollEvent{Token: r.token, Writable: true})
			}
		}
	}
	var f Fault
	r := inj.fire(OpPollerWait, -1, func(r *Rule) bool {
		switch r.Fault {
		case FaultSpuriousReadable, FaultSpuriousEOFHint:
			return len(inj.candidates(p.fd, r.FD)) > 0
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
		// Another owner closed the poller's descriptor: the number is gone.
		inj.closeForReal(p.fd, p.closeFD)
		inj.mu.Unlock()
		return 0, unix.EBADF
	case FaultSpuriousReadable, FaultSpuriousEOFHint:
		fds := inj.candidates(p.fd, r.FD)
		target := fds[inj.rng.IntN(len(fds))]
		fakes = append(fakes, loop.PollEvent{
			Token:    inj.eps[p.fd].regs[target].token,
			Readable: true,
			EOFHint:  f == FaultSpuriousEOFHint,
		})
		// The read (or accept) that follows finds nothing.
		inj.state(target).againNext = true
		inj.count(f)
	}
	inj.mu.Unlock()
	if len(fakes) > 0 {
		timeout = 0 // there is something to report now
	}
	n, err := p.base.Wait(events, timeout)
	if err != nil {
		if err == unix.EBADF {
			inj.mu.Lock()
			inj.markClosed(p.fd)
			inj.mu.Unlock()
		}
		return n, err
	}
	events = events[:cap(events)]
	for _, fe := range fakes {
		merged := false
		for i := range events[:n] {
			if e := &events[i]; e.Token == fe.Token {
				e.Readable = e.Readable || fe.Readable
				e.Writable = e.Writable || fe.Writable
				e.EOFHint = e.EOFHint || fe.EOFHint
				merged = true
				break
			}
		}
		if !merged && n < len(events) {
			events[n] = fe
			n++
		}
	}
	return n, nil
}

// candidates returns the descriptors registered with the poller of descriptor
// epfd with read interest (which includes the EOF hint), only fd if not 0, in
// a deterministic order (inj.mu is held).
func (inj *Injector) candidates(epfd int, only int) []int {
	ep := inj.eps[epfd]
	if ep == nil {
		return nil
	}
	var fds []int
	for _, fd := range sortedFDs(ep.regs) {
		if (only == 0 || fd == only) && ep.regs[fd].read {
			fds = append(fds, fd)
		}
	}
	return fds
}

// sortedFDs returns the descriptors of regs in increasing order.
func sortedFDs(regs map[int]epReg) []int {
	fds := make([]int, 0, len(regs))
	for fd := range regs {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	return fds
}

func (p *injectedPoller) Wake() error { return p.base.Wake() }
func (p *injectedPoller) FD() int     { return p.base.FD() }

// Probe is refused on a poller whose number is known closed; a real EBADF
// says the poller's number is gone (Poller's contract).
func (p *injectedPoller) Probe() error {
	inj := p.inj
	inj.mu.Lock()
	birth := inj.births[p.fd]
	if inj.misuse(p.fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	inj.mu.Unlock()
	err := p.base.Probe()
	if err == unix.EBADF {
		inj.mu.Lock()
		if inj.births[p.fd] == birth {
			inj.markClosed(p.fd)
		}
		inj.mu.Unlock()
	}
	return err
}

// Close closes the poller, unless its number is known closed: that is a
// misuse (the runtime must Forget such a poller), counted, and only the
// wakeup is released.
func (p *injectedPoller) Close() error {
	inj := p.inj
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if p.done {
		return p.base.Close()
	}
	p.done = true
	if inj.misuse(p.fd) {
		_ = p.base.Forget()
		return unix.EBADF
	}
	// Close and mark under one lock: released in between, another loop's
	// accept could be handed the number and record it fresh, and then be
	// marked closed here.
	err := p.base.Close()
	inj.markClosed(p.fd)
	return err
}

func (p *injectedPoller) Forget() error {
	inj := p.inj
	inj.mu.Lock()
	p.done = true
	inj.mu.Unlock()
	return p.base.Forget()
}
