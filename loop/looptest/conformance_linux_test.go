package looptest_test

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
	"github.com/fsmkernel/fsmkernel/sockets"
)

// kernelUnderTest is what a conformance scenario runs on: Linux, or the
// simulator. Both give a sockets.Syscalls and loop.Pollers; they differ in
// how a scenario looks at a poller without blocking.
type kernelUnderTest interface {
	Sys() sockets.Syscalls
	NewPoller() (loop.Poller, error)
	// Poll says what p has ready now, merged over the waits it took:
	// "wait: 1 readable eofhint 2 hangup".
	Poll(p loop.Poller) (string, error)
	Settle() // lets the network deliver what is in flight
}

// realKernel is Linux.
type realKernel struct{}

func (realKernel) Sys() sockets.Syscalls           { return sockets.System() }
func (realKernel) NewPoller() (loop.Poller, error) { return loop.NewPoller() }
func (realKernel) Settle()                         { time.Sleep(5 * time.Millisecond) }

// Poll waits briefly, for what loopback is still delivering, then polls.
func (realKernel) Poll(p loop.Poller) (string, error) {
	return mergeWaits(2, func(evs []loop.PollEvent, i int) (int, error) {
		for {
			if n, err := p.Wait(evs, time.Duration(1-i)*20*time.Millisecond); err != syscall.EINTR {
				return n, err
			}
		}
	})
}

// simKernel is the simulator, inside one Simulate.
type simKernel struct {
	s *looptest.Sim
	o *loop.Options
}

func (k simKernel) Sys() sockets.Syscalls           { return k.o.Syscalls }
func (k simKernel) NewPoller() (loop.Poller, error) { return k.o.NewPoller() }
func (simKernel) Settle()                           {}

// Poll takes eight turns of Wait(0): the sim draws the order and the batch of
// what is ready, and level-triggered readiness comes back at each turn.
func (k simKernel) Poll(p loop.Poller) (string, error) {
	return mergeWaits(8, func(evs []loop.PollEvent, _ int) (int, error) {
		ch := make(chan error, 1)
		var n int
		k.s.Go(func() {
			var err error
			n, err = p.Wait(evs, 0)
			ch <- err
		})
		k.s.Step()
		select {
		case err := <-ch:
			return n, err
		default:
			return 0, errors.New("Wait did not return")
		}
	})
}

// mergeWaits calls wait times times and says what they reported, merged by
// token.
func mergeWaits(times int, wait func([]loop.PollEvent, int) (int, error)) (string, error) {
	flags := map[uint64][4]bool{}
	evs := make([]loop.PollEvent, 16)
	for i := range times {
		n, err := wait(evs, i)
		if err != nil {
			return "", err
		}
		for _, ev := range evs[:n] {
			f := flags[ev.Token]
			for j, on := range []bool{ev.Readable, ev.Writable, ev.EOFHint, ev.Hangup} {
				f[j] = f[j] || on
			}
			flags[ev.Token] = f
		}
	}
	s := "wait:"
	for _, t := range slices.Sorted(maps.Keys(flags)) {
		s += fmt.Sprint(" ", t)
		for j, on := range flags[t] {
			if on {
				s += " " + [...]string{"readable", "writable", "eofhint", "hangup"}[j]
			}
		}
	}
	if len(flags) == 0 {
		s += " none"
	}
	return s, nil
}

// rec runs one scenario on a kernel, with one poller: it makes the calls and
// writes down what they answered. What a scenario says inside differs goes to
// log instead of the transcript.
type rec struct {
	k        kernelUnderTest
	fam      sockets.Family
	dir      string // where Unix sockets are bound
	sys      sockets.Syscalls
	p        loop.Poller
	out, log []string
	apart    bool
	err      error // the last read's or write's
	open     map[int]bool
	paths    []string
}

// errName names an errno as the kernel's headers do; the Syscalls and the
// pollers return them unwrapped.
func errName(err error) string {
	if e, ok := err.(syscall.Errno); ok && unix.ErrnoName(e) != "" {
		return unix.ErrnoName(e)
	} else if err == nil {
		return "ok"
	}
	return err.Error()
}

func (r *rec) say(format string, args ...any) {
	to := map[bool]*[]string{false: &r.out, true: &r.log}[r.apart]
	*to = append(*to, fmt.Sprintf(format, args...))
}

// differs runs f, keeping what it says out of the transcript when on: where
// the simulator is known to differ from Linux, as its caller tells.
func (r *rec) differs(on bool, f func()) *rec { r.apart = on; f(); r.apart = false; return r }

// The steps of a scenario, each saying what the kernel answered.
func (r *rec) ctl(op string, err error) *rec          { r.say("%s=%s", op, errName(err)); return r }
func (r *rec) close(fd int) *rec                      { delete(r.open, fd); return r.ctl("close", r.sys.Close(fd)) }
func (r *rec) shut(fd int) *rec                       { return r.ctl("shutdown", r.sys.Shutdown(fd, sockets.ShutWrite)) }
func (r *rec) add(fd int, t uint64, rd, wr bool) *rec { return r.ctl("add", r.p.Add(fd, t, rd, wr)) }
func (r *rec) mod(fd int, t uint64, rd, wr bool) *rec {
	return r.ctl("modify", r.p.Modify(fd, t, rd, wr))
}
func (r *rec) rm(fd int) *rec { return r.ctl("remove", r.p.Remove(fd)) }
func (r *rec) unix() bool     { return r.fam == sockets.FamilyUnix }

// count says op's count, or its errno, and keeps the errno in r.err.
func (r *rec) count(op string, n int, err error) *rec {
	if r.err = err; err != nil {
		return r.ctl(op, err)
	}
	r.say("%s=%d", op, n)
	return r
}

func (r *rec) read(fd int) *rec {
	var b [64]byte
	n, err := r.sys.Read(fd, b[:])
	return r.count("read", n, err)
}

func (r *rec) write(fd int, s string) *rec {
	n, err := r.sys.Write(fd, []byte(s))
	return r.count("write", n, err)
}

func (r *rec) poll() *rec {
	s, err := r.k.Poll(r.p)
	if err != nil {
		return r.ctl("wait", err)
	}
	r.say("%s", s)
	return r
}

func (r *rec) sockErr(fd int) *rec {
	v, err := r.sys.GetsockoptInt(fd, sockets.OptError)
	if err != nil {
		return r.ctl("getsockopt", err)
	} else if v == 0 {
		err = errors.New("0")
	} else {
		err = syscall.Errno(v)
	}
	return r.ctl("SO_ERROR", err)
}

// check says op's errno if it failed: for the set-up of a scenario.
func (r *rec) check(op string, err error) {
	if err != nil {
		r.ctl(op, err)
	}
}

func (r *rec) socket() int {
	fd, err := r.sys.Socket(r.fam)
	r.check("socket", err)
	r.open[fd] = err == nil
	return fd
}

func (r *rec) accept(l int) int {
	fd, _, err := r.sys.Accept(l)
	r.ctl("accept", err)
	r.open[fd] = err == nil
	return fd
}

// addr is the n-th address to bind.
func (r *rec) addr(n int) net.Addr {
	if r.unix() {
		return &net.UnixAddr{Net: "unix", Name: filepath.Join(r.dir, fmt.Sprint("s", n))}
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1).To4()}
}

// bound is a socket bound to the n-th address, and the address it got; with
// listen, listening.
func (r *rec) bound(n int, listen bool) (int, net.Addr) {
	fd, a := r.socket(), r.addr(n)
	r.check("bind", r.sys.Bind(fd, a))
	if ua, ok := a.(*net.UnixAddr); ok {
		r.paths = append(r.paths, ua.Name)
	}
	if listen {
		r.check("listen", r.sys.Listen(fd, 16))
	}
	la, err := r.sys.Getsockname(fd)
	r.check("getsockname", err)
	return fd, la
}

// connect opens a socket and starts its connect to la.
func (r *rec) connect(la net.Addr) int {
	fd := r.socket()
	err := r.sys.Connect(fd, la)
	r.ctl("connect", err) // a Unix connect is answered at once
	return fd
}

// pair makes a connection c-a through a listener it closes again; c's
// connect is finished as the runtime finishes it: writable, then SO_ERROR.
func (r *rec) pair() (c, a int) {
	l, la := r.bound(0, true)
	c = r.connect(la)
	r.add(c, 99, false, true).poll().sockErr(c).rm(c).k.Settle()
	a = r.accept(l)
	r.close(l)
	return c, a
}

// writeFails writes to c, whose peer closed, until a write fails, and says how
// it failed. Linux takes the first write to a TCP peer that closed (the
// answer is a RST) and fails the next; on a Unix socket and in the sim the
// first fails. The runtime depends only on the errno of the failure.
func (r *rec) writeFails(c int) *rec {
	r.differs(true, func() {
		for i := 0; i < 3 && (i == 0 || r.err == nil); i++ {
			r.write(c, "x").k.Settle()
		}
	})
	return r.ctl("write fails", r.err)
}

// refused connects to addr, where nothing listens, and says "connect=refused"
// if the connect failed as the runtime expects: at once with ECONNREFUSED,
// or in progress, then writable and hung up with SO_ERROR ECONNREFUSED, which
// reading clears. Linux refuses a Unix connect at once and a TCP one in
// progress; the sim refuses both in progress.
func (r *rec) refused(addr net.Addr) {
	c := r.socket()
	err := r.sys.Connect(c, addr)
	if err == syscall.EINPROGRESS {
		mark := len(r.out)
		r.add(c, 1, false, true).poll().sockErr(c).sockErr(c).rm(c)
		want := []string{"add=ok", "wait: 1 writable hangup", "SO_ERROR=ECONNREFUSED", "SO_ERROR=0", "remove=ok"}
		if !slices.Equal(r.out[mark:], want) {
			return // the transcript says what went otherwise
		}
		r.out, err = r.out[:mark], syscall.ECONNREFUSED
	}
	if err == syscall.ECONNREFUSED {
		r.say("connect=refused")
	} else {
		r.ctl("connect", err)
	}
}

// transcript runs sc on k and returns what it observed, and apart from it
// what it observed where the simulator is known to differ. It closes what sc
// left open.
func transcript(k kernelUnderTest, fam sockets.Family, dir string, sc func(r *rec)) (out, log []string) {
	r := &rec{k: k, fam: fam, dir: dir, sys: k.Sys(), open: map[int]bool{}}
	p, err := k.NewPoller()
	if err != nil {
		return []string{"poller=" + errName(err)}, nil
	}
	r.p = p
	sc(r)
	for fd, open := range r.open {
		if open {
			r.sys.Close(fd)
		}
	}
	for _, path := range r.paths {
		r.sys.Unlink(path)
	}
	r.check("poller close", p.Close())
	return r.out, r.log
}

// The scenarios: the answers of the kernel the runtime depends on.
var scenarios = []struct {
	name string
	run  func(r *rec)
}{
	{"read then EOF", func(r *rec) {
		c, a := r.pair()
		r.add(a, 1, true, false).read(a).poll()
		r.write(c, "hello").poll().read(a).read(a)
		r.write(c, "bye").shut(c).poll().read(a).read(a).poll() // the data comes before the EOF
		r.write(a, "back").read(c)                              // half-closed: the other way still carries data
		r.shut(a).mod(a, 1, true, true).poll()
	}},
	{"accept", func(r *rec) {
		l, la := r.bound(0, true)
		r.add(l, 1, true, false)
		r.accept(l)
		r.poll()
		c := r.connect(la)
		r.add(c, 2, false, true).poll()
		r.accept(l)
		r.accept(l)
		r.poll().sockErr(c)
		_, err := r.sys.Getpeername(c)
		r.ctl("getpeername", err)
	}},
	{"write after peer close", func(r *rec) {
		c, a := r.pair()
		r.add(c, 1, true, true).close(a)
		r.poll() // a Unix socket whose peer closed is hung up; TCP's has a FIN
		r.writeFails(c).write(c, "again").poll()
		r.read(c) // the reset is reported once: the failed write took it
	}},
	{"connect refused", func(r *rec) {
		_, ba := r.bound(0, false) // bound, not listening: connects are refused
		r.refused(ba)
		r.connect(r.addr(7)) // no file there: ENOENT at once for Unix
		// With read interest too, a refused socket is readable with the EOF
		// hint; a read takes the ECONNREFUSED, a write says EPIPE.
		r.differs(r.unix(), func() {
			c := r.socket()
			r.ctl("connect", r.sys.Connect(c, ba)).add(c, 2, true, true).poll().read(c).write(c, "x")
		})
	}},
	{"poller control", func(r *rec) {
		c, a := r.pair()
		r.close(a).writeFails(c)         // now reset
		r.add(c, 1, false, false).poll() // no interest: hangup all the same
		r.add(c, 1, false, false)        // twice
		s := r.socket()
		r.mod(s, 2, true, false).rm(s) // never added
		l, _ := r.bound(1, true)
		r.add(l, 3, false, false).poll().rm(c).add(s, 2, false, false)
		r.poll()                                                      // a socket neither connected nor listening is hung up
		r.close(s).add(s, 4, true, true).mod(s, 4, true, false).rm(s) // closed
	}},
	{"dup keeps the registration", func(r *rec) {
		c, a := r.pair()
		r.add(a, 1, true, false)
		b, err := r.sys.DupCloexec(a)
		r.open[b] = err == nil
		r.ctl("dup", err).close(a).write(c, "hello").poll()
		r.mod(a, 1, true, false).mod(b, 1, true, false).rm(b) // closed; the dup was never added
		s := r.socket()
		r.say("reused=%v", s == a)
		r.mod(s, 1, true, false).close(s) // the number names another file now
		r.read(b).write(c, "again").close(b).poll()
	}},
	{"lowest free number", func(r *rec) {
		x, y, z := r.socket(), r.socket(), r.socket()
		r.say("increasing=%v", x < y && y < z)
		r.close(y).close(x)
		r.say("next is x=%v", r.socket() == x)
		r.say("then y=%v", r.socket() == y)
		r.say("then above z=%v", r.socket() > z)
	}},
	{"close with unread data", func(r *rec) {
		c, a := r.pair()
		r.write(c, "unread").k.Settle()
		r.add(c, 1, true, false).close(a).k.Settle()
		r.poll().read(c) // closed with data unread: a reset, reported once
		r.read(c).writeFails(c)
	}},
}

// TestConformance proves that the simulated kernel answers as Linux does
// where the runtime depends on it: each scenario makes the same calls on
// Linux (loopback TCP and Unix sockets, epoll) and on the simulator (three
// seeds), and both must give the same transcript: the same errnos by value,
// counts and readiness flags. Where the simulator is known to differ, the
// observation is logged apart instead ("sim differs" in the scenarios; -v
// shows both sides). No descriptor outlives a scenario on either kernel.
func TestConformance(t *testing.T) {
	// The runtime opens its own poller's descriptors with its first timer:
	// before the first count, not inside a scenario.
	time.Sleep(time.Millisecond)
	for _, fam := range []sockets.Family{sockets.FamilyInet4, sockets.FamilyUnix} {
		for _, sc := range scenarios {
			t.Run(fam.String()+"/"+strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
				before := openFDs(t)
				real, rlog := transcript(realKernel{}, fam, t.TempDir(), sc.run)
				if after := openFDs(t); after != before {
					t.Errorf("linux: %d descriptors open before the scenario, %d after", before, after)
				}
				for seed := uint64(1); seed <= 3; seed++ {
					var sim, slog []string
					vs := looptest.Check(t, seed, func(s *looptest.Sim) {
						sim, slog = transcript(simKernel{s, s.Options(nil)}, fam, "/sim", sc.run)
					})
					for _, v := range vs {
						// The scenarios call the kernel as no runtime may, on
						// purpose: a number after closing it, to see the
						// kernel's answer. Anything else fails.
						if v.Contract != "D4" || !strings.Contains(v.Detail, "after the runtime closed it") {
							t.Errorf("seed %d: %v", seed, v)
						}
					}
					if !slices.Equal(real, sim) {
						t.Errorf("seed %d: the simulator differs from Linux:\n%s", seed, diff(real, sim))
					}
					if seed == 1 && len(rlog)+len(slog) > 0 {
						t.Logf("known differences:\n%s", diff(rlog, slog))
					}
				}
			})
		}
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// diff lays two transcripts side by side and marks the lines that differ.
func diff(real, sim []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "   %-40s | %s\n", "linux", "sim")
	for i := range max(len(real), len(sim)) {
		var l, s string
		if i < len(real) {
			l = real[i]
		}
		if i < len(sim) {
			s = sim[i]
		}
		fmt.Fprintf(&b, "%s %-40s | %s\n", map[bool]string{true: "  ", false: "!="}[l == s], l, s)
	}
	return b.String()
}
