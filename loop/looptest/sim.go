//go:build linux || darwin || freebsd

package looptest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
)

// Sim is a deterministic simulation of the kernel under one or more loops:
// in-memory stream sockets, listeners and pollers behind the loop's own hooks
// (Options.Syscalls, Options.NewPoller, Options.Clock), simulated peers, and
// a virtual clock. The loops run on it unchanged.
//
// Everything that could vary between two runs is drawn from the seed given
// to Simulate, one stream per subsystem (which parked loop runs next, the
// order and batching of readiness, the faults of the Profile), and a loop
// runs only when the Sim gives it a turn: one wakeup, from its Poller.Wait
// returning to its next call. So one seed replays one run exactly, and
// TraceHash tells two runs apart.
//
// The goroutine that calls Simulate's function is the driver. It calls the
// loops' non-blocking methods directly (Write, Close, Execute, Dial on a Loop)
// and the Sim's, which run the loops: Step, Settle, Advance, RunUntil. The
// loops' blocking methods (Shutdown, Close and Wait of a Loop or Group,
// Group.Dial, a Conn's Read and Write) would wait for a loop that only runs
// when the driver lets it: call them through Go, then drive until they
// return.
type Sim struct {
	t    testing.TB
	seed uint64
	k    *kernel

	rngSched, rngPoll, rngFault, rngPeer *rand.Rand

	clock      *simClock
	violations []Violation
	ring       [64]string
	ringN      int
	injected   map[string]int
	turns      int
	running    int      // goroutines started by Go and not yet returned
	full       []string // every trace line, when KeepTrace was called
	ids        map[uint64]int
}

// KeepTrace makes the Sim keep every line of the trace, for Trace.
func (s *Sim) KeepTrace() {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	if s.full == nil {
		s.full = []string{}
	}
}

// Trace returns every line of the trace since KeepTrace.
func (s *Sim) Trace() []string {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return append([]string(nil), s.full...)
}

// Violation is a broken contract: its name, what broke it, and the last
// lines of the run's trace before it.
type Violation struct {
	Contract string
	Detail   string
	Tail     []string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s\n    %s", v.Contract, v.Detail, strings.Join(v.Tail, "\n    "))
}

// maxSettle bounds the turns of one Settle: a loop that never parks with
// nothing to do is livelocked.
const maxSettle = 100000

// Simulate runs f in a simulation drawn from seed, in a testing/synctest
// bubble: time is the bubble's virtual time, which moves only when the driver
// waits for it (Advance, RunUntil). When f returns, every goroutine started
// through Go must have returned and every loop must have stopped; the test
// fails with the seed and the trace's tail if any contract was broken.
func Simulate(t *testing.T, seed uint64, f func(s *Sim)) {
	t.Helper()
	for _, v := range Check(t, seed, f) {
		t.Errorf("seed %#x: %v", seed, v)
	}
}

// Check is Simulate returning the broken contracts instead of failing t with
// them, for a property test that shrinks its schedules.
func Check(t *testing.T, seed uint64, f func(s *Sim)) []Violation {
	t.Helper()
	var vs []Violation
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, seed)
		defer func() {
			// Also after t.Fatal in f: parked loops and their waiters must end
			// before the bubble does.
			s.finish()
			vs = s.violations
		}()
		f(s)
	})
	return vs
}

func newSim(t testing.TB, seed uint64) *Sim {
	s := &Sim{
		t: t, seed: seed, injected: map[string]int{}, ids: map[uint64]int{},
		rngSched: rand.New(rand.NewPCG(seed, 1)),
		rngPoll:  rand.New(rand.NewPCG(seed, 2)),
		rngFault: rand.New(rand.NewPCG(seed, 3)),
		rngPeer:  rand.New(rand.NewPCG(seed, 4)),
	}
	s.k = newKernel(s)
	s.k.faults = &faultPlan{}
	s.clock = &simClock{s: s}
	return s
}

// Seed returns the simulation's seed.
func (s *Sim) Seed() uint64 { return s.seed }

// Rand returns a random stream of the seed for the driver's own choices,
// apart from the Sim's.
func (s *Sim) Rand() *rand.Rand { return s.rngPeer }

// Options returns base (nil: the zero Options) with the hooks set to the
// simulation's: its sockets.Syscalls, its pollers and its clock. A Trace in
// base is still called, after the Sim's own recording of the step.
func (s *Sim) Options(base *loop.Options) *loop.Options {
	var o loop.Options
	if base != nil {
		o = *base
	}
	o.Syscalls = simSys{s.k}
	o.NewPoller = s.k.newPoller
	o.Clock = s.clock
	user := o.Trace
	o.Trace = func(st loop.Step) {
		s.k.mu.Lock()
		id := st.ID
		if st.Machine != "eventloop" {
			// Channel and listener ids count across the process: the trace
			// names them by first appearance in this run.
			if s.ids[id] == 0 {
				s.ids[id] = len(s.ids) + 1
			}
			id = uint64(s.ids[id])
		}
		s.k.record("%s %d %s -%s-> %s %v%s", st.Machine, id, st.From, st.Event, st.To, st.Actions, map[bool]string{true: " rejected"}[st.Rejected])
		s.k.mu.Unlock()
		if user != nil {
			user(st)
		}
	}
	return &o
}

// SetProfile sets the rates of the faults and turns them on.
func (s *Sim) SetProfile(p Profile) {
	s.k.mu.Lock()
	s.k.faults = &faultPlan{p: p, on: true}
	s.k.mu.Unlock()
}

// Faults turns the Profile's faults on or off.
func (s *Sim) Faults(on bool) {
	s.k.mu.Lock()
	s.k.faults.on = on
	s.k.faults.full = false
	s.k.mu.Unlock()
}

// Injected returns how many faults of each kind fired, by "op fault".
func (s *Sim) Injected() map[string]int {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	out := make(map[string]int, len(s.injected))
	for k, v := range s.injected {
		out[k] = v
	}
	return out
}

// Turns returns how many turns the loops were given.
func (s *Sim) Turns() int { return s.turns }

// SyscallCount returns how many system calls the runtime made on the
// simulated kernel.
func (s *Sim) SyscallCount() uint64 {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.k.nsys
}

// UnknowingCloses returns how many times the runtime closed a number that
// another owner had taken behind its back, with no call having told it so:
// what no runtime can avoid without asking the kernel first. Such a close
// after a call told it is a D2 violation instead.
func (s *Sim) UnknowingCloses() int {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.k.unknowing
}

// TraceHash returns a hash of every system call, its answer and every
// transition of the run so far: equal for two runs of one seed and one
// driver.
func (s *Sim) TraceHash() uint64 {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.k.trace.Sum64()
}

// Tail returns the last lines of the run's trace.
func (s *Sim) Tail() []string {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.tailLocked()
}

func (s *Sim) tailLocked() []string {
	var out []string
	n := min(s.ringN, len(s.ring))
	for i := s.ringN - n; i < s.ringN; i++ {
		out = append(out, s.ring[i%len(s.ring)])
	}
	return out
}

// tail keeps line in the ring of the trace's last lines (k.mu is held).
func (s *Sim) tail(line string) {
	s.ring[s.ringN%len(s.ring)] = fmt.Sprintf("%6d %s", s.ringN, line)
	s.ringN++
}

// violate records a broken contract (k.mu is held).
func (s *Sim) violate(contract, format string, args ...any) {
	d := fmt.Sprintf(format, args...)
	for _, v := range s.violations {
		if v.Contract == contract && v.Detail == d {
			return // the same again: the first report says it
		}
	}
	s.tail("VIOLATED " + contract + ": " + d)
	if s.full != nil {
		s.full = append(s.full, "VIOLATED "+contract+": "+d)
	}
	s.violations = append(s.violations, Violation{Contract: contract, Detail: d, Tail: s.tailLocked()})
}

// Violate records a broken contract found by the driver's own oracle.
func (s *Sim) Violate(contract, format string, args ...any) {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	s.violate(contract, format, args...)
}

// Violations returns the contracts broken so far.
func (s *Sim) Violations() []Violation {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return append([]Violation(nil), s.violations...)
}

// Step gives one parked loop that has something to do (readiness, a wake, a
// timer due, queued work) one turn and waits until it parks again; the seed
// chooses among several. It reports false when no loop had anything to do.
func (s *Sim) Step() bool {
	synctest.Wait()
	k := s.k
	k.mu.Lock()
	now := s.clock.Now()
	var run []*simPoller
	for _, p := range k.pollers {
		if p.runnable(now) {
			run = append(run, p)
		}
	}
	if len(run) == 0 {
		k.mu.Unlock()
		return false
	}
	p := run[s.rngSched.IntN(len(run))]
	p.parked = false
	s.turns++
	k.mu.Unlock()
	p.turn <- struct{}{}
	synctest.Wait()
	return true
}

// Settle gives turns until no loop has anything to do, without moving time.
// A loop that never settles is reported as livelocked, and then every Wait
// fails, as at the end of a simulation, so that the loops stop and the run
// ends soon instead of livelocking every Settle after this one.
func (s *Sim) Settle() {
	for i := 0; s.Step(); i++ {
		if i == maxSettle {
			s.Violate("liveness", "the loops took %d turns without settling", maxSettle)
			s.k.mu.Lock()
			s.k.kill = true
			s.k.mu.Unlock()
			return
		}
	}
}

// Go runs f in a new goroutine of the simulation and waits until it blocks
// or returns: the way to call a loop's blocking methods.
func (s *Sim) Go(f func()) {
	s.k.mu.Lock()
	s.running++
	s.k.mu.Unlock()
	go func() {
		defer func() {
			s.k.mu.Lock()
			s.running--
			s.k.mu.Unlock()
		}()
		f()
	}()
	synctest.Wait()
}

// Now is the simulation's time.
func (s *Sim) Now() time.Time { return s.clock.Now() }

// next returns the earliest time something is due: a parked loop's wait
// timeout or a clock timer; ok is false when nothing is.
func (s *Sim) next() (t time.Time, ok bool) {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.pollers {
		if p.parked && p.timeout > 0 && (!ok || p.deadline.Before(t)) {
			t, ok = p.deadline, true
		}
	}
	if w, has := s.clock.nextLocked(); has && (!ok || w.Before(t)) {
		t, ok = w, true
	}
	return t, ok
}

// Advance runs the loops for d of virtual time: settles them, moves the clock
// to the next timer or wait timeout due within d, settles again, and so on.
func (s *Sim) Advance(d time.Duration) {
	s.RunUntil(func() bool { return false }, d)
}

// RunUntil runs the loops as Advance does until cond holds (checked whenever
// they have settled) or limit has passed, and reports whether cond held.
func (s *Sim) RunUntil(cond func() bool, limit time.Duration) bool {
	end := s.clock.Now().Add(limit)
	for {
		s.Settle()
		if cond() {
			return true
		}
		now := s.clock.Now()
		if !now.Before(end) {
			return false
		}
		t, ok := s.next()
		if !ok || t.After(end) {
			t = end
		}
		if t.After(now) {
			time.Sleep(t.Sub(now))
		}
		s.clock.fire()
	}
}

// Listen makes a simulated remote server at addr (a *net.TCPAddr, a
// *net.UnixAddr or a *vsock.Addr) for the runtime's Dial: each connection
// made to it is a Peer, in Accept.
func (s *Sim) Listen(addr net.Addr) *Remote {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	r := &Remote{k: k}
	k.remotes[addrKey(addr)] = r
	return r
}

// Blackhole makes addr a remote that never answers: a TCP or vsock connect
// to it stays in progress, neither writable nor failed, until the runtime
// gives up (a host that drops the SYN); a Unix one says EAGAIN, as a listener
// whose backlog stays full does.
func (s *Sim) Blackhole(addr net.Addr) {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	k.holes[addrKey(addr)] = true
}

// SetSocketBuffer sets how many bytes each direction of a connection made
// from now on holds: 64 KiB unless set. With less, a peer that stops reading
// stalls the runtime's writes sooner.
func (s *Sim) SetSocketBuffer(n int) {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if n > 0 {
		k.sockBuf = n
	}
}

// Dial connects a simulated client to a runtime listener at addr: the
// connection waits in the listener's backlog until the runtime accepts it.
// It fails with ECONNREFUSED when nothing listens there or the backlog is
// full.
func (s *Sim) Dial(addr net.Addr) (*Peer, error) {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.addrs[addrKey(addr)]
	if l == nil || len(l.backlog) >= l.blmax {
		k.record("peer dial %v = ECONNREFUSED", addr)
		return nil, &net.OpError{Op: "dial", Net: addr.Network(), Addr: addr, Err: syscall.ECONNREFUSED}
	}
	c := k.newConn(l.fam)
	me, them := c.ends[0], c.ends[1]
	me.laddr = k.ephemeral(l.fam, addr)
	me.raddr = l.laddr
	them.laddr, them.raddr = l.laddr, me.laddr
	p := &Peer{k: k, e: me, name: fmt.Sprintf("peer %v", me.laddr)}
	me.peer = p
	l.backlog = append(l.backlog, them)
	k.record("peer dial %v from %v", addr, me.laddr)
	return p, nil
}

// CloseBehind closes descriptor fd behind the runtime's back, as another
// owner in the process would (a double close elsewhere, a library that closes
// what it was lent); with reuse, another owner is given the number at once.
// The runtime must never touch the number again once a call told it EBADF,
// and never close it.
func (s *Sim) CloseBehind(fd int, reuse bool) {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	k.invalidate(fd, reuse)
}

// Registered returns the numbers registered with any simulated poller, in
// increasing order: the descriptors of the runtime's channels and, unless
// connsOnly, its listeners.
func (s *Sim) Registered(connsOnly bool) []int {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	var fds []int
	for _, p := range k.pollers {
		for _, r := range p.regs {
			if r.fd < len(k.fds) && k.fds[r.fd].f == r.f && (!connsOnly || r.f.kind == fileConn) {
				fds = append(fds, r.fd)
			}
		}
	}
	sort.Ints(fds)
	return fds
}

// Pollers returns each loop's poller descriptor, in the order the loops
// created them (-1 once released).
func (s *Sim) Pollers() []int {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	var fds []int
	for _, p := range k.pollers {
		fds = append(fds, p.fd)
	}
	return fds
}

// Open returns the numbers the runtime holds open, with what each names: once
// every loop has stopped, there must be none.
func (s *Sim) Open() map[int]string {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[int]string{}
	for fd := range k.owned {
		if f := k.fds[fd].f; f != nil {
			out[fd] = f.kind.String()
		}
	}
	return out
}

// finish checks the end of a run: every goroutine of Go returned, every
// poller released, every descriptor of the runtime closed or forgotten.
func (s *Sim) finish() {
	synctest.Wait()
	k := s.k
	k.mu.Lock()
	running := s.running
	var live []int
	for _, p := range k.pollers {
		if !p.done {
			live = append(live, p.index)
		}
	}
	k.mu.Unlock()
	if running > 0 {
		s.Violate("termination", "%d goroutines started by Go had not returned when the simulation ended", running)
	}
	if len(live) > 0 {
		s.Violate("termination", "loops %v had not stopped when the simulation ended", live)
	}
	if open := s.Open(); len(open) > 0 {
		s.Violate("D4", "descriptors left open when the simulation ended: %v", open)
	}
	if len(live) > 0 {
		// Parked loops would make synctest fail with its own message: every
		// Wait now fails, the loops take their abnormal path and stop.
		k.mu.Lock()
		k.kill = true
		k.mu.Unlock()
		for i := 0; i < 1000 && s.Step(); i++ {
		}
	}
}

// simClock is the loops' Clock: the bubble's time, and timers the Sim fires
// itself, at their time, so that Advance stops at each.
type simClock struct {
	s      *Sim
	timers []*simTimer
	seq    uint64
}

type simTimer struct {
	when time.Time
	seq  uint64
	f    func()
}

func (c *simClock) Now() time.Time { return time.Now() }

func (c *simClock) AfterFunc(d time.Duration, f func()) func() bool {
	k := c.s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	c.seq++
	t := &simTimer{when: time.Now().Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// nextLocked returns the earliest timer's time (k.mu is held).
func (c *simClock) nextLocked() (time.Time, bool) {
	var t time.Time
	ok := false
	for _, x := range c.timers {
		if !ok || x.when.Before(t) {
			t, ok = x.when, true
		}
	}
	return t, ok
}

// fire runs the timers that are due, each in its own goroutine, in the order
// they were set, and waits until they block or return.
func (c *simClock) fire() {
	k := c.s.k
	now := time.Now()
	k.mu.Lock()
	var due []*simTimer
	j := 0
	for _, x := range c.timers {
		if !x.when.After(now) {
			due = append(due, x)
		} else {
			c.timers[j] = x
			j++
		}
	}
	c.timers = c.timers[:j]
	k.mu.Unlock()
	sort.Slice(due, func(a, b int) bool { return due[a].seq < due[b].seq })
	for _, x := range due {
		c.s.Go(x.f)
	}
}
