//go:build linux || darwin || freebsd

package looptest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/sockets"
)

// Op names a system call, or a family of them, that an Injector can intercept.
type Op uint8

const (
	OpRead          Op = iota + 1 // read(2) on a socket
	OpWrite                       // write(2) and writev(2) on a socket
	OpAccept                      // accept4(2)
	OpConnect                     // connect(2)
	OpClose                       // close(2) of a socket
	OpFcntl                       // fcntl(2): F_SETFL O_NONBLOCK and F_DUPFD_CLOEXEC (adoption)
	OpPollerControl               // the loop's Poller: Add, Modify and Remove (epoll_ctl(2), kevent(2))
	OpPollerWait                  // the loop's Poller: Wait (epoll_wait(2), kevent(2))
)

func (o Op) String() string {
	switch o {
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpAccept:
		return "accept"
	case OpConnect:
		return "connect"
	case OpClose:
		return "close"
	case OpFcntl:
		return "fcntl"
	case OpPollerControl:
		return "pollerControl"
	case OpPollerWait:
		return "pollerWait"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Fault is what an Injector does to a call instead of, or before, the real one.
//
// Unless said otherwise the call is not made and the errno is returned. Faults
// that invalidate a descriptor do it for real, so that no descriptor leaks when
// the runtime obeys D2 (never close a number that said EBADF).
type Fault uint8

const (
	// FaultEAGAIN: read, write or accept says EAGAIN although it might not
	// have; data or connections stay for a later cycle.
	FaultEAGAIN Fault = iota + 1
	// FaultEINTR: read, write, accept, connect or Poller.Wait says EINTR. A
	// connect interrupted this way is made later, as for FaultEINPROGRESS.
	// close: the descriptor is really closed, then EINTR is returned.
	FaultEINTR
	// FaultShort: read or write is made for only part of the buffer (n is capped
	// at a random value, at most half).
	FaultShort
	// FaultECONNRESET: read or write says ECONNRESET, and the connection stays
	// broken on that descriptor: later reads say ECONNRESET, writes EPIPE.
	FaultECONNRESET
	// FaultEPIPE: write says EPIPE, and the connection stays broken likewise.
	FaultEPIPE
	// FaultEBADF: read, write, accept, connect, or the Poller's Add, Modify,
	// Remove or Wait say EBADF after the injector really closed the descriptor
	// (Wait: the poller's own, Poller.FD), as another owner would have; close
	// says EBADF after
	// really closing; fcntl says EBADF and leaves the descriptor as it was (its
	// owner still closes it).
	FaultEBADF
	// FaultEMFILE, FaultENFILE, FaultENOBUFS: accept fails so; the connection
	// stays in the backlog.
	FaultEMFILE
	FaultENFILE
	FaultENOBUFS
	// FaultEINPROGRESS: connect says EINPROGRESS without connecting; the next
	// Poller.Wait reports the socket writable (spurious: SO_ERROR is 0 and
	// getpeername says ENOTCONN), and the real connect is made right after that
	// getpeername.
	FaultEINPROGRESS
	// FaultEINVAL: Poller.Wait fails with EINVAL.
	FaultEINVAL
	// FaultSpuriousReadable: Poller.Wait reports a registered descriptor with
	// read interest readable (an event added, or merged into its real event),
	// and the read or accept that follows says EAGAIN.
	FaultSpuriousReadable
	// FaultSpuriousEOFHint: likewise readable with the EOF hint
	// (PollEvent.EOFHint: EPOLLRDHUP, EV_EOF).
	FaultSpuriousEOFHint

	numFaults = iota
)

var faultNames = [numFaults + 1]string{
	FaultEAGAIN:           "EAGAIN",
	FaultEINTR:            "EINTR",
	FaultShort:            "short",
	FaultECONNRESET:       "ECONNRESET",
	FaultEPIPE:            "EPIPE",
	FaultEBADF:            "EBADF",
	FaultEMFILE:           "EMFILE",
	FaultENFILE:           "ENFILE",
	FaultENOBUFS:          "ENOBUFS",
	FaultEINPROGRESS:      "EINPROGRESS",
	FaultEINVAL:           "EINVAL",
	FaultSpuriousReadable: "spuriousReadable",
	FaultSpuriousEOFHint:  "spuriousEOFHint",
}

func (f Fault) String() string {
	if f > 0 && int(f) <= numFaults {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", uint8(f))
}

// faultsOf lists the faults each Op accepts.
var faultsOf = map[Op][]Fault{
	OpRead:          {FaultEAGAIN, FaultEINTR, FaultShort, FaultECONNRESET, FaultEBADF},
	OpWrite:         {FaultEAGAIN, FaultEINTR, FaultShort, FaultECONNRESET, FaultEPIPE, FaultEBADF},
	OpAccept:        {FaultEAGAIN, FaultEINTR, FaultEMFILE, FaultENFILE, FaultENOBUFS, FaultEBADF},
	OpConnect:       {FaultEINTR, FaultEINPROGRESS, FaultEBADF},
	OpClose:         {FaultEINTR, FaultEBADF},
	OpFcntl:         {FaultEBADF},
	OpPollerControl: {FaultEBADF},
	OpPollerWait:    {FaultEINTR, FaultEINVAL, FaultEBADF, FaultSpuriousReadable, FaultSpuriousEOFHint},
}

// Rule says when to inject a fault into calls of an Op.
//
// Each call of the Op (on FD, if set) is an eligible call. Past the first
// After of them, the rule fires on every Every-th one, or, when Every is 0, on
// each with Probability (drawn from the injector's seed), until it has fired
// Count times (0: no bound). For Poller.Wait's spurious readiness, a call is
// eligible only while some descriptor registered with that poller has read
// interest.
// When several rules fire on one call, the first one added wins.
type Rule struct {
	Op          Op
	Fault       Fault
	Every       int
	Probability float64
	After       int
	Count       int
	// FD, if not 0, restricts the rule to that descriptor: the socket, or for
	// Poller.Wait the registered descriptor the spurious event is for.
	FD int

	seen, fired int
}

// Injector wraps the system calls of the loops built from its Options and
// injects faults into them by rule. It is for tests: one mutex serializes its
// bookkeeping (never a real call), so several loops may share one.
//
// Besides the rules it keeps a check of its own: a call on a descriptor number
// after it was closed, or after it said EBADF, and before a socket, accept,
// dup or a new poller handed the number out again or Poller.Add registered
// it, is not made (EBADF) and is counted by CallsOnClosed. Under D2
// the runtime makes none.
type Injector struct {
	mu       sync.Mutex
	rng      *rand.Rand
	rules    []*Rule
	counts   [numFaults + 1]uint64
	onClosed uint64
	// firstOnClosed is the stack of the first such call, for the report.
	firstOnClosed string

	fds map[int]*fdState // by descriptor number
	eps map[int]*epState // by the poller's descriptor (Poller.FD)
	// births counts the times each number was handed out, so that a late
	// EBADF of an old file does not mark the number's next socket closed.
	births map[int]uint64
}

// fdState is what the injector knows of one descriptor.
type fdState struct {
	closed      bool     // closed or invalidated; calls on it are misuses
	againNext   bool     // the next read or accept says EAGAIN (spurious readiness)
	broken      bool     // ECONNRESET/EPIPE for good
	connectTo   net.Addr // a connect not made yet
	fakeOut     bool     // the spurious writable of connectTo was reported
	connectErrn int      // the errno of a late connect that failed at once, for SO_ERROR
	epfd        int      // the descriptor of the poller it is registered with, or -1
}

// epState is a poller's registrations, as observed through Add, Modify and
// Remove.
type epState struct {
	regs map[int]epReg // by descriptor
}

type epReg struct {
	token       uint64
	read, write bool
}

// NewInjector returns an injector drawing its random choices from seed, with
// rules. It panics on a rule whose fault its Op does not accept.
func NewInjector(seed uint64, rules ...Rule) *Injector {
	inj := &Injector{
		rng:    rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		fds:    map[int]*fdState{},
		eps:    map[int]*epState{},
		births: map[int]uint64{},
	}
	inj.Add(rules...)
	return inj
}

// Add adds rules, after those already there; safe while loops run. It panics
// on a rule whose fault its Op does not accept.
func (inj *Injector) Add(rules ...Rule) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	for _, r := range rules {
		ok := false
		for _, f := range faultsOf[r.Op] {
			ok = ok || f == r.Fault
		}
		if !ok {
			panic(fmt.Sprintf("looptest: injector: %v cannot be injected into %v", r.Fault, r.Op))
		}
		r.seen, r.fired = 0, 0
		inj.rules = append(inj.rules, &r)
	}
}

// Clear removes every rule; the counts and the injector's knowledge of
// descriptors stay.
func (inj *Injector) Clear() {
	inj.mu.Lock()
	inj.rules = nil
	inj.mu.Unlock()
}

// Counts returns how many times each fault was injected, omitting those never
// injected.
func (inj *Injector) Counts() map[Fault]uint64 {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	m := map[Fault]uint64{}
	for f, n := range inj.counts {
		if n > 0 {
			m[Fault(f)] = n
		}
	}
	return m
}

// Injected returns how many times f was injected.
func (inj *Injector) Injected(f Fault) uint64 {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if int(f) > numFaults {
		return 0
	}
	return inj.counts[f]
}

// CallsOnClosed returns how many calls were made (and refused) on a number
// closed or found invalid before (see Injector).
func (inj *Injector) CallsOnClosed() uint64 {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	return inj.onClosed
}

// FirstCallOnClosed describes the first call counted by CallsOnClosed (the
// number and the stack that made it), or "" when there was none.
func (inj *Injector) FirstCallOnClosed() string {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	return inj.firstOnClosed
}

// Options returns a copy of base (nil: the defaults) whose loops make their
// system calls through inj: base's Syscalls (nil: the system's), and the
// calls of each poller base's NewPoller creates (nil: loop.NewPoller).
func (inj *Injector) Options(base *loop.Options) *loop.Options {
	var o loop.Options
	if base != nil {
		o = *base
	}
	sys := o.Syscalls
	if sys == nil {
		sys = sockets.System()
	}
	o.Syscalls = &injectedSyscalls{inj: inj, base: sys}
	newPoller := o.NewPoller
	if newPoller == nil {
		newPoller = loop.NewPoller
	}
	o.NewPoller = func() (loop.Poller, error) { return inj.newPoller(newPoller, sys.Close) }
	return &o
}

// CloseBehind closes descriptor fd as another owner of the number would,
// behind the runtime's back: its next call on fd finds EBADF (or, if the
// number was reused meanwhile, someone else's file: the hazard D2 is about).
func (inj *Injector) CloseBehind(fd int) error {
	inj.mu.Lock()
	inj.forget(fd)
	inj.mu.Unlock()
	return unix.Close(fd)
}

// Dup2DevNull replaces the file behind descriptor fd by /dev/null (dup2), as a
// virtual machine monitor revoking a descriptor might: the number stays valid
// but names another file (reads say EOF, writes vanish, the poller drops it).
func (inj *Injector) Dup2DevNull(fd int) error {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	inj.mu.Lock()
	inj.forget(fd)
	inj.mu.Unlock()
	return unix.Dup2(null, fd)
}

// fire returns the first rule that fires for a call of op on fd (-1: any),
// or nil; every rule that applies counts the call as seen. eligible, if not
// nil, filters the rules (inj.mu is held).
func (inj *Injector) fire(op Op, fd int, eligible func(*Rule) bool) *Rule {
	var got *Rule
	for _, r := range inj.rules {
		if r.Op != op || (r.FD != 0 && fd >= 0 && r.FD != fd) || (r.Count > 0 && r.fired >= r.Count) {
			continue
		}
		if eligible != nil && !eligible(r) {
			continue
		}
		r.seen++
		if got != nil || r.seen <= r.After {
			continue
		}
		hit := false
		if r.Every > 0 {
			hit = (r.seen-r.After)%r.Every == 0
		} else {
			hit = r.Probability > 0 && inj.rng.Float64() < r.Probability
		}
		if hit {
			r.fired++
			got = r
		}
	}
	return got
}

// fault returns the fault of the rule fire returns, or 0 (inj.mu is held).
func (inj *Injector) fault(op Op, fd int) Fault {
	if r := inj.fire(op, fd, nil); r != nil {
		return r.Fault
	}
	return 0
}

// count records an injection (inj.mu is held).
func (inj *Injector) count(f Fault) { inj.counts[f]++ }

// state returns fd's state, creating it (inj.mu is held).
func (inj *Injector) state(fd int) *fdState {
	s := inj.fds[fd]
	if s == nil {
		s = &fdState{epfd: -1}
		inj.fds[fd] = s
	}
	return s
}

// fresh records that fd names a new file (inj.mu is held).
func (inj *Injector) fresh(fd int) {
	inj.forget(fd)
	inj.fds[fd] = &fdState{epfd: -1}
	inj.births[fd]++
}

// forget drops what is known of fd: its registration goes with its file
// (inj.mu is held).
func (inj *Injector) forget(fd int) {
	if s := inj.fds[fd]; s != nil && s.epfd >= 0 {
		if ep := inj.eps[s.epfd]; ep != nil {
			delete(ep.regs, fd)
		}
	}
	delete(inj.fds, fd)
	delete(inj.eps, fd)
}

// markClosed records that fd is gone (inj.mu is held).
func (inj *Injector) markClosed(fd int) {
	inj.forget(fd)
	inj.fds[fd] = &fdState{closed: true, epfd: -1}
}

// misuse reports whether fd is known closed, counting the call (inj.mu is held).
func (inj *Injector) misuse(fd int) bool {
	if s := inj.fds[fd]; s != nil && s.closed {
		inj.onClosed++
		if inj.firstOnClosed == "" {
			inj.firstOnClosed = fmt.Sprintf("fd %d:\n%s", fd, debug.Stack())
		}
		return true
	}
	return false
}

// closeForReal closes fd with base as the other owner would, and marks it gone
// (inj.mu is held).
func (inj *Injector) closeForReal(fd int, closeFn func(int) error) {
	_ = closeFn(fd)
	inj.markClosed(fd)
}

// shortLen returns a length below n (at most half, at least 1) for a short
// read or write, or n when n is 1 (inj.mu is held).
func (inj *Injector) shortLen(n int) int {
	if n <= 1 {
		return n
	}
	return 1 + inj.rng.IntN(max(1, n/2))
}

// injectedSyscalls is sockets.Syscalls through an Injector.
type injectedSyscalls struct {
	inj  *Injector
	base sockets.Syscalls
}

var _ sockets.Syscalls = (*injectedSyscalls)(nil)

// created records descriptors handed out by the system.
func (s *injectedSyscalls) created(fd int, err error) {
	if err == nil && fd >= 0 {
		s.inj.mu.Lock()
		s.inj.fresh(fd)
		s.inj.mu.Unlock()
	}
}

// check refuses a call on a closed number; after a real EBADF the number is
// known closed.
func (s *injectedSyscalls) check(fd int) (birth uint64, misuse bool) {
	s.inj.mu.Lock()
	defer s.inj.mu.Unlock()
	return s.inj.births[fd], s.inj.misuse(fd)
}

// saw marks fd closed after a real EBADF, unless the number was handed out
// again (born) since the call began: then the EBADF was the old file's, and
// the number is someone else's live descriptor now.
func (s *injectedSyscalls) saw(fd int, birth uint64, err error) {
	if err == unix.EBADF {
		s.inj.mu.Lock()
		if s.inj.births[fd] == birth {
			s.inj.markClosed(fd)
		}
		s.inj.mu.Unlock()
	}
}

func (s *injectedSyscalls) Socket(f sockets.Family) (int, error) {
	fd, err := s.base.Socket(f)
	s.created(fd, err)
	return fd, err
}

func (s *injectedSyscalls) Bind(fd int, addr net.Addr) error {
	_, misuse := s.check(fd)
	if misuse {
		return unix.EBADF
	}
	return s.base.Bind(fd, addr)
}

func (s *injectedSyscalls) Listen(fd, backlog int) error {
	_, misuse := s.check(fd)
	if misuse {
		return unix.EBADF
	}
	return s.base.Listen(fd, backlog)
}

func (s *injectedSyscalls) Accept(fd int) (int, net.Addr, error) {
	inj := s.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return -1, nil, unix.EBADF
	}
	if st := inj.fds[fd]; st != nil && st.againNext {
		st.againNext = false
		inj.mu.Unlock()
		return -1, nil, unix.EAGAIN
	}
	f := inj.fault(OpAccept, fd)
	var errno unix.Errno
	switch f {
	case FaultEAGAIN:
		errno = unix.EAGAIN
	case FaultEINTR:
		errno = unix.EINTR
	case FaultEMFILE:
		errno = unix.EMFILE
	case FaultENFILE:
		errno = unix.ENFILE
	case FaultENOBUFS:
		errno = unix.ENOBUFS
	case FaultEBADF:
		inj.closeForReal(fd, s.base.Close)
		errno = unix.EBADF
	}
	if f != 0 {
		inj.count(f)
		inj.mu.Unlock()
		return -1, nil, errno
	}
	birth := inj.births[fd]
	inj.mu.Unlock()
	nfd, peer, err := s.base.Accept(fd)
	s.created(nfd, err)
	s.saw(fd, birth, err)
	return nfd, peer, err
}

func (s *injectedSyscalls) Connect(fd int, addr net.Addr) error {
	inj := s.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	f := inj.fault(OpConnect, fd)
	switch f {
	case FaultEINTR, FaultEINPROGRESS:
		st := inj.state(fd)
		st.connectTo, st.fakeOut = addr, false
		inj.count(f)
		inj.mu.Unlock()
		if f == FaultEINTR {
			return unix.EINTR
		}
		return unix.EINPROGRESS
	case FaultEBADF:
		inj.closeForReal(fd, s.base.Close)
		inj.count(f)
		inj.mu.Unlock()
		return unix.EBADF
	}
	birth := inj.births[fd]
	inj.mu.Unlock()
	err := s.base.Connect(fd, addr)
	s.saw(fd, birth, err)
	return err
}

func (s *injectedSyscalls) Read(fd int, p []byte) (int, error) {
	inj := s.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return 0, unix.EBADF
	}
	st := inj.fds[fd]
	if st != nil && st.broken {
		inj.mu.Unlock()
		return 0, unix.ECONNRESET
	}
	if st != nil && st.againNext {
		st.againNext = false
		inj.mu.Unlock()
		return 0, unix.EAGAIN
	}
	f := inj.fault(OpRead, fd)
	if f != 0 {
		inj.count(f)
	}
	switch f {
	case FaultEAGAIN:
		inj.mu.Unlock()
		return 0, unix.EAGAIN
	case FaultEINTR:
		inj.mu.Unlock()
		return 0, unix.EINTR
	case FaultECONNRESET:
		inj.state(fd).broken = true
		inj.mu.Unlock()
		return 0, unix.ECONNRESET
	case FaultEBADF:
		inj.closeForReal(fd, s.base.Close)
		inj.mu.Unlock()
		return 0, unix.EBADF
	case FaultShort:
		p = p[:inj.shortLen(len(p))]
	}
	birth := inj.births[fd]
	inj.mu.Unlock()
	n, err := s.base.Read(fd, p)
	s.saw(fd, birth, err)
	return n, err
}

// writeFault decides a write's fault: an errno to return, or a cap on the bytes
// to write (0: none).
func (s *injectedSyscalls) writeFault(fd, total int) (errno unix.Errno, limit int, birth uint64) {
	inj := s.inj
	inj.mu.Lock()
	defer inj.mu.Unlock()
	birth = inj.births[fd]
	if inj.misuse(fd) {
		return unix.EBADF, 0, birth
	}
	if st := inj.fds[fd]; st != nil && st.broken {
		return unix.EPIPE, 0, birth
	}
	f := inj.fault(OpWrite, fd)
	if f != 0 {
		inj.count(f)
	}
	switch f {
	case FaultEAGAIN:
		return unix.EAGAIN, 0, birth
	case FaultEINTR:
		return unix.EINTR, 0, birth
	case FaultECONNRESET:
		inj.state(fd).broken = true
		return unix.ECONNRESET, 0, birth
	case FaultEPIPE:
		inj.state(fd).broken = true
		return unix.EPIPE, 0, birth
	case FaultEBADF:
		inj.closeForReal(fd, s.base.Close)
		return unix.EBADF, 0, birth
	case FaultShort:
		return 0, inj.shortLen(total), birth
	}
	return 0, 0, birth
}

func (s *injectedSyscalls) Write(fd int, p []byte) (int, error) {
	errno, limit, birth := s.writeFault(fd, len(p))
	if errno != 0 {
		return 0, errno
	}
	if limit > 0 {
		p = p[:limit]
	}
	n, err := s.base.Write(fd, p)
	s.saw(fd, birth, err)
	return n, err
}

func (s *injectedSyscalls) Writev(fd int, bufs [][]byte) (int, error) {
	total := 0
	for _, b := range bufs[:min(len(bufs), sockets.MaxIovecs)] {
		total += len(b)
	}
	errno, limit, birth := s.writeFault(fd, total)
	if errno != 0 {
		return 0, errno
	}
	if limit > 0 {
		var capped [sockets.MaxIovecs][]byte
		k := 0
		for _, b := range bufs[:min(len(bufs), sockets.MaxIovecs)] {
			if limit == 0 {
				break
			}
			if len(b) > limit {
				b = b[:limit]
			}
			capped[k] = b
			k++
			limit -= len(b)
		}
		bufs = capped[:k]
	}
	n, err := s.base.Writev(fd, bufs)
	s.saw(fd, birth, err)
	return n, err
}

func (s *injectedSyscalls) Shutdown(fd int, how sockets.ShutdownHow) error {
	birth, misuse := s.check(fd)
	if misuse {
		return unix.EBADF
	}
	err := s.base.Shutdown(fd, how)
	s.saw(fd, birth, err)
	return err
}

func (s *injectedSyscalls) Close(fd int) error {
	inj := s.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	f := inj.fault(OpClose, fd)
	if f != 0 {
		inj.count(f)
	}
	// Close and mark under one lock: released in between, another loop's
	// accept could be handed the number and record it fresh, and then be
	// marked closed here: its live socket refused as EBADF.
	err := s.base.Close(fd)
	inj.markClosed(fd)
	inj.mu.Unlock()
	switch f {
	case FaultEINTR:
		return unix.EINTR
	case FaultEBADF:
		return unix.EBADF
	}
	return err
}

func (s *injectedSyscalls) GetsockoptInt(fd int, opt sockets.SockOpt) (int, error) {
	inj := s.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return 0, unix.EBADF
	}
	if st := inj.fds[fd]; st != nil && opt == sockets.OptError && st.connectErrn != 0 {
		e := st.connectErrn
		st.connectErrn = 0
		inj.mu.Unlock()
		return e, nil
	}
	birth := inj.births[fd]
	inj.mu.Unlock()
	v, err := s.base.GetsockoptInt(fd, opt)
	s.saw(fd, birth, err)
	return v, err
}

func (s *injectedSyscalls) SetsockoptInt(fd int, opt sockets.SockOpt, value int) error {
	birth, misuse := s.check(fd)
	if misuse {
		return unix.EBADF
	}
	err := s.base.SetsockoptInt(fd, opt, value)
	s.saw(fd, birth, err)
	return err
}

func (s *injectedSyscalls) Getsockname(fd int) (net.Addr, error) {
	birth, misuse := s.check(fd)
	if misuse {
		return nil, unix.EBADF
	}
	a, err := s.base.Getsockname(fd)
	s.saw(fd, birth, err)
	return a, err
}

// Getpeername is where a connect the injector held back (FaultEINPROGRESS,
// FaultEINTR) is made: after the check that found the spurious writable.
func (s *injectedSyscalls) Getpeername(fd int) (net.Addr, error) {
	birth, misuse := s.check(fd)
	if misuse {
		return nil, unix.EBADF
	}
	a, err := s.base.Getpeername(fd)
	s.saw(fd, birth, err)
	inj := s.inj
	inj.mu.Lock()
	var to net.Addr
	if st := inj.fds[fd]; st != nil && st.connectTo != nil && err == unix.ENOTCONN {
		to, st.connectTo = st.connectTo, nil
	}
	inj.mu.Unlock()
	if to != nil {
		if cerr := s.base.Connect(fd, to); cerr != nil && cerr != unix.EINPROGRESS {
			if e, ok := cerr.(unix.Errno); ok {
				inj.mu.Lock()
				inj.state(fd).connectErrn = int(e)
				inj.mu.Unlock()
			}
		}
	}
	return a, err
}

func (s *injectedSyscalls) SetNonblock(fd int) error {
	inj := s.inj
	inj.mu.Lock()
	if inj.misuse(fd) {
		inj.mu.Unlock()
		return unix.EBADF
	}
	f := inj.fault(OpFcntl, fd)
	if f != 0 {
		inj.count(f)
		inj.mu.Unlock()
		return unix.EBADF
	}
	inj.mu.Unlock()
	return s.base.SetNonblock(fd)
}

// DupCloexec duplicates the caller's descriptor: fd is not the runtime's, so it
// is not checked against the closed numbers.
func (s *injectedSyscalls) DupCloexec(fd int) (int, error) {
	inj := s.inj
	inj.mu.Lock()
	f := inj.fault(OpFcntl, fd)
	if f != 0 {
		inj.count(f)
		inj.mu.Unlock()
		return -1, unix.EBADF
	}
	inj.mu.Unlock()
	nfd, err := s.base.DupCloexec(fd)
	s.created(nfd, err)
	return nfd, err
}

func (s *injectedSyscalls) Unlink(path string) error { return s.base.Unlink(path) }
