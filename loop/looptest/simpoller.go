//go:build linux || darwin || freebsd

package looptest

import (
	"fmt"
	"syscall"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/sockets"
)

// simPoller is a loop.Poller on the simulated kernel, with epoll's rules:
// registrations belong to the open file (a number closed while another still
// refers to the file keeps its registration; the last close drops it), HUP and
// ERR are reported whatever the interest, and readiness is level-triggered.
//
// Wait parks the loop's goroutine until the Sim gives it a turn: that is the
// only place a simulated loop blocks, so the Sim decides which loop runs when.
type simPoller struct {
	k     *kernel
	index int // creation order, the loop's name in traces
	file  *file
	fd    int // -1 after Close or Forget
	wfd   int // the wakeup's number
	regs  []simReg
	done  bool

	// Scheduling, under k.mu.
	parked   bool
	timeout  time.Duration
	deadline time.Time
	woken    bool
	turn     chan struct{}
	idle     int // turns in a row that asked for another at once and made no system call
}

type simReg struct {
	f           *file
	fd          int
	token       uint64
	read, write bool
}

var _ loop.Poller = (*simPoller)(nil)

func (k *kernel) newPoller() (loop.Poller, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.fault(OpPollerControl, -1, faultPollerCreate); e != 0 {
		k.record("poller create = %v", e)
		return nil, e
	}
	p := &simPoller{k: k, index: len(k.pollers), turn: make(chan struct{})}
	p.file = k.newFile(filePoller)
	p.file.poller = p
	p.fd = k.alloc(p.file)
	k.owned[p.fd] = true
	p.wfd = k.alloc(k.newFile(fileWakeup))
	k.owned[p.wfd] = true
	k.pollers = append(k.pollers, p)
	k.record("poller %d = fd %d, wakeup fd %d", p.index, p.fd, p.wfd)
	return p, nil
}

// check reports whether the poller's number still names the poller (k.mu is
// held); a call on an invalidated poller is refused as the kernel would.
func (p *simPoller) check(op string) syscall.Errno {
	f, e := p.k.get(op, p.fd)
	if e != 0 {
		return e
	}
	if f != p.file {
		return syscall.EINVAL // not an epoll descriptor
	}
	return 0
}

func (p *simPoller) find(f *file, fd int) int {
	for i := range p.regs {
		if p.regs[i].f == f && p.regs[i].fd == fd {
			return i
		}
	}
	return -1
}

func (p *simPoller) Add(fd int, token uint64, read, write bool) error {
	return p.control("add", fd, token, read, write)
}

func (p *simPoller) Modify(fd int, token uint64, read, write bool) error {
	return p.control("modify", fd, token, read, write)
}

func (p *simPoller) Remove(fd int) error { return p.control("remove", fd, 0, false, false) }

func (p *simPoller) control(op string, fd int, token uint64, read, write bool) error {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nsys++
	if e := p.check("epoll_ctl"); e != 0 {
		k.record("poller %d %s fd=%d = %v (poller)", p.index, op, fd, e)
		return e
	}
	if e := k.fault(OpPollerControl, fd, faultControl); e != 0 {
		k.record("poller %d %s fd=%d = %v", p.index, op, fd, e)
		return e
	}
	f, e := k.get("epoll_ctl", fd)
	if e != 0 {
		k.record("poller %d %s fd=%d = EBADF", p.index, op, fd)
		return e
	}
	i := p.find(f, fd)
	switch {
	case op == "add" && f.kind == fileForeign:
		e = syscall.EPERM // a regular file cannot be polled
	case op == "add" && i >= 0:
		e = syscall.EEXIST
	case op == "add":
		p.regs = append(p.regs, simReg{f: f, fd: fd, token: token, read: read, write: write})
	case i < 0:
		e = syscall.ENOENT
	case op == "modify":
		p.regs[i] = simReg{f: f, fd: fd, token: token, read: read, write: write}
	default:
		p.regs = append(p.regs[:i], p.regs[i+1:]...)
	}
	if e != 0 {
		if f.kind == fileForeign && op == "remove" {
			// A removal answering that the number is not registered tells
			// the runtime the number is no longer its file (the table
			// abandons it then); an Add or Modify answering so is only
			// asked again, by that removal.
			k.fds[fd].learnt = true
		}
		k.record("poller %d %s fd=%d = %v", p.index, op, fd, e)
		return e
	}
	k.record("poller %d %s fd=%d token=%x r=%v w=%v", p.index, op, fd, token, read, write)
	return nil
}

// dropFile removes f's registrations: its last number was closed (k.mu is
// held).
func (p *simPoller) dropFile(f *file) {
	j := 0
	for _, r := range p.regs {
		if r.f != f {
			p.regs[j] = r
			j++
		}
	}
	clear(p.regs[j:])
	p.regs = p.regs[:j]
}

// maxIdleTurns bounds a loop's turns in a row that ask for another at once
// (a zero timeout) and make no system call.
const maxIdleTurns = 10000

// Wait parks until the Sim gives the loop a turn, then reports what is ready.
func (p *simPoller) Wait(events []loop.PollEvent, timeout time.Duration) (int, error) {
	k := p.k
	k.mu.Lock()
	if e := p.check("epoll_wait"); e != 0 {
		k.record("poller %d wait = %v", p.index, e)
		k.mu.Unlock()
		return 0, e
	}
	if k.turnCalls == 0 && timeout == 0 {
		p.idle++
	} else {
		p.idle = 0
	}
	if p.idle == maxIdleTurns {
		// The loop spins: turn after turn it asks for another at once and
		// does nothing a kernel sees. Such a loop never stops, so the run
		// cannot end and report it; the violation is the process's panic,
		// naming the seed that replays it.
		k.sim.violate("liveness", "loop %d took %d turns in a row that asked for another at once and made no system call", p.index, maxIdleTurns)
		k.mu.Unlock()
		panic(fmt.Sprintf("looptest: liveness at seed %#x: loop %d took %d turns in a row that asked for another at once and made no system call", k.sim.seed, p.index, maxIdleTurns))
	}
	p.parked, p.timeout = true, timeout
	k.turnCalls = 0
	if timeout >= 0 {
		p.deadline = time.Now().Add(timeout)
	}
	k.mu.Unlock()
	<-p.turn
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nsys++
	p.parked = false
	p.woken = false
	if k.kill {
		return 0, syscall.EINVAL
	}
	if f, _ := k.get("epoll_wait", p.fd); f != p.file {
		// Closed behind the loop's back while it waited.
		if f == nil {
			k.record("poller %d wait = EBADF", p.index)
			return 0, syscall.EBADF
		}
		k.record("poller %d wait = EINVAL", p.index)
		return 0, syscall.EINVAL
	}
	if e := k.fault(OpPollerWait, -1, faultWait); e != 0 {
		if e == syscall.EBADF {
			k.invalidate(p.fd, false)
			k.fds[p.fd].learnt = true
		}
		k.record("poller %d wait = %v", p.index, e)
		return 0, e
	}
	n := p.ready(events[:cap(events)])
	k.record("poller %d wait = %d", p.index, n)
	return n, nil
}

// readiness is what a registration's file would report now.
func (k *kernel) readiness(r simReg) (ev loop.PollEvent, any bool) {
	ev.Token = r.token
	f := r.f
	switch f.kind {
	case fileSocket:
		// Neither connected nor listening: Linux reports it hung up.
		ev.Writable = r.write
		ev.Hangup = true
	case fileListener:
		ev.Readable = r.read && len(f.backlog) > 0
	case fileConn:
		e := f.end
		k.settleConnect(e)
		if e.connecting {
			break // unanswered: neither writable nor failed
		}
		if e.refused {
			ev.Readable, ev.EOFHint = r.read, r.read
			ev.Writable = r.write
			ev.Hangup = true
			break
		}
		in, out := e.in(), e.out()
		eof := in.eof || e.c.reset
		ev.Readable = r.read && (len(in.buf) > 0 || eof || e.shutRd)
		ev.EOFHint = r.read && (in.eof || e.c.reset)
		ev.Writable = r.write && (out.free() > 0 || out.eof || e.c.reset || e.other().closed)
		// A Unix socket whose peer closed is shut both ways: hung up.
		ev.Hangup = e.c.reset || (in.eof && out.eof) || (e.c.fam == sockets.FamilyUnix && e.other().closed)
	}
	return ev, ev.Readable || ev.Writable || ev.Hangup || ev.EOFHint
}

// ready fills events with the registrations ready now, in an order and a
// batch size the seed draws, plus the false reports the schedule asks for
// (k.mu is held).
func (p *simPoller) ready(events []loop.PollEvent) int {
	k := p.k
	rng := k.sim.rngPoll
	var all []loop.PollEvent
	for _, r := range p.regs {
		ev, ok := k.readiness(r)
		if f := k.pollFault(r, &ev); f {
			ok = true
		}
		if ok {
			all = append(all, ev)
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	n := len(all)
	if n > 1 && rng.IntN(4) == 0 {
		n = 1 + rng.IntN(n) // a batch smaller than what is ready
	}
	n = min(n, len(events))
	copy(events, all[:n])
	return n
}

// runnable reports whether a parked loop has something to do now (k.mu is
// held).
func (p *simPoller) runnable(now time.Time) bool {
	if !p.parked {
		return false
	}
	if p.woken || p.timeout == 0 || p.k.kill || (p.timeout > 0 && !now.Before(p.deadline)) {
		return true
	}
	for _, r := range p.regs {
		if _, ok := p.k.readiness(r); ok {
			return true
		}
	}
	return false
}

func (p *simPoller) Wake() error {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.done {
		return loop.ErrPollerClosed
	}
	p.woken = true
	return nil
}

func (p *simPoller) Close() error {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.done {
		return loop.ErrPollerClosed
	}
	p.done = true
	if k.fds[p.fd].f == p.file {
		k.release(p.fd)
	} else {
		k.sim.violate("D2", "poller %d closed its descriptor %d after it was invalidated", p.index, p.fd)
	}
	k.release(p.wfd)
	p.regs = nil
	k.record("poller %d close", p.index)
	p.fd = -1
	return nil
}

func (p *simPoller) Forget() error {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.done {
		return loop.ErrPollerClosed
	}
	p.done = true
	k.release(p.wfd)
	if k.fds[p.fd].f == p.file {
		// Forgetting a poller that is still ours leaks it.
		k.sim.violate("D4", "poller %d forgot descriptor %d, which was still its own", p.index, p.fd)
		k.release(p.fd)
	}
	p.regs = nil
	k.record("poller %d forget", p.index)
	p.fd = -1
	return nil
}

func (p *simPoller) FD() int {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	return p.fd
}

func (p *simPoller) Probe() error {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := p.check("epoll_ctl"); e != 0 {
		return e
	}
	return nil
}
