//go:build linux || darwin || freebsd

package looptest

import (
	"syscall"

	"github.com/fsmkernel/fsmkernel/loop"
)

// Profile is how often a simulated kernel answers with each failure, in calls
// per 10,000 that may fail that way (0 never, 10000 always). The zero Profile
// injects nothing: the simulated kernel then behaves like a quiet Linux.
//
// A fault that invalidates a descriptor (EBADF) does it for real in the
// simulated table first, as another owner closing the number would; with
// Reuse, another owner is given the number at once, so a stale call of the
// runtime would reach someone else's file.
type Profile struct {
	EINTR  uint16 // read, write, accept, close and Poller.Wait say EINTR (close: after closing)
	EAGAIN uint16 // read, write and accept say EAGAIN though data, room or a connection is there
	Short  uint16 // read and write move only part of what they could
	Reset  uint16 // read says ECONNRESET, write EPIPE, and the connection is reset
	EBADF  uint16 // read, write, accept, connect, close, the Poller's Add, Modify, Remove and Wait
	Reuse  uint16 // of the EBADF faults, those whose number another owner takes at once
	// AcceptLimit: socket and accept say EMFILE, ENFILE or ENOBUFS.
	AcceptLimit uint16
	// ControlFail: the Poller's Add, Modify and Remove say ENOMEM.
	ControlFail uint16
	// WaitFail: Poller.Wait says EINVAL, which stops the loop (its abnormal path).
	WaitFail uint16
	// Spurious: Wait reports readable a registration with nothing to read;
	// EOFHint: with the EOF hint too; StaleInterest: readable for a
	// registration whose read interest is off (the interest changed after the
	// readiness was queued, as with io_uring's polls).
	Spurious, EOFHint, StaleInterest uint16
	// ConnsOnly limits EBADF to the numbers of connections: listeners and
	// pollers keep theirs, as when a VM that stops takes its connections and
	// not the host's listener.
	ConnsOnly bool
}

// The classes of call a fault is drawn for.
type faultClass uint8

const (
	faultSocket faultClass = iota + 1
	faultAccept
	faultConnect
	faultRead
	faultWrite
	faultClose
	faultControl
	faultWait
	faultPollerCreate
	faultDead // a read or write the connection fails anyway: EBADF only
)

// errShort is fault's answer for a short read or write (not an errno).
const errShort = syscall.Errno(1 << 20)

// faultPlan is the Profile in force and whether faults are on.
type faultPlan struct {
	p  Profile
	on bool
	// full: an accept was told EMFILE or ENFILE. As on Linux, the table stays
	// full, and socket and accept say so again, until the runtime closes a
	// descriptor (or the faults stop).
	full bool
}

// hit draws whether a fault at rate fires.
func (k *kernel) hit(rate uint16) bool {
	return rate > 0 && k.sim.rngFault.IntN(10000) < int(rate)
}

// fault draws the fault, if any, for one call of class on fd (-1: none yet),
// and performs its side effect on the table (k.mu is held). It returns 0, an
// errno, or errShort.
func (k *kernel) fault(op Op, fd int, class faultClass) syscall.Errno {
	fp := k.faults
	if fp == nil || !fp.on {
		return 0
	}
	p := &fp.p
	if fd >= 0 && class != faultSocket && class != faultPollerCreate && (!p.ConnsOnly || k.isConn(fd)) && k.hit(p.EBADF) {
		k.invalidate(fd, class != faultWait && k.hit(p.Reuse))
		k.fds[fd].learnt = true
		k.count(op, "EBADF")
		return syscall.EBADF
	}
	if fp.full && (class == faultSocket || class == faultAccept) {
		k.count(op, "EMFILE (still full)")
		return syscall.EMFILE
	}
	switch class {
	case faultSocket:
		return k.first(op, choice{p.AcceptLimit, syscall.EMFILE, "EMFILE"})
	case faultAccept:
		if k.hit(p.AcceptLimit) {
			e := [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS}[k.sim.rngFault.IntN(3)]
			fp.full = e != syscall.ENOBUFS
			k.count(op, e.Error())
			return e
		}
		return k.first(op, choice{p.EINTR, syscall.EINTR, "EINTR"}, choice{p.EAGAIN, syscall.EAGAIN, "EAGAIN"})
	case faultRead, faultWrite:
		reset := syscall.EPIPE
		if class == faultRead {
			reset = syscall.ECONNRESET
		}
		return k.first(op, choice{p.EINTR, syscall.EINTR, "EINTR"}, choice{p.EAGAIN, syscall.EAGAIN, "EAGAIN"},
			choice{p.Reset, reset, "reset"}, choice{p.Short, errShort, "short"})
	case faultClose:
		return k.first(op, choice{p.EINTR, syscall.EINTR, "EINTR"})
	case faultControl:
		return k.first(op, choice{p.ControlFail, syscall.ENOMEM, "ENOMEM"})
	case faultWait:
		ebadf := p.EBADF
		if p.ConnsOnly {
			ebadf = 0
		}
		return k.first(op, choice{p.EINTR, syscall.EINTR, "EINTR"}, choice{p.WaitFail, syscall.EINVAL, "EINVAL"},
			choice{ebadf, syscall.EBADF, "EBADF"})
	}
	return 0
}

// isConn reports whether fd is open on a connection (k.mu is held).
func (k *kernel) isConn(fd int) bool {
	return fd < len(k.fds) && k.fds[fd].f != nil && k.fds[fd].f.kind == fileConn
}

// choice is one fault a call may get: its rate, its answer, its name in
// Injected.
type choice struct {
	rate  uint16
	errno syscall.Errno
	name  string
}

// first draws the choices in order and returns the first that fires, counted,
// or 0.
func (k *kernel) first(op Op, choices ...choice) syscall.Errno {
	for _, c := range choices {
		if k.hit(c.rate) {
			k.count(op, c.name)
			return c.errno
		}
	}
	return 0
}

// pollFault draws the false reports of one registration in a wait (k.mu is
// held); it reports whether it changed ev.
func (k *kernel) pollFault(r simReg, ev *loop.PollEvent) bool {
	fp := k.faults
	if fp == nil || !fp.on || (r.f.kind != fileConn && r.f.kind != fileListener) {
		return false
	}
	p := &fp.p
	switch {
	case r.read && !ev.Readable && k.hit(p.Spurious):
		ev.Readable = true
		k.count(OpPollerWait, "spurious")
	case r.read && !ev.Readable && r.f.kind == fileConn && k.hit(p.EOFHint):
		ev.Readable, ev.EOFHint = true, true
		k.count(OpPollerWait, "EOF hint")
	case !r.read && k.hit(p.StaleInterest):
		ev.Readable = true
		k.count(OpPollerWait, "stale interest")
	default:
		return false
	}
	return true
}

// shortLen draws how much of n a short read or write moves.
func (k *kernel) shortLen(n int) int {
	if n <= 1 {
		return n
	}
	return 1 + k.sim.rngFault.IntN(n/2)
}

// count records an injected fault.
func (k *kernel) count(op Op, what string) {
	k.sim.injected[op.String()+" "+what]++
}
