package loop

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// echoClients runs n echo clients in parallel against addr.
func echoClients(t *testing.T, addr net.Addr, n int) {
	t.Helper()
	echoOverMany(t, n, func() (net.Conn, error) { return net.Dial(addr.Network(), addr.String()) })
}

// activeEcho echoes and hands each channel out when it becomes active.
type activeEcho struct {
	echo
	active chan *Channel
}

func (h activeEcho) OnActive(c *Channel) { h.active <- c }

// serveActive serves activeEcho on g; the channels arrive on the returned chan.
func serveActive(t *testing.T, g *Group) (*Listener, chan *Channel) {
	t.Helper()
	active := make(chan *Channel, 16)
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) { return activeEcho{active: active}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ln, active
}

// connect dials addr and returns the client and its server-side channel.
func connect(t *testing.T, addr net.Addr, active chan *Channel) (net.Conn, *Channel) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case ch := <-active:
		return c, ch
	case <-time.After(5 * time.Second):
		t.Fatal("the connection never became active")
	}
	return nil, nil
}

// peerClosed waits until c reads EOF or an error other than its deadline.
func peerClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server never closed the connection")
		}
		if err != nil {
			return
		}
	}
}

func noMisuse(t *testing.T, inj *Injector) {
	t.Helper()
	if n := inj.CallsOnClosed(); n != 0 {
		t.Errorf("%d calls on descriptor numbers already closed or found invalid", n)
	}
}

// TestInjectSpuriousReadiness: readable and EOF-hint notifications whose read
// says EAGAIN (R1, R3), and EAGAIN on later reads with the data still there,
// are counted and lose no byte.
func TestInjectSpuriousReadiness(t *testing.T) {
	checkFDs(t)
	inj := NewInjector(1,
		Rule{Op: OpEpollWait, Fault: FaultSpuriousReadable, Every: 3},
		Rule{Op: OpEpollWait, Fault: FaultSpuriousEOFHint, Every: 4},
		Rule{Op: OpRead, Fault: FaultEAGAIN, Every: 5},
	)
	g := NewGroup(2, inj.Options(nil))
	defer shutdown(t, g)
	ln := serveEcho(t, g, loopback)
	echoClients(t, ln.Addr(), 4)
	for _, f := range []Fault{FaultSpuriousReadable, FaultSpuriousEOFHint, FaultEAGAIN} {
		if inj.Injected(f) == 0 {
			t.Errorf("%v never injected", f)
		}
	}
	var spurious uint64
	for _, l := range g.Loops() {
		spurious += l.Counters().SpuriousReadiness.Load()
	}
	if spurious == 0 {
		t.Error("SpuriousReadiness = 0")
	}
	noMisuse(t, inj)
	t.Logf("injected %v; SpuriousReadiness %d", inj.Counts(), spurious)
}

// TestInjectEINTREverywhere: EINTR on read, write, accept, connect and
// epoll_wait, at random, is retried (R4) without loss.
func TestInjectEINTREverywhere(t *testing.T) {
	checkFDs(t)
	var rules []Rule
	for _, op := range []Op{OpRead, OpWrite, OpAccept, OpConnect, OpEpollWait} {
		rules = append(rules, Rule{Op: op, Fault: FaultEINTR, Probability: 0.3})
	}
	inj := NewInjector(2, rules...)
	g := NewGroup(2, inj.Options(nil))
	defer shutdown(t, g)
	ln := serveEcho(t, g, loopback)
	echoClients(t, ln.Addr(), 4)
	// Dials through the injector too: an interrupted connect goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 4; i++ {
		rec := newRecorder()
		ch, err := g.Dial(ctx, ln.Addr(), rec, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		ch.Write([]byte("ping"), nil)
		waitData(t, rec, "ping")
		ch.Close()
		wait(t, ch.Closed(), "the dialed channel closing")
	}
	if inj.Injected(FaultEINTR) == 0 {
		t.Error("EINTR never injected")
	}
	noMisuse(t, inj)
	t.Logf("injected %v", inj.Counts())
}

func waitData(t *testing.T, rec *recorder, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		got := rec.data.String()
		rec.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %q, want %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestInjectShortReadsWrites: reads and writes that move part of the bytes keep
// the rest pending; nothing is lost or reordered.
func TestInjectShortReadsWrites(t *testing.T) {
	checkFDs(t)
	inj := NewInjector(3,
		Rule{Op: OpRead, Fault: FaultShort, Probability: 0.5},
		Rule{Op: OpWrite, Fault: FaultShort, Probability: 0.5},
	)
	g := NewGroup(2, inj.Options(nil))
	defer shutdown(t, g)
	ln := serveEcho(t, g, loopback)
	echoClients(t, ln.Addr(), 4)
	if inj.Injected(FaultShort) == 0 {
		t.Error("no short read or write injected")
	}
	noMisuse(t, inj)
	t.Logf("injected %v", inj.Counts())
}

// TestInjectResetAndBrokenPipe: ECONNRESET on one channel's read and EPIPE on
// another's write close those channels with the error (R4); a third is served.
func TestInjectResetAndBrokenPipe(t *testing.T) {
	checkFDs(t)
	inj := NewInjector(4)
	g := NewGroup(1, inj.Options(nil))
	defer shutdown(t, g)
	ln, active := serveActive(t, g)
	resetC, resetCh := connect(t, ln.Addr(), active)
	pipeC, pipeCh := connect(t, ln.Addr(), active)
	healthy, _ := connect(t, ln.Addr(), active)
	inj.Add(
		Rule{Op: OpRead, Fault: FaultECONNRESET, Every: 1, Count: 1, FD: resetCh.reg.fd.Fd()},
		Rule{Op: OpWrite, Fault: FaultEPIPE, Every: 1, Count: 1, FD: pipeCh.reg.fd.Fd()},
	)
	resetC.Write([]byte("reset me"))
	pipeC.Write([]byte("break my pipe"))
	for _, x := range []struct {
		ch   *Channel
		c    net.Conn
		want error
	}{{resetCh, resetC, unix.ECONNRESET}, {pipeCh, pipeC, unix.EPIPE}} {
		wait(t, x.ch.Closed(), "the faulted channel closing")
		if !errors.Is(x.ch.Err(), x.want) {
			t.Errorf("channel error %v, want %v", x.ch.Err(), x.want)
		}
		peerClosed(t, x.c)
	}
	if err := echoOnce(healthy, "still here"); err != nil {
		t.Fatalf("the healthy channel: %v", err)
	}
	echoClients(t, ln.Addr(), 2)
	if inj.Injected(FaultECONNRESET) != 1 || inj.Injected(FaultEPIPE) != 1 {
		t.Errorf("injected %v, want one ECONNRESET and one EPIPE", inj.Counts())
	}
	noMisuse(t, inj)
}

// TestInjectEBADFContained: descriptors invalidated outside the kernel (EBADF
// injected on read, write and epoll_ctl after closing the number; a number
// closed or dup2'd over by another owner) fail their channel alone (D2): no
// second close, no leak, the loop serves on. EBADF from close itself (after
// closing) leaks nothing either.
func TestInjectEBADFContained(t *testing.T) {
	checkFDs(t)
	inj := NewInjector(5)
	g := NewGroup(1, inj.Options(nil))
	defer shutdown(t, g)
	l := g.Loops()[0]
	ln, active := serveActive(t, g)
	readC, readCh := connect(t, ln.Addr(), active)
	writeC, writeCh := connect(t, ln.Addr(), active)
	behindC, behindCh := connect(t, ln.Addr(), active)
	nullC, nullCh := connect(t, ln.Addr(), active)
	healthy, _ := connect(t, ln.Addr(), active)

	inj.Add(
		Rule{Op: OpRead, Fault: FaultEBADF, Every: 1, Count: 1, FD: readCh.reg.fd.Fd()},
		Rule{Op: OpWrite, Fault: FaultEBADF, Every: 1, Count: 1, FD: writeCh.reg.fd.Fd()},
	)
	readC.Write([]byte("read me"))
	writeC.Write([]byte("echo me"))
	for _, ch := range []*Channel{readCh, writeCh} {
		wait(t, ch.Closed(), "the invalidated channel failing")
		if !errors.Is(ch.Err(), unix.EBADF) {
			t.Errorf("channel error %v, want EBADF", ch.Err())
		}
	}
	peerClosed(t, readC)
	peerClosed(t, writeC)

	// Out of band, for real: another owner closes the number; the next write
	// finds EBADF.
	if err := inj.CloseBehind(behindCh.reg.fd.Fd()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	behindCh.Write([]byte("to a number no longer ours"), func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Error("a write to a descriptor closed behind the channel succeeded")
	}
	wait(t, behindCh.Closed(), "the channel closed behind failing")
	peerClosed(t, behindC)

	// dup2 /dev/null over the number: it stays valid but names another file;
	// the channel reads EOF, and the DEL before close(2) answers EPERM (epoll
	// cannot watch /dev/null, so the number is not the socket it registered):
	// the channel abandons the number instead of closing another file (D2).
	nullNum := nullCh.reg.fd.Fd()
	if err := inj.Dup2DevNull(nullNum); err != nil {
		t.Fatal(err)
	}
	nullCh.Write([]byte("into the void"), nil)
	nullC.Write([]byte("x"))
	wait(t, nullCh.Closed(), "the channel dup2'd over closing")
	if _, err := unix.FcntlInt(uintptr(nullNum), unix.F_GETFD, 0); err != nil {
		t.Errorf("the /dev/null put at fd %d was closed by the channel: %v", nullNum, err)
	}
	unix.Close(nullNum) // the test put it there

	// epoll_ctl EBADF on the next registration, and close EBADF on a clean close.
	inj.Add(
		Rule{Op: OpEpollCtl, Fault: FaultEBADF, Every: 1, Count: 1},
		Rule{Op: OpClose, Fault: FaultEBADF, Every: 1, Count: 1},
	)
	ctlC, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ctlC.Close()
	peerClosed(t, ctlC)
	_, closeCh := connect(t, ln.Addr(), active)
	closeCh.Close()
	wait(t, closeCh.Closed(), "the clean close")

	if err := echoOnce(healthy, "still here"); err != nil {
		t.Fatalf("the healthy channel: %v", err)
	}
	echoClients(t, ln.Addr(), 2)
	if n := l.Counters().DescriptorsContained.Load(); n < 4 {
		t.Errorf("DescriptorsContained = %d, want at least 4 (read, write, epoll_ctl, closed behind)", n)
	}
	if inj.Injected(FaultEBADF) != 4 {
		t.Errorf("injected %v, want 4 EBADF", inj.Counts())
	}
	if n := inj.CallsOnClosed(); n != 0 {
		t.Errorf("%d syscalls on numbers already found invalid: after EBADF the runtime must not touch the number (D2)", n)
	}
	t.Logf("injected %v; DescriptorsContained %d", inj.Counts(), l.Counters().DescriptorsContained.Load())
}

// TestInjectAcceptExhaustion: EMFILE, ENFILE and ENOBUFS from accept throttle
// the listener; the connection waits in the backlog and is served after.
func TestInjectAcceptExhaustion(t *testing.T) {
	checkFDs(t)
	inj := NewInjector(6)
	g := NewGroup(1, inj.Options(nil))
	defer shutdown(t, g)
	ln := serveEcho(t, g, loopback)
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := echoOnce(first, "before"); err != nil {
		t.Fatal(err)
	}
	inj.Add(
		Rule{Op: OpAccept, Fault: FaultEMFILE, Every: 1, Count: 1},
		Rule{Op: OpAccept, Fault: FaultENFILE, Every: 1, Count: 1},
		Rule{Op: OpAccept, Fault: FaultENOBUFS, Every: 1, Count: 1},
	)
	waiting, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	if err := echoOnce(first, "during"); err != nil {
		t.Fatalf("an existing connection stopped being served: %v", err)
	}
	if err := echoOnce(waiting, "after"); err != nil {
		t.Fatalf("the connection in the backlog was not served: %v", err)
	}
	if n := g.Loops()[0].Counters().ListenerThrottles.Load(); n != 3 {
		t.Errorf("ListenerThrottles = %d, want 3", n)
	}
	for _, f := range []Fault{FaultEMFILE, FaultENFILE, FaultENOBUFS} {
		if inj.Injected(f) != 1 {
			t.Errorf("%v injected %d times, want 1", f, inj.Injected(f))
		}
	}
	noMisuse(t, inj)
}

// TestInjectConnectInProgress: a connect that says EINPROGRESS, then a writable
// notification while it is still in progress (spurious: re-armed), still ends
// connected.
func TestInjectConnectInProgress(t *testing.T) {
	checkFDs(t)
	inj := NewInjector(7, Rule{Op: OpConnect, Fault: FaultEINPROGRESS, Every: 1})
	g := NewGroup(1, inj.Options(nil))
	defer shutdown(t, g)
	ln := serveEcho(t, g, loopback)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		rec := newRecorder()
		ch, err := g.Dial(ctx, ln.Addr(), rec, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		ch.Write([]byte("hello"), nil)
		waitData(t, rec, "hello")
		ch.Close()
		wait(t, ch.Closed(), "the dialed channel closing")
	}
	if n := inj.Injected(FaultEINPROGRESS); n != 3 {
		t.Errorf("EINPROGRESS injected %d times, want 3", n)
	}
	if n := g.Loops()[0].Counters().SpuriousReadiness.Load(); n == 0 {
		t.Error("the spurious writables were not counted")
	}
	noMisuse(t, inj)
}

// TestInjectPollerFailure: epoll_wait failing with EINVAL, or EBADF (its
// descriptor closed by another owner), takes the loop down the abnormal path:
// channels close, the loop ends stopped with the cause, and nothing leaks
// (EBADF: the poller's number is never closed again).
func TestInjectPollerFailure(t *testing.T) {
	for _, tc := range []struct {
		fault Fault
		errno unix.Errno
	}{{FaultEINVAL, unix.EINVAL}, {FaultEBADF, unix.EBADF}} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			checkFDs(t)
			inj := NewInjector(8)
			l := New(inj.Options(nil))
			lnFD := mustListen(t)
			active := make(chan *Channel, 1)
			ln, err := l.Listen(lnFD, func(net.Addr) (Handler, *ChannelOptions) { return activeEcho{active: active}, nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, ch := connect(t, ln.Addr(), active)
			if err := echoOnce(c, "before"); err != nil {
				t.Fatal(err)
			}
			inj.Add(Rule{Op: OpEpollWait, Fault: tc.fault, Every: 1, Count: 1})
			l.Execute(func() {})
			select {
			case <-l.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the loop did not stop after its poller failed")
			}
			if err := l.Wait(); !errors.Is(err, ErrLoopFailed) || !errors.Is(err, tc.errno) {
				t.Fatalf("Wait: %v, want ErrLoopFailed with %v", err, tc.errno)
			}
			wait(t, ch.Closed(), "the channel of the failed loop closing")
			wait(t, ln.Closed(), "the listener of the failed loop closing")
			peerClosed(t, c)
			if inj.Injected(tc.fault) != 1 {
				t.Errorf("injected %v", inj.Counts())
			}
			noMisuse(t, inj)
		})
	}
}

// TestInjectorRules: schedules are exact and rules are checked.
func TestInjectorRules(t *testing.T) {
	inj := NewInjector(9, Rule{Op: OpRead, Fault: FaultEAGAIN, Every: 2, After: 1, Count: 2})
	var got []bool
	inj.mu.Lock()
	for i := 0; i < 8; i++ {
		got = append(got, inj.fault(OpRead, 5) == FaultEAGAIN)
	}
	inj.mu.Unlock()
	want := []bool{false, false, true, false, true, false, false, false}
	if !bytes.Equal(boolBytes(got), boolBytes(want)) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a rule injecting EPIPE into accept was taken")
		}
	}()
	inj.Add(Rule{Op: OpAccept, Fault: FaultEPIPE, Every: 1})
}

func boolBytes(b []bool) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		if v {
			out[i] = 1
		}
	}
	return out
}

// reusedDuringRead is a system whose read of a closed number says EBADF after
// another loop's accept was handed the same number (through the injector, as
// it records new descriptors).
type reusedDuringRead struct {
	sockets.Syscalls
	s *injectedSyscalls
}

func (r reusedDuringRead) Read(fd int, p []byte) (int, error) {
	r.s.created(fd, nil) // the number is born again while the read is on its way
	return 0, unix.EBADF
}

// TestInjectorLateEBADFSparesTheReusedNumber: an EBADF that belongs to a
// number's old file must not mark the number's new socket closed, or the
// injector refuses that live socket's calls and counts them as misuse.
func TestInjectorLateEBADFSparesTheReusedNumber(t *testing.T) {
	inj := NewInjector(1)
	s := &injectedSyscalls{inj: inj}
	s.base = reusedDuringRead{Syscalls: sockets.System(), s: s}
	const fd = 1 << 20 // never a real descriptor here
	if _, err := s.Read(fd, make([]byte, 1)); err != unix.EBADF {
		t.Fatalf("read: %v, want the base's EBADF", err)
	}
	inj.mu.Lock()
	closed := inj.fds[fd] != nil && inj.fds[fd].closed
	inj.mu.Unlock()
	if closed {
		t.Fatal("the late EBADF of the old file marked the reborn number closed")
	}
	if n := inj.CallsOnClosed(); n != 0 {
		t.Fatalf("CallsOnClosed = %d, want 0", n)
	}
}
